#include "server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <filesystem>

namespace bufpool::server {

std::string exception_text(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

namespace {

BuddyPoolOptions pool_options(const Config& c) {
  BuddyPoolOptions o;
  o.chunk_size = c.chunk_size;
  o.min_block = c.min_block;
  o.fanout = 4;
  o.max_memory = c.max_memory;
  o.reserve = c.reserve;
  o.zero_freed = c.zero_freed;
  return o;
}

tcp::endpoint resolve(const Endpoint& e) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(e.host, ec);
  if (ec) {
    // A name such as localhost: resolve it once, at start.
    asio::io_context io;
    tcp::resolver r(io);
    auto results = r.resolve(e.host, std::to_string(e.port), ec);
    if (ec || results.empty())
      throw std::system_error(ec, fmt::format("cannot resolve '{}'", e.host));
    return *results.begin();
  }
  return {address, e.port};
}

std::unique_ptr<tcp::acceptor> listen(asio::io_context& io, const Endpoint& e) {
  auto a = std::make_unique<tcp::acceptor>(io);
  const tcp::endpoint ep = resolve(e);
  a->open(ep.protocol());
  a->set_option(asio::socket_base::reuse_address(true));
  boost::system::error_code ec;
  a->bind(ep, ec);
  if (ec) throw std::system_error(ec, fmt::format("cannot listen on {}", e.to_string()));
  a->listen(asio::socket_base::max_listen_connections);
  return a;
}

}  // namespace

Server::Server(Config config)
    : config_(std::move(config)),
      pool_(pool_options(config_)),
      store_(config_.key_arena, config_.max_keys),
      request_nodes_(NodePoolOptions{.node_size = sizeof(RequestContext),
                                     .node_align = alignof(RequestContext)}),
      connections_(ConnectionLimits{config_.max_connections, config_.max_connections_per_address,
                                    config_.unreceived_per_address(), config_.evict_stalled_after}),
      rpc_service_(make_store_service(*this)) {}

Server::~Server() {
  request_stop();
  wait();
}

void Server::start() {
  started_ns_ = now_ns();
  const unsigned n = config_.effective_threads();
  for (unsigned i = 0; i < n; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    work_.push_back(asio::make_work_guard(*contexts_.back()));
  }
  asio::io_context& main = *contexts_.front();
  // A certificate that does not load stops the start (std::runtime_error, naming the file).
  if (config_.tls_any()) tls_ = std::make_unique<TlsContext>(config_.cert_file, config_.key_file);
  if (config_.http_listen.enabled) {
    http_acceptor_ = listen(main, config_.http_listen);
    http_port_ = http_acceptor_->local_endpoint().port();
  }
  if (config_.rpc_listen.enabled) {
    rpc_acceptor_ = listen(main, config_.rpc_listen);
    rpc_port_ = rpc_acceptor_->local_endpoint().port();
  }
  if (config_.resp_listen.enabled) {
    resp_acceptor_ = listen(main, config_.resp_listen);
    resp_port_ = resp_acceptor_->local_endpoint().port();
  }
  signals_ = std::make_unique<asio::signal_set>(main, SIGINT, SIGTERM, SIGHUP);
  wait_for_signals();
  shutdown_timer_ = std::make_unique<asio::steady_timer>(main);
  trim_timer_ = std::make_unique<asio::steady_timer>(main);
  schedule_trim();
  if (http_acceptor_) accept_loop(*http_acceptor_, start_http_session, config_.tls_http);
  if (rpc_acceptor_) accept_loop(*rpc_acceptor_, start_rpc_session, config_.tls_rpc);
  if (resp_acceptor_) accept_loop(*resp_acceptor_, start_resp_session, config_.tls_resp);
  for (unsigned i = 0; i < n; ++i)
    threads_.emplace_back([this, i] { contexts_[i]->run(); });
  if (http_acceptor_)
    spdlog::info("listening for HTTP{} on {}", config_.tls_http ? "S (TLS)" : "",
                 Endpoint{config_.http_listen.host, http_port_, true}.to_string());
  if (rpc_acceptor_)
    spdlog::info("listening for RPC{} on {}", config_.tls_rpc ? " over TLS" : "",
                 Endpoint{config_.rpc_listen.host, rpc_port_, true}.to_string());
  if (resp_acceptor_)
    spdlog::info("listening for RESP (Redis protocol){} on {}", config_.tls_resp ? " over TLS" : "",
                 Endpoint{config_.resp_listen.host, resp_port_, true}.to_string());
  write_port_file();
}

void Server::write_port_file() {
  if (config_.port_file.empty()) return;
  const std::string tmp = config_.port_file + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) throw std::system_error(errno, std::generic_category(), "cannot write " + tmp);
  std::fprintf(f, "{\"http\": %u, \"rpc\": %u, \"resp\": %u}\n", unsigned{http_port_},
               unsigned{rpc_port_}, unsigned{resp_port_});
  std::fclose(f);
  std::filesystem::rename(tmp, config_.port_file);  // readers never see half a file
}

