// Built against the installed tree only: proves the headers, library and package config work.
#include <bufpool/buddy_pool.hpp>
#include <bufpool/client.hpp>
#include <bufpool/rpc/service.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>

int main() {
  bufpool::BuddyPool pool({.chunk_size = 4 * bufpool::MiB,
                           .min_block = 64 * bufpool::KiB,
                           .max_memory = 4 * bufpool::MiB});
  boost::asio::io_context io;
  bool done = false;
  pool.async_allocate(100'000,
                      boost::asio::bind_executor(io, [&](std::error_code ec, bufpool::Buffer b) {
                        done = !ec && b.capacity() == 256 * bufpool::KiB;
                      }));
  io.run();
  // The RPC library and the client link from the installed package too.
  bufpool::rpc::Service service;
  service.on(bufpool::rpc::Opcode::ping, false,
             [](bufpool::rpc::Request) -> boost::asio::awaitable<bufpool::rpc::Response> {
               co_return bufpool::rpc::Response{};
             });
  const auto encoded = bufpool::rpc::encode(bufpool::rpc::FrameHeader{.opcode = 1});
  done = done && service.find(1) != nullptr && encoded.size() == bufpool::rpc::header_size &&
         bufpool::rpc::make_error_code(bufpool::rpc::Status::not_found).message() == "NOT_FOUND";
  std::printf("consumer: %s\n", done ? "ok" : "FAILED");
  return done ? 0 : 1;
}
