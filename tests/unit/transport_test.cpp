// detail::Transport over real loopback sockets: plain TCP as the socket itself, and a TLS-shaped
// layer (a pass-through TlsLayer that counts its writes: no cipher, the same calls) for what
// Transport does over TLS: reads decrypted ahead, direct writes refused, small buffers gathered
// into records of at most 16 KiB.
#include "bufpool/detail/transport.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <numeric>
#include <thread>
#include <vector>

#include "loopback.hpp"

namespace {

namespace asio = boost::asio;
using bufpool::detail::TlsLayer;
using bufpool::detail::Transport;
using error_code = boost::system::error_code;
using tcp = asio::ip::tcp;

class PassThrough final : public TlsLayer {
 public:
  PassThrough(tcp::socket s, std::vector<std::size_t>& writes)
      : socket_(std::move(s)), writes_(writes) {}
  tcp::socket& socket() noexcept override { return socket_; }
  void async_read_some(asio::mutable_buffer b, Handler h) override {
    socket_.async_read_some(b, std::move(h));
  }
  void async_write_some(asio::const_buffer b, Handler h) override {
    writes_.push_back(b.size());
    asio::async_write(socket_, b, std::move(h));  // a record goes out whole
  }

 private:
  tcp::socket socket_;
  std::vector<std::size_t>& writes_;
};

std::vector<char> pattern(std::size_t n, char seed) {
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<char>(seed + static_cast<char>(i * 7));
  return v;
}

TEST(Transport, OverTlsSmallBuffersAreGatheredIntoRecords) {
  bufpool::test::Loopback l;
  std::vector<std::size_t> records;
  Transport t(std::make_unique<PassThrough>(std::move(l.near), records));
  // 16 replies of a 32-byte header and a 4 KiB value, as a pipelined RPC batch.
  std::vector<std::vector<char>> parts;
  std::vector<asio::const_buffer> buffers;
  for (int i = 0; i < 16; ++i) {
    parts.push_back(pattern(32, static_cast<char>(i)));
    parts.push_back(pattern(4096, static_cast<char>(100 + i)));
  }
  std::vector<char> expected;
  for (const auto& p : parts) {
    buffers.emplace_back(p.data(), p.size());
    expected.insert(expected.end(), p.begin(), p.end());
  }
  error_code ec;
  EXPECT_EQ(t.write_some(buffers, ec), 0u);
  EXPECT_EQ(ec, asio::error::would_block) << "no direct write over TLS";
  std::size_t written = 0;
  asio::async_write(t, buffers, [&](error_code e, std::size_t n) {
    ec = e;
    written = n;
  });
  std::vector<char> got(expected.size());
  l.far.non_blocking(false);
  std::thread reader([&] { asio::read(l.far, asio::buffer(got)); });
  l.io.run();
  reader.join();
  EXPECT_FALSE(ec);
  EXPECT_EQ(written, expected.size());
  EXPECT_EQ(got, expected) << "the bytes, in order";
  EXPECT_EQ(records.size(), (expected.size() + 16383) / 16384) << "records of 16 KiB, not 32";
  for (std::size_t r : records)
    EXPECT_LE(r, 16384u);
}

TEST(Transport, OverTlsReadsComeThroughTheBytesReadAhead) {
  bufpool::test::Loopback l;
  std::vector<std::size_t> records;
  Transport t(std::make_unique<PassThrough>(std::move(l.near), records));
  const std::vector<char> sent = pattern(6000, 3);
  asio::write(l.far, asio::buffer(sent));
  error_code ec;
  char buf[4000];
  EXPECT_EQ(t.read_some(asio::buffer(buf), ec), 0u);
  EXPECT_EQ(ec, asio::error::would_block) << "nothing decrypted ahead yet";
  std::vector<char> got;
  auto run = [&]() -> asio::awaitable<void> {
    // The readiness wait reads ahead; the direct read then takes from it.
    auto [wec] = co_await t.async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
    EXPECT_FALSE(wec);
    error_code rec;
    const std::size_t n = t.read_some(asio::buffer(buf, 1000), rec);
    EXPECT_FALSE(rec);
    got.insert(got.end(), buf, buf + n);
    // An async read takes what is still ahead before reading the socket again.
    while (got.size() < sent.size()) {
      auto [e, m] =
          co_await t.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (e) break;
      got.insert(got.end(), buf, buf + m);
    }
  };
  asio::co_spawn(l.io, run, asio::detached);
  l.io.run();
  EXPECT_EQ(got, sent);
  EXPECT_TRUE(records.empty());
}

TEST(Transport, PlainTcpIsTheSocketItself) {
  bufpool::test::Loopback l;
  Transport t(std::move(l.near));
  EXPECT_FALSE(t.tls());
  const std::vector<char> sent = pattern(100, 9);
  error_code ec;
  EXPECT_EQ(t.write_some(asio::buffer(sent), ec), sent.size()) << "the direct write";
  std::vector<char> got(sent.size());
  l.far.non_blocking(false);
  asio::read(l.far, asio::buffer(got));
  EXPECT_EQ(got, sent);
  char buf[16];
  EXPECT_EQ(t.read_some(asio::buffer(buf), ec), 0u);
  EXPECT_EQ(ec, asio::error::would_block) << "a non-blocking socket with nothing to read";
}

}  // namespace
