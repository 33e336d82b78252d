// bufpool's error codes. Every operation that can fail in normal use reports a
// std::error_code from bufpool's own category, following Asio's convention.
#pragma once

#include <string>
#include <system_error>

namespace bufpool {

enum class errc : int {
  // 0 is reserved for success, as std::error_code requires.
  invalid_size = 1,  ///< A size of 0, or a size that does not fit the request.
  too_large,         ///< Larger than the largest block or the memory limit: can never succeed.
  out_of_memory,     ///< The memory limit is reached now; a later attempt may succeed.
  timed_out,         ///< A waiting allocation reached its deadline.
  cancelled,         ///< A waiting allocation was cancelled.
  closed,            ///< The pool was closed; no further allocations are served.
  invalid_argument,  ///< A bad option or argument (for example a non power-of-two size).
  backing_failed,    ///< The backing chunk allocator could not provide memory.
  too_many_pools,    ///< The process-wide limit of live pools is reached.
  unknown_length,    ///< A message body without a Content-Length where one is needed.
};

/// The category of bufpool::errc. Thread safe; a single instance lives for the whole program.
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace bufpool

template <>
struct std::is_error_code_enum<bufpool::errc> : std::true_type {};
