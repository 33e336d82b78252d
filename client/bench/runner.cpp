#include "runner.hpp"

#include "payload.hpp"
#include "protocols.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <bufpool/app/units.hpp>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <functional>
#include <mutex>
#include <ostream>
#include <random>
#include <stdexcept>
#include <thread>

#include <bufpool/app/json.hpp>

namespace bufpool::bench {

namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::uint64_t Tally::error_count() const noexcept {
  std::uint64_t n = 0;
  for (const auto& [kind, count] : errors)
    n += count;
  return n;
}

void Tally::merge(const Tally& o) {
  put_latency.merge(o.put_latency);
  get_latency.merge(o.get_latency);
  puts += o.puts;
  gets += o.gets;
  misses += o.misses;
  bytes += o.bytes;
  verified += o.verified;
  corrupt += o.corrupt;
  for (const auto& [kind, count] : o.errors)
    errors[kind] += count;
}

double Report::throughput() const noexcept {
  return seconds > 0 ? static_cast<double>(total.puts + total.gets + total.misses) / seconds : 0;
}
double Report::attempted_throughput() const noexcept {
  return seconds > 0 ? static_cast<double>(attempted()) / seconds : 0;
}
double Report::error_rate() const noexcept {
  return attempted() ? static_cast<double>(total.error_count()) / static_cast<double>(attempted())
                     : 0;
}
double Report::mb_per_s() const noexcept {
  return seconds > 0 ? static_cast<double>(total.bytes) / 1e6 / seconds : 0;
}

namespace {

enum Phase : int { prefill, warmup, measure, stop };

struct ThreadState {
  asio::io_context ctx{1};
  std::unique_ptr<BuddyPool> pool;  // RPC replies land here
  std::mutex mutex;
  Tally interval;  // guarded by mutex: the main thread takes it each second
  std::thread thread;
  std::atomic<bool> finished{false};
};

// One connection, the workers that share it, and its place in the open-loop schedule.
struct Slot {
  std::shared_ptr<Connection> conn;
  ThreadState* thread = nullptr;
  unsigned index = 0;
  bool connecting = false;
  std::uint64_t next_send = 0;
};

class Engine {
 public:
  explicit Engine(const Options& o) : o_(o) {}
  Report run(std::ostream& progress, bool tty);

 private:
  ConnectionOptions connection_options(BuddyPool* pool) const {
    return {o_.target, o_.timeout, o_.connect_timeout, pool, tls_};
  }
  std::shared_ptr<TlsContext::Context> tls_;  // --tls: one client context for every connection
  void probe();
  asio::awaitable<bool> ensure_open(Slot& s);
  struct Worker;
  asio::awaitable<void> worker(std::shared_ptr<Slot> s, unsigned index);
  Request put_request(Worker& w, std::uint64_t k);
  asio::awaitable<void> prefill_keys(Worker& w, asio::steady_timer& timer);
  asio::awaitable<std::optional<Clock::time_point>> next_send(Slot& s, asio::steady_timer& timer);
  void record(Worker& w, const Request& req, std::uint64_t k, const Outcome& out,
              Clock::duration latency);
  void prepare();
  void start_threads();
  using Print = std::function<void(const std::string&)>;
  void prefill_phase(Report& report, const Print& print, Clock::time_point start);
  Clock::time_point measure_phase(Report& report, const Print& print, Clock::time_point start);
  void finish(Report& report, Clock::time_point measure_start, bool newline,
              std::ostream& progress);
  bool matches_reference(const std::vector<std::byte>& body);
  Tally take_interval();

