// Built against the installed tree only: proves the headers, library and package config work.
#include <bufpool/buddy_pool.hpp>

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
  std::printf("consumer: %s\n", done ? "ok" : "FAILED");
  return done ? 0 : 1;
}
