#include "bufpool/error.hpp"

namespace bufpool {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "bufpool"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::invalid_size:
        return "invalid size";
      case errc::too_large:
        return "request larger than the largest block or the memory limit";
      case errc::out_of_memory:
        return "memory limit reached";
      case errc::timed_out:
        return "allocation timed out";
      case errc::cancelled:
        return "allocation cancelled";
      case errc::closed:
        return "pool closed";
      case errc::invalid_argument:
        return "invalid argument";
      case errc::backing_failed:
        return "backing allocator failed";
      case errc::too_many_pools:
        return "too many live pools";
      case errc::unknown_length:
        return "the message has no Content-Length (a chunked body needs a BufferChain)";
    }
    return "unknown bufpool error";
  }

  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<errc>(value)) {
      case errc::out_of_memory:
      case errc::backing_failed:
        return std::errc::not_enough_memory;
      case errc::timed_out:
        return std::errc::timed_out;
      case errc::cancelled:
        return std::errc::operation_canceled;
      case errc::invalid_size:
      case errc::invalid_argument:
        return std::errc::invalid_argument;
      case errc::unknown_length:
        return std::errc::message_size;
      case errc::too_large:
        return std::errc::value_too_large;
      default:
        return {value, *this};
    }
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace bufpool
