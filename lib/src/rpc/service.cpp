#include "bufpool/rpc/service.hpp"

#include "bufpool/co_allocate.hpp"
#include "bufpool/detail/close_socket.hpp"

#include <array>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <span>

namespace bufpool::rpc {

using asio::as_tuple;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;

namespace {
constexpr std::size_t read_buffer_size = 64 * 1024;
constexpr std::size_t write_chunk = 4u << 20;
}  // namespace

void Service::on(std::uint8_t opcode, bool needs_key, Handler handler) {
  entries_[opcode] = Entry{std::move(handler), {}, needs_key};
}
void Service::on_sync(std::uint8_t opcode, bool needs_key, SyncHandler handler) {
  entries_[opcode] = Entry{{}, std::move(handler), needs_key};
}

// A response on its way out: its header bytes and its payload, kept alive until written.
struct connection_detail::Outgoing {
  HeaderBytes header;
  Response response;
  asio::const_buffer payload() const {
    struct V {
      asio::const_buffer operator()(std::monostate) const { return {}; }
      asio::const_buffer operator()(const Buffer& b) const { return {b.data(), b.size()}; }
      asio::const_buffer operator()(const SharedBuffer& b) const { return {b.data(), b.size()}; }
      asio::const_buffer operator()(const std::string& s) const { return {s.data(), s.size()}; }
    };
    return std::visit(V{}, response.payload);
  }
};

std::array<asio::const_buffer, 2> connection_detail::OutgoingBuffers::operator()(
    const std::unique_ptr<Outgoing>& out) const {
  return {asio::buffer(out->header), out->payload()};
}

// A coroutine that runs handlers, one request at a time; woken through its own timer.
struct Connection::Worker {
  explicit Worker(const asio::any_io_executor& ex) : wake(ex, Clock::time_point::max()) {}
  asio::steady_timer wake;
  Request request;
  const Handler* handler = nullptr;
  bool has_request = false;
};

Connection::Connection(detail::Transport socket, const Service& service, BuddyPool& pool,
                       ConnectionOptions options, std::shared_ptr<ConnectionObserver> observer)
    : connection_detail::Shell(std::move(socket), read_buffer_size,
                               detail::PaceLimits{options.read_timeout, options.header_timeout,
                                                  options.min_body_rate, options.body_grace}),
      service_(service),
      pool_(pool),
      options_(std::move(options)),
      observer_(observer ? std::move(observer) : std::make_shared<ConnectionObserver>()) {}

Connection::~Connection() = default;

void Connection::close(bool force) {
  if (force) {
    close_socket();
    return;
  }
  stop_reading(in_flight_ == 0 && reader_.size() == 0);
}

// What the write queue asks of the connection.
struct Connection::WriterHooks {
  Connection& c;
  bool stopped() const noexcept { return !c.socket_.is_open(); }
  bool finished() const noexcept { return c.reading_done_ && c.in_flight_ == 0; }
  std::size_t progress(const error_code& ec, std::size_t n) {
    return c.watchdog_.progress(c.options_.read_timeout, write_chunk)(ec, n);
  }
  void done(std::unique_ptr<Outgoing>&& out) { c.recycle(std::move(out)); }
  void after_write(const error_code&, std::size_t n) {
    c.watchdog_.disarm();
    c.observer_->bytes_out(n);
    c.wake_reader_.cancel();  // pipeline slots are free again
  }
};

asio::awaitable<void> Connection::run() {
  auto self = shared_from_this();
  auto on_expiry = [self] {
    self->observer_->timed_out(self->limit_);
    self->close_socket();
  };
  start_helpers(self, on_expiry, WriterHooks{*this});
  co_await read_loop();
  co_await finish_writes();  // the responses already owed go out first
  close_socket();
  stop_workers_ = true;
  for (auto& w : workers_)
    w->wake.cancel();
}

void Connection::dispatch(Request request, const Handler* handler) {
  Worker* w;
  if (!idle_.empty()) {
    w = idle_.back();
    idle_.pop_back();
  } else {
    workers_.push_back(std::make_unique<Worker>(socket_.get_executor()));
    w = workers_.back().get();
    auto self = shared_from_this();
    auto loop = [self, w] { return self->work(w); };
    asio::co_spawn(socket_.get_executor(), loop, asio::detached);
  }
  w->request = std::move(request);
  w->handler = handler;
  w->has_request = true;
  w->wake.cancel();
}

asio::awaitable<void> Connection::work(Worker* w) {
  for (;;) {
    while (!w->has_request) {
      if (stop_workers_) co_return;
      w->wake.expires_at(Clock::time_point::max());
      co_await w->wake.async_wait(as_tuple(use_awaitable));
    }
    w->has_request = false;
    co_await handle(std::move(w->request), w->handler);
    w->request = Request{};
    idle_.push_back(w);
  }
}

// Before every read: the responses owed go out first, and the read gets its deadline (`idle`:
// waiting for a new frame, with nothing of it read yet; else the pace's: the read timeout, the
// header's deadline or the payload's rate).
void Connection::before_read(bool idle) {
  flush_now();
  arm_read(idle, options_.idle_timeout);
}
void Connection::on_read(std::size_t bytes) {
  watchdog_.disarm();
  observer_->bytes_in(bytes);
  observer_->busy(true);
}

// Makes at least n unread bytes available. `first`: waiting for a new frame (idle timeout).
asio::awaitable<bool> Connection::fill(std::size_t n, bool first) {
  auto before = [this, first] { before_read(first); };
  auto after = [this](std::size_t bytes) { on_read(bytes); };
  const bool ok = co_await reader_.fill(socket_, n, before, after);
  if (!ok) watchdog_.disarm();
  co_return ok;
}

void Connection::recycle(std::unique_ptr<Outgoing>&& out) {
  out->response = Response{};  // the payload goes back now; the entry is kept for reuse
  spare_.push_back(std::move(out));
}

void Connection::push(std::uint8_t opcode, std::uint64_t id, Response response, bool wake) {
  std::unique_ptr<Outgoing> out;
  if (spare_.empty()) {
    out = std::make_unique<Outgoing>();
  } else {
    out = std::move(spare_.back());
    spare_.pop_back();
  }
  FrameHeader h;
  h.opcode = opcode;
  h.flags = static_cast<std::uint8_t>(response.flags | flags::response);
  h.status = response.status;
  h.request_id = id;
  out->response = std::move(response);
  h.payload_length = out->payload().size();
  out->header = encode(h);
  writes_.push(std::move(out));
  if (wake) writes_.wake();
}

void Connection::fail(const FrameHeader& h, bool bad_magic, Status s, std::string message) {
  answered(h.opcode, bad_magic ? 0 : h.request_id, Response::error(s, std::move(message)), true);
}

// Every response goes out through here: counted, then queued.
void Connection::answered(std::uint8_t opcode, std::uint64_t id, Response response, bool wake) {
  observer_->request_done(opcode, response.status);
  push(opcode, id, std::move(response), wake);
}

// Writes the queued responses at once, from the reader, if the writer is idle; the writer
// coroutine takes over whatever the socket does not accept now.
void Connection::flush_now() {
  if (!socket_.is_open()) return;
  auto done = [this](std::unique_ptr<Outgoing>&& out) { recycle(std::move(out)); };
  if (const std::size_t n = writes_.flush_now(socket_, done)) observer_->bytes_out(n);
}

asio::awaitable<void> Connection::read_loop() {
  for (;;) {
    if (in_flight_ + writes_.unsent() >= options_.pipeline_depth) flush_now();
    while (in_flight_ + writes_.unsent() >= options_.pipeline_depth && !stop_reading_ &&
           socket_.is_open()) {
      wake_reader_.expires_at(Clock::time_point::max());  // TCP pushes back on the client
      co_await reader_.across(wake_reader_.async_wait(as_tuple(use_awaitable)));
    }
    if (stop_reading_ || !socket_.is_open()) co_return;
    if (in_flight_ == 0 && reader_.size() == 0) observer_->busy(false);
    Request request;
    const Service::Entry* entry = nullptr;
    const Next next = co_await read_request(request, entry);
    if (next == Next::stop) co_return;
    if (next == Next::serve) answer(std::move(request), *entry);
  }
}

// Parses one frame and reads its key and payload. An error has its response queued already:
// `skip` keeps the connection, `stop` ends it.
asio::awaitable<Connection::Next> Connection::read_request(Request& request,
                                                           const Service::Entry*& entry) {
  pace_.idle();
  if (!co_await fill(header_size, true)) co_return Next::stop;
  FrameHeader h;
  const DecodeError bad = decode(reader_.data(), h);
  reader_.consume(header_size);
  const bool bad_magic = bad == DecodeError::bad_magic;
  if (bad != DecodeError::none) {
    fail(h, bad_magic, Status::bad_request,
         bad_magic                         ? "bad magic"
         : bad == DecodeError::bad_version ? "unsupported version"
         : bad == DecodeError::bad_flags   ? "unknown flags"
                                           : "reserved field not zero");
    co_return Next::stop;
  }
  if (h.flags != 0 || h.status != Status::ok) {  // a request carries neither
    fail(h, false, Status::bad_request, "a request has no flags and status 0");
    co_return Next::stop;
  }
  entry = service_.find(h.opcode);
  if (!entry) {
    fail(h, false, Status::bad_request, "unknown opcode");
    co_return Next::stop;
  }
  if (h.key_length > max_key_size || (entry->needs_key && h.key_length == 0) ||
      (!entry->needs_key && h.key_length != 0)) {
    fail(h, false, Status::bad_request,
         entry->needs_key ? "a key of 1 to 250 bytes is required" : "this operation takes no key");
    co_return Next::stop;
  }
  if (h.payload_length > options_.max_payload) {
    fail(h, false, Status::too_large,
         "payload above the limit of " + std::to_string(options_.max_payload) + " bytes");
    co_return Next::stop;
  }
  request.opcode = h.opcode;
  request.id = h.request_id;
  if (h.key_length > 0) {
    if (!co_await fill(h.key_length, false)) co_return Next::stop;
    request.key.assign(reinterpret_cast<const char*>(reader_.data()), h.key_length);
    reader_.consume(h.key_length);
    if (!valid_key(request.key)) {
      fail(h, false, Status::bad_request, "keys are 1 to 250 bytes of [A-Za-z0-9._~-]");
      co_return Next::stop;
    }
  }
  request.observer = observer_.get();
  const auto len = static_cast<std::size_t>(h.payload_length);
  auto before = [this] { before_read(false); };
  auto after = [this](std::size_t bytes) {
    on_read(bytes);
    pace_.received(bytes);
    unreceived_.release(bytes);
  };
  if (std::optional<Response> refusal = observer_->admit(h.opcode)) {
    // Refused before its payload takes any memory: skip the payload, keep the connection.
    if (len > 0 && !co_await reader_.skip(socket_, len, before, after)) co_return Next::stop;
    answered(h.opcode, h.request_id, std::move(*refusal), true);
    co_return Next::skip;
  }
  if (len == 0) co_return Next::serve;
  pace_.body();
  // The bytes of the payload that are not buffered yet, which the quota (if any) must cover.
  const std::size_t missing = len - std::min(len, reader_.size());
  Buffer buffer = missing == 0 || !options_.unreceived ? pool_.allocate_if_free(len) : Buffer{};
  error_code ec;
  if (!buffer) {  // wait for the quota and memory (the reader yields: responses owed go first)
    flush_now();
    BodyReservation r = co_await reader_.across(
        co_reserve_body(pool_, options_.unreceived.get(), len, missing, options_.alloc_timeout));
    if (r.quota_waited) observer_->unreceived_wait(r.quota_refused);
    ec = r.ec;
    buffer = std::move(r.buffer);
    unreceived_ = std::move(r.units);
    if (r.quota_refused) {
      const bool skipped = co_await reader_.skip(socket_, len, before, after);
      if (!skipped) co_return Next::stop;
      fail(h, false, Status::unavailable,
           "this client has too many payload bytes announced and not yet sent");
      co_return Next::skip;
    }
  }
  if (ec) {
    // No memory in time: drop the payload, keep the connection (the client may retry).
    const bool skipped = co_await reader_.skip(socket_, len, before, after);
    if (!skipped) co_return Next::stop;
    fail(h, false, Status::unavailable, "no pool memory within the alloc timeout: " + ec.message());
    co_return Next::skip;
  }
  // Bytes that came with earlier reads are copied; the rest goes straight into the buffer.
  const bool complete = co_await reader_.read_into(socket_, {buffer.data(), len}, before, after);
  unreceived_.reset();
  if (!complete) {  // stopped short: the buffer goes back to the pool
    watchdog_.disarm();
    co_return Next::stop;
  }
  request.payload = std::move(buffer);
  co_return Next::serve;
}

void Connection::answer(Request request, const Service::Entry& entry) {
  if (entry.sync) {  // answered here; the response goes out with the others of this read
    const std::uint8_t opcode = request.opcode;
    const std::uint64_t id = request.id;
    Response response;
    try {
      response = entry.sync(std::move(request));
    } catch (const std::exception& e) {
      response = Response::error(Status::internal, e.what());
    }
    answered(opcode, id, std::move(response), false);
    return;
  }
  ++in_flight_;
  dispatch(std::move(request), &entry.handler);
}

asio::awaitable<void> Connection::handle(Request request, Handler const* handler) {
  const std::uint8_t opcode = request.opcode;
  const std::uint64_t id = request.id;
  Response response;
  try {
    response = co_await (*handler)(std::move(request));
  } catch (const std::exception& e) {
    response = Response::error(Status::internal, e.what());
  }
  --in_flight_;
  answered(opcode, id, std::move(response), true);
  wake_reader_.cancel();
  if (stop_reading_ && in_flight_ == 0 && reader_.size() == 0) {
    // A graceful close was waiting for this last request: end the reader's pending read.
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_receive, ec);
  }
}

}  // namespace bufpool::rpc
