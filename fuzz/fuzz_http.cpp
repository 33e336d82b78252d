// The HTTP request path: bytes as a client's whole connection, through the server's real session
// (Beast's parser, the request-line and Host checks, routing, auth, bodies, chunked bodies).
#include "loopback_server.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bufpool::fuzz::exchange(bufpool::fuzz::Protocol::http, data, size);
  return 0;
}
