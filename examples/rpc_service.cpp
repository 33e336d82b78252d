// A custom service on bufpool's RPC library, called through bufpool::Client: opcode 32 upper-cases
// its payload in place, in the pool buffer that the payload was read into, and answers from it.
//
//   rpc_service TEXT...
// Starts the service on 127.0.0.1 (a free port), calls it once per argument, prints each reply on
// its own line, and exits.
#include <bufpool/buddy_pool.hpp>
#include <bufpool/client.hpp>
#include <bufpool/rpc/service.hpp>

#include <cctype>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr std::uint8_t upper_opcode = 32;  // 1 to 31 are the buffer store's

bufpool::rpc::Response upper(bufpool::rpc::Request request) {
  for (std::byte& b : request.payload.span())
    b = static_cast<std::byte>(std::toupper(std::to_integer<unsigned char>(b)));
  return {bufpool::rpc::Status::ok, 0, std::move(request.payload)};  // written from the pool
}

asio::awaitable<void> serve(tcp::acceptor& acceptor, const bufpool::rpc::Service& service,
                            bufpool::BuddyPool& pool) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    auto connection = std::make_shared<bufpool::rpc::Connection>(std::move(socket), service, pool,
                                                                 bufpool::rpc::ConnectionOptions{});
    asio::co_spawn(
        acceptor.get_executor(), [connection] { return connection->run(); }, asio::detached);
  }
}

asio::awaitable<void> call_all(std::uint16_t port, int argc, char** argv) {
  auto client =
      co_await bufpool::Client::connect(co_await asio::this_coro::executor, "127.0.0.1", port);
  for (int i = 1; i < argc; ++i) {
    const std::string_view text(argv[i]);
    bufpool::Client::Reply reply = co_await client->call(upper_opcode, {}, asio::buffer(text));
    if (reply.status != bufpool::rpc::Status::ok) {
      std::printf("error: %s\n", reply.message().c_str());
      continue;
    }
    const auto bytes = reply.payload.span();
    std::printf("%.*s\n", static_cast<int>(bytes.size()),
                reinterpret_cast<const char*>(bytes.data()));
  }
  client->close();
}

int main(int argc, char** argv) {
  try {
    bufpool::rpc::Service service;
    service.on_sync(upper_opcode, /*needs_key=*/false, upper);
    bufpool::BuddyPool pool({.min_block = 4 * bufpool::KiB, .max_memory = 64 * bufpool::MiB});
    asio::io_context io;
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::co_spawn(io, serve(acceptor, service, pool), asio::detached);
    asio::co_spawn(io, call_all(acceptor.local_endpoint().port(), argc, argv),
                   [&](std::exception_ptr e) {
                     io.stop();
                     if (e) std::rethrow_exception(e);
                   });
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rpc_service: %s\n", e.what());
    return 1;
  }
}
