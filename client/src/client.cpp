#include "bufpool/client.hpp"

#include <bufpool/detail/close_socket.hpp>
#include <bufpool/error.hpp>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <span>

namespace bufpool {

namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// A call waiting for its reply; lives in the calling coroutine's frame.
struct Client::Pending {
  Pending(const asio::any_io_executor& ex, std::uint64_t id_)
      : timer(ex, Clock::time_point::max()), id(id_) {}
  asio::steady_timer timer;  // cancelled when the reply (or an error) is in
  std::uint64_t id;
  std::optional<Reply> reply;
  std::error_code error;
};

// A request on its way out, in the calling coroutine's frame too: the call returns only once
// the write queue has handed the frame back (`released`). The payload is the caller's memory.
struct Client::Frame {
  rpc::HeaderBytes header;
  std::array<char, rpc::max_key_size> key;  // copied: the caller's key may be a temporary
  std::size_t key_size = 0;
  asio::const_buffer payload;
  bool released = false;  // written, or dropped by a failed write or a reset
};

std::array<asio::const_buffer, 3> Client::FrameBuffers::operator()(Frame* const& f) const {
  return {asio::buffer(f->header), asio::buffer(f->key.data(), f->key_size), f->payload};
}

// Requests have no write deadline (each call has its own timeout); a frame the queue is done
// with is marked so that its call may return.
struct Client::WriterHooks : detail::PlainWriterHooks<detail::Transport> {
  static void done(Frame*&& f) noexcept { f->released = true; }
};

void Client::add_call(Pending* p) {
  if (calls_.empty()) calls_.resize(64);
  while (next_id_ - first_call_ > calls_.size()) {  // the window outgrew the ring: double it
    std::vector<Pending*> bigger(calls_.size() * 2);
    for (std::uint64_t id = first_call_; id < p->id; ++id)
      bigger[id % bigger.size()] = calls_[id % calls_.size()];
    calls_.swap(bigger);
  }
  calls_[p->id % calls_.size()] = p;
  ++live_calls_;
}

Client::Pending* Client::find_call(std::uint64_t id) const noexcept {
  if (id < first_call_ || id >= next_id_ || calls_.empty()) return nullptr;
  Pending* p = calls_[id % calls_.size()];
  return p && p->id == id ? p : nullptr;
}

void Client::remove_call(std::uint64_t id) noexcept {
  if (!find_call(id)) return;
  calls_[id % calls_.size()] = nullptr;
  --live_calls_;
  while (first_call_ < next_id_ && calls_[first_call_ % calls_.size()] == nullptr)
    ++first_call_;
}

// Frames go in batches of at most 64 (a call's timeout looks for its frame among them).
constexpr std::size_t max_batch = 64;

Client::Client(detail::Transport socket, ClientOptions options)
    : socket_(std::move(socket)),
      options_(options),
      writes_(socket_.get_executor(), max_batch),
      reader_(std::max<std::size_t>(options.read_buffer, 4096)) {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);  // for the direct reads and writes; async ones are unaffected
  if (options_.pool) {
    pool_ = options_.pool;
  } else {
    own_pool_ = std::make_unique<BuddyPool>(BuddyPoolOptions{.min_block = 4096});
    pool_ = own_pool_.get();
  }
}

Client::~Client() = default;

asio::awaitable<tcp::socket> connect_socket(asio::any_io_executor executor, std::string host,
                                            std::uint16_t port, std::chrono::milliseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(host, std::to_string(port), use_awaitable);
  tcp::socket socket(executor);
  asio::steady_timer timer(executor, timeout);
  // as_tuple: operator|| waits for the first operation to *succeed*, so a refused connection
  // would otherwise sit out the whole timeout.
  auto result = co_await (asio::async_connect(socket, endpoints, as_tuple(use_awaitable)) ||
                          timer.async_wait(use_awaitable));
  if (result.index() == 1)
    throw std::system_error(std::make_error_code(std::errc::timed_out),
                            "connect to " + host + ":" + std::to_string(port));
  if (auto ec = std::get<0>(std::get<0>(result)))
    throw std::system_error(ec, "connect to " + host + ":" + std::to_string(port));
  socket.set_option(tcp::no_delay(true));
  co_return socket;
}

