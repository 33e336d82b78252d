#include "bufpool/client.hpp"

#include <bufpool/error.hpp>

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
  explicit Pending(const asio::any_io_executor& ex) : timer(ex, Clock::time_point::max()) {}
  asio::steady_timer timer;  // cancelled when the reply (or an error) is in
  std::optional<Reply> reply;
  std::error_code error;
};

// A request on its way out. The payload is the caller's memory, alive while its call waits.
struct Client::Frame {
  std::uint64_t id = 0;
  rpc::HeaderBytes header;
  std::string key;
  asio::const_buffer payload;
  std::size_t written = 0;  // bytes that call() wrote directly (only the front frame has any)
  std::size_t size() const { return header.size() + key.size() + payload.size(); }
};

namespace {
// Drops the first n bytes of a gathered write (already written).
void drop_front(std::vector<asio::const_buffer>& buffers, std::size_t n) {
  std::size_t i = 0;
  while (n > 0 && i < buffers.size() && buffers[i].size() <= n)
    n -= buffers[i++].size();
  buffers.erase(buffers.begin(), buffers.begin() + static_cast<std::ptrdiff_t>(i));
  if (n > 0 && !buffers.empty()) buffers.front() += n;
}
}  // namespace

Client::Client(tcp::socket socket, ClientOptions options)
    : socket_(std::move(socket)),
      options_(options),
      wake_writer_(socket_.get_executor(), Clock::time_point::max()),
      write_done_(socket_.get_executor(), Clock::time_point::max()),
      in_(64 * 1024) {
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
  std::shared_ptr<Client> client(new Client(std::move(socket), options));
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
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  wake_writer_.cancel();
  fail_all(make_error_code(errc::closed));
}

void Client::fail_all(std::error_code ec) {
  if (!closed_with_) closed_with_ = ec;
  for (auto& [id, p] : pending_) {
    p->error = ec;
    p->timer.cancel();
  }
  pending_.clear();
  outgoing_.clear();
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
  Pending pending(socket_.get_executor());
  const std::uint64_t id = next_id_++;
  auto frame = std::make_unique<Frame>();
  rpc::FrameHeader h;
  h.opcode = opcode;
  h.request_id = id;
  h.key_length = static_cast<std::uint32_t>(key.size());
  h.payload_length = payload.size();
  frame->header = rpc::encode(h);
  frame->id = id;
  frame->key.assign(key);
  frame->payload = payload;
  pending_.emplace(id, &pending);
  if (!writing_ && outgoing_.empty() && pending_.size() == 1) {
    // The only call in flight: write it now rather than through the writer (which costs a trip
    // through the executor). With calls in flight, the writer batches them into one write.
    const std::array<asio::const_buffer, 3> buffers{asio::buffer(frame->header),
                                                    asio::buffer(frame->key), payload};
    boost::system::error_code ec;
    frame->written = socket_.write_some(buffers, ec);
    if (ec) frame->written = 0;  // would_block, or an error that the writer meets
  }
  if (frame->written < frame->size()) {
    outgoing_.push_back(std::move(frame));
    wake_writer_.cancel();
  }
  pending.timer.expires_after(options_.request_timeout);
  co_await pending.timer.async_wait(as_tuple(use_awaitable));
  if (pending.reply) co_return std::move(*pending.reply);
  if (pending.error) throw std::system_error(pending.error);
  // The timer ran out: forget the call. The payload is the caller's memory, so the frame must
  // not be written after this returns: drop it if it is still queued, or wait for the write in
  // progress to finish with it.
  pending_.erase(id);
  bool queued = false;
  for (auto it = outgoing_.begin(); it != outgoing_.end(); ++it) {
    if ((*it)->id == id) {
      if ((*it)->written > 0) {
        close();  // half of it is on the wire: the stream cannot be framed without the rest
        throw std::system_error(make_error_code(errc::timed_out), "bufpool rpc call");
      }
      outgoing_.erase(it);
      queued = true;
      break;
    }
  }
  while (!queued && writing_ && id >= batch_first_ && id <= batch_last_) {
    write_done_.expires_at(Clock::time_point::max());
    co_await write_done_.async_wait(as_tuple(use_awaitable));
  }
  throw std::system_error(make_error_code(errc::timed_out), "bufpool rpc call");
}

