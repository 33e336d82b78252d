// One deadline per connection, kept by one timer: the connection toolkit's first piece (the
// others are detail/direct_reader.hpp and detail/write_queue.hpp).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <type_traits>

namespace bufpool::detail {

/// The connection moves the deadline around each read and write (arm() and disarm() are a clock
/// read and a store, and touch the timer only when the deadline comes earlier than the one it
/// waits for); run(), spawned once per connection, calls `on_expiry` when a deadline passes. The
/// owner closes its socket there, which completes the pending read or write with an error.
/// Single executor, like the socket it guards.
class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Watchdog(const boost::asio::any_io_executor& executor) : timer_(executor) {}

  void arm(std::chrono::milliseconds d) noexcept { arm_at(Clock::now() + d); }
  /// An absolute deadline (a whole request header's, say: detail/receive_pace.hpp).
  void arm_at(Clock::time_point deadline) noexcept {
    deadline_ = deadline;
    if (deadline_ < timer_.expiry()) timer_.cancel();  // wake run() to wait on the new one
  }
  void disarm() noexcept { deadline_ = Clock::time_point::max(); }
  /// Ends run() without calling on_expiry (the connection is closing anyway).
  void stop() noexcept {
    stopped_ = true;
    timer_.cancel();
  }
  /// A deadline passed (and on_expiry was called).
  bool expired() const noexcept { return expired_; }

  /// Spawn it with something that keeps the owner alive (the watchdog is the owner's member).
  /// `on_expiry()` is called when a deadline passes. If it returns void (or false), run() ends
  /// after it: the owner closed its socket. If it returns true, the owner only cancelled what
  /// was pending (to answer "408 Request Timeout", say), and run() goes on guarding the next
  /// deadline, disarmed until the owner arms one. run() ends at stop().
  template <typename OnExpiry>
  boost::asio::awaitable<void> run(OnExpiry on_expiry) {
    while (!stopped_) {
      timer_.expires_at(deadline_);
      co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (!stopped_ && deadline_ <= Clock::now()) {
        expired_ = true;
        deadline_ = Clock::time_point::max();
        if constexpr (std::is_same_v<decltype(on_expiry()), bool>) {
          if (!on_expiry()) stopped_ = true;
        } else {
          stopped_ = true;
          on_expiry();
        }
      }
    }
  }

  /// A completion condition for asio::async_write that re-arms the deadline at every step (a
  /// peer that stops reading is cut off like one that stops sending) and writes at most `chunk`
  /// bytes per step, so that each step is a fresh chance to time out.
  auto progress(std::chrono::milliseconds timeout, std::size_t chunk = 4u << 20) noexcept {
    return [this, timeout, chunk](const boost::system::error_code& ec, std::size_t) -> std::size_t {
      arm(timeout);
      return ec ? 0 : chunk;
    };
  }

 private:
  boost::asio::steady_timer timer_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool stopped_ = false;
  bool expired_ = false;
};

}  // namespace bufpool::detail
