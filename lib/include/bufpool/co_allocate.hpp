// Allocation from a coroutine without a trip through the executor when memory is there.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <tuple>

#include "bufpool/buddy_pool.hpp"
#include "bufpool/quota.hpp"

namespace bufpool {

/// As `co_await pool.async_allocate_for(size, timeout, as_tuple(use_awaitable))`, but when a block
/// is free and nobody waits (the usual case) the buffer comes back at once. async_allocate_for
/// posts even an immediate result, and a connection that reads many frames per socket read then
/// lets every other ready handler run between two frames: its replies and the requests they
/// trigger go out one per system call instead of in batches.
inline boost::asio::awaitable<std::tuple<boost::system::error_code, Buffer>> co_allocate_for(
    BuddyPool& pool, std::size_t size, std::chrono::steady_clock::duration timeout) {
  if (Buffer b = pool.allocate_if_free(size))
    co_return std::make_tuple(boost::system::error_code{}, std::move(b));
  co_return co_await pool.async_allocate_for(size, timeout,
                                             boost::asio::as_tuple(boost::asio::use_awaitable));
}

/// A request body's block, reserved no further ahead of its bytes than its sender's Quota
/// allows. `units` holds the body's bytes that have not arrived yet; the reader gives them back
/// (units.release(n)) as they arrive, and whatever is left when the body ends or fails goes back
/// with `units`. So a sender that declares large bodies and sends nothing holds at most its
/// quota's capacity of pool memory, while an honest sender's body still goes from the socket
/// into its block once.
struct BodyReservation {
  boost::system::error_code ec;  // timed_out, too_large, ...: from the quota if `quota_refused`
  Buffer buffer;
  QuotaUnits units;
  bool quota_waited = false;   // the quota had no room at once
  bool quota_refused = false;  // and none came within the timeout
};

/// `size` bytes of block for a body of which `unreceived` bytes have yet to arrive. With a
/// quota, the units for `unreceived` come first (waiting up to `timeout`, first come first
/// served), then the block (waiting up to `timeout` again). Without one, or with nothing
/// unreceived, it is co_allocate_for.
inline boost::asio::awaitable<BodyReservation> co_reserve_body(
    BuddyPool& pool, Quota* quota, std::size_t size, std::size_t unreceived,
    std::chrono::steady_clock::duration timeout) {
  BodyReservation r;
  if (quota && unreceived > 0) {
    std::error_code now;
    r.units = quota->try_acquire(unreceived, now);
    if (!r.units) {
      r.quota_waited = true;
      std::tie(r.ec, r.units) = co_await quota->async_acquire_for(
          unreceived, timeout, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (r.ec) {
        r.quota_refused = true;
        co_return r;
      }
    }
  }
  std::tie(r.ec, r.buffer) = co_await co_allocate_for(pool, size, timeout);
  if (r.ec) r.units.reset();
  co_return r;
}

}  // namespace bufpool
