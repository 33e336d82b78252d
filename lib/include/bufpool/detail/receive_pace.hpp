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
/// next read must complete. A phase's clock starts at its first deadline(), that is at the first
/// read that has to wait: the owner reads the clock only then, never per request.
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
  /// The request's header is being read (again: a no-op within one header).
  void header() noexcept {
    if (phase_ == Phase::header) return;
    phase_ = Phase::header;
    started_ = false;
  }
  /// The header is whole; the body is being read.
  void body() noexcept {
    phase_ = Phase::body;
    started_ = false;
    body_bytes_ = 0;
  }
  void received(std::size_t n) noexcept { body_bytes_ += n; }

  /// The deadline of the next read, and which limit sets it (in `limit`). The first call of a
  /// header or a body starts its clock at `now`.
  Clock::time_point deadline(Clock::time_point now, Limit& limit) noexcept {
    if (!started_) {
      since_ = now;
      started_ = true;
    }
    Clock::time_point at = now + limits_.read_timeout;
    limit = Limit::read;
    if (phase_ == Phase::header && limits_.header_timeout.count() > 0) {
      const auto whole = since_ + limits_.header_timeout;
      if (whole < at) {
        at = whole;
        limit = Limit::header;
      }
    } else if (phase_ == Phase::body && limits_.min_body_rate > 0) {
      // 1 s per min_body_rate bytes received, after the grace: in microseconds, so that a rate
      // of many MB/s still buys time for every read.
      const auto earned = std::chrono::microseconds(
          static_cast<std::int64_t>(body_bytes_ * 1'000'000 / limits_.min_body_rate));
      const auto by = since_ + limits_.body_grace + earned;
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
  bool started_ = false;  // the phase's clock has started, at since_
  Clock::time_point since_{};
  std::uint64_t body_bytes_ = 0;
};

}  // namespace bufpool::detail
