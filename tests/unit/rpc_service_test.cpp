#include "bufpool/rpc/service.hpp"

#include <gtest/gtest.h>

#include <optional>

#include <boost/asio/as_tuple.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <cstring>

#include "bufpool/client.hpp"

namespace bufpool::rpc {
namespace {

using asio::use_awaitable;

// A user's own service on bufpool::rpc: opcode 40 waits for as many milliseconds as its payload
// says, then answers with the payload; opcode 41 answers at once with its key reversed; opcode 42
// is a synchronous handler (run in the connection's reader) that echoes its payload.
Service slow_and_fast_service() {
  Service s;
  s.on(40, false, [](Request r) -> asio::awaitable<Response> {
    std::uint32_t ms = 0;
    std::memcpy(&ms, r.payload.data(), sizeof ms);
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    co_await t.async_wait(use_awaitable);
    co_return Response{Status::ok, 0, std::move(r.payload)};
  });
  s.on(41, true, [](Request r) -> asio::awaitable<Response> {
    co_return Response{Status::ok, 0, std::string(r.key.rbegin(), r.key.rend())};
  });
  s.on_sync(42, false, [](Request r) { return Response{Status::ok, 0, std::move(r.payload)}; });
  return s;
}

// Lets the I/O run until pred() holds or `limit` passes; returns pred().
template <typename Pred>
asio::awaitable<bool> wait_until(Pred pred,
                                 std::chrono::milliseconds limit = std::chrono::seconds(3)) {
  auto ex = co_await asio::this_coro::executor;
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred() && std::chrono::steady_clock::now() < end) {
    asio::steady_timer t(ex, std::chrono::milliseconds(5));
    co_await t.async_wait(use_awaitable);
  }
  co_return pred();
}

struct Fixture {
  asio::io_context io;
  BuddyPool pool{BuddyPoolOptions{.min_block = 4096, .max_memory = 64u << 20}};
  Service service = slow_and_fast_service();
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  ConnectionOptions options;

  int send_buffer = 0;  // SO_SNDBUF of the served socket when set: forces partial writes
  bool served = false;  // the one connection has ended
  std::shared_ptr<Connection> conn;
  void serve_one() {
    auto accept = [this]() -> asio::awaitable<void> {
      auto socket = co_await acceptor.async_accept(use_awaitable);
      if (send_buffer) socket.set_option(asio::socket_base::send_buffer_size(send_buffer));
      conn = std::make_shared<Connection>(std::move(socket), service, pool, options);
      co_await conn->run();
      served = true;
    };
    asio::co_spawn(io, accept, asio::detached);
  }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }

  // Runs a test coroutine on the I/O for at most `limit`, rethrowing what it threw.
  template <typename Test>
  void run(Test test, std::chrono::seconds limit) {
    auto done = asio::co_spawn(io, test, asio::use_future);
    io.run_for(limit);
    done.get();
  }
};

TEST(RpcService, ResponsesComeBackInCompletionOrder) {
  Fixture f;
  f.serve_one();
  std::vector<std::string> order;
  auto test = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await Client::connect(ex, "127.0.0.1", f.port());
    std::uint32_t slow_ms = 200;
    auto slow = [&, c]() -> asio::awaitable<void> {
      auto r = co_await c->call(40, {}, asio::buffer(&slow_ms, 4));
      EXPECT_EQ(r.status, Status::ok);
      order.push_back("slow");
    };
    auto fast = [&, c]() -> asio::awaitable<void> {
      auto r = co_await c->call(41, "abc");
      EXPECT_EQ(r.message(), "cba");
      order.push_back("fast");
    };
    auto a = asio::co_spawn(ex, slow, asio::use_future);  // sent first
    auto b = asio::co_spawn(ex, fast, asio::use_future);
    auto both = [&] { return order.size() == 2; };
    co_await wait_until(both);
    c->close();
  };
  f.run(test, std::chrono::seconds(5));
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], "fast") << "the fast reply overtook the slow one on the same connection";
  EXPECT_EQ(order[1], "slow");
}

