#include "connection_table.hpp"

#include <algorithm>

namespace bufpool::server {

namespace {
// Headroom above max_connections: a connection asked to close leaves the table only when its
// thread gets to it, and new ones keep arriving meanwhile.
constexpr std::size_t headroom = 64;
}  // namespace

ConnectionTable::ConnectionTable(std::size_t max_connections)
    : rows_(max_connections + headroom), max_(max_connections) {}

ConnectionInfo* ConnectionTable::add(std::string peer, const char* protocol,
                                     std::function<void(bool)> close) {
  std::function<void(bool)> evict;
  ConnectionInfo* row = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (rows_.size() >= max_) {
      rows_.sort([](const ConnectionInfo& a, const ConnectionInfo& b) {
        return a.last_active_ns.load(std::memory_order_relaxed) <
               b.last_active_ns.load(std::memory_order_relaxed);
      });
      for (std::size_t i = 0; i < rows_.size(); ++i) {
        if (!rows_[i].busy.load(std::memory_order_relaxed)) {
          evict = rows_[i].close;
          break;
        }
      }
    }
    row = rows_.try_allocate(next_id_, std::move(peer), protocol, std::move(close));
    if (row) ++next_id_;
  }
  if (evict) {
    evictions_.fetch_add(1, std::memory_order_relaxed);
    evict(false);
  }
  return row;
}

void ConnectionTable::remove(ConnectionInfo* row) noexcept {
  std::lock_guard lock(mutex_);
  rows_.deallocate(row);
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
