#include "bufpool/rpc/service.hpp"

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
struct Connection::Outgoing {
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
  std::size_t size() const { return header.size() + payload().size(); }
};

namespace {
// The buffers of `entries`, less the first `skip` bytes (already written).
template <typename Entries>
void gather_buffers(const Entries& entries, std::size_t skip,
                    std::vector<asio::const_buffer>& buffers) {
  buffers.clear();
  for (const auto& out : entries) {
    for (asio::const_buffer b : {asio::const_buffer(asio::buffer(out->header)), out->payload()}) {
      if (b.size() <= skip) {
        skip -= b.size();
        continue;
      }
      buffers.push_back(b + skip);
      skip = 0;
    }
  }
}
}  // namespace

// A coroutine that runs handlers, one request at a time; woken through its own timer.
struct Connection::Worker {
  explicit Worker(const asio::any_io_executor& ex) : wake(ex, Clock::time_point::max()) {}
  asio::steady_timer wake;
  Request request;
  const Handler* handler = nullptr;
  bool has_request = false;
};

Connection::Connection(tcp::socket socket, const Service& service, BuddyPool& pool,
                       ConnectionOptions options, std::shared_ptr<ConnectionObserver> observer)
    : socket_(std::move(socket)),
      service_(service),
      pool_(pool),
      options_(options),
      observer_(observer ? std::move(observer) : std::make_shared<ConnectionObserver>()),
      watchdog_(socket_.get_executor()),
      wake_writer_(socket_.get_executor(), Clock::time_point::max()),
      wake_reader_(socket_.get_executor(), Clock::time_point::max()),
      in_(read_buffer_size) {
  error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);  // a response is one gathered write: no Nagle
  // For the reader's and flush_now()'s direct reads and writes; async operations are unaffected.
  socket_.non_blocking(true, ec);
}

Connection::~Connection() = default;

void Connection::arm(std::chrono::milliseconds d) {
  deadline_ = Clock::now() + d;
  if (deadline_ < watchdog_.expiry()) watchdog_.cancel();
}
void Connection::disarm() {
  deadline_ = Clock::time_point::max();
}

void Connection::close_socket() {
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  watchdog_.cancel();
  wake_writer_.cancel();
  wake_reader_.cancel();
}

void Connection::close(bool force) {
  if (force) {
    close_socket();
    return;
  }
  stop_reading_ = true;
  wake_reader_.cancel();
  if (in_flight_ == 0 && in_.size() == 0) {
    // Between requests: end the pending read (EOF) so that the reader sees stop_reading_.
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_receive, ec);
  }
}

asio::awaitable<void> Connection::watch() {
  while (socket_.is_open()) {
    watchdog_.expires_at(deadline_);
    co_await watchdog_.async_wait(as_tuple(use_awaitable));
    if (socket_.is_open() && deadline_ <= Clock::now()) {
      timed_out_ = true;
      observer_->read_timed_out();
      close_socket();
    }
  }
}

asio::awaitable<void> Connection::run() {
  auto self = shared_from_this();
  auto executor = co_await asio::this_coro::executor;
  auto watcher = [self] { return self->watch(); };
  asio::co_spawn(executor, watcher, asio::detached);
  auto writer = [self] { return self->write_loop(); };
  asio::co_spawn(executor, writer, asio::detached);
  co_await read_loop();
  reading_done_ = true;
  wake_writer_.cancel();
  while (!writer_done_) {  // the responses already owed go out first
    wake_reader_.expires_at(Clock::time_point::max());
    co_await wake_reader_.async_wait(as_tuple(use_awaitable));
  }
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

// Makes at least n unread bytes available. `first`: waiting for a new frame (idle timeout).
// Responses owed are flushed first. Reads go straight to the socket; after a read that emptied
// it, readiness is awaited first, which saves the read that would fail with EAGAIN.
asio::awaitable<bool> Connection::fill(std::size_t n, bool first) {
  while (in_.size() < n) {
    flush_now();
    arm(first && in_.size() == 0 ? options_.idle_timeout : options_.read_timeout);
    if (drained_) {
      drained_ = false;
      auto [wec] = co_await socket_.async_wait(tcp::socket::wait_read, as_tuple(use_awaitable));
      if (wec) {
        disarm();
        co_return false;
      }
    }
    error_code ec;
    const std::size_t space = in_.max_size() - in_.size();
    const std::size_t got = socket_.read_some(in_.prepare(space), ec);
    if (ec == asio::error::would_block) {
      drained_ = true;
      continue;
    }
    disarm();
    if (ec) co_return false;
    drained_ = got < space;
    in_.commit(got);
    observer_->bytes_in(got);
    observer_->busy(true);
  }
  co_return true;
}

// Reads and drops n payload bytes, to stay in step with the frames.
asio::awaitable<bool> Connection::skip(std::uint64_t n) {
  while (n > 0) {
    if (in_.size() == 0 && !co_await fill(1, false)) co_return false;
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n, in_.size()));
    in_.consume(take);
    n -= take;
  }
  co_return true;
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
  queue_.push_back(std::move(out));
  ++unsent_;
  if (wake) wake_writer_.cancel();
}

