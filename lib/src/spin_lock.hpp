// A test-and-test-and-set spin lock for the pool's short critical sections.
#pragma once

#include <atomic>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace bufpool::detail {

// Why not std::mutex: an uncontended lock/unlock pair of a pthread mutex costs about twice an
// xchg, and the pool holds its lock for a few dozen instructions. Slow work (mmap, posting
// completions) is always done with the lock released, so spinning stays short; after a bounded
// spin the waiter yields, which matters on a 2-core machine where the holder may be descheduled.
class SpinLock {
 public:
  void lock() noexcept {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      for (int spins = 0; locked_.load(std::memory_order_relaxed);) {
        if (++spins < 128) {
          pause();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
  }

  std::atomic<bool> locked_{false};
};

}  // namespace bufpool::detail
