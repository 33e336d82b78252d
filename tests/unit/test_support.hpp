// Helpers shared by the unit tests: backing allocators that count and fail on demand.
#pragma once

#include <atomic>
#include <cstdlib>
#include <memory>

#include "bufpool/chunk_allocator.hpp"
#include "bufpool/error.hpp"

namespace bufpool::test {

// Heap-backed (aligned_alloc) so tests do not depend on mmap; counts live chunks and can be told
// to fail after a number of successful allocations.
class CountingChunkAllocator final : public ChunkAllocator {
 public:
  explicit CountingChunkAllocator(int fail_after = -1) : fail_after_(fail_after) {}

  void* allocate(std::size_t size, std::size_t alignment, std::error_code& ec) noexcept override {
    if (fail_after_ >= 0 && allocations_.load() >= fail_after_) {
      ec = std::make_error_code(std::errc::not_enough_memory);
      return nullptr;
    }
    void* p = std::aligned_alloc(alignment, size);
    if (!p) {
      ec = std::make_error_code(std::errc::not_enough_memory);
      return nullptr;
    }
    ++allocations_;
    ++live_;
    return p;
  }
  void deallocate(void* chunk, std::size_t) noexcept override {
    std::free(chunk);
    --live_;
  }

  int live() const { return live_.load(); }
  int allocations() const { return allocations_.load(); }

 private:
  int fail_after_;
  std::atomic<int> allocations_{0};
  std::atomic<int> live_{0};
};

}  // namespace bufpool::test