  const Options& o_;
  std::vector<std::unique_ptr<ThreadState>> threads_;
  std::vector<std::shared_ptr<Slot>> slots_;
  std::atomic<int> phase_{prefill};
  std::atomic<std::uint64_t> next_prefill_{0}, prefilled_{0}, prefill_failed_{0};
  std::mutex prefill_error_mutex_;
  std::string prefill_error_;
  std::atomic<std::int64_t> budget_{0};
  std::atomic<unsigned> workers_{0};
  Clock::time_point schedule_start_;  // written before the phase leaves prefill
  double interval_ns_ = 0;            // open loop: time between sends on one connection
  std::vector<std::byte> filler_;     // PUT values when not verifying
  std::mutex reference_mutex_;        // plain GET --verify: every body must equal the first
  std::optional<std::vector<std::byte>> reference_;
};

// Connects once before anything starts, so that a wrong address is one clear message.
void Engine::probe() {
  if (o_.tls) tls_ = tls_client_context(o_.ca_file);  // a bad --cacert is one clear message too
  asio::io_context ctx{1};
  std::exception_ptr error;
  auto conn = make_connection(ctx.get_executor(), connection_options(nullptr));
  auto attempt = [conn]() -> asio::awaitable<void> {
    co_await conn->open();
    conn->close();
  };
  asio::co_spawn(ctx, attempt, [&](std::exception_ptr e) { error = e; });
  ctx.run();
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    throw std::runtime_error(
        fmt::format("cannot connect to {}: {}", o_.target.to_string(), e.what()));
  }
}

asio::awaitable<bool> Engine::ensure_open(Slot& s) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!s.conn->is_open()) {
    if (phase_.load() == stop) co_return false;
    if (s.connecting) {  // another worker of this connection is at it
      timer.expires_after(2ms);
      co_await timer.async_wait(as_tuple(use_awaitable));
      continue;
    }
    s.connecting = true;
    bool failed = false;
    try {
      co_await s.conn->open();
    } catch (const std::exception&) {
      failed = true;
    }
    s.connecting = false;
    if (failed) {
      if (phase_.load() == measure) {
        std::lock_guard lock(s.thread->mutex);
        ++s.thread->interval.errors["connect"];
      }
      timer.expires_after(100ms);
      co_await timer.async_wait(as_tuple(use_awaitable));
    }
  }
  co_return true;
}

bool Engine::matches_reference(const std::vector<std::byte>& body) {
  std::lock_guard lock(reference_mutex_);
  if (!reference_) {
    reference_ = body;
    return true;
  }
  return *reference_ == body;
}

// What one worker keeps between its requests.
struct Engine::Worker {
  Worker(const Engine& e, const std::shared_ptr<Slot>& slot, unsigned w)
      : s(slot),
        rng(splitmix64(e.o_.seed) ^ splitmix64((std::uint64_t{slot->index} << 16) + w)),
        key(e.o_.key_prefix),
        prefix(e.o_.key_prefix.size()) {}
  std::shared_ptr<Slot> s;
  std::mt19937_64 rng;
  std::vector<std::byte> value, body;  // --verify: the value PUT, the bytes a GET got
  std::string key;
  std::size_t prefix;
  void set_key(std::uint64_t k) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, k);
    key.resize(prefix);
    key.append(digits, r.ptr);
  }
};

Request Engine::put_request(Worker& w, std::uint64_t k) {
  const std::size_t size = o_.sizes.pick(w.rng);
  Request r{Op::put, w.key, {}, nullptr};
  if (o_.verify) {
    w.value.resize(size);
    fill_payload(w.value, k, w.rng());
    r.payload = asio::buffer(w.value);
  } else {
    r.payload = asio::buffer(filler_.data(), size);
  }
  return r;
}

