// An HTTP upload/download server on Beast with bufpool underneath: PUT /v1/buffers/KEY stores the
// body, GET /v1/buffers/KEY serves it (the API of bufpool-server, so bufpool-bench drives it).
//
// --body pool (the default): async_read_body() waits for a pool block of the Content-Length, then
// reads the body from the socket straight into it; GET answers with a PoolBody over the stored
// SharedBuffer, with no copy. --body vector: the same server over Beast's own flat_buffer +
// vector_body<char> (the parser copies each body into a vector; a GET copies it into the response),
// for comparison (perf/beast_body.sh). Header fields live in a per-connection arena in both.
//
//   beast_server [--port P] [--body pool|vector] [--max-memory MIB]
// It prints "listening on PORT" and serves on 127.0.0.1 until SIGINT or SIGTERM (exit 0).
#include <bufpool/beast_body.hpp>
#include <bufpool/buddy_pool.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory_resource>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/vector_body.hpp>
#include <boost/beast/http/write.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

using Alloc = std::pmr::polymorphic_allocator<char>;
using Fields = http::basic_fields<Alloc>;
constexpr std::size_t max_body = 64 * bufpool::MiB;
constexpr std::string_view prefix = "/v1/buffers/";

// Keys are looked up by string_view, without making a std::string per request.
struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
template <typename Value>
using Store = std::unordered_map<std::string, Value, KeyHash, std::equal_to<>>;

template <typename Value>
void put_value(Store<Value>& store, std::string_view key, Value&& value) {
  if (auto it = store.find(key); it != store.end()) {
    it->second = std::move(value);
  } else {
    store.emplace(std::string(key), std::move(value));
  }
}

// The arena for one request's header fields (Beast allocates one node per field).
struct Arena {
  std::array<std::byte, 16 * 1024> storage;
  std::pmr::monotonic_buffer_resource resource{storage.data(), storage.size()};
};

template <typename Body>
http::response<Body, Fields> response(Arena& arena, http::status status, unsigned version) {
  http::response<Body, Fields> res(std::piecewise_construct, std::make_tuple(),
                                   std::make_tuple(Alloc(&arena.resource)));
  res.result(status);
  res.version(version);
  res.set(http::field::server, "bufpool-example");
  return res;
}

// A request parser whose header fields live in `arena` (a prvalue: Beast's parser cannot move).
template <typename Body>
http::request_parser<Body, Alloc> parser_in(Arena& arena) {
  return http::request_parser<Body, Alloc>(std::piecewise_construct, std::make_tuple(),
                                           std::make_tuple(Alloc(&arena.resource)));
}

// The KEY of /v1/buffers/KEY; empty for any other target.
template <typename Request>
std::string_view key_of(const Request& req) {
  const std::string_view target(req.target().data(), req.target().size());
  return target.starts_with(prefix) ? target.substr(prefix.size()) : std::string_view{};
}

// Writes through a serializer that lives here: http::async_write(stream, message) would allocate
// one on the heap for every response.
template <typename Body>
asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write(
    tcp::socket& socket, http::response<Body, Fields>& res) {
  http::response_serializer<Body, Fields> serializer(res);
  co_return co_await http::async_write(socket, serializer, asio::as_tuple(asio::use_awaitable));
}

