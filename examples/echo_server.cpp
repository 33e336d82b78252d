// A length-prefixed echo server on Asio whose reads wait on a bufpool pool: each message is a
// 4-byte big-endian length and that many bytes; the server reads the bytes into a pool buffer
// (waiting up to a second for memory when the pool is full) and writes the message back from it.
//
//   echo_server [PORT] [MAX_MEMORY_MIB]    (PORT 0, the default, picks a free port)
// It prints "listening on PORT" and serves on 127.0.0.1 until killed.
#include <bufpool/buddy_pool.hpp>
#include <bufpool/co_allocate.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

asio::awaitable<void> echo(tcp::socket socket, bufpool::BuddyPool& pool) {
  const auto token = asio::as_tuple(asio::use_awaitable);
  for (;;) {
    std::array<unsigned char, 4> prefix{};
    auto [ec, n] = co_await asio::async_read(socket, asio::buffer(prefix), token);
    if (ec) co_return;  // the client is done
    const std::size_t length = std::size_t{prefix[0]} << 24 | std::size_t{prefix[1]} << 16 |
                               std::size_t{prefix[2]} << 8 | std::size_t{prefix[3]};
    if (length == 0) {
      co_await asio::async_write(socket, asio::buffer(prefix), token);
      continue;
    }
    // Waits while the pool is at its limit: the client is held back instead of the process
    // growing. too_large (over 64 MiB) and timed_out end the connection.
    auto [aec, buffer] = co_await bufpool::co_allocate_for(pool, length, 1s);
    if (aec) {
      std::fprintf(stderr, "connection closed: %s\n", aec.message().c_str());
      co_return;
    }
    std::tie(ec, n) = co_await asio::async_read(socket, asio::buffer(buffer), token);
    if (ec) co_return;
    const std::array<asio::const_buffer, 2> reply{asio::buffer(prefix), asio::buffer(buffer)};
    std::tie(ec, n) = co_await asio::async_write(socket, reply, token);
    if (ec) co_return;
  }  // each buffer goes back to the pool when it goes out of scope
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, bufpool::BuddyPool& pool) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    asio::co_spawn(acceptor.get_executor(), echo(std::move(socket), pool), asio::detached);
  }
}

int main(int argc, char** argv) {
  try {
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0);
    const std::size_t mib = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 256;
    bufpool::BuddyPool pool({.max_memory = mib * bufpool::MiB});
    asio::io_context io;
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), port});
    std::printf("listening on %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
    std::fflush(stdout);
    asio::co_spawn(io, listen(acceptor, pool), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    return 1;
  }
}