asio::awaitable<void> Client::write_loop() {
  std::vector<std::unique_ptr<Frame>> batch;
  std::vector<asio::const_buffer> buffers;
  while (socket_.is_open()) {
    if (outgoing_.empty()) {
      wake_writer_.expires_at(Clock::time_point::max());
      co_await wake_writer_.async_wait(as_tuple(use_awaitable));
      continue;
    }
    batch.clear();
    buffers.clear();
    while (!outgoing_.empty() && batch.size() < 64) {
      batch.push_back(std::move(outgoing_.front()));
      outgoing_.pop_front();
      Frame& f = *batch.back();
      buffers.push_back(asio::buffer(f.header));
      if (!f.key.empty()) buffers.push_back(asio::buffer(f.key));
      if (f.payload.size() > 0) buffers.push_back(f.payload);
    }
    drop_front(buffers, batch.front()->written);
    // Calls that time out meanwhile wait for this write before their payload may go away.
    batch_first_ = batch.front()->id;
    batch_last_ = batch.back()->id;
    writing_ = true;
    // A span, not the vector: async_write copies its buffer sequence, and a vector copy allocates.
    auto [ec, n] = co_await asio::async_write(socket_, std::span<const asio::const_buffer>(buffers),
                                              as_tuple(use_awaitable));
    writing_ = false;
    write_done_.cancel();
    if (ec) {
      close();
      co_return;
    }
  }
}

// Reads go straight to the socket; after a read that emptied it, readiness is awaited first,
// which saves the read that would fail with EAGAIN. drained_ is reset wherever the reader yields
// otherwise (the reactor may have taken the readiness edge meanwhile).
asio::awaitable<bool> Client::fill(std::size_t n) {
  while (in_.size() < n) {
    if (drained_) {
      drained_ = false;
      auto [wec] = co_await socket_.async_wait(tcp::socket::wait_read, as_tuple(use_awaitable));
      if (wec) co_return false;
    }
    boost::system::error_code ec;
    const std::size_t space = in_.max_size() - in_.size();
    const std::size_t got = socket_.read_some(in_.prepare(space), ec);
    if (ec == asio::error::would_block) {
      drained_ = true;
      continue;
    }
    if (ec) co_return false;
    drained_ = got < space;
    in_.commit(got);
  }
  co_return true;
}

asio::awaitable<void> Client::read_loop() {
  auto self = shared_from_this();
  for (;;) {
    if (!co_await fill(rpc::header_size)) break;
    rpc::FrameHeader h;
    const auto bad = rpc::decode(unread(), h);
    in_.consume(rpc::header_size);
    if (bad != rpc::DecodeError::none || (h.flags & rpc::flags::response) == 0 ||
        h.key_length != 0) {
      close();  // the stream cannot be framed any more
      co_return;
    }
    auto it = pending_.find(h.request_id);
    Pending* p = it == pending_.end() ? nullptr : it->second;
    const auto len = static_cast<std::size_t>(h.payload_length);
    Buffer payload;
    std::error_code fail;
    if (len > 0) {
      if (p) {
        payload = pool_->allocate_if_free(len);
        if (!payload) {
          auto [ec, b] = co_await pool_->async_allocate_for(len, options_.alloc_timeout,
                                                            as_tuple(use_awaitable));
          drained_ = false;
          if (ec)
            fail = ec;
          else
            payload = std::move(b);
        }
      }
      std::size_t have = std::min(len, in_.size());
      if (payload) std::memcpy(payload.data(), unread(), have);
      in_.consume(have);
      while (have < len) {
        if (payload) {  // straight from the socket into the pool buffer
          auto [ec, got] = co_await socket_.async_read_some(
              asio::buffer(payload.data() + have, len - have), as_tuple(use_awaitable));
          if (ec) break;
          drained_ = false;  // the completion ran later than the read: the reactor may have
                             // seen new data meanwhile, so never wait for readiness on its word
          have += got;
        } else {  // nobody wants it (a late reply, or no memory): read and drop it
          if (!co_await fill(1)) break;
          const std::size_t take = std::min(len - have, in_.size());
          in_.consume(take);
          have += take;
        }
      }
      if (have < len) break;
    }
    // Look the call up again: it may have timed out while the payload was read.
    it = pending_.find(h.request_id);
    if (it == pending_.end()) continue;
    p = it->second;
    pending_.erase(it);
    if (fail) {
      p->error = fail;
    } else {
      p->reply = Reply{h.status, h.flags, std::move(payload)};
    }
    p->timer.cancel();
  }
  close();
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
