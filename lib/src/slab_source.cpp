#include "bufpool/slab_source.hpp"

#include <algorithm>
#include <cstdint>
#include <new>

#include "bufpool/buddy_pool_slabs.hpp"

namespace bufpool {

namespace {
class HeapSlabs final : public SlabSource {
 public:
  void* allocate_slab(std::size_t bytes, std::size_t align) noexcept override {
    return ::operator new (bytes, std::align_val_t{align}, std::nothrow);
  }
  void deallocate_slab(void* slab, std::size_t, std::size_t align) noexcept override {
    ::operator delete (slab, std::align_val_t{align});
  }
};
}  // namespace

SlabSource& heap_slab_source() noexcept {
  static HeapSlabs heap;
  return heap;
}

void* BuddyPoolSlabs::allocate_slab(std::size_t bytes, std::size_t align) noexcept {
  // A block is aligned to its size only within its chunk; room for the alignment is asked
  // for on top, and the slab starts at the first aligned address in the block.
  std::error_code ec;
  Buffer block = pool_.try_allocate(bytes + align, ec);
  if (ec) return nullptr;
  const auto base = reinterpret_cast<std::uintptr_t>(block.data());
  void* slab = reinterpret_cast<void*>((base + align - 1) & ~(std::uintptr_t{align} - 1));
  try {
    std::lock_guard lock(mutex_);
    blocks_.push_back(std::move(block));
  } catch (...) {
    return nullptr;  // the block goes back with `block`
  }
  return slab;
}

void BuddyPoolSlabs::deallocate_slab(void* slab, std::size_t, std::size_t align) noexcept {
  const auto p = reinterpret_cast<std::uintptr_t>(slab);
  std::lock_guard lock(mutex_);
  const auto it = std::find_if(blocks_.begin(), blocks_.end(), [&](const Buffer& b) {
    const auto base = reinterpret_cast<std::uintptr_t>(b.data());
    return p >= base && p < base + align;  // the slab is the block's first aligned address
  });
  if (it == blocks_.end()) return;
  *it = std::move(blocks_.back());
  blocks_.pop_back();
}

std::size_t BuddyPoolSlabs::slabs() const {
  std::lock_guard lock(mutex_);
  return blocks_.size();
}

}  // namespace bufpool
