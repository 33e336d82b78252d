// Allocation from a coroutine without a trip through the executor when memory is there.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <tuple>

#include "bufpool/buddy_pool.hpp"

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

}  // namespace bufpool
