// async_allocate: completion tokens, waiting, fairness, cancellation and shutdown.
#include "bufpool/buddy_pool.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <variant>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

namespace bufpool {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using namespace std::chrono_literals;

BuddyPoolOptions limit64() {
  return {.max_memory = 64 * MiB};
}

// Runs a coroutine to completion on `io`, rethrowing anything it throws.
template <typename F>
void run(asio::io_context& io, F f) {
  asio::co_spawn(io, std::move(f), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
}

// A callback that records its result, bound to `io` so it completes there.
struct Result {
  std::optional<std::error_code> ec;
  Buffer buffer;
};
auto recorder(asio::io_context& io, Result& r) {
  return asio::bind_executor(io, [&r](std::error_code ec, Buffer b) {
    r.ec = ec;
    r.buffer = std::move(b);
  });
}

TEST(BuddyPoolAsync, AwaitableCompletesAtOnceWhenMemoryIsFree) {
  BuddyPool pool(limit64());
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    Buffer b = co_await pool.async_allocate(3 * MiB, use_awaitable);
    EXPECT_EQ(b.size(), 3 * MiB);
    EXPECT_EQ(b.capacity(), 4 * MiB);
    auto [ec, c] = co_await pool.async_allocate(1, asio::as_tuple(use_awaitable));
    EXPECT_FALSE(ec);
    EXPECT_EQ(c.capacity(), 1 * MiB);
  });
  const auto s = pool.stats();
  EXPECT_EQ(s.waits, 0u);
  EXPECT_EQ(s.bytes_in_use, 0u);
}

TEST(BuddyPoolAsync, AwaitableThrowsSystemErrorOnFailure) {
  BuddyPool pool(limit64());
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    try {
      co_await pool.async_allocate(64 * MiB + 1, use_awaitable);
      ADD_FAILURE() << "too large must throw";
    } catch (const boost::system::system_error& e) {
      EXPECT_EQ(e.code(), errc::too_large);
    }
    auto [ec, b] = co_await pool.async_allocate(0, asio::as_tuple(use_awaitable));
    EXPECT_EQ(ec, errc::invalid_size);
  });
}

TEST(BuddyPoolAsync, CallbackNeverRunsInsideTheInitiatingCall) {
  BuddyPool pool(limit64());
  asio::io_context io;
  Result r;
  pool.async_allocate(1, recorder(io, r));
  EXPECT_FALSE(r.ec) << "completed inline";
  io.run();
  ASSERT_TRUE(r.ec);
  EXPECT_FALSE(*r.ec);
  EXPECT_EQ(r.buffer.size(), 1u);
}

TEST(BuddyPoolAsync, FutureGivesABlockingWait) {
  BuddyPool pool(limit64());
  Buffer whole = pool.allocate(64 * MiB);
  std::future<Buffer> f = pool.async_allocate(16 * MiB, asio::use_future);
  EXPECT_EQ(f.wait_for(20ms), std::future_status::timeout);
  whole.reset();
  Buffer b = f.get();
  EXPECT_EQ(b.capacity(), 16 * MiB);
  std::future<Buffer> bad = pool.async_allocate(128 * MiB, asio::use_future);
  try {
    bad.get();
    ADD_FAILURE() << "too large must fail";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), errc::too_large);
  }
}

TEST(BuddyPoolAsync, DeferredStartsOnlyWhenInvoked) {
  BuddyPool pool(limit64());
  asio::io_context io;
  auto op = pool.async_allocate(64 * MiB, asio::deferred);
  Buffer whole = pool.allocate(64 * MiB);  // the deferred op has not taken anything
  whole.reset();
  Result r;
  std::move(op)(recorder(io, r));
  io.run();
  ASSERT_TRUE(r.ec);
  EXPECT_FALSE(*r.ec);
  EXPECT_EQ(r.buffer.capacity(), 64 * MiB);
}

