#include "bufpool/rpc/frame.hpp"

#include <gtest/gtest.h>

#include <string>

namespace bufpool::rpc {
namespace {

TEST(RpcFrame, EncodeDecodeAndRejects) {
  FrameHeader h;
  h.opcode = 3;
  h.flags = flags::response | flags::created;
  h.status = Status::not_found;
  h.request_id = 0x0102030405060708;
  h.key_length = 250;
  h.payload_length = std::uint64_t{5} << 32;
  auto b = encode(h);
  EXPECT_EQ(b[0], std::byte{'B'});
  EXPECT_EQ(b[3], std::byte{'1'});
  EXPECT_EQ(b[8], std::byte{0x08}) << "little-endian";
  FrameHeader d;
  ASSERT_EQ(decode(b.data(), d), DecodeError::none);
  EXPECT_EQ(d.request_id, h.request_id);
  EXPECT_EQ(d.payload_length, h.payload_length);
  EXPECT_EQ(d.status, Status::not_found);
  auto bad = b;
  bad[4] = std::byte{2};
  EXPECT_EQ(decode(bad.data(), d), DecodeError::bad_version);
  bad = b;
  bad[6] = std::byte{0x80};
  EXPECT_EQ(decode(bad.data(), d), DecodeError::bad_flags);
  bad = b;
  bad[21] = std::byte{1};
  EXPECT_EQ(decode(bad.data(), d), DecodeError::bad_reserved);
  bad = b;
  bad[0] = std::byte{0};
  EXPECT_EQ(decode(bad.data(), d), DecodeError::bad_magic);
  EXPECT_TRUE(valid_key("a.b_c~d-E9"));
  EXPECT_FALSE(valid_key(""));
  EXPECT_FALSE(valid_key(std::string(251, 'a')));
  EXPECT_FALSE(valid_key("a/b"));
}

// The status category lives with the frame (the rpc library), not in the client: a server-side
// service can report statuses as error codes too.
TEST(RpcFrame, StatusesAreErrorCodesOfTheirOwnCategory) {
  const std::error_code ec = make_error_code(Status::not_found);
  EXPECT_STREQ(ec.category().name(), "bufpool.rpc");
  EXPECT_EQ(ec.message(), "NOT_FOUND");
  EXPECT_EQ(ec.value(), 1);
  EXPECT_EQ(&make_error_code(Status::unavailable).category(), &status_category());
}

}  // namespace
}  // namespace bufpool::rpc
