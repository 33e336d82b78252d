#include "bufpool/buffer.hpp"

#include <gtest/gtest.h>

#include <cstring>
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

}  // namespace
}  // namespace bufpool
