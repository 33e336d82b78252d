#include "bufpool/detail/watchdog.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>

namespace {

namespace asio = boost::asio;
using bufpool::detail::Watchdog;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Fixture {
  asio::io_context io;
  Watchdog watchdog{io.get_executor()};
  int expiries = 0;
  Clock::time_point expired_at{};
  bool ended = false;
  Fixture() {
    auto on_expiry = [this] {
      ++expiries;
      expired_at = Clock::now();
    };
    asio::co_spawn(io, watchdog.run(on_expiry), [this](std::exception_ptr) { ended = true; });
  }
  // Runs the loop for `d`, then stops the watchdog and runs it out.
  void run_for(std::chrono::milliseconds d) {
    asio::steady_timer stop(io, d);
    stop.async_wait([this](auto) { watchdog.stop(); });
    io.run_for(5s);
  }
};

TEST(Watchdog, ExpiresOnceWhenTheDeadlinePasses) {
  Fixture f;
  const auto start = Clock::now();
  f.watchdog.arm(20ms);
  f.run_for(300ms);
  EXPECT_EQ(f.expiries, 1);
  EXPECT_TRUE(f.watchdog.expired());
  EXPECT_GE(f.expired_at - start, 20ms);
  EXPECT_TRUE(f.ended);
}

TEST(Watchdog, DisarmedItStaysQuietAndStopEndsIt) {
  Fixture f;
  f.watchdog.arm(20ms);
  f.watchdog.disarm();
  f.run_for(150ms);
  EXPECT_EQ(f.expiries, 0);
  EXPECT_FALSE(f.watchdog.expired());
  EXPECT_TRUE(f.ended);
}

TEST(Watchdog, AnEarlierDeadlineWakesItFromALaterOne) {
  Fixture f;
  f.watchdog.arm(60s);
  asio::steady_timer later(f.io, 30ms);  // once run() waits on the 60 s deadline
  const auto start = Clock::now();
  Clock::time_point armed{};
  later.async_wait([&](auto) {
    armed = Clock::now();
    f.watchdog.arm(20ms);
  });
  f.run_for(1s);
  ASSERT_EQ(f.expiries, 1);
  EXPECT_GE(f.expired_at - armed, 20ms);
  EXPECT_LT(f.expired_at - start, 900ms);  // not the 60 s one
}

TEST(Watchdog, AMovedDeadlineIsTheOneThatCounts) {
  Fixture f;
  f.watchdog.arm(30ms);
  asio::steady_timer push_back(f.io, 10ms);  // progress before the first deadline
  push_back.async_wait([&](auto) { f.watchdog.arm(200ms); });
  asio::steady_timer check(f.io, 100ms);
  int at_100ms = -1;
  check.async_wait([&](auto) { at_100ms = f.expiries; });
  f.run_for(500ms);
  EXPECT_EQ(at_100ms, 0);  // the first deadline was moved, not kept
  EXPECT_EQ(f.expiries, 1);
}

TEST(Watchdog, ProgressArmsAtEveryStepAndBoundsIt) {
  Fixture f;
  auto progress = f.watchdog.progress(20ms, 1000);
  EXPECT_EQ(progress({}, 0), 1000u);
  EXPECT_EQ(progress(asio::error::broken_pipe, 10), 0u);  // an error ends the write
  f.run_for(300ms);
  EXPECT_EQ(f.expiries, 1);  // armed by the calls above
}

}  // namespace

namespace {

// An expiry that returns true only cancelled what was pending (an HTTP 408 is still to be
// written): the watchdog goes on, disarmed, and guards the next deadline the owner arms.
TEST(Watchdog, AnExpiryThatReturnsTrueKeepsTheWatchdogGoing) {
  asio::io_context io;
  Watchdog watchdog{io.get_executor()};
  int expiries = 0;
  bool ended = false;
  auto on_expiry = [&]() -> bool {
    ++expiries;
    return expiries == 1;  // the first one cancels and goes on; the second closes
  };
  asio::co_spawn(io, watchdog.run(on_expiry), [&](std::exception_ptr) { ended = true; });
  watchdog.arm(20ms);
  asio::steady_timer rearm(io, 60ms);
  rearm.async_wait([&](auto) {
    EXPECT_EQ(expiries, 1);
    EXPECT_FALSE(ended) << "still guarding";
    watchdog.arm_at(Clock::now() + 20ms);
  });
  io.run_for(5s);
  EXPECT_EQ(expiries, 2);
  EXPECT_TRUE(ended) << "the expiry that returned false ended it";
  EXPECT_TRUE(watchdog.expired());
}

}  // namespace
