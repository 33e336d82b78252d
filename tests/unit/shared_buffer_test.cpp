#include "bufpool/shared_buffer.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "bufpool/buddy_pool.hpp"

namespace bufpool {
namespace {

BuddyPoolOptions small_pool() {
  return {.chunk_size = 4 * MiB, .min_block = 64 * KiB, .max_memory = 4 * MiB};
}

TEST(SharedBuffer, IsSmallAndCopyable) {
  static_assert(sizeof(SharedBuffer) == 16);
  static_assert(std::is_copy_constructible_v<SharedBuffer>);
}

TEST(SharedBuffer, LastCopyReturnsTheBlock) {
  BuddyPool pool(small_pool());
  Buffer b = pool.allocate(1000);
  b.data()[0] = std::byte{42};
  SharedBuffer s(std::move(b));
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(s.size(), 1000u);
  EXPECT_EQ(s.capacity(), 64 * KiB);
  SharedBuffer t = s;
  SharedBuffer u;
  u = t;
  EXPECT_EQ(u.data(), s.data());
  EXPECT_EQ(u.data()[0], std::byte{42});
  s.reset();
  t.reset();
  EXPECT_EQ(pool.stats().bytes_in_use, 64 * KiB);  // u still holds it
  u.reset();
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

TEST(SharedBuffer, OutlivesItsPool) {
  SharedBuffer s;
  {
    BuddyPool pool(small_pool());
    Buffer b = pool.allocate(10);
    b.data()[9] = std::byte{7};
    s = SharedBuffer(std::move(b));
  }
  EXPECT_EQ(s.data()[9], std::byte{7});
  SharedBuffer copy = s;
  s.reset();
  EXPECT_EQ(copy.size(), 10u);
}

TEST(SharedBuffer, ConcurrentCopiesReturnTheBlockOnce) {
  BuddyPool pool(small_pool());
  SharedBuffer s(pool.allocate(4096));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([copy = s] {
      for (int i = 0; i < 10000; ++i) {
        SharedBuffer local = copy;
        ASSERT_EQ(local.size(), 4096u);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(pool.stats().bytes_in_use, 64 * KiB);
  s.reset();
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

}  // namespace
}  // namespace bufpool