// Writes the queued responses at once, from the reader, if the writer is idle; the writer
// coroutine takes over whatever the socket does not accept now.
void Connection::flush_now() {
  if (queue_.empty() || !socket_.is_open()) return;
  if (writing_) {
    wake_writer_.cancel();  // it takes the rest after its write
    return;
  }
  gather_buffers(queue_, written_ahead_, flush_buffers_);
  error_code ec;
  std::size_t n = socket_.write_some(std::span<const asio::const_buffer>(flush_buffers_), ec);
  if (ec) n = 0;  // would_block, or an error that the writer meets and handles
  observer_->bytes_out(n);
  std::size_t done = 0;
  n += written_ahead_;
  while (done < queue_.size() && queue_[done]->size() <= n) {
    n -= queue_[done]->size();
    queue_[done]->response = Response{};
    spare_.push_back(std::move(queue_[done]));
    ++done;
  }
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(done));
  unsent_ -= done;
  written_ahead_ = n;
  if (!queue_.empty()) wake_writer_.cancel();
}

asio::awaitable<void> Connection::read_loop() {
  for (;;) {
    if (in_flight_ + unsent_ >= options_.pipeline_depth) flush_now();
    while (in_flight_ + unsent_ >= options_.pipeline_depth && !stop_reading_ && socket_.is_open()) {
      wake_reader_.expires_at(Clock::time_point::max());  // TCP pushes back on the client
      co_await wake_reader_.async_wait(as_tuple(use_awaitable));
      drained_ = false;  // the reactor may have seen the socket's readiness meanwhile
    }
    if (stop_reading_ || !socket_.is_open()) co_return;
    if (in_flight_ == 0 && in_.size() == 0) observer_->busy(false);
    if (!co_await fill(header_size, true)) co_return;
    FrameHeader h;
    const DecodeError bad = decode(unread(), h);
    in_.consume(header_size);
    auto fail = [&](Status s, std::string message) {
      push(h.opcode, bad == DecodeError::bad_magic ? 0 : h.request_id,
           Response::error(s, std::move(message)));
      observer_->request_done(h.opcode, s);
    };
    if (bad != DecodeError::none) {
      fail(Status::bad_request, bad == DecodeError::bad_magic     ? "bad magic"
                                : bad == DecodeError::bad_version ? "unsupported version"
                                : bad == DecodeError::bad_flags   ? "unknown flags"
                                                                  : "reserved field not zero");
      co_return;
    }
    if (h.flags != 0 || h.status != Status::ok) {  // a request carries neither
      fail(Status::bad_request, "a request has no flags and status 0");
      co_return;
    }
    const Service::Entry* entry = service_.find(h.opcode);
    if (!entry) {
      fail(Status::bad_request, "unknown opcode");
      co_return;
    }
    if (h.key_length > max_key_size || (entry->needs_key && h.key_length == 0) ||
        (!entry->needs_key && h.key_length != 0)) {
      fail(Status::bad_request, entry->needs_key ? "a key of 1 to 250 bytes is required"
                                                 : "this operation takes no key");
      co_return;
    }
    if (h.payload_length > options_.max_payload) {
      fail(Status::too_large,
           "payload above the limit of " + std::to_string(options_.max_payload) + " bytes");
      co_return;
    }
    Request request;
    request.opcode = h.opcode;
    request.id = h.request_id;
    if (h.key_length > 0) {
      if (!co_await fill(h.key_length, false)) co_return;
      request.key.assign(reinterpret_cast<const char*>(unread()), h.key_length);
      in_.consume(h.key_length);
      if (!valid_key(request.key)) {
        fail(Status::bad_request, "keys are 1 to 250 bytes of [A-Za-z0-9._~-]");
        co_return;
      }
    }
    const auto len = static_cast<std::size_t>(h.payload_length);
    if (len > 0) {
      Buffer buffer = pool_.allocate_if_free(len);
      error_code ec;
      if (!buffer) {  // wait for memory (the reader yields: responses owed go out first)
        flush_now();
        std::tie(ec, buffer) =
            co_await pool_.async_allocate_for(len, options_.alloc_timeout, as_tuple(use_awaitable));
        drained_ = false;
      }
      if (ec) {
        // No memory in time: drop the payload, keep the connection (the client may retry).
        if (!co_await skip(len)) co_return;
        fail(Status::unavailable, "no pool memory within the alloc timeout: " + ec.message());
        continue;
      }
      // Bytes that came with earlier reads are copied; the rest goes straight into the buffer.
      std::size_t have = std::min(len, in_.size());
      std::memcpy(buffer.data(), unread(), have);
      in_.consume(have);
      if (have < len) flush_now();
      while (have < len) {
        arm(options_.read_timeout);
        auto [rec, got] = co_await socket_.async_read_some(
            asio::buffer(buffer.data() + have, len - have), as_tuple(use_awaitable));
        disarm();
        if (rec) co_return;  // stopped short: the buffer goes back to the pool
        drained_ = false;    // the completion ran later than the read: the reactor may have
                             // seen new data meanwhile, so never wait for readiness on its word
        have += got;
        observer_->bytes_in(got);
      }
      request.payload = std::move(buffer);
    }
    if (entry->sync) {  // answered here; the response goes out with the others of this read
      Response response;
      try {
        response = entry->sync(std::move(request));
      } catch (const std::exception& e) {
        response = Response::error(Status::internal, e.what());
      }
      observer_->request_done(h.opcode, response.status);
      push(h.opcode, h.request_id, std::move(response), false);
      continue;
    }
    ++in_flight_;
    dispatch(std::move(request), &entry->handler);
  }
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
  observer_->request_done(opcode, response.status);
  --in_flight_;
  push(opcode, id, std::move(response));
  wake_reader_.cancel();
  if (stop_reading_ && in_flight_ == 0 && in_.size() == 0) {
    // A graceful close was waiting for this last request: end the reader's pending read.
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_receive, ec);
  }
}

