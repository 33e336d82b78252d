// A queued asynchronous request (a pool allocation, a quota acquire): the queue's owner sees
// Waiter<Result>; the handler's concrete type lives in WaiterImpl, which keeps the handler's own
// executor so that the completion can be posted to it, and the deadline, if the request has one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <system_error>
#include <utility>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/error_code.hpp>

#include "bufpool/error.hpp"

namespace bufpool::detail {

template <typename Result>
struct Waiter;

// The owner of a FIFO of waiters (the pool's core, a quota's core). Every call is thread safe and
// takes the owner's lock; a call about a waiter that is no longer queued does nothing.
template <typename Result>
class WaitOwner {
 public:
  // Per-operation cancellation: a queued waiter completes with errc::cancelled.
  virtual void cancel(Waiter<Result>* w) noexcept = 0;
  // The deadline passed: a queued waiter completes with errc::timed_out. Before the waiter was
  // queued, marks it so that it is never queued.
  virtual void expire(Waiter<Result>* w) noexcept = 0;
  // A waiter's storage is gone; the owner may be destroyed once its last waiter is gone.
  virtual void waiter_gone() noexcept = 0;

 protected:
  ~WaitOwner() = default;
};

// Why not asio::any_completion_handler: in Asio 1.81 its any_completion_executor cannot be
// required to be blocking.never, so asio::post cannot use it, and a completion must never run
// inline inside a free.
template <typename Result>
struct Waiter {
  Waiter(WaitOwner<Result>* o, std::size_t s, boost::asio::cancellation_slot sl) noexcept
      : owner(o), size(s), slot(sl) {}

  // Posts the completion (ec, result) to the handler's executor. Takes over the queue's reference.
  virtual void post_completion() noexcept = 0;

  // Fields below `owner` are guarded by the owner's lock.
  WaitOwner<Result>* owner;
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  std::size_t size;
  std::uint32_t level = 0;  // the owner's use (the pool: the block level)
  bool entered = false;     // the owner has seen it (queued it or completed it)
  bool queued = false;
  bool expired = false;  // the deadline passed before the owner saw it
  bool slot_installed = false;
  boost::asio::cancellation_slot slot;
  Result result;
  std::error_code ec;

 protected:
  ~Waiter() = default;
};

// Handlers in the cancellation slot of a queued waiter.
template <typename Result>
struct CancelWaiter {
  Waiter<Result>* waiter;
  void operator()(boost::asio::cancellation_type type) const noexcept {
    // Waiting has no side effects, so every kind of cancellation (terminal, partial, total) can be
    // honoured.
    if (type != boost::asio::cancellation_type::none) waiter->owner->cancel(waiter);
  }
};

// Lifetime: one reference for the queue (passed on to the posted completion) and, when there is a
// deadline, one for the timer's handler. The timer's handler holds the waiter, and through
// waiter_gone() the owner, alive: the deadline never reaches an object that is gone, whatever
// happened to the pool or quota object meanwhile.
template <typename Result, typename Handler>
class WaiterImpl final : public Waiter<Result> {
  using Base = Waiter<Result>;
  using Executor = boost::asio::associated_executor_t<Handler>;
  using Timer = boost::asio::basic_waitable_timer<
      std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>, Executor>;

 public:
  WaiterImpl(WaitOwner<Result>* o, std::size_t s, Handler&& h)
      : Base(o, s, boost::asio::get_associated_cancellation_slot(h)),
        handler_(std::move(h)),
        work_(boost::asio::prefer(boost::asio::get_associated_executor(handler_),
                                  boost::asio::execution::outstanding_work.tracked)) {}

  // Starts the deadline; call before the owner sees the waiter. The timer runs on the handler's
  // associated executor.
  void arm(std::chrono::steady_clock::duration timeout) {
    timer_.emplace(boost::asio::get_associated_executor(handler_));
    timer_->expires_after(timeout);
    refs_.fetch_add(1, std::memory_order_relaxed);
    timer_->async_wait(Expiry{this});
  }

  void post_completion() noexcept override { boost::asio::post(Completion{this}); }

 private:
  ~WaiterImpl() {
    // Detached here, on the handler's executor: that is where its signal may be emitted.
    if (this->slot_installed) this->slot.clear();
    this->owner->waiter_gone();
  }

  void unref() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // The timer's handler. Destroyed unrun (its io_context gone), it still drops its reference.
  struct Expiry {
    WaiterImpl* self;

    Expiry(WaiterImpl* s) noexcept : self(s) {}
    Expiry(Expiry&& other) noexcept : self(std::exchange(other.self, nullptr)) {}
    Expiry& operator=(Expiry&&) = delete;
    ~Expiry() {
      if (self) self->unref();
    }
    void operator()(boost::system::error_code ec) {
      WaiterImpl* w = std::exchange(self, nullptr);
      if (!ec) w->owner->expire(w);
      w->unref();
    }
  };

  // Owns the queue's reference while it sits in the executor; destroyed unrun, it still frees the
  // result.
  struct Completion {
    WaiterImpl* self;

