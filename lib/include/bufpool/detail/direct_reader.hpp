// The read side of a connection: a buffer of bytes read and not yet parsed, filled by direct
// (non-blocking) reads, and payloads read from the socket straight into their own memory. Part
// of the connection toolkit (detail/watchdog.hpp, detail/write_queue.hpp).
#pragma once

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace bufpool::detail {

/// Fills `dst`: first from `buffered` (a DynamicBuffer_v1 of bytes read with an earlier header:
/// they are copied, the one copy, and consumed), the rest from the socket straight into `dst`.
/// `before_read()` runs before each read, `on_read(bytes)` after each. Returns the socket's error
/// if it failed first.
template <typename Socket, typename DynamicBuffer, typename BeforeRead, typename OnRead>
boost::asio::awaitable<boost::system::error_code> read_through(Socket& socket,
                                                               DynamicBuffer& buffered,
                                                               std::span<std::byte> dst,
                                                               BeforeRead before_read,
                                                               OnRead on_read) {
  std::size_t have =
      boost::asio::buffer_copy(boost::asio::buffer(dst.data(), dst.size()), buffered.data());
  buffered.consume(have);
  while (have < dst.size()) {
    before_read();
    auto [ec, got] =
        co_await socket.async_read_some(boost::asio::buffer(dst.data() + have, dst.size() - have),
                                        boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return ec;
    have += got;
    on_read(got);
  }
  co_return boost::system::error_code{};
}

/// The socket must be in non-blocking mode (`socket.non_blocking(true)`); Asio's own asynchronous
/// operations are unaffected by it.
///
/// fill() reads straight from the socket. After a read that emptied the socket ("drained": it
/// returned less than it had room for, or EAGAIN), the next fill() awaits readiness first, which
/// saves the read that would fail with EAGAIN: on a pipelined connection that is one system call
/// in three. **The drained rule:** that shortcut is valid only while the reading coroutine has
/// not suspended since the read. Once it suspends on anything else, the peer may send more and
/// the event loop may take the readiness edge of that data; a readiness wait that starts later
/// then relies on the reactor to report the readiness again. Asio 1.81's epoll reactor does (it
/// re-arms the descriptor with EPOLL_CTL_MOD when the wait starts: a system call and a trip
/// through the scheduler that a direct read would not cost); a reactor that does not would
/// sleep until the peer sends more, a hang when the peer waits for our replies. So every other
/// wait of the reading coroutine goes through across(); the
/// reader's own waits keep the rule themselves. tests/unit/direct_reader_test.cpp checks it.
class DirectReader {
 public:
  explicit DirectReader(std::size_t capacity) : in_(capacity) {}

  const std::byte* data() const noexcept {
    return static_cast<const std::byte*>(in_.data().data());
  }
  std::size_t size() const noexcept { return in_.size(); }
  std::size_t capacity() const noexcept { return in_.max_size(); }
  void consume(std::size_t n) noexcept { in_.consume(n); }
  /// Forgets what is buffered (a new connection on the same reader).
  void reset() noexcept {
    in_.consume(in_.size());
    drained_ = false;
  }

  /// Makes at least n (<= capacity()) unread bytes available. `before_read()` runs before every
  /// attempt (flush what is owed, arm a deadline), `on_read(bytes)` after every read that got
  /// bytes. False when the socket failed or closed.
  template <typename Socket, typename BeforeRead, typename OnRead>
  boost::asio::awaitable<bool> fill(Socket& socket, std::size_t n, BeforeRead before_read,
                                    OnRead on_read) {
    while (in_.size() < n) {
      before_read();
      if (drained_) {
        drained_ = false;
        auto [ec] = co_await socket.async_wait(boost::asio::socket_base::wait_read,
                                               boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec) co_return false;
      }
      boost::system::error_code ec;
      const std::size_t space = in_.max_size() - in_.size();
      const std::size_t got = socket.read_some(in_.prepare(space), ec);
      if (ec == boost::asio::error::would_block) {
        drained_ = true;
        continue;
      }
      if (ec) co_return false;
      drained_ = got < space;
      in_.commit(got);
      on_read(got);
    }
    co_return true;
  }
  template <typename Socket>
  boost::asio::awaitable<bool> fill(Socket& socket, std::size_t n) {
    return fill(
        socket, n, [] {}, [](std::size_t) {});
  }

  /// read_through() from this reader's buffer. False when the socket failed first.
  template <typename Socket, typename BeforeRead, typename OnRead>
  boost::asio::awaitable<bool> read_into(Socket& socket, std::span<std::byte> dst,
                                         BeforeRead before_read, OnRead on_read) {
    // Reading from the socket completes later than the read: the reactor may see new data
    // meanwhile, so the next fill() must not wait for readiness on an older read's word.
    if (dst.size() > in_.size()) drained_ = false;
    const auto ec = co_await read_through(socket, in_, dst, before_read, on_read);
    co_return !ec;
  }
  template <typename Socket>
  boost::asio::awaitable<bool> read_into(Socket& socket, std::span<std::byte> dst) {
    return read_into(
        socket, dst, [] {}, [](std::size_t) {});
  }

  /// Reads and drops n bytes (a payload nobody takes), to stay in step with the stream.
  template <typename Socket, typename BeforeRead, typename OnRead>
  boost::asio::awaitable<bool> skip(Socket& socket, std::uint64_t n, BeforeRead before_read,
                                    OnRead on_read) {
    while (n > 0) {
      if (in_.size() == 0 && !co_await fill(socket, 1, before_read, on_read)) co_return false;
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n, in_.size()));
      in_.consume(take);
      n -= take;
    }
    co_return true;
  }

  template <typename Socket>
  boost::asio::awaitable<bool> skip(Socket& socket, std::uint64_t n) {
    return skip(
        socket, n, [] {}, [](std::size_t) {});
  }

  /// Any other wait of the reading coroutine: `co_await reader.across(op)` (op an awaitable)
  /// keeps the drained rule.
  template <typename T>
  boost::asio::awaitable<T> across(boost::asio::awaitable<T> op) {
    T result = co_await std::move(op);
    drained_ = false;
    co_return result;
  }
  boost::asio::awaitable<void> across(boost::asio::awaitable<void> op) {
    co_await std::move(op);
    drained_ = false;
  }

 private:
  boost::asio::streambuf in_;
  bool drained_ = false;
};

}  // namespace bufpool::detail
