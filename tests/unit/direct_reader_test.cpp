#include "bufpool/detail/direct_reader.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "loopback.hpp"

namespace {

namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;
using bufpool::detail::DirectReader;
using namespace std::chrono_literals;

std::string_view text(const DirectReader& r) {
  return {reinterpret_cast<const char*>(r.data()), r.size()};
}

void write_all(asio::ip::tcp::socket& s, std::string_view bytes) {
  s.non_blocking(false);
  asio::write(s, asio::buffer(bytes));
  s.non_blocking(true);
}

// Runs `body` as a coroutine on the pair's loop, at most 5 s (a hang fails instead of hanging).
template <typename Body>
void run(bufpool::test::Loopback& pair, Body body) {
  bool finished = false;
  asio::co_spawn(pair.io, body(), [&](std::exception_ptr e) {
    finished = true;
    if (e) std::rethrow_exception(e);
  });
  pair.io.run_for(5s);
  EXPECT_TRUE(finished) << "the reader did not finish within 5 s";
}

TEST(DirectReader, FillGathersBytesThatArriveInPieces) {
  bufpool::test::Loopback pair;
  DirectReader reader(1024);
  write_all(pair.far, "hello");
  asio::steady_timer later(pair.io, 30ms);
  later.async_wait([&](auto) { write_all(pair.far, " world"); });
  int before = 0, reads = 0;
  std::size_t bytes = 0;
  run(pair, [&]() -> asio::awaitable<void> {
    auto before_read = [&] { ++before; };
    auto on_read = [&](std::size_t n) {
      ++reads;
      bytes += n;
    };
    const bool ok = co_await reader.fill(pair.near, 11, before_read, on_read);
    EXPECT_TRUE(ok);
  });
  EXPECT_EQ(text(reader), "hello world");
  EXPECT_EQ(bytes, 11u);
  EXPECT_EQ(reads, 2);
  EXPECT_GE(before, 2);  // once per attempt: a would-block attempt counts too
}

TEST(DirectReader, FillReportsTheEndOfTheStream) {
  bufpool::test::Loopback pair;
  DirectReader reader(1024);
  write_all(pair.far, "abc");
  pair.far.shutdown(asio::ip::tcp::socket::shutdown_send);
  run(pair, [&]() -> asio::awaitable<void> {
    const bool three = co_await reader.fill(pair.near, 3);
    EXPECT_TRUE(three);
    const bool four = co_await reader.fill(pair.near, 4);
    EXPECT_FALSE(four);
  });
  EXPECT_EQ(text(reader), "abc");  // what came before the end stays readable
}

TEST(DirectReader, ReadIntoCopiesTheBufferedBytesThenReadsTheRestStraightIn) {
  bufpool::test::Loopback pair;
  DirectReader reader(4096);
  std::string payload(300'000, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>('a' + i % 23);
  std::vector<std::byte> dst(payload.size());
  std::size_t straight = 0;
  asio::co_spawn(
      pair.io,
      [&]() -> asio::awaitable<void> {  // the peer: a 4-byte header, then the payload
        const std::string message = "HEAD" + payload;
        co_await asio::async_write(pair.far, asio::buffer(message), use_awaitable);
      },
      asio::detached);
  run(pair, [&]() -> asio::awaitable<void> {
    const bool head = co_await reader.fill(pair.near, 4);
    EXPECT_TRUE(head);
    EXPECT_EQ(text(reader).substr(0, 4), "HEAD");
    reader.consume(4);
    const std::size_t buffered = reader.size();
    EXPECT_LE(buffered, 4096u);
    auto before = [] {};
    auto on_read = [&](std::size_t n) { straight += n; };
    const bool ok = co_await reader.read_into(pair.near, dst, before, on_read);
    EXPECT_TRUE(ok);
    EXPECT_EQ(buffered + straight, payload.size());  // copied once, or read straight in
    EXPECT_EQ(reader.size(), 0u);
  });
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(dst.data()), dst.size()), payload);
  EXPECT_GT(straight, 0u);
}

TEST(DirectReader, SkipDropsExactlyTheBytesAsked) {
  bufpool::test::Loopback pair;
  DirectReader reader(16);  // smaller than what is skipped: skip refills
  write_all(pair.far, std::string(100, 'x') + "next");
  run(pair, [&]() -> asio::awaitable<void> {
    const bool skipped = co_await reader.skip(pair.near, 100);
    EXPECT_TRUE(skipped);
    const bool next = co_await reader.fill(pair.near, 4);
    EXPECT_TRUE(next);
  });
  EXPECT_EQ(text(reader), "next");
}

// The socket, counting the readiness waits that the reader starts.
struct CountingSocket {
  asio::ip::tcp::socket& socket;
  int waits = 0;
  template <typename Buffers>
  std::size_t read_some(const Buffers& b, boost::system::error_code& ec) {
    return socket.read_some(b, ec);
  }
  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& b, Token&& token) {
    return socket.async_read_some(b, std::forward<Token>(token));
  }
  template <typename Token>
  auto async_wait(asio::socket_base::wait_type w, Token&& token) {
    ++waits;
    return socket.async_wait(w, std::forward<Token>(token));
  }
};

// The drained rule. After a read that emptied the socket, the next fill() awaits readiness
// instead of making the read that would fail with EAGAIN. Once the reader has waited for
// something else (the peer may have sent more, and the event loop may have taken its readiness
// meanwhile), a wait through across() makes the next fill() read at once. (A fill() that still
// believed the socket drained would start a readiness wait first. With Asio 1.81's epoll
// reactor that wait still completes, because starting it re-arms the descriptor with
// EPOLL_CTL_MOD; the rule saves the system call and the trip through the scheduler, and keeps
// the reader correct on a reactor that does not re-arm.)
TEST(DirectReader, AfterADrainingReadFillAwaitsReadinessFirst) {
  bufpool::test::Loopback pair;
  CountingSocket socket{pair.near};
  DirectReader reader(1024);
  write_all(pair.far, "first");
  run(pair, [&]() -> asio::awaitable<void> {
    const bool first = co_await reader.fill(socket, 5);  // got less than its room: drained
    EXPECT_TRUE(first);
    EXPECT_EQ(socket.waits, 0);
    reader.consume(5);
    write_all(pair.far, "second");
    const bool second = co_await reader.fill(socket, 6);
    EXPECT_TRUE(second);
    EXPECT_EQ(socket.waits, 1);  // the saved read
  });
  EXPECT_EQ(text(reader), "second");
}

TEST(DirectReader, AnotherWaitThroughAcrossMakesTheNextFillReadAtOnce) {
  bufpool::test::Loopback pair;
  CountingSocket socket{pair.near};
  DirectReader reader(1024);
  write_all(pair.far, "first");
  asio::steady_timer other(pair.io);
  bool got_second = false;
  run(pair, [&]() -> asio::awaitable<void> {
    const bool first = co_await reader.fill(socket, 5);  // drained
    EXPECT_TRUE(first);
    reader.consume(5);
    write_all(pair.far, "second");  // arrives while the reader waits below
    other.expires_after(50ms);
    co_await reader.across(other.async_wait(as_tuple(use_awaitable)));
    got_second = co_await reader.fill(socket, 6);
    EXPECT_EQ(socket.waits, 0) << "fill() waited for readiness instead of reading";
  });
  EXPECT_TRUE(got_second);
  EXPECT_EQ(text(reader), "second");
}

}  // namespace
