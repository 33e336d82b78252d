// The table of open connections, for /v1/connections and for closing the longest-idle
// connection when max_connections is reached.
#pragma once

#include <bufpool/ordered_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace bufpool::server {

using Clock = std::chrono::steady_clock;

inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

/// One open connection. Its own thread updates the counters; readers of the table see them
/// through atomics (relaxed: they are statistics).
struct ConnectionInfo {
  ConnectionInfo(std::uint64_t id_, std::string peer_, const char* protocol_,
                 std::function<void(bool)> close_)
      : id(id_), peer(std::move(peer_)), protocol(protocol_), close(std::move(close_)) {}

  const std::uint64_t id;
  const std::string peer;
  const char* const protocol;  // "http", "rpc" or "resp"
  const std::int64_t opened_ns = now_ns();
  std::atomic<std::int64_t> last_active_ns{now_ns()};
  std::atomic<std::uint64_t> bytes_in{0}, bytes_out{0}, requests{0};
  std::atomic<bool> busy{false};  // inside a request
  // Asks the connection to close, on its own thread: at once if `force` or if it is between
  // requests, else after its current response. Safe to call after the connection is gone.
  const std::function<void(bool force)> close;

  void touch() noexcept { last_active_ns.store(now_ns(), std::memory_order_relaxed); }
};

/// A snapshot row of the table.
struct ConnectionRow {
  std::uint64_t id;
  std::string peer;
  const char* protocol;
  double age_s, idle_s;
  std::uint64_t bytes_in, bytes_out, requests;
  bool busy;
};

/// The connection table is an OrderedPool: slots never move (a connection keeps a plain pointer
/// to its row), adding and removing are O(1), and sort() reorders the rows in place, without
/// copying them, for the listing and to find the longest-idle connection. The mutex is held for
/// those O(1) steps and for a sort, never across I/O.
class ConnectionTable {
 public:
  explicit ConnectionTable(std::size_t max_connections);

  /// A row for a new connection, or nullptr when even the headroom is full. When the table
  /// holds max_connections or more, the longest-idle connection that is not inside a request
  /// is asked to close first.
  ConnectionInfo* add(std::string peer, const char* protocol, std::function<void(bool)> close);
  void remove(ConnectionInfo* row) noexcept;

  enum class Order { idle, bytes, age };
  std::vector<ConnectionRow> list(Order order);
  std::size_t size() const;
  /// Asks every connection to close (see ConnectionInfo::close).
  void close_all(bool force);
  std::uint64_t evictions() const noexcept { return evictions_.load(std::memory_order_relaxed); }

 private:
  mutable std::mutex mutex_;
  OrderedPool<ConnectionInfo> rows_;
  std::size_t max_;
  std::uint64_t next_id_ = 1;
  std::atomic<std::uint64_t> evictions_{0};
};

}  // namespace bufpool::server
