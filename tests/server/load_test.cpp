// The real bufpool-server under concurrency, overload and faults.
#include "bufpool/client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <random>
#include <thread>

#include "server_process.hpp"

namespace bufpool {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using test::run;
using test::ServerProcess;

// A value that proves itself: 16 bytes of {seed, length}, then bytes drawn from the seed.
std::vector<std::byte> self_checking(std::uint64_t seed, std::size_t size) {
  std::vector<std::byte> v(std::max<std::size_t>(size, 16));
  const std::uint64_t len = v.size();
  std::memcpy(v.data(), &seed, 8);
  std::memcpy(v.data() + 8, &len, 8);
  std::mt19937_64 rng(seed);
  for (std::size_t i = 16; i < v.size(); ++i)
    v[i] = static_cast<std::byte>(rng());
  return v;
}
bool intact(const std::byte* p, std::size_t n) {
  if (n < 16) return false;
  std::uint64_t seed, len;
  std::memcpy(&seed, p, 8);
  std::memcpy(&len, p + 8, 8);
  if (len != n) return false;
  std::mt19937_64 rng(seed);
  for (std::size_t i = 16; i < n; ++i)
    if (p[i] != static_cast<std::byte>(rng())) return false;
  return true;
}

std::string http_get(std::uint16_t port, const std::string& path) {
  return run("curl -s http://127.0.0.1:" + std::to_string(port) + path).second;
}
std::uint64_t stat(std::uint16_t port, const std::string& field) {
  const std::string json = http_get(port, "/v1/stats");
  const auto at = json.find("\"" + field + "\": ");
  if (at == std::string::npos) return ~std::uint64_t{0};
  return std::stoull(json.substr(at + field.size() + 4));
}

// Status code of a raw HTTP PUT of `body` (blocking; for threads). It asks for 100-continue, as
// curl does for large bodies, so that a refusal comes before the body is sent.
int http_put(std::uint16_t port, const std::string& key, const std::vector<std::byte>& body) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  const std::string head = "PUT /v1/buffers/" + key + " HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n";
  boost::system::error_code ec;
  asio::write(s, asio::buffer(head), ec);
  asio::streambuf reply;
  auto status = [&]() -> int {
    const std::size_t n = asio::read_until(s, reply, "\r\n\r\n", ec);
    if (ec) return -1;
    std::string text(asio::buffers_begin(reply.data()), asio::buffers_begin(reply.data()) + n);
    reply.consume(n);
    return text.size() < 12 ? -1 : std::stoi(text.substr(9, 3));
  };
  int code = status();
  if (code != 100) return code;
  asio::write(s, asio::buffer(body), ec);
  return ec ? -1 : status();
}