TEST(RpcService, PipelineDepthBoundsRequestsInFlight) {
  Fixture f;
  f.options.pipeline_depth = 2;
  f.serve_one();
  auto test = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await Client::connect(ex, "127.0.0.1", f.port());
    std::uint32_t ms = 100;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::future<void>> calls;
    for (int i = 0; i < 4; ++i) {
      auto one = [c, &ms]() -> asio::awaitable<void> {
        auto r = co_await c->call(40, {}, asio::buffer(&ms, 4));
        EXPECT_EQ(r.status, Status::ok);
      };
      calls.push_back(asio::co_spawn(ex, one, asio::use_future));
    }
    auto drained = [&] { return c->in_flight() == 0; };
    co_await wait_until(drained);
    // Four 100 ms requests, two at a time: about 200 ms, not 100 ms.
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(190));
    c->close();
  };
  f.run(test, std::chrono::seconds(5));
}

TEST(RpcService, ClientTimesOutAndDropsTheLateReply) {
  Fixture f;
  f.serve_one();
  auto test = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    ClientOptions o;
    o.request_timeout = std::chrono::milliseconds(50);
    auto c = co_await Client::connect(ex, "127.0.0.1", f.port(), o);
    std::uint32_t ms = 200;
    bool timed_out = false;
    try {
      co_await c->call(40, {}, asio::buffer(&ms, 4));
    } catch (const std::system_error& e) {
      timed_out = e.code() == make_error_code(errc::timed_out);
    }
    EXPECT_TRUE(timed_out);
    auto r = co_await c->call(41, "xy");  // the connection still works
    EXPECT_EQ(r.message(), "yx");
    asio::steady_timer t(ex, std::chrono::milliseconds(300));  // the late reply arrives, dropped
    co_await t.async_wait(use_awaitable);
    r = co_await c->call(41, "ok");
    EXPECT_EQ(r.message(), "ko");
    c->close();
  };
  f.run(test, std::chrono::seconds(5));
}

// The vocabulary of the allocators, for calls: call() throws, async_call() gives the error as a
// value, with any completion token.
TEST(RpcService, AsyncCallTakesAnyCompletionToken) {
  Fixture f;
  f.serve_one();
  auto test = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    ClientOptions o;
    o.request_timeout = std::chrono::milliseconds(50);
    auto c = co_await Client::connect(ex, "127.0.0.1", f.port(), o);
    std::optional<std::pair<boost::system::error_code, std::string>> got;
    c->async_call(41, std::string("abc"), {}, [&](boost::system::error_code ec, Client::Reply r) {
      got.emplace(ec, r.message());
    });
    const bool answered = co_await wait_until([&] { return got.has_value(); });
    EXPECT_TRUE(answered);
    EXPECT_FALSE(got->first);
    EXPECT_EQ(got->second, "cba");
    std::uint32_t ms = 200;
    auto [ec, r] =
        co_await c->async_call(40, {}, asio::buffer(&ms, 4), asio::as_tuple(use_awaitable));
    EXPECT_EQ(ec, errc::timed_out);  // a value here, not an exception
    c->close();
    auto [ec2, r2] = co_await c->async_call(41, "x", {}, asio::as_tuple(use_awaitable));
    EXPECT_EQ(ec2, errc::closed);
  };
  f.run(test, std::chrono::seconds(5));
}

