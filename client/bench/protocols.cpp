#include "protocols.hpp"

#include <fmt/format.h>
#include <bufpool/app/units.hpp>
#include <bufpool/client.hpp>
#include <bufpool/detail/close_socket.hpp>
#include <bufpool/detail/direct_reader.hpp>
#include <bufpool/detail/write_queue.hpp>
#include <bufpool/error.hpp>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <deque>
#include <span>

namespace bufpool::bench {

namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::optional<ReplyHead> parse_http_reply(std::string_view data, Op op) {
  const auto end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  ReplyHead r;
  r.head = end + 4;
  std::string_view lines = data.substr(0, end + 2);
  auto next_line = [&] {
    const auto eol = lines.find("\r\n");
    auto line = lines.substr(0, eol);
    lines.remove_prefix(eol + 2);
    return line;
  };
  const auto status_line = next_line();
  // "HTTP/1.1 200 OK"
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ')
    throw ProtocolError("not an HTTP/1.x status line");
  const bool http10 = status_line[7] == '0';
  const auto code = parse_count(status_line.substr(9, 3));
  if (!code || *code < 100 || *code > 599) throw ProtocolError("bad HTTP status code");
  std::optional<std::size_t> length;
  bool keep_alive = !http10;
  while (!lines.empty()) {
    const auto line = next_line();
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) throw ProtocolError("bad HTTP header line");
    const auto name = line.substr(0, colon);
    const auto value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      length = parse_count(value);
      if (!length) throw ProtocolError("bad Content-Length");
    } else if (iequals(name, "connection")) {
      if (iequals(value, "close")) keep_alive = false;
      if (iequals(value, "keep-alive")) keep_alive = true;
    } else if (iequals(name, "transfer-encoding")) {
      throw ProtocolError("chunked replies are not supported");
    }
  }
  if (*code < 200) throw ProtocolError("unexpected interim reply");
  if (!length) {
    if (*code != 204 && *code != 304) throw ProtocolError("a reply without Content-Length");
    length = 0;
  }
  r.body = *length;
  r.close = !keep_alive;
  if (*code >= 200 && *code < 300) {
    r.kind = Outcome::Kind::ok;
  } else if (*code == 404 && op == Op::get) {
    r.kind = Outcome::Kind::miss;
  } else {
    r.kind = Outcome::Kind::error;
    r.error = fmt::format("http_{}", *code);
  }
  return r;
}

std::optional<ReplyHead> parse_resp_reply(std::string_view data, Op op) {
  const auto eol = data.find("\r\n");
  if (eol == std::string_view::npos) {
    if (data.size() > 64 * 1024) throw ProtocolError("a RESP line over 64 KiB");
    return std::nullopt;
  }
  ReplyHead r;
  r.head = eol + 2;
  const auto line = data.substr(1, eol - 1);
  switch (data.front()) {
    case '+':
    case ':':
      r.kind = Outcome::Kind::ok;
      return r;
    case '-': {  // "-OOM command not allowed ..." -> redis_OOM
      r.kind = Outcome::Kind::error;
      r.error = "redis_" + std::string(line.substr(0, std::min<std::size_t>(line.find(' '), 24)));
      return r;
    }
    case '$': {
      if (line == "-1") {
        r.kind = op == Op::get ? Outcome::Kind::miss : Outcome::Kind::error;
        if (op != Op::get) r.error = "redis_nil";
        return r;
      }
      const auto n = parse_count(line);
      if (!n) throw ProtocolError("bad RESP bulk length");
      r.body = *n;
      r.trailer = 2;
      return r;
    }
    default:
      throw ProtocolError("unexpected RESP reply type");
  }
}

namespace {

// Bytes read per system call at most, the same for every protocol.
constexpr std::size_t stream_read_buffer = 256 * 1024;

// bufpool RPC: bufpool::Client does the pipelining, matching replies to requests by id.
class RpcConnection final : public Connection {
 public:
  RpcConnection(asio::any_io_executor ex, const ConnectionOptions& o) : ex_(std::move(ex)), o_(o) {}
  ~RpcConnection() override { close(); }

