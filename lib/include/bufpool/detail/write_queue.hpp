// The write side of a connection: what is owed goes out in order, as gathered writes, tried at
// once from the code that queues it (a direct write) and finished by a writer coroutine. Part of
// the connection toolkit (detail/watchdog.hpp, detail/direct_reader.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace bufpool::detail {

/// Appends the buffers of `entries`, less their first `skip` bytes (already written).
template <typename Entries, typename BuffersOf>
void gather(const Entries& entries, std::size_t skip, BuffersOf buffers_of,
            std::vector<boost::asio::const_buffer>& out) {
  for (const auto& slot : entries) {
    for (boost::asio::const_buffer b : buffers_of(slot.entry)) {
      if (b.size() <= skip) {  // written already, or empty
        skip -= b.size();
        continue;
      }
      out.push_back(b + skip);
      skip = 0;
    }
  }
}

/// Writes every byte of `buffers` as asio::async_write does, consuming them in place, but with up
/// to 64 buffers per system call where async_write passes 16 (its consuming_buffers' limit): a
/// batch of 16 pipelined responses of two or three buffers each is then one sendmsg, not two or
/// three. `condition(ec, written)` is async_write's completion condition: the most bytes for the
/// next step, 0 to stop. Returns the error (if a step failed) and the bytes written.
template <typename Socket, typename Condition>
boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> write_gathered(
    Socket& socket, std::vector<boost::asio::const_buffer>& buffers, Condition condition) {
  std::array<boost::asio::const_buffer, 64> step;  // Asio's cap per system call
  std::size_t first = 0, total = 0;
  boost::system::error_code ec;
  for (;;) {
    while (first < buffers.size() && buffers[first].size() == 0)
      ++first;
    if (first == buffers.size()) break;
    std::size_t room = condition(ec, total);
    if (room == 0) break;
    std::size_t count = 0;
    for (std::size_t i = first; i < buffers.size() && count < step.size() && room > 0; ++i) {
      const std::size_t take = std::min(buffers[i].size(), room);
      step[count++] = boost::asio::const_buffer(buffers[i].data(), take);
      room -= take;
    }
    auto [step_ec, n] = co_await socket.async_write_some(
        std::span<const boost::asio::const_buffer>(step.data(), count),
        boost::asio::as_tuple(boost::asio::use_awaitable));
    ec = step_ec;
    total += n;
    for (; n > 0; ++first) {
      if (n < buffers[first].size()) {
        buffers[first] += n;
        break;
      }
      n -= buffers[first].size();
      buffers[first] = boost::asio::const_buffer();
    }
    if (ec) break;
  }
  co_return std::make_pair(ec, total);
}

/// Entries of type T (how the owner holds a request or response: a unique_ptr, a pointer into a
/// waiting coroutine's frame) whose bytes are `BuffersOf{}(entry)`, a range of const_buffers
/// that stay valid until the entry is handed back. Each entry is handed back exactly once, to
/// the `done(T&&)` of the call that finishes with it: written, or dropped by a failed write or
/// reset(). No heap call per entry once the vectors have grown. Single executor.
template <typename T, typename BuffersOf>
class WriteQueue {
 public:
  explicit WriteQueue(const boost::asio::any_io_executor& executor,
                      std::size_t max_batch = std::numeric_limits<std::size_t>::max())
      : wake_(executor, Clock::time_point::max()),
        written_(executor, Clock::time_point::max()),
        max_batch_(max_batch) {}

  void push(T entry) {
    std::size_t bytes = 0;
    for (boost::asio::const_buffer b : BuffersOf{}(entry))
      bytes += b.size();
    queue_.push_back(Slot{std::move(entry), bytes});
  }
  /// Wakes the writer to take what is queued.
  void wake() noexcept { wake_.cancel(); }
  /// Nothing queued (a write may be in progress).
  bool empty() const noexcept { return queue_.empty(); }
  /// Entries queued and not yet taken by a write.
  std::size_t queued() const noexcept { return queue_.size(); }
  /// A write is in progress.
  bool writing() const noexcept { return writing_; }
  /// Entries queued or being written.
  std::size_t unsent() const noexcept { return queue_.size() + batch_.size(); }

