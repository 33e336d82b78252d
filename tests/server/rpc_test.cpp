// The RPC front end of the real bufpool-server, driven by bufpool::Client and by raw sockets.
#include "bufpool/client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <random>

#include "async_support.hpp"
#include "server_process.hpp"

namespace bufpool {
namespace {

namespace asio = boost::asio;
using test::ServerProcess;

std::vector<std::byte> pattern(std::size_t n, std::uint64_t seed) {
  std::vector<std::byte> v(n);
  std::mt19937_64 rng(seed);
  for (auto& b : v)
    b = static_cast<std::byte>(rng());
  return v;
}

bool same(const Buffer& b, const std::vector<std::byte>& v) {
  return b.size() == v.size() && (v.empty() || std::memcmp(b.data(), v.data(), v.size()) == 0);
}

using test::run_async;

TEST(RpcServer, RoundTripsOfEveryOperation) {
  ServerProcess server;
  run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await Client::connect(ex, "127.0.0.1", server.rpc_port);
    co_await c->ping();
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{4096},
                             std::size_t{1} << 20, std::size_t{64} << 20}) {
      const auto value = pattern(size, size);
      const std::string key = "k" + std::to_string(size);
      EXPECT_TRUE(co_await c->put(key, asio::buffer(value))) << size;
      EXPECT_FALSE(co_await c->put(key, asio::buffer(value))) << "replaced, not created";
      auto got = co_await c->get(key);
      EXPECT_TRUE(got && same(*got, value)) << "size " << size;
      Buffer echoed = co_await c->echo(asio::buffer(value));
      EXPECT_TRUE(same(echoed, value)) << "echo " << size;
      EXPECT_TRUE(co_await c->erase(key));
      EXPECT_FALSE(co_await c->erase(key));
      EXPECT_FALSE(co_await c->get(key));
    }
    bool refused = false;
    try {
      co_await c->put("bad key!", asio::buffer("x", 1));
    } catch (const std::system_error& e) {
      refused = e.code() == make_error_code(errc::invalid_argument);
    }
    EXPECT_TRUE(refused) << "checked on the client: the connection stays";
    co_await c->ping();
    const std::string stats = co_await c->stats();
    EXPECT_NE(stats.find("\"rpc\": {\"requests\""), std::string::npos) << stats;
    c->close();
  });
  EXPECT_EQ(server.stop(), 0) << server.log();
}

// A full key space is STORAGE_FULL, not UNAVAILABLE ("retry later"): a client that retried
// UNAVAILABLE would retry forever. HTTP says 507 for the same.
TEST(RpcServer, AFullKeySpaceIsStorageFull) {
  ServerProcess server({"--max-keys", "2"});
  run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await Client::connect(ex, "127.0.0.1", server.rpc_port);
    EXPECT_TRUE(co_await c->put("a", asio::buffer("1", 1)));
    EXPECT_TRUE(co_await c->put("b", asio::buffer("2", 1)));
    std::error_code code;
    try {
      co_await c->put("c", asio::buffer("3", 1));
    } catch (const std::system_error& e) {
      code = e.code();
    }
    EXPECT_EQ(code, rpc::make_error_code(rpc::Status::storage_full)) << code.message();
    EXPECT_FALSE(co_await c->put("a", asio::buffer("4", 1))) << "replacing a key still works";
    EXPECT_TRUE(co_await c->erase("b"));
    EXPECT_TRUE(co_await c->put("c", asio::buffer("3", 1))) << "room after a delete";
    c->close();
  });
}

TEST(RpcServer, PipelinedCallsOnOneConnection) {
  ServerProcess server;
  run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await Client::connect(ex, "127.0.0.1", server.rpc_port);
    constexpr int n = 200;
    std::vector<std::vector<std::byte>> values;
    for (int i = 0; i < n; ++i)
      values.push_back(
          pattern(100 + static_cast<std::size_t>(i) * 37, static_cast<std::uint64_t>(i)));
    // Start every PUT before awaiting any: they share the connection and its write batches.
    std::vector<std::future<bool>> puts;
    for (int i = 0; i < n; ++i) {
      auto op = [c, &values, i]() -> asio::awaitable<bool> {
        co_return co_await c->put("p" + std::to_string(i),
                                  asio::buffer(values[static_cast<std::size_t>(i)]));
      };
      puts.push_back(asio::co_spawn(ex, op, asio::use_future));
    }
    EXPECT_GE(c->in_flight(), 1u);
    int done = 0;
    while (done < n) {  // let the I/O run while the futures fill
      asio::steady_timer t(ex, std::chrono::milliseconds(1));
      co_await t.async_wait(asio::use_awaitable);
      done = 0;
      for (auto& f : puts)
        done += f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    }
    for (auto& f : puts)
      EXPECT_TRUE(f.get());
    for (int i = 0; i < n; ++i) {
      auto got = co_await c->get("p" + std::to_string(i));
      EXPECT_TRUE(got && same(*got, values[static_cast<std::size_t>(i)])) << i;
    }
    c->close();
  });
  EXPECT_EQ(server.stop(), 0) << server.log();
}