  asio::awaitable<void> open() override {
    ClientOptions co;
    co.request_timeout = o_.timeout;
    co.connect_timeout = o_.connect_timeout;
    co.pool = o_.pool;
    co.alloc_timeout = o_.timeout;
    co.read_buffer = stream_read_buffer;  // as the HTTP and RESP connections read
    if (o_.tls) {
      co.tls = [context = o_.tls, host = o_.target.host](tcp::socket s) {
        return tls_connect(std::move(s), context, host);
      };
    }
    client_ = co_await Client::connect(ex_, o_.target.host, o_.target.port, co);
  }
  bool is_open() const noexcept override { return client_ && client_->is_open(); }
  void close() noexcept override {
    if (client_) client_->close();
  }

  asio::awaitable<Outcome> execute(const Request& req) override {
    auto client = client_;  // a reconnect may replace client_ meanwhile
    if (!client || !client->is_open()) co_return Outcome::failed("closed");
    Outcome out;
    try {
      auto reply = co_await client->call(req.op == Op::put ? rpc::Opcode::put : rpc::Opcode::get,
                                         req.key, req.payload);
      if (reply.status == rpc::Status::ok) {
        out.bytes = reply.payload.size();
        if (req.body) {
          const auto* p = reinterpret_cast<const std::byte*>(reply.payload.data());
          req.body->assign(p, p + reply.payload.size());
        }
      } else if (reply.status == rpc::Status::not_found && req.op == Op::get) {
        out.kind = Outcome::Kind::miss;
      } else {
        out = Outcome::failed("rpc_" + std::string(rpc::to_string(reply.status)));
      }
    } catch (const std::system_error& e) {
      if (e.code() == make_error_code(errc::timed_out))
        out = Outcome::failed("timeout");
      else if (e.code() == make_error_code(errc::closed))
        out = Outcome::failed("closed");
      else
        out = Outcome::failed("io");
    } catch (const std::exception&) {
      out = Outcome::failed("io");
    }
    co_return out;
  }

 private:
  asio::any_io_executor ex_;
  ConnectionOptions o_;
  std::shared_ptr<Client> client_;
};

// HTTP/1.1 and RESP: requests are written in order, replies come back in the same order.
class StreamConnection : public Connection, public std::enable_shared_from_this<StreamConnection> {
 public:
  StreamConnection(asio::any_io_executor ex, const ConnectionOptions& o)
      : ex_(ex), o_(o), socket_(ex), writes_(ex, max_batch), reader_(stream_read_buffer) {}
  ~StreamConnection() override { close(); }

  asio::awaitable<void> open() override {
    socket_ = co_await connect_socket(ex_, o_.target.host, o_.target.port, o_.connect_timeout);
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);  // for the reader's direct reads
    const auto gen = ++generation_;
    auto self = shared_from_this();
    auto reader = [self, gen] { return self->read_loop(gen); };
    asio::co_spawn(ex_, reader, asio::detached);
    auto writer = [self, gen] { return self->write_loop(gen); };
    asio::co_spawn(ex_, writer, asio::detached);
  }
  bool is_open() const noexcept override { return socket_.is_open(); }
  void close() noexcept override { fail_all("closed"); }

  asio::awaitable<Outcome> execute(const Request& req) override {
    if (!socket_.is_open()) co_return Outcome::failed("closed");
    auto self = shared_from_this();
    Pending p(ex_);
    p.op = req.op;
    p.body = req.body;
    encode(p, req);
    waiting_.push_back(&p);
    writes_.push(&p);
    writes_.wake();
    p.timer.expires_after(o_.timeout);
    co_await p.timer.async_wait(as_tuple(use_awaitable));
    if (!p.done) {  // timed out: every reply behind this one would be read as the wrong one
      fail_all("closed");
      p.outcome = Outcome::failed("timeout");
    }
    // A reply can come before its request is all written (a 503 before a PUT's body): the
    // write in progress may still read this frame's head.
    auto mine = [&p](const Pending* q) { return q == &p; };
    co_await writes_.until_written(mine);
    co_return std::move(p.outcome);
  }

