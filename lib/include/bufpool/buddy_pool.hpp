// BuddyPool: a buddy allocator of large buffers with an asynchronous wait on a memory limit.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include "bufpool/buffer.hpp"
#include "bufpool/chunk_allocator.hpp"
#include "bufpool/detail/waiter.hpp"
#include "bufpool/error.hpp"

namespace bufpool {

inline constexpr std::size_t KiB = std::size_t{1} << 10;
inline constexpr std::size_t MiB = std::size_t{1} << 20;
inline constexpr std::size_t GiB = std::size_t{1} << 30;

struct BuddyPoolOptions {
  /// Memory is taken from `backing` in chunks of this size: a power of two, 4 KiB to 2 GiB.
  std::size_t chunk_size = 64 * MiB;
  /// The smallest block: a power of two of at least 4 KiB; chunk_size / min_block must be a power
  /// of `fanout`. With the defaults the levels are 1, 4, 16 and 64 MiB.
  std::size_t min_block = 1 * MiB;
  /// How many buddies a block splits into: 2 or 4.
  unsigned fanout = 4;
  /// Cap on the chunks taken from `backing`, in bytes (rounded down to whole chunks, at least one).
  std::size_t max_memory = 256 * MiB;
  /// Bytes taken up front at construction (rounded up to whole chunks, at most max_memory).
  /// Chunks are otherwise taken lazily, when a request finds no free block.
  std::size_t reserve = 0;
  /// Where chunks come from. nullptr means make_mmap_chunk_allocator() with default options.
  std::shared_ptr<ChunkAllocator> backing = nullptr;
  /// Zero every block as it is freed (and the part of a block that shrink() gives back), before
  /// any other buffer can get it: for a pool shared between tenants, none of whom may see
  /// another's bytes. Costs a memset of the whole block per free, outside the pool's lock.
  bool zero_freed = false;
};

struct BuddyPoolStats {
  std::size_t chunks_held = 0;
  std::size_t bytes_reserved = 0;        ///< chunks_held * chunk_size
  std::size_t bytes_in_use = 0;          ///< block bytes handed out (capacity)
  std::size_t bytes_requested = 0;       ///< requested bytes handed out (size)
  std::size_t high_water = 0;            ///< largest bytes_in_use seen
  std::vector<std::size_t> free_blocks;  ///< per level, smallest first, after pending merges
  std::size_t waiters = 0;
  std::uint64_t allocations = 0;    ///< successful allocations, immediate or after a wait
  std::uint64_t waits = 0;          ///< requests that had to queue
  std::uint64_t timeouts = 0;       ///< waits ended by async_allocate_for's deadline
  std::uint64_t cancellations = 0;  ///< waits ended by cancellation (timeouts included)
  /// try_allocate/allocate calls refused with out_of_memory (a wait is never a failure)
  std::uint64_t failures = 0;
};

namespace detail {
class PoolCore;
// Tries to allocate at once. Returns true when the request is finished (out holds the buffer, or
// ec a final error); false when it has to wait. Counts nothing as a failure.
bool complete_now(PoolCore* core, std::size_t size, Buffer& out, std::error_code& ec) noexcept;
WaitOwner<Buffer>* wait_owner(PoolCore* core) noexcept;
// Queues the waiter, or completes it through its executor if memory appeared meanwhile.
void enqueue_waiter(PoolCore* core, Waiter<Buffer>* waiter) noexcept;
using InitiateAllocate = InitiateWait<PoolCore, Buffer>;
}  // namespace detail

/// A buddy allocator of buffers from fixed-size chunks, with a hard memory limit.
///
/// Blocks are found through per-level free lists (no search over chunks); buddies are merged
/// lazily, when a request needs a larger block, when stats() or trim() asks, so a free is O(1).
/// Metadata lives outside the buffer memory, so the pool can manage memory that it must not touch.
///
/// Fairness: waiters are served strictly first come, first served. While any waiter is queued,
/// try_allocate() fails with out_of_memory and async_allocate() queues behind it, so a later
/// request never takes memory that an earlier waiter could use (Seastar's semaphore policy).
///
/// Thread safety: every member function may be called concurrently from any thread.
class BuddyPool {
 public:
  /// Throws std::system_error: errc::invalid_argument for bad options, errc::too_many_pools, or
  /// errc::backing_failed if `reserve` cannot be met.
  explicit BuddyPool(BuddyPoolOptions options = {});
  /// Closes the pool (waiters complete with errc::closed). Buffers still out stay valid; the
  /// chunks go back to the backing allocator when the last of them is returned.
  ~BuddyPool();
  BuddyPool(const BuddyPool&) = delete;
  BuddyPool& operator=(const BuddyPool&) = delete;

