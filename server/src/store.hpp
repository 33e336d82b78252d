// The key -> value map that the HTTP and RPC front ends share.
#pragma once

#include <bufpool/offset_allocator.hpp>
#include <bufpool/rpc/frame.hpp>
#include <bufpool/shared_buffer.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bufpool::server {

/// Keys are 1 to 250 bytes of [A-Za-z0-9._~-]: the RPC protocol's rule, for both front ends.
using rpc::valid_key;

/// Maps keys to pool buffers. Values are SharedBuffers: a reader's copy keeps the bytes alive
/// after the key is replaced or erased. Key bytes live in one arena whose space an
/// OffsetAllocator manages (exact best fit, coalescing: keys of mixed lengths come and go without
/// fragmenting it, and without a heap allocation per key). Thread-safe: one mutex, held only for
/// the map operation; buffers are released after it is dropped.
class BufferStore {
 public:
  BufferStore(std::size_t key_arena_bytes, std::size_t max_keys);

  enum class PutResult { created, replaced, no_room };
  /// Stores `value` under `key`, replacing any previous value at once. no_room: the key arena or
  /// max_keys is full (the value is released).
  PutResult put(std::string_view key, SharedBuffer value);
  /// A reference to the value (empty optional when absent; an empty buffer is a 0-byte value).
  std::optional<SharedBuffer> get(std::string_view key) const;
  bool erase(std::string_view key);
  /// Drops every key.
  void clear();

  struct Stats {
    std::size_t keys = 0;
    std::size_t value_bytes = 0;  // sum of value sizes
    std::size_t key_bytes = 0;
    std::size_t key_arena_free = 0;
    std::size_t key_arena_largest_free = 0;
    std::size_t key_arena_free_regions = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    OffsetAllocator::Allocation key;
    SharedBuffer value;
  };
  mutable std::mutex mutex_;
  std::unique_ptr<char[]> arena_;  // not zeroed: pages become resident as keys are written
  OffsetAllocator key_space_;
  std::unordered_map<std::string_view, Entry> index_;  // views into arena_
  std::size_t max_keys_;
  std::size_t value_bytes_ = 0;
};

}  // namespace bufpool::server
