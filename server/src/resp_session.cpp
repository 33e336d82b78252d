// The RESP (Redis protocol) front end: RESP2 and inline commands over the same store and pool as
// HTTP and RPC (docs/protocol.md, "RESP"). A SET's value is read from the socket into a pool
// buffer (the bytes that came with the command are copied once, the rest read straight in); a
// GET's reply is its head and the pool buffer in one gathered write. Replies go out in command
// order, the replies to one socket read in one write, through the connection toolkit
// (detail/direct_reader.hpp, detail/write_queue.hpp, detail/watchdog.hpp).
#include <fmt/format.h>
#include <fnmatch.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <bufpool/co_allocate.hpp>
#include <bufpool/detail/close_socket.hpp>
#include <bufpool/detail/receive_pace.hpp>
#include <bufpool/detail/served_connection.hpp>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "resp_protocol.hpp"
#include "server.hpp"
#include "session.hpp"

namespace bufpool::server {

namespace {

using asio::as_tuple;
using asio::use_awaitable;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr std::size_t read_buffer_size = 64 * 1024;  // also bounds a `*N`/`$N` or inline line
constexpr std::size_t max_args = 1024 * 1024;        // arguments of one command
constexpr std::size_t max_arg_bytes = 1u << 20;  // bytes of one command's arguments, values aside
constexpr std::size_t max_unsent = 1024;  // replies owed before the reader waits for the writer
constexpr std::size_t write_chunk = 4u << 20;
constexpr std::size_t max_key_size = 250;
// After a protocol error, what the client still sends is read and dropped, up to these bounds.
constexpr std::size_t linger_bytes = 1u << 20;
constexpr auto linger_time =
    std::chrono::milliseconds(1000);  // the store's limit, as for HTTP and RPC

constexpr std::string_view oom_error = "OOM command not allowed when used memory > 'maxmemory'.";
constexpr std::string_view unreceived_error =
    "ERR too many value bytes announced and not yet sent by this client address "
    "(limits.max_unreceived_per_address)";
constexpr std::string_view redis_version = "7.0.0";  // the Redis whose protocol we answer as

bool valid_resp_key(std::string_view key) noexcept {
  return !key.empty() && key.size() <= max_key_size;  // any bytes, as in Redis
}

// A reply on its way out: a head ("+OK\r\n", "$4096\r\n"), a body written from where it lives
// (the pool buffer of a value, or `text`), and the CRLF that ends a bulk string.
struct Reply {
  std::array<char, 40> head{};
  std::uint8_t head_size = 0;
  bool crlf = false;
  SharedBuffer value;
  std::string text;
  asio::const_buffer body{};
};
struct ReplyBuffers {
  std::array<asio::const_buffer, 3> operator()(const std::unique_ptr<Reply>& r) const {
    static constexpr char crlf[2] = {'\r', '\n'};
    return {asio::const_buffer(r->head.data(), r->head_size), r->body,
            asio::const_buffer(crlf, r->crlf ? 2 : 0)};
  }
};

// Which arguments of a command are values, read into pool buffers instead of being copied.
enum class Values { none, third, pairs };  // SET key VALUE ...; MSET key VALUE key VALUE ...

// One command as read. Values are in pool buffers; the other arguments are copied into `bytes`,
// one after another.
struct Command {
  struct Arg {
    std::uint32_t offset = 0;  // into bytes
    std::uint32_t size = 0;
    std::int32_t value = -1;  // index into values, or -1
  };
  std::string bytes;
  std::vector<Arg> args;
  std::vector<Buffer> values;
  bool oom = false;         // a value found no pool memory in time (its bytes were skipped)
  bool unreceived = false;  // a value found no room in its address's quota in time (skipped)

  std::size_t size() const noexcept { return args.size(); }
  std::string_view operator[](std::size_t i) const noexcept {
    const Arg& a = args[i];
    if (a.value >= 0) {
      const Buffer& b = values[static_cast<std::size_t>(a.value)];
      return {reinterpret_cast<const char*>(b.data()), a.size};
    }
    return {bytes.data() + a.offset, a.size};
  }
  Buffer take_value(std::size_t i) noexcept {
    return std::move(values[static_cast<std::size_t>(args[i].value)]);
  }
  // Room for a copied argument of n bytes, to be filled at once.
  std::span<std::byte> add_bytes(std::size_t n) {
    const std::size_t at = bytes.size();
    bytes.resize(at + n);
    args.push_back(Arg{static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(n), -1});
    return {reinterpret_cast<std::byte*>(bytes.data() + at), n};
  }
  void add_value(Buffer b, std::size_t n) {
    args.push_back(Arg{0, static_cast<std::uint32_t>(n), static_cast<std::int32_t>(values.size())});
    values.push_back(std::move(b));
  }
  void clear() noexcept {
    bytes.clear();
    args.clear();
    values.clear();  // back to the pool now
    oom = false;
    unreceived = false;
  }
};

class RespConnection;

// Who may run a command, once the server has tokens: anyone (AUTH, HELLO, QUIT), any token,
// a write or admin token, or the role of the stats (admin unless auth.open_metrics).
enum class Access : std::uint8_t { open, read, write, admin, stats };

struct CommandSpec {
  std::string_view name;  // lower case
  int arity;              // Redis's: n arguments (the name included) exactly, -n at least n
  Values values;
  std::string_view flags;  // for COMMAND, separated by spaces
  int first_key, last_key, step;
  void (RespConnection::*run)(Command&);
  Access access;
};

bool is_value(Values v, std::size_t i) noexcept {
  switch (v) {
    case Values::none:
      return false;
    case Values::third:
      return i == 2;
    case Values::pairs:
      return i >= 2 && i % 2 == 0;
  }
  return false;
}

using Shell = detail::ServedConnection<std::unique_ptr<Reply>, ReplyBuffers>;

class RespConnection : public std::enable_shared_from_this<RespConnection>, private Shell {
 public:
  RespConnection(Server& server, Transport socket, ConnectionInfo* info)
      : Shell(std::move(socket), read_buffer_size,
              detail::PaceLimits{server.config().read_timeout, server.config().header_timeout,
                                 server.config().min_body_rate, server.config().body_grace}),
        server_(server),
        config_(server.config()),
        info_(info),
        role_(config_.tokens.enabled() ? Role::none : Role::admin) {}