TEST(ServerLoad, SixtyFourClientsPutAndGetWithoutCorruption) {
  ServerProcess server({"--max-memory", "512MiB"});
  std::atomic<int> corrupt{0}, done{0};
  asio::io_context io;
  for (int c = 0; c < 64; ++c) {
    auto client_task = [&, c]() -> asio::awaitable<void> {
      auto ex = co_await asio::this_coro::executor;
      auto client = co_await Client::connect(ex, "127.0.0.1", server.rpc_port);
      std::mt19937_64 rng(static_cast<std::uint64_t>(c));
      for (int i = 0; i < 25; ++i) {
        const std::size_t size = 16 + rng() % (256 * 1024);
        const auto own = self_checking(rng(), size);
        const std::string key = "c" + std::to_string(c) + "-" + std::to_string(i % 5);
        co_await client->put(key, asio::buffer(own));
        auto got = co_await client->get(key);
        if (!got || got->size() != own.size() || std::memcmp(got->data(), own.data(), own.size()))
          ++corrupt;
        // A key that every client overwrites: whatever a GET sees must be one whole value.
        const auto shared = self_checking(rng(), 1000 + rng() % 100'000);
        co_await client->put("shared", asio::buffer(shared));
        auto seen = co_await client->get("shared");
        if (!seen || !intact(seen->data(), seen->size())) ++corrupt;
      }
      client->close();
      ++done;
    };
    // A client is single-executor: each one gets a strand, since two threads run the context.
    asio::co_spawn(asio::make_strand(io), client_task, [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  }
  std::thread second([&] { io.run(); });  // two client threads against two server threads
  io.run();
  second.join();
  EXPECT_EQ(done.load(), 64);
  EXPECT_EQ(corrupt.load(), 0);
  // Also over HTTP, from 8 threads at once.
  std::vector<std::thread> writers;
  std::atomic<int> bad{0};
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const auto v = self_checking(static_cast<std::uint64_t>(t * 100 + i), 50'000);
        if (http_put(server.http_port, "h" + std::to_string(t), v) / 100 != 2) ++bad;
      }
    });
  }
  for (auto& w : writers)
    w.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

// Waits until `pred` holds, up to 10 s.
template <typename P>
bool eventually(P pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(ServerLoad, OverloadWaitsThenRefusesAndGivesEverythingBack) {
  // A 64 MiB pool (4 MiB blocks hold 4 MiB values: 16 fit) and writers asking for 128 MiB in
  // all. Each phase waits for the server's own state (its waiter count), not for time, so that
  // it holds under sanitizers.
  ServerProcess server(
      {"--max-memory", "64MiB", "--max-object-size", "16MiB", "--alloc-timeout", "1s"});
  const auto port = server.http_port;
  auto value = [](int w) { return self_checking(static_cast<std::uint64_t>(w), 4u << 20); };
  for (int w = 0; w < 16; ++w)  // the pool is full
    ASSERT_EQ(http_put(port, "big" + std::to_string(w), value(w)), 201) << w;
  auto writers = [&](int first, std::vector<int>& statuses) {
    std::vector<std::thread> t;
    statuses.assign(8, 0);
    for (int i = 0; i < 8; ++i)
      t.emplace_back([&statuses, &value, port, first, i] {
        statuses[static_cast<std::size_t>(i)] =
            http_put(port, "big" + std::to_string(first + i), value(first + i));
      });
    return t;
  };
  // Eight more wait; eight deletions let them in.
  std::vector<int> waited;
  auto second = writers(16, waited);
  EXPECT_TRUE(eventually([&] { return stat(port, "waiters") == 8; }));
  for (int w = 0; w < 8; ++w)
    run("curl -s -o /dev/null -X DELETE http://127.0.0.1:" + std::to_string(port) +
        "/v1/buffers/big" + std::to_string(w));
  for (auto& t : second)
    t.join();
  EXPECT_EQ(waited, std::vector<int>(8, 201)) << "they waited for memory and got it";
  // Eight more wait, nobody frees anything: 503 after alloc_timeout.
  std::vector<int> refused;
  auto third = writers(24, refused);
  EXPECT_TRUE(eventually([&] { return stat(port, "waiters") == 8; }));
  for (auto& t : third)
    t.join();
  EXPECT_EQ(refused, std::vector<int>(8, 503));
  EXPECT_GE(stat(port, "alloc_timeouts"), 8u);
  // Nothing stored is corrupt; then everything goes back.
  for (int w = 8; w < 24; ++w) {
    const std::string key = "big" + std::to_string(w);
    const std::string body = http_get(port, "/v1/buffers/" + key);
    EXPECT_TRUE(intact(reinterpret_cast<const std::byte*>(body.data()), body.size())) << key;
    run("curl -s -o /dev/null -X DELETE http://127.0.0.1:" + std::to_string(port) + "/v1/buffers/" +
        key);
  }
  EXPECT_EQ(stat(port, "keys"), 0u);
  EXPECT_EQ(stat(port, "bytes_in_use"), 0u) << "every key deleted: nothing held";
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST(ServerFaults, DisconnectInTheMiddleOfABody) {
  ServerProcess server;
  {
    asio::io_context io;
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), server.http_port});
    const std::string head =
        "PUT /v1/buffers/half HTTP/1.1\r\nHost: t\r\nContent-Length: 4194304\r\n\r\n";
    asio::write(s, asio::buffer(head));
    std::vector<char> part(1u << 20, 'x');
    asio::write(s, asio::buffer(part));
  }  // closed mid-body
  EXPECT_TRUE(eventually([&] { return stat(server.http_port, "incomplete_bodies") == 1; }));
  EXPECT_TRUE(eventually([&] { return stat(server.http_port, "bytes_in_use") == 0; }))
      << "the buffer went back to the pool";
  EXPECT_EQ(run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:" +
                std::to_string(server.http_port) + "/v1/buffers/half")
                .second,
            "404")
      << "nothing stored";
  // The same over RPC: a PUT frame whose payload stops short.
  {
    asio::io_context io;
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), server.rpc_port});
    rpc::FrameHeader h;
    h.opcode = static_cast<std::uint8_t>(rpc::Opcode::put);
    h.request_id = 1;
    h.key_length = 4;
    h.payload_length = 1u << 20;
    auto bytes = rpc::encode(h);
    asio::write(s, asio::buffer(bytes));
    asio::write(s, asio::buffer(std::string("half") + std::string(1000, 'y')));
  }
  EXPECT_TRUE(eventually([&] { return stat(server.http_port, "bytes_in_use") == 0; }));
  EXPECT_EQ(stat(server.http_port, "keys"), 0u);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST(ServerFaults, SlowClientsAreCutOff) {
  ServerProcess server({"--read-timeout", "300ms"});
  auto closed_within = [&](const std::string& partial, std::chrono::milliseconds limit) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), server.http_port});
    asio::write(s, asio::buffer(partial));
    const auto t0 = std::chrono::steady_clock::now();
    char c;
    boost::system::error_code ec;
    s.read_some(asio::buffer(&c, 1), ec);  // returns when the server closes
    return ec && std::chrono::steady_clock::now() - t0 < limit;
  };
  EXPECT_TRUE(closed_within("PUT /v1/buffers/slow HTTP/1.1\r\nContent-Le", std::chrono::seconds(3)))
      << "a header that stalls";
  EXPECT_TRUE(closed_within(
      "PUT /v1/buffers/slow HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789",
      std::chrono::seconds(3)))
      << "a body that stalls";
  EXPECT_GE(stat(server.http_port, "read_timeouts"), 2u);
  EXPECT_EQ(stat(server.http_port, "bytes_in_use"), 0u);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST(ServerFaults, FloodAboveMaxConnections) {
  ServerProcess server({"--max-connections", "16"});
  asio::io_context io;
  std::vector<tcp::socket> idle;
  for (int i = 0; i < 100; ++i) {
    idle.emplace_back(io);
    idle.back().connect({asio::ip::make_address("127.0.0.1"), server.http_port});
  }
  // The server stays up and answers a new client; the longest-idle connections made room.
  EXPECT_TRUE(eventually([&] { return http_get(server.http_port, "/healthz") == "ok\n"; }));
  EXPECT_GT(stat(server.http_port, "evicted"), 0u);
  EXPECT_LE(stat(server.http_port, "open"), 16u + 64u);
  idle.clear();
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST(ServerFaults, SigtermDuringUploads) {
  ServerProcess server({"--shutdown-timeout", "2s"});
  asio::io_context io;
  // One upload finishes within the shutdown timeout and is acknowledged; another never does.
  tcp::socket finishing(io), stuck(io);
  finishing.connect({asio::ip::make_address("127.0.0.1"), server.http_port});
  stuck.connect({asio::ip::make_address("127.0.0.1"), server.http_port});
  const std::string head =
      "PUT /v1/buffers/up HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n";
  const std::vector<char> half(512 * 1024, 'z');
  asio::write(finishing, asio::buffer(head));
  asio::write(finishing, asio::buffer(half));
  asio::write(stuck,
              asio::buffer(std::string(
                  "PUT /v1/buffers/stuck HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab")));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto t0 = std::chrono::steady_clock::now();
  server.signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  asio::write(finishing, asio::buffer(half));
  asio::streambuf reply;
  asio::read_until(finishing, reply, "\r\n\r\n");
  const std::string text(asio::buffers_begin(reply.data()), asio::buffers_end(reply.data()));
  EXPECT_NE(text.find("HTTP/1.1 201"), std::string::npos) << text;
  EXPECT_NE(text.find("Connection: close"), std::string::npos) << "no more requests after it";
  EXPECT_EQ(server.wait_exit(), 0) << server.log();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, std::chrono::seconds(5)) << "the stuck upload was cut at the shutdown timeout";
}

}  // namespace
}  // namespace bufpool

