#include "http_routes.hpp"

#include <cctype>

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

Role required_role(Resource resource, boost::beast::http::verb method, Role stats_role) noexcept {
  using boost::beast::http::verb;
  switch (resource) {
    case Resource::healthz:
    case Resource::none:  // a 404 says nothing worth a token
      return Role::none;
    case Resource::buffer:
      return method == verb::get || method == verb::head ? Role::read : Role::write;
    case Resource::echo:
      return Role::write;
    case Resource::stats:
    case Resource::metrics:
      return stats_role;
    case Resource::connections:
      return Role::admin;
  }
  return Role::admin;
}

std::string_view bearer_token(std::string_view authorization) noexcept {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() <= scheme.size()) return {};
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i]) return {};
  std::string_view token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ')
    token.remove_suffix(1);
  return token;
}

}  // namespace bufpool::server