// Seed: a waiter completes soon after a free.
TEST(BuddyPoolAsync, WaiterCompletesAfterFreeFromAnotherThread) {
  BuddyPool pool(limit64());
  Buffer whole = pool.allocate(64 * MiB);
  asio::io_context io;
  Result r;
  pool.async_allocate(1 * MiB, recorder(io, r));
  EXPECT_EQ(pool.stats().waiters, 1u);
  std::thread freer([&] {
    std::this_thread::sleep_for(10ms);
    whole.reset();
  });
  io.run();  // returns only once the waiter completed: it holds work on io
  freer.join();
  ASSERT_TRUE(r.ec);
  EXPECT_FALSE(*r.ec);
  EXPECT_EQ(r.buffer.capacity(), 1 * MiB);
  EXPECT_EQ(pool.stats().waits, 1u);
}

// The free runs on the waiter's own io thread, where running the handler inline would be easiest
// to get wrong: the handler must still only run later, from the io_context's queue.
TEST(BuddyPoolAsync, FreeNeverRunsTheWaiterInline) {
  BuddyPool pool(limit64());
  Buffer whole = pool.allocate(64 * MiB);
  asio::io_context io;
  Result r;
  pool.async_allocate(1 * MiB, recorder(io, r));
  bool ran_inline = true;
  asio::post(io, [&] {
    whole.reset();  // serves the waiter
    ran_inline = r.ec.has_value();
  });
  io.run();
  EXPECT_FALSE(ran_inline) << "the waiter's handler ran inside the free";
  ASSERT_TRUE(r.ec);
  EXPECT_FALSE(*r.ec);
  EXPECT_EQ(r.buffer.capacity(), 1 * MiB);
}

// Seed: one 64 MiB free serves four 16 MiB waiters.
TEST(BuddyPoolAsync, OneFreeServesFourWaiters) {
  BuddyPool pool(limit64());
  Buffer whole = pool.allocate(64 * MiB);
  asio::io_context io;
  Result r[4];
  for (auto& x : r)
    pool.async_allocate(16 * MiB, recorder(io, x));
  EXPECT_EQ(pool.stats().waiters, 4u);
  whole.reset();
  io.run();
  for (auto& x : r) {
    ASSERT_TRUE(x.ec);
    EXPECT_FALSE(*x.ec);
    EXPECT_EQ(x.buffer.capacity(), 16 * MiB);
  }
  EXPECT_EQ(pool.stats().bytes_in_use, 64 * MiB);
}

TEST(BuddyPoolAsync, WaitersAreServedFirstComeFirstServed) {
  BuddyPool pool(limit64());
  std::vector<Buffer> quarters;
  for (int i = 0; i < 4; ++i)
    quarters.push_back(pool.allocate(16 * MiB));
  asio::io_context io;
  Result big, small;
  pool.async_allocate(64 * MiB, recorder(io, big));
  pool.async_allocate(1 * MiB, recorder(io, small));
  std::error_code ec;
  EXPECT_TRUE(pool.try_allocate(1, ec).empty()) << "a later request overtook the queue";
  EXPECT_EQ(ec, errc::out_of_memory);
  quarters.pop_back();  // 16 MiB free: enough for `small`, but `big` is first
  io.poll();
  EXPECT_FALSE(small.ec);
  EXPECT_FALSE(big.ec);
  quarters.clear();
  io.poll();
  ASSERT_TRUE(big.ec);
  EXPECT_EQ(big.buffer.capacity(), 64 * MiB);
  EXPECT_FALSE(small.ec);
  big.buffer.reset();
  io.run();
  ASSERT_TRUE(small.ec);
  EXPECT_EQ(small.buffer.capacity(), 1 * MiB);
}

TEST(BuddyPoolAsync, EveryCancellationTypeCancelsAndLeaksNothing) {
  for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                    asio::cancellation_type::total}) {
    BuddyPool pool(limit64());
    Buffer whole = pool.allocate(64 * MiB);
    asio::io_context io;
    asio::cancellation_signal signal;
    Result r;
    pool.async_allocate(1 * MiB, asio::bind_cancellation_slot(signal.slot(), recorder(io, r)));
    io.poll();
    EXPECT_FALSE(r.ec);
    signal.emit(type);
    io.run();
    ASSERT_TRUE(r.ec);
    EXPECT_EQ(*r.ec, errc::cancelled);
    EXPECT_TRUE(r.buffer.empty());
    whole.reset();
    const auto s = pool.stats();
    EXPECT_EQ(s.waiters, 0u);
    EXPECT_EQ(s.cancellations, 1u);
    EXPECT_EQ(s.bytes_in_use, 0u);
    EXPECT_EQ(s.free_blocks.back(), 1u);
  }
}

