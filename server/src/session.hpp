// Starting a connection's session, the same for every front end that owns a connection object
// (RPC, RESP): a row in the connection table, the table's way to close it, and the row's removal
// when the session ends. HTTP's session is a coroutine of its own (http_session.cpp).
#pragma once

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <bufpool/detail/receive_pace.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <exception>
#include <memory>
#include <string>

#include "server.hpp"

namespace bufpool::server {

/// "127.0.0.1:54321", or "?" when the peer is already gone; `address` gets the address alone.
inline std::string peer_text(const tcp::socket& socket, std::string* address = nullptr) {
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return "?";
  std::string a = peer.address().to_string();
  std::string text = fmt::format("{}:{}", a, peer.port());
  if (address) *address = std::move(a);
  return text;
}

/// Counts and logs a connection cut off by one of its deadlines (detail::ReceivePace's limits).
inline void note_deadline(Server& server, const char* protocol, std::uint64_t id,
                          detail::ReceivePace::Limit limit) {
  auto& c = server.counters();
  const Config& config = server.config();
  switch (limit) {
    case detail::ReceivePace::Limit::read:
      c.add(c.read_timeouts);
      spdlog::warn("{} connection {}: read timeout ({}), closed", protocol, id,
                   format_duration(config.read_timeout));
      break;
    case detail::ReceivePace::Limit::header:
      c.add(c.header_timeouts);
      spdlog::debug("{} connection {}: request header not whole within {}, closed", protocol, id,
                    format_duration(config.header_timeout));
      break;
    case detail::ReceivePace::Limit::body_rate:
      c.add(c.slow_bodies);
      spdlog::warn("{} connection {}: body below {}/s after {}, closed", protocol, id,
                   format_size(config.min_body_rate), format_duration(config.body_grace));
      break;
  }
}

/// What a refused connection is told before it is closed, in its own protocol's words: the
/// table is full, or its address has max_connections_per_address open.
struct Refusals {
  std::string_view table_full, address_full;
};

/// Adds the connection to the table and runs it. `make(socket, info)` builds the connection (a
/// shared_ptr to a type with `awaitable<void> run()` and `void close(bool force)`). The table's
/// closer posts close() to the connection's executor and does nothing once it is gone. A
/// connection the table refuses is sent its refusal (one non-blocking write, best effort: the
/// socket buffer of a new connection is empty) and closed here.
template <typename Make>
void start_session(Server& server, Transport socket, const char* protocol, Make make,
                   Refusals refusals = {}) {
  auto executor = socket.get_executor();
  using Connection = typename decltype(make(std::move(socket), nullptr))::element_type;
  auto holder = std::make_shared<std::weak_ptr<Connection>>();
  std::string address;
  std::string peer = peer_text(socket.lowest_layer(), &address);
  ConnectionTable::Refusal refused{};
  ConnectionInfo* info = server.connections().add(
      std::move(peer), std::move(address), protocol,
      [holder, executor](bool force) {
        asio::post(executor, [holder, force] {
          if (auto conn = holder->lock()) conn->close(force);
        });
      },
      &refused);
  if (!info) {
    auto& c = server.counters();
    c.add(refused == ConnectionTable::Refusal::address_full ? c.connections_refused_per_address
                                                            : c.connections_rejected);
    const std::string_view text = refused == ConnectionTable::Refusal::address_full
                                      ? refusals.address_full
                                      : refusals.table_full;
    boost::system::error_code ec;
    socket.non_blocking(true, ec);
    if (!text.empty()) socket.write_some(asio::buffer(text), ec);
    socket.shutdown(tcp::socket::shutdown_send, ec);
    return;  // the socket closes here
  }
  std::shared_ptr<Connection> conn = make(std::move(socket), info);
  *holder = conn;
  server.session_started();
  auto session = [conn]() { return conn->run(); };
  asio::co_spawn(executor, session, [&server, info, conn, protocol](std::exception_ptr e) {
    if (e) spdlog::error("{} connection {}: {}", protocol, info->id, exception_text(e));
    conn->close(true);
    server.connections().remove(info);
    server.session_finished();
  });
}

}  // namespace bufpool::server
