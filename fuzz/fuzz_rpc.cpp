// The RPC frame decoder, alone and as the server reads frames: bytes as a client's whole
// connection, through the server's real RPC connection.
#include <cstring>

#include "bufpool/rpc/frame.hpp"
#include "loopback_server.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size >= bufpool::rpc::header_size) {
    bufpool::rpc::FrameHeader h;
    if (bufpool::rpc::decode(reinterpret_cast<const std::byte*>(data), h) ==
        bufpool::rpc::DecodeError::none) {
      // What decodes encodes to the same bytes.
      const auto again = bufpool::rpc::encode(h);
      if (std::memcmp(again.data(), data, bufpool::rpc::header_size) != 0) __builtin_trap();
    }
  }
  bufpool::fuzz::exchange(bufpool::fuzz::Protocol::rpc, data, size);
  return 0;
}