TEST(BuddyPoolAsync, TimeoutWithAwaitableOrOperator) {
  using namespace asio::experimental::awaitable_operators;
  BuddyPool pool(limit64());
  Buffer whole = pool.allocate(64 * MiB);
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 20ms);
    auto result =
        co_await (pool.async_allocate(1 * MiB, use_awaitable) || timer.async_wait(use_awaitable));
    EXPECT_EQ(result.index(), 1u) << "the timer should win";
  });
  whole.reset();
  const auto s = pool.stats();
  EXPECT_EQ(s.cancellations, 1u);
  EXPECT_EQ(s.waiters, 0u);
  EXPECT_EQ(s.bytes_in_use, 0u);
}

TEST(BuddyPoolAsync, OrOperatorWithFreeMemoryReturnsTheBuffer) {
  using namespace asio::experimental::awaitable_operators;
  BuddyPool pool(limit64());
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 10s);
    auto result =
        co_await (pool.async_allocate(1 * MiB, use_awaitable) || timer.async_wait(use_awaitable));
    EXPECT_EQ(result.index(), 0u);
    if (result.index() == 0) {
      EXPECT_EQ(std::get<0>(result).capacity(), 1 * MiB);
    }
  });
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

TEST(BuddyPoolAsync, CloseFailsWaitersAndLaterRequests) {
  BuddyPool pool(limit64());
  Buffer whole = pool.allocate(64 * MiB);
  asio::io_context io;
  Result a, b, later;
  pool.async_allocate(1 * MiB, recorder(io, a));
  pool.async_allocate(2 * MiB, recorder(io, b));
  pool.close();
  pool.async_allocate(1, recorder(io, later));
  io.run();
  for (auto* r : {&a, &b, &later}) {
    ASSERT_TRUE(r->ec);
    EXPECT_EQ(*r->ec, errc::closed);
  }
  EXPECT_EQ(pool.stats().waiters, 0u);
}

TEST(BuddyPoolAsync, DestroyingThePoolClosesItsWaiters) {
  asio::io_context io;
  Result r;
  Buffer whole;
  {
    BuddyPool pool(limit64());
    whole = pool.allocate(64 * MiB);
    pool.async_allocate(1, recorder(io, r));
  }
  io.run();
  ASSERT_TRUE(r.ec);
  EXPECT_EQ(*r.ec, errc::closed);
  whole.reset();  // the last block returns the storage; ASan checks nothing leaks
}

