// Multi-threaded stress: coroutines on a 2-thread io_context wait with timeouts, plain threads
// allocate and free synchronously, and a canceller thread fires cancellation signals. Bounded by
// iteration counts (not time). Afterwards nothing is in use, nothing waits, and all memory merges
// back into whole chunks. Meant to run clean under ThreadSanitizer.
#include "bufpool/buddy_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace bufpool {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

TEST(BuddyPoolStress, WaitersFreesAndCancellationsFromManyThreads) {
  constexpr std::uint64_t seed = 0x57e55;
  std::printf("stress test: seed=%llu\n", static_cast<unsigned long long>(seed));
  BuddyPool pool({.chunk_size = 4 * MiB, .min_block = 64 * KiB, .max_memory = 8 * MiB});
  asio::thread_pool io(2);
  std::atomic<int> ok{0}, timed_out{0}, cancelled{0};

  // Coroutines: allocate with a timeout through the || operator, hold briefly, free. Each runs
  // on its own strand, as Asio requires when cancellation is emitted on a multi-threaded pool.
  constexpr int coroutines = 16, rounds = 100;
  for (int c = 0; c < coroutines; ++c) {
    asio::co_spawn(
        asio::make_strand(io),
        [&, c]() -> asio::awaitable<void> {
          std::mt19937 rng(static_cast<unsigned>(seed + c));
          asio::steady_timer timer(co_await asio::this_coro::executor);
          for (int r = 0; r < rounds; ++r) {
            const std::size_t size = 1 + rng() % (4 * MiB);
            timer.expires_after(std::chrono::microseconds(rng() % 2000));
            auto result = co_await (pool.async_allocate(size, asio::use_awaitable) ||
                                    timer.async_wait(asio::use_awaitable));
            if (result.index() == 0) {
              Buffer& b = std::get<0>(result);
              b.data()[0] = std::byte{1};
              ++ok;
            } else {
              ++timed_out;
            }
          }
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }

  // Callback waiters on a strand, cancelled by signals emitted on the same strand.
  auto strand = asio::make_strand(io);
  constexpr int signalled = 200;
  std::vector<asio::cancellation_signal> signals(signalled);
  std::atomic<int> callbacks{0};
  for (int i = 0; i < signalled; ++i) {
    asio::post(strand, [&, i] {
      pool.async_allocate(
          2 * MiB, asio::bind_cancellation_slot(
                       signals[i].slot(),
                       asio::bind_executor(strand, [&](boost::system::error_code ec, Buffer) {
                         if (ec == errc::cancelled) ++cancelled;
                         if (!ec) ++ok;
                         ++callbacks;
                       })));
      asio::post(strand, [&, i] { signals[i].emit(asio::cancellation_type::terminal); });
    });
  }

  // Synchronous users on plain threads.
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(seed * 31 + t));
      std::vector<Buffer> held;
      for (int i = 0; i < 20000; ++i) {
        if (held.size() < 4 && rng() % 2) {
          std::error_code ec;
          Buffer b = pool.try_allocate(64 * KiB << (2 * (rng() % 3)), ec);
          if (!ec) held.push_back(std::move(b));
        } else if (!held.empty()) {
          held.pop_back();
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  io.join();

  EXPECT_EQ(callbacks.load(), signalled);
  EXPECT_GT(ok.load(), 0);
  std::printf("stress: %d served, %d timed out, %d cancelled\n", ok.load(), timed_out.load(),
              cancelled.load());
  const auto s = pool.stats();
  EXPECT_EQ(s.bytes_in_use, 0u);
  EXPECT_EQ(s.bytes_requested, 0u);
  EXPECT_EQ(s.waiters, 0u);
  for (unsigned k = 0; k + 1 < pool.levels(); ++k)
    EXPECT_EQ(s.free_blocks[k], 0u);
  EXPECT_EQ(s.free_blocks.back(), s.chunks_held);
}

}  // namespace
}  // namespace bufpool
