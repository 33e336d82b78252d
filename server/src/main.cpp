// bufpool-server: see --help, configs/bufpool.toml and docs/protocol.md.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <exception>

#include <bufpool/app/tls.hpp>
#include "config.hpp"
#include "server.hpp"

namespace {

// One GET /healthz on a connected stream (TCP, or TLS after its handshake): the first bytes of
// the reply.
template <typename Stream>
boost::asio::awaitable<std::string> ask_health(Stream& stream, std::string request) {
  namespace asio = boost::asio;
  co_await asio::async_write(stream, asio::buffer(request), asio::use_awaitable);
  std::string reply(64, '\0');
  // The server closes after its answer (Connection: close); over TLS without a close_notify,
  // which is the stream's "truncated" error: what was read counts.
  auto [ec, n] =
      co_await asio::async_read(stream, asio::buffer(reply), asio::as_tuple(asio::use_awaitable));
  reply.resize(n);
  co_return reply;
}

// GET /healthz from the configured HTTP listener (a wildcard address is asked on loopback), with
// a 2-second limit, over TLS when tls.http is on (the certificate is not checked: this asks the
// local server whether it is alive, whatever name its certificate carries). 0 when it answers 200.
int health_check(const bufpool::server::Config& c) {
  namespace asio = boost::asio;
  namespace ssl = asio::ssl;
  using tcp = asio::ip::tcp;
  if (!c.http_listen.enabled || c.http_listen.port == 0) {
    std::fprintf(stderr, "health check: no fixed HTTP port configured\n");
    return 1;
  }
  std::string host = c.http_listen.host;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  asio::io_context io;
  std::string reply, error = "no answer within 2 s";
  const std::string request =
      "GET /healthz HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  auto check = [&]() -> asio::awaitable<void> {
    tcp::resolver resolver(io);
    auto endpoints = co_await resolver.async_resolve(host, std::to_string(c.http_listen.port),
                                                     asio::use_awaitable);
    tcp::socket socket(io);
    co_await asio::async_connect(socket, endpoints, asio::use_awaitable);
    if (!c.tls_http) {
      reply = co_await ask_health(socket, request);
      co_return;
    }
    ssl::context context(ssl::context::tls_client);
    context.set_verify_mode(ssl::verify_none);
    ssl::stream<tcp::socket> stream(std::move(socket), context);
    co_await stream.async_handshake(ssl::stream_base::client, asio::use_awaitable);
    reply = co_await ask_health(stream, request);
  };
  asio::co_spawn(io, check, [&](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      error = x.what();
    }
  });
  io.run_for(std::chrono::seconds(2));
  if (reply.starts_with("HTTP/1.1 200")) return 0;
  std::fprintf(stderr, "health check: %s\n",
               reply.empty() ? error.c_str() : reply.substr(0, reply.find('\r')).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace bufpool::server;
  Invocation inv;
  try {
    inv = parse_invocation(argc, argv);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "bufpool-server: %s\n", e.what());
    return 2;
  }
  if (inv.show_help) {
    std::fputs(inv.help_text.c_str(), stdout);
    return 0;
  }
  if (inv.show_version) {
    std::printf("bufpool-server %s\n", version_string);
    return 0;
  }
  if (inv.health_check) return health_check(inv.config);
  if (inv.check_config) {
    if (inv.config.tls_any()) {  // the files must load, as at start
      try {
        bufpool::TlsContext::load(inv.config.cert_file, inv.config.key_file);
      } catch (const std::runtime_error& e) {
        std::fprintf(stderr, "bufpool-server: config error: %s\n", e.what());
        return 2;
      }
    }
    for (const auto& line : inv.config.describe())
      std::printf("%s\n", line.c_str());
    std::printf("configuration ok%s\n",
                inv.config_file ? fmt::format(" ({})", *inv.config_file).c_str() : "");
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(inv.config.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::info("bufpool-server {} starting{}", version_string,
               inv.config_file ? fmt::format(" with {}", *inv.config_file) : "");
  for (const auto& line : inv.config.describe())
    spdlog::info("config {}", line);
  try {
    Server server(inv.config);
    server.start();
    server.wait();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  return 0;
}