  asio::awaitable<void> run();
  void close(bool force);
  static const CommandSpec* find_command(std::string_view name) noexcept;
  static std::span<const CommandSpec> commands() noexcept;

 private:
  enum class Next { run, skip, stop };
  // What took an argument off the buffer without waiting: done, or it needs the slow path.
  enum class Take { done, later, bad_end };

  asio::awaitable<void> read_loop();
  // Whether argument i of `spec` is a value, read into pool memory. Not before AUTH: a client
  // without a role gets no pool memory, and its arguments count against max_arg_bytes.
  bool value_arg(const CommandSpec* spec, std::size_t i) const noexcept {
    return spec && role_ != Role::none && is_value(spec->values, i);
  }
  bool permitted(const CommandSpec& spec);
  bool parse_buffered();
  asio::awaitable<Next> read_command();
  asio::awaitable<Next> read_inline();
  asio::awaitable<bool> fill(std::size_t n, bool first);
  asio::awaitable<std::size_t> fill_line();
  std::size_t find_line_end() noexcept;
  Take take_arg(std::size_t len, bool value);
  asio::awaitable<Take> read_arg(std::size_t len, bool value);
  asio::awaitable<bool> value_buffer(std::size_t len, Buffer& out, std::size_t unreceived,
                                     QuotaUnits* units);
  Next protocol_error(std::string_view what);
  void before_read(bool idle);
  void on_read(std::size_t bytes);
  void execute();

  // The commands (CommandSpec::run).
  void cmd_get(Command& c);
  void cmd_set(Command& c);
  void cmd_del(Command& c);
  void cmd_exists(Command& c);
  void cmd_strlen(Command& c);
  void cmd_getrange(Command& c);
  void cmd_mget(Command& c);
  void cmd_mset(Command& c);
  void cmd_ping(Command& c);
  void cmd_echo(Command& c);
  void cmd_dbsize(Command& c);
  void cmd_info(Command& c);
  void cmd_command(Command& c);
  void cmd_client(Command& c);
  void cmd_config(Command& c);
  void cmd_select(Command& c);
  void cmd_hello(Command& c);
  void cmd_auth(Command& c);
  void cmd_quit(Command& c);
  bool authenticate(std::string_view token);
  std::string info_text(const Command& c) const;
  static void describe(resp::Writer& w, const CommandSpec& s);

  // Replies, queued in command order.
  std::unique_ptr<Reply> new_reply();
  void send(std::unique_ptr<Reply> r) { writes_.push(std::move(r)); }
  void head_reply(char prefix, std::int64_t n);
  void simple(std::string_view s);
  void error(std::string_view s);
  void integer(std::int64_t n) { head_reply(':', n); }
  void array(std::size_t n) { head_reply('*', static_cast<std::int64_t>(n)); }
  void nil() { head_reply('$', -1); }
  void bulk(SharedBuffer value);
  void bulk(std::string_view text);
  void raw(std::string resp_text);

  void flush_now();
  void publish() noexcept;
  void recycle(std::unique_ptr<Reply>&& r);
  struct WriterHooks;