// Prefill: PUTs every key once, the workers sharing out the keys, then waits for the others.
asio::awaitable<void> Engine::prefill_keys(Worker& w, asio::steady_timer& timer) {
  while (phase_.load() == prefill) {
    const auto k = next_prefill_.fetch_add(1);
    if (k >= o_.keys) break;
    if (!co_await ensure_open(*w.s)) break;
    w.set_key(k);
    const Request req = put_request(w, k);
    auto conn = w.s->conn;
    const Outcome out = co_await conn->execute(req);
    if (out.kind == Outcome::Kind::ok) {
      prefilled_.fetch_add(1);
    } else {
      std::lock_guard lock(prefill_error_mutex_);
      if (prefill_error_.empty()) prefill_error_ = out.error;
      prefill_failed_.fetch_add(1);
    }
  }
  while (phase_.load() == prefill) {
    timer.expires_after(5ms);
    co_await timer.async_wait(as_tuple(use_awaitable));
  }
}

// Open loop: waits for this connection's next slot in the schedule and returns it (when every
// worker is busy the slot is already past: the request goes at once and its latency counts from
// the slot). Closed loop: now. nullopt once the run stops.
asio::awaitable<std::optional<Clock::time_point>> Engine::next_send(Slot& s,
                                                                    asio::steady_timer& timer) {
  if (o_.rate <= 0) co_return Clock::now();
  const double at =
      (static_cast<double>(s.next_send++) + static_cast<double>(s.index) / o_.connections) *
      interval_ns_;
  const auto intended = schedule_start_ + std::chrono::nanoseconds(static_cast<std::int64_t>(at));
  while (Clock::now() < intended && phase_.load() != stop) {
    timer.expires_at(std::min(intended, Clock::now() + 50ms));
    co_await timer.async_wait(as_tuple(use_awaitable));
  }
  if (phase_.load() == stop) co_return std::nullopt;
  co_return intended;
}

// Counts one measured request in its thread's interval tally.
void Engine::record(Worker& w, const Request& req, std::uint64_t k, const Outcome& out,
                    Clock::duration latency) {
  bool checked = false, corrupt = false;
  if (o_.verify && req.op == Op::get && out.kind == Outcome::Kind::ok) {
    checked = true;
    corrupt = o_.target.plain_get() ? !matches_reference(w.body) : !check_payload(w.body, k);
  }
  const auto ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count());
  ThreadState& ts = *w.s->thread;
  std::lock_guard lock(ts.mutex);
  Tally& t = ts.interval;
  if (out.kind == Outcome::Kind::error) {
    ++t.errors[out.error];
  } else if (out.kind == Outcome::Kind::miss) {
    ++t.misses;
    t.get_latency.record(ns);
  } else if (req.op == Op::put) {
    ++t.puts;
    t.bytes += req.payload.size();
    t.put_latency.record(ns);
  } else {
    ++t.gets;
    t.bytes += out.bytes;
    t.get_latency.record(ns);
  }
  t.verified += checked;
  t.corrupt += corrupt;
  if (corrupt) ++t.errors["corrupt"];
}

asio::awaitable<void> Engine::worker(std::shared_ptr<Slot> s, unsigned index) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  Worker w(*this, s, index);
  co_await prefill_keys(w, timer);
  const unsigned total_weight = o_.mix.put + o_.mix.get;
  std::uniform_int_distribution<unsigned> pick_op(0, total_weight - 1);
  std::uniform_int_distribution<std::uint64_t> pick_key(0, o_.keys - 1);
  while (phase_.load() != stop) {
    const std::optional<Clock::time_point> intended = co_await next_send(*s, timer);
    if (!intended) break;
    const bool measured = phase_.load() == measure;
    if (measured && o_.requests && budget_.fetch_sub(1) <= 0) break;
    const Op op = pick_op(w.rng) < o_.mix.put ? Op::put : Op::get;
    const std::uint64_t k = pick_key(w.rng);
    w.set_key(k);
    const Request req = op == Op::put ? put_request(w, k)
                                      : Request{Op::get, w.key, {}, o_.verify ? &w.body : nullptr};
    if (!s->conn->is_open() && !co_await ensure_open(*s)) break;
    auto conn = s->conn;
    const Outcome out = co_await conn->execute(req);
    if (measured) record(w, req, k, out, Clock::now() - *intended);
  }
  workers_.fetch_sub(1);
}

