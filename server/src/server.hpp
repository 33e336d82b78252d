// bufpool-server: the process around the store. Owns the pool, the store, the I/O threads, the
// listeners and the connection table, and runs the graceful shutdown.
#pragma once

#include <bufpool/app/tls.hpp>
#include <bufpool/buddy_pool.hpp>
#include <bufpool/detail/transport.hpp>
#include <bufpool/node_pool.hpp>
#include <bufpool/rpc/service.hpp>

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config.hpp"
#include "connection_table.hpp"
#include "store.hpp"

namespace bufpool::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
// A connection's stream: TCP, or TLS over it (bufpool/detail/transport.hpp).
using detail::Transport;

/// Counters for /v1/stats and /metrics. Relaxed atomics: statistics, not synchronisation.
struct ServerCounters {
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> connections_rejected{0};             // the table was full
  std::atomic<std::uint64_t> connections_refused_per_address{0};  // max_connections_per_address
  std::atomic<std::uint64_t> header_timeouts{0};                  // 408, or a close (RPC, RESP)
  std::atomic<std::uint64_t> slow_bodies{0};                      // below min_body_rate
  std::atomic<std::uint64_t> unreceived_waits{0};  // a body waited for its address's quota
  std::atomic<std::uint64_t> tls_handshakes{0};
  std::atomic<std::uint64_t> tls_handshake_failures{0};
  std::atomic<std::uint64_t> http_requests{0};
  std::atomic<std::uint64_t> rpc_requests{0};
  std::atomic<std::uint64_t> resp_commands{0};
  std::atomic<std::uint64_t> resp_errors{0};    // commands answered with an error
  std::atomic<std::uint64_t> keyspace_hits{0};  // RESP reads of a key that exists
  std::atomic<std::uint64_t> keyspace_misses{0};
  std::array<std::atomic<std::uint64_t>, 6> http_by_class{};  // 1xx..5xx at [1..5]
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::uint64_t> alloc_timeouts{0};
  std::atomic<std::uint64_t> read_timeouts{0};
  std::atomic<std::uint64_t> incomplete_bodies{0};
  void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.fetch_add(n, std::memory_order_relaxed);
  }
};

/// Per-request state, allocated from the server's NodePool: one fixed-size node per request,
/// taken on the connection's thread and often released on another (a GET's bytes outlive it).
struct RequestContext {
  std::int64_t start_ns = 0;
  std::uint64_t connection_id = 0;
  int status = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;
};

class Server {
 public:
  explicit Server(Config config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds the listeners and starts the I/O threads. Throws std::system_error if a listener
  /// cannot bind. Writes the port file if one is configured.
  void start();
  /// Blocks until the server has stopped (after a signal or request_stop()).
  void wait();
  /// Starts the graceful shutdown: stop accepting, let in-flight requests finish within
  /// shutdown_timeout, then close what is left. Thread-safe, idempotent.
  void request_stop();

  std::uint16_t http_port() const noexcept { return http_port_; }
  std::uint16_t rpc_port() const noexcept { return rpc_port_; }
  std::uint16_t resp_port() const noexcept { return resp_port_; }

  // For the front ends.
  const Config& config() const noexcept { return config_; }
  BuddyPool& pool() noexcept { return pool_; }
  BufferStore& store() noexcept { return store_; }
  ConnectionTable& connections() noexcept { return connections_; }
  ServerCounters& counters() noexcept { return counters_; }
  NodePool& request_nodes() noexcept { return request_nodes_; }
  const rpc::Service& rpc_service() const noexcept { return rpc_service_; }
  bool draining() const noexcept { return draining_.load(std::memory_order_acquire); }
  std::int64_t started_ns() const noexcept { return started_ns_; }
  std::string stats_json();
  std::string metrics_text();
  std::string connections_json(ConnectionTable::Order order);

  /// A connection's session registers itself while it runs, so that shutdown can wait for it.
  void session_started() noexcept;
  void session_finished() noexcept;

 private:
  using SessionStarter = void (*)(Server&, Transport);
  void accept_loop(tcp::acceptor& acceptor, SessionStarter start_session, bool tls);
  asio::awaitable<void> tls_session(tcp::socket socket, SessionStarter start_session);
  void wait_for_signals();
  void begin_shutdown();
  void session_finished_check();
  void write_port_file();
  void schedule_trim();

  Config config_;
  BuddyPool pool_;
  BufferStore store_;
  NodePool request_nodes_;
  ConnectionTable connections_;
  ServerCounters counters_;
  rpc::Service rpc_service_;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::unique_ptr<tcp::acceptor> http_acceptor_, rpc_acceptor_, resp_acceptor_;
  std::unique_ptr<asio::signal_set> signals_;
  std::unique_ptr<TlsContext> tls_;  // when a listener speaks TLS
  std::unique_ptr<asio::steady_timer> shutdown_timer_;
  std::unique_ptr<asio::steady_timer> trim_timer_;
  std::array<std::size_t, 4> trim_samples_{};  // the pool's in-use bytes, the last four times
  std::size_t trim_next_ = 0;
  bool stopped_trimming_ = false;  // on the main context only
  std::atomic<bool> draining_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<std::size_t> next_context_{0};
  std::uint16_t http_port_ = 0, rpc_port_ = 0, resp_port_ = 0;
  std::mutex sessions_mutex_;
  std::condition_variable sessions_done_;
  std::size_t sessions_ = 0;
  bool stopped_ = false;
  std::int64_t started_ns_ = 0;
};

/// What a coroutine that ended with `e` (not null) threw, for a log line.
std::string exception_text(std::exception_ptr e);

/// Runs one HTTP connection to its end (http_session.cpp).
void start_http_session(Server& server, Transport socket);
/// Runs one RPC connection to its end (rpc_session.cpp).
void start_rpc_session(Server& server, Transport socket);
/// Runs one RESP (Redis protocol) connection to its end (resp_session.cpp).
void start_resp_session(Server& server, Transport socket);
/// The buffer store as a bufpool::rpc service.
rpc::Service make_store_service(Server& server);

}  // namespace bufpool::server
