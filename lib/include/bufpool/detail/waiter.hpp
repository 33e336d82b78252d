// A queued async_allocate: the pool's core sees WaiterBase; the handler's concrete type lives in
// WaiterImpl, which keeps the handler's own executor so the completion can be posted to it.
#pragma once

#include <cstdint>
#include <system_error>
#include <utility>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/error_code.hpp>

#include "bufpool/buffer.hpp"

namespace bufpool::detail {

class PoolCore;
void waiter_gone(PoolCore* core) noexcept;

// Why not asio::any_completion_handler: in Asio 1.81 its any_completion_executor cannot be
// required to be blocking.never, so asio::post cannot use it, and a completion must never run
// inline inside a free.
struct WaiterBase {
  WaiterBase(PoolCore* c, std::uint32_t s, boost::asio::cancellation_slot sl) noexcept
      : core(c), size(s), slot(sl) {}

  // Posts the completion (ec, buffer) to the handler's executor. Takes ownership of *this.
  virtual void post_completion() noexcept = 0;
  // Destroys a waiter that will never complete (never called on a queued waiter).
  virtual void destroy() noexcept = 0;

  WaiterBase* prev = nullptr;
  WaiterBase* next = nullptr;
  PoolCore* core;
  std::uint32_t level = 0;
  std::uint32_t size;
  bool queued = false;
  bool slot_installed = false;
  boost::asio::cancellation_slot slot;
  Buffer buffer;
  std::error_code ec;

 protected:
  ~WaiterBase() = default;
};

template <typename Handler>
class WaiterImpl final : public WaiterBase {
 public:
  WaiterImpl(PoolCore* c, std::uint32_t s, Handler&& h)
      : WaiterBase(c, s, boost::asio::get_associated_cancellation_slot(h)),
        handler_(std::move(h)),
        work_(boost::asio::prefer(boost::asio::get_associated_executor(handler_),
                                  boost::asio::execution::outstanding_work.tracked)) {}

  void post_completion() noexcept override { boost::asio::post(Completion{this}); }
  void destroy() noexcept override { delete this; }

 private:
  ~WaiterImpl() {
    // Detached here, on the handler's executor: that is where its signal may be emitted.
    if (slot_installed) slot.clear();
    waiter_gone(core);
  }

  // Owns the waiter while it is queued in the executor; destroying it unrun frees the buffer.
  struct Completion {
    WaiterImpl* self;

    Completion(WaiterImpl* s) noexcept : self(s) {}
    Completion(Completion&& other) noexcept : self(std::exchange(other.self, nullptr)) {}
    Completion& operator=(Completion&&) = delete;
    ~Completion() {
      if (self) delete self;
    }

    using executor_type = boost::asio::associated_executor_t<Handler>;
    executor_type get_executor() const noexcept {
      return boost::asio::get_associated_executor(self->handler_);
    }
    using allocator_type = boost::asio::associated_allocator_t<Handler>;
    allocator_type get_allocator() const noexcept {
      return boost::asio::get_associated_allocator(self->handler_);
    }

    void operator()() {
      WaiterImpl* w = std::exchange(self, nullptr);
      Handler handler = std::move(w->handler_);
      Buffer buffer = std::move(w->buffer);
      const std::error_code ec = w->ec;
      delete w;
      std::move(handler)(boost::system::error_code(ec), std::move(buffer));
    }
  };

  Handler handler_;
  // Keeps the handler's execution context running while the waiter waits.
  std::decay_t<decltype(boost::asio::prefer(
      std::declval<boost::asio::associated_executor_t<Handler>>(),
      boost::asio::execution::outstanding_work.tracked))>
      work_;
};

}  // namespace bufpool::detail