 protected:
  // A request waiting for its reply; lives in the calling coroutine's frame.
  struct Pending {
    explicit Pending(const asio::any_io_executor& ex) : timer(ex, Clock::time_point::max()) {}
    asio::steady_timer timer;  // cancelled when the reply (or an error) is in
    Op op = Op::get;
    std::array<char, 1024> head;  // request line and headers (RESP: the command up to the value)
    std::size_t head_size = 0;
    asio::const_buffer payload;
    std::string_view trailer;
    std::vector<std::byte>* body = nullptr;
    Outcome outcome;
    bool done = false;
  };
  virtual void encode(Pending& p, const Request& req) = 0;
  virtual std::optional<ReplyHead> parse(std::string_view data, Op op) = 0;

  template <typename... Args>
  static void format_head(Pending& p, fmt::format_string<Args...> f, Args&&... args) {
    const auto r = fmt::format_to_n(p.head.data(), p.head.size(), f, std::forward<Args>(args)...);
    p.head_size = std::min(r.size, p.head.size());  // options keep keys and paths well below
  }

  const ConnectionOptions& options() const noexcept { return o_; }

 private:
  static constexpr std::size_t max_batch = 64;
  struct PendingBuffers {
    std::array<asio::const_buffer, 3> operator()(const Pending* p) const {
      return {asio::const_buffer(p->head.data(), p->head_size), p->payload,
              asio::buffer(p->trailer)};
    }
  };
  void fail_all(std::string_view why) {
    detail::close_socket(socket_);
    for (Pending* p : waiting_) {
      p->outcome = Outcome::failed(std::string(why));
      p->done = true;
      p->timer.cancel();
    }
    waiting_.clear();
    writes_.reset([](Pending*) {});  // the socket is closed: no write reads them any more
  }