asio::awaitable<std::shared_ptr<Client>> Client::connect(asio::any_io_executor executor,
                                                         std::string host, std::uint16_t port,
                                                         ClientOptions options) {
  auto socket = co_await connect_socket(executor, std::move(host), port, options.connect_timeout);
  // (Not a conditional expression around the co_await: GCC 12 miscompiles those.)
  std::unique_ptr<detail::TlsLayer> tls;
  if (options.tls) tls = co_await options.tls(std::move(socket));
  detail::Transport transport =
      tls ? detail::Transport(std::move(tls)) : detail::Transport(std::move(socket));
  std::shared_ptr<Client> client(new Client(std::move(transport), options));
  auto reader = [client] { return client->read_loop(); };
  asio::co_spawn(executor, reader, asio::detached);
  auto writer = [client] { return client->write_loop(); };
  asio::co_spawn(executor, writer, asio::detached);
  // The reader and writer keep `client` alive while the connection is open, so the caller gets
  // a handle of its own: when its last copy goes, the connection is closed (on the client's
  // executor), the loops end, and the client is freed. Dropping a client leaks nothing.
  co_return std::shared_ptr<Client>(client.get(), [client](Client*) mutable {
    auto self = std::move(client);
    auto ex = self->socket_.get_executor();
    asio::post(ex, [self = std::move(self)] { self->close(); });
  });
}

std::string Client::Reply::message() const {
  return std::string(reinterpret_cast<const char*>(payload.data()), payload.size());
}

void Client::close() {
  detail::close_socket(socket_);
  fail_all(make_error_code(errc::closed));
}

void Client::fail_all(std::error_code ec) {
  if (!closed_with_) closed_with_ = ec;
  for (std::uint64_t id = first_call_; id < next_id_; ++id) {
    if (Pending* p = find_call(id)) {
      p->error = ec;
      p->timer.cancel();
      calls_[id % calls_.size()] = nullptr;
    }
  }
  first_call_ = next_id_;
  live_calls_ = 0;
  // The socket is closed: no write reads the frames any more.
  writes_.reset([](Frame*&& f) { f->released = true; });
}

asio::awaitable<std::tuple<boost::system::error_code, Client::Reply>> Client::call_for_token(
    std::uint8_t opcode, std::string key, asio::const_buffer payload) {
  try {
    Reply r = co_await call(opcode, key, payload);
    co_return std::make_tuple(boost::system::error_code{}, std::move(r));
  } catch (const std::system_error& e) {
    co_return std::make_tuple(boost::system::error_code(e.code()), Reply{});
  }
}

asio::awaitable<Client::Reply> Client::call(std::uint8_t opcode, std::string_view key,
                                            asio::const_buffer payload) {
  auto self = shared_from_this();  // the reader and writer outlive nothing they need
  if (!socket_.is_open() || closed_with_)
    throw std::system_error(closed_with_ ? closed_with_ : make_error_code(errc::closed));
  if (key.size() > rpc::max_key_size)
    throw std::system_error(make_error_code(errc::invalid_argument), "bufpool key above 250 bytes");
  Pending pending(socket_.get_executor(), next_id_++);
  Frame frame;
  rpc::FrameHeader h;
  h.opcode = opcode;
  h.request_id = pending.id;
  h.key_length = static_cast<std::uint32_t>(key.size());
  h.payload_length = payload.size();
  frame.header = rpc::encode(h);
  if (!key.empty()) std::memcpy(frame.key.data(), key.data(), key.size());
  frame.key_size = key.size();
  frame.payload = payload;
  add_call(&pending);
  writes_.push(&frame);
  if (live_calls_ == 1 && replied_not_resumed_ == 0) {
    // The only call in flight, and no other about to be made: write it now rather than through
    // the writer (which costs a trip through the executor). Otherwise the writer batches them.
    writes_.flush_now(socket_, [](Frame*&& f) { f->released = true; });
  } else {
    writes_.wake();
  }
  pending.timer.expires_after(options_.request_timeout);
  co_await pending.timer.async_wait(as_tuple(use_awaitable));
  // The reply can come before the writer has seen its write complete (or, from a server that
  // answers before reading the whole request, before it was all written): the frame and the
  // payload must be out of the queue before they go.
  const bool got_reply = pending.reply.has_value();
  if (got_reply) --replied_not_resumed_;
  if (!got_reply) remove_call(pending.id);  // timed out, or failed: forget the call
  if (!frame.released) co_await release(frame);
  if (got_reply) co_return std::move(*pending.reply);
  if (pending.error) throw std::system_error(pending.error);
  throw std::system_error(make_error_code(errc::timed_out), "bufpool rpc call");
}

// Takes a frame out of the write queue: dropped if no write has touched it; waited for if it is
// in the write in progress; and if a direct write sent part of it, the stream cannot be framed
// without the rest, so the connection closes.
asio::awaitable<void> Client::release(Frame& frame) {
  auto mine = [&frame](Frame* const& f) { return f == &frame; };
  auto drop = [](Frame*&& f) { f->released = true; };
  using Removal = detail::WriteQueue<Frame*, FrameBuffers>::Removal;
  switch (writes_.remove(mine, drop)) {
    case Removal::removed:
      break;
    case Removal::started:
      close();
      break;
    case Removal::absent:
      co_await writes_.until_written(mine);
      break;
  }
}

