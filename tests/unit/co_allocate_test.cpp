// bufpool/co_allocate.hpp: a free block comes back without a trip through the executor; anything
// else takes async_allocate_for's path (the wait, the deadline, the errors).
#include "bufpool/co_allocate.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

namespace bufpool {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(CoAllocate, AFreeBlockComesBackWithoutYielding) {
  asio::io_context io;
  BuddyPool pool(BuddyPoolOptions{.min_block = 4096, .max_memory = 64u << 20});
  auto test = [&]() -> asio::awaitable<void> {
    bool other_ran = false;
    auto other = [&] { other_ran = true; };
    // No chunk yet: the slow path, whose completion is posted (so the other handler runs first).
    asio::post(io, other);
    auto [ec1, a] = co_await co_allocate_for(pool, 4096, 1s);
    EXPECT_FALSE(ec1);
    EXPECT_TRUE(a);
    EXPECT_TRUE(other_ran) << "the slow path yields";
    // A 4 KiB block is free now: it comes back at once.
    other_ran = false;
    asio::post(io, other);
    auto [ec2, b] = co_await co_allocate_for(pool, 4096, 1s);
    EXPECT_FALSE(ec2);
    EXPECT_TRUE(b);
    EXPECT_FALSE(other_ran) << "the fast path does not yield";
    // Errors and deadlines are async_allocate_for's.
    auto [ec3, c] = co_await co_allocate_for(pool, std::size_t{1} << 30, 1s);
    EXPECT_EQ(ec3, errc::too_large);
    Buffer all_but = pool.allocate(16u << 20);
    Buffer more = pool.allocate(16u << 20);
    Buffer most = pool.allocate(16u << 20);
    auto [ec4, d] = co_await co_allocate_for(pool, 16u << 20, 20ms);
    EXPECT_EQ(ec4, errc::timed_out);
    EXPECT_FALSE(d);
  };
  auto done = asio::co_spawn(io, test, asio::use_future);
  io.run();
  done.get();
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

}  // namespace
}  // namespace bufpool