  asio::awaitable<void> write_loop(std::uint64_t gen) {
    auto self = shared_from_this();
    // No write deadline (each request has its own timeout); a written request's coroutine
    // owns it.
    detail::PlainWriterHooks<tcp::socket> hooks{socket_};
    const auto ec = co_await writes_.run(socket_, hooks);
    if (ec && gen == generation_) {
      // The server closed (a 503 before reading a large body, say): its reply may still be in
      // the receive buffer, so the reader takes it and fails the rest when it meets the end.
      boost::system::error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  asio::awaitable<void> read_loop(std::uint64_t gen) {
    auto self = shared_from_this();
    reader_.reset();
    value_ = Buffer{};
    reply_.reset();
    for (;;) {
      if (!take_replies()) co_return;
      bool ok;
      if (reply_ && reply_->body > 0 && value_) {
        // The rest of the value: from the socket straight into its buffer.
        const std::size_t rest = reply_->body;
        ok = co_await reader_.read_into(socket_, {value_.data() + value_filled_, rest});
        if (ok) {
          value_filled_ += rest;
          reply_->body = 0;
          waiting_.front()->outcome.bytes += rest;
        }
      } else {
        ok = co_await reader_.fill(socket_, reader_.size() + 1);
      }
      if (gen != generation_) co_return;  // a reconnect replaced this socket
      if (!ok) {
        fail_all("closed");
        co_return;
      }
    }
  }

  // Takes every complete reply (and the part of a body) that is in the read buffer. False when
  // the connection is finished (a reply that breaks the protocol, or one that closes).
  bool take_replies() {
    for (;;) {
      if (!reply_ && !start_reply()) return socket_.is_open();  // for now, or for good
      Pending& p = *waiting_.front();
      const std::size_t take = std::min(reply_->body, reader_.size());
      if (value_) {
        std::memcpy(value_.data() + value_filled_, reader_.data(), take);
        value_filled_ += take;
      } else if (p.body) {
        p.body->insert(p.body->end(), reader_.data(), reader_.data() + take);
      }
      reader_.consume(take);
      reply_->body -= take;
      p.outcome.bytes += take;
      if (reply_->body > 0) return true;
      const std::size_t skip = std::min(reply_->trailer, reader_.size());
      reader_.consume(skip);
      reply_->trailer -= skip;
      if (reply_->trailer > 0) return true;
      if (value_) {
        if (p.body) p.body->assign(value_.data(), value_.data() + value_filled_);
        value_ = Buffer{};
      }
      waiting_.pop_front();
      p.outcome.kind = reply_->kind;
      p.outcome.error = std::move(reply_->error);
      p.done = true;
      p.timer.cancel();
      const bool close = reply_->close;
      reply_.reset();
      if (close) {
        fail_all("closed");
        return false;
      }
    }
  }

  // Parses the head of the next reply, if it is all in the buffer. False when there is nothing
  // (more) to take now; the connection is closed if the reply broke the protocol.
  bool start_reply() {
    if (reader_.size() == 0) return false;
    if (waiting_.size() == writes_.queued()) {
      fail_all("protocol");  // a reply to nothing that was sent
      return false;
    }
    const std::string_view data(reinterpret_cast<const char*>(reader_.data()), reader_.size());
    try {
      reply_ = parse(data, waiting_.front()->op);
    } catch (const ProtocolError&) {
      fail_all("protocol");
      return false;
    }
    if (!reply_) {
      if (reader_.size() > 64 * 1024) fail_all("protocol");
      return false;
    }
    reader_.consume(reply_->head);
    if (auto* body = waiting_.front()->body) body->clear();
    // A value is received into memory of its own, as the RPC client does (and as a real client
    // must, to keep it): both protocols then cost the load generator the same.
    if (reply_->kind == Outcome::Kind::ok && reply_->body > 0 && o_.pool) {
      std::error_code ignored;  // no memory (or too large): the bytes are only counted
      value_ = o_.pool->try_allocate(reply_->body, ignored);
      value_filled_ = 0;
    }
    return true;
  }

  asio::any_io_executor ex_;
  ConnectionOptions o_;
  tcp::socket socket_;
  std::uint64_t generation_ = 0;  // one per open(): the loops of an old socket end quietly
  std::deque<Pending*> waiting_;  // in the order sent, so in the order of the replies
  detail::WriteQueue<Pending*, PendingBuffers> writes_;
  detail::DirectReader reader_;
  std::optional<ReplyHead> reply_;  // the reply being read
  Buffer value_;                    // the value being received, when there is a pool
  std::size_t value_filled_ = 0;
};

class HttpConnection final : public StreamConnection {
 public:
  using StreamConnection::StreamConnection;

 private:
  void encode(Pending& p, const Request& req) override {
    const auto& t = options().target;
    if (t.plain_get()) {
      format_head(p, "GET {} HTTP/1.1\r\nHost: {}:{}\r\n\r\n", t.path, t.host, t.port);
    } else if (req.op == Op::get) {
      format_head(p, "GET /v1/buffers/{} HTTP/1.1\r\nHost: {}:{}\r\n\r\n", req.key, t.host, t.port);
    } else {
      format_head(p, "PUT /v1/buffers/{} HTTP/1.1\r\nHost: {}:{}\r\nContent-Length: {}\r\n\r\n",
                  req.key, t.host, t.port, req.payload.size());
      p.payload = req.payload;
    }
  }
  std::optional<ReplyHead> parse(std::string_view data, Op op) override {
    return parse_http_reply(data, op);
  }
};

class RedisConnection final : public StreamConnection {
 public:
  using StreamConnection::StreamConnection;

 private:
  void encode(Pending& p, const Request& req) override {
    if (req.op == Op::get) {
      format_head(p, "*2\r\n$3\r\nGET\r\n${}\r\n{}\r\n", req.key.size(), req.key);
    } else {
      format_head(p, "*3\r\n$3\r\nSET\r\n${}\r\n{}\r\n${}\r\n", req.key.size(), req.key,
                  req.payload.size());
      p.payload = req.payload;
      p.trailer = "\r\n";
    }
  }
  std::optional<ReplyHead> parse(std::string_view data, Op op) override {
    return parse_resp_reply(data, op);
  }
};

}  // namespace

std::shared_ptr<Connection> make_connection(asio::any_io_executor executor,
                                            const ConnectionOptions& options) {
  switch (options.target.kind) {
    case Target::Kind::rpc:
      return std::make_shared<RpcConnection>(std::move(executor), options);
    case Target::Kind::http:
      return std::make_shared<HttpConnection>(std::move(executor), options);
    case Target::Kind::redis:
      return std::make_shared<RedisConnection>(std::move(executor), options);
  }
  return nullptr;
}

}  // namespace bufpool::bench
