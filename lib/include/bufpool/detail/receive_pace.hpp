// How long a connection may take to receive a request, from the three limits that together keep
// a slow client from holding a connection (and the pool memory reserved for its body) for free.
// Part of the connection toolkit: the deadline it computes goes to Watchdog::arm_at.
#pragma once

#include <chrono>
#include <cstdint>

namespace bufpool::detail {

struct PaceLimits {
  /// Every read must bring a byte within this long.
  std::chrono::milliseconds read_timeout{10'000};
  /// A request's header (everything but its body) must be whole within this long of the first
  /// read that waited for it (nginx's client_header_timeout). 0: no such limit.
  std::chrono::milliseconds header_timeout{10'000};
  /// After `body_grace`, a body must keep arriving at this many bytes a second on average
  /// (Apache mod_reqtimeout's MinRate: each `min_body_rate` bytes buy one more second). 0: none.
  std::uint64_t min_body_rate = 0;
  std::chrono::milliseconds body_grace{5'000};
};

/// One connection's request in progress: idle, its header, or its body. The owner says where the
/// request is (header(), body(), received(), idle()); deadline() is then the time by which the
/// next read must complete. The clock is read only when a read has to wait.
class ReceivePace {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Phase { idle, header, body };
  /// What a deadline that passes stands for, for the log and the counters.
  enum class Limit { read, header, body_rate };

  explicit ReceivePace(const PaceLimits& limits) noexcept : limits_(limits) {}

  Phase phase() const noexcept { return phase_; }
  /// Between requests: the next wait is the connection's idle wait, not this pace's.
  void idle() noexcept { phase_ = Phase::idle; }
  /// A read is about to wait for the rest of a request's header; the first such call of a
  /// request starts its header clock.
  void header(Clock::time_point now) noexcept {
    if (phase_ == Phase::header) return;
    phase_ = Phase::header;
    started_ = now;
  }
  /// The header is whole; the body starts now.
  void body(Clock::time_point now) noexcept {
    phase_ = Phase::body;
    started_ = now;
    body_bytes_ = 0;
  }
  void received(std::size_t n) noexcept { body_bytes_ += n; }

  /// The deadline of the next read, and which limit sets it (in `limit`).
  Clock::time_point deadline(Clock::time_point now, Limit& limit) const noexcept {
    Clock::time_point at = now + limits_.read_timeout;
    limit = Limit::read;
    if (phase_ == Phase::header && limits_.header_timeout.count() > 0) {
      const auto whole = started_ + limits_.header_timeout;
      if (whole < at) {
        at = whole;
        limit = Limit::header;
      }
    } else if (phase_ == Phase::body && limits_.min_body_rate > 0) {
      // 1 s per min_body_rate bytes received, after the grace: in microseconds, so that a rate
      // of many MB/s still buys time for every read.
      const auto earned = std::chrono::microseconds(
          static_cast<std::int64_t>(body_bytes_ * 1'000'000 / limits_.min_body_rate));
      const auto by = started_ + limits_.body_grace + earned;
      if (by < at) {
        at = by;
        limit = Limit::body_rate;
      }
    }
    return at;
  }

 private:
  PaceLimits limits_;
  Phase phase_ = Phase::idle;
  Clock::time_point started_{};
  std::uint64_t body_bytes_ = 0;
};

}  // namespace bufpool::detail