    Completion(WaiterImpl* s) noexcept : self(s) {}
    Completion(Completion&& other) noexcept : self(std::exchange(other.self, nullptr)) {}
    Completion& operator=(Completion&&) = delete;
    ~Completion() {
      if (self) self->unref();
    }

    using executor_type = Executor;
    executor_type get_executor() const noexcept {
      return boost::asio::get_associated_executor(self->handler_);
    }
    using allocator_type = boost::asio::associated_allocator_t<Handler>;
    allocator_type get_allocator() const noexcept {
      return boost::asio::get_associated_allocator(self->handler_);
    }

    void operator()() {
      WaiterImpl* w = std::exchange(self, nullptr);
      // Before the upcall: the caller may reuse its slot for its next operation at once.
      if (w->slot_installed) {
        w->slot.clear();
        w->slot_installed = false;
      }
      if (w->timer_) w->timer_->cancel();
      Handler handler = std::move(w->handler_);
      Result result = std::move(w->result);
      const std::error_code ec = w->ec;
      w->unref();
      std::move(handler)(boost::system::error_code(ec), std::move(result));
    }
  };

  Handler handler_;
  // Keeps the handler's execution context running while the waiter waits.
  std::decay_t<decltype(boost::asio::prefer(std::declval<Executor>(),
                                            boost::asio::execution::outstanding_work.tracked))>
      work_;
  std::optional<Timer> timer_;
  std::atomic<unsigned> refs_{1};
};

// A FIFO of waiters, linked through the waiters themselves. Guarded by the owner's lock.
template <typename Result>
struct WaitQueue {
  Waiter<Result>* head = nullptr;
  Waiter<Result>* tail = nullptr;
  std::size_t count = 0;

  bool empty() const noexcept { return head == nullptr; }

  void push_back(Waiter<Result>* w) noexcept {
    w->queued = true;
    w->prev = tail;
    (tail ? tail->next : head) = w;
    tail = w;
    ++count;
  }

  void unlink(Waiter<Result>* w) noexcept {
    (w->prev ? w->prev->next : head) = w->next;
    (w->next ? w->next->prev : tail) = w->prev;
    w->prev = w->next = nullptr;
    w->queued = false;
    --count;
  }

  // Empties the queue (on close): every waiter gets `ec`. Returns them linked through `next`, in
  // order, for complete_all() once the lock is released.
  Waiter<Result>* take_all(std::error_code ec) noexcept {
    Waiter<Result>* all = nullptr;
    Waiter<Result>** at = &all;
    while (Waiter<Result>* w = head) {
      unlink(w);
      w->ec = ec;
      *at = w;
      at = &w->next;
    }
    return all;
  }
};

// A wait ended by cancellation (errc::cancelled) or by its deadline (errc::timed_out), under the
// owner's lock. Returns true when `w` is taken off the queue with that error, for the owner to
// count and complete; false when there is nothing to do: it was served or closed already (its
// completion is on its way), or its deadline came before the owner saw it, and then it is marked
// so that the owner never queues it.
template <typename Result>
bool end_wait_locked(WaitQueue<Result>& queue, Waiter<Result>* w, errc why) noexcept {
  if (why == errc::timed_out && !w->entered) {
    w->expired = true;
    return false;
  }
  if (!w->queued) return false;
  queue.unlink(w);
  w->ec = why;
  return true;
}

// Posts every completion of a list linked through `next`; call with the owner's lock released.
template <typename Result>
void complete_all(Waiter<Result>* list) noexcept {
  while (list) {
    Waiter<Result>* next = list->next;
    list->next = nullptr;
    list->post_completion();
    list = next;
  }
}

// The initiation of every asynchronous wait (BuddyPool::async_allocate[_for],
// Quota::async_acquire[_for]). Core provides, found by argument-dependent lookup:
//   bool complete_now(Core*, std::size_t, Result&, std::error_code&)  (true: finished at once)
//   WaitOwner<Result>* wait_owner(Core*)
//   void enqueue_waiter(Core*, Waiter<Result>*)
// A request that finishes at once is posted, so it never completes inside the initiating call;
// otherwise a waiter is made, its deadline armed (when there is one), and handed to the core.
template <typename Core, typename Result>
struct InitiateWait {
  Core* core;
  template <typename Handler>
  void operator()(Handler&& handler, std::size_t size,
                  std::optional<std::chrono::steady_clock::duration> timeout) const {
    Result result;
    std::error_code ec;
    if (complete_now(core, size, result, ec)) {
      boost::asio::post(boost::asio::append(std::forward<Handler>(handler),
                                            boost::system::error_code(ec), std::move(result)));
      return;
    }
    auto* w = new WaiterImpl<Result, std::decay_t<Handler>>(wait_owner(core), size,
                                                            std::forward<Handler>(handler));
    if (timeout) w->arm(*timeout);
    enqueue_waiter(core, w);
  }
};

}  // namespace bufpool::detail
