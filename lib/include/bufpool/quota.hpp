// Quota: a byte budget with a FIFO asynchronous wait, for per-tenant or per-connection limits.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <system_error>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include "bufpool/detail/waiter.hpp"
#include "bufpool/error.hpp"

namespace bufpool {

namespace detail {
class QuotaCore;
}

/// Units of a Quota: move-only RAII, like Buffer. Destroying (or reset()ting) them gives the bytes
/// back and serves waiters in order. Valid after the Quota object is gone. 16 bytes.
/// Thread safety: like any value type; distinct QuotaUnits may be released on any threads.
class QuotaUnits {
 public:
  QuotaUnits() noexcept = default;
  QuotaUnits(QuotaUnits&& other) noexcept
      : core_(std::exchange(other.core_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  QuotaUnits& operator=(QuotaUnits&& other) noexcept {
    if (this != &other) {
      reset();
      core_ = std::exchange(other.core_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  ~QuotaUnits() { reset(); }

  std::size_t size() const noexcept { return bytes_; }
  bool empty() const noexcept { return bytes_ == 0; }
  explicit operator bool() const noexcept { return bytes_ != 0; }

  /// Gives back all the bytes now.
  void reset() noexcept;
  /// Gives back `n` of the bytes now (all of them if n >= size()), as Buffer::shrink does for a
  /// block.
  void release(std::size_t n) noexcept;

 private:
  friend class detail::QuotaCore;
  QuotaUnits(detail::QuotaCore* core, std::size_t bytes) noexcept : core_(core), bytes_(bytes) {}

  detail::QuotaCore* core_ = nullptr;
  std::size_t bytes_ = 0;
};

struct QuotaStats {
  std::size_t capacity = 0;
  std::size_t in_use = 0;      ///< bytes held by QuotaUnits
  std::size_t high_water = 0;  ///< largest in_use seen
  std::size_t waiters = 0;
  std::uint64_t acquisitions = 0;   ///< successful acquires, immediate or after a wait
  std::uint64_t waits = 0;          ///< requests that had to queue
  std::uint64_t timeouts = 0;       ///< waits ended by async_acquire_for's deadline
  std::uint64_t cancellations = 0;  ///< waits ended by cancellation (timeouts included)
  std::uint64_t failures = 0;       ///< try_acquire calls refused with out_of_memory
};

namespace detail {
bool complete_now(QuotaCore* core, std::size_t n, QuotaUnits& out, std::error_code& ec) noexcept;
WaitOwner<QuotaUnits>* wait_owner(QuotaCore* core) noexcept;
void enqueue_waiter(QuotaCore* core, Waiter<QuotaUnits>* waiter) noexcept;
using InitiateAcquire = InitiateWait<QuotaCore, QuotaUnits>;
}  // namespace detail

/// A budget of `capacity` bytes (or any other unit), acquired and released in any amounts.
/// Layered on a BuddyPool it caps what one tenant or one connection may hold: acquire
/// pool.capacity_for(n) units, then allocate (docs/integration.md). The same rules as the pool's:
/// waiters are served strictly first come, first served (while one waits, try_acquire fails and
/// async_acquire queues behind it, so a large request is never starved by small ones); a request
/// larger than the capacity fails at once with too_large; a wait can be cancelled (any
/// cancellation type) and can have a deadline; completions go through the handler's associated
/// executor, never inside the initiating call or inside a release.
///
/// Thread safety: every member function may be called concurrently from any thread.
class Quota {
 public:
  /// Throws std::system_error with errc::invalid_argument for a capacity of 0.
  explicit Quota(std::size_t capacity);
  /// Closes the quota (waiters complete with errc::closed). Units still out stay valid.
  ~Quota();
  Quota(const Quota&) = delete;
  Quota& operator=(const Quota&) = delete;

  /// `n` units without waiting, or empty units and `ec`: invalid_size (0), too_large (above the
  /// capacity), out_of_memory (not enough left now, or waiters queued), closed.
  QuotaUnits try_acquire(std::size_t n, std::error_code& ec) noexcept;

  /// Acquires `n` units, waiting for releases. Completion signature:
  /// void(boost::system::error_code, QuotaUnits). Errors: invalid_size, too_large (at once),
  /// cancelled, closed. A result that is dropped gives its units back.
  template <typename CompletionToken>
  auto async_acquire(std::size_t n, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken,
                                       void(boost::system::error_code, QuotaUnits)>(
        detail::InitiateAcquire{core_}, token, n,
        std::optional<std::chrono::steady_clock::duration>{});
  }

  /// As async_acquire, but a wait longer than `timeout` completes with errc::timed_out. The timer
  /// runs on the handler's associated executor (on a multi-threaded io_context use a strand).
  template <typename CompletionToken>
  auto async_acquire_for(std::size_t n, std::chrono::steady_clock::duration timeout,
                         CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken,
                                       void(boost::system::error_code, QuotaUnits)>(
        detail::InitiateAcquire{core_}, token, n,
        std::optional<std::chrono::steady_clock::duration>{timeout});
  }

  /// Fails every waiter with errc::closed and refuses later acquires with errc::closed. Releases
  /// keep working. Idempotent.
  void close() noexcept;

  std::size_t capacity() const noexcept;
  /// Units not held now (capacity - in_use).
  std::size_t available() const noexcept;
  /// A consistent snapshot, taken under the quota's lock.
  QuotaStats stats() const;

 private:
  detail::QuotaCore* core_;
};

}  // namespace bufpool
