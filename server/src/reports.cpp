// /v1/stats, /metrics and /v1/connections.
#include <fmt/format.h>

#include <iterator>
#include <string>

#include <bufpool/app/json.hpp>
#include "server.hpp"

namespace bufpool::server {

namespace {
std::uint64_t get(const std::atomic<std::uint64_t>& a) {
  return a.load(std::memory_order_relaxed);
}
}  // namespace

std::string Server::stats_json() {
  const BuddyPoolStats p = pool_.stats();
  const BufferStore::Stats s = store_.stats();
  auto& c = counters_;
  std::string free_blocks;
  for (std::size_t i = 0; i < p.free_blocks.size(); ++i)
    free_blocks += fmt::format("{}{}", i ? ", " : "", p.free_blocks[i]);
  return fmt::format(
      "{{\n"
      "  \"version\": \"{}\",\n"
      "  \"uptime_s\": {:.3f},\n"
      "  \"draining\": {},\n"
      "  \"pool\": {{\"max_memory\": {}, \"chunk_size\": {}, \"min_block\": {}, \"chunks_held\": "
      "{},"
      " \"bytes_reserved\": {}, \"bytes_in_use\": {}, \"bytes_requested\": {}, \"high_water\": {},"
      " \"waiters\": {}, \"allocations\": {}, \"waits\": {}, \"timeouts\": {}, \"cancellations\": "
      "{},"
      " \"failures\": {}, \"free_blocks\": [{}]}},\n"
      "  \"store\": {{\"keys\": {}, \"value_bytes\": {}, \"key_bytes\": {}, \"key_arena_free\": {},"
      " \"key_arena_largest_free\": {}, \"key_arena_free_regions\": {}}},\n"
      "  \"connections\": {{\"open\": {}, \"accepted\": {}, \"rejected\": {},"
      " \"refused_per_address\": {}, \"evicted\": {}, \"evicted_stalled\": {}}},\n"
      "  \"http\": {{\"requests\": {}, \"1xx\": {}, \"2xx\": {}, \"3xx\": {}, \"4xx\": {}, "
      "\"5xx\": {}}},\n"
      "  \"rpc\": {{\"requests\": {}}},\n"
      "  \"resp\": {{\"commands\": {}, \"errors\": {}, \"keyspace_hits\": {},"
      " \"keyspace_misses\": {}}},\n"
      "  \"bytes_in\": {}, \"bytes_out\": {}, \"alloc_timeouts\": {}, \"read_timeouts\": {},"
      " \"incomplete_bodies\": {}, \"header_timeouts\": {}, \"slow_bodies\": {},"
      " \"unreceived_waits\": {}, \"tls_handshakes\": {}, \"tls_handshake_failures\": {}\n"
      "}}\n",
      version_string, static_cast<double>(now_ns() - started_ns_) / 1e9, draining(),
      config_.max_memory, config_.chunk_size, config_.min_block, p.chunks_held, p.bytes_reserved,
      p.bytes_in_use, p.bytes_requested, p.high_water, p.waiters, p.allocations, p.waits,
      p.timeouts, p.cancellations, p.failures, free_blocks, s.keys, s.value_bytes, s.key_bytes,
      s.key_arena_free, s.key_arena_largest_free, s.key_arena_free_regions, connections_.size(),
      get(c.connections_accepted), get(c.connections_rejected),
      get(c.connections_refused_per_address), connections_.evictions(),
      connections_.stalled_evictions(), get(c.http_requests), get(c.http_by_class[1]),
      get(c.http_by_class[2]), get(c.http_by_class[3]), get(c.http_by_class[4]),
      get(c.http_by_class[5]), get(c.rpc_requests), get(c.resp_commands), get(c.resp_errors),
      get(c.keyspace_hits), get(c.keyspace_misses), get(c.bytes_in), get(c.bytes_out),
      get(c.alloc_timeouts), get(c.read_timeouts), get(c.incomplete_bodies), get(c.header_timeouts),
      get(c.slow_bodies), get(c.unreceived_waits), get(c.tls_handshakes),
      get(c.tls_handshake_failures));
}

std::string Server::metrics_text() {
  const BuddyPoolStats p = pool_.stats();
  const BufferStore::Stats s = store_.stats();
  auto& c = counters_;
  std::string out;
  auto metric = [&out](std::string_view name, std::string_view type, std::string_view help,
                       auto value) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name,
                   type, name, value);
  };
  metric("bufpool_pool_max_memory_bytes", "gauge", "Pool memory limit.", config_.max_memory);
  metric("bufpool_pool_reserved_bytes", "gauge", "Pool memory taken from the system.",
         p.bytes_reserved);
  metric("bufpool_pool_in_use_bytes", "gauge", "Pool block bytes handed out.", p.bytes_in_use);
  metric("bufpool_pool_requested_bytes", "gauge", "Bytes asked for by live buffers.",
         p.bytes_requested);
  metric("bufpool_pool_high_water_bytes", "gauge", "Largest in-use bytes seen.", p.high_water);
  metric("bufpool_pool_waiters", "gauge", "Requests waiting for pool memory.", p.waiters);
  metric("bufpool_pool_allocations_total", "counter", "Pool allocations.", p.allocations);
  metric("bufpool_pool_waits_total", "counter", "Pool allocations that had to wait.", p.waits);
  metric("bufpool_pool_timeouts_total", "counter", "Pool waits that timed out.", p.timeouts);
  metric("bufpool_store_keys", "gauge", "Keys stored.", s.keys);
  metric("bufpool_store_value_bytes", "gauge", "Bytes of stored values.", s.value_bytes);
  metric("bufpool_store_key_arena_free_bytes", "gauge", "Free bytes in the key arena.",
         s.key_arena_free);
  metric("bufpool_connections", "gauge", "Open connections.", connections_.size());
  metric("bufpool_connections_accepted_total", "counter", "Connections accepted.",
         get(c.connections_accepted));
  metric("bufpool_connections_rejected_total", "counter", "Connections refused (table full).",
         get(c.connections_rejected));
  metric("bufpool_connections_refused_per_address_total", "counter",
         "Connections refused (max_connections_per_address).",
         get(c.connections_refused_per_address));
  metric("bufpool_connections_evicted_total", "counter",
         "Idle or stalled connections closed to make room for new ones.", connections_.evictions());
  metric("bufpool_connections_evicted_stalled_total", "counter",
         "Connections closed inside a stalled request to make room for new ones.",
         connections_.stalled_evictions());
  fmt::format_to(std::back_inserter(out),
                 "# HELP bufpool_http_requests_total HTTP requests by status class.\n"
                 "# TYPE bufpool_http_requests_total counter\n");
  for (int k = 1; k <= 5; ++k)
    fmt::format_to(std::back_inserter(out), "bufpool_http_requests_total{{code=\"{}xx\"}} {}\n", k,
                   get(c.http_by_class[static_cast<std::size_t>(k)]));
  metric("bufpool_rpc_requests_total", "counter", "RPC requests.", get(c.rpc_requests));
  metric("bufpool_resp_commands_total", "counter", "RESP commands.", get(c.resp_commands));
  metric("bufpool_resp_errors_total", "counter", "RESP commands answered with an error.",
         get(c.resp_errors));
  metric("bufpool_received_bytes_total", "counter", "Bytes read from clients.", get(c.bytes_in));
  metric("bufpool_sent_bytes_total", "counter", "Bytes written to clients.", get(c.bytes_out));
  metric("bufpool_alloc_timeouts_total", "counter", "Requests refused after alloc_timeout.",
         get(c.alloc_timeouts));
  metric("bufpool_read_timeouts_total", "counter", "Connections cut off by read_timeout.",
         get(c.read_timeouts));
  metric("bufpool_incomplete_bodies_total", "counter", "Bodies that stopped short.",
         get(c.incomplete_bodies));
  metric("bufpool_header_timeouts_total", "counter",
         "Requests whose header was not whole within header_timeout.", get(c.header_timeouts));
  metric("bufpool_slow_bodies_total", "counter", "Bodies cut off below min_body_rate.",
         get(c.slow_bodies));
  metric("bufpool_tls_handshakes_total", "counter", "TLS handshakes completed.",
         get(c.tls_handshakes));
  metric("bufpool_tls_handshake_failures_total", "counter",
         "TLS handshakes that failed or did not finish within header_timeout.",
         get(c.tls_handshake_failures));
  metric("bufpool_unreceived_waits_total", "counter",
         "Bodies that waited for their address's max_unreceived_per_address.",
         get(c.unreceived_waits));
  return out;
}

std::string Server::connections_json(ConnectionTable::Order order) {
  std::string out = "[";
  bool first = true;
  for (const ConnectionRow& r : connections_.list(order)) {
    fmt::format_to(std::back_inserter(out),
                   "{}\n  {{\"id\": {}, \"peer\": \"{}\", \"protocol\": \"{}\", \"age_s\": {:.3f},"
                   " \"idle_s\": {:.3f}, \"bytes_in\": {}, \"bytes_out\": {}, \"requests\": {},"
                   " \"busy\": {}}}",
                   first ? "" : ",", r.id, json_escape(r.peer), r.protocol, r.age_s, r.idle_s,
                   r.bytes_in, r.bytes_out, r.requests, r.busy);
    first = false;
  }
  out += first ? "]\n" : "\n]\n";
  return out;
}

}  // namespace bufpool::server
