// The shell of a server-side connection built on the connection toolkit (the RPC connection, the
// RESP connection): its socket, deadline, reader, write queue and the timer that wakes its
// reader, and what every such connection does around its own read loop: start the watchdog and
// the writer, close at once or after what is in flight, and let the replies owed go out at the
// end. The protocol (parsing, answering, the writer's hooks) stays with the connection.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>

#include "bufpool/detail/close_socket.hpp"
#include "bufpool/detail/direct_reader.hpp"
#include "bufpool/detail/receive_pace.hpp"
#include "bufpool/detail/transport.hpp"
#include "bufpool/detail/watchdog.hpp"
#include "bufpool/detail/write_queue.hpp"

namespace bufpool::detail {

/// Single executor, like the socket. The connection derives from it and keeps itself alive
/// (enable_shared_from_this) while its coroutines run.
template <typename Entry, typename BuffersOf>
class ServedConnection {
 protected:
  using tcp = boost::asio::ip::tcp;
  using Clock = std::chrono::steady_clock;

  ServedConnection(Transport socket, std::size_t read_buffer, PaceLimits pace)
      : pace_(pace),
        socket_(std::move(socket)),
        watchdog_(socket_.get_executor()),
        reader_(read_buffer),
        writes_(socket_.get_executor()),
        wake_reader_(socket_.get_executor(), Clock::time_point::max()) {
    boost::system::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);  // replies are whole gathered writes: no Nagle
    // For the reader's and flush_now()'s direct reads and writes; async operations are unaffected.
    socket_.non_blocking(true, ec);
  }

  /// Spawns the watchdog (`on_expiry()` runs when a deadline passes; it should close the socket)
  /// and the writer (WriteQueue::run with `hooks`). `owner` keeps the connection alive for both.
  template <typename OnExpiry, typename Hooks>
  void start_helpers(std::shared_ptr<void> owner, OnExpiry on_expiry, Hooks hooks) {
    auto executor = socket_.get_executor();
    auto watcher = [this, owner, on_expiry] { return watchdog_.run(on_expiry); };
    boost::asio::co_spawn(executor, watcher, boost::asio::detached);
    auto writer = [this, owner, hooks] { return write_loop(hooks); };
    boost::asio::co_spawn(executor, writer, boost::asio::detached);
  }

  /// Arms the deadline of the next read: `idle_timeout` when it waits for a new request with
  /// nothing of it read (`idle`), else the pace's (the read timeout, the header's deadline or
  /// the body's rate). `limit_` says which, for the watchdog's expiry.
  void arm_read(bool idle, std::chrono::milliseconds idle_timeout) noexcept {
    if (idle && reader_.size() == 0) {
      limit_ = ReceivePace::Limit::read;
      watchdog_.arm(idle_timeout);
      return;
    }
    if (pace_.phase() != ReceivePace::Phase::body) pace_.header();
    watchdog_.arm_at(pace_.deadline(Clock::now(), limit_));
  }

  /// Closes at once: every pending operation fails, the writer and the watchdog end.
  void close_socket() {
    detail::close_socket(socket_);
    watchdog_.stop();
    writes_.wake();
    wake_reader_.cancel();
  }

  /// The graceful close: stop reading after the current request. `between_requests` (nothing
  /// buffered or in flight): the pending read is ended now (EOF), so the reader sees it.
  void stop_reading(bool between_requests) {
    stop_reading_ = true;
    wake_reader_.cancel();
    if (between_requests) {
      boost::system::error_code ec;
      socket_.shutdown(tcp::socket::shutdown_receive, ec);
    }
  }

  /// After the read loop: nothing more will be queued; returns once the writer has written what
  /// is owed (or failed).
  boost::asio::awaitable<void> finish_writes() {
    reading_done_ = true;
    writes_.wake();
    while (!writer_done_) {
      wake_reader_.expires_at(Clock::time_point::max());
      co_await wake_reader_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
  }

  ReceivePace pace_;  // where the request being read is: idle, header or body
  ReceivePace::Limit limit_ = ReceivePace::Limit::read;  // of the armed deadline
  Transport socket_;                                     // TCP, or TLS over it
  Watchdog watchdog_;
  DirectReader reader_;
  WriteQueue<Entry, BuffersOf> writes_;
  boost::asio::steady_timer wake_reader_;  // cancelled when the writer has written, and to stop
  bool reading_done_ = false;
  bool writer_done_ = false;
  bool stop_reading_ = false;

 private:
  template <typename Hooks>
  boost::asio::awaitable<void> write_loop(Hooks hooks) {
    const boost::system::error_code ec = co_await writes_.run(socket_, hooks);
    if (ec) close_socket();
    writer_done_ = true;
    wake_reader_.cancel();
  }
};

}  // namespace bufpool::detail
