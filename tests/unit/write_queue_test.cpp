#include "bufpool/detail/write_queue.hpp"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "loopback.hpp"

namespace {

namespace asio = boost::asio;
using asio::use_awaitable;
using error_code = boost::system::error_code;
using namespace std::chrono_literals;

using Entry = std::unique_ptr<std::string>;
struct Bytes {
  std::array<asio::const_buffer, 1> operator()(const Entry& e) const { return {asio::buffer(*e)}; }
};
using Queue = bufpool::detail::WriteQueue<Entry, Bytes>;

Entry entry(std::string s) {
  return std::make_unique<std::string>(std::move(s));
}
std::string big(std::size_t n, char c) {
  return std::string(n, c);
}

struct Hooks {
  const asio::ip::tcp::socket& socket;
  std::vector<std::string>* done_entries;
  bool finish = false;
  int writes = 0;
  bool stopped() const { return !socket.is_open(); }
  bool finished() const { return finish; }
  std::size_t progress(const error_code& ec, std::size_t) { return ec ? 0 : 64 * 1024; }
  void done(Entry&& e) { done_entries->push_back(std::move(*e)); }
  void after_write(const error_code&, std::size_t) { ++writes; }
};

// Reads n bytes on the peer side, from a coroutine (the queue's writer shares the loop).
asio::awaitable<std::string> read_n(asio::ip::tcp::socket& s, std::size_t n) {
  std::string out(n, '\0');
  co_await asio::async_read(s, asio::buffer(out), use_awaitable);
  co_return out;
}

TEST(WriteQueue, FlushNowWritesWhatTheSocketTakesAndHandsEachEntryBackOnce) {
  bufpool::test::Loopback pair;
  Queue q(pair.io.get_executor());
  q.push(entry("one "));
  q.push(entry("two "));
  q.push(entry("three"));
  EXPECT_EQ(q.unsent(), 3u);
  std::vector<std::string> done;
  const std::size_t n = q.flush_now(pair.near, [&](Entry&& e) { done.push_back(*e); });
  EXPECT_EQ(n, 13u);
  EXPECT_EQ(done, (std::vector<std::string>{"one ", "two ", "three"}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.unsent(), 0u);
  std::string got(13, '\0');
  pair.far.non_blocking(false);
  asio::read(pair.far, asio::buffer(got));
  EXPECT_EQ(got, "one two three");
}

TEST(WriteQueue, TheWriterFinishesWhatADirectWriteLeftAndKeepsTheOrder) {
  bufpool::test::Loopback pair;
  Queue q(pair.io.get_executor());
  const std::string large = big(32u << 20, 'L');  // more than the socket buffers take at once
  q.push(entry(large));
  q.push(entry("tail"));
  std::vector<std::string> done;
  const std::size_t direct = q.flush_now(pair.near, [&](Entry&& e) { done.push_back(*e); });
  EXPECT_GT(direct, 0u);
  EXPECT_LT(direct, large.size());
  EXPECT_TRUE(done.empty());  // nothing finished: both stay queued
  Hooks hooks{pair.near, &done};
  hooks.finish = true;  // end once everything is out
  error_code writer_ec = asio::error::would_block;
  asio::co_spawn(pair.io, q.run(pair.near, hooks),
                 [&](std::exception_ptr, error_code ec) { writer_ec = ec; });
  std::string received;
  asio::co_spawn(pair.io, read_n(pair.far, large.size() + 4),
                 [&](std::exception_ptr, std::string s) { received = std::move(s); });
  pair.io.run_for(10s);
  EXPECT_FALSE(writer_ec);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1], "tail");
  ASSERT_EQ(received.size(), large.size() + 4);
  EXPECT_EQ(received.substr(large.size()), "tail");
  EXPECT_EQ(received.find_first_not_of('L'), large.size());  // no byte lost or repeated
}

TEST(WriteQueue, BatchesAreBoundedByMaxBatch) {
  bufpool::test::Loopback pair;
  Queue q(pair.io.get_executor(), 2);
  for (int i = 0; i < 5; ++i)
    q.push(entry(std::to_string(i)));
  std::vector<std::string> done;
  Hooks hooks{pair.near, &done};
  hooks.finish = true;
  asio::co_spawn(pair.io, q.run(pair.near, hooks), asio::detached);
  pair.io.run_for(2s);
  EXPECT_EQ(done, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  EXPECT_EQ(hooks.writes, 3);  // 2 + 2 + 1
}

TEST(WriteQueue, RemoveTellsAnUntouchedEntryFromAStartedOne) {
  bufpool::test::Loopback pair;
  Queue q(pair.io.get_executor());
  q.push(entry(big(32u << 20, 'a')));
  q.push(entry("b"));
  q.push(entry("c"));
  auto is = [](char c) { return [c](const Entry& e) { return (*e)[0] == c; }; };
  std::vector<std::string> dropped;
  auto drop = [&](Entry&& e) { dropped.push_back(*e); };
  EXPECT_EQ(q.remove(is('c'), drop), Queue::Removal::removed);
  EXPECT_EQ(dropped, std::vector<std::string>{"c"});
  q.flush_now(pair.near, drop);  // writes part of "a"
  EXPECT_EQ(q.remove(is('a'), drop), Queue::Removal::started);
  EXPECT_EQ(q.remove(is('z'), drop), Queue::Removal::absent);
  EXPECT_EQ(q.unsent(), 2u);
}

TEST(WriteQueue, ResetDropsEverythingEndsTheWriterAndReleasesWaiters) {
  bufpool::test::Loopback pair;
  Queue q(pair.io.get_executor());
  q.push(entry(big(64u << 20, 'x')));  // the peer never reads: the write stays in progress
  std::vector<std::string> done;
  Hooks hooks{pair.near, &done};
  bool writer_ended = false, waiter_released = false;
  asio::co_spawn(pair.io, q.run(pair.near, hooks),
                 [&](std::exception_ptr, error_code) { writer_ended = true; });
  auto is_x = [](const Entry& e) { return (*e)[0] == 'x'; };
  asio::steady_timer later(pair.io, 100ms);
  later.async_wait([&](auto) {
    EXPECT_TRUE(q.writing());
    EXPECT_TRUE(q.in_write(is_x));
    asio::co_spawn(pair.io, q.until_written(is_x),
                   [&](std::exception_ptr) { waiter_released = true; });
    q.push(entry("queued"));
    asio::post(pair.io, [&] {
      pair.near.close();
      q.reset([&](Entry&& e) { done.push_back(e->substr(0, 6)); });
    });
  });
  pair.io.run_for(5s);
  EXPECT_TRUE(writer_ended);
  EXPECT_TRUE(waiter_released);
  EXPECT_EQ(done.size(), 2u);  // each entry handed back once, by reset()
  EXPECT_EQ(q.unsent(), 0u);
  EXPECT_FALSE(q.writing());
}

}  // namespace
