// client/bench/protocols.hpp: where HTTP/1.1 and RESP replies start and end, and what they mean.
#include "protocols.hpp"

#include <gtest/gtest.h>

namespace bufpool::bench {
namespace {

TEST(HttpReply, OkWithBody) {
  const auto r = parse_http_reply("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", Op::get);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->head, 38u);
  EXPECT_EQ(r->body, 5u);
  EXPECT_EQ(r->kind, Outcome::Kind::ok);
  EXPECT_FALSE(r->close);
}

TEST(HttpReply, IncompleteHeadWaitsForMore) {
  EXPECT_FALSE(parse_http_reply("HTTP/1.1 200 OK\r\nContent-Len", Op::get));
  EXPECT_FALSE(parse_http_reply("", Op::get));
}

TEST(HttpReply, StatusesMeanMissOrError) {
  auto r = parse_http_reply("HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\n", Op::get);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Outcome::Kind::miss);
  EXPECT_EQ(r->body, 3u);
  r = parse_http_reply("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", Op::put);
  EXPECT_EQ(r->kind, Outcome::Kind::error);
  r = parse_http_reply(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 10\r\nConnection: close\r\n\r\n",
      Op::put);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Outcome::Kind::error);
  EXPECT_EQ(r->error, "http_503");
  EXPECT_TRUE(r->close);
  r = parse_http_reply("HTTP/1.1 204 No Content\r\n\r\n", Op::put);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Outcome::Kind::ok);
  EXPECT_EQ(r->body, 0u);
}

TEST(HttpReply, Http10ClosesUnlessKeepAlive) {
  auto r = parse_http_reply("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", Op::get);
  EXPECT_TRUE(r->close);
  r = parse_http_reply("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
                       Op::get);
  EXPECT_FALSE(r->close);
}

TEST(HttpReply, MalformedRepliesThrow) {
  EXPECT_THROW(parse_http_reply("SSH-2.0-OpenSSH\r\n\r\n", Op::get), ProtocolError);
  EXPECT_THROW(parse_http_reply("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Op::get),
               ProtocolError);
  EXPECT_THROW(parse_http_reply("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", Op::get),
               ProtocolError);
  EXPECT_THROW(parse_http_reply("HTTP/1.1 200 OK\r\n\r\n", Op::get), ProtocolError) << "no length";
  EXPECT_THROW(parse_http_reply("HTTP/1.1 200 OK\r\nbroken header\r\n\r\n", Op::get),
               ProtocolError);
}

TEST(RespReply, Kinds) {
  auto r = parse_resp_reply("+OK\r\n", Op::put);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->head, 5u);
  EXPECT_EQ(r->kind, Outcome::Kind::ok);
  r = parse_resp_reply("$5\r\nhello\r\n", Op::get);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->head, 4u);
  EXPECT_EQ(r->body, 5u);
  EXPECT_EQ(r->trailer, 2u);
  r = parse_resp_reply("$-1\r\n", Op::get);
  EXPECT_EQ(r->kind, Outcome::Kind::miss);
  r = parse_resp_reply("-OOM command not allowed when used memory > 'maxmemory'.\r\n", Op::put);
  EXPECT_EQ(r->kind, Outcome::Kind::error);
  EXPECT_EQ(r->error, "redis_OOM");
  EXPECT_FALSE(parse_resp_reply("$12", Op::get));
  EXPECT_THROW(parse_resp_reply("HTTP/1.1 200 OK\r\n", Op::get), ProtocolError);
  EXPECT_THROW(parse_resp_reply("$abc\r\n", Op::get), ProtocolError);
}

}  // namespace
}  // namespace bufpool::bench
