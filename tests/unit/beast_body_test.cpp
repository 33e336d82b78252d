// PoolBody and async_read_body over a real socket pair: serving without a copy, receiving into a
// pool block, waiting for memory, deadlines, and the errors a client can cause.
#include "bufpool/beast_body.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace bufpool {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Socket = asio::local::stream_protocol::socket;
using asio::awaitable;
using asio::use_awaitable;
using namespace std::chrono_literals;

BuddyPoolOptions small_pool() {
  return {.chunk_size = 4 * MiB, .min_block = 64 * KiB, .max_memory = 4 * MiB};
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

std::string request(std::string_view body, std::string_view extra = {}) {
  return "PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + std::string(body) + std::string(extra);
}

struct Fixture : ::testing::Test {
  asio::io_context io;
  Socket client{io}, server{io};
  Fixture() { asio::local::connect_pair(client, server); }

  template <typename F>
  void run(F f) {
    asio::co_spawn(io, std::move(f), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    io.run();
  }

  // The buffer and parser of the request that read() reads.
  beast::flat_buffer in;
  http::request_parser<PoolBody> parser;
  // Sends `wire` (then closes the client if `then_close`), reads its header into `parser` and
  // its body with async_read_body: what that completed with.
  awaitable<std::tuple<boost::system::error_code, std::size_t>> read(
      const std::string& wire, BuddyPool& pool, std::chrono::milliseconds timeout,
      bool then_close = false) {
    co_await asio::async_write(client, asio::buffer(wire), use_awaitable);
    if (then_close) client.close();
    co_await http::async_read_header(server, in, parser, use_awaitable);
    co_return co_await async_read_body(server, in, parser, pool, timeout,
                                       asio::as_tuple(use_awaitable));
  }
};

using PoolBodyTest = Fixture;

TEST_F(PoolBodyTest, ServesASharedBufferWithoutACopyAndKeepsItAlive) {
  BuddyPool pool(small_pool());
  const std::string text = pattern(200'000);
  Buffer b = pool.allocate(text.size());
  std::memcpy(b.data(), text.data(), text.size());
  auto res = std::make_unique<http::response<PoolBody>>(http::status::ok, 11);
  res->body().shared = SharedBuffer(std::move(b));
  res->prepare_payload();
  EXPECT_EQ((*res)[http::field::content_length], "200000");
  PoolBody::writer w(res->base(), res->body());
  beast::error_code ec;
  w.init(ec);
  auto got = w.get(ec);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->first.data(), res->body().shared.data());  // the pool's bytes, not a copy
  std::string received;
  run([&]() -> awaitable<void> {
    auto writer = [&]() -> awaitable<void> {
      co_await http::async_write(server, *res, use_awaitable);
      res.reset();  // the block goes back only now
    };
    asio::co_spawn(io, writer(), asio::detached);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.body_limit(1 * MiB);
    co_await http::async_read(client, buf, p, use_awaitable);
    received = p.get().body();
  });
  EXPECT_EQ(received, text);
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

TEST_F(PoolBodyTest, ReadsABodyStraightIntoAPoolBlockAndLeavesThePipelinedRest) {
  BuddyPool pool(small_pool());
  const std::string body = pattern(1 * MiB - 3);
  const std::string wire = request(body, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
  run([&]() -> awaitable<void> {
    auto sender = [&]() -> awaitable<void> {
      co_await asio::async_write(client, asio::buffer(wire), use_awaitable);
    };
    asio::co_spawn(io, sender(), asio::detached);
    beast::flat_buffer buf;
    http::request_parser<PoolBody> p;
    p.body_limit(2 * MiB);
    co_await http::async_read_header(server, buf, p, use_awaitable);
    const std::size_t n = co_await async_read_body(server, buf, p, pool, 1s, use_awaitable);
    EXPECT_EQ(n, body.size());
    EXPECT_TRUE(p.is_done());
    Buffer& got = p.get().body().buffer;
    EXPECT_EQ(got.size(), body.size());
    EXPECT_EQ(got.capacity(), 1 * MiB);
    EXPECT_EQ(std::memcmp(got.data(), body.data(), body.size()), 0);
    // The next request is intact, whatever part of it the reads took in.
    http::request_parser<http::empty_body> next;
    co_await http::async_read(server, buf, next, use_awaitable);
    EXPECT_EQ(next.get().target(), "/next");
  });
}

TEST_F(PoolBodyTest, WaitsForMemoryThenReads) {
  BuddyPool pool(small_pool());
  Buffer whole = pool.allocate(4 * MiB);
  const std::string body = pattern(300'000);
  const std::string wire = request(body);
  bool read = false;
  run([&]() -> awaitable<void> {
    auto sender = [&]() -> awaitable<void> {
      co_await asio::async_write(client, asio::buffer(wire), use_awaitable);
    };
    asio::co_spawn(io, sender(), asio::detached);  // more than the socket buffer holds
    asio::steady_timer later(io, 20ms);
    later.async_wait([&](boost::system::error_code) { whole.reset(); });
    beast::flat_buffer buf;
    http::request_parser<PoolBody> p;
    co_await http::async_read_header(server, buf, p, use_awaitable);
    co_await async_read_body(server, buf, p, pool, 10s, use_awaitable);
    EXPECT_EQ(std::memcmp(p.get().body().buffer.data(), body.data(), body.size()), 0);
    read = true;
  });
  EXPECT_TRUE(read);
  EXPECT_EQ(pool.stats().waits, 1u);
}

TEST_F(PoolBodyTest, TheWaitHasADeadline) {
  BuddyPool pool(small_pool());
  Buffer whole = pool.allocate(4 * MiB);
  const std::string wire = request(pattern(1000));
  run([&]() -> awaitable<void> {
    auto [ec, n] = co_await read(wire, pool, 20ms);
    EXPECT_EQ(ec, errc::timed_out);
    EXPECT_EQ(n, 0u);
  });
  EXPECT_EQ(pool.stats().timeouts, 1u);
}

TEST_F(PoolBodyTest, TheWaitCanBeCancelled) {
  BuddyPool pool(small_pool());
  Buffer whole = pool.allocate(4 * MiB);
  const std::string wire = request(pattern(1000));
  asio::cancellation_signal signal;
  boost::system::error_code result;
  run([&]() -> awaitable<void> {
    co_await asio::async_write(client, asio::buffer(wire), use_awaitable);
    beast::flat_buffer buf;
    http::request_parser<PoolBody> p;
    co_await http::async_read_header(server, buf, p, use_awaitable);
    asio::steady_timer later(io, 10ms);
    later.async_wait(
        [&](boost::system::error_code) { signal.emit(asio::cancellation_type::terminal); });
    auto [ec, n] = co_await async_read_body(
        server, buf, p, pool, 10s,
        asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(use_awaitable)));
    result = ec;
  });
  EXPECT_EQ(result, errc::cancelled);
  EXPECT_EQ(pool.stats().waiters, 0u);
  EXPECT_EQ(pool.stats().cancellations, 1u);
}

TEST_F(PoolBodyTest, ABodyThatStopsShortGivesItsBlockBack) {
  BuddyPool pool(small_pool());
  std::string wire = request(pattern(100'000));
  wire.resize(wire.size() - 5000);
  run([&]() -> awaitable<void> {
    auto [ec, n] = co_await read(wire, pool, 1s, true);
    EXPECT_EQ(ec, http::error::partial_message);
    EXPECT_TRUE(parser.get().body().buffer.empty());
  });
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

TEST_F(PoolBodyTest, ChunkedBodiesAreRefusedByTheHelper) {
  BuddyPool pool(small_pool());
  const std::string wire =
      "PUT /k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  run([&]() -> awaitable<void> {
    auto [ec, n] = co_await read(wire, pool, 1s);
    EXPECT_EQ(ec, errc::unknown_length);
  });
}

TEST_F(PoolBodyTest, BeastsOwnReadWorksThroughTheReader) {
  BuddyPool pool(small_pool());
  const std::string body = pattern(70'000);
  const std::string wire = request(body);
  run([&]() -> awaitable<void> {
    co_await asio::async_write(client, asio::buffer(wire), use_awaitable);
    beast::flat_buffer buf;
    http::request_parser<PoolBody> p;
    p.get().body().pool = &pool;  // the reader takes a block itself, without waiting
    co_await http::async_read(server, buf, p, use_awaitable);
    const Buffer& got = p.get().body().buffer;
    EXPECT_EQ(got.capacity(), 256 * KiB);
    EXPECT_EQ(std::memcmp(got.data(), body.data(), body.size()), 0);
  });
}

TEST_F(PoolBodyTest, AnAttachedBufferTakesABodyOfUnknownLengthAndIsShrunk) {
  BuddyPool pool(small_pool());
  const std::string wire =
      "PUT /k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  run([&]() -> awaitable<void> {
    co_await asio::async_write(client, asio::buffer(wire), use_awaitable);
    beast::flat_buffer buf;
    http::request_parser<PoolBody> p;
    p.get().body().buffer = pool.allocate(1 * MiB);
    co_await http::async_read(server, buf, p, use_awaitable);
    const Buffer& got = p.get().body().buffer;
    EXPECT_EQ(got.size(), 5u);
    EXPECT_EQ(got.capacity(), 64 * KiB);  // the rest went back
    EXPECT_EQ(std::memcmp(got.data(), "abcde", 5), 0);
  });
}

}  // namespace
}  // namespace bufpool
