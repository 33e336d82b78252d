// The key -> value map that the HTTP and RPC front ends share.
#pragma once

#include <bufpool/detail/zeroed_array.hpp>
#include <bufpool/offset_allocator.hpp>
#include <bufpool/rpc/frame.hpp>
#include <bufpool/shared_buffer.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string_view>

namespace bufpool::server {

/// Keys are 1 to 250 bytes of [A-Za-z0-9._~-]: the RPC protocol's rule, for both front ends.
using rpc::valid_key;

/// Maps keys to pool buffers. Values are SharedBuffers: a reader's copy keeps the bytes alive
/// after the key is replaced or erased. Key bytes live in one arena whose space an
/// OffsetAllocator manages (exact best fit, coalescing: keys of mixed lengths come and go without
/// fragmenting it). The index is an open-addressing table (linear probing, backward-shift
/// deletion, each slot's 32-bit hash stored), at most half full (a miss then probes about 2.5
/// slots; at two thirds it probed 5 and lost to std::unordered_map): it doubles when it would be
/// fuller (one allocation and a rehash per doubling, as a std::unordered_map does; never one
/// per key). Sizing it for max_keys up front would spread a few keys over many pages, and every
/// lookup would then miss the TLB. Thread-safe: one mutex, held
/// only for the map operation; buffers are released after it is dropped.
class BufferStore {
 public:
  BufferStore(std::size_t key_arena_bytes, std::size_t max_keys);
  ~BufferStore();
  BufferStore(const BufferStore&) = delete;
  BufferStore& operator=(const BufferStore&) = delete;

  enum class PutResult { created, replaced, no_room, not_met };
  /// When put() stores: always, only if the key is absent (Redis's NX), only if present (XX).
  enum class PutIf { always, absent, present };
  /// Stores `value` under `key`, replacing any previous value at once. no_room: the key arena or
  /// max_keys is full; not_met: `when` did not hold (the value is released in both cases).
  /// `previous`, if given, receives the value the key had before (Redis's SET ... GET), checked
  /// and swapped under one lock.
  PutResult put(std::string_view key, SharedBuffer value, PutIf when = PutIf::always,
                std::optional<SharedBuffer>* previous = nullptr);
  /// A reference to the value (empty optional when absent; an empty buffer is a 0-byte value).
  std::optional<SharedBuffer> get(std::string_view key) const;
  bool erase(std::string_view key);
  /// Drops every key.
  void clear();
  /// Keys stored.
  std::size_t size() const;

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
  // One slot of the index. All-zero is empty (keys are at least 1 byte). The value is a
  // SharedBuffer kept in raw storage, so that the table can live in zero-filled pages and slots
  // can move by copying their bytes: a SharedBuffer is three scalars and points at nothing of
  // its own, so moving its bytes relocates it.
  struct Slot {
    std::uint32_t hash;  // the key's hash, low 32 bits; the home slot is hash & mask_
    std::uint32_t key_offset;
    std::uint32_t key_size;  // 0: empty
    std::uint32_t unused;
    alignas(SharedBuffer) std::byte value[sizeof(SharedBuffer)];
  };
  static_assert(sizeof(Slot) == 32);
  static SharedBuffer& value_of(Slot& s) noexcept {
    return *std::launder(reinterpret_cast<SharedBuffer*>(s.value));
  }
  static const SharedBuffer& value_of(const Slot& s) noexcept {
    return *std::launder(reinterpret_cast<const SharedBuffer*>(s.value));
  }
  // The slot holding `key`, or the empty slot where it would go.
  std::size_t find(std::string_view key, std::uint32_t hash) const noexcept;
  void remove_at(std::size_t i) noexcept;
  void grow();

  mutable std::mutex mutex_;
  std::unique_ptr<char[]> arena_;  // not zeroed: pages become resident as keys are written
  OffsetAllocator key_space_;
  detail::ZeroedArray<Slot> slots_;
  std::size_t mask_;
  std::size_t max_keys_;
  std::size_t keys_ = 0;
  std::size_t value_bytes_ = 0;
};

}  // namespace bufpool::server
