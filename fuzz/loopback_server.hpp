// What the protocol harnesses share: one bufpool-server in the fuzzing process, on loopback, with
// small limits and short deadlines, and a way to send it one input as a whole connection: the
// bytes, then the end of the stream, then every reply byte until the server closes. The server's
// real session code reads the input, exactly as from a client; a crash, a sanitizer report or a
// leak anywhere in it ends the run.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "server.hpp"

namespace bufpool::fuzz {

enum class Protocol { http, rpc, resp };

inline server::Server& loopback_server(Protocol p) {
  static std::unique_ptr<server::Server> s = [p] {
    spdlog::set_level(spdlog::level::off);
    server::Config c;
    c.http_listen = {"127.0.0.1", 0, p == Protocol::http};
    c.rpc_listen = {"127.0.0.1", 0, p == Protocol::rpc};
    c.resp_listen = {"127.0.0.1", 0, p == Protocol::resp};
    c.threads = 1;
    c.max_memory = 16u << 20;
    c.chunk_size = 4u << 20;
    c.min_block = 4096;
    c.max_object_size = 1u << 20;
    c.max_keys = 256;
    c.key_arena = 64u << 10;
    c.max_header_size = 4096;
    // Short deadlines: an input that stops early is the end of its stream, but a server that
    // waits on something else must not hold the harness for long.
    c.read_timeout = std::chrono::milliseconds(200);
    c.idle_timeout = std::chrono::milliseconds(200);
    c.header_timeout = std::chrono::milliseconds(200);
    c.alloc_timeout = std::chrono::milliseconds(20);
    c.trim_after = std::chrono::milliseconds(1000);
    server::validate(c);
    auto server = std::make_unique<server::Server>(c);
    server->start();
    return server;
  }();
  return *s;
}

inline std::uint16_t port_of(server::Server& s, Protocol p) {
  return p == Protocol::http ? s.http_port() : p == Protocol::rpc ? s.rpc_port() : s.resp_port();
}

/// One input as one connection. Returns the reply bytes read (bounded; for nothing but coverage).
inline std::size_t exchange(Protocol p, const std::uint8_t* data, std::size_t size) {
  server::Server& s = loopback_server(p);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port_of(s, p));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::size_t got = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    for (std::size_t sent = 0; sent < size;) {
      const ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    shutdown(fd, SHUT_WR);
    char buf[16384];
    for (ssize_t n; got < (8u << 20) && (n = recv(fd, buf, sizeof buf, 0)) > 0;)
      got += static_cast<std::size_t>(n);
  }
  close(fd);
  return got;
}

}  // namespace bufpool::fuzz
