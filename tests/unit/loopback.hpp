// A connected pair of TCP sockets on 127.0.0.1 (an ephemeral port), both non-blocking, for the
// connection toolkit's tests: real sockets, real kernel buffers, one io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace bufpool::test {

struct Loopback {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket near{io};  // the side under test
  boost::asio::ip::tcp::socket far{io};   // the peer
  Loopback() {
    boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    near.connect(acceptor.local_endpoint());
    far = acceptor.accept();
    near.non_blocking(true);
    far.non_blocking(true);
  }
};

}  // namespace bufpool::test
