// How a Buffer names its block in 32 bits, so that the handle stays 16 bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bufpool::detail {

// ref = [pool slot: 11 bits][chunk index: 16 bits][level: 5 bits]. The pool slot indexes a
// process-wide registry of live pools; a slot is reused only after its pool's last block came back,
// so a ref can never reach the wrong pool.
inline constexpr unsigned level_bits = 5;
inline constexpr unsigned chunk_bits = 16;
inline constexpr unsigned slot_bits = 32 - level_bits - chunk_bits;
inline constexpr std::uint32_t max_pools = (1u << slot_bits) - 1;  // slot 0 is never used
inline constexpr std::uint32_t max_chunks = 1u << chunk_bits;
inline constexpr std::uint32_t max_levels = 1u << level_bits;

constexpr std::uint32_t make_ref(std::uint32_t slot, std::uint32_t chunk, std::uint32_t level) {
  return (slot << (chunk_bits + level_bits)) | (chunk << level_bits) | level;
}
constexpr std::uint32_t ref_slot(std::uint32_t ref) {
  return ref >> (chunk_bits + level_bits);
}
constexpr std::uint32_t ref_chunk(std::uint32_t ref) {
  return (ref >> level_bits) & (max_chunks - 1);
}
constexpr std::uint32_t ref_level(std::uint32_t ref) {
  return ref & (max_levels - 1);
}

// Implemented by the pool (buddy_pool.cpp). All are thread safe. `data` may be any address inside
// the block (a slice of a SharedBuffer). A reference or address that the pool does not hold, and
// a block that is not allocated (a double release), stop the process with a message naming the
// block.
void release_block(std::uint32_t ref, const std::byte* data) noexcept;
// Gives back what lies past `size` bytes down to the smallest level that holds them; returns the
// new reference. 0 < size <= the block's requested size.
std::uint32_t shrink_block(std::uint32_t ref, std::byte* data, std::size_t size) noexcept;
std::size_t block_capacity(std::uint32_t ref) noexcept;
// The reference count that SharedBuffer keeps in the pool's per-block metadata.
void shared_init(std::uint32_t ref, const std::byte* data) noexcept;
void shared_acquire(std::uint32_t ref, const std::byte* data) noexcept;
void shared_release(std::uint32_t ref, const std::byte* data) noexcept;

}  // namespace bufpool::detail