asio::awaitable<void> Client::write_loop() {
  WriterHooks hooks{{socket_}};
  const auto ec = co_await writes_.run(socket_, hooks);
  if (ec) close();
}

asio::awaitable<void> Client::read_loop() {
  auto self = shared_from_this();
  for (;;) {
    const bool have_header = co_await reader_.fill(socket_, rpc::header_size);
    if (!have_header) break;
    rpc::FrameHeader h;
    const auto bad = rpc::decode(reader_.data(), h);
    reader_.consume(rpc::header_size);
    if (bad != rpc::DecodeError::none || (h.flags & rpc::flags::response) == 0 ||
        h.key_length != 0) {
      break;  // the stream cannot be framed any more
    }
    const bool in_step = co_await read_reply(h);
    if (!in_step) break;
  }
  close();
}

// Reads one reply's payload (into a pool buffer when a call waits for it) and completes its call.
// False when the connection failed.
asio::awaitable<bool> Client::read_reply(const rpc::FrameHeader& h) {
  const auto len = static_cast<std::size_t>(h.payload_length);
  Buffer payload;
  std::error_code fail;
  if (len > 0) {
    if (find_call(h.request_id)) {
      payload = pool_->allocate_if_free(len);
      if (!payload) {
        auto [ec, b] = co_await reader_.across(
            pool_->async_allocate_for(len, options_.alloc_timeout, as_tuple(use_awaitable)));
        if (ec)
          fail = ec;
        else
          payload = std::move(b);
      }
    }
    bool complete;
    if (payload) {  // straight from the socket into the pool buffer
      complete = co_await reader_.read_into(socket_, {payload.data(), len});
    } else {  // nobody wants it (a late reply, or no memory): read and drop it
      complete = co_await reader_.skip(socket_, len);
    }
    if (!complete) co_return false;
  }
  // Look the call up now: it may have timed out while the payload was read.
  Pending* p = find_call(h.request_id);
  if (!p) co_return true;
  remove_call(h.request_id);
  if (fail) {
    p->error = fail;
  } else {
    p->reply = Reply{h.status, h.flags, std::move(payload)};
    ++replied_not_resumed_;
  }
  p->timer.cancel();
  co_return true;
}

// --- conveniences ------------------------------------------------------------------------------

namespace {
[[noreturn]] void throw_status(const Client::Reply& r, const char* what) {
  throw std::system_error(rpc::make_error_code(r.status), std::string(what) + ": " + r.message());
}
// A bad key would make the server close the connection, failing every call on it: refuse it here.
void check_key(std::string_view key) {
  if (!rpc::valid_key(key))
    throw std::system_error(make_error_code(errc::invalid_argument),
                            "bufpool key: 1 to 250 bytes of [A-Za-z0-9._~-]");
}
}  // namespace

asio::awaitable<void> Client::ping() {
  Reply r = co_await call(rpc::Opcode::ping, {});
  if (r.status != rpc::Status::ok) throw_status(r, "ping");
}

asio::awaitable<std::string> Client::auth(std::string_view token) {
  Reply r = co_await call(rpc::Opcode::auth, {}, asio::buffer(token.data(), token.size()));
  if (r.status != rpc::Status::ok) throw_status(r, "auth");
  co_return r.message();
}

asio::awaitable<bool> Client::put(std::string_view key, asio::const_buffer value) {
  check_key(key);
  Reply r = co_await call(rpc::Opcode::put, key, value);
  if (r.status != rpc::Status::ok) throw_status(r, "put");
  co_return (r.flags & rpc::flags::created) != 0;
}

asio::awaitable<std::optional<Buffer>> Client::get(std::string_view key) {
  check_key(key);
  Reply r = co_await call(rpc::Opcode::get, key);
  if (r.status == rpc::Status::not_found) co_return std::nullopt;
  if (r.status != rpc::Status::ok) throw_status(r, "get");
  co_return std::move(r.payload);
}

asio::awaitable<bool> Client::erase(std::string_view key) {
  check_key(key);
  Reply r = co_await call(rpc::Opcode::erase, key);
  if (r.status == rpc::Status::not_found) co_return false;
  if (r.status != rpc::Status::ok) throw_status(r, "delete");
  co_return true;
}

asio::awaitable<Buffer> Client::echo(asio::const_buffer payload) {
  Reply r = co_await call(rpc::Opcode::echo, {}, payload);
  if (r.status != rpc::Status::ok) throw_status(r, "echo");
  co_return std::move(r.payload);
}

asio::awaitable<std::string> Client::stats() {
  Reply r = co_await call(rpc::Opcode::stats, {});
  if (r.status != rpc::Status::ok) throw_status(r, "stats");
  co_return r.message();
}

}  // namespace bufpool
