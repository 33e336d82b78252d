#include "bufpool/shared_buffer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

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

SharedBuffer filled(BuddyPool& pool, std::string_view text) {
  Buffer b = pool.allocate(text.size());
  std::memcpy(b.data(), text.data(), text.size());
  return SharedBuffer(std::move(b));
}

std::string str(const SharedBuffer& s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

TEST(SharedBuffer, SliceSharesTheBlockAndKeepsItAlive) {
  BuddyPool pool(small_pool());
  SharedBuffer whole = filled(pool, "hello, world");
  SharedBuffer world = whole.slice(7, 5);
  EXPECT_EQ(str(world), "world");
  EXPECT_EQ(world.capacity(), 64 * KiB);
  EXPECT_EQ(str(whole.slice(7)), "world");
  EXPECT_EQ(str(world.slice(1, 3)), "orl");  // a slice of a slice
  whole.reset();
  EXPECT_EQ(pool.stats().bytes_in_use, 64 * KiB);  // the slice holds the block
  EXPECT_EQ(str(world), "world");
  SharedBuffer copy = world;
  world.reset();
  EXPECT_EQ(pool.stats().bytes_in_use, 64 * KiB);
  copy.reset();
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
  EXPECT_EQ(pool.stats().bytes_requested, 0u);  // the requested size comes from the block
}

TEST(SharedBuffer, SliceClampsLikeAsioBufferArithmetic) {
  BuddyPool pool(small_pool());
  SharedBuffer s = filled(pool, "abc");
  EXPECT_EQ(str(s.slice(1, 100)), "bc");
  SharedBuffer end = s.slice(3);
  EXPECT_EQ(end.size(), 0u);
  EXPECT_FALSE(end.empty());  // it still holds the block
  EXPECT_EQ(s.slice(99).size(), 0u);
  EXPECT_TRUE(SharedBuffer{}.slice(0, 1).empty());
  s.reset();
  EXPECT_EQ(pool.stats().bytes_in_use, 64 * KiB);
  end.reset();
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

TEST(SharedBuffer, EmptySliceAtTheEndOfAFullBlockNamesItsOwnBlock) {
  BuddyPool pool(small_pool());
  std::vector<Buffer> blocks;
  for (int i = 0; i < 4; ++i)
    blocks.push_back(pool.allocate(64 * KiB));  // the four buddies of one 256 KiB block
  std::sort(blocks.begin(), blocks.end(),
            [](const Buffer& x, const Buffer& y) { return x.data() < y.data(); });
  ASSERT_EQ(blocks[1].data(), blocks[0].data() + 64 * KiB);
  SharedBuffer s(std::move(blocks[0]));
  SharedBuffer tail = s.slice(64 * KiB);
  s.reset();
  tail.reset();  // must release its own block, not the next one
  EXPECT_EQ(pool.stats().bytes_in_use, 3 * 64 * KiB);
  blocks.clear();  // a wrong release above would make one of these a double release
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

TEST(SharedBuffer, IsAConstBufferSequenceForAsyncWrite) {
  static_assert(boost::asio::is_const_buffer_sequence<SharedBuffer>::value);
  static_assert(!boost::asio::is_mutable_buffer_sequence<SharedBuffer>::value);
  BuddyPool pool(small_pool());
  boost::asio::io_context io;
  boost::asio::local::stream_protocol::socket a(io), b(io);
  boost::asio::local::connect_pair(a, b);
  SharedBuffer s = filled(pool, "zero copy from the pool");
  EXPECT_EQ(boost::asio::buffer_size(s), s.size());
  EXPECT_EQ(boost::asio::buffer(s).data(), s.data());
  std::size_t written = 0;
  // The operation's copy keeps the block alive: the caller lets go of it at once.
  boost::asio::async_write(a, s.slice(5), [&](boost::system::error_code ec, std::size_t n) {
    EXPECT_FALSE(ec);
    written = n;
  });
  s.reset();
  std::string got(18, '\0');
  boost::asio::async_read(b, boost::asio::buffer(got),
                          [](boost::system::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
  io.run();
  EXPECT_EQ(written, 18u);
  EXPECT_EQ(got, "copy from the pool");
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

}  // namespace
}  // namespace bufpool
