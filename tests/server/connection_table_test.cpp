// The connection table with no server process: rows, eviction of the longest-idle connection
// that is not inside a request, the headroom, the listing orders and close_all.
#include "connection_table.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bufpool::server {
namespace {

// Records which rows were asked to close, and how.
struct Closes {
  std::vector<std::pair<std::string, bool>> calls;
  std::function<void(bool)> closer(std::string name) {
    return [this, name](bool force) { calls.emplace_back(name, force); };
  }
};

TEST(ConnectionTable, RowsComeAndGo) {
  ConnectionTable t(4);
  Closes c;
  ConnectionInfo* a = t.add("10.0.0.1:1", "http", c.closer("a"));
  ConnectionInfo* b = t.add("10.0.0.2:2", "rpc", c.closer("b"));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->id, b->id);
  EXPECT_EQ(t.size(), 2u);
  t.remove(a);
  EXPECT_EQ(t.size(), 1u);
  ConnectionInfo* d = t.add("10.0.0.3:3", "http", c.closer("d"));
  ASSERT_TRUE(d);
  EXPECT_GT(d->id, b->id) << "ids are never reused";
  EXPECT_TRUE(c.calls.empty());
  EXPECT_EQ(t.evictions(), 0u);
}

TEST(ConnectionTable, AFullTableAsksTheLongestIdleConnectionNotInARequestToClose) {
  ConnectionTable t(3);
  Closes c;
  ConnectionInfo* a = t.add("a", "http", c.closer("a"));
  ConnectionInfo* b = t.add("b", "http", c.closer("b"));
  ConnectionInfo* d = t.add("d", "http", c.closer("d"));
  a->last_active_ns.store(100);  // the longest idle, but inside a request
  a->busy.store(true);
  b->last_active_ns.store(200);  // the longest idle of those between requests
  d->last_active_ns.store(300);
  ConnectionInfo* e = t.add("e", "http", c.closer("e"));
  ASSERT_TRUE(e) << "the new connection gets a row in the headroom";
  ASSERT_EQ(c.calls.size(), 1u);
  EXPECT_EQ(c.calls[0], (std::pair<std::string, bool>{"b", false}));  // gracefully
  EXPECT_EQ(t.evictions(), 1u);
}

TEST(ConnectionTable, BusyRowsAreNeverEvictedAndTheHeadroomEnds) {
  ConnectionTable t(1);
  Closes c;
  std::vector<ConnectionInfo*> rows;
  for (int i = 0;; ++i) {
    ConnectionInfo* r = t.add("p" + std::to_string(i), "http", c.closer("x"));
    if (!r) break;
    r->busy.store(true);
    rows.push_back(r);
    ASSERT_LT(i, 1000) << "the table never refused";
  }
  EXPECT_EQ(rows.size(), 1u + 64u) << "max_connections plus the headroom";
  EXPECT_TRUE(c.calls.empty()) << "no busy connection was asked to close";
  t.remove(rows.back());
  EXPECT_NE(t.add("again", "http", c.closer("y")), nullptr);
}

TEST(ConnectionTable, ListingOrders) {
  ConnectionTable t(8);
  Closes c;
  ConnectionInfo* a = t.add("a", "http", c.closer("a"));
  ConnectionInfo* b = t.add("b", "rpc", c.closer("b"));
  ConnectionInfo* d = t.add("d", "http", c.closer("d"));
  a->last_active_ns.store(300);
  b->last_active_ns.store(100);
  d->last_active_ns.store(200);
  a->bytes_in.store(5);
  b->bytes_out.store(50);
  d->bytes_in.store(20);
  d->bytes_out.store(1);
  d->requests.store(7);
  auto peers = [](const std::vector<ConnectionRow>& rows) {
    std::string s;
    for (const auto& r : rows)
      s += r.peer;
    return s;
  };
  EXPECT_EQ(peers(t.list(ConnectionTable::Order::idle)), "bda");
  EXPECT_EQ(peers(t.list(ConnectionTable::Order::bytes)), "bda");
  a->bytes_out.store(100);
  EXPECT_EQ(peers(t.list(ConnectionTable::Order::bytes)), "abd");
  EXPECT_EQ(peers(t.list(ConnectionTable::Order::age)), "abd");  // in the order they came
  const auto rows = t.list(ConnectionTable::Order::age);
  EXPECT_EQ(rows[2].requests, 7u);
  EXPECT_STREQ(rows[1].protocol, "rpc");
  EXPECT_GE(rows[0].age_s, 0.0);
}

TEST(ConnectionTable, CloseAllAsksEveryRow) {
  ConnectionTable t(8);
  Closes c;
  t.add("a", "http", c.closer("a"));
  t.add("b", "rpc", c.closer("b"));
  t.close_all(true);
  ASSERT_EQ(c.calls.size(), 2u);
  EXPECT_TRUE(c.calls[0].second && c.calls[1].second);
  EXPECT_EQ(t.size(), 2u) << "rows leave only when their connections do";
}

}  // namespace
}  // namespace bufpool::server
