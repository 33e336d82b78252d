// The HTTP API's routes (docs/protocol.md): which resource a request target names, which
// methods that resource takes, and the query it carries. No I/O: the session asks, tests too.
#pragma once

#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <optional>
#include <string_view>

#include "auth.hpp"
#include "connection_table.hpp"

namespace bufpool::server {

enum class Resource : std::uint8_t { none, buffer, echo, stats, metrics, healthz, connections };

/// Methods as bits, for a resource's set.
enum Method : unsigned {
  method_get = 1,
  method_head = 2,
  method_put = 4,
  method_post = 8,
  method_delete = 16,
};
/// The bit of a method the API knows; 0 for any other.
unsigned method_bit(boost::beast::http::verb verb) noexcept;

struct Route {
  Resource resource = Resource::none;
  std::string_view key;    // Resource::buffer: what follows /v1/buffers/, not yet validated
  std::string_view query;  // what follows '?', without it
  unsigned methods = 0;    // the methods the resource takes
  std::string_view allow;  // its Allow header line, for a 405
  std::string_view usage;  // its methods in words, for a 405's message
  bool takes(boost::beast::http::verb verb) const noexcept {
    return (methods & method_bit(verb)) != 0;
  }
};

/// The route of a request target ("/v1/buffers/k?x=1"). Resource::none: no such resource.
Route route(std::string_view target) noexcept;

/// The role a request for `resource` by `verb` needs, when tokens are in use: none for
/// /healthz, read to read a buffer, write to change one (and for /v1/echo, which takes pool
/// memory), admin for /v1/connections, and `stats_role` for /v1/stats and /metrics.
Role required_role(Resource resource, boost::beast::http::verb verb, Role stats_role) noexcept;

/// The token of an "Authorization: Bearer TOKEN" header value (the scheme in any case), or "".
std::string_view bearer_token(std::string_view authorization) noexcept;

/// /v1/connections' query: "" or "sort=idle|bytes|age"; nullopt for anything else.
std::optional<ConnectionTable::Order> connections_order(std::string_view query) noexcept;

}  // namespace bufpool::server