// Raw frames: a malformed frame gets an error response naming its request, then the connection
// closes; the server keeps serving others.
std::vector<std::byte> frame(std::uint8_t opcode, std::uint64_t id, std::string_view key,
                             std::uint64_t payload_length, std::uint32_t magic = rpc::magic) {
  rpc::FrameHeader h;
  h.opcode = opcode;
  h.request_id = id;
  h.key_length = static_cast<std::uint32_t>(key.size());
  h.payload_length = payload_length;
  auto bytes = rpc::encode(h);
  std::memcpy(bytes.data(), &magic, 4);  // little-endian host
  std::vector<std::byte> out(bytes.begin(), bytes.end());
  for (char ch : key)
    out.push_back(static_cast<std::byte>(ch));
  return out;
}

struct RawReply {
  rpc::FrameHeader header;
  std::string payload;
  bool closed_after = false;
};

// Sends `bytes`, reads one reply, then (if `expect_close`) checks that the server closes.
RawReply send_raw(std::uint16_t port, const std::vector<std::byte>& bytes,
                  bool expect_close = true) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(s, asio::buffer(bytes));
  RawReply r;
  rpc::HeaderBytes hb;
  asio::read(s, asio::buffer(hb));
  EXPECT_EQ(rpc::decode(hb.data(), r.header), rpc::DecodeError::none);
  r.payload.resize(r.header.payload_length);
  asio::read(s, asio::buffer(r.payload));
  if (!expect_close) return r;
  boost::system::error_code ec;
  char extra;
  asio::read(s, asio::buffer(&extra, 1), ec);
  r.closed_after = ec == asio::error::eof || ec == asio::error::connection_reset;
  return r;
}

TEST(RpcServer, MalformedFramesGetAnErrorThenClose) {
  ServerProcess server({"--max-object-size", "1MiB"});
  {
    auto r = send_raw(server.rpc_port, frame(1, 7, "", 0, 0xdeadbeef));
    EXPECT_EQ(r.header.status, rpc::Status::bad_request);
    EXPECT_EQ(r.header.request_id, 0u) << "a bad magic cannot be trusted for its id";
    EXPECT_TRUE(r.closed_after);
  }
  {
    auto r = send_raw(server.rpc_port, frame(99, 8, "", 0));
    EXPECT_EQ(r.header.status, rpc::Status::bad_request);
    EXPECT_EQ(r.header.request_id, 8u);
    EXPECT_EQ(r.payload, "unknown opcode");
    EXPECT_TRUE(r.closed_after);
  }
  {
    auto r = send_raw(server.rpc_port, frame(static_cast<std::uint8_t>(rpc::Opcode::put), 9, "key",
                                             std::uint64_t{2} << 20));
    EXPECT_EQ(r.header.status, rpc::Status::too_large);
    EXPECT_EQ(r.header.request_id, 9u);
    EXPECT_TRUE(r.closed_after);
  }
  {
    auto r = send_raw(server.rpc_port,
                      frame(static_cast<std::uint8_t>(rpc::Opcode::get), 10, "bad key!", 0));
    EXPECT_EQ(r.header.status, rpc::Status::bad_request);
    EXPECT_TRUE(r.closed_after);
  }
  {
    auto r =
        send_raw(server.rpc_port, frame(static_cast<std::uint8_t>(rpc::Opcode::get), 11, "", 0));
    EXPECT_EQ(r.header.status, rpc::Status::bad_request) << "GET needs a key";
  }
  {
    auto bytes = frame(static_cast<std::uint8_t>(rpc::Opcode::ping), 13, "", 0);
    bytes[6] = std::byte{rpc::flags::response};  // a response sent as a request
    auto r = send_raw(server.rpc_port, bytes);
    EXPECT_EQ(r.header.status, rpc::Status::bad_request);
    EXPECT_EQ(r.header.request_id, 13u);
    EXPECT_TRUE(r.closed_after);
  }
  // Still serving.
  auto r = send_raw(server.rpc_port, frame(static_cast<std::uint8_t>(rpc::Opcode::ping), 12, "", 0),
                    false);
  EXPECT_EQ(r.header.status, rpc::Status::ok);
  EXPECT_EQ(r.header.request_id, 12u);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

}  // namespace
}  // namespace bufpool
