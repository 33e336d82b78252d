// The table of open connections, for /v1/connections and for closing the longest-idle
// connection when max_connections is reached.
#pragma once

#include <bufpool/ordered_pool.hpp>
#include <bufpool/quota.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
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
  ConnectionInfo(std::uint64_t id_, std::string peer_, std::string address_, const char* protocol_,
                 std::function<void(bool)> close_, std::shared_ptr<Quota> unreceived_)
      : id(id_),
        peer(std::move(peer_)),
        address(std::move(address_)),
        protocol(protocol_),
        close(std::move(close_)),
        unreceived(std::move(unreceived_)) {}

  const std::uint64_t id;
  const std::string peer;      // address and port
  const std::string address;   // the client's address alone, which the per-address limits count
  const char* const protocol;  // "http", "rpc" or "resp"
  const std::int64_t opened_ns = now_ns();
  std::atomic<std::int64_t> last_active_ns{now_ns()};
  std::atomic<std::uint64_t> bytes_in{0}, bytes_out{0}, requests{0};
  std::atomic<bool> busy{false};  // inside a request
  bool evicted = false;           // asked to close for a new connection (under the table's mutex)
  // Asks the connection to close, on its own thread: at once if `force` or if it is between
  // requests, else after its current response. Safe to call after the connection is gone.
  const std::function<void(bool force)> close;
  // The body bytes that this connection's address has declared and not yet sent: a connection
  // takes units for a body's missing bytes before the body's block, and gives them back as the
  // bytes arrive. Shared by the address's connections; null when there is no address.
  const std::shared_ptr<Quota> unreceived;

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
struct ConnectionLimits {
  std::size_t max_connections = 1024;
  std::size_t per_address = 0;              // connections from one address at most; 0: no cap
  std::size_t unreceived_bytes = 0;         // each address's Quota of declared, unsent body bytes
  std::chrono::milliseconds stalled{1000};  // a request quiet this long may be evicted
};

class ConnectionTable {
 public:
  explicit ConnectionTable(std::size_t max_connections)
      : ConnectionTable(ConnectionLimits{max_connections}) {}
  explicit ConnectionTable(ConnectionLimits limits);

  enum class Refusal { none, table_full, address_full };
  /// A row for a new connection, or nullptr (and why, in `refused`) when even the headroom is
  /// full or the address has its share of connections. When the table holds max_connections or
  /// more, the connection that has been quiet the longest is asked to close first, if it is
  /// between requests after one at least (asked to close, which it does at once), or has been
  /// quiet for `stalled` (closed at once even inside a request: a client that trickles a request
  /// in holds a row like an idle one, and a busy row that is never evictable is a lockout), or,
  /// once half the headroom is gone too, whatever it is doing (victim() says why).
  ConnectionInfo* add(std::string peer, std::string address, const char* protocol,
                      std::function<void(bool)> close, Refusal* refused = nullptr);
  void remove(ConnectionInfo* row) noexcept;

  enum class Order { idle, bytes, age };
  std::vector<ConnectionRow> list(Order order);
  std::size_t size() const;
  /// Asks every connection to close (see ConnectionInfo::close).
  void close_all(bool force);
  std::uint64_t evictions() const noexcept { return evictions_.load(std::memory_order_relaxed); }
  /// Of the evictions, those of a stalled request.
  std::uint64_t stalled_evictions() const noexcept {
    return stalled_evictions_.load(std::memory_order_relaxed);
  }
  /// Open connections from `address`.
  std::size_t from(const std::string& address) const;

 private:
  ConnectionInfo* victim();
  struct Address {
    std::size_t connections = 0;
    std::shared_ptr<Quota> unreceived;
  };
  mutable std::mutex mutex_;
  OrderedPool<ConnectionInfo> rows_;
  ConnectionLimits limits_;
  std::unordered_map<std::string, Address> addresses_;
  std::uint64_t next_id_ = 1;
  std::atomic<std::uint64_t> evictions_{0};
  std::atomic<std::uint64_t> stalled_evictions_{0};
};

}  // namespace bufpool::server
