// One HTTP/1.1 connection: Beast parses each request header; bodies go from the socket straight
// into pool buffers, and responses are a hand-built header gathered with a body that points into
// pool memory, in one write. See docs/architecture.md for the path of a PUT and a GET.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <bufpool/buffer_chain.hpp>
#include <bufpool/co_allocate.hpp>
#include <bufpool/detail/close_socket.hpp>
#include <bufpool/detail/direct_reader.hpp>
#include <bufpool/detail/receive_pace.hpp>
#include <bufpool/detail/watchdog.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <cstring>
#include <ctime>
#include <limits>
#include <memory>

#include <bufpool/app/json.hpp>
#include "http_routes.hpp"
#include "server.hpp"
#include "session.hpp"

namespace bufpool::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using asio::as_tuple;
using asio::use_awaitable;
using error_code = boost::system::error_code;

constexpr std::size_t read_chunk = 16 * 1024;
constexpr std::size_t write_chunk = 4u << 20;
// An error answered before its request body was read: keep reading (and dropping) at most this
// much for at most this long after the response, so that the client sees the response and not a
// reset.
constexpr std::size_t linger_bytes = 1u << 20;
constexpr auto linger_time = std::chrono::milliseconds(1000);

const char* reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 507:
      return "Insufficient Storage";
    default:
      return "Unknown";
  }
}

// A bump allocator over one block per connection, reset before each request, for Beast's header
// fields (one allocation per field): parsing a header then makes no heap call. A header with more
// than the block holds spills to the heap.
class HeaderArena {
 public:
  explicit HeaderArena(std::size_t bytes)
      : block_(std::make_unique<std::byte[]>(bytes)), size_(bytes) {}
  void reset() noexcept { used_ = 0; }
  void* allocate(std::size_t n, std::size_t align) {
    const std::size_t at = (used_ + align - 1) & ~(align - 1);
    if (at + n <= size_) {
      used_ = at + n;
      return block_.get() + at;
    }
    return ::operator new(n);
  }
  void deallocate(void* p, std::size_t) noexcept {
    if (p >= block_.get() && p < block_.get() + size_) return;  // reset() takes it back
    ::operator delete(p);
  }

 private:
  std::unique_ptr<std::byte[]> block_;
  std::size_t size_;
  std::size_t used_ = 0;
};

