// The three protocols that bufpool-bench speaks, behind one interface: bufpool RPC (through
// bufpool::Client), HTTP/1.1 (bufpool's API, or GETs of one path from any server) and RESP
// (Redis SET/GET). Each connection takes many requests at once (pipelining); HTTP and RESP answer
// in order, so a timeout there closes the connection (the replies behind it are out of step).
#pragma once

#include <bufpool/app/tls.hpp>
#include "options.hpp"

#include <bufpool/buddy_pool.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bufpool::bench {

enum class Op : std::uint8_t { put, get };

struct Outcome {
  enum class Kind : std::uint8_t { ok, miss, error };
  Kind kind = Kind::ok;
  /// For errors, what went wrong, as a short name: timeout, closed, protocol, http_503,
  /// rpc_unavailable, redis_OOM, ...
  std::string error;
  std::size_t bytes = 0;  // the reply's payload bytes
  static Outcome failed(std::string why) { return {Kind::error, std::move(why), 0}; }
};

struct Request {
  Op op = Op::get;
  std::string_view key;                    // unused in plain GET mode
  boost::asio::const_buffer payload;       // PUT: the caller's memory, valid until the call ends
  std::vector<std::byte>* body = nullptr;  // GET: where the reply's bytes go (nullptr: dropped)
};

class Connection {
 public:
  virtual ~Connection() = default;
  /// Connects (again, after a close). Throws on failure or after the connect timeout.
  virtual boost::asio::awaitable<void> open() = 0;
  virtual bool is_open() const noexcept = 0;
  virtual void close() noexcept = 0;
  /// One request; never throws: transport failures come back as errors.
  virtual boost::asio::awaitable<Outcome> execute(const Request& request) = 0;
};

struct ConnectionOptions {
  Target target;
  std::chrono::milliseconds timeout{5000};
  std::chrono::milliseconds connect_timeout{3000};
  BuddyPool* pool = nullptr;                 // RPC replies are read into it
  std::shared_ptr<TlsContext::Context> tls;  // RPC over TLS with this client context
};

std::shared_ptr<Connection> make_connection(boost::asio::any_io_executor executor,
                                            const ConnectionOptions& options);

/// A reply that does not follow its protocol.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Where a reply of an in-order protocol starts and ends: `head` bytes of status and headers,
/// then `body` bytes of payload, then `trailer` bytes (RESP's CRLF after a bulk string).
struct ReplyHead {
  std::size_t head = 0, body = 0, trailer = 0;
  Outcome::Kind kind = Outcome::Kind::ok;
  std::string error;
  bool close = false;  // the server closes the connection after this reply
};
/// nullopt: the head is not complete yet. Throws ProtocolError.
std::optional<ReplyHead> parse_http_reply(std::string_view data, Op op);
std::optional<ReplyHead> parse_resp_reply(std::string_view data, Op op);

}  // namespace bufpool::bench
