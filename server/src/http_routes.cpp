#include "http_routes.hpp"

#include <array>

namespace bufpool::server {

namespace http = boost::beast::http;

namespace {

struct Entry {
  std::string_view path;
  bool prefix;  // the path is a prefix, and what follows it is the key
  Resource resource;
  unsigned methods;
  std::string_view allow;
  std::string_view usage;
};

constexpr unsigned read_only = method_get | method_head;
constexpr std::array<Entry, 6> table{{
    {"/v1/buffers/", true, Resource::buffer, read_only | method_put | method_delete,
     "Allow: GET, HEAD, PUT, DELETE\r\n", "use GET, HEAD, PUT or DELETE"},
    {"/v1/echo", false, Resource::echo, method_post, "Allow: POST\r\n", "use POST"},
    {"/v1/stats", false, Resource::stats, read_only, "Allow: GET, HEAD\r\n", "use GET"},
    {"/metrics", false, Resource::metrics, read_only, "Allow: GET, HEAD\r\n", "use GET"},
    {"/healthz", false, Resource::healthz, read_only, "Allow: GET, HEAD\r\n", "use GET"},
    {"/v1/connections", false, Resource::connections, read_only, "Allow: GET, HEAD\r\n", "use GET"},
}};

}  // namespace

unsigned method_bit(http::verb verb) noexcept {
  switch (verb) {
    case http::verb::get:
      return method_get;
    case http::verb::head:
      return method_head;
    case http::verb::put:
      return method_put;
    case http::verb::post:
      return method_post;
    case http::verb::delete_:
      return method_delete;
    default:
      return 0;
  }
}

Route route(std::string_view target) noexcept {
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  Route r;
  if (q != std::string_view::npos) r.query = target.substr(q + 1);
  for (const Entry& e : table) {
    if (e.prefix ? !path.starts_with(e.path) : path != e.path) continue;
    r.resource = e.resource;
    r.methods = e.methods;
    r.allow = e.allow;
    r.usage = e.usage;
    if (e.prefix) r.key = path.substr(e.path.size());
    return r;
  }
  return r;
}

std::optional<ConnectionTable::Order> connections_order(std::string_view query) noexcept {
  if (query.empty() || query == "sort=idle") return ConnectionTable::Order::idle;
  if (query == "sort=bytes") return ConnectionTable::Order::bytes;
  if (query == "sort=age") return ConnectionTable::Order::age;
  return std::nullopt;
}

}  // namespace bufpool::server