template <typename T>
struct ArenaAllocator {
  using value_type = T;
  HeaderArena* arena;
  explicit ArenaAllocator(HeaderArena* a) noexcept : arena(a) {}
  template <typename U>
  ArenaAllocator(const ArenaAllocator<U>& other) noexcept : arena(other.arena) {}
  T* allocate(std::size_t n) { return static_cast<T*>(arena->allocate(n * sizeof(T), alignof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { arena->deallocate(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const ArenaAllocator<U>& other) const noexcept {
    return arena == other.arena;
  }
};

using RequestParser = http::request_parser<http::empty_body, ArenaAllocator<char>>;

// "Date: <IMF-fixdate>\r\n" (RFC 9110 requires it from a server with a clock), formatted once a
// second per thread rather than per response.
std::string_view date_header() {
  thread_local std::time_t last = 0;
  thread_local char text[64];
  thread_local std::size_t length = 0;
  const std::time_t now = std::time(nullptr);
  if (now != last) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    length = std::strftime(text, sizeof text, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    last = now;
  }
  return {text, length};
}

struct RequestDeleter {
  void operator()(RequestContext* r) const noexcept {
    r->~RequestContext();
    NodePool::free(r);  // the node knows its pool
  }
};
using RequestPtr = std::unique_ptr<RequestContext, RequestDeleter>;

// One request and its response: what was parsed from its header, and what its handling has
// decided so far. Lives in the frame of the coroutine that handles the request.
struct Exchange {
  explicit Exchange(RequestParser& p, RequestContext* c = nullptr) noexcept
      : parser(p), context(c) {}
  RequestParser& parser;
  RequestContext* context = nullptr;  // nullptr for a header that did not parse
  boost::optional<std::uint64_t> content_length;
  bool chunked = false;
  bool keep_alive = false;
  bool http10 = false;           // keep-alive must be said in the response
  bool head = false;             // a HEAD: every response, errors included, goes without its body
  bool expect_continue = false;  // the client waits for "100 Continue" before its body
  bool body_read = true;         // false while a body is unread (then the connection closes)
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(Server& server, Transport socket, ConnectionInfo* info)
      : server_(server),
        config_(server.config()),
        socket_(std::move(socket)),
        watchdog_(socket_.get_executor()),
        pace_(pace_limits(config_)),
        buffer_(config_.max_header_size + read_chunk),
        arena_(2 * config_.max_header_size),
        info_(info) {
    error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);  // responses are one gathered write: no Nagle
  }

  // start_session's: runs the connection to its end; close() may come from any thread's post.
  asio::awaitable<void> run() {
    auto self = shared_from_this();
    // A header that is late gets its 408: the expiry only cancels the pending read, and the
    // watchdog goes on guarding the answer. Any other deadline closes the connection.
    auto on_expiry = [self]() -> bool {
      if (self->limit_ == detail::ReceivePace::Limit::header && self->socket_.is_open()) {
        self->header_late_ = true;
        self->limit_ = detail::ReceivePace::Limit::read;
        error_code ec;
        self->socket_.cancel(ec);
        return true;
      }
      self->close_now();
      return false;
    };
    auto watch = [self, on_expiry] { return self->watchdog_.run(on_expiry); };
    asio::co_spawn(socket_.get_executor(), watch, asio::detached);
    co_await serve();
    close_now();
  }
  void close(bool force) {
    if (force || between_requests_) {
      close_now();
    } else {
      close_after_response_ = true;
    }
  }

 private:
  static detail::PaceLimits pace_limits(const Config& c) {
    return {c.read_timeout, c.header_timeout, c.min_body_rate, c.body_grace};
  }
  void close_now() {
    detail::close_socket(socket_);
    watchdog_.stop();
  }
  // The watchdog closes the socket once a deadline passes, which completes whatever read or
  // write is pending with an error.
  void arm(std::chrono::milliseconds d) noexcept {
    limit_ = detail::ReceivePace::Limit::read;
    watchdog_.arm(d);
  }
  // Before a read inside a request: the read timeout, the header's or the body's rate deadline.
  void arm_paced() noexcept {
    watchdog_.arm_at(pace_.deadline(detail::ReceivePace::Clock::now(), limit_));
  }
  void disarm() noexcept { watchdog_.disarm(); }

  // --- the connection -----------------------------------------------------------------------
  asio::awaitable<void> serve() {
    for (;;) {
      if (server_.draining() || close_after_response_) co_return;
      arena_.reset();  // the previous request's parser is gone
      RequestParser parser(std::piecewise_construct, std::make_tuple(),
                           std::make_tuple(ArenaAllocator<char>(&arena_)));
      parser.header_limit(static_cast<std::uint32_t>(config_.max_header_size));
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // checked by the handlers
      between_requests_ = buffer_.size() == 0;
      info_->busy.store(!between_requests_, std::memory_order_relaxed);
      pace_.idle();
      error_code ec;
      std::size_t parsed = 0;  // of this request's bytes, by the parser
      while (!ec && !parser.is_header_done()) {
        if (parsed == 0) skip_empty_lines();
        if (buffer_.size() > 0) {
          const std::size_t n = parser.put(buffer_.data(), ec);
          buffer_.consume(n);
          parsed += n;
          if (ec == http::error::need_more) ec = parsed == 0 ? bad_request_line() : error_code{};
          if (ec || parser.is_header_done()) break;
        }
        const std::size_t room = buffer_.max_size() - buffer_.size();
        if (room == 0) {
          ec = http::error::header_limit;
          break;
        }
        if (between_requests_) {
          arm(config_.idle_timeout);
        } else {
          pace_.header();
          arm_paced();
        }
        auto [rec, n] = co_await socket_.async_read_some(
            buffer_.prepare(std::min(room, read_chunk)), as_tuple(use_awaitable));
        if (rec) {
          if (header_late_) {
            co_await answer_late_header(parser);
          } else if (!between_requests_) {
            note_broken_request(rec);
          }
          co_return;  // EOF between requests is the normal end of a keep-alive connection
        }
        buffer_.commit(n);
        received(n);
        if (between_requests_) {
          between_requests_ = false;
          info_->busy.store(true, std::memory_order_relaxed);
        }
      }
      disarm();
      if (ec) {
        const int status = ec == http::error::header_limit ? 431 : 400;
        Exchange x(parser);  // no request to speak of: the connection closes after the answer
        co_await send_error(x, status,
                            ec == http::error::header_limit ? "header_too_large" : "bad_request",
                            ec.message());
        count_header_error();
        co_await linger();  // the rest of that header may still be on its way
        co_return;
      }
      const bool keep = co_await handle(parser);
      if (!keep) co_return;
    }
  }

  void count_header_error() {
    auto& c = server_.counters();
    c.add(c.http_requests);
    c.add(c.http_by_class[4]);
  }

  // header_timeout passed before the header was whole: 408, then the connection closes.
  asio::awaitable<void> answer_late_header(RequestParser& parser) {
    header_late_ = false;
    server_.counters().add(server_.counters().header_timeouts);
    spdlog::debug("http connection {}: header not whole within {}, 408", info_->id,
                  format_duration(config_.header_timeout));
    Exchange x(parser);
    co_await send_error(x, 408, "header_timeout",
                        fmt::format("the request header must be whole within {}",
                                    format_duration(config_.header_timeout)));
    count_header_error();
    co_await linger();
  }

  // Beast waits for 8 bytes of HTTP-version before it judges one, so a request line that ends
  // in a shorter, invalid one ("GET / HTx") would wait for bytes that never come. While Beast
  // has taken nothing of the request (it takes the request line as soon as it is whole and
  // valid), a whole request line in the buffer is checked here: "HTTP/" DIGIT "." DIGIT.
  error_code bad_request_line() const {
    const auto* data = static_cast<const char*>(buffer_.data().data());
    const std::string_view have(data, buffer_.size());
    const auto eol = have.find("\r\n");
    if (eol == std::string_view::npos) return {};  // not whole yet (need_more stands)
    const std::string_view line = have.substr(0, eol);
    const auto sp = line.rfind(' ');
    const std::string_view v = sp == std::string_view::npos ? line : line.substr(sp + 1);
    const auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (v.size() == 8 && v.substr(0, 5) == "HTTP/" && digit(v[5]) && v[6] == '.' && digit(v[7]))
      return {};  // valid: the rest of the header has yet to come
    return http::error::bad_version;
  }

  // RFC 9112 2.2: empty lines before a request line are ignored (Beast would call them a bad
  // method).
  void skip_empty_lines() {
    const auto* data = static_cast<const char*>(buffer_.data().data());
    std::size_t n = 0;
    while (n + 1 < buffer_.size() && data[n] == '\r' && data[n + 1] == '\n')
      n += 2;
    buffer_.consume(n);
  }

  void note_broken_request(const error_code& ec) {
    if (watchdog_.expired()) {
      note_deadline(server_, "http", info_->id, limit_);
    } else {
      spdlog::debug("http connection {}: {}", info_->id, ec.message());
    }
  }
  void received(std::size_t n) {
    info_->bytes_in.fetch_add(n, std::memory_order_relaxed);
    server_.counters().add(server_.counters().bytes_in, n);
    info_->touch();
  }

  // --- requests: parse, route, act ----------------------------------------------------------
  // Returns false when the connection must close after this request.
  asio::awaitable<bool> handle(RequestParser& parser) {
    auto& req = parser.get();
    RequestPtr rc(new (server_.request_nodes().allocate()) RequestContext{});
    rc->start_ns = now_ns();
    rc->connection_id = info_->id;
    Exchange x(parser, rc.get());
    x.content_length = parser.content_length();
    x.chunked = parser.chunked();
    x.keep_alive = req.keep_alive();
    x.http10 = req.version() < 11;  // an HTTP/1.0 client keeps the connection only if told so
    x.head = req.method() == http::verb::head;
    x.expect_continue = beast::iequals(req[http::field::expect], "100-continue");
    x.body_read = !x.chunked && !(x.content_length && *x.content_length > 0);  // no body

    const std::string_view target(req.target().data(), req.target().size());
    if (const auto hosts = req.count(http::field::host); hosts > 1 || (hosts == 0 && !x.http10)) {
      // RFC 9112 3.2: an HTTP/1.1 request without exactly one Host is refused.
      x.keep_alive = false;
      co_await send_error(x, 400, "bad_host",
                          hosts ? "more than one Host header" : "an HTTP/1.1 request needs Host");
    } else {
      co_await act(x, route(target), req.method());
    }

    auto& c = server_.counters();
    c.add(c.http_requests);
    c.add(c.http_by_class[static_cast<std::size_t>(std::clamp(rc->status / 100, 0, 5))]);
    info_->requests.fetch_add(1, std::memory_order_relaxed);
    if (config_.access_log) {
      spdlog::info("access conn={} {} {} {} in={} out={} {}us", info_->id,
                   std::string_view(req.method_string().data(), req.method_string().size()), target,
                   rc->status, rc->bytes_in, rc->bytes_out, (now_ns() - rc->start_ns) / 1000);
    }
    if (!x.body_read) {  // answered without reading the body: it cannot be framed, so close
      co_await linger();
      co_return false;
    }
    co_return x.keep_alive && !close_after_response_ && !server_.draining() && socket_.is_open();
  }

  // What the route names, for this method.
  asio::awaitable<void> act(Exchange& x, const Route& r, http::verb method) {
    if (r.resource == Resource::none) {
      co_await send_error(x, 404, "not_found", "no such resource");
      co_return;
    }
    if (r.resource == Resource::buffer && !valid_key(r.key)) {
      co_await send_error(x, 400, "bad_key", "keys are 1 to 250 bytes of [A-Za-z0-9._~-]");
      co_return;
    }
    if (!r.takes(method)) {
      co_await send_error(x, 405, "method_not_allowed", r.usage, r.allow);
      co_return;
    }
    if (const Role need = required_role(r.resource, method, config_.stats_role());
        need != Role::none && config_.tokens.enabled()) {
      const auto& field = x.parser.get()[http::field::authorization];
      const std::string_view token = bearer_token(std::string_view(field.data(), field.size()));
      const Role have = token.empty() ? Role::none : config_.tokens.role_of(token);
      if (have == Role::none) {  // RFC 6750 3: 401 with a challenge, and why if a token came
        co_await send_error(
            x, 401, token.empty() ? "unauthenticated" : "invalid_token",
            token.empty() ? "this needs an Authorization: Bearer token" : "the token is not valid",
            token.empty()
                ? "WWW-Authenticate: Bearer realm=\"bufpool\"\r\n"
                : "WWW-Authenticate: Bearer realm=\"bufpool\", error=\"invalid_token\"\r\n");
        co_return;
      }
      if (!config_.tokens.allows(have, need)) {
        co_await send_error(
            x, 403, "insufficient_role",
            fmt::format("this needs a {} token; this one is {}", to_string(need), to_string(have)));
        co_return;
      }
    }
    switch (r.resource) {
      case Resource::buffer:
        if (method == http::verb::put) {
          co_await put(x, r.key);
        } else if (method == http::verb::delete_) {
          co_await erase(x, r.key);
        } else {
          co_await get(x, r.key);
        }
        break;
      case Resource::echo:
        co_await echo(x);
        break;
      case Resource::stats:
        co_await send_text(x, 200, "application/json", server_.stats_json());
        break;
      case Resource::metrics:
        co_await send_text(x, 200, "text/plain; version=0.0.4; charset=utf-8",
                           server_.metrics_text());
        break;
      case Resource::healthz:
        if (server_.draining()) {
          co_await send_text(x, 503, "text/plain", "draining\n");
        } else {
          co_await send_text(x, 200, "text/plain", "ok\n");
        }
        break;
      case Resource::connections:
        if (const auto order = connections_order(r.query)) {
          co_await send_text(x, 200, "application/json", server_.connections_json(*order));
        } else {
          co_await send_error(x, 400, "bad_sort", "sort is idle, bytes or age");
        }
        break;
      case Resource::none:
        break;
    }
  }

  // Reads a Content-Length body into a new pool buffer. On failure the response has been sent
  // (or the connection is gone) and the result is empty with ok == false.
  struct Body {
    bool ok = false;
    Buffer buffer;
  };
  asio::awaitable<Body> read_body(Exchange& x) {
    if (x.chunked) co_return co_await read_chunked_body(x);
    const auto& length = x.content_length;
    if (!length) {
      co_await send_error(x, 411, "length_required", "a Content-Length body is required");
      co_return Body{};
    }
    const std::uint64_t len = *length;
    if (len > config_.max_object_size) {
      co_await send_error(x, 413, "too_large",
                          fmt::format("the limit is {} bytes", config_.max_object_size));
      co_return Body{};
    }
    Body body;
    detail::ReceivePace::Clock::time_point waited_from{};
    QuotaUnits unreceived;  // the body's bytes still to come, given back as they arrive
    if (len > 0) {
      disarm();  // the wait has its own limit; meanwhile TCP pushes back on the client
      const auto missing =
          static_cast<std::size_t>(len - std::min<std::uint64_t>(len, buffer_.size()));
      BodyReservation r =
          co_await co_reserve_body(server_.pool(), info_->unreceived.get(),
                                   static_cast<std::size_t>(len), missing, config_.alloc_timeout);
      if (r.quota_waited) server_.counters().add(server_.counters().unreceived_waits);
      if (r.quota_refused) {
        co_await send_error(
            x, 429, "too_much_unreceived",
            fmt::format("this client address has {} of body bytes announced and not yet sent "
                        "(limits.max_unreceived_per_address)",
                        format_size(config_.unreceived_per_address())),
            "Retry-After: 1\r\n");
        co_return Body{};
      }
      if (r.ec) {
        if (r.ec == make_error_code(errc::timed_out)) {
          server_.counters().add(server_.counters().alloc_timeouts);
          co_await send_error(x, 503, "no_memory", "no pool memory within the alloc timeout",
                              "Retry-After: 1\r\n");
        } else if (r.ec == make_error_code(errc::too_large)) {
          co_await send_error(x, 413, "too_large", r.ec.message());
        } else {
          co_await send_error(x, 503, "unavailable", r.ec.message(), "Retry-After: 1\r\n");
        }
        co_return Body{};
      }
      body.buffer = std::move(r.buffer);
      unreceived = std::move(r.units);
    }
    const bool continued = co_await send_continue(x);
    if (!continued) co_return Body{};
    // Bytes that came in with the header read are copied (the one copy); the rest is read from
    // the socket straight into the pool buffer, each read within the body's pace.
    pace_.body();
    auto before = [this] { arm_paced(); };
    auto after = [this, &unreceived](std::size_t n) {
      received(n);
      pace_.received(n);
      unreceived.release(n);
    };
    const error_code ec = co_await detail::read_through(
        socket_, buffer_, {body.buffer.data(), static_cast<std::size_t>(len)}, before, after);
    if (ec) {
      body_stopped_short(x, ec);  // the buffer goes back to the pool
      co_return Body{};
    }
    disarm();
    x.body_read = true;
    x.context->bytes_in = len;
    body.ok = true;
    co_return body;
  }

  // A body that stopped short (the client went away or was too slow): nothing is stored, and the
  // connection is finished, with nothing left to frame.
  void body_stopped_short(Exchange& x, const error_code& ec) {
    server_.counters().add(server_.counters().incomplete_bodies);
    note_broken_request(ec);
    x.body_read = true;
    x.keep_alive = false;
  }

  // "100 Continue" when the client asked for it; false if the connection failed.
  asio::awaitable<bool> send_continue(const Exchange& x) {
    if (!x.expect_continue) co_return true;
    static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
    arm(config_.read_timeout);
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(cont), as_tuple(use_awaitable));
    co_return !ec;
  }

  // A chunked body: the parser decodes the chunks, and their bytes go into a BufferChain of pool
  // blocks taken as they arrive (never waiting: no memory now is a 503), up to max_object_size
  // (else 413). The chain then becomes one buffer: its own block when the body fits one, else one
  // copy; a Content-Length body needs no copy at all.
  asio::awaitable<Body> read_chunked_body(Exchange& x) {
    RequestParser& parser = x.parser;
    BufferChain chain(server_.pool(), config_.max_object_size);
    bool refused = false;
    auto on_chunk = [&](std::uint64_t, std::string_view data, error_code& ec) -> std::size_t {
      try {
        asio::buffer_copy(chain.prepare(data.size()), asio::buffer(data));
        chain.commit(data.size());
        return data.size();
      } catch (const std::length_error&) {
        refused = true;
        ec = http::error::body_limit;
        return 0;
      }
    };
    parser.on_chunk_body(on_chunk);
    const bool continued = co_await send_continue(x);
    if (!continued) co_return Body{};
    std::size_t total = 0;
    pace_.body();
    while (!parser.is_done()) {
      arm_paced();
      auto [ec, n] =
          co_await http::async_read_some(socket_, buffer_, parser, as_tuple(use_awaitable));
      if (ec) {
        disarm();
        if (refused && chain.out_of_memory()) {
          co_await send_error(x, 503, "no_memory", "no pool memory for the chunked body",
                              "Retry-After: 1\r\n");
        } else if (refused) {
          co_await send_error(x, 413, "too_large",
                              fmt::format("the limit is {} bytes", config_.max_object_size));
        } else if (ec == http::error::end_of_stream || ec == asio::error::eof ||
                   ec == asio::error::operation_aborted || !socket_.is_open()) {
          body_stopped_short(x, ec);  // the chain's blocks go back to the pool
        } else {
          co_await send_error(x, 400, "bad_request", ec.message());
        }
        co_return Body{};
      }
      total += n;
      received(n);
      pace_.received(n);
    }
    disarm();
    x.body_read = true;
    x.context->bytes_in = total;
    Body body;
    if (chain.size() > 0) {
      std::error_code ec;
      body.buffer = chain.take(ec);
      if (ec) {
        co_await send_error(x, 503, "no_memory", ec.message(), "Retry-After: 1\r\n");
        co_return Body{};
      }
    }
    body.ok = true;
    co_return body;
  }

  asio::awaitable<void> put(Exchange& x, std::string_view key) {
    Body body = co_await read_body(x);
    if (!body.ok) co_return;
    switch (server_.store().put(key, SharedBuffer(std::move(body.buffer)))) {
      case BufferStore::PutResult::created:
        co_await send(x, 201, {}, {}, {}, 0);
        break;
      case BufferStore::PutResult::replaced:
        co_await send(x, 204, {}, {}, {}, 0);
        break;
      case BufferStore::PutResult::no_room:
      case BufferStore::PutResult::not_met:  // an unconditional put always stores
        co_await send_error(x, 507, "key_space_full", "the key arena or max_keys is full");
        break;
    }
  }

  asio::awaitable<void> get(Exchange& x, std::string_view key) {
    std::optional<SharedBuffer> value = server_.store().get(key);
    if (!value) {
      co_await send_error(x, 404, "not_found", "no such key");
      co_return;
    }
    // `value` holds a reference: the bytes stay alive for the whole write, whatever happens to
    // the key meanwhile.
    co_await send(x, 200, "application/octet-stream", {},
                  asio::const_buffer(value->data(), value->size()), value->size());
  }

  asio::awaitable<void> erase(Exchange& x, std::string_view key) {
    if (server_.store().erase(key)) {
      co_await send(x, 204, {}, {}, {}, 0);
    } else {
      co_await send_error(x, 404, "not_found", "no such key");
    }
  }

  asio::awaitable<void> echo(Exchange& x) {
    Body body = co_await read_body(x);
    if (!body.ok) co_return;
    co_await send(x, 200, "application/octet-stream", {},
                  asio::const_buffer(body.buffer.data(), body.buffer.size()), body.buffer.size());
  }

  // --- responses: one writer -----------------------------------------------------------------
  asio::awaitable<void> send_error(Exchange& x, int status, std::string_view code,
                                   std::string_view message, std::string_view extra = {}) {
    std::string body =
        fmt::format("{{\"error\": \"{}\", \"code\": \"{}\"}}\n", json_escape(message), code);
    if (!x.body_read) x.keep_alive = false;
    co_await send_text(x, status, "application/json", std::move(body), extra);
  }

  asio::awaitable<void> send_text(Exchange& x, int status, std::string_view type, std::string text,
                                  std::string_view extra = {}) {
    co_await send(x, status, type, extra, asio::buffer(text), text.size());
  }

  // Writes the status line and headers, then `body` (unless the request is a HEAD), gathered in
  // one write. The header is formatted into a buffer the connection keeps, so a response
  // allocates nothing.
  asio::awaitable<void> send(Exchange& x, int status, std::string_view content_type,
                             std::string_view extra, asio::const_buffer body,
                             std::size_t content_length) {
    if (x.context) x.context->status = status;
    const bool closing = !x.keep_alive || close_after_response_ || server_.draining();
    head_.clear();
    auto out = std::back_inserter(head_);
    fmt::format_to(out, "HTTP/1.1 {} {}\r\nServer: bufpool\r\n", status, reason(status));
    head_ += date_header();
    if (!content_type.empty()) fmt::format_to(out, "Content-Type: {}\r\n", content_type);
    head_ += extra;
    if (status != 204) fmt::format_to(out, "Content-Length: {}\r\n", content_length);
    if (closing) {
      head_ += "Connection: close\r\n";
    } else if (x.http10) {
      head_ += "Connection: keep-alive\r\n";
    }
    head_ += "\r\n";
    if (closing) x.keep_alive = false;
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_),
                                                    x.head ? asio::const_buffer() : body};
    // A client that stops reading is cut off like a slow writer; one that reads is active (and
    // so not a stalled row that the connection table may evict).
    limit_ = detail::ReceivePace::Limit::read;
    auto progress = [this, step = watchdog_.progress(config_.read_timeout, write_chunk)](
                        const error_code& e, std::size_t n) mutable {
      info_->touch();
      return step(e, n);
    };
    auto [ec, n] = co_await asio::async_write(socket_, buffers, progress, as_tuple(use_awaitable));
    disarm();
    if (x.context) x.context->bytes_out = n;
    info_->bytes_out.fetch_add(n, std::memory_order_relaxed);
    server_.counters().add(server_.counters().bytes_out, n);
    info_->touch();
    if (ec) x.keep_alive = false;
  }

