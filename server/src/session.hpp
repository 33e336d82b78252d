// Starting a connection's session, the same for every front end that owns a connection object
// (RPC, RESP): a row in the connection table, the table's way to close it, and the row's removal
// when the session ends. HTTP's session is a coroutine of its own (http_session.cpp).
#pragma once

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <exception>
#include <memory>
#include <string>

#include "server.hpp"

namespace bufpool::server {

/// "127.0.0.1:54321", or "?" when the peer is already gone.
inline std::string peer_text(const tcp::socket& socket) {
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  return ec ? std::string("?") : fmt::format("{}:{}", peer.address().to_string(), peer.port());
}

/// Adds the connection to the table and runs it. `make(socket, info)` builds the connection (a
/// shared_ptr to a type with `awaitable<void> run()` and `void close(bool force)`). The table's
/// closer posts close() to the connection's executor and does nothing once it is gone; when the
/// table is full the socket closes here.
template <typename Make>
void start_session(Server& server, tcp::socket socket, const char* protocol, Make make) {
  auto executor = socket.get_executor();
  using Connection = typename decltype(make(std::move(socket), nullptr))::element_type;
  auto holder = std::make_shared<std::weak_ptr<Connection>>();
  ConnectionInfo* info =
      server.connections().add(peer_text(socket), protocol, [holder, executor](bool force) {
        asio::post(executor, [holder, force] {
          if (auto conn = holder->lock()) conn->close(force);
        });
      });
  if (!info) {
    server.counters().add(server.counters().connections_rejected);
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
