// bufpool-server: see --help, configs/bufpool.toml and docs/protocol.md.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <exception>

#include <bufpool/app/tls.hpp>
#include "config.hpp"
#include "server.hpp"

namespace {

// GET /healthz from the configured HTTP listener (a wildcard address is asked on loopback), with
// a 2-second limit. 0 when it answers 200.
int health_check(const bufpool::server::Config& c) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  if (!c.http_listen.enabled || c.http_listen.port == 0) {
    std::fprintf(stderr, "health check: no fixed HTTP port configured\n");
    return 1;
  }
  std::string host = c.http_listen.host;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  asio::io_context io;
  tcp::socket socket(io);
  std::string reply;
  boost::system::error_code error = asio::error::timed_out;
  auto request = std::make_shared<std::string>("GET /healthz HTTP/1.1\r\nHost: " + host +
                                               "\r\nConnection: close\r\n\r\n");
  tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(host, std::to_string(c.http_listen.port), error);
  if (error) {
    std::fprintf(stderr, "health check: %s\n", error.message().c_str());
    return 1;
  }
  asio::async_connect(socket, endpoints, [&](boost::system::error_code ec, const tcp::endpoint&) {
    if (ec) {
      error = ec;
      return;
    }
    asio::async_write(
        socket, asio::buffer(*request), [&](boost::system::error_code wec, std::size_t) {
          if (wec) {
            error = wec;
            return;
          }
          reply.resize(64);
          asio::async_read(socket, asio::buffer(reply),
                           [&](boost::system::error_code rec, std::size_t n) {
                             reply.resize(n);
                             error = rec == asio::error::eof ? boost::system::error_code{} : rec;
                           });
        });
  });
  io.run_for(std::chrono::seconds(2));
  if (reply.starts_with("HTTP/1.1 200")) return 0;
  std::fprintf(stderr, "health check: %s\n",
               reply.empty() ? error.message().c_str() : reply.substr(0, reply.find('\r')).c_str());
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