Tally Engine::take_interval() {
  Tally sum;
  for (auto& ts : threads_) {
    Tally t;
    {
      std::lock_guard lock(ts->mutex);
      std::swap(t, ts->interval);
    }
    sum.merge(t);
  }
  return sum;
}

std::string ms(std::uint64_t ns) {
  return fmt::format("{:.3f} ms", static_cast<double>(ns) / 1e6);
}

// The fill bytes, the budget, a reply pool per thread, and every connection with its workers.
void Engine::prepare() {
  const unsigned T = o_.threads;
  if (!o_.verify) {
    filler_.resize(o_.sizes.max());
    for (std::size_t i = 0; i < filler_.size(); ++i)
      filler_[i] = static_cast<std::byte>(splitmix64(i) >> 56);
  }
  if (o_.rate > 0) interval_ns_ = 1e9 * o_.connections / o_.rate;
  if (o_.requests) budget_ = static_cast<std::int64_t>(*o_.requests);
  // Each thread's replies land in a pool of its own, sized for every reply in flight.
  std::size_t chunk = std::size_t{64} << 20;
  while (chunk < o_.sizes.max())
    chunk <<= 1;
  const std::size_t per_thread = (o_.connections / T + 1) * std::size_t{o_.pipeline} *
                                 std::max<std::size_t>(o_.sizes.max(), 4096);
  for (unsigned t = 0; t < T; ++t) {
    auto ts = std::make_unique<ThreadState>();
    BuddyPoolOptions po;
    po.chunk_size = chunk;
    po.min_block = 4096;
    po.max_memory = std::max(chunk * 2, (per_thread + chunk - 1) / chunk * chunk * 2);
    ts->pool = std::make_unique<BuddyPool>(po);
    threads_.push_back(std::move(ts));
  }
  for (unsigned c = 0; c < o_.connections; ++c) {
    auto s = std::make_shared<Slot>();
    s->thread = threads_[c % T].get();
    s->index = c;
    s->conn =
        make_connection(s->thread->ctx.get_executor(), connection_options(s->thread->pool.get()));
    slots_.push_back(s);
    for (unsigned w = 0; w < o_.pipeline; ++w) {
      workers_.fetch_add(1);
      asio::co_spawn(s->thread->ctx, worker(s, w), asio::detached);
    }
  }
}

void Engine::start_threads() {
  for (auto& ts : threads_) {
    ThreadState* p = ts.get();
    p->thread = std::thread([p] {
      p->ctx.run();
      p->finished = true;
    });
  }
}

