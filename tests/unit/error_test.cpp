#include "bufpool/error.hpp"

#include <gtest/gtest.h>

namespace bufpool {

TEST(Error, CodesAreInBufpoolsCategory) {
  std::error_code ec = errc::out_of_memory;
  EXPECT_EQ(ec.category().name(), std::string("bufpool"));
  EXPECT_EQ(ec.message(), "memory limit reached");
  EXPECT_TRUE(ec);
}

TEST(Error, MapsToPortableConditions) {
  EXPECT_EQ(std::error_code(errc::cancelled), std::errc::operation_canceled);
  EXPECT_EQ(std::error_code(errc::timed_out), std::errc::timed_out);
  EXPECT_EQ(std::error_code(errc::out_of_memory), std::errc::not_enough_memory);
  EXPECT_EQ(std::error_code(errc::invalid_size), std::errc::invalid_argument);
  EXPECT_NE(std::error_code(errc::closed), std::errc::operation_canceled);
}

TEST(Error, EveryCodeHasAMessage) {
  for (int v = 1; v <= static_cast<int>(errc::too_many_pools); ++v) {
    EXPECT_NE(error_category().message(v), "unknown bufpool error") << v;
  }
}

}  // namespace bufpool
