#include "bufpool/chunk_allocator.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

namespace bufpool {
namespace {

TEST(MmapChunkAllocator, AlignsToTheRequestedAlignment) {
  auto a = make_mmap_chunk_allocator();
  for (std::size_t size : {std::size_t{1} << 16, std::size_t{1} << 22, std::size_t{1} << 26}) {
    std::error_code ec;
    void* p = a->allocate(size, size, ec);
    ASSERT_TRUE(p) << ec.message();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % size, 0u) << size;
    std::memset(p, 1, size);
    a->deallocate(p, size);
  }
}

TEST(MmapChunkAllocator, PrefaultAndHugePagesStillWork) {
  auto a = make_mmap_chunk_allocator({.huge_pages = true, .prefault = true});
  std::error_code ec;
  void* p = a->allocate(4 << 20, 2 << 20, ec);
  ASSERT_TRUE(p) << ec.message();
  EXPECT_EQ(static_cast<unsigned char*>(p)[4096], 0);  // anonymous memory starts zeroed
  a->deallocate(p, 4 << 20);
}

TEST(MmapChunkAllocator, ReportsFailure) {
  auto a = make_mmap_chunk_allocator();
  std::error_code ec;
  // 2^62 bytes cannot be mapped on any current machine.
  void* p = a->allocate(std::size_t{1} << 62, 4096, ec);
  EXPECT_EQ(p, nullptr);
  EXPECT_TRUE(ec);
}

}  // namespace
}  // namespace bufpool