namespace {
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

// Prefill: every key once, so that GETs hit.
void Engine::prefill_phase(Report& report, const Print& print, Clock::time_point start) {
  auto next_line = Clock::now() + 1s;
  while (prefilled_.load() + prefill_failed_.load() < o_.keys && workers_.load() > 0) {
    std::this_thread::sleep_for(10ms);
    if (Clock::now() >= next_line) {
      next_line += 1s;
      print(fmt::format("[{:5.1f}s] prefill {}/{} keys, {} failed", since(start), prefilled_.load(),
                        o_.keys, prefill_failed_.load()));
    }
  }
  report.prefilled = prefilled_.load();
  report.prefill_failed = prefill_failed_.load();
  std::lock_guard lock(prefill_error_mutex_);
  report.prefill_error = prefill_error_;
}

// The measured part: a progress line and the tallies every second, until the duration or the
// request budget is spent (or every worker has ended).
Clock::time_point Engine::measure_phase(Report& report, const Print& print,
                                        Clock::time_point start) {
  const auto measure_start = Clock::now();
  phase_ = measure;
  auto last_line = measure_start;
  const auto duration = o_.effective_duration();
  while (Clock::now() - measure_start < duration && workers_.load() > 0 &&
         !(o_.requests && budget_.load() <= 0)) {
    std::this_thread::sleep_for(10ms);
    if (Clock::now() - last_line < 1s) continue;
    const double secs = std::chrono::duration<double>(Clock::now() - last_line).count();
    last_line = Clock::now();
    Tally t = take_interval();
    Histogram all = t.put_latency;
    all.merge(t.get_latency);
    const auto n = t.puts + t.gets + t.misses;
    Second s;
    s.at = std::chrono::duration<double>(last_line - measure_start).count();
    s.succeeded_rps = static_cast<double>(n) / secs;
    s.attempted_rps = static_cast<double>(n + t.error_count()) / secs;
    s.mb_per_s = static_cast<double>(t.bytes) / 1e6 / secs;
    s.errors = t.error_count();
    s.p99_ns = all.quantile(0.99);
    report.series.push_back(s);
    print(fmt::format("[{:5.1f}s] {:.0f} req/s, {:.1f} MB/s, p99 {}, errors {}", since(start),
                      s.succeeded_rps, s.mb_per_s, ms(s.p99_ns), s.errors));
    report.total.merge(t);
  }
  phase_ = stop;
  return measure_start;
}

// Requests in flight finish (or time out); then the connections close and the threads end.
void Engine::finish(Report& report, Clock::time_point measure_start, bool newline,
                    std::ostream& progress) {
  const auto drain_limit = Clock::now() + o_.timeout + o_.connect_timeout + 1s;
  while (workers_.load() > 0 && Clock::now() < drain_limit)
    std::this_thread::sleep_for(1ms);
  report.seconds = std::chrono::duration<double>(Clock::now() - measure_start).count();
  if (newline) progress << '\n';
  for (auto& s : slots_) {
    auto conn = s->conn;
    asio::post(s->thread->ctx, [conn] { conn->close(); });
  }
  const auto close_limit = Clock::now() + 2s;
  for (auto& ts : threads_)
    while (!ts->finished.load() && Clock::now() < close_limit)
      std::this_thread::sleep_for(1ms);
  for (auto& ts : threads_) {
    ts->ctx.stop();
    ts->thread.join();
  }
  report.total.merge(take_interval());
}

Report Engine::run(std::ostream& progress, bool tty) {
  const std::string started =
      fmt::format("{:%Y-%m-%dT%H:%M:%SZ}",
                  std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
  probe();
  const bool do_prefill = o_.prefill && o_.mix.has_get() && !o_.target.plain_get();
  phase_ = do_prefill ? prefill : warmup;
  prepare();
  const auto start = Clock::now();
  schedule_start_ = start;
  start_threads();
  const Print print = [&](const std::string& line) {
    if (o_.quiet) return;
    if (tty)
      progress << '\r' << line << "\x1b[K" << std::flush;
    else
      progress << line << '\n' << std::flush;
  };
  Report report;
  report.started = started;
  if (do_prefill) {
    prefill_phase(report, print, start);
    schedule_start_ = Clock::now();
    phase_ = warmup;
  }
  if (o_.warmup.count() > 0) {
    const auto warm_start = Clock::now();
    print(fmt::format("[{:5.1f}s] warmup {}", since(start), format_duration(o_.warmup)));
    while (Clock::now() - warm_start < o_.warmup && workers_.load() > 0)
      std::this_thread::sleep_for(10ms);
  }
  const auto measure_start = measure_phase(report, print, start);
  finish(report, measure_start, tty && !o_.quiet, progress);
  return report;
}

}  // namespace

Report run(const Options& options, std::ostream& progress, bool progress_is_terminal) {
  Engine engine(options);
  return engine.run(progress, progress_is_terminal);
}

namespace {
std::string latency_line(const Histogram& h) {
  if (h.count() == 0) return "-";
  return fmt::format("p50 {}, p90 {}, p99 {}, p99.9 {}, max {}", ms(h.quantile(0.5)),
                     ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.quantile(0.999)), ms(h.max()));
}
std::string latency_json(const Histogram& h) {
  const auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e3; };
  return fmt::format(
      R"({{"count": {}, "mean": {:.3f}, "p50": {:.3f}, "p90": {:.3f}, "p99": {:.3f}, )"
      R"("p99_9": {:.3f}, "max": {:.3f}}})",
      h.count(), h.mean() / 1e3, us(h.quantile(0.5)), us(h.quantile(0.9)), us(h.quantile(0.99)),
      us(h.quantile(0.999)), us(h.max()));
}
}  // namespace

