// BuddyPoolSlabs: a BuddyPool as a SlabSource, so that a NodePool's slabs count against the
// pool's memory limit.
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

#include "bufpool/buddy_pool.hpp"
#include "bufpool/buffer.hpp"
#include "bufpool/slab_source.hpp"

namespace bufpool {

/// Each slab is one block of the pool (try_allocate: never waits), kept here until it is given
/// back. The pool must outlive this object, and this object whatever uses it.
class BuddyPoolSlabs final : public SlabSource {
 public:
  explicit BuddyPoolSlabs(BuddyPool& pool) noexcept : pool_(pool) {}
  void* allocate_slab(std::size_t bytes, std::size_t align) noexcept override;
  void deallocate_slab(void* slab, std::size_t bytes, std::size_t align) noexcept override;
  std::size_t slabs() const;

 private:
  BuddyPool& pool_;
  mutable std::mutex mutex_;
  std::vector<Buffer> blocks_;  // few and long-lived: found by address when given back
};

}  // namespace bufpool
