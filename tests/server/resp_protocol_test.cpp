// The socket-free parts of the RESP front end (server/src/resp_protocol.hpp), against Redis's
// own rules for numbers, inline commands, GETRANGE and error text.
#include "resp_protocol.hpp"

#include <gtest/gtest.h>

#include <limits>

using namespace bufpool::server::resp;

TEST(RespProtocol, IntegersAsRedisReadsThem) {
  EXPECT_EQ(parse_integer("0"), 0);
  EXPECT_EQ(parse_integer("4096"), 4096);
  EXPECT_EQ(parse_integer("-1"), -1);
  EXPECT_EQ(parse_integer("9223372036854775807"), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(parse_integer("-9223372036854775808"), std::numeric_limits<std::int64_t>::min());
  for (const char* bad : {"", "-", "+1", "01", "-0", " 1", "1 ", "1x", "9223372036854775808",
                          "-9223372036854775809", "99999999999999999999", "0x10"})
    EXPECT_FALSE(parse_integer(bad)) << bad;
}

TEST(RespProtocol, InlineCommandsSplitAsRedisSplitsThem) {
  std::vector<std::string> args;
  ASSERT_TRUE(split_inline("  SET  key   value ", args));
  EXPECT_EQ(args, (std::vector<std::string>{"SET", "key", "value"}));
  ASSERT_TRUE(split_inline(R"(SET k "a b\n\x41\"" 'it\'s' "")", args));
  EXPECT_EQ(args, (std::vector<std::string>{"SET", "k", "a b\nA\"", "it's", ""}));
  ASSERT_TRUE(split_inline("", args));
  EXPECT_TRUE(args.empty());
  ASSERT_TRUE(split_inline("a\"b c\"", args));  // a quote inside a word starts quoting
  EXPECT_EQ(args, (std::vector<std::string>{"ab c"}));
  for (const char* bad : {"SET \"open", "SET 'open", "\"closed\"x", "'closed'x"})
    EXPECT_FALSE(split_inline(bad, args)) << bad;
}

TEST(RespProtocol, GetrangeBoundsAsRedisComputesThem) {
  using R = std::pair<std::size_t, std::size_t>;
  EXPECT_EQ(range_of(0, 3, 10), R(0, 4));
  EXPECT_EQ(range_of(-3, -1, 10), R(7, 3));
  EXPECT_EQ(range_of(0, -1, 10), R(0, 10));
  EXPECT_EQ(range_of(5, 100, 10), R(5, 5));
  EXPECT_EQ(range_of(-100, 2, 10), R(0, 3));
  EXPECT_EQ(range_of(6, 2, 10).second, 0u);
  EXPECT_EQ(range_of(-1, -5, 10).second, 0u);
  EXPECT_EQ(range_of(0, 0, 0).second, 0u);
  EXPECT_EQ(range_of(20, 30, 10).second, 0u);
}

TEST(RespProtocol, UnknownCommandInRedisWords) {
  const std::vector<std::string_view> args = {"a", "b c"};
  EXPECT_EQ(unknown_command("FOO", args),
            "ERR unknown command 'FOO', with args beginning with: 'a' 'b c' ");
  const std::string long_arg(300, 'x');
  const std::vector<std::string_view> many = {long_arg, "next"};
  const std::string text = unknown_command("X\r\nY", many);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(text.find("next"), std::string::npos);  // the list stops at 128 bytes
  EXPECT_NE(text.find(std::string(128, 'x') + "'"), std::string::npos);
}

TEST(RespProtocol, WriterEncodesEachKind) {
  Writer w;
  w.array(5);
  w.simple("OK");
  w.error("ERR bad\nthing");
  w.integer(-42);
  w.bulk(std::string_view("a\0b", 3));
  w.nil();
  EXPECT_EQ(w.text(),
            std::string("*5\r\n+OK\r\n-ERR bad thing\r\n:-42\r\n$3\r\na\0b\r\n$-1\r\n", 45));
  char head[24];
  EXPECT_EQ(std::string(head, format_head(head, '$', 4096)), "$4096\r\n");
  EXPECT_EQ(std::string(head, format_head(head, ':', std::numeric_limits<std::int64_t>::min())),
            ":-9223372036854775808\r\n");
}