TEST(BuddyPoolAsync, UnrunCompletionGivesTheBufferBack) {
  BuddyPool pool(limit64());
  {
    asio::io_context io;
    pool.async_allocate(1 * MiB, asio::bind_executor(io, [](std::error_code, Buffer) {}));
    EXPECT_EQ(pool.stats().bytes_in_use, 1 * MiB);  // handed out, waiting in io's queue
  }  // io destroyed without running: the handler and its Buffer are destroyed
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

// A free and a cancellation race from two threads. Whichever wins, the waiter completes exactly
// once, and no memory is lost. Fixed iteration count, no timing assumptions.
TEST(BuddyPoolAsync, FreeRacingCancellationLosesNothing) {
  BuddyPool pool(limit64());
  int served = 0, cancelled = 0;
  for (int i = 0; i < 2000; ++i) {
    Buffer whole = pool.allocate(64 * MiB);
    asio::io_context io;
    asio::cancellation_signal signal;
    Result r;
    pool.async_allocate(64 * MiB, asio::bind_cancellation_slot(signal.slot(), recorder(io, r)));
    std::thread freer([&] { whole.reset(); });
    signal.emit(asio::cancellation_type::terminal);
    freer.join();
    io.run();
    ASSERT_TRUE(r.ec);
    if (*r.ec) {
      ASSERT_EQ(*r.ec, errc::cancelled);
      ++cancelled;
    } else {
      ASSERT_EQ(r.buffer.capacity(), 64 * MiB);
      ++served;
    }
    r.buffer.reset();
    ASSERT_EQ(pool.stats().bytes_in_use, 0u);
  }
  EXPECT_EQ(served + cancelled, 2000);
  const auto s = pool.stats();
  EXPECT_EQ(s.waiters, 0u);
  EXPECT_EQ(s.free_blocks.back(), 1u);
  std::printf("free-vs-cancel race: %d served, %d cancelled\n", served, cancelled);
}

TEST(BuddyPoolAsync, MultiThreadedIoContextServesEveryWaiter) {
  BuddyPool pool({.chunk_size = 4 * MiB, .min_block = 64 * KiB, .max_memory = 4 * MiB});
  asio::thread_pool threads(2);
  constexpr int tasks = 64;
  std::atomic<int> done{0};
  for (int i = 0; i < tasks; ++i) {
    asio::co_spawn(
        threads,
        [&]() -> awaitable<void> {
          for (int k = 0; k < 50; ++k) {
            Buffer b = co_await pool.async_allocate(1 * MiB, use_awaitable);
            b.data()[0] = std::byte{1};
          }
          ++done;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }
  threads.join();
  EXPECT_EQ(done.load(), tasks);
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
  EXPECT_EQ(pool.stats().waiters, 0u);
}

}  // namespace
}  // namespace bufpool

namespace bufpool {
namespace {

TEST(BuddyPoolAsyncFor, TimesOutWithTimedOutAndCountsIt) {
  BuddyPool pool(limit64());
  Buffer whole = pool.allocate(64 * MiB);
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    auto [ec, b] = co_await pool.async_allocate_for(1 * MiB, 20ms, asio::as_tuple(use_awaitable));
    EXPECT_EQ(ec, errc::timed_out);
    EXPECT_TRUE(b.empty());
  });
  const auto s = pool.stats();
  EXPECT_EQ(s.timeouts, 1u);
  EXPECT_EQ(s.cancellations, 1u);
  EXPECT_EQ(s.waiters, 0u);
}

TEST(BuddyPoolAsyncFor, ServedBeforeTheDeadline) {
  BuddyPool pool(limit64());
  Buffer whole = pool.allocate(64 * MiB);
  asio::io_context io;
  Result r;
  pool.async_allocate_for(16 * MiB, 10s, recorder(io, r));
  asio::steady_timer later(io, 10ms);
  later.async_wait([&](boost::system::error_code) { whole.reset(); });
  const auto t0 = std::chrono::steady_clock::now();
  io.run();  // returns once the allocation is served and the timer is cancelled
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  ASSERT_TRUE(r.ec);
  EXPECT_FALSE(*r.ec);
  EXPECT_EQ(r.buffer.capacity(), 16 * MiB);
  EXPECT_EQ(pool.stats().timeouts, 0u);
}

TEST(BuddyPoolAsyncFor, ImmediateWhenFreeAndOuterCancellationWorks) {
  BuddyPool pool(limit64());
  asio::io_context io;
  Result now;
  pool.async_allocate_for(1, 1s, recorder(io, now));
  io.run();
  ASSERT_TRUE(now.ec);
  EXPECT_FALSE(*now.ec);

  now.buffer.reset();
  Buffer whole = pool.allocate(64 * MiB);
  asio::cancellation_signal signal;
  Result r;
  io.restart();
  pool.async_allocate_for(1 * MiB, 10s,
                          asio::bind_cancellation_slot(signal.slot(), recorder(io, r)));
  io.poll();
  signal.emit(asio::cancellation_type::terminal);
  io.run();
  ASSERT_TRUE(r.ec);
  EXPECT_EQ(*r.ec, errc::cancelled);
  EXPECT_EQ(pool.stats().timeouts, 0u);
}

// The issue-10 repro: with the deadline in an object that held a BuddyPool&, the timer's handler
// reached the destroyed pool (ASan: heap-use-after-free in BuddyPool::note_timeout).
TEST(BuddyPoolAsyncFor, DeadlineAfterThePoolObjectIsGoneTouchesNothingFreed) {
  asio::io_context io;
  Result r;
  Buffer whole;
  {
    auto pool = std::make_unique<BuddyPool>(limit64());
    whole = pool->allocate(64 * MiB);
    pool->async_allocate_for(1 * MiB, 1ms, recorder(io, r));
    std::this_thread::sleep_for(5ms);
    io.run_one();  // the deadline fires
    pool.reset();  // while `whole` is still out
  }
  io.run();
  ASSERT_TRUE(r.ec);
  EXPECT_TRUE(*r.ec == errc::timed_out || *r.ec == errc::closed) << r.ec->message();
  whole.reset();  // the pool's storage goes with its last block
}

TEST(BuddyPoolAsyncFor, PoolDestroyedWhileTheDeadlineIsPending) {
  asio::io_context io;
  Result r;
  Buffer whole;
  {
    BuddyPool pool(limit64());
    whole = pool.allocate(64 * MiB);
    pool.async_allocate_for(1 * MiB, 10s, recorder(io, r));
  }  // closes the waiter; its timer is cancelled when the completion runs
  const auto t0 = std::chrono::steady_clock::now();
  io.run();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);  // not held until the deadline
  ASSERT_TRUE(r.ec);
  EXPECT_EQ(*r.ec, errc::closed);
}

