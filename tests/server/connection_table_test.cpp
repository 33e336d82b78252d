// The connection table with no server process: rows, eviction of the longest-quiet connection
// that is idle or stalled, the headroom, the per-address cap and quota, the listing orders and
// close_all.
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
  ConnectionInfo* a = t.add("10.0.0.1:1", "10.0.0.1", "http", c.closer("a"));
  ConnectionInfo* b = t.add("10.0.0.2:2", "10.0.0.1", "rpc", c.closer("b"));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->id, b->id);
  EXPECT_EQ(t.size(), 2u);
  t.remove(a);
  EXPECT_EQ(t.size(), 1u);
  ConnectionInfo* d = t.add("10.0.0.3:3", "10.0.0.1", "http", c.closer("d"));
  ASSERT_TRUE(d);
  EXPECT_GT(d->id, b->id) << "ids are never reused";
  EXPECT_TRUE(c.calls.empty());
  EXPECT_EQ(t.evictions(), 0u);
}

TEST(ConnectionTable, AFullTableAsksTheLongestIdleConnectionNotInAnActiveRequestToClose) {
  ConnectionTable t(3);
  Closes c;
  ConnectionInfo* a = t.add("a", "10.0.0.1", "http", c.closer("a"));
  ConnectionInfo* b = t.add("b", "10.0.0.1", "http", c.closer("b"));
  ConnectionInfo* d = t.add("d", "10.0.0.1", "http", c.closer("d"));
  const std::int64_t now = now_ns();
  a->last_active_ns.store(now - 900'000'000);  // the longest quiet, but in an active request
  a->busy.store(true);
  b->last_active_ns.store(now - 500'000'000);  // the longest idle of those between requests
  d->last_active_ns.store(now - 100'000'000);
  b->requests.store(1);  // kept alive after a request
  d->requests.store(1);
  ConnectionInfo* e = t.add("e", "10.0.0.1", "http", c.closer("e"));
  ASSERT_TRUE(e) << "the new connection gets a row in the headroom";
  ASSERT_EQ(c.calls.size(), 1u);
  EXPECT_EQ(c.calls[0], (std::pair<std::string, bool>{"b", false}));  // gracefully
  EXPECT_EQ(t.evictions(), 1u);
}

TEST(ConnectionTable, ActiveBusyRowsAreEvictedOnlyOnceHalfTheHeadroomIsGone) {
  ConnectionTable t(1);
  Closes c;
  std::vector<ConnectionInfo*> rows;
  std::size_t quiet_calls = 0;
  for (int i = 0;; ++i) {
    ConnectionInfo* r =
        t.add("p" + std::to_string(i), "10.0.0.1", "http", c.closer("p" + std::to_string(i)));
    if (!r) break;
    r->busy.store(true);
    rows.push_back(r);
    if (rows.size() == 1u + 32u) quiet_calls = c.calls.size();
    ASSERT_LT(i, 1000) << "the table never refused";
  }
  EXPECT_EQ(quiet_calls, 0u) << "no busy row active within 1 s was asked to close before";
  EXPECT_EQ(rows.size(), 1u + 64u) << "max_connections plus the headroom";
  // From then on every add asked one more row to close, at once, the longest quiet first (here
  // they all left the table as they came, so the oldest ids), the refused add too.
  ASSERT_EQ(c.calls.size(), 33u);
  for (const auto& [name, force] : c.calls)
    EXPECT_TRUE(force) << name;
  t.remove(rows.back());
  EXPECT_NE(t.add("again", "10.0.0.1", "http", c.closer("y")), nullptr);
}

