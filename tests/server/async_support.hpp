// Running a test's coroutine to completion, for the tests that drive the server with
// bufpool::Client.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace bufpool::test {

/// Runs `f` (a callable returning asio::awaitable<void>) on a fresh io_context until it ends;
/// rethrows what it threw. Bounded by ctest's timeout.
template <typename F>
void run_async(F f) {
  boost::asio::io_context io;
  auto done = boost::asio::co_spawn(io, std::move(f), boost::asio::use_future);
  io.run();
  done.get();
}

}  // namespace bufpool::test