void print_report(const Options& o, const Report& r, std::ostream& out) {
  const auto& t = r.total;
  Histogram all = t.put_latency;
  all.merge(t.get_latency);
  out << fmt::format("target      {}\n", o.target.to_string());
  out << fmt::format(
      "load        {} connections x pipeline {}, {} thread{}, {}, mix {}, size {}, {} keys, seed "
      "{}\n",
      o.connections, o.pipeline, o.threads, o.threads == 1 ? "" : "s",
      o.rate > 0 ? fmt::format("open loop at {:.0f} req/s", o.rate) : "closed loop",
      o.mix.to_string(), o.sizes.to_string(), o.keys, o.seed);
  if (r.prefilled + r.prefill_failed > 0)
    out << fmt::format(
        "prefill     {} keys{}\n", r.prefilled,
        r.prefill_failed ? fmt::format(", {} failed (first: {})", r.prefill_failed, r.prefill_error)
                         : "");
  out << fmt::format("measured    {:.2f} s: {} requests ({} put, {} get, {} missed), {} errors\n",
                     r.seconds, t.puts + t.gets + t.misses + t.error_count(), t.puts, t.gets,
                     t.misses, t.error_count());
  out << fmt::format("throughput  {:.1f} req/s succeeded, {:.1f} req/s attempted, {:.2f} MB/s\n",
                     r.throughput(), r.attempted_throughput(), r.mb_per_s());
  if (t.error_count() > 0)
    out << fmt::format("error rate  {:.2f}% ({} of {} requests failed)\n", 100 * r.error_rate(),
                       t.error_count(), r.attempted());
  out << fmt::format("latency     {}\n", latency_line(all));
  if (t.put_latency.count() && t.get_latency.count()) {
    out << fmt::format("  put       {}\n", latency_line(t.put_latency));
    out << fmt::format("  get       {}\n", latency_line(t.get_latency));
  }
  std::string errors;
  for (const auto& [kind, count] : t.errors)
    errors += fmt::format("{}{} {}", errors.empty() ? "" : ", ", kind, count);
  out << fmt::format("errors      {}\n", errors.empty() ? "none" : errors);
  if (o.verify)
    out << fmt::format("verify      {} GETs checked, {} corrupt\n", t.verified, t.corrupt);
}

