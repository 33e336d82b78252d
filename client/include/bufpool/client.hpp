// bufpool::Client: an asynchronous (coroutine) client for the bufpool RPC protocol.
#pragma once

#include <bufpool/buddy_pool.hpp>
#include <bufpool/buffer.hpp>
#include <bufpool/detail/direct_reader.hpp>
#include <bufpool/detail/transport.hpp>
#include <bufpool/detail/write_queue.hpp>
#include <bufpool/rpc/frame.hpp>

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

namespace bufpool {

/// Resolves `host` and connects to the first address that answers, with TCP_NODELAY set.
/// Throws std::system_error: the connect error (ECONNREFUSED at once), or std::errc::timed_out
/// when nothing answered within `timeout`; or the resolver's error.
boost::asio::awaitable<boost::asio::ip::tcp::socket> connect_socket(
    boost::asio::any_io_executor executor, std::string host, std::uint16_t port,
    std::chrono::milliseconds timeout);

struct ClientOptions {
  /// A call that gets no reply within this long fails with errc::timed_out (its late reply is
  /// dropped when it comes).
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds connect_timeout{5'000};
  /// Where GET and ECHO replies are read into; nullptr: a pool of the client's own.
  BuddyPool* pool = nullptr;
  /// How long a reply waits for memory in that pool before its call fails with out_of_memory.
  std::chrono::milliseconds alloc_timeout{2'000};
  /// Reply bytes read per system call at most (headers, and payloads that fit): a pipelined
  /// batch whose replies fit is one read.
  std::size_t read_buffer = 128 * 1024;
  /// TLS: when set, the connected socket is handed to it for the handshake, and the connection
  /// then speaks through the layer it returns (the library has no TLS of its own: bufpool-bench
  /// passes OpenSSL's, bufpool/app/tls.hpp's tls_connect). Replies are then read through a TLS
  /// record's worth at a time, and payloads still go straight into pool buffers.
  std::function<boost::asio::awaitable<std::unique_ptr<detail::TlsLayer>>(
      boost::asio::ip::tcp::socket)>
      tls;
};

/// One connection to a bufpool server. Calls may be pipelined: start many (from coroutines on
/// the client's executor) and each completes when its reply, matched by request id, arrives, in
/// any order. Reply payloads are read from the socket straight into pool buffers.
///
/// Errors throw std::system_error: an rpc::Status code (NOT_FOUND is not an error for get()
/// and erase()), errc::timed_out, errc::closed when the connection is gone, or an Asio error;
/// put/get/erase refuse an invalid key with errc::invalid_argument before sending anything.
/// Not thread-safe: use it from one executor (a strand when that executor has many threads).
/// A call's payload is the caller's memory and must stay valid until the call completes.
/// The connection runs until close(), until the server closes it, or until the last copy of the
/// handle that connect() returned is gone (the close is then posted to the client's executor).
class Client : public std::enable_shared_from_this<Client> {
 public:
  static boost::asio::awaitable<std::shared_ptr<Client>> connect(
      boost::asio::any_io_executor executor, std::string host, std::uint16_t port,
      ClientOptions options = {});
  ~Client();

  struct Reply {
    rpc::Status status = rpc::Status::ok;
    std::uint8_t flags = 0;
    Buffer payload;               // empty for a 0-byte payload
    std::string message() const;  // an error reply's text
  };
  /// One request with any opcode (a custom service's too, as rpc::Service::on takes them);
  /// completes with its reply whatever the status. Throws only for transport errors and timeouts.
  boost::asio::awaitable<Reply> call(std::uint8_t opcode, std::string_view key,
                                     boost::asio::const_buffer payload = {});
  boost::asio::awaitable<Reply> call(rpc::Opcode op, std::string_view key,
                                     boost::asio::const_buffer payload = {}) {
    return call(static_cast<std::uint8_t>(op), key, payload);
  }
  /// call() for any completion token, with the error as a value: completion signature
  /// void(boost::system::error_code, Reply), the error being what call() would throw (timed_out,
  /// closed, a transport error; a reply of any status is not an error). The key is copied; the
  /// payload must stay valid until completion. The call runs on the client's executor; the
  /// handler completes through its own associated executor (the client's if it has none).
  template <typename CompletionToken>
  auto async_call(std::uint8_t opcode, std::string_view key, boost::asio::const_buffer payload,
                  CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, Reply)>(
        [self = shared_from_this()](auto handler, std::uint8_t op, std::string k,
                                    boost::asio::const_buffer p) {
          auto executor =
              boost::asio::get_associated_executor(handler, self->socket_.get_executor());
          auto done = [h = std::move(handler), work = boost::asio::make_work_guard(executor)](
                          std::exception_ptr e,
                          std::tuple<boost::system::error_code, Reply> r) mutable {
            if (e) std::rethrow_exception(e);  // not an error of the call (bad_alloc, say)
            auto ex = work.get_executor();
            work.reset();
            boost::asio::dispatch(
                ex, boost::asio::append(std::move(h), std::get<0>(r), std::move(std::get<1>(r))));
          };
          boost::asio::co_spawn(self->socket_.get_executor(),
                                self->call_for_token(op, std::move(k), p), std::move(done));
        },
        token, opcode, std::string(key), payload);
  }

  boost::asio::awaitable<void> ping();
  /// Authenticates the connection with `token` (a server with tokens answers UNAUTHENTICATED to
  /// anything else first); returns the token's role ("read", "write" or "admin").
  boost::asio::awaitable<std::string> auth(std::string_view token);
  /// Stores `value`; true if the key was new.
  boost::asio::awaitable<bool> put(std::string_view key, boost::asio::const_buffer value);
  boost::asio::awaitable<std::optional<Buffer>> get(std::string_view key);
  /// true if the key existed.
  boost::asio::awaitable<bool> erase(std::string_view key);
  boost::asio::awaitable<Buffer> echo(boost::asio::const_buffer payload);
  boost::asio::awaitable<std::string> stats();

  /// Closes the connection; calls in flight fail with errc::closed.
  void close();
  bool is_open() const noexcept { return socket_.is_open(); }
  std::size_t in_flight() const noexcept { return live_calls_; }

 private:
  boost::asio::awaitable<std::tuple<boost::system::error_code, Reply>> call_for_token(
      std::uint8_t opcode, std::string key, boost::asio::const_buffer payload);
  struct Pending;
  struct Frame;
  struct FrameBuffers {
    std::array<boost::asio::const_buffer, 3> operator()(Frame* const& f) const;
  };
  struct WriterHooks;
  boost::asio::awaitable<void> release(Frame& frame);
  void add_call(Pending* p);
  Pending* find_call(std::uint64_t id) const noexcept;
  void remove_call(std::uint64_t id) noexcept;
  Client(detail::Transport socket, ClientOptions options);
  boost::asio::awaitable<void> read_loop();
  boost::asio::awaitable<bool> read_reply(const rpc::FrameHeader& h);
  boost::asio::awaitable<void> write_loop();
  void fail_all(std::error_code ec);

  detail::Transport socket_;  // TCP, or TLS over it
  ClientOptions options_;
  std::unique_ptr<BuddyPool> own_pool_;
  BuddyPool* pool_;
  std::uint64_t next_id_ = 1;
  // The calls in flight, by request id. Ids are handed out in order, so the live ones lie in
  // [first_call_, next_id_), and slot id % size holds the call of id: found in O(1). The ring
  // doubles when that window outgrows it (a slow call with many quick ones after it), and never
  // shrinks: once it has grown, a call costs no heap call. Each Pending and each Frame lives in
  // its calling coroutine's frame.
  std::vector<Pending*> calls_;
  std::uint64_t first_call_ = 1;
  std::size_t live_calls_ = 0;
  // Calls whose reply is in but which have not resumed yet. While there are any, a new call
  // (most likely made by one of them, for the next request) goes to the writer, which runs
  // after them all and writes their requests together, instead of being written alone.
  std::size_t replied_not_resumed_ = 0;
  detail::WriteQueue<Frame*, FrameBuffers> writes_;
  detail::DirectReader reader_;  // reply headers, and the start of a payload
  std::error_code closed_with_;
};

}  // namespace bufpool
