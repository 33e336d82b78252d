// The buffer store as an RPC service (docs/protocol.md), on bufpool::rpc.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server.hpp"
#include "session.hpp"

namespace bufpool::server {

namespace {

// Feeds one connection's activity into its table row and the server's counters.
class TableObserver : public rpc::ConnectionObserver {
 public:
  TableObserver(Server& server, ConnectionInfo* info)
      : server_(server),
        info_(info),
        role_(server.config().tokens.enabled() ? Role::none : Role::admin) {}

  // Authentication: every opcode but AUTH needs a role once the server has tokens.
  std::optional<rpc::Response> admit(std::uint8_t opcode) override {
    const Tokens& tokens = server_.config().tokens;
    if (!tokens.enabled()) return std::nullopt;
    const Role need = needed(opcode);
    if (need == Role::none || tokens.allows(role_, need)) return std::nullopt;
    if (role_ == Role::none)
      return rpc::Response::error(rpc::Status::unauthenticated, "AUTH with a token first");
    return rpc::Response::error(
        rpc::Status::forbidden,
        fmt::format("this needs a {} token; this one is {}", to_string(need), to_string(role_)));
  }
  // AUTH's handler (make_store_service): the role of `token`, kept for the connection; a token
  // that is not valid leaves the connection as it was.
  rpc::Response authenticate(std::string_view token) {
    const Tokens& tokens = server_.config().tokens;
    if (!tokens.enabled()) return rpc::Response{rpc::Status::ok, 0, std::string("admin")};
    const Role r = tokens.role_of(token);
    if (r == Role::none)
      return rpc::Response::error(rpc::Status::unauthenticated, "the token is not valid");
    role_ = r;
    return rpc::Response{rpc::Status::ok, 0, std::string(to_string(r))};
  }
  void bytes_in(std::size_t n) override {
    info_->bytes_in.fetch_add(n, std::memory_order_relaxed);
    server_.counters().add(server_.counters().bytes_in, n);
    info_->touch();
  }
  void bytes_out(std::size_t n) override {
    info_->bytes_out.fetch_add(n, std::memory_order_relaxed);
    server_.counters().add(server_.counters().bytes_out, n);
    info_->touch();
  }
  void request_done(std::uint8_t, rpc::Status status) override {
    info_->requests.fetch_add(1, std::memory_order_relaxed);
    server_.counters().add(server_.counters().rpc_requests);
    if (status == rpc::Status::unavailable)
      server_.counters().add(server_.counters().alloc_timeouts);
  }
  void busy(bool b) override { info_->busy.store(b, std::memory_order_relaxed); }
  void timed_out(rpc::Timeout t) override { note_deadline(server_, "rpc", info_->id, t); }
  void unreceived_wait(bool) override {
    server_.counters().add(server_.counters().unreceived_waits);
  }

 private:
  Role needed(std::uint8_t opcode) const noexcept {
    switch (static_cast<rpc::Opcode>(opcode)) {
      case rpc::Opcode::auth:
        return Role::none;
      case rpc::Opcode::ping:
      case rpc::Opcode::get:
        return Role::read;
      case rpc::Opcode::put:
      case rpc::Opcode::erase:
      case rpc::Opcode::echo:  // takes pool memory
        return Role::write;
      case rpc::Opcode::stats:
        return server_.config().stats_role();
    }
    return Role::admin;
  }

  Server& server_;
  ConnectionInfo* info_;
  Role role_;  // on the connection's executor only
};

}  // namespace

rpc::Service make_store_service(Server& server) {
  using rpc::Request;
  using rpc::Response;
  using rpc::Status;
  // Every operation is a lookup in memory that answers at once: synchronous handlers, run in the
  // connection's reader, so that a pipelined batch is one read and one write.
  rpc::Service s;
  s.on_sync(rpc::Opcode::ping, false, [](Request) { return Response{}; });
  s.on_sync(rpc::Opcode::put, true, [&server](Request r) {
    switch (server.store().put(r.key, SharedBuffer(std::move(r.payload)))) {
      case BufferStore::PutResult::created:
        return Response{Status::ok, rpc::flags::created, {}};
      case BufferStore::PutResult::replaced:
        return Response{};
      case BufferStore::PutResult::no_room:
      case BufferStore::PutResult::not_met:  // an unconditional put always stores
        break;
    }
    return Response::error(Status::storage_full, "the key arena or max_keys is full");
  });
  s.on_sync(rpc::Opcode::get, true, [&server](Request r) {
    auto value = server.store().get(r.key);
    if (!value) return Response::error(Status::not_found, "no such key");
    return Response{Status::ok, 0, std::move(*value)};  // written straight from the pool
  });
  s.on_sync(rpc::Opcode::erase, true, [&server](Request r) {
    if (server.store().erase(r.key)) return Response{};
    return Response::error(Status::not_found, "no such key");
  });
  s.on_sync(rpc::Opcode::echo, false, [](Request r) {
    return Response{Status::ok, 0, std::move(r.payload)};
  });
  s.on_sync(rpc::Opcode::auth, false, [](Request r) {
    // The observer is always this server's (start_rpc_session): it keeps the connection's role.
    const std::string_view token(reinterpret_cast<const char*>(r.payload.data()), r.payload.size());
    return static_cast<TableObserver*>(r.observer)->authenticate(token);
  });
  s.on_sync(rpc::Opcode::stats, false, [&server](Request) {
    return Response{Status::ok, 0, server.stats_json()};
  });
  return s;
}

void start_rpc_session(Server& server, Transport socket) {
  const Config& c = server.config();
  rpc::ConnectionOptions options;
  options.max_payload = c.max_object_size;
  options.idle_timeout = c.idle_timeout;
  options.read_timeout = c.read_timeout;
  options.alloc_timeout = c.alloc_timeout;
  options.pipeline_depth = c.pipeline_depth;
  options.header_timeout = c.header_timeout;
  options.min_body_rate = c.min_body_rate;
  options.body_grace = c.body_grace;
  start_session(server, std::move(socket), "rpc",
                [&server, options](Transport s, ConnectionInfo* info) mutable {
                  options.unreceived = info->unreceived;  // the client address's
                  return std::make_shared<rpc::Connection>(
                      std::move(s), server.rpc_service(), server.pool(), options,
                      std::make_shared<TableObserver>(server, info));
                });
}

}  // namespace bufpool::server