namespace bufpool {
namespace {

// Random bytes, and random mutations of valid requests, at both ports: the server answers or
// closes, never crashes, and holds no memory afterwards.
TEST(ServerFaults, GarbageNeverCrashesTheServer) {
  constexpr std::uint64_t seed = 0x6a7ba6e;
  std::printf("garbage: seed=%llu\n", static_cast<unsigned long long>(seed));
  ServerProcess server({"--read-timeout", "200ms", "--max-object-size", "1MiB"});
  std::mt19937_64 rng(seed);
  const std::string http_ok =
      "PUT /v1/buffers/g HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789";
  rpc::FrameHeader h;
  h.opcode = static_cast<std::uint8_t>(rpc::Opcode::put);
  h.request_id = 5;
  h.key_length = 1;
  h.payload_length = 4;
  const auto rpc_header = rpc::encode(h);
  std::string rpc_ok(reinterpret_cast<const char*>(rpc_header.data()), rpc_header.size());
  rpc_ok += "gabcd";
  for (int i = 0; i < 300; ++i) {
    const bool http = i % 2 == 0;
    std::string bytes = http ? http_ok : rpc_ok;
    if (i % 3 == 0) {  // pure noise
      bytes.resize(1 + rng() % 300);
      for (auto& c : bytes)
        c = static_cast<char>(rng());
    } else {  // a valid request with a few bytes changed
      for (int k = 0, flips = 1 + static_cast<int>(rng() % 4); k < flips; ++k)
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    asio::io_context io;
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), http ? server.http_port : server.rpc_port});
    boost::system::error_code ec;
    asio::write(s, asio::buffer(bytes), ec);
    s.shutdown(tcp::socket::shutdown_send, ec);  // no more: the server answers, times out or closes
    char buf[4096];
    while (!ec)
      s.read_some(asio::buffer(buf), ec);
  }
  EXPECT_EQ(http_get(server.http_port, "/healthz"), "ok\n");
  // Every live pool buffer is a stored value: nothing is held for a connection that is gone.
  EXPECT_TRUE(eventually([&] {
    return stat(server.http_port, "bytes_requested") == stat(server.http_port, "value_bytes");
  })) << http_get(server.http_port, "/v1/stats");
  EXPECT_EQ(server.stop(), 0) << server.log();
}

}  // namespace
}  // namespace bufpool