  /// Allocates a block of at least `size` bytes without blocking. On failure returns an empty
  /// Buffer and sets `ec`: invalid_size (0), too_large (above the largest block), out_of_memory
  /// (limit reached, or waiters queued), closed, or backing_failed.
  Buffer try_allocate(std::size_t size, std::error_code& ec) noexcept;
  /// As try_allocate, but throws std::system_error on failure.
  Buffer allocate(std::size_t size);
  /// A block at once if one of the right level is free and nobody waits; otherwise an empty
  /// Buffer, with no chunk taken and nothing counted. The fast path in front of async_allocate
  /// (whose completion always goes through the executor): see co_allocate_for().
  Buffer allocate_if_free(std::size_t size) noexcept;

  /// Allocates `size` bytes, waiting for frees if the memory limit is reached.
  /// Completion signature: void(boost::system::error_code, Buffer). Asio recognises only that
  /// type as the error slot (use_awaitable and use_future throw it, as_tuple returns it); it wraps
  /// the bufpool std::error_code exactly, compares equal to bufpool::errc values, and converts
  /// implicitly, so a callback may take std::error_code instead. Errors: invalid_size, too_large
  /// (at once, never waits), cancelled (per-operation cancellation of any type), closed, and
  /// backing_failed. Completes through the handler's associated executor (system_executor if it
  /// has none), never inside the initiating call and never inside a free. As with every Asio
  /// operation, emit cancellation from that executor (on a multi-threaded io_context, run the
  /// coroutine on a strand). The result is an RAII Buffer, so a result that is dropped (a lost
  /// race with a timeout) goes back to the pool.
  template <typename CompletionToken>
  auto async_allocate(std::size_t size, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, Buffer)>(
        detail::InitiateAllocate{core_}, token, size,
        std::optional<std::chrono::steady_clock::duration>{});
  }

  /// As async_allocate, but a wait that lasts longer than `timeout` completes with
  /// errc::timed_out (and counts in stats().timeouts). The timer runs on the handler's associated
  /// executor, which therefore must be usable with asio::steady_timer (any I/O executor, a strand,
  /// or the system executor). When memory is free it completes at once and starts no timer. The
  /// timer and the allocation complete on that executor: on a multi-threaded io_context use a
  /// strand. A result that races the deadline wins: the caller gets the buffer.
  template <typename CompletionToken>
  auto async_allocate_for(std::size_t size, std::chrono::steady_clock::duration timeout,
                          CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, Buffer)>(
        detail::InitiateAllocate{core_}, token, size,
        std::optional<std::chrono::steady_clock::duration>{timeout});
  }

  /// Fails every waiter with errc::closed and refuses later allocations with errc::closed.
  /// Frees keep working. Idempotent.
  void close() noexcept;

  /// Merges free buddies and gives fully free chunks back to the backing allocator, keeping at
  /// least `keep_bytes` reserved. Does nothing while waiters are queued. Returns the bytes
  /// released.
  std::size_t trim(std::size_t keep_bytes = 0) noexcept;

  /// A consistent snapshot, taken under the pool lock. Pending merges are done first.
  BuddyPoolStats stats() const;

  unsigned levels() const noexcept;
  /// Block size of `level` (0 is the smallest).
  std::size_t block_size(unsigned level) const noexcept;
  /// The level that serves `size`, or -1 with ec set (invalid_size, too_large).
  int level_for(std::size_t size, std::error_code& ec) const noexcept;
  /// The capacity of the block that a request of `size` bytes gets (what it really costs, for
  /// charging a Quota), or 0 if no block can hold it.
  std::size_t capacity_for(std::size_t size) const noexcept;
  const BuddyPoolOptions& options() const noexcept;

 private:
  detail::PoolCore* core_;
};

}  // namespace bufpool
