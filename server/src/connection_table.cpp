#include "connection_table.hpp"

#include <algorithm>

namespace bufpool::server {

namespace {
// Headroom above max_connections: a connection asked to close leaves the table only when its
// thread gets to it, and new ones keep arriving meanwhile.
constexpr std::size_t headroom = 64;
}  // namespace

ConnectionTable::ConnectionTable(ConnectionLimits limits)
    : rows_(limits.max_connections + headroom), limits_(limits) {}

ConnectionInfo* ConnectionTable::add(std::string peer, std::string address, const char* protocol,
                                     std::function<void(bool)> close, Refusal* refused) {
  std::function<void(bool)> evict;
  bool force = false;
  ConnectionInfo* row = nullptr;
  Refusal why = Refusal::none;
  {
    std::lock_guard lock(mutex_);
    Address& a = addresses_[address];
    if (limits_.per_address != 0 && a.connections >= limits_.per_address) {
      why = Refusal::address_full;
    } else {
      if (rows_.size() >= limits_.max_connections) {
        if (ConnectionInfo* v = victim()) {
          v->evicted = true;
          evict = v->close;
          force = v->busy.load(std::memory_order_relaxed);
        }
      }
      if (!a.unreceived && limits_.unreceived_bytes > 0)
        a.unreceived = std::make_shared<Quota>(limits_.unreceived_bytes);
      row = rows_.try_allocate(next_id_, std::move(peer), address, protocol, std::move(close),
                               a.unreceived);
      if (row) {
        ++next_id_;
        ++a.connections;
      } else {
        why = Refusal::table_full;
      }
    }
    if (a.connections == 0) addresses_.erase(address);
  }
  if (evict) {
    evictions_.fetch_add(1, std::memory_order_relaxed);
    if (force) stalled_evictions_.fetch_add(1, std::memory_order_relaxed);
    evict(force);
  }
  if (refused) *refused = why;
  return row;
}

// The row to close for a new connection, under the mutex. In the order of the longest quiet:
// a row between requests after one at least (a keep-alive connection), or one quiet for
// `stalled` whatever it is doing. A connection that has just opened and not yet sent its first
// request is neither: it is about to, and evicting it helps nobody. When none is and half the
// headroom is gone too (connections arrive faster than rows become evictable: a reconnecting
// flood), the longest-quiet row goes anyway, rather than every newcomer being refused: a normal
// request, answered in a millisecond, is never the longest quiet.
ConnectionInfo* ConnectionTable::victim() {
  rows_.sort([](const ConnectionInfo& x, const ConnectionInfo& y) {
    return x.last_active_ns.load(std::memory_order_relaxed) <
           y.last_active_ns.load(std::memory_order_relaxed);
  });
  const std::int64_t stalled_before =
      now_ns() - std::chrono::duration_cast<std::chrono::nanoseconds>(limits_.stalled).count();
  ConnectionInfo* quietest = nullptr;
  for (std::size_t i = 0; i < rows_.size(); ++i) {
    ConnectionInfo& r = rows_[i];
    if (r.evicted) continue;  // on its way out already: each add evicts one more
    if (!quietest) quietest = &r;
    const bool kept_alive =
        !r.busy.load(std::memory_order_relaxed) && r.requests.load(std::memory_order_relaxed) > 0;
    if (kept_alive || r.last_active_ns.load(std::memory_order_relaxed) <= stalled_before) return &r;
  }
  return rows_.size() >= limits_.max_connections + headroom / 2 ? quietest : nullptr;
}

void ConnectionTable::remove(ConnectionInfo* row) noexcept {
  std::lock_guard lock(mutex_);
  if (auto it = addresses_.find(row->address);
      it != addresses_.end() && --it->second.connections == 0)
    addresses_.erase(it);  // the last one: the address's quota goes (units still out stay valid)
  rows_.deallocate(row);
}

std::size_t ConnectionTable::from(const std::string& address) const {
  std::lock_guard lock(mutex_);
  const auto it = addresses_.find(address);
  return it == addresses_.end() ? 0 : it->second.connections;
}

std::vector<ConnectionRow> ConnectionTable::list(Order order) {
  const std::int64_t now = now_ns();
  std::vector<ConnectionRow> out;
  std::lock_guard lock(mutex_);
  switch (order) {
    case Order::idle:  // longest idle first
      rows_.sort([](const ConnectionInfo& a, const ConnectionInfo& b) {
        return a.last_active_ns.load(std::memory_order_relaxed) <
               b.last_active_ns.load(std::memory_order_relaxed);
      });
      break;
    case Order::bytes:  // most bytes first
      rows_.sort([](const ConnectionInfo& a, const ConnectionInfo& b) {
        return a.bytes_in.load(std::memory_order_relaxed) +
                   a.bytes_out.load(std::memory_order_relaxed) >
               b.bytes_in.load(std::memory_order_relaxed) +
                   b.bytes_out.load(std::memory_order_relaxed);
      });
      break;
    case Order::age:  // oldest first
      rows_.sort([](const ConnectionInfo& a, const ConnectionInfo& b) {
        return a.opened_ns < b.opened_ns || (a.opened_ns == b.opened_ns && a.id < b.id);
      });
      break;
  }
  out.reserve(rows_.size());
  for (std::size_t i = 0; i < rows_.size(); ++i) {
    const ConnectionInfo& r = rows_[i];
    out.push_back(
        {r.id, r.peer, r.protocol, static_cast<double>(now - r.opened_ns) / 1e9,
         static_cast<double>(now - r.last_active_ns.load(std::memory_order_relaxed)) / 1e9,
         r.bytes_in.load(std::memory_order_relaxed), r.bytes_out.load(std::memory_order_relaxed),
         r.requests.load(std::memory_order_relaxed), r.busy.load(std::memory_order_relaxed)});
  }
  return out;
}

std::size_t ConnectionTable::size() const {
  std::lock_guard lock(mutex_);
  return rows_.size();
}

void ConnectionTable::close_all(bool force) {
  std::vector<std::function<void(bool)>> closers;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < rows_.size(); ++i)
      closers.push_back(rows_[i].close);
  }
  for (auto& c : closers)
    c(force);
}

}  // namespace bufpool::server