// A graceful close lets the request in flight finish and answer, then ends the connection at
// once (not at the idle timeout).
TEST(RpcService, GracefulCloseFinishesWhatIsInFlight) {
  Fixture f;
  f.serve_one();
  auto test = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await Client::connect(ex, "127.0.0.1", f.port());
    std::uint32_t ms = 200;
    auto slow = [c, &ms]() -> asio::awaitable<Client::Reply> {
      co_return co_await c->call(40, {}, asio::buffer(&ms, 4));
    };
    auto reply = asio::co_spawn(ex, slow, asio::use_future);
    asio::steady_timer t(ex, std::chrono::milliseconds(50));
    co_await t.async_wait(use_awaitable);
    f.conn->close(false);
    // The server ends the connection after its reply is written; the client reads that reply on
    // its own schedule, so wait for both (the limit is 3 s; the idle timeout would be 60 s).
    auto answered = [&] {
      return f.served && reply.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    };
    EXPECT_TRUE(co_await wait_until(answered)) << "answered, and the connection ended soon after";
    if (reply.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      EXPECT_EQ(reply.get().status, Status::ok) << "the request in flight was answered";
    }
    f.conn->close(true);
  };
  f.run(test, std::chrono::seconds(10));
}

// Dropping the last copy of a client's handle closes its connection: the server sees it end.
TEST(RpcService, DroppingTheClientClosesTheConnection) {
  Fixture f;
  f.serve_one();
  auto test = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await Client::connect(ex, "127.0.0.1", f.port());
    auto r = co_await c->call(41, "ab");
    EXPECT_EQ(r.message(), "ba");
    c.reset();  // no close(): the handle's end is enough
    auto served = [&] { return f.served; };
    co_await wait_until(served);
  };
  f.run(test, std::chrono::seconds(5));
  EXPECT_TRUE(f.served);
}

// Synchronous handlers answer from the reader; a read's responses go out in one direct write,
// and what the socket does not take (multi-MiB echoes) goes on through the writer coroutine,
// interleaved with asynchronous handlers' responses. Every byte must come back where it belongs.
TEST(RpcService, SyncHandlersWithPartialWritesKeepEveryReplyIntact) {
  Fixture f;
  f.send_buffer = 64 * 1024;  // so that no 2 MiB response goes out in one write
  f.serve_one();
  int checked = 0;
  auto test = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await Client::connect(ex, "127.0.0.1", f.port());
    std::vector<std::vector<std::byte>> payloads;
    for (std::size_t i = 0; i < 48; ++i) {
      const std::size_t n = i % 3 == 0 ? (std::size_t{1} << 21) - i : 1 + i * 997;
      std::vector<std::byte> p(n);
      for (std::size_t k = 0; k < n; ++k)
        p[k] = static_cast<std::byte>((k * 31 + i) & 0xff);
      payloads.push_back(std::move(p));
    }
    std::vector<std::future<void>> calls;
    for (std::size_t i = 0; i < payloads.size(); ++i) {
      auto one = [c, &payloads, &checked, i]() -> asio::awaitable<void> {
        if (i % 4 == 1) {  // an asynchronous handler's reply among the synchronous ones
          const std::string key = "key" + std::to_string(i);
          auto r = co_await c->call(41, key);
          EXPECT_EQ(r.message(), std::string(key.rbegin(), key.rend()));
        } else {
          auto r = co_await c->call(42, {}, asio::buffer(payloads[i]));
          EXPECT_EQ(r.status, Status::ok);
          EXPECT_TRUE(r.payload.size() == payloads[i].size() &&
                      std::memcmp(r.payload.data(), payloads[i].data(), payloads[i].size()) == 0)
              << "call " << i;
        }
        ++checked;
      };
      calls.push_back(asio::co_spawn(ex, one, asio::use_future));
    }
    auto all = [&] { return checked == static_cast<int>(payloads.size()); };
    co_await wait_until(all, std::chrono::seconds(20));
    c->close();
    auto ended = [&] { return f.served; };
    co_await wait_until(ended);
  };
  f.run(test, std::chrono::seconds(25));
  EXPECT_EQ(checked, 48);
  EXPECT_TRUE(f.served);
  f.conn.reset();
  EXPECT_EQ(f.pool.stats().bytes_in_use, 0u) << "every request and response buffer went back";
}

}  // namespace
}  // namespace bufpool::rpc
