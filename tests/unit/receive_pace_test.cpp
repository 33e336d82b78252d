#include "bufpool/detail/receive_pace.hpp"

#include <gtest/gtest.h>

namespace {

using bufpool::detail::PaceLimits;
using bufpool::detail::ReceivePace;
using namespace std::chrono_literals;
using Limit = ReceivePace::Limit;

const ReceivePace::Clock::time_point t0 = ReceivePace::Clock::now();

TEST(ReceivePace, AHeaderHasItsWholeDeadlineFromItsFirstWait) {
  ReceivePace pace(PaceLimits{10s, 3s, 0, 5s});
  Limit limit{};
  pace.header();
  EXPECT_EQ(pace.deadline(t0, limit), t0 + 3s);  // sooner than the read timeout
  EXPECT_EQ(limit, Limit::header);
  pace.header();  // the same header: its clock does not restart
  EXPECT_EQ(pace.deadline(t0 + 2s, limit), t0 + 3s) << "bytes that trickle in buy no time";
  pace.idle();
  pace.header();  // the next request's header
  EXPECT_EQ(pace.deadline(t0 + 4s, limit), t0 + 7s);
}

TEST(ReceivePace, TheReadTimeoutWinsWhenItIsSooner) {
  ReceivePace pace(PaceLimits{1s, 3s, 0, 5s});
  Limit limit{};
  pace.header();
  EXPECT_EQ(pace.deadline(t0, limit), t0 + 1s);
  EXPECT_EQ(limit, Limit::read);
  ReceivePace no_header_limit(PaceLimits{10s, 0ms, 0, 5s});
  no_header_limit.header();
  EXPECT_EQ(no_header_limit.deadline(t0, limit), t0 + 10s) << "0: no header limit";
}

TEST(ReceivePace, ABodyEarnsASecondPerMinRateBytesAfterTheGrace) {
  ReceivePace pace(PaceLimits{60s, 3s, 1000, 5s});
  Limit limit{};
  pace.body();
  EXPECT_EQ(pace.deadline(t0, limit), t0 + 5s);  // the grace
  EXPECT_EQ(limit, Limit::body_rate);
  pace.received(2500);  // 2.5 s earned
  EXPECT_EQ(pace.deadline(t0 + 1s, limit), t0 + 7500ms);
  pace.received(1'000'000);  // far ahead: the read timeout is the limit again
  EXPECT_EQ(pace.deadline(t0 + 2s, limit), t0 + 62s);
  EXPECT_EQ(limit, Limit::read);
  ReceivePace any_rate(PaceLimits{60s, 3s, 0, 5s});
  any_rate.body();
  EXPECT_EQ(any_rate.deadline(t0, limit), t0 + 60s) << "0: any rate";
}

}  // namespace
