// The RESP parser: its pieces that need no socket (integers, inline commands), then the bytes as
// a client's whole connection through the server's real RESP connection (the buffered fast path
// and the slow path, values into pool blocks, every command).
#include <string>
#include <string_view>
#include <vector>

#include "loopback_server.hpp"
#include "resp_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string_view line = text.substr(0, std::min<std::size_t>(text.find('\n'), 4096));
  (void)bufpool::server::resp::parse_integer(line);
  std::vector<std::string> args;
  (void)bufpool::server::resp::split_inline(line, args);
  bufpool::fuzz::exchange(bufpool::fuzz::Protocol::resp, data, size);
  return 0;
}
