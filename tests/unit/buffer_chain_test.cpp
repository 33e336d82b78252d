// BufferChain: the dynamic buffer over pool blocks, with Asio's and Beast's own reads.
#include "bufpool/buffer_chain.hpp"

#include <gtest/gtest.h>

#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/dynamic_body.hpp>
#include <boost/beast/http/read.hpp>

namespace bufpool {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::use_awaitable;

BuddyPoolOptions small_pool() {
  return {.chunk_size = 4 * MiB, .min_block = 64 * KiB, .max_memory = 4 * MiB};
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 13 + i / 509) % 26);
  return s;
}

TEST(BufferChain, SpansBlocksAndGivesConsumedBlocksBack) {
  BuddyPool pool(small_pool());
  BufferChain chain(pool);
  const std::string text = pattern(200'000);  // four 64 KiB blocks
  auto out = chain.prepare(text.size());
  EXPECT_EQ(std::distance(out.begin(), out.end()), 4);
  EXPECT_EQ(asio::buffer_copy(out, asio::buffer(text)), text.size());
  chain.commit(text.size());
  EXPECT_EQ(chain.size(), text.size());
  EXPECT_EQ(beast::buffers_to_string(chain.data()), text);
  EXPECT_EQ(pool.stats().bytes_in_use, 4 * 64 * KiB);
  chain.consume(70'000);  // the first block is emptied
  EXPECT_EQ(pool.stats().bytes_in_use, 3 * 64 * KiB);
  EXPECT_EQ(beast::buffers_to_string(chain.data()), text.substr(70'000));
  // Backwards iteration visits the same pieces.
  auto d = chain.data();
  std::size_t total = 0;
  for (auto it = d.end(); it != d.begin();) {
    --it;
    total += asio::const_buffer(*it).size();
  }
  EXPECT_EQ(total, chain.size());
  chain.consume(SIZE_MAX);
  EXPECT_EQ(chain.size(), 0u);
  EXPECT_LE(pool.stats().bytes_in_use, 64 * KiB);  // at most the block kept for reuse
}

TEST(BufferChain, MaxSizeAndAnEmptyPoolThrowLengthError) {
  BuddyPool pool(small_pool());
  BufferChain chain(pool, 100'000);
  EXPECT_THROW(chain.prepare(100'001), std::length_error);
  EXPECT_FALSE(chain.out_of_memory());
  Buffer whole = pool.allocate(4 * MiB);
  EXPECT_THROW(chain.prepare(10), std::length_error);
  EXPECT_TRUE(chain.out_of_memory());
  BufferChain none;
  EXPECT_THROW(none.prepare(1), std::length_error);
}

TEST(BufferChain, TakeGivesOneBufferAndAvoidsTheCopyForOneBlock) {
  BuddyPool pool(small_pool());
  BufferChain chain(pool);
  const std::string small = pattern(1000);
  asio::buffer_copy(chain.prepare(small.size()), asio::buffer(small));
  chain.commit(small.size());
  const std::byte* first =
      asio::const_buffer(*chain.data().begin()).data() == nullptr
          ? nullptr
          : static_cast<const std::byte*>(asio::const_buffer(*chain.data().begin()).data());
  std::error_code ec;
  Buffer one = chain.take(ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(one.data(), first);  // the chain's own block
  EXPECT_EQ(one.size(), 1000u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(one.data()), one.size()), small);
  const std::string big = pattern(150'000);
  asio::buffer_copy(chain.prepare(big.size()), asio::buffer(big));
  chain.commit(big.size());
  Buffer joined = chain.take(ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(joined.capacity(), 256 * KiB);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(joined.data()), joined.size()), big);
  EXPECT_EQ(chain.size(), 0u);
  chain.take(ec);
  EXPECT_EQ(ec, errc::invalid_size);
}

TEST(BufferChain, AsioReadUntilThroughTheV2View) {
  static_assert(asio::is_dynamic_buffer_v2<BufferChainView>::value);
  BuddyPool pool(small_pool());
  asio::io_context io;
  asio::local::stream_protocol::socket a(io), b(io);
  asio::local::connect_pair(a, b);
  const std::string line = pattern(100'000) + "\r\n" + "rest";
  BufferChain chain(pool);
  std::size_t found = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto sender = [&]() -> asio::awaitable<void> {
          co_await asio::async_write(a, asio::buffer(line), use_awaitable);
        };
        asio::co_spawn(io, sender(), asio::detached);
        found = co_await asio::async_read_until(b, dynamic_buffer(chain), "\r\n", use_awaitable);
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  EXPECT_EQ(found, 100'002u);
  EXPECT_EQ(beast::buffers_to_string(chain.data()).substr(0, found), line.substr(0, found));
}

TEST(BufferChain, BeastReadsAChunkedBodyIntoIt) {
  BuddyPool pool(small_pool());
  asio::io_context io;
  asio::local::stream_protocol::socket a(io), b(io);
  asio::local::connect_pair(a, b);
  const std::string body = pattern(300'000);
  std::string wire = "PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (std::size_t at = 0; at < body.size(); at += 70'001) {
    const std::string piece = body.substr(at, 70'001);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    wire += size + piece + "\r\n";
  }
  wire += "0\r\n\r\n";
  std::string got;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto sender = [&]() -> asio::awaitable<void> {
          co_await asio::async_write(a, asio::buffer(wire), use_awaitable);
        };
        asio::co_spawn(io, sender(), asio::detached);
        beast::flat_buffer buf;
        http::request_parser<http::basic_dynamic_body<BufferChain>> p;
        p.body_limit(1 * MiB);
        p.get().body() = BufferChain(pool, 1 * MiB);
        co_await http::async_read(b, buf, p, use_awaitable);
        got = beast::buffers_to_string(p.get().body().data());
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  EXPECT_EQ(got, body);
}

}  // namespace
}  // namespace bufpool