TEST(BuddyPoolAsyncFor, ADeadlineOfZeroStillTimesOutAWaiter) {
  BuddyPool pool(limit64());
  Buffer whole = pool.allocate(64 * MiB);
  for (int i = 0; i < 50; ++i) {
    asio::io_context io;
    Result r;
    pool.async_allocate_for(1 * MiB, std::chrono::steady_clock::duration::zero(), recorder(io, r));
    io.run();
    ASSERT_TRUE(r.ec);
    EXPECT_EQ(*r.ec, errc::timed_out);
  }
  EXPECT_EQ(pool.stats().timeouts, 50u);
  EXPECT_EQ(pool.stats().waiters, 0u);
}

TEST(BuddyPoolAsyncFor, DestroyedIoContextFreesAPendingDeadline) {
  BuddyPool pool(limit64());
  Buffer whole = pool.allocate(64 * MiB);
  {
    asio::io_context io;
    Result r;
    pool.async_allocate_for(1 * MiB, 10s, recorder(io, r));
    io.poll();
    EXPECT_EQ(pool.stats().waiters, 1u);
    pool.close();  // the completion is posted to `io`, which is destroyed unrun
  }
  whole.reset();
  // Nothing leaked (LeakSanitizer checks the waiter's storage in the ASan build), and the memory
  // is all back.
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

// Found with the quota: a cancelled large waiter at the head held back smaller waiters behind it
// that the free memory could serve, until some unrelated free came.
TEST(BuddyPoolAsync, CancellingTheHeadWaiterServesThoseBehindIt) {
  BuddyPool pool(limit64());
  std::vector<Buffer> held;
  for (int i = 0; i < 4; ++i)
    held.push_back(pool.allocate(16 * MiB));
  asio::io_context io;
  asio::cancellation_signal signal;
  Result big, small;
  pool.async_allocate(64 * MiB, asio::bind_cancellation_slot(signal.slot(), recorder(io, big)));
  pool.async_allocate(1 * MiB, recorder(io, small));
  io.poll();
  held.pop_back();  // 16 MiB free: not enough for the head, enough for the one behind it
  io.poll();
  EXPECT_FALSE(small.ec);
  signal.emit(asio::cancellation_type::terminal);
  io.run();
  EXPECT_EQ(*big.ec, errc::cancelled);
  ASSERT_TRUE(small.ec);
  EXPECT_FALSE(*small.ec);
  EXPECT_EQ(small.buffer.capacity(), 1 * MiB);
}

// stats().failures counts refused try_allocate calls only; waits are counted in `waits`.
TEST(BuddyPoolAsync, WaitsAreNotFailures) {
  BuddyPool pool(limit64());
  Buffer whole = pool.allocate(64 * MiB);
  asio::io_context io;
  Result a, b;
  pool.async_allocate(1 * MiB, recorder(io, a));
  pool.async_allocate_for(1 * MiB, 10s, recorder(io, b));
  io.poll();
  auto s = pool.stats();
  EXPECT_EQ(s.failures, 0u);
  EXPECT_EQ(s.waits, 2u);
  std::error_code ec;
  EXPECT_TRUE(pool.try_allocate(1 * MiB, ec).empty());
  EXPECT_EQ(ec, errc::out_of_memory);
  EXPECT_EQ(pool.stats().failures, 1u);
  whole.reset();
  io.run();
  EXPECT_FALSE(*a.ec);
  EXPECT_FALSE(*b.ec);
  EXPECT_EQ(pool.stats().failures, 1u);
}

}  // namespace
}  // namespace bufpool