  Server& server_;
  const Config& config_;
  ConnectionInfo* info_;
  // (The socket, reader, write queue and wake_reader_ are the Shell's.)
  std::vector<std::unique_ptr<Reply>> spare_;  // spent replies, reused: no heap call per reply
  // Counts kept here and added to the server's atomics once per batch (publish(), from
  // flush_now()): one atomic add per command each would cost more than the lookup.
  struct Tally {
    std::uint64_t commands = 0, errors = 0, hits = 0, misses = 0;
  } tally_;
  Command cmd_;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> spans_;  // parse_buffered()'s arguments
  const CommandSpec* spec_ = nullptr;  // of cmd_, once its name is read (null: unknown)
  std::vector<std::string> inline_args_;
  std::size_t line_scanned_ = 0;  // bytes already searched for a line end
  std::string name_;              // CLIENT SETNAME
  Role role_;                     // the token's, after AUTH (admin when there are no tokens)
  bool too_long_ = false;         // fill_line() met a line above the limit
  bool quit_ = false;
  bool protocol_error_ = false;  // the connection ends with a protocol error: linger first
};

// ---- Reading ------------------------------------------------------------------------------

// Inside a command the deadline is the read timeout, that of its non-value part, or a value's
// rate (ServedConnection::arm_read).
void RespConnection::before_read(bool idle) {
  flush_now();  // the replies owed go out before we wait for more commands
  arm_read(idle, config_.idle_timeout);
}

void RespConnection::on_read(std::size_t bytes) {
  watchdog_.disarm();
  info_->bytes_in.fetch_add(bytes, std::memory_order_relaxed);
  server_.counters().add(server_.counters().bytes_in, bytes);
  info_->touch();
  info_->busy.store(true, std::memory_order_relaxed);
}

asio::awaitable<bool> RespConnection::fill(std::size_t n, bool first) {
  auto before = [this, first] { before_read(first); };
  auto after = [this](std::size_t bytes) { on_read(bytes); };
  const bool ok = co_await reader_.fill(socket_, n, before, after);
  if (!ok) watchdog_.disarm();
  co_return ok;
}

// The position of the '\n' that ends the line at the front of the buffer, or npos. Searches
// only bytes not searched before, so a line that arrives a byte at a time costs linear time.
std::size_t RespConnection::find_line_end() noexcept {
  const auto* data = reinterpret_cast<const char*>(reader_.data());
  const std::size_t from = std::min(line_scanned_, reader_.size());
  const void* nl = std::memchr(data + from, '\n', reader_.size() - from);
  if (!nl) {
    line_scanned_ = reader_.size();
    return std::string_view::npos;
  }
  line_scanned_ = 0;
  return static_cast<std::size_t>(static_cast<const char*>(nl) - data);
}

// Reads until a whole line is buffered; returns the position of its '\n', or npos when the
// socket ended or the line passed the limit (too_long_). (Written with a reference out-parameter
// and `for (;;)`, GCC 12 built a frame that crashed when resumed: keep this shape.)
asio::awaitable<std::size_t> RespConnection::fill_line() {
  std::size_t at = find_line_end();
  while (at == std::string_view::npos) {
    if (reader_.size() >= reader_.capacity()) {
      too_long_ = true;
      line_scanned_ = 0;
      co_return at;
    }
    const bool more = co_await fill(reader_.size() + 1, false);
    if (!more) co_return at;
    at = find_line_end();
  }
  co_return at;
}

RespConnection::Next RespConnection::protocol_error(std::string_view what) {
  error(fmt::format("ERR Protocol error: {}", what));
  spdlog::debug("resp connection {}: protocol error: {}", info_->id, what);
  protocol_error_ = true;
  return Next::stop;  // Redis too closes the connection after this reply
}

// Takes an argument of `len` bytes and its CRLF off the buffer if they are all there (and, for a
// value, pool memory is free now), without waiting.
RespConnection::Take RespConnection::take_arg(std::size_t len, bool value) {
  if (reader_.size() < len + 2) return Take::later;
  const std::byte* at = reader_.data();
  if (value) {
    Buffer b;
    if (len > 0) {
      b = server_.pool().allocate_if_free(len);
      if (!b) return Take::later;
      std::memcpy(b.data(), at, len);
    }
    cmd_.add_value(std::move(b), len);
  } else {
    std::memcpy(cmd_.add_bytes(len).data(), at, len);
  }
  const bool crlf = at[len] == std::byte{'\r'} && at[len + 1] == std::byte{'\n'};
  reader_.consume(len + 2);
  return crlf ? Take::done : Take::bad_end;
}

// Waits for pool memory for a value, up to alloc_timeout, and first (when `unreceived` of its
// bytes have yet to come) for room in the client address's quota: the units come back in
// `units`. False: none came in time (cmd_ then says why).
asio::awaitable<bool> RespConnection::value_buffer(std::size_t len, Buffer& out,
                                                   std::size_t unreceived, QuotaUnits* units) {
  Quota* quota = units ? info_->unreceived.get() : nullptr;
  if (unreceived == 0 || !quota) {
    out = server_.pool().allocate_if_free(len);
    if (out) co_return true;
  }
  flush_now();  // the replies owed go out while we wait
  BodyReservation r = co_await reader_.across(
      co_reserve_body(server_.pool(), quota, len, unreceived, config_.alloc_timeout));
  if (r.quota_waited) server_.counters().add(server_.counters().unreceived_waits);
  if (r.ec) {
    if (r.quota_refused) {
      cmd_.unreceived = true;
    } else {
      server_.counters().add(server_.counters().alloc_timeouts);
      cmd_.oom = true;
    }
    co_return false;
  }
  out = std::move(r.buffer);
  if (units) *units = std::move(r.units);
  co_return true;
}

// The slow path of an argument: waits for memory, copies what is buffered and reads the rest
// of the bytes straight into their place, then the CRLF. Take::later here means the socket
// ended. A value's bytes arrive at the body's pace and give back their quota units as they come.
asio::awaitable<RespConnection::Take> RespConnection::read_arg(std::size_t len, bool value) {
  QuotaUnits units;
  auto before = [this] { before_read(false); };
  auto after = [this, &units](std::size_t bytes) {
    on_read(bytes);
    pace_.received(bytes);
    units.release(bytes);
  };
  std::span<std::byte> dst;
  if (value) {
    pace_.body();
    Buffer b;
    const std::size_t missing = len - std::min(len, reader_.size());
    if (len > 0 && !co_await value_buffer(len, b, missing, &units)) {
      // No memory or quota in time: drop the value's bytes, answer once the command is read.
      if (!co_await reader_.skip(socket_, len, before, after)) co_return Take::later;
      cmd_.add_value(Buffer{}, 0);
    } else {
      dst = b.span().first(len);
      cmd_.add_value(std::move(b), len);
    }
  } else {
    dst = cmd_.add_bytes(len);
  }
  if (!dst.empty() && !co_await reader_.read_into(socket_, dst, before, after)) {
    watchdog_.disarm();
    co_return Take::later;
  }
  units.reset();
  pace_.idle();  // what follows a value is the command's again (its clock starts anew)
  if (reader_.size() < 2 && !co_await fill(2, false)) co_return Take::later;
  const std::byte* at = reader_.data();
  const bool crlf = at[0] == std::byte{'\r'} && at[1] == std::byte{'\n'};
  reader_.consume(2);
  co_return crlf ? Take::done : Take::bad_end;
}

// The digits of a `*N` or `$N` line that ends at `end` (its '\r'), the common case only: 1 to 18
// digits, no sign, no leading zero. Anything else is left to resp::parse_integer's full rules.
std::optional<std::size_t> fast_length(const char* p, const char* end) noexcept {
  const auto n = end - p;
  if (n < 1 || n > 18 || (*p == '0' && n > 1)) return std::nullopt;
  std::size_t v = 0;
  for (; p < end; ++p) {
    const auto d = static_cast<unsigned>(*p - '0');
    if (d > 9) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

// The usual case, without suspending: a whole `*N` command is in the buffer (a pipelined batch
// arrives in one read) and its values' blocks are free now. False, with nothing consumed and
// cmd_ empty, when any of it is missing, must wait or is malformed: read_command() then takes
// the general way, which reports errors.
bool RespConnection::parse_buffered() {
  const char* const begin = reinterpret_cast<const char*>(reader_.data());
  const char* const end = begin + reader_.size();
  const char* p = begin;
  if (p == end || *p != '*') return false;
  auto line_end = [&p, end]() -> const char* {
    const auto* cr =
        static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(end - p)));
    return cr && cr + 1 < end && cr[1] == '\n' ? cr : nullptr;
  };
  const char* cr = line_end();
  if (!cr) return false;
  const auto count = fast_length(p + 1, cr);
  if (!count || *count == 0 || *count > max_args) return false;
  p = cr + 2;
  spans_.clear();
  const CommandSpec* spec = nullptr;
  std::size_t copied = 0;
  for (std::size_t i = 0; i < *count; ++i) {
    if (p == end || *p != '$') return false;
    cr = line_end();
    if (!cr) return false;
    const auto len = fast_length(p + 1, cr);
    p = cr + 2;
    if (!len || *len + 2 > static_cast<std::size_t>(end - p) || p[*len] != '\r' ||
        p[*len + 1] != '\n')
      return false;
    const bool value = value_arg(spec, i);
    if (value ? *len > config_.max_object_size : (copied += *len) > max_arg_bytes) return false;
    spans_.emplace_back(static_cast<std::uint32_t>(p - begin), static_cast<std::uint32_t>(*len));
    if (i == 0) spec = find_command(std::string_view(p, *len));
    p += *len + 2;
  }
  // All there: take the arguments (values into pool blocks, if free now).
  for (std::size_t i = 0; i < spans_.size(); ++i) {
    const auto [at, len] = spans_[i];
    if (value_arg(spec, i)) {
      Buffer b;
      if (len > 0) {
        b = server_.pool().allocate_if_free(len);
        if (!b) {
          cmd_.clear();  // the blocks taken so far go back; the general way waits
          return false;
        }
        std::memcpy(b.data(), begin + at, len);
      }
      cmd_.add_value(std::move(b), len);
    } else {
      std::memcpy(cmd_.add_bytes(len).data(), begin + at, len);
    }
  }
  spec_ = spec;
  reader_.consume(static_cast<std::size_t>(p - begin));
  return true;
}

// Reads one command: `*N` and N bulk strings, or an inline line. An error has its reply queued.
asio::awaitable<RespConnection::Next> RespConnection::read_command() {
  spec_ = nullptr;
  pace_.idle();
  if (reader_.size() == 0 && !co_await fill(1, true)) co_return Next::stop;
  if (*reader_.data() != std::byte{'*'}) co_return co_await read_inline();
  std::size_t at = find_line_end();
  if (at == std::string_view::npos) at = co_await fill_line();
  if (at == std::string_view::npos)
    co_return too_long_ ? protocol_error("too big mbulk count string") : Next::stop;
  const auto* line = reinterpret_cast<const char*>(reader_.data());
  const auto count = at >= 2 && line[at - 1] == '\r'
                         ? resp::parse_integer(std::string_view(line + 1, at - 2))
                         : std::nullopt;
  if (!count || *count > static_cast<std::int64_t>(max_args))
    co_return protocol_error("invalid multibulk length");
  reader_.consume(at + 1);
  if (*count <= 0) co_return Next::skip;  // "*0" and "*-1" are no command, as in Redis
  const auto n = static_cast<std::size_t>(*count);
  for (std::size_t i = 0; i < n; ++i) {
    if (reader_.size() == 0 && !co_await fill(1, false)) co_return Next::stop;
    const char type = static_cast<char>(*reader_.data());
    if (type != '$') co_return protocol_error(fmt::format("expected '$', got '{}'", type));
    at = find_line_end();
    if (at == std::string_view::npos) at = co_await fill_line();
    if (at == std::string_view::npos)
      co_return too_long_ ? protocol_error("too big bulk count string") : Next::stop;
    line = reinterpret_cast<const char*>(reader_.data());
    const auto len = at >= 2 && line[at - 1] == '\r'
                         ? resp::parse_integer(std::string_view(line + 1, at - 2))
                         : std::nullopt;
    if (!len || *len < 0) co_return protocol_error("invalid bulk length");
    reader_.consume(at + 1);
    const auto size = static_cast<std::size_t>(*len);
    const bool value = value_arg(spec_, i);
    if (value && size > config_.max_object_size)
      co_return protocol_error(
          fmt::format("invalid bulk length: a value of {} bytes is above max_object_size ({})",
                      size, config_.max_object_size));
    if (!value && cmd_.bytes.size() + size > max_arg_bytes)
      co_return protocol_error(
          fmt::format("invalid bulk length: the arguments besides values are limited to {} "
                      "bytes per command",
                      max_arg_bytes));
    Take took = take_arg(size, value);
    if (took == Take::later) {
      took = co_await read_arg(size, value);
      if (took == Take::later) co_return Next::stop;
    }
    if (took == Take::bad_end) co_return protocol_error("expected CRLF after a bulk string");
    if (i == 0) spec_ = find_command(cmd_[0]);
  }
  co_return Next::run;
}

// An inline command: one line of arguments separated by blanks (telnet, `printf | nc`).
asio::awaitable<RespConnection::Next> RespConnection::read_inline() {
  std::size_t at = find_line_end();
  if (at == std::string_view::npos) at = co_await fill_line();
  if (at == std::string_view::npos)
    co_return too_long_ ? protocol_error("too big inline request") : Next::stop;
  std::string_view line(reinterpret_cast<const char*>(reader_.data()), at);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const bool balanced = resp::split_inline(line, inline_args_);
  reader_.consume(at + 1);
  if (!balanced) co_return protocol_error("unbalanced quotes in request");
  if (inline_args_.empty()) co_return Next::skip;
  spec_ = find_command(inline_args_[0]);
  for (std::size_t i = 0; i < inline_args_.size(); ++i) {
    const std::string& a = inline_args_[i];
    if (value_arg(spec_, i)) {
      if (a.size() > config_.max_object_size)  // cannot happen with a 64 KiB line; kept honest
        co_return protocol_error("value above max_object_size");
      Buffer b;
      if (!a.empty() && !co_await value_buffer(a.size(), b, 0, nullptr)) {
        cmd_.add_value(Buffer{}, 0);
        continue;
      }
      if (!a.empty()) std::memcpy(b.data(), a.data(), a.size());
      cmd_.add_value(std::move(b), a.size());
    } else {
      std::memcpy(cmd_.add_bytes(a.size()).data(), a.data(), a.size());
    }
  }
  co_return Next::run;
}

asio::awaitable<void> RespConnection::read_loop() {
  for (;;) {
    if (writes_.unsent() >= max_unsent) flush_now();
    while (writes_.unsent() >= max_unsent && !stop_reading_ && socket_.is_open()) {
      wake_reader_.expires_at(Clock::time_point::max());  // TCP pushes back on the client
      co_await reader_.across(wake_reader_.async_wait(as_tuple(use_awaitable)));
    }
    if (stop_reading_ || !socket_.is_open()) co_return;
    if (parse_buffered()) {
      execute();
      cmd_.clear();
      if (quit_) co_return;
      continue;
    }
    if (reader_.size() == 0) info_->busy.store(false, std::memory_order_relaxed);
    const Next next = co_await read_command();
    if (next == Next::run) execute();
    cmd_.clear();
    if (next == Next::stop || quit_) co_return;
  }
}

// ---- Commands -----------------------------------------------------------------------------

void RespConnection::execute() {
  ++tally_.commands;
  Command& c = cmd_;
  if (role_ == Role::none && (!spec_ || spec_->access != Access::open)) {
    error("NOAUTH Authentication required.");
    return;
  }
  if (spec_ && !permitted(*spec_)) {
    error(fmt::format("NOPERM User {} has no permissions to run the '{}' command", to_string(role_),
                      spec_->name));
    return;
  }
  if (!spec_) {
    std::vector<std::string_view> rest;
    for (std::size_t i = 1; i < c.size(); ++i)
      rest.push_back(c[i]);
    error(resp::unknown_command(c[0], rest));
    return;
  }
  const auto n = static_cast<int>(c.size());
  if (spec_->arity > 0 ? n != spec_->arity : n < -spec_->arity) {
    error(fmt::format("ERR wrong number of arguments for '{}' command", spec_->name));
    return;
  }
  if (c.oom) {
    error(oom_error);
    return;
  }
  if (c.unreceived) {
    error(unreceived_error);
    return;
  }
  (this->*spec_->run)(c);
}

bool RespConnection::permitted(const CommandSpec& spec) {
  switch (spec.access) {
    case Access::open:
      return true;
    case Access::read:
      return config_.tokens.allows(role_, Role::read);
    case Access::write:
      return config_.tokens.allows(role_, Role::write);
    case Access::admin:
      return config_.tokens.allows(role_, Role::admin);
    case Access::stats:
      return config_.tokens.allows(role_, config_.stats_role());
  }
  return false;
}

void RespConnection::cmd_get(Command& c) {
  std::optional<SharedBuffer> v;
  if (valid_resp_key(c[1])) v = server_.store().get(c[1]);
  if (!v) {
    ++tally_.misses;
    nil();
    return;
  }
  ++tally_.hits;
  bulk(std::move(*v));
}

void RespConnection::cmd_set(Command& c) {
  using PutIf = BufferStore::PutIf;
  PutIf when = PutIf::always;
  bool want_old = false;
  for (std::size_t i = 3; i < c.size(); ++i) {
    const std::string_view opt = c[i];
    if (resp::iequals(opt, "nx") && when != PutIf::present) {
      when = PutIf::absent;
    } else if (resp::iequals(opt, "xx") && when != PutIf::absent) {
      when = PutIf::present;
    } else if (resp::iequals(opt, "get")) {
      want_old = true;
    } else if (resp::iequals(opt, "keepttl")) {
      // No key has a time to live, so keeping it is what happens anyway.
    } else if ((resp::iequals(opt, "ex") || resp::iequals(opt, "px") ||
                resp::iequals(opt, "exat") || resp::iequals(opt, "pxat")) &&
               i + 1 < c.size()) {
      error(
          "ERR bufpool does not expire keys (EX, PX, EXAT and PXAT are not supported): a key "
          "lives until it is deleted or replaced");
      return;
    } else {
      error("ERR syntax error");
      return;
    }
  }
  if (!valid_resp_key(c[1])) {
    error("ERR bufpool keys are 1 to 250 bytes");
    return;
  }
  std::optional<SharedBuffer> old;
  const auto result =
      server_.store().put(c[1], SharedBuffer(c.take_value(2)), when, want_old ? &old : nullptr);
  if (result == BufferStore::PutResult::no_room) {
    error("OOM command not allowed: the key arena or max_keys is full");
    return;
  }
  if (want_old) {
    if (old) {
      bulk(std::move(*old));
    } else {
      nil();
    }
    return;
  }
  if (result == BufferStore::PutResult::not_met) {
    nil();
    return;
  }
  simple("OK");
}

void RespConnection::cmd_del(Command& c) {
  std::int64_t n = 0;
  for (std::size_t i = 1; i < c.size(); ++i)
    if (valid_resp_key(c[i]) && server_.store().erase(c[i])) ++n;
  integer(n);
}

void RespConnection::cmd_exists(Command& c) {
  std::int64_t n = 0;  // a key named twice counts twice, as in Redis
  for (std::size_t i = 1; i < c.size(); ++i)
    if (valid_resp_key(c[i]) && server_.store().get(c[i])) ++n;
  integer(n);
}

void RespConnection::cmd_strlen(Command& c) {
  std::optional<SharedBuffer> v;
  if (valid_resp_key(c[1])) v = server_.store().get(c[1]);
  integer(v ? static_cast<std::int64_t>(v->size()) : 0);
}

void RespConnection::cmd_getrange(Command& c) {
  const auto start = resp::parse_integer(c[2]);
  const auto end = resp::parse_integer(c[3]);
  if (!start || !end) {
    error("ERR value is not an integer or out of range");
    return;
  }
  std::optional<SharedBuffer> v;
  if (valid_resp_key(c[1])) v = server_.store().get(c[1]);
  if (!v) {
    bulk(std::string_view{});
    return;
  }
  const auto [offset, length] = resp::range_of(*start, *end, v->size());
  bulk(v->slice(offset, length));  // a view of the same pool block: no copy
}

void RespConnection::cmd_mget(Command& c) {
  array(c.size() - 1);
  for (std::size_t i = 1; i < c.size(); ++i) {
    std::optional<SharedBuffer> v;
    if (valid_resp_key(c[i])) v = server_.store().get(c[i]);
    if (v) {
      bulk(std::move(*v));
    } else {
      nil();
    }
  }
}

void RespConnection::cmd_mset(Command& c) {
  if (c.size() % 2 != 1) {
    error("ERR wrong number of arguments for 'mset' command");
    return;
  }
  for (std::size_t i = 1; i < c.size(); i += 2) {
    if (!valid_resp_key(c[i])) {
      error("ERR bufpool keys are 1 to 250 bytes");
      return;
    }
  }
  for (std::size_t i = 1; i < c.size(); i += 2) {
    if (server_.store().put(c[i], SharedBuffer(c.take_value(i + 1))) ==
        BufferStore::PutResult::no_room) {
      error("OOM command not allowed: the key arena or max_keys is full");
      return;
    }
  }
  simple("OK");
}

void RespConnection::cmd_ping(Command& c) {
  if (c.size() > 2) {
    error("ERR wrong number of arguments for 'ping' command");
  } else if (c.size() == 2) {
    bulk(c[1]);
  } else {
    simple("PONG");
  }
}

void RespConnection::cmd_echo(Command& c) {
  bulk(c[1]);
}

void RespConnection::cmd_dbsize(Command&) {
  integer(static_cast<std::int64_t>(server_.store().size()));
}

std::string RespConnection::info_text(const Command& c) const {
  // INFO's sections, in Redis's order and field names, holding what bufpool has.
  static constexpr std::array<std::string_view, 5> sections = {"server", "clients", "memory",
                                                               "stats", "keyspace"};
  bool want[sections.size()] = {};
  if (c.size() == 1) {
    for (bool& w : want)
      w = true;
  }
  for (std::size_t i = 1; i < c.size(); ++i) {
    for (std::size_t s = 0; s < sections.size(); ++s)
      if (resp::iequals(c[i], sections[s]) || resp::iequals(c[i], "all") ||
          resp::iequals(c[i], "default") || resp::iequals(c[i], "everything"))
        want[s] = true;
  }
  const BuddyPoolStats p = server_.pool().stats();
  const auto& k = server_.counters();
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  const double uptime = static_cast<double>(now_ns() - server_.started_ns()) / 1e9;
  std::string out;
  auto add = [&out](std::string_view text) {
    if (!out.empty()) out += "\r\n";
    out += text;
  };
  if (want[0])
    add(fmt::format(
        "# Server\r\nredis_version:{}\r\nbufpool_version:{}\r\nredis_mode:standalone\r\n"
        "os:Linux\r\narch_bits:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n"
        "uptime_in_days:{}\r\n",
        redis_version, version_string, sizeof(void*) * 8, ::getpid(), server_.resp_port(),
        static_cast<std::uint64_t>(uptime), static_cast<std::uint64_t>(uptime / 86400)));
  if (want[1])
    add(fmt::format("# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\n",
                    server_.connections().size(), config_.max_connections, p.waiters));
  if (want[2])
    add(fmt::format(
        "# Memory\r\nused_memory:{}\r\nused_memory_human:{}\r\nused_memory_peak:{}\r\n"
        "used_memory_peak_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\n"
        "maxmemory_policy:noeviction\r\nbufpool_pool_reserved:{}\r\n",
        p.bytes_in_use, format_size(p.bytes_in_use), p.high_water, format_size(p.high_water),
        config_.max_memory, format_size(config_.max_memory), p.bytes_reserved));
  if (want[3])
    add(fmt::format(
        "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n"
        "total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\n"
        "keyspace_hits:{}\r\nkeyspace_misses:{}\r\ntotal_error_replies:{}\r\n",
        get(k.connections_accepted), get(k.resp_commands), get(k.bytes_in), get(k.bytes_out),
        get(k.connections_rejected), get(k.keyspace_hits), get(k.keyspace_misses),
        get(k.resp_errors)));
  if (want[4]) {
    const std::size_t keys = server_.store().size();
    add(keys == 0 ? std::string("# Keyspace\r\n")
                  : fmt::format("# Keyspace\r\ndb0:keys={},expires=0,avg_ttl=0\r\n", keys));
  }
  return out;
}

void RespConnection::cmd_info(Command& c) {
  publish();  // this connection's own commands count too
  bulk(std::string_view(info_text(c)));
}

void RespConnection::describe(resp::Writer& w, const CommandSpec& s) {
  // Redis 7's ten fields: name, arity, flags, first key, last key, step, ACL categories, tips,
  // key specifications, subcommands.
  w.array(10);
  w.bulk(s.name);
  w.integer(s.arity);
  std::vector<std::string_view> flags;
  for (std::size_t at = 0; at < s.flags.size();) {
    std::size_t end = s.flags.find(' ', at);
    if (end == std::string_view::npos) end = s.flags.size();
    flags.push_back(s.flags.substr(at, end - at));
    at = end + 1;
  }
  w.array(flags.size());
  for (std::string_view f : flags)
    w.simple(f);
  w.integer(s.first_key);
  w.integer(s.last_key);
  w.integer(s.step);
  for (int i = 0; i < 4; ++i)
    w.array(0);
}

void RespConnection::cmd_command(Command& c) {
  resp::Writer w;
  const auto all = commands();
  if (c.size() == 1) {
    w.array(all.size());
    for (const CommandSpec& s : all)
      describe(w, s);
  } else if (resp::iequals(c[1], "count") && c.size() == 2) {
    w.integer(static_cast<std::int64_t>(all.size()));
  } else if (resp::iequals(c[1], "docs")) {
    w.array(0);  // no documentation to give; redis-cli then uses its own help
  } else if (resp::iequals(c[1], "list") && c.size() == 2) {
    w.array(all.size());
    for (const CommandSpec& s : all)
      w.bulk(s.name);
  } else if (resp::iequals(c[1], "info")) {
    w.array(c.size() - 2);
    for (std::size_t i = 2; i < c.size(); ++i) {
      if (const CommandSpec* s = find_command(c[i])) {
        describe(w, *s);
      } else {
        w.nil();
      }
    }
  } else {
    error(resp::one_line(
        fmt::format("ERR unknown subcommand '{}'. Try COMMAND HELP.", c[1].substr(0, 128))));
    return;
  }
  raw(w.take());
}

void RespConnection::cmd_client(Command& c) {
  const std::string_view sub = c[1];
  if (resp::iequals(sub, "setname") && c.size() == 3) {
    for (char ch : c[2]) {
      if (ch < '!' || ch > '~') {
        error("ERR Client names cannot contain spaces, newlines or special characters.");
        return;
      }
    }
    name_ = std::string(c[2]);
    simple("OK");
  } else if (resp::iequals(sub, "getname") && c.size() == 2) {
    if (name_.empty()) {
      nil();
    } else {
      bulk(std::string_view(name_));
    }
  } else if (resp::iequals(sub, "setinfo") && c.size() == 4) {
    if (!resp::iequals(c[2], "lib-name") && !resp::iequals(c[2], "lib-ver")) {
      error(resp::one_line(fmt::format("ERR Unrecognized option '{}'", c[2].substr(0, 128))));
      return;
    }
    simple("OK");
  } else if (resp::iequals(sub, "id") && c.size() == 2) {
    integer(static_cast<std::int64_t>(info_->id));
  } else {
    error(resp::one_line(
        fmt::format("ERR unknown subcommand '{}'. Try CLIENT HELP.", sub.substr(0, 128))));
  }
}

void RespConnection::cmd_config(Command& c) {
  if (!resp::iequals(c[1], "get")) {
    error(resp::one_line(fmt::format(
        "ERR unknown subcommand '{}'. bufpool answers CONFIG GET only; its settings are in its "
        "TOML file.",
        c[1].substr(0, 128))));
    return;
  }
  if (c.size() < 3) {
    error("ERR wrong number of arguments for 'config|get' command");
    return;
  }
  // What a Redis client or tool asks for, answered as Redis would for this server.
  const std::array<std::pair<std::string_view, std::string>, 7> params = {{
      {"maxmemory", std::to_string(config_.max_memory)},
      {"maxmemory-policy", "noeviction"},
      {"maxclients", std::to_string(config_.max_connections)},
      {"databases", "1"},
      {"save", ""},
      {"appendonly", "no"},
      {"proto-max-bulk-len", std::to_string(config_.max_object_size)},
  }};
  std::vector<const std::pair<std::string_view, std::string>*> found;
  for (const auto& p : params) {
    for (std::size_t i = 2; i < c.size(); ++i) {
      const std::string pattern(c[i]);
      const std::string name(p.first);
      if (fnmatch(pattern.c_str(), name.c_str(), FNM_CASEFOLD) == 0) {
        found.push_back(&p);
        break;
      }
    }
  }
  resp::Writer w;
  w.array(found.size() * 2);
  for (const auto* p : found) {
    w.bulk(p->first);
    w.bulk(p->second);
  }
  raw(w.take());
}

void RespConnection::cmd_select(Command& c) {
  const auto db = resp::parse_integer(c[1]);
  if (!db) {
    error("ERR value is not an integer or out of range");
  } else if (*db != 0) {
    error("ERR DB index is out of range");
  } else {
    simple("OK");
  }
}

void RespConnection::cmd_hello(Command& c) {
  std::size_t i = 1;
  if (c.size() > 1) {
    const auto version = resp::parse_integer(c[1]);
    if (!version) {
      error("ERR Protocol version is not an integer or out of range");
      return;
    }
    if (*version != 2) {
      error("NOPROTO unsupported protocol version");  // RESP3 is not spoken
      return;
    }
    i = 2;
  }
  std::string new_name = name_;
  for (; i < c.size(); ++i) {
    if (resp::iequals(c[i], "auth") && i + 2 < c.size()) {
      if (config_.tokens.enabled()) {
        if (!authenticate(c[i + 2])) return;
      } else if (c[i + 1] != "default") {  // no tokens: the default user takes any password
        error("WRONGPASS invalid username-password pair or user is disabled.");
        return;
      }
      i += 2;
    } else if (resp::iequals(c[i], "setname") && i + 1 < c.size()) {
      new_name = std::string(c[++i]);
    } else {
      error(resp::one_line(
          fmt::format("ERR Syntax error in HELLO option '{}'", c[i].substr(0, 128))));
      return;
    }
  }
  if (role_ == Role::none) {
    error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
        "<proto> AUTH <user> <pass> option can be used to authenticate the client and select the "
        "RESP protocol version at the same time");
    return;
  }
  name_ = std::move(new_name);
  resp::Writer w;
  w.array(14);
  w.bulk("server");
  w.bulk("redis");
  w.bulk("version");
  w.bulk(redis_version);
  w.bulk("proto");
  w.integer(2);
  w.bulk("id");
  w.integer(static_cast<std::int64_t>(info_->id));
  w.bulk("mode");
  w.bulk("standalone");
  w.bulk("role");
  w.bulk("master");
  w.bulk("modules");
  w.array(0);
  raw(w.take());
}

// AUTH [username] token. The username is not checked (bufpool has roles, not users): the token
// decides. A token that is not valid leaves the connection as it was, as in Redis.
void RespConnection::cmd_auth(Command& c) {
  if (c.size() > 3) {
    error("ERR syntax error");
    return;
  }
  if (!config_.tokens.enabled()) {
    error(
        "ERR AUTH <password> called without any password configured for the default user. Are "
        "you sure your configuration is correct?");
    return;
  }
  if (!authenticate(c[c.size() - 1])) return;
  simple("OK");
}

bool RespConnection::authenticate(std::string_view token) {
  const Role r = config_.tokens.role_of(token);
  if (r == Role::none) {
    error("WRONGPASS invalid username-password pair or user is disabled.");
    return false;
  }
  role_ = r;
  return true;
}

void RespConnection::cmd_quit(Command&) {
  simple("OK");
  quit_ = true;  // the reader stops; the connection closes once this reply is written
}

// Ordered by how often they come: the lookup is a scan.
std::span<const CommandSpec> RespConnection::commands() noexcept {
  using R = RespConnection;
  static constexpr CommandSpec table[] = {
      {"get", 2, Values::none, "readonly fast", 1, 1, 1, &R::cmd_get, Access::read},
      {"set", -3, Values::third, "write denyoom", 1, 1, 1, &R::cmd_set, Access::write},
      {"mget", -2, Values::none, "readonly fast", 1, -1, 1, &R::cmd_mget, Access::read},
      {"mset", -3, Values::pairs, "write denyoom", 1, -1, 2, &R::cmd_mset, Access::write},
      {"del", -2, Values::none, "write", 1, -1, 1, &R::cmd_del, Access::write},
      {"exists", -2, Values::none, "readonly fast", 1, -1, 1, &R::cmd_exists, Access::read},
      {"strlen", 2, Values::none, "readonly fast", 1, 1, 1, &R::cmd_strlen, Access::read},
      {"getrange", 4, Values::none, "readonly", 1, 1, 1, &R::cmd_getrange, Access::read},
      {"ping", -1, Values::none, "fast", 0, 0, 0, &R::cmd_ping, Access::read},
      {"echo", 2, Values::none, "fast", 0, 0, 0, &R::cmd_echo, Access::read},
      {"dbsize", 1, Values::none, "readonly fast", 0, 0, 0, &R::cmd_dbsize, Access::read},
      {"info", -1, Values::none, "loading stale", 0, 0, 0, &R::cmd_info, Access::stats},
      {"command", -1, Values::none, "loading stale", 0, 0, 0, &R::cmd_command, Access::read},
      {"client", -2, Values::none, "loading stale", 0, 0, 0, &R::cmd_client, Access::read},
      {"config", -2, Values::none, "admin loading stale", 0, 0, 0, &R::cmd_config, Access::admin},
      {"select", 2, Values::none, "loading stale fast", 0, 0, 0, &R::cmd_select, Access::read},
      {"hello", -1, Values::none, "noscript loading stale fast", 0, 0, 0, &R::cmd_hello,
       Access::open},
      {"auth", -2, Values::none, "noscript loading stale fast", 0, 0, 0, &R::cmd_auth,
       Access::open},
      {"quit", -1, Values::none, "loading stale fast", 0, 0, 0, &R::cmd_quit, Access::open},
  };
  return table;
}

const CommandSpec* RespConnection::find_command(std::string_view name) noexcept {
  for (const CommandSpec& s : commands())
    if (resp::iequals(name, s.name)) return &s;
  return nullptr;
}

// ---- Replies ------------------------------------------------------------------------------

std::unique_ptr<Reply> RespConnection::new_reply() {
  if (spare_.empty()) return std::make_unique<Reply>();
  std::unique_ptr<Reply> r = std::move(spare_.back());
  spare_.pop_back();
  return r;
}

void RespConnection::recycle(std::unique_ptr<Reply>&& r) {
  r->value = SharedBuffer{};  // the block goes back (or its count drops) now
  r->head_size = 0;
  r->crlf = false;
  r->body = {};
  if (r->text.capacity() > 64 * 1024) {
    r->text = std::string();  // an INFO or COMMAND reply's room is not kept
  } else {
    r->text.clear();
  }
  spare_.push_back(std::move(r));
}

void RespConnection::head_reply(char prefix, std::int64_t n) {
  auto r = new_reply();
  r->head_size = static_cast<std::uint8_t>(resp::format_head(r->head.data(), prefix, n));
  send(std::move(r));
}

void RespConnection::simple(std::string_view s) {
  auto r = new_reply();
  r->text.reserve(s.size() + 3);
  r->text += '+';
  r->text += s;
  r->text += "\r\n";
  r->body = asio::buffer(r->text);
  send(std::move(r));
}

void RespConnection::error(std::string_view s) {
  ++tally_.errors;
  auto r = new_reply();
  r->text += '-';
  r->text += resp::one_line(s);
  r->text += "\r\n";
  r->body = asio::buffer(r->text);
  send(std::move(r));
}

void RespConnection::bulk(SharedBuffer value) {
  auto r = new_reply();
  r->head_size = static_cast<std::uint8_t>(
      resp::format_head(r->head.data(), '$', static_cast<std::int64_t>(value.size())));
  r->value = std::move(value);
  r->body = asio::const_buffer(r->value.data(), r->value.size());  // from the pool block
  r->crlf = true;
  send(std::move(r));
}

void RespConnection::bulk(std::string_view text) {
  auto r = new_reply();
  r->head_size = static_cast<std::uint8_t>(
      resp::format_head(r->head.data(), '$', static_cast<std::int64_t>(text.size())));
  r->text.assign(text);
  r->body = asio::buffer(r->text);
  r->crlf = true;
  send(std::move(r));
}

void RespConnection::raw(std::string resp_text) {
  auto r = new_reply();
  r->text = std::move(resp_text);
  r->body = asio::buffer(r->text);
  send(std::move(r));
}

// ---- Writing and the connection's life ----------------------------------------------------

void RespConnection::publish() noexcept {
  if (tally_.commands == 0) return;
  auto& k = server_.counters();
  k.add(k.resp_commands, tally_.commands);
  k.add(k.resp_errors, tally_.errors);
  k.add(k.keyspace_hits, tally_.hits);
  k.add(k.keyspace_misses, tally_.misses);
  info_->requests.fetch_add(tally_.commands, std::memory_order_relaxed);
  tally_ = Tally{};
}

void RespConnection::flush_now() {
  publish();
  if (!socket_.is_open()) return;
  auto done = [this](std::unique_ptr<Reply>&& r) { recycle(std::move(r)); };
  if (const std::size_t n = writes_.flush_now(socket_, done)) {
    info_->bytes_out.fetch_add(n, std::memory_order_relaxed);
    server_.counters().add(server_.counters().bytes_out, n);
  }
}

struct RespConnection::WriterHooks {
  RespConnection& c;
  bool stopped() const noexcept { return !c.socket_.is_open(); }
  bool finished() const noexcept { return c.reading_done_; }
  std::size_t progress(const error_code& ec, std::size_t n) {
    return c.watchdog_.progress(c.config_.read_timeout, write_chunk)(ec, n);
  }
  void done(std::unique_ptr<Reply>&& r) { c.recycle(std::move(r)); }
  void after_write(const error_code&, std::size_t n) {
    c.watchdog_.disarm();
    c.info_->bytes_out.fetch_add(n, std::memory_order_relaxed);
    c.server_.counters().add(c.server_.counters().bytes_out, n);
    c.wake_reader_.cancel();  // room for more replies
  }
};

void RespConnection::close(bool force) {
  if (force) {
    close_socket();
    return;
  }
  stop_reading(reader_.size() == 0);  // between commands at once, else after the current one
}

asio::awaitable<void> RespConnection::run() {
  auto self = shared_from_this();
  auto on_expiry = [self] {
    note_deadline(self->server_, "resp", self->info_->id, self->limit_);
    self->close_socket();
  };
  start_helpers(self, on_expiry, WriterHooks{*this});
  co_await read_loop();
  cmd_.clear();
  flush_now();
  co_await finish_writes();  // the replies already owed go out first
  if (protocol_error_ && socket_.is_open())
    co_await detail::linger(socket_, watchdog_, linger_bytes, linger_time);
  close_socket();
}

}  // namespace

void start_resp_session(Server& server, Transport socket) {
  // Redis's words for a full table; the per-address cap has none of its own.
  start_session(
      server, std::move(socket), "resp",
      [&server](Transport s, ConnectionInfo* info) {
        return std::make_shared<RespConnection>(server, std::move(s), info);
      },
      Refusals{"-ERR max number of clients reached\r\n",
               "-ERR max number of clients from this address reached "
               "(limits.max_connections_per_address)\r\n"});
}

}  // namespace bufpool::server