std::string report_json(const Options& o, const Report& r) {
  const auto& t = r.total;
  Histogram all = t.put_latency;
  all.merge(t.get_latency);
  std::string errors;
  for (const auto& [kind, count] : t.errors)
    errors += fmt::format(R"({}"{}": {})", errors.empty() ? "" : ", ", json_escape(kind), count);
  std::string series;
  for (const Second& s : r.series)
    series +=
        fmt::format(R"({}    {{"t": {:.3f}, "succeeded_rps": {:.1f}, "attempted_rps": {:.1f}, )"
                    R"("mb_per_s": {:.3f}, "errors": {}, "p99_us": {:.3f}}})",
                    series.empty() ? "\n" : ",\n", s.at, s.succeeded_rps, s.attempted_rps,
                    s.mb_per_s, s.errors, static_cast<double>(s.p99_ns) / 1e3);
  std::string buckets;  // the non-empty ones: [lowest ns, width ns, count]
  for (std::size_t i = 0; i < Histogram::bucket_count; ++i)
    if (const auto n = all.count_at(i))
      buckets += fmt::format("{}[{}, {}, {}]", buckets.empty() ? "" : ", ", Histogram::lower_of(i),
                             Histogram::width_of(i), n);
  return fmt::format(
      "{{\n"
      R"(  "version": "{}", "started": "{}",)"
      "\n"
      R"(  "target": "{}", "connections": {}, "pipeline": {}, "threads": {}, "rate": {},)"
      "\n"
      R"(  "mix": {{"put": {}, "get": {}}}, "size": "{}", "keys": {}, "seed": {}, "verify": {},)"
      "\n"
      R"(  "prefill": {{"keys": {}, "failed": {}}},)"
      "\n"
      R"(  "seconds": {:.3f}, "requests": {}, "puts": {}, "gets": {}, "misses": {},)"
      "\n"
      R"(  "throughput_rps": {:.1f}, "attempted_rps": {:.1f}, "error_rate": {:.6f},)"
      R"( "mb_per_s": {:.3f},)"
      "\n"
      R"(  "latency_us": {},)"
      "\n"
      R"(  "put_latency_us": {},)"
      "\n"
      R"(  "get_latency_us": {},)"
      "\n"
      R"(  "errors": {{{}}}, "error_count": {}, "verified": {}, "corrupt": {},)"
      "\n"
      R"(  "latency_histogram_ns": {{"buckets": [{}]}},)"
      "\n"
      R"(  "series": [{}{}])"
      "\n}}\n",
      version, r.started, json_escape(o.target.to_string()), o.connections, o.pipeline, o.threads,
      o.rate, o.mix.put, o.mix.get, o.sizes.to_string(), o.keys, o.seed, o.verify, r.prefilled,
      r.prefill_failed, r.seconds, t.puts + t.gets + t.misses + t.error_count(), t.puts, t.gets,
      t.misses, r.throughput(), r.attempted_throughput(), r.error_rate(), r.mb_per_s(),
      latency_json(all), latency_json(t.put_latency), latency_json(t.get_latency), errors,
      t.error_count(), t.verified, t.corrupt, buckets, series, series.empty() ? "" : "\n  ");
}

std::string plot_script(const Options& o, const Report& r, const std::string& svg) {
  std::string data;
  for (const Second& s : r.series)
    data += fmt::format("{:.3f} {:.1f} {:.1f} {:.3f}\n", s.at, s.succeeded_rps, s.attempted_rps,
                        static_cast<double>(s.p99_ns) / 1e6);
  const auto quoted = [](const std::string& s) {  // a gnuplot string in double quotes
    std::string q;
    for (char c : s) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q;
  };
  return fmt::format(
      "$series << EOD\n{}EOD\n"
      "set terminal svg size 900,500 dynamic font \"sans,10\" background \"#ffffff\"\n"
      "set output \"{}\"\n"
      "set title \"bufpool-bench {} against {}: {} connections x pipeline {}, {}\"\n"
      "set xlabel \"seconds into the measured phase\"\n"
      "set ylabel \"requests per second\"\n"
      "set y2label \"p99 latency, ms\"\n"
      "set ytics nomirror\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\nset grid\n"
      "set key bottom right\n"
      "plot $series using 1:2 with linespoints lc rgb \"#2b7bba\" title \"succeeded req/s\", \\\n"
      "     $series using 1:3 with lines dt 2 lc rgb \"#7f7f7f\" title \"attempted req/s\", \\\n"
      "     $series using 1:4 axes x1y2 with linespoints lc rgb \"#c0504d\" title \"p99 (ms)\"\n",
      data, quoted(svg), version, quoted(o.target.to_string()), o.connections, o.pipeline,
      o.rate > 0 ? fmt::format("open loop at {:.0f} req/s", o.rate) : std::string("closed loop"));
}

}  // namespace bufpool::bench
