// The HTTP API's route table, with no server process: what each target names, the methods
// each resource takes, and the query of /v1/connections.
#include "http_routes.hpp"

#include <gtest/gtest.h>

namespace bufpool::server {
namespace {

namespace http = boost::beast::http;

TEST(HttpRoutes, EveryResourceByItsPath) {
  EXPECT_EQ(route("/v1/buffers/k").resource, Resource::buffer);
  EXPECT_EQ(route("/v1/echo").resource, Resource::echo);
  EXPECT_EQ(route("/v1/stats").resource, Resource::stats);
  EXPECT_EQ(route("/metrics").resource, Resource::metrics);
  EXPECT_EQ(route("/healthz").resource, Resource::healthz);
  EXPECT_EQ(route("/v1/connections").resource, Resource::connections);
}

TEST(HttpRoutes, ExactPathsAreExact) {
  for (const char* target :
       {"/", "", "/v1", "/v1/", "/v1/echo/", "/v1/echox", "/healthz/x", "/metric", "/v1/buffers",
        "/V1/stats", "v1/stats", "/v1/connections/1"})
    EXPECT_EQ(route(target).resource, Resource::none) << target;
}

TEST(HttpRoutes, TheBufferKeyIsWhatFollowsThePrefixUnchecked) {
  EXPECT_EQ(route("/v1/buffers/abc.1").key, "abc.1");
  EXPECT_EQ(route("/v1/buffers/a/b").key, "a/b");  // the session refuses it as a key
  const Route empty = route("/v1/buffers/");
  EXPECT_EQ(empty.resource, Resource::buffer);
  EXPECT_EQ(empty.key, "");
  EXPECT_EQ(route("/v1/buffers/k?x=1").key, "k");
}

TEST(HttpRoutes, TheQueryIsSplitOff) {
  const Route r = route("/v1/connections?sort=bytes");
  EXPECT_EQ(r.resource, Resource::connections);
  EXPECT_EQ(r.query, "sort=bytes");
  EXPECT_EQ(route("/healthz?").query, "");
  EXPECT_EQ(route("/healthz?").resource, Resource::healthz);
  EXPECT_EQ(route("/nothing?x").resource, Resource::none);
}

TEST(HttpRoutes, MethodsPerResourceAndTheirAllowHeader) {
  const Route buffer = route("/v1/buffers/k");
  for (auto v : {http::verb::get, http::verb::head, http::verb::put, http::verb::delete_})
    EXPECT_TRUE(buffer.takes(v)) << http::to_string(v);
  for (auto v : {http::verb::post, http::verb::patch, http::verb::options, http::verb::unknown})
    EXPECT_FALSE(buffer.takes(v)) << http::to_string(v);
  EXPECT_EQ(buffer.allow, "Allow: GET, HEAD, PUT, DELETE\r\n");

  const Route echo = route("/v1/echo");
  EXPECT_TRUE(echo.takes(http::verb::post));
  EXPECT_FALSE(echo.takes(http::verb::get));
  EXPECT_EQ(echo.allow, "Allow: POST\r\n");
  EXPECT_EQ(echo.usage, "use POST");

  for (const char* t : {"/v1/stats", "/metrics", "/healthz", "/v1/connections"}) {
    const Route r = route(t);
    EXPECT_TRUE(r.takes(http::verb::get)) << t;
    EXPECT_TRUE(r.takes(http::verb::head)) << t;
    EXPECT_FALSE(r.takes(http::verb::put)) << t;
    EXPECT_FALSE(r.takes(http::verb::delete_)) << t;
    EXPECT_EQ(r.allow, "Allow: GET, HEAD\r\n") << t;
  }
  EXPECT_FALSE(route("/nothing").takes(http::verb::get));
}

TEST(HttpRoutes, ConnectionsOrder) {
  EXPECT_EQ(connections_order(""), ConnectionTable::Order::idle);
  EXPECT_EQ(connections_order("sort=idle"), ConnectionTable::Order::idle);
  EXPECT_EQ(connections_order("sort=bytes"), ConnectionTable::Order::bytes);
  EXPECT_EQ(connections_order("sort=age"), ConnectionTable::Order::age);
  for (const char* q : {"sort=", "sort=size", "sort=idle&x=1", "order=age", "x"})
    EXPECT_FALSE(connections_order(q).has_value()) << q;
}

}  // namespace
}  // namespace bufpool::server