  // After an error answered before its body (detail::linger).
  asio::awaitable<void> linger() {
    co_await detail::linger(socket_, watchdog_, linger_bytes, linger_time);
  }

  Server& server_;
  const Config& config_;
  Transport socket_;  // TCP, or TLS over it
  detail::Watchdog watchdog_;
  detail::ReceivePace pace_;
  detail::ReceivePace::Limit limit_ = detail::ReceivePace::Limit::read;  // of the armed deadline
  beast::flat_buffer buffer_;
  HeaderArena arena_;
  ConnectionInfo* info_ = nullptr;
  std::string head_;
  bool between_requests_ = true;
  bool close_after_response_ = false;
  bool header_late_ = false;  // header_timeout passed: the pending read was cancelled for a 408
};

// A whole 503 response, for a connection refused before it has a session.
std::string refusal(std::string_view message, std::string_view code) {
  const std::string body = fmt::format("{{\"error\": \"{}\", \"code\": \"{}\"}}\n", message, code);
  return fmt::format(
      "HTTP/1.1 503 Service Unavailable\r\nServer: bufpool\r\nContent-Type: application/json\r\n"
      "Retry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
      body.size(), body);
}

}  // namespace

void start_http_session(Server& server, Transport socket) {
  static const std::string table_full =
      refusal("too many open connections", "too_many_connections");
  static const std::string address_full =
      refusal("too many open connections from this address", "too_many_connections_per_address");
  start_session(
      server, std::move(socket), "http",
      [&server](Transport s, ConnectionInfo* info) {
        return std::make_shared<HttpConnection>(server, std::move(s), info);
      },
      Refusals{table_full, address_full});
}

}  // namespace bufpool::server