// A response without a body. Built here and written by the caller: a nested coroutine per
// response would hold a third coroutine frame at once, one more than Asio's per-thread frame cache
// keeps, and every request would then call the heap for one.
http::response<http::empty_body, Fields> status_only(Arena& arena, http::status status,
                                                     unsigned version, bool keep_alive) {
  auto res = response<http::empty_body>(arena, status, version);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

// --body pool
asio::awaitable<void> serve_pool(tcp::socket socket, bufpool::BuddyPool& pool,
                                 Store<bufpool::SharedBuffer>& store) {
  const auto token = asio::as_tuple(asio::use_awaitable);
  beast::flat_buffer buffer;
  Arena arena;
  for (bool keep_alive = true; keep_alive;) {
    arena.resource.release();
    auto parser = parser_in<bufpool::PoolBody>(arena);
    parser.body_limit(max_body);
    auto [ec, n] = co_await http::async_read_header(socket, buffer, parser, token);
    if (ec) co_return;
    auto& req = parser.get();
    keep_alive = req.keep_alive();
    const std::string_view key = key_of(req);
    if (key.empty()) {
      keep_alive = false;  // the body, if any, is not read
      auto res = status_only(arena, http::status::not_found, req.version(), keep_alive);
      std::tie(ec, n) = co_await write(socket, res);
    } else if (req.method() == http::verb::put) {
      std::tie(ec, n) = co_await bufpool::async_read_body(socket, buffer, parser, pool, 1s, token);
      if (ec) {  // no memory within a second, a body cut short, or a chunked body
        keep_alive = false;
        const auto status = ec == bufpool::errc::timed_out ? http::status::service_unavailable
                                                           : http::status::bad_request;
        auto res = status_only(arena, status, req.version(), keep_alive);
        std::tie(ec, n) = co_await write(socket, res);
        co_return;
      }
      put_value(store, key, req.body().share());
      auto res = status_only(arena, http::status::created, req.version(), keep_alive);
      std::tie(ec, n) = co_await write(socket, res);
    } else if (auto it = store.find(key); req.method() == http::verb::get && it != store.end()) {
      auto res = response<bufpool::PoolBody>(arena, http::status::ok, req.version());
      res.body().shared = it->second;  // a reference: the bytes live until the write is done
      res.keep_alive(keep_alive);
      res.prepare_payload();
      std::tie(ec, n) = co_await write(socket, res);
    } else {
      auto res = status_only(arena, http::status::not_found, req.version(), keep_alive);
      std::tie(ec, n) = co_await write(socket, res);
    }
    if (ec) co_return;  // the response could not be written: the connection is done
  }
}

// --body vector: what a Beast server without bufpool looks like.
asio::awaitable<void> serve_vector(tcp::socket socket, Store<std::vector<char>>& store) {
  const auto token = asio::as_tuple(asio::use_awaitable);
  beast::flat_buffer buffer;
  Arena arena;
  for (bool keep_alive = true; keep_alive;) {
    arena.resource.release();
    auto parser = parser_in<http::vector_body<char>>(arena);
    parser.body_limit(max_body);
    auto [ec, n] = co_await http::async_read(socket, buffer, parser, token);
    if (ec) co_return;
    auto& req = parser.get();
    keep_alive = req.keep_alive();
    const std::string_view key = key_of(req);
    if (key.empty()) {
      auto res = status_only(arena, http::status::not_found, req.version(), keep_alive);
      std::tie(ec, n) = co_await write(socket, res);
    } else if (req.method() == http::verb::put) {
      put_value(store, key, std::move(req.body()));
      auto res = status_only(arena, http::status::created, req.version(), keep_alive);
      std::tie(ec, n) = co_await write(socket, res);
    } else if (auto it = store.find(key); req.method() == http::verb::get && it != store.end()) {
      auto res = response<http::vector_body<char>>(arena, http::status::ok, req.version());
      res.body() = it->second;
      res.keep_alive(keep_alive);
      res.prepare_payload();
      std::tie(ec, n) = co_await write(socket, res);
    } else {
      auto res = status_only(arena, http::status::not_found, req.version(), keep_alive);
      std::tie(ec, n) = co_await write(socket, res);
    }
    if (ec) co_return;  // the response could not be written: the connection is done
  }
}

int main(int argc, char** argv) {
  unsigned short port = 0;
  bool pool_body = true;
  std::size_t mib = 1024;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (arg == "--port" && value) {
      port = static_cast<unsigned short>(std::atoi(argv[++i]));
    } else if (arg == "--body" && value &&
               (std::strcmp(value, "pool") == 0 || std::strcmp(value, "vector") == 0)) {
      pool_body = std::strcmp(argv[++i], "pool") == 0;
    } else if (arg == "--max-memory" && value) {
      mib = std::strtoul(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr,
                   "usage: beast_server [--port P] [--body pool|vector] [--max-memory MIB]\n");
      return 2;
    }
  }
  try {
    bufpool::BuddyPool pool({.min_block = 64 * bufpool::KiB, .max_memory = mib * bufpool::MiB});
    Store<bufpool::SharedBuffer> pool_store;
    Store<std::vector<char>> vector_store;
    asio::io_context io(1);
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), port});
    std::printf("listening on %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
    std::fflush(stdout);
    auto accept = [&]() -> asio::awaitable<void> {
      for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
        if (pool_body) {
          asio::co_spawn(io, serve_pool(std::move(socket), pool, pool_store), asio::detached);
        } else {
          asio::co_spawn(io, serve_vector(std::move(socket), vector_store), asio::detached);
        }
      }
    };
    asio::co_spawn(io, accept(), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    asio::signal_set stop(io, SIGINT, SIGTERM);  // exit 0, with destructors run
    stop.async_wait([&](boost::system::error_code, int) { io.stop(); });
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beast_server: %s\n", e.what());
    return 1;
  }
}
