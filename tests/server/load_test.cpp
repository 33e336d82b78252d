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

// Status code of a raw HTTP PUT of `body` (blocking; for threads).
int http_put(std::uint16_t port, const std::string& key, const std::vector<std::byte>& body) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  const std::string head = "PUT /v1/buffers/" + key + " HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n";
  boost::system::error_code ec;
  std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
  asio::write(s, bufs, ec);  // may fail if the server refuses early; the status says why
  asio::streambuf reply;
  asio::read_until(s, reply, "\r\n", ec);
  std::string line(asio::buffers_begin(reply.data()), asio::buffers_end(reply.data()));
  if (line.size() < 12) return -1;
  return std::stoi(line.substr(9, 3));
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

TEST(ServerLoad, OverloadWaitsThenRefusesAndGivesEverythingBack) {
  // A 64 MiB pool; 24 writers of 8 MiB each (192 MiB) that each hold their value for 300 ms.
  ServerProcess server(
      {"--max-memory", "64MiB", "--max-object-size", "16MiB", "--alloc-timeout", "500ms"});
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 24; ++w) {
    writers.emplace_back([&, w] {
      const auto v = self_checking(static_cast<std::uint64_t>(w), 8u << 20);
      const std::string key = "big" + std::to_string(w);
      const int status = http_put(server.http_port, key, v);
      if (status == 201) {
        ++ok;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        run("curl -s -o /dev/null -X DELETE http://127.0.0.1:" + std::to_string(server.http_port) +
            "/v1/buffers/" + key);
      } else if (status == 503) {
        ++refused;
      } else {
        ++other;
      }
    });
  }
  for (auto& w : writers)
    w.join();
  std::printf("overload: %d stored, %d refused with 503, %d other\n", ok.load(), refused.load(),
              other.load());
  EXPECT_GT(ok.load(), 8) << "more than one pool's worth: some waited for memory and got it";
  EXPECT_GT(refused.load(), 0) << "some waited past alloc_timeout";
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(stat(server.http_port, "waits"), 0u);
  EXPECT_EQ(stat(server.http_port, "bytes_in_use"), 0u) << "every key deleted: nothing held";
  EXPECT_EQ(stat(server.http_port, "keys"), 0u);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

// Waits until `pred` holds, up to 5 s.
template <typename P>
bool eventually(P pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
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
