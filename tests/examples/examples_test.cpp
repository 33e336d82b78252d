// Runs the examples (built against the installed package by the examples_build test) on 127.0.0.1
// and checks the bytes they send back.
#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "../server/server_process.hpp"

namespace bufpool {
namespace {

namespace asio = boost::asio;
using test::ChildProcess;
using test::TempDir;

std::string example(const std::string& name) {
  return std::string(EXAMPLES_DIR) + "/" + name;
}

// Starts an example server and reads the port from its "listening on PORT" line.
struct ExampleServer {
  TempDir dir;
  ChildProcess process;
  std::uint16_t port = 0;

  explicit ExampleServer(std::vector<std::string> argv)
      : process(std::move(argv), dir.file("out.log")) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      const std::string out = process.log();
      if (auto at = out.find("listening on "); at != std::string::npos && out.ends_with("\n")) {
        port = static_cast<std::uint16_t>(std::stoi(out.substr(at + 13)));
        return;
      }
      if (!process.running()) throw std::runtime_error("example exited at start:\n" + out);
      if (std::chrono::steady_clock::now() > until) throw std::runtime_error("start timeout");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
};

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);  // fixed seed: the same bytes every run
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(rng());
  return s;
}

TEST(Examples, EchoServerEchoesLengthPrefixedMessages) {
  ExampleServer server({example("echo_server"), "0", "64"});
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), server.port});
  for (std::size_t size : {std::size_t{0}, std::size_t{5}, std::size_t{3} << 20}) {
    SCOPED_TRACE(size);
    const std::string payload = random_bytes(size, static_cast<unsigned>(size));
    std::string message(4, '\0');
    for (int i = 0; i < 4; ++i)
      message[static_cast<std::size_t>(i)] = static_cast<char>(size >> (24 - 8 * i));
    message += payload;
    asio::write(s, asio::buffer(message));
    std::string back(message.size(), '\0');
    asio::read(s, asio::buffer(back));
    EXPECT_EQ(back, message);
  }
  EXPECT_EQ(server.process.stop(SIGKILL), 128 + SIGKILL);
}

std::string http(std::uint16_t port, const std::string& request) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(s, asio::buffer(request));
  std::string got;
  std::array<char, 65536> buf;
  boost::system::error_code ec;
  for (std::size_t n; (n = s.read_some(asio::buffer(buf), ec)) > 0 || !ec;)
    got.append(buf.data(), n);
  return got;
}

void round_trip(const std::string& body_mode) {
  SCOPED_TRACE(body_mode);
  ExampleServer server({example("beast_server"), "--body", body_mode, "--max-memory", "64"});
  const std::string value = random_bytes(1'000'000, 7);
  const std::string put = http(server.port,
                               "PUT /v1/buffers/k HTTP/1.1\r\nHost: x\r\n"
                               "Connection: close\r\nContent-Length: 1000000\r\n\r\n" +
                                   value);
  EXPECT_TRUE(put.starts_with("HTTP/1.1 201 Created\r\n")) << put;
  const std::string get =
      http(server.port, "GET /v1/buffers/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(get.starts_with("HTTP/1.1 200 OK\r\n")) << get.substr(0, 200);
  EXPECT_NE(get.find("Content-Length: 1000000\r\n"), std::string::npos);
  EXPECT_EQ(get.substr(get.find("\r\n\r\n") + 4), value);
  const std::string missing =
      http(server.port, "GET /v1/buffers/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(missing.starts_with("HTTP/1.1 404 Not Found\r\n")) << missing;
  EXPECT_EQ(server.process.stop(SIGTERM), 0);
}

TEST(Examples, BeastServerStoresAndServesWithThePoolBody) {
  round_trip("pool");
}

TEST(Examples, BeastServerWithVectorBodyAgrees) {
  round_trip("vector");
}

TEST(Examples, BeastServerRefusesABadOption) {
  const auto [rc, out] = test::run(example("beast_server") + " --body nope 2>&1");
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("usage: beast_server"), std::string::npos);
}

TEST(Examples, RpcServiceCallsItsCustomOpcode) {
  const auto [rc, out] = test::run(example("rpc_service") + " hello 'zero copy' ''");
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "HELLO\nZERO COPY\n\n");
}

}  // namespace
}  // namespace bufpool
