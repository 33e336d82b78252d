// bufpool/app/units.hpp: sizes and durations as written in configuration files and on command
// lines.
#include "bufpool/app/units.hpp"

#include <gtest/gtest.h>

namespace bufpool {
namespace {

TEST(Units, ParsesSizesAndDurations) {
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("64MiB"), 64u << 20);
  EXPECT_EQ(parse_size(" 1 GiB "), 1u << 30);
  EXPECT_EQ(parse_size("10MB"), 10'000'000u);
  EXPECT_EQ(parse_size("8k"), 8192u);
  EXPECT_FALSE(parse_size("MiB"));
  EXPECT_FALSE(parse_size("-1"));
  EXPECT_FALSE(parse_size("1.5GiB"));
  EXPECT_FALSE(parse_size("99999999999999999999"));
  EXPECT_FALSE(parse_size("20000000000TiB")) << "overflow";
  EXPECT_EQ(parse_duration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(parse_duration("5s"), std::chrono::milliseconds(5000));
  EXPECT_EQ(parse_duration("2m"), std::chrono::minutes(2));
  EXPECT_EQ(parse_duration("1h"), std::chrono::hours(1));
  EXPECT_EQ(parse_duration("1500us"), std::chrono::milliseconds(2)) << "rounds up";
  EXPECT_FALSE(parse_duration("5")) << "a duration needs its unit";
  EXPECT_FALSE(parse_duration("5 days"));
}

TEST(Units, CountsAndTrimming) {
  EXPECT_EQ(parse_count("16"), 16u);
  EXPECT_EQ(parse_count("18446744073709551615"), ~std::uint64_t{0});
  for (const char* bad : {"", " 16", "16 ", "+1", "-1", "1.5", "0x10", "18446744073709551616"})
    EXPECT_FALSE(parse_count(bad)) << bad;
  EXPECT_EQ(trim("  a b \t\r\n"), "a b");
  EXPECT_EQ(trim(" \t "), "");
}

TEST(Units, FormatsWithTheLargestExactUnit) {
  EXPECT_EQ(format_size(65536), "64KiB");
  EXPECT_EQ(format_size(1u << 30), "1GiB");
  EXPECT_EQ(format_size(1000), "1000B");
  EXPECT_EQ(format_size(0), "0B");
  EXPECT_EQ(format_duration(std::chrono::minutes(2)), "2m");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(1500)), "1500ms");
  for (std::size_t v : {4096ul, 3ul << 20, 12345ul})
    EXPECT_EQ(parse_size(format_size(v)), v);
}

}  // namespace
}  // namespace bufpool
