// The backing allocator of a BuddyPool: where whole chunks come from.
#pragma once

#include <cstddef>
#include <memory>
#include <system_error>

namespace bufpool {

/// Gives whole chunks to a BuddyPool and takes them back. The pool never reads or writes the
/// memory it gets, so a ChunkAllocator may hand out shared, registered or device memory.
///
/// Thread safety: a pool calls these from any thread, but never while holding its own lock, so an
/// implementation may block (mmap, registration with a NIC) without stalling other allocations.
class ChunkAllocator {
 public:
  virtual ~ChunkAllocator() = default;

  /// Returns `size` bytes aligned to `alignment` (both powers of two), or nullptr with `ec` set.
  virtual void* allocate(std::size_t size, std::size_t alignment, std::error_code& ec) noexcept = 0;

  /// Gives back memory that allocate() returned, with the same size.
  virtual void deallocate(void* chunk, std::size_t size) noexcept = 0;
};

struct MmapChunkAllocatorOptions {
  /// Ask for transparent huge pages (madvise MADV_HUGEPAGE). A hint: ignored where unsupported.
  bool huge_pages = false;
  /// Fault every page in when the chunk is mapped (MAP_POPULATE), so that first use pays no
  /// page faults. A fresh 64 MiB chunk costs about 30 ms of faults on the reference machine.
  bool prefault = false;
};

/// The default backing allocator: anonymous private mmap, aligned to the requested alignment
/// (the pool asks for the chunk size), unmapped on deallocate.
std::shared_ptr<ChunkAllocator> make_mmap_chunk_allocator(MmapChunkAllocatorOptions options = {});

}  // namespace bufpool
