// Quota: immediate and waiting acquires, FIFO order, cancellation, deadlines, close, lifetime.
#include "bufpool/quota.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "bufpool/buddy_pool.hpp"

namespace bufpool {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct Result {
  std::optional<std::error_code> ec;
  QuotaUnits units;
};
auto recorder(asio::io_context& io, Result& r) {
  return asio::bind_executor(io, [&r](std::error_code ec, QuotaUnits u) {
    r.ec = ec;
    r.units = std::move(u);
  });
}

TEST(Quota, TryAcquireTakesAndReleaseGivesBack) {
  static_assert(sizeof(QuotaUnits) == 16);
  Quota q(100);
  std::error_code ec;
  QuotaUnits a = q.try_acquire(60, ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(a.size(), 60u);
  EXPECT_EQ(q.available(), 40u);
  QuotaUnits b = q.try_acquire(41, ec);
  EXPECT_EQ(ec, errc::out_of_memory);
  EXPECT_TRUE(b.empty());
  a.release(20);  // give part of it back
  EXPECT_EQ(a.size(), 40u);
  EXPECT_EQ(q.available(), 60u);
  b = q.try_acquire(60, ec);
  EXPECT_FALSE(ec);
  a.reset();
  b = QuotaUnits{};
  EXPECT_EQ(q.available(), 100u);
  const auto s = q.stats();
  EXPECT_EQ(s.acquisitions, 2u);
  EXPECT_EQ(s.failures, 1u);
  EXPECT_EQ(s.high_water, 100u);
}

TEST(Quota, ImpossibleRequestsFailAtOnce) {
  Quota q(100);
  std::error_code ec;
  EXPECT_TRUE(q.try_acquire(0, ec).empty());
  EXPECT_EQ(ec, errc::invalid_size);
  EXPECT_TRUE(q.try_acquire(101, ec).empty());
  EXPECT_EQ(ec, errc::too_large);
  asio::io_context io;
  Result r;
  q.async_acquire(101, recorder(io, r));
  io.run();
  EXPECT_EQ(*r.ec, errc::too_large);  // never waits
  EXPECT_EQ(q.stats().waits, 0u);
  EXPECT_THROW(Quota(0), std::system_error);
}

TEST(Quota, WaitersAreServedInOrderAndALaterSmallRequestDoesNotOvertake) {
  Quota q(100);
  std::error_code ec;
  QuotaUnits held = q.try_acquire(90, ec);
  asio::io_context io;
  Result big, small;
  q.async_acquire(50, recorder(io, big));
  q.async_acquire(5, recorder(io, small));  // would fit now, but queues behind `big`
  io.poll();
  EXPECT_FALSE(big.ec);
  EXPECT_FALSE(small.ec);
  EXPECT_TRUE(q.try_acquire(1, ec).empty());  // waiters first
  EXPECT_EQ(ec, errc::out_of_memory);
  held.reset();
  io.run();
  EXPECT_FALSE(*big.ec);
  EXPECT_FALSE(*small.ec);
  EXPECT_EQ(big.units.size(), 50u);
  EXPECT_EQ(q.stats().waits, 2u);
  EXPECT_EQ(q.stats().failures, 1u);
}

TEST(Quota, CancellingTheHeadServesThoseBehindIt) {
  Quota q(100);
  std::error_code ec;
  QuotaUnits held = q.try_acquire(90, ec);
  asio::io_context io;
  asio::cancellation_signal signal;
  Result big, small;
  q.async_acquire(50, asio::bind_cancellation_slot(signal.slot(), recorder(io, big)));
  q.async_acquire(5, recorder(io, small));
  io.poll();
  signal.emit(asio::cancellation_type::total);
  io.run();
  EXPECT_EQ(*big.ec, errc::cancelled);
  EXPECT_FALSE(*small.ec);
  EXPECT_EQ(small.units.size(), 5u);
  EXPECT_EQ(q.stats().cancellations, 1u);
}

TEST(Quota, DeadlineTimesOutAndCoroutinesWork) {
  Quota q(10);
  std::error_code ec;
  QuotaUnits held = q.try_acquire(10, ec);
  asio::io_context io;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [e1, u1] = co_await q.async_acquire_for(1, 10ms, asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(e1, errc::timed_out);
        held.release(4);
        auto [e2, u2] = co_await q.async_acquire_for(4, 10s, asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(e2);
        EXPECT_EQ(u2.size(), 4u);
        done = true;
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  EXPECT_TRUE(done);
  EXPECT_EQ(q.stats().timeouts, 1u);
}

TEST(Quota, UnitsAndWaitersOutliveTheQuotaObject) {
  asio::io_context io;
  Result r;
  QuotaUnits held;
  {
    auto q = std::make_unique<Quota>(10);
    std::error_code ec;
    held = q->try_acquire(10, ec);
    q->async_acquire_for(5, 1ms, recorder(io, r));
    std::this_thread::sleep_for(3ms);
    io.run_one();  // the deadline fires
  }
  io.run();
  EXPECT_TRUE(*r.ec == errc::timed_out || *r.ec == errc::closed);
  held.reset();  // the core goes with the last units
}

TEST(Quota, CloseFailsWaitersAndLaterRequests) {
  Quota q(10);
  std::error_code ec;
  QuotaUnits held = q.try_acquire(10, ec);
  asio::io_context io;
  Result r;
  q.async_acquire(1, recorder(io, r));
  io.poll();
  q.close();
  io.run();
  EXPECT_EQ(*r.ec, errc::closed);
  EXPECT_TRUE(q.try_acquire(1, ec).empty());
  EXPECT_EQ(ec, errc::closed);
}

// The per-connection pattern of docs/integration.md: charge what the pool really hands out.
TEST(Quota, LayeredOnAPoolChargesTheBlockCapacity) {
  BuddyPool pool({.chunk_size = 4 * MiB, .min_block = 64 * KiB, .max_memory = 8 * MiB});
  Quota per_connection(512 * KiB);
  std::error_code ec;
  const std::size_t charge = pool.capacity_for(100'000);
  EXPECT_EQ(charge, 256 * KiB);
  QuotaUnits u1 = per_connection.try_acquire(charge, ec);
  Buffer b1 = pool.allocate(100'000);
  QuotaUnits u2 = per_connection.try_acquire(charge, ec);
  Buffer b2 = pool.allocate(100'000);
  EXPECT_FALSE(ec);
  QuotaUnits u3 = per_connection.try_acquire(charge, ec);
  EXPECT_EQ(ec, errc::out_of_memory);  // the connection's limit, long before the pool's
  EXPECT_EQ(pool.capacity_for(0), 0u);
  EXPECT_EQ(pool.capacity_for(5 * MiB), 0u);
}

TEST(Quota, ManyThreadsNeverExceedTheCapacity) {
  Quota q(1000);
  std::atomic<long> held{0};
  std::atomic<long> peak{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::error_code ec;
      for (int i = 0; i < 20000; ++i) {
        const std::size_t n = 1 + static_cast<std::size_t>((i * 7 + t * 13) % 300);
        QuotaUnits u = q.try_acquire(n, ec);
        if (!u) continue;
        const long now = held += static_cast<long>(n);
        long p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        held -= static_cast<long>(n);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_LE(peak.load(), 1000);
  EXPECT_EQ(q.available(), 1000u);
}

}  // namespace
}  // namespace bufpool
