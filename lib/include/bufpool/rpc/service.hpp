// Serving the bufpool RPC protocol (docs/protocol.md) on a TCP connection, with handlers that the
// user registers per opcode.
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "bufpool/buddy_pool.hpp"
#include "bufpool/buffer.hpp"
#include "bufpool/detail/receive_pace.hpp"
#include "bufpool/detail/served_connection.hpp"
#include "bufpool/quota.hpp"
#include "bufpool/rpc/frame.hpp"
#include "bufpool/shared_buffer.hpp"

namespace bufpool::rpc {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// A request as the handler gets it: the payload is already in a pool buffer (read from the
/// socket into it, not copied).
class ConnectionObserver;

struct Request {
  std::uint8_t opcode = 0;
  std::uint64_t id = 0;
  std::string key;  // at most 250 bytes; validated as a key when the service says so
  Buffer payload;   // empty for a 0-byte payload
  // The connection's observer, for a handler that keeps state per connection (the server's
  // AUTH sets the connection's role in its own observer).
  ConnectionObserver* observer = nullptr;
};

/// A response: a status, flags, and a payload that is written straight from where it lives.
struct Response {
  Status status = Status::ok;
  std::uint8_t flags = 0;  // flags::created, for example; flags::response is added
  std::variant<std::monostate, Buffer, SharedBuffer, std::string> payload;

  static Response error(Status s, std::string message) {
    return Response{s, 0, std::move(message)};
  }
};

using Handler = std::function<asio::awaitable<Response>(Request)>;
/// A handler that answers at once (a lookup in memory, say). The connection runs it inside its
/// reader: no coroutine per request, and every response to one socket read goes out in one write.
using SyncHandler = std::function<Response(Request)>;

/// The handlers of a service, by opcode. Register them before serving; read-only afterwards, so
/// one Service may serve many connections on many threads.
class Service {
 public:
  /// `needs_key`: the frame must carry a valid key (else BAD_REQUEST and the connection closes);
  /// otherwise it must carry none.
  void on(std::uint8_t opcode, bool needs_key, Handler handler);
  void on(Opcode opcode, bool needs_key, Handler handler) {
    on(static_cast<std::uint8_t>(opcode), needs_key, std::move(handler));
  }
  void on_sync(std::uint8_t opcode, bool needs_key, SyncHandler handler);
  void on_sync(Opcode opcode, bool needs_key, SyncHandler handler) {
    on_sync(static_cast<std::uint8_t>(opcode), needs_key, std::move(handler));
  }
  struct Entry {
    Handler handler;  // one of the two is set
    SyncHandler sync;
    bool needs_key = false;
  };
  const Entry* find(std::uint8_t opcode) const noexcept {
    const Entry& e = entries_[opcode];
    return e.handler || e.sync ? &e : nullptr;
  }

