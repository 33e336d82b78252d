// Closing a connection's socket, the one way every connection does it (part of the connection
// toolkit with detail/watchdog.hpp, detail/direct_reader.hpp and detail/write_queue.hpp).
#pragma once

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>

namespace bufpool::detail {

/// Shuts the socket down both ways and closes it; errors are ignored (it may be closed or reset
/// already). Every operation pending on it then completes with an error.
template <typename Socket>
void close_socket(Socket& socket) noexcept {
  boost::system::error_code ignored;
  socket.shutdown(boost::asio::socket_base::shutdown_both, ignored);
  socket.close(ignored);
}

/// After an error that ends a connection while the client may still be sending: stops sending
/// (the reply already written goes out, then FIN), reads and drops what still arrives (at most
/// `max_bytes`, for at most `time` by the connection's Watchdog), and returns; the caller then
/// closes. Closing at once, with unread bytes, would reset the connection, and the reset can
/// destroy the reply before the client reads it.
template <typename Socket, typename Watchdog>
boost::asio::awaitable<void> linger(Socket& socket, Watchdog& watchdog, std::size_t max_bytes,
                                    std::chrono::milliseconds time) {
  boost::system::error_code ec;
  socket.shutdown(boost::asio::socket_base::shutdown_send, ec);
  std::array<char, 16 * 1024> sink;
  std::size_t dropped = 0;
  watchdog.arm(time);
  while (dropped < max_bytes && socket.is_open()) {
    auto [rec, n] = co_await socket.async_read_some(
        boost::asio::buffer(sink), boost::asio::as_tuple(boost::asio::use_awaitable));
    if (rec) break;
    dropped += n;
  }
  watchdog.disarm();
}

}  // namespace bufpool::detail