TEST(ConnectionTable, AStalledRequestIsEvictedAtOnceLikeAnIdleOne) {
  ConnectionTable t(ConnectionLimits{3, 0, 0, std::chrono::milliseconds(1000)});
  Closes c;
  ConnectionInfo* a = t.add("a", "10.0.0.1", "http", c.closer("a"));
  ConnectionInfo* b = t.add("b", "10.0.0.1", "http", c.closer("b"));
  ConnectionInfo* d = t.add("d", "10.0.0.1", "http", c.closer("d"));
  const std::int64_t now = now_ns();
  for (ConnectionInfo* r : {a, b, d})
    r->busy.store(true);
  a->last_active_ns.store(now - 900'000'000);    // busy and quiet for 0.9 s: still active
  b->last_active_ns.store(now - 3'000'000'000);  // busy and quiet for 3 s: stalled
  d->last_active_ns.store(now);
  ASSERT_TRUE(t.add("e", "10.0.0.2", "http", c.closer("e")));
  ASSERT_EQ(c.calls.size(), 1u);
  EXPECT_EQ(c.calls[0], (std::pair<std::string, bool>{"b", true})) << "at once: it is mid-request";
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_EQ(t.stalled_evictions(), 1u);
  // An idle row that has been quiet longer than the stalled one goes first, gracefully.
  b->last_active_ns.store(now - 3'000'000'000);
  d->busy.store(false);
  d->last_active_ns.store(now - 5'000'000'000);
  ASSERT_TRUE(t.add("f", "10.0.0.2", "http", c.closer("f")));
  ASSERT_EQ(c.calls.size(), 2u);
  EXPECT_EQ(c.calls[1], (std::pair<std::string, bool>{"d", false}));
}

TEST(ConnectionTable, AConnectionThatHasNotSentItsFirstRequestIsNotEvictedAtOnce) {
  ConnectionTable t(ConnectionLimits{1, 0, 0, std::chrono::milliseconds(1000)});
  Closes c;
  ConnectionInfo* a = t.add("a", "10.0.0.1", "http", c.closer("a"));
  ASSERT_TRUE(a);
  a->last_active_ns.store(now_ns() - 500'000'000);  // opened half a second ago, nothing sent
  ASSERT_TRUE(t.add("b", "10.0.0.1", "http", c.closer("b")));
  EXPECT_TRUE(c.calls.empty());
  a->last_active_ns.store(now_ns() - 2'000'000'000);  // and now quiet for 2 s
  ASSERT_TRUE(t.add("d", "10.0.0.1", "http", c.closer("d")));
  ASSERT_EQ(c.calls.size(), 1u);
  EXPECT_EQ(c.calls[0].first, "a");
}

TEST(ConnectionTable, PerAddressCapRefusesOnlyThatAddress) {
  ConnectionTable t(ConnectionLimits{100, 2, 0});
  Closes c;
  ConnectionTable::Refusal why{};
  ConnectionInfo* a = t.add("a", "10.0.0.1", "http", c.closer("a"), &why);
  ASSERT_TRUE(a);
  EXPECT_EQ(why, ConnectionTable::Refusal::none);
  ASSERT_TRUE(t.add("b", "10.0.0.1", "rpc", c.closer("b")));
  EXPECT_EQ(t.add("c", "10.0.0.1", "http", c.closer("c"), &why), nullptr);
  EXPECT_EQ(why, ConnectionTable::Refusal::address_full);
  EXPECT_TRUE(t.add("d", "10.0.0.2", "http", c.closer("d"), &why)) << "another address";
  EXPECT_EQ(t.from("10.0.0.1"), 2u);
  t.remove(a);
  EXPECT_EQ(t.from("10.0.0.1"), 1u);
  EXPECT_TRUE(t.add("e", "10.0.0.1", "http", c.closer("e"))) << "room again after a close";
  EXPECT_TRUE(c.calls.empty());
}

TEST(ConnectionTable, TheUnreceivedQuotaIsSharedByAnAddressAndGoesWithItsLastConnection) {
  ConnectionTable t(ConnectionLimits{100, 0, 1000});
  Closes c;
  ConnectionInfo* a = t.add("a", "10.0.0.1", "http", c.closer("a"));
  ConnectionInfo* b = t.add("b", "10.0.0.1", "rpc", c.closer("b"));
  ConnectionInfo* d = t.add("d", "10.0.0.2", "http", c.closer("d"));
  ASSERT_TRUE(a && b && d && a->unreceived && d->unreceived);
  EXPECT_EQ(a->unreceived, b->unreceived);
  EXPECT_NE(a->unreceived, d->unreceived);
  std::error_code ec;
  QuotaUnits held = a->unreceived->try_acquire(800, ec);
  ASSERT_FALSE(ec);
  EXPECT_FALSE(b->unreceived->try_acquire(300, ec)) << "the address's budget is shared";
  EXPECT_TRUE(d->unreceived->try_acquire(1000, ec)) << "another address has its own";
  std::weak_ptr<Quota> gone = a->unreceived;
  t.remove(a);
  t.remove(b);
  EXPECT_TRUE(gone.expired()) << "the address's last connection took its quota along";
  held.reset();  // units outlive their quota
}

TEST(ConnectionTable, ListingOrders) {
  ConnectionTable t(8);
  Closes c;
  ConnectionInfo* a = t.add("a", "10.0.0.1", "http", c.closer("a"));
  ConnectionInfo* b = t.add("b", "10.0.0.1", "rpc", c.closer("b"));
  ConnectionInfo* d = t.add("d", "10.0.0.1", "http", c.closer("d"));
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
  t.add("a", "10.0.0.1", "http", c.closer("a"));
  t.add("b", "10.0.0.1", "rpc", c.closer("b"));
  t.close_all(true);
  ASSERT_EQ(c.calls.size(), 2u);
  EXPECT_TRUE(c.calls[0].second && c.calls[1].second);
  EXPECT_EQ(t.size(), 2u) << "rows leave only when their connections do";
}

}  // namespace
}  // namespace bufpool::server