 private:
  std::array<Entry, 256> entries_;
};

struct ConnectionOptions {
  std::uint64_t max_payload = 64u << 20;           // TOO_LARGE above, then close
  std::chrono::milliseconds idle_timeout{60'000};  // no request for this long: close
  std::chrono::milliseconds read_timeout{10'000};  // a read or write without progress
  std::chrono::milliseconds alloc_timeout{2'000};  // then UNAVAILABLE for that request
  std::size_t pipeline_depth = 16;                 // requests read ahead of responses
  // A frame's header and key must be whole this long after a read first waits for them
  // (0: no limit); then the connection closes.
  std::chrono::milliseconds header_timeout{10'000};
  // After body_grace, a payload must arrive at min_body_rate bytes a second on average (0: any
  // rate); then the connection closes.
  std::uint64_t min_body_rate = 0;
  std::chrono::milliseconds body_grace{5'000};
  // When set, a payload's block is reserved only once this quota has room for the payload's
  // bytes that have not arrived yet, and the units go back as they arrive (co_reserve_body):
  // share one between the connections of a client address, and a client that announces large
  // payloads without sending them holds at most its capacity of pool memory. Waiting for it
  // counts against alloc_timeout too, and ends in UNAVAILABLE.
  std::shared_ptr<Quota> unreceived;
};

/// Which deadline cut a connection off: read, header or body_rate (the toolkit's own enum).
using Timeout = detail::ReceivePace::Limit;

/// Optional observer of a connection, for a server's tables and counters. Called on the
/// connection's executor.
class ConnectionObserver {
 public:
  virtual ~ConnectionObserver() = default;
  virtual void bytes_in(std::size_t) {}
  virtual void bytes_out(std::size_t) {}
  virtual void request_done(std::uint8_t /*opcode*/, Status) {}
  /// true while requests are in flight or being read, false when idle between requests.
  virtual void busy(bool) {}
  virtual void timed_out(Timeout) {}
  /// Whether the connection may run `opcode` now (authentication): nullopt lets it, a response
  /// refuses it with that response, before its payload is read (the payload is skipped and the
  /// connection stays).
  virtual std::optional<Response> admit(std::uint8_t /*opcode*/) { return std::nullopt; }
  /// A payload waited for ConnectionOptions::unreceived (`refused`: and got no room in time).
  virtual void unreceived_wait(bool /*refused*/) {}
};

namespace connection_detail {
struct Outgoing;  // a response on its way out (service.cpp)
struct OutgoingBuffers {
  std::array<asio::const_buffer, 2> operator()(const std::unique_ptr<Outgoing>& out) const;
};
using Shell = detail::ServedConnection<std::unique_ptr<Outgoing>, OutgoingBuffers>;
}  // namespace connection_detail

/// One connection: reads frames, reads each payload into a pool buffer (waiting for memory up to
/// alloc_timeout), runs the handlers (synchronous ones in the reader, coroutine ones concurrently,
/// up to pipeline_depth requests read ahead of their responses being written), and writes the
/// responses as header + payload gathered writes, in completion order. The responses to one
/// socket read go out in one write, tried at once from the reader (the writer coroutine takes
/// over what the socket does not accept), so a pipelined batch costs one read and one write.
/// Malformed frames get an error response, then the connection closes after the responses already
/// owed. Single executor: create it, run() it and close() it on the socket's executor.
class Connection : public std::enable_shared_from_this<Connection>,
                   private connection_detail::Shell {
 public:
  /// `socket`: a tcp::socket, or a detail::Transport over TLS (the server's TLS listeners).
  Connection(detail::Transport socket, const Service& service, BuddyPool& pool,
             ConnectionOptions options, std::shared_ptr<ConnectionObserver> observer = {});
  ~Connection();

  /// Serves until the peer closes, an error, a timeout, or close(). Never throws for I/O errors.
  asio::awaitable<void> run();
  /// Graceful (stop reading, finish what was read, then close) or forced (close at once).
  void close(bool force);
  tcp::socket& socket() noexcept { return socket_.lowest_layer(); }

 private:
  using Outgoing = connection_detail::Outgoing;
  struct Worker;
  struct WriterHooks;
  enum class Next { serve, skip, stop };
  asio::awaitable<void> read_loop();
  asio::awaitable<Next> read_request(Request& request, const Service::Entry*& entry);
  void answer(Request request, const Service::Entry& entry);
  asio::awaitable<void> work(Worker* worker);
  void dispatch(Request request, const Handler* handler);
  asio::awaitable<void> handle(Request request, Handler const* handler);
  asio::awaitable<bool> fill(std::size_t n, bool first);
  void before_read(bool idle);
  void on_read(std::size_t bytes);
  void push(std::uint8_t opcode, std::uint64_t id, Response response, bool wake = true);
  void fail(const FrameHeader& h, bool bad_magic, Status s, std::string message);
  void answered(std::uint8_t opcode, std::uint64_t id, Response response, bool wake);
  void flush_now();
  void recycle(std::unique_ptr<Outgoing>&& out);

  const Service& service_;
  BuddyPool& pool_;
  ConnectionOptions options_;
  std::shared_ptr<ConnectionObserver> observer_;
  // Spent responses, kept and reused: a response costs no heap call once the connection has
  // warmed up. (The socket, reader, write queue and wake_reader_ are the Shell's.)
  std::vector<std::unique_ptr<Outgoing>> spare_;
  // Handlers run on worker coroutines, started as the pipeline first needs them (at most
  // pipeline_depth) and reused: no coroutine is spawned per request.
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> idle_;
  bool stop_workers_ = false;
  std::size_t in_flight_ = 0;  // requests read whose response is not yet queued
  QuotaUnits unreceived_;      // the payload being read: its bytes still to come
};

}  // namespace bufpool::rpc
