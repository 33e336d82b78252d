// SlabSource: where a NodePool (or anything that grows in slabs) gets its memory from.
#pragma once

#include <cstddef>

namespace bufpool {

/// A source of large, aligned slabs of memory, given back one by one. Thread safety is the
/// source's own: NodePool calls it under its lock, from any thread.
class SlabSource {
 public:
  virtual ~SlabSource() = default;
  /// At least `bytes` bytes aligned to `align` (a power of two, at most 4096), or nullptr when
  /// there is no memory. Never throws.
  virtual void* allocate_slab(std::size_t bytes, std::size_t align) noexcept = 0;
  /// Gives back a slab that allocate_slab(bytes, align) returned.
  virtual void deallocate_slab(void* slab, std::size_t bytes, std::size_t align) noexcept = 0;
};

/// The system heap (aligned operator new): the default source.
SlabSource& heap_slab_source() noexcept;

}  // namespace bufpool
