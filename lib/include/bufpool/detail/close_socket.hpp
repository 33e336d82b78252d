// Closing a connection's socket, the one way every connection does it (part of the connection
// toolkit with detail/watchdog.hpp, detail/direct_reader.hpp and detail/write_queue.hpp).
#pragma once

#include <boost/asio/socket_base.hpp>
#include <boost/system/error_code.hpp>

namespace bufpool::detail {

/// Shuts the socket down both ways and closes it; errors are ignored (it may be closed or reset
/// already). Every operation pending on it then completes with an error.
template <typename Socket>
void close_socket(Socket& socket) noexcept {
  boost::system::error_code ignored;
  socket.shutdown(boost::asio::socket_base::shutdown_both, ignored);
  socket.close(ignored);
}

}  // namespace bufpool::detail
