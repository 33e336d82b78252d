#include "bufpool/quota.hpp"

#include <mutex>
#include <system_error>

#include "spin_lock.hpp"

namespace bufpool::detail {

using QuotaWaiter = Waiter<QuotaUnits>;

// Outlives the Quota object while units or waiters are out, as the pool's core does.
class QuotaCore final : public WaitOwner<QuotaUnits> {
 public:
  explicit QuotaCore(std::size_t capacity) noexcept : capacity_(capacity) {}

  // `count`: a refusal is a failure (try_acquire), not the start of a wait (async_acquire).
  bool acquire_now(std::size_t n, QuotaUnits& out, std::error_code& ec, bool count) noexcept {
    if (n - 1 >= capacity_) [[unlikely]] {  // one compare rejects 0 (it wraps) and too large
      ec = n == 0 ? errc::invalid_size : errc::too_large;
      return true;
    }
    Lock lk(lock_);
    if (closed_) [[unlikely]] {
      ec = errc::closed;
      return true;
    }
    if (waiters_.empty() && n <= capacity_ - in_use_) [[likely]] {
      out = grant_locked(n);
      return true;
    }
    ec = errc::out_of_memory;
    failures_ += count;
    return false;
  }

  void enqueue(QuotaWaiter* w) noexcept {
    std::error_code ec;
    bool queued = false;
    {
      Lock lk(lock_);
      ++live_waiters_;
      w->entered = true;
      if (closed_) {
        ec = errc::closed;
      } else if (waiters_.empty() && w->size <= capacity_ - in_use_) {
        w->result = grant_locked(w->size);  // units came back since acquire_now()
      } else if (w->expired) {
        ec = errc::timed_out;
        ++timeouts_;
        ++cancellations_;
      } else {
        queued = true;
        waiters_.push_back(w);
        ++waits_;
        if (w->slot.is_connected()) {
          w->slot.emplace<CancelWaiter<QuotaUnits>>(CancelWaiter<QuotaUnits>{w});
          w->slot_installed = true;
        }
      }
    }
    if (!queued) {
      w->ec = ec;
      w->post_completion();
    }
  }

  void release(std::size_t n) noexcept {
    QuotaWaiter* served = nullptr;
    bool destroy = false;
    {
      Lock lk(lock_);
      in_use_ -= n;
      if (waiters_.empty() && !orphaned_) [[likely]]
        return;
      served = serve_locked();
      destroy = should_destroy();
    }
    complete_all(served);
    if (destroy) delete this;
  }

  void cancel(QuotaWaiter* w) noexcept override { end_wait(w, errc::cancelled); }

  void expire(QuotaWaiter* w) noexcept override { end_wait(w, errc::timed_out); }

  void waiter_gone() noexcept override {
    bool destroy;
    {
      Lock lk(lock_);
      --live_waiters_;
      destroy = should_destroy();
    }
    if (destroy) delete this;
  }

  void close() noexcept {
    QuotaWaiter* all = nullptr;
    {
      Lock lk(lock_);
      closed_ = true;
      all = waiters_.take_all(errc::closed);
    }
    complete_all(all);
  }

  void orphan() noexcept {
    bool destroy;
    {
      Lock lk(lock_);
      orphaned_ = true;
      destroy = should_destroy();
    }
    if (destroy) delete this;
  }

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t available() const noexcept {
    Lock lk(lock_);
    return capacity_ - in_use_;
  }

  QuotaStats stats() const {
    Lock lk(lock_);
    return {.capacity = capacity_,
            .in_use = in_use_,
            .high_water = high_water_,
            .waiters = waiters_.count,
            .acquisitions = acquisitions_,
            .waits = waits_,
            .timeouts = timeouts_,
            .cancellations = cancellations_,
            .failures = failures_};
  }

 private:
  using Lock = std::unique_lock<SpinLock>;

  QuotaUnits grant_locked(std::size_t n) noexcept {
    in_use_ += n;
    if (in_use_ > high_water_) high_water_ = in_use_;
    ++acquisitions_;
    return QuotaUnits(this, n);
  }

  // Strictly in order: stops at the first waiter that does not fit.
  QuotaWaiter* serve_locked() noexcept {
    QuotaWaiter* served = nullptr;
    QuotaWaiter** tail = &served;
    while (QuotaWaiter* w = waiters_.head) {
      if (w->size > capacity_ - in_use_) break;
      waiters_.unlink(w);
      w->result = grant_locked(w->size);
      *tail = w;
      tail = &w->next;
    }
    return served;
  }

  void end_wait(QuotaWaiter* w, errc why) noexcept {
    QuotaWaiter* served = nullptr;
    {
      Lock lk(lock_);
      if (!end_wait_locked(waiters_, w, why)) return;
      ++cancellations_;
      if (why == errc::timed_out) ++timeouts_;
      // A large waiter at the head may have held back smaller ones behind it.
      served = serve_locked();
    }
    w->post_completion();
    complete_all(served);
  }

  bool should_destroy() const noexcept { return orphaned_ && in_use_ == 0 && live_waiters_ == 0; }

  const std::size_t capacity_;
  mutable SpinLock lock_;
  std::size_t in_use_ = 0;
  std::size_t high_water_ = 0;
  WaitQueue<QuotaUnits> waiters_;
  std::size_t live_waiters_ = 0;
  bool closed_ = false;
  bool orphaned_ = false;
  std::uint64_t acquisitions_ = 0;
  std::uint64_t waits_ = 0;
  std::uint64_t timeouts_ = 0;
  std::uint64_t cancellations_ = 0;
  std::uint64_t failures_ = 0;
};

bool complete_now(QuotaCore* core, std::size_t n, QuotaUnits& out, std::error_code& ec) noexcept {
  return core->acquire_now(n, out, ec, false);
}
WaitOwner<QuotaUnits>* wait_owner(QuotaCore* core) noexcept {
  return core;
}
void enqueue_waiter(QuotaCore* core, Waiter<QuotaUnits>* waiter) noexcept {
  core->enqueue(waiter);
}

}  // namespace bufpool::detail

namespace bufpool {

void QuotaUnits::reset() noexcept {
  if (bytes_ != 0) std::exchange(core_, nullptr)->release(std::exchange(bytes_, 0));
}

void QuotaUnits::release(std::size_t n) noexcept {
  if (n >= bytes_) return reset();
  if (n == 0) return;
  bytes_ -= n;
  core_->release(n);
}

Quota::Quota(std::size_t capacity) {
  if (capacity == 0)
    throw std::system_error(make_error_code(errc::invalid_argument), "bufpool::Quota");
  core_ = new detail::QuotaCore(capacity);
}

Quota::~Quota() {
  core_->close();
  core_->orphan();
}

QuotaUnits Quota::try_acquire(std::size_t n, std::error_code& ec) noexcept {
  QuotaUnits out;
  if (core_->acquire_now(n, out, ec, true) && out && ec) ec.clear();
  return out;
}

void Quota::close() noexcept {
  core_->close();
}
std::size_t Quota::capacity() const noexcept {
  return core_->capacity();
}
std::size_t Quota::available() const noexcept {
  return core_->available();
}
QuotaStats Quota::stats() const {
  return core_->stats();
}

}  // namespace bufpool
