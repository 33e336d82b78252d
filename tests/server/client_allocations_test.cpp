// bufpool::Client makes no heap call per call once warm: every operator new in this process is
// counted (replaced below), around calls to a real bufpool-server.
#include "bufpool/client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdlib>
#include <new>
#include <vector>

#include "async_support.hpp"
#include "server_process.hpp"

// Sanitizers bring their own allocator: the count is taken in the plain builds only.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BUFPOOL_COUNT_NEWS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BUFPOOL_COUNT_NEWS 0
#endif
#endif
#ifndef BUFPOOL_COUNT_NEWS
#define BUFPOOL_COUNT_NEWS 1
#endif

namespace {
std::atomic<std::size_t> news{0};
}  // namespace

#if BUFPOOL_COUNT_NEWS
void* operator new(std::size_t n) {
  news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
#endif

namespace bufpool {
namespace {

namespace asio = boost::asio;

using test::run_async;

TEST(ClientAllocations, NoHeapCallPerCall) {
  if (!BUFPOOL_COUNT_NEWS) GTEST_SKIP() << "a sanitizer's allocator is in use";
  test::ServerProcess server;
  run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await Client::connect(ex, "127.0.0.1", server.rpc_port);
    const std::vector<std::byte> value(4096, std::byte{7});
    // A key longer than std::string's inline capacity: it used to be copied into a heap string.
    const std::string key = "a-key-of-more-than-sixteen-bytes";
    for (int i = 0; i < 100; ++i) {  // warm up: the ring, the queue's vectors, the pool
      co_await c->put(key, asio::buffer(value));
      co_await c->get(key);
    }
    const std::size_t before = news.load();
    constexpr int calls = 2000;
    for (int i = 0; i < calls; ++i) {
      co_await c->put(key, asio::buffer(value));
      auto got = co_await c->get(key);
      EXPECT_TRUE(got && got->size() == value.size());
    }
    const std::size_t made = news.load() - before;
    std::printf("%zu heap calls in %d calls\n", made, 2 * calls);
    EXPECT_EQ(made, 0u);
    co_await c->erase(key);
  });
}

}  // namespace
}  // namespace bufpool