  /// The direct write: if no write is in progress, writes what is queued now with one
  /// non-blocking gathered write (the socket must be non-blocking); the entries it finishes go
  /// to `done`, and the writer is woken for whatever the socket did not take. Returns the bytes
  /// written. An error is left for the writer to meet.
  template <typename Socket, typename Done>
  std::size_t flush_now(Socket& socket, Done done) {
    if (queue_.empty()) return 0;
    if (writing_) {
      wake();  // the writer takes the rest after its write
      return 0;
    }
    direct_.clear();
    gather(queue_, written_ahead_, BuffersOf{}, direct_);
    boost::system::error_code ec;
    std::size_t n = socket.write_some(std::span<const boost::asio::const_buffer>(direct_), ec);
    if (ec) n = 0;  // would_block, or an error that the writer meets and handles
    const std::size_t wrote = n;
    n += written_ahead_;
    std::size_t finished = 0;
    while (finished < queue_.size() && queue_[finished].bytes <= n) {
      n -= queue_[finished].bytes;
      done(std::move(queue_[finished].entry));
      ++finished;
    }
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(finished));
    written_ahead_ = n;
    if (!queue_.empty()) wake();
    return wrote;
  }

  /// Hooks of the writer coroutine:
  /// - `bool stopped()`: end now (the socket is closed, or belongs to another connection);
  /// - `bool finished()`: nothing more will be queued (checked when the queue is empty);
  /// - `std::size_t progress(error_code, std::size_t)`: the completion condition of the write
  ///   (write_gathered; Watchdog::progress(), say);
  /// - `void done(T&&)`: as for flush_now();
  /// - `void after_write(error_code, std::size_t bytes)`: after each write, its entries done.
  /// Ends with the error of a failed write (every entry queued is then dropped to done()), or
  /// with no error when stopped or finished.
  template <typename Socket, typename Hooks>
  boost::asio::awaitable<boost::system::error_code> run(Socket& socket, Hooks& hooks) {
    const std::uint64_t generation = generation_;
    std::vector<boost::asio::const_buffer> buffers;
    for (;;) {
      while (queue_.empty()) {
        if (generation != generation_ || hooks.stopped() || hooks.finished())
          co_return boost::system::error_code{};
        wake_.expires_at(Clock::time_point::max());
        co_await wake_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      }
      if (generation != generation_ || hooks.stopped()) co_return boost::system::error_code{};
      take_batch();
      buffers.clear();
      gather(batch_, written_ahead_, BuffersOf{}, buffers);
      written_ahead_ = 0;
      writing_ = true;
      auto progress = [&hooks](const boost::system::error_code& ec, std::size_t n) {
        return hooks.progress(ec, n);
      };
      auto [ec, n] = co_await write_gathered(socket, buffers, progress);
      if (generation != generation_) co_return ec;  // reset() took the batch meanwhile
      writing_ = false;
      for (Slot& slot : batch_)
        hooks.done(std::move(slot.entry));
      batch_.clear();
      written_.cancel();
      hooks.after_write(ec, n);
      if (ec) {
        drop_queued([&hooks](T&& entry) { hooks.done(std::move(entry)); });
        co_return ec;
      }
    }
  }

  /// Takes out the first queued entry for which pred(entry) holds, if no write has touched it
  /// (`removed`, handed to `done`); `started`: a direct write sent part of it, so it must go out
  /// whole (or the connection close); `absent`: not queued.
  enum class Removal { removed, started, absent };
  template <typename Pred, typename Done>
  Removal remove(Pred pred, Done done) {
    for (std::size_t i = 0; i < queue_.size(); ++i) {
      if (!pred(queue_[i].entry)) continue;
      if (i == 0 && written_ahead_ > 0) return Removal::started;
      done(std::move(queue_[i].entry));
      queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
      return Removal::removed;
    }
    return Removal::absent;  // not queued: written, or in the write in progress (in_write())
  }
  /// An entry for which pred(entry) holds is in the write in progress.
  template <typename Pred>
  bool in_write(Pred pred) const {
    return std::any_of(batch_.begin(), batch_.end(),
                       [&pred](const Slot& slot) { return pred(slot.entry); });
  }
  /// Returns once no write in progress holds such an entry (its memory may then go).
  template <typename Pred>
  boost::asio::awaitable<void> until_written(Pred pred) {
    while (in_write(pred)) {
      written_.expires_at(Clock::time_point::max());
      co_await written_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
  }

  /// Forgets every entry (queued, and the write in progress, whose completion then touches
  /// nothing) and ends the writer; for a connection that closes or reconnects. Entries go to
  /// `done`. The caller must have closed the socket, so that no write still reads the entries.
  template <typename Done>
  void reset(Done done) {
    ++generation_;
    drop_queued(done);
    for (Slot& slot : batch_)
      done(std::move(slot.entry));
    batch_.clear();
    writing_ = false;
    wake_.cancel();
    written_.cancel();
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Slot {
    T entry;
    std::size_t bytes;
  };

  void take_batch() {
    if (queue_.size() <= max_batch_) {
      batch_.swap(queue_);  // everything queued goes out in one gathered write
      return;
    }
    const auto end = queue_.begin() + static_cast<std::ptrdiff_t>(max_batch_);
    std::move(queue_.begin(), end, std::back_inserter(batch_));
    queue_.erase(queue_.begin(), end);
  }
  template <typename Done>
  void drop_queued(Done&& done) {
    for (Slot& slot : queue_)
      done(std::move(slot.entry));
    queue_.clear();
    written_ahead_ = 0;
  }

  std::vector<Slot> queue_;  // waiting for a write
  std::vector<Slot> batch_;  // in the write in progress
  std::vector<boost::asio::const_buffer> direct_;
  boost::asio::steady_timer wake_;     // cancelled to wake the writer
  boost::asio::steady_timer written_;  // cancelled after each write
  std::size_t max_batch_;
  std::size_t written_ahead_ = 0;  // bytes of queue_'s front that a direct write wrote
  std::uint64_t generation_ = 0;   // one per reset(): an old writer ends quietly
  bool writing_ = false;
};

/// WriteQueue::run's hooks for a writer with no deadline of its own (a client whose calls each
/// have a timeout), whose entries need nothing once written: it ends when its socket closes.
template <typename Socket>
struct PlainWriterHooks {
  const Socket& socket;
  bool stopped() const noexcept { return !socket.is_open(); }
  static bool finished() noexcept { return false; }
  static std::size_t progress(const boost::system::error_code& ec, std::size_t) noexcept {
    return ec ? 0 : 64 * 1024;  // asio::transfer_all's steps
  }
  template <typename T>
  static void done(T&&) noexcept {}
  static void after_write(const boost::system::error_code&, std::size_t) noexcept {}
};

}  // namespace bufpool::detail