asio::awaitable<void> Connection::write_loop() {
  std::vector<std::unique_ptr<Outgoing>> batch;
  std::vector<asio::const_buffer> buffers;
  for (;;) {
    while (queue_.empty()) {
      if ((reading_done_ && in_flight_ == 0) || !socket_.is_open()) {
        writer_done_ = true;
        wake_reader_.cancel();
        co_return;
      }
      wake_writer_.expires_at(Clock::time_point::max());
      co_await wake_writer_.async_wait(as_tuple(use_awaitable));
    }
    batch.swap(queue_);  // everything queued goes out in one gathered write
    gather_buffers(batch, written_ahead_, buffers);
    written_ahead_ = 0;
    writing_ = true;
    auto progress = [this](const error_code& ec, std::size_t) -> std::size_t {
      arm(options_.read_timeout);  // a peer that stops reading is cut off
      return ec ? 0 : write_chunk;
    };
    // A span, not the vector: async_write copies its buffer sequence, and a vector copy allocates.
    auto [ec, n] = co_await asio::async_write(socket_, std::span<const asio::const_buffer>(buffers),
                                              progress, as_tuple(use_awaitable));
    writing_ = false;
    disarm();
    observer_->bytes_out(n);
    for (auto& out : batch) {  // payloads are released now; the entries are kept for reuse
      out->response = Response{};
      spare_.push_back(std::move(out));
    }
    unsent_ -= batch.size();
    batch.clear();
    wake_reader_.cancel();  // pipeline slots are free again
    if (ec) {
      close_socket();
      queue_.clear();
      writer_done_ = true;
      wake_reader_.cancel();
      co_return;
    }
  }
}

}  // namespace bufpool::rpc