// SIGINT and SIGTERM start the graceful shutdown; SIGHUP loads the TLS certificate and key again
// (a failure is logged and the old ones stay).
void Server::wait_for_signals() {
  signals_->async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (signo == SIGHUP) {
      if (!tls_) {
        spdlog::info("SIGHUP: no TLS listener, nothing to reload");
      } else {
        try {
          tls_->reload();
          spdlog::info("SIGHUP: TLS certificate and key reloaded from {}", tls_->cert_file());
        } catch (const std::runtime_error& e) {
          spdlog::error("SIGHUP: TLS reload failed, the previous certificate stays: {}", e.what());
        }
      }
      wait_for_signals();
      return;
    }
    spdlog::info("signal {}: shutting down (in-flight requests have {})", signo,
                 format_duration(config_.shutdown_timeout));
    begin_shutdown();
  });
}

// A TLS listener's connection: the handshake (within header_timeout), then its session.
asio::awaitable<void> Server::tls_session(tcp::socket socket, SessionStarter start_session) {
  std::string what;
  auto layer =
      co_await tls_accept(std::move(socket), tls_->current(), config_.header_timeout, what);
  if (!layer) {
    counters_.add(counters_.tls_handshake_failures);
    spdlog::debug("TLS handshake failed: {}", what);
    co_return;
  }
  counters_.add(counters_.tls_handshakes);
  if (draining()) co_return;
  start_session(*this, Transport(std::move(layer)));
}

void Server::accept_loop(tcp::acceptor& acceptor, SessionStarter start_session, bool tls) {
  auto loop = [this, &acceptor, start_session, tls]() -> asio::awaitable<void> {
    for (;;) {
      asio::io_context& target =
          *contexts_[next_context_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
      auto [ec, socket] =
          co_await acceptor.async_accept(target, asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        // EMFILE and friends: log, breathe, and go on accepting.
        spdlog::warn("accept failed: {}", ec.message());
        asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      // begin_shutdown runs on this same thread (the first context), so a session started here
      // is always in the table before close_all() walks it: no late session escapes the drain.
      if (draining()) continue;  // the socket closes as it goes out of scope
      counters_.add(counters_.connections_accepted);
      if (tls) {
        tcp::socket plain(std::move(socket));
        auto executor = plain.get_executor();
        asio::co_spawn(executor, tls_session(std::move(plain), start_session),
                       [](std::exception_ptr e) {
                         if (e) spdlog::error("TLS handshake: {}", exception_text(e));
                       });
      } else {
        start_session(*this, Transport(tcp::socket(std::move(socket))));
      }
    }
  };
  asio::co_spawn(acceptor.get_executor(), loop, [](std::exception_ptr e) {
    if (e) spdlog::critical("accept loop failed: {}", exception_text(e));
  });
}

// Gives back the chunks that no buffer has needed for trim_after, so that RSS falls after a
// peak (DELETEs, a burst of large PUTs). The pool's in-use bytes are sampled four times per
// trim_after; the pool keeps what the highest of the last four samples needed (and `reserve`).
void Server::schedule_trim() {
  trim_timer_->expires_after(config_.trim_after / 4);
  trim_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_trimming_) return;
    trim_samples_[trim_next_++ % trim_samples_.size()] = pool_.stats().bytes_in_use;
    std::size_t keep = config_.reserve;
    for (std::size_t v : trim_samples_)
      keep = std::max(keep, v);
    if (const std::size_t freed = pool_.trim(keep))
      spdlog::debug("trim: {} given back to the system", format_size(freed));
    schedule_trim();
  });
}

void Server::request_stop() {
  if (contexts_.empty()) return;
  asio::post(*contexts_.front(), [this] { begin_shutdown(); });
}

void Server::begin_shutdown() {
  if (stop_requested_.exchange(true)) return;
  draining_.store(true, std::memory_order_release);
  boost::system::error_code ec;
  if (http_acceptor_) http_acceptor_->close(ec);
  if (rpc_acceptor_) rpc_acceptor_->close(ec);
  if (resp_acceptor_) resp_acceptor_->close(ec);
  // Idle connections close now; busy ones after their current response.
  connections_.close_all(false);
  shutdown_timer_->expires_after(config_.shutdown_timeout);
  shutdown_timer_->async_wait([this](const boost::system::error_code& e) {
    if (e) return;
    spdlog::warn("shutdown timeout: closing {} connection(s) still open", connections_.size());
    connections_.close_all(true);
  });
  session_finished_check();
}

void Server::session_started() noexcept {
  std::lock_guard lock(sessions_mutex_);
  ++sessions_;
}

void Server::session_finished() noexcept {
  {
    std::lock_guard lock(sessions_mutex_);
    --sessions_;
  }
  if (draining()) asio::post(*contexts_.front(), [this] { session_finished_check(); });
}

void Server::session_finished_check() {
  {
    std::lock_guard lock(sessions_mutex_);
    if (sessions_ != 0 || stopped_) return;
    stopped_ = true;
  }
  // Everything has finished: let the I/O threads run out of work.
  shutdown_timer_->cancel();
  stopped_trimming_ = true;
  trim_timer_->cancel();
  boost::system::error_code ec;
  signals_->cancel(ec);
  for (auto& w : work_)
    w.reset();
  spdlog::info("stopped");
}

void Server::wait() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace bufpool::server
