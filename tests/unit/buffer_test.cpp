#include "bufpool/buffer.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <type_traits>

#include "bufpool/buddy_pool.hpp"

namespace bufpool {
namespace {

BuddyPoolOptions small_pool() {
  return {.chunk_size = 4 * MiB, .min_block = 64 * KiB, .max_memory = 8 * MiB};
}

TEST(Buffer, IsSmallAndMoveOnly) {
  static_assert(sizeof(Buffer) == 16);
  static_assert(!std::is_copy_constructible_v<Buffer>);
  static_assert(std::is_nothrow_move_constructible_v<Buffer>);
  static_assert(std::is_nothrow_move_assignable_v<Buffer>);
}

TEST(Buffer, EmptyByDefault) {
  Buffer b;
  EXPECT_TRUE(b.empty());
  EXPECT_FALSE(b);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_EQ(b.data(), nullptr);
  b.reset();  // harmless
}

TEST(Buffer, SizeIsRequestedCapacityIsBlock) {
  BuddyPool pool(small_pool());
  Buffer b = pool.allocate(100 * KiB);
  EXPECT_EQ(b.size(), 100 * KiB);
  EXPECT_EQ(b.capacity(), 256 * KiB);
  std::memset(b.data(), 0xab, b.capacity());  // the whole block is usable
  EXPECT_EQ(b.span().size(), 100 * KiB);
}

TEST(Buffer, MoveTransfersOwnership) {
  BuddyPool pool(small_pool());
  Buffer a = pool.allocate(64 * KiB);
  std::byte* p = a.data();
  Buffer b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_EQ(b.data(), p);
  Buffer c = pool.allocate(64 * KiB);
  c = std::move(b);  // c's old block goes back
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(pool.stats().bytes_in_use, 64 * KiB);
  c = std::move(c);  // self-move keeps the block
  EXPECT_EQ(pool.stats().bytes_in_use, 64 * KiB);
}

TEST(Buffer, DestructionAndResetReturnTheBlock) {
  BuddyPool pool(small_pool());
  {
    Buffer b = pool.allocate(1 * MiB);
    EXPECT_EQ(pool.stats().bytes_in_use, 1 * MiB);
  }
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
  Buffer b = pool.allocate(1 * MiB);
  b.reset();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

TEST(Buffer, AsioBufferCoversTheRequestedBytes) {
  BuddyPool pool(small_pool());
  Buffer b = pool.allocate(1000);
  boost::asio::mutable_buffer mb = boost::asio::buffer(b);
  EXPECT_EQ(mb.data(), b.data());
  EXPECT_EQ(mb.size(), 1000u);
  EXPECT_EQ(boost::asio::buffer(b, 10).size(), 10u);
  const Buffer& cb = b;
  EXPECT_EQ(boost::asio::buffer(cb).size(), 1000u);
  EXPECT_EQ(boost::asio::buffer(Buffer{}).size(), 0u);
  // A sequence of them, for a gathered write of several blocks.
  Buffer c = pool.allocate(24);
  std::vector<boost::asio::const_buffer> seq{boost::asio::buffer(b), boost::asio::buffer(c)};
  EXPECT_EQ(boost::asio::buffer_size(seq), 1024u);
}

TEST(Buffer, ShrinkGivesTheUnusedBuddiesBackAtOnce) {
  BuddyPool pool(small_pool());  // levels 64 KiB, 256 KiB, 1 MiB, 4 MiB
  Buffer b = pool.allocate(3 * MiB);
  std::byte* p = b.data();
  std::memset(p, 0x5a, 100'000);
  EXPECT_EQ(b.capacity(), 4 * MiB);
  b.shrink(100'000);  // a short read: keep 100 KB
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.size(), 100'000u);
  EXPECT_EQ(b.capacity(), 256 * KiB);
  EXPECT_EQ(std::to_integer<int>(b.data()[99'999]), 0x5a);
  auto s = pool.stats();
  EXPECT_EQ(s.bytes_in_use, 256 * KiB);
  EXPECT_EQ(s.bytes_requested, 100'000u);
  // 3 x 1 MiB and 3 x 256 KiB buddies are free now, in the first chunk.
  EXPECT_EQ(s.free_blocks, (std::vector<std::size_t>{0, 3, 3, 0}));
  b.shrink(200'000);  // larger than size(): nothing
  EXPECT_EQ(b.size(), 100'000u);
  b.shrink(64 * KiB);  // exactly the smallest block
  EXPECT_EQ(b.capacity(), 64 * KiB);
  b.reset();
  s = pool.stats();
  EXPECT_EQ(s.bytes_in_use, 0u);
  EXPECT_EQ(s.bytes_requested, 0u);
  EXPECT_EQ(s.free_blocks, (std::vector<std::size_t>{0, 0, 0, 1}));  // merged back whole
}

TEST(Buffer, ShrinkWithinTheSameLevelOnlyChangesTheSize) {
  BuddyPool pool(small_pool());
  Buffer b = pool.allocate(200 * KiB);  // a 256 KiB block
  b.shrink(100 * KiB);                  // still needs 256 KiB
  EXPECT_EQ(b.capacity(), 256 * KiB);
  EXPECT_EQ(pool.stats().bytes_requested, 100 * KiB);
  b.shrink(0);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

TEST(Buffer, ShrinkServesAWaiterWithTheFreedBuddies) {
  BuddyPool pool({.chunk_size = 4 * MiB, .min_block = 64 * KiB, .max_memory = 4 * MiB});
  Buffer b = pool.allocate(4 * MiB);
  std::error_code ec;
  EXPECT_TRUE(pool.try_allocate(1 * MiB, ec).empty());
  b.shrink(1 * MiB);
  Buffer c = pool.try_allocate(1 * MiB, ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(c.capacity(), 1 * MiB);
  EXPECT_GE(c.data(), b.data() + 1 * MiB);  // one of the freed buddies
  EXPECT_LT(c.data(), b.data() + 4 * MiB);
}

}  // namespace
}  // namespace bufpool
