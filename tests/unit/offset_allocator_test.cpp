#include "bufpool/offset_allocator.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace bufpool::detail {
struct OffsetAllocatorInspector {
  template <typename A>
  static std::size_t overflowed(const A& a) {
    return a.overflow_count_;
  }

  // Every structural invariant, checked the slow way. Returns "" or the first broken one.
  template <typename A>
  static std::string check(const A& a) {
    using Offset = decltype(a.capacity_);
    // Address order: regions tile [0, capacity) and no two free regions touch.
    Offset expect = 0;
    std::size_t free_count = 0;
    std::uint32_t prev = A::nil;
    for (std::uint32_t x = a.head_; x != A::nil; x = a.n(x).next) {
      const auto& node = a.n(x);
      if (node.prev != prev) return "prev link";
      if (node.offset != expect) return "regions do not tile the range";
      if (node.size == 0) return "empty region";
      if (a.is_free(x) && prev != A::nil && a.is_free(prev)) return "adjacent free regions";
      if (!a.is_free(x) && !a.is_live(x)) return "a region neither free nor live";
      free_count += a.is_free(x);
      expect = node.offset + node.size;
      prev = x;
    }
    if (a.tail_ != prev || expect != a.capacity_) return "tail";
    if (free_count != a.free_region_count()) return "free region count";
    if (a.placement() == Placement::good_fit) {  // lists: back links, the right class
      std::size_t in_lists = 0;
      for (std::size_t b = 0; b < A::bin_count; ++b) {
        if (a.bins_.test(b) != (a.root_[b] != A::nil)) return "class bitmap";
        std::uint32_t before = A::nil;
        for (std::uint32_t x = a.root_[b]; x != A::nil; x = a.n(x).hright) {
          if (!a.is_free(x)) return "allocated region in a list";
          if (A::good_class_of(a.n(x).size) != b) return "region in the wrong class";
          if (a.n(x).hleft != before) return "list back link";
          before = x;
          ++in_lists;
        }
      }
      return in_lists == free_count ? "" : "free regions missing from the lists";
    }
    // Pairing heaps: each node's children (first child, then siblings) with back links, none of
    // them below it in offset, one size per heap.
    std::size_t in_heaps = 0;
    std::string error;
    auto heap = [&](auto&& self, std::uint32_t x, Offset size) -> void {
      const auto& node = a.n(x);
      ++in_heaps;
      if (!a.is_free(x)) error = "allocated region in a heap";
      if (node.size != size) error = "wrong size in a heap";
      std::uint32_t back = x;
      for (std::uint32_t c = node.hleft; c != A::nil; c = a.n(c).hright) {
        if (a.n(c).hparent != back) error = "heap back link";
        if (a.n(c).offset < node.offset) error = "heap order";
        if (in_heaps > a.free_region_count()) {
          error = "a cycle in a heap";
          return;
        }
        self(self, c, size);
        back = c;
      }
    };
    for (std::size_t b = 0; b < A::bin_count; ++b) {
      const bool marked = a.bins_.test(b);
      if (marked != (a.root_[b] != A::nil)) return "bin bitmap";
      if (!marked) continue;
      if (b < A::exact_limit) {
        const std::uint32_t r = a.root_[b];
        if (a.n(r).hparent != A::nil || a.n(r).hright != A::nil) return "root with a parent";
        heap(heap, r, a.n(r).size);
      } else {
        for (std::uint32_t c = a.tree().minimum(a.root_[b]); c != A::nil;
             c = a.tree().successor(c)) {
          if (A::bin_of(a.n(c).size) != b) return "size in the wrong bin";
          if (a.n(c).hparent != A::nil || a.n(c).hright != A::nil) return "root with a parent";
          heap(heap, c, a.n(c).size);
        }
      }
      if (!error.empty()) return error;
    }
    if (in_heaps != free_count) return "free regions missing from the heaps";
    return "";
  }
};
}  // namespace bufpool::detail

namespace bufpool {
namespace {

using Alloc = OffsetAllocator::Allocation;

Alloc must(std::optional<Alloc> a) {
  EXPECT_TRUE(a.has_value());
  return a.value_or(Alloc{});
}

TEST(OffsetAllocator, AllocationIsEightBytes) {
  static_assert(sizeof(Alloc) == 8);
}

// orderly-allocator: available space.
TEST(OffsetAllocator, OrderlyAvailable) {
  constexpr std::uint32_t capacity = 10'000'000;
  OffsetAllocator a(capacity);
  EXPECT_EQ(a.total_available(), capacity);
  EXPECT_EQ(a.largest_available(), capacity);
  Alloc x = must(a.try_allocate(1'000));
  EXPECT_EQ(a.total_available(), capacity - 1'000);
  EXPECT_EQ(a.largest_available(), capacity - 1'000);
  a.free(x);
  EXPECT_EQ(a.total_available(), capacity);
  EXPECT_EQ(a.largest_available(), capacity);
}

// orderly-allocator: coalescing of 5 M, 3,000 and 50,000 in a 10 M pool.
TEST(OffsetAllocator, OrderlyCoalesce) {
  constexpr std::uint32_t capacity = 10'000'000;
  OffsetAllocator a(capacity);
  Alloc large = must(a.try_allocate(capacity / 2));
  Alloc small = must(a.try_allocate(3'000));
  Alloc medium = must(a.try_allocate(50'000));
  const std::uint32_t rest = capacity - large.size - small.size - medium.size;
  EXPECT_EQ(a.total_available(), rest);
  EXPECT_EQ(a.largest_available(), rest);
  a.free(small);
  EXPECT_EQ(a.total_available(), capacity - large.size - medium.size);
  EXPECT_EQ(a.largest_available(), rest);
  a.free(large);
  EXPECT_EQ(a.total_available(), capacity - medium.size);
  EXPECT_EQ(a.largest_available(), large.size + small.size);
  a.free(medium);
  EXPECT_EQ(a.total_available(), capacity);
  EXPECT_EQ(a.largest_available(), capacity);
  EXPECT_EQ(a.free_region_count(), 1u);
}

TEST(OffsetAllocator, OrderlyResetAndGrow) {
  constexpr std::uint32_t capacity = 10'000'000;
  OffsetAllocator a(capacity);
  a.try_allocate(capacity / 2);
  a.try_allocate(3'000);
  a.reset();
  EXPECT_EQ(a.total_available(), capacity);
  EXPECT_EQ(a.largest_available(), capacity);
  EXPECT_TRUE(a.grow(capacity + 5'000'000));
  EXPECT_EQ(a.capacity(), capacity + 5'000'000);
  EXPECT_EQ(a.largest_available(), capacity + 5'000'000) << "grow coalesces the new space";
  EXPECT_FALSE(a.grow(1));
}

// orderly-allocator's try_reallocate sequence, plus its old panic: a grow that takes the whole
// neighbouring hole.
TEST(OffsetAllocator, OrderlyTryReallocate) {
  constexpr std::uint32_t capacity = 10'000'000, size = 50'000;
  OffsetAllocator a(capacity);
  Alloc x = must(a.try_allocate(size));
  Alloc b = must(a.try_allocate(3'000));
  must(a.try_allocate(50'000));
  a.free(b);
  const auto initial = a.total_available();
  EXPECT_FALSE(a.try_reallocate(x, x.size + 10'000)) << "too much";
  EXPECT_EQ(a.total_available(), initial);
  EXPECT_FALSE(a.try_reallocate(x, 0));
  EXPECT_EQ(a.total_available(), initial);
  x = must(a.try_reallocate(x, size + 1'000));
  EXPECT_EQ(x.offset, 0u);
  EXPECT_EQ(a.total_available(), initial - 1'000);
  x = must(a.try_reallocate(x, size + 3'000));  // takes the whole hole
  EXPECT_EQ(a.total_available(), initial - 3'000);
  x = must(a.try_reallocate(x, size - 333));
  EXPECT_EQ(x.size, size - 333);
  EXPECT_EQ(a.total_available(), initial + 333);
}

// sebbbi/OffsetAllocator's cases, with a 256 Mi capacity.
TEST(OffsetAllocator, SebbbiSimple) {
  OffsetAllocator a(256u << 20);
  EXPECT_EQ(must(a.try_allocate(0)).offset, 0u);
  Alloc b = must(a.try_allocate(1));
  EXPECT_EQ(b.offset, 0u);
  Alloc c = must(a.try_allocate(123));
  EXPECT_EQ(c.offset, 1u);
  Alloc d = must(a.try_allocate(1234));
  EXPECT_EQ(d.offset, 124u);
  a.free(b);
  a.free(c);
  a.free(d);
  EXPECT_EQ(must(a.try_allocate(256u << 20)).offset, 0u) << "no fragmentation left";
}

TEST(OffsetAllocator, SebbbiReuseComplex) {
  OffsetAllocator a(256u << 20);
  Alloc x = must(a.try_allocate(1024));
  Alloc b = must(a.try_allocate(3456));
  EXPECT_EQ(b.offset, 1024u);
  a.free(x);
  Alloc c = must(a.try_allocate(2345));
  EXPECT_EQ(c.offset, 1024u + 3456u);
  Alloc d = must(a.try_allocate(456));
  EXPECT_EQ(d.offset, 0u);
  Alloc e = must(a.try_allocate(512));
  EXPECT_EQ(e.offset, 456u);
  for (Alloc z : {c, d, b, e})
    a.free(z);
  EXPECT_EQ(must(a.try_allocate(256u << 20)).offset, 0u);
}

TEST(OffsetAllocator, SebbbiZeroFragmentation) {
  OffsetAllocator a(256u << 20);
  std::vector<Alloc> all(256);
  for (std::uint32_t i = 0; i < 256; ++i) {
    all[i] = must(a.try_allocate(1u << 20));
    EXPECT_EQ(all[i].offset, i << 20);
  }
  for (int i : {243, 5, 123, 95})
    a.free(all[i]);
  for (int i : {243, 5, 123, 95})
    all[i] = must(a.try_allocate(1u << 20));
  for (Alloc z : all)
    a.free(z);
  EXPECT_EQ(must(a.try_allocate(256u << 20)).offset, 0u);
}

// The cases on which sebbbi/OffsetAllocator and its ports are known to fail.
TEST(OffsetAllocator, KnownPeerFailures) {
  {
    OffsetAllocator a(324);
    must(a.try_allocate(255));
    Alloc second = must(a.try_allocate(67));  // 69 units are free: it fits
    EXPECT_EQ(second.offset, 255u);
  }
  {
    OffsetAllocator a(36864, 2);  // room for exactly two allocations
    must(a.try_allocate(1000));
    must(a.try_allocate(1000));
    std::error_code ec;
    a.try_allocate(1000, 1, ec);
    EXPECT_EQ(ec, errc::out_of_memory);
  }
  {
    OffsetAllocator a(513);
    EXPECT_EQ(must(a.try_allocate(513)).size, 513u);
  }
}

TEST(OffsetAllocator, AlignmentAndErrors) {
  OffsetAllocator a(1000);
  must(a.try_allocate(3));
  Alloc aligned = must(a.try_allocate(10, 64));
  EXPECT_EQ(aligned.offset % 64, 0u);
  EXPECT_EQ(a.total_available(), 1000u - 13u);
  std::error_code ec;
  a.try_allocate(10, 3, ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  a.try_allocate(1001, 1, ec);
  EXPECT_EQ(ec, errc::too_large);
  a.try_allocate(990, 1, ec);
  EXPECT_EQ(ec, errc::out_of_memory);
  auto regions = a.free_regions();
  ASSERT_EQ(regions.size(), 2u);  // the alignment gap [3, 64) and the tail [74, 1000)
  EXPECT_EQ(regions[0], (Alloc{3, 61}));
  EXPECT_EQ(regions[1], (Alloc{74, 926}));
}

TEST(OffsetAllocator, CapacitiesAbove4GiB) {
  constexpr std::uint64_t GiB = std::uint64_t{1} << 30;
  OffsetAllocator64 a(16 * GiB);
  std::vector<OffsetAllocator64::Allocation> v;
  for (int i = 0; i < 3; ++i)
    v.push_back(a.try_allocate(5 * GiB).value());
  EXPECT_EQ(v[2].offset, 10 * GiB);
  EXPECT_EQ(a.largest_available(), 1 * GiB);
  a.free(v[1]);
  EXPECT_EQ(a.largest_available(), 5 * GiB);
}

// Randomized against a model that knows every unit (a byte map), fixed seed. After every step:
// no overlap, the exact best fit (smallest free run that holds the size, lowest offset on a
// tie) for every aligned-to-1 request, out_of_memory only when no run is large enough, and the
// totals. Then millions of faster steps that check overlap only.
TEST(OffsetAllocator, RandomizedAgainstModel) {
  constexpr std::uint64_t seed = 0x0ff5e7;
  std::printf("offset allocator model: seed=%llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  constexpr std::uint32_t capacity = 2048;
  OffsetAllocator a(capacity, 4096);
  std::vector<std::uint8_t> used(capacity, 0);
  std::vector<Alloc> live;
  auto best_fit = [&](std::uint32_t size) -> std::int64_t {
    std::int64_t best = -1;
    std::uint32_t best_len = 0;
    for (std::uint32_t i = 0; i < capacity;) {
      if (used[i]) {
        ++i;
        continue;
      }
      std::uint32_t j = i;
      while (j < capacity && !used[j])
        ++j;
      const std::uint32_t len = j - i;
      if (len >= size && (best < 0 || len < best_len)) {
        best = i;
        best_len = len;
      }
      i = j;
    }
    return best;
  };
  for (int step = 0; step < 300'000; ++step) {
    if (live.empty() || rng() % 100 < 52) {
      const auto size = static_cast<std::uint32_t>(1 + rng() % (rng() % 8 == 0 ? 512 : 32));
      const std::int64_t expect = best_fit(size);
      auto got = a.try_allocate(size);
      if (expect < 0) {
        ASSERT_FALSE(got) << "step " << step << ": allocated although no run fits";
        continue;
      }
      ASSERT_TRUE(got) << "step " << step << ": failed although a run of " << size << " is free";
      ASSERT_EQ(got->offset, static_cast<std::uint32_t>(expect))
          << "step " << step << ": not best fit";
      for (std::uint32_t u = got->offset; u < got->offset + size; ++u) {
        ASSERT_EQ(used[u], 0) << "overlap at step " << step;
        used[u] = 1;
      }
      live.push_back(*got);
    } else {
      const std::size_t i = rng() % live.size();
      for (std::uint32_t u = live[i].offset; u < live[i].offset + live[i].size; ++u)
        used[u] = 0;
      a.free(live[i]);
      live[i] = live.back();
      live.pop_back();
    }
    if (step % 97 == 0) {
      ASSERT_EQ(detail::OffsetAllocatorInspector::check(a), "") << "step " << step;
    }
    std::uint32_t free_units = 0;
    if (step % 101 == 0) {
      for (auto u : used)
        free_units += u == 0;
      ASSERT_EQ(a.total_available(), free_units) << "step " << step;
    }
  }
  // Millions more steps, random alignments, checking only that allocations never overlap.
  std::map<std::uint32_t, std::uint32_t> intervals;
  for (const Alloc& l : live)
    a.free(l);
  live.clear();
  ASSERT_EQ(a.free_region_count(), 1u);
  for (int step = 0; step < 3'000'000; ++step) {
    if (live.empty() || rng() % 100 < 50) {
      const auto size = static_cast<std::uint32_t>(1 + rng() % 64);
      const auto align = std::uint32_t{1} << (rng() % 5);
      auto got = a.try_allocate(size, align);
      if (!got) continue;
      ASSERT_EQ(got->offset % align, 0u);
      auto next = intervals.lower_bound(got->offset);
      ASSERT_TRUE(next == intervals.end() || next->first >= got->offset + size) << step;
      if (next != intervals.begin()) {
        ASSERT_LE(std::prev(next)->second, got->offset) << step;
      }
      intervals.emplace(got->offset, got->offset + size);
      live.push_back(*got);
    } else {
      const std::size_t i = rng() % live.size();
      intervals.erase(live[i].offset);
      a.free(live[i]);
      live[i] = live.back();
      live.pop_back();
    }
  }
  for (const Alloc& l : live)
    a.free(l);
  EXPECT_EQ(a.total_available(), capacity);
  EXPECT_EQ(a.free_region_count(), 1u) << "everything coalesced back";
}

}  // namespace
}  // namespace bufpool

namespace bufpool {
namespace {

// Reference: the free regions as a map offset -> size, kept by brute force.
struct RegionModel {
  std::map<std::uint64_t, std::uint64_t> free;
  explicit RegionModel(std::uint64_t capacity) { free.emplace(0, capacity); }
  // Exact best fit: the smallest region that holds `size`, the lowest offset on a tie.
  std::optional<std::uint64_t> best_fit(std::uint64_t size) const {
    std::optional<std::uint64_t> best;
    std::uint64_t best_size = 0;
    for (auto [o, s] : free)
      if (s >= size && (!best || s < best_size)) {
        best = o;
        best_size = s;
      }
    return best;
  }
  void take(std::uint64_t offset, std::uint64_t size) {
    auto it = std::prev(free.upper_bound(offset));
    const auto [o, s] = *it;
    free.erase(it);
    if (offset > o) free.emplace(o, offset - o);
    if (offset + size < o + s) free.emplace(offset + size, o + s - offset - size);
  }
  void give(std::uint64_t offset, std::uint64_t size) {
    auto [it, inserted] = free.emplace(offset, size);
    if (auto next = std::next(it); next != free.end() && offset + size == next->first) {
      it->second += next->second;
      free.erase(next);
    }
    if (it != free.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == offset) {
        prev->second += it->second;
        free.erase(it);
      }
    }
  }
  std::uint64_t largest() const {
    std::uint64_t m = 0;
    for (auto [o, s] : free)
      m = std::max(m, s);
    return m;
  }
};

// Sizes from 1 to 40,000 units, so regions live both in the exact classes (below 4,096) and in
// the bins with trees above; frees, shrinks and grows; and a table kept nearly full (max 24
// allocations, 4 buckets of 7) so that allocations spill to the buddy bucket and overflow to
// the tree. After every step: exact best fit, totals, region count, largest region; often the
// full list of free regions.
TEST(OffsetAllocator, RandomizedAcrossClassesAndTableOverflow) {
  constexpr std::uint64_t seed = 0x5eed0a11;
  std::printf("offset allocator wide model: seed=%llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  constexpr std::uint32_t capacity = 1u << 19;
  constexpr std::size_t max_live = 24;
  OffsetAllocator a(capacity, max_live);
  RegionModel model(capacity);
  std::vector<Alloc> live;
  std::size_t max_overflow = 0;
  for (int step = 0; step < 200'000; ++step) {
    const auto r = rng() % 100;
    if (live.size() < max_live && (live.empty() || r < 50)) {
      const auto size =
          static_cast<std::uint32_t>(rng() % 4 == 0 ? 1 + rng() % 40'000 : 1 + rng() % 300);
      const auto expect = model.best_fit(size);
      auto got = a.try_allocate(size);
      ASSERT_EQ(got.has_value(), expect.has_value()) << "step " << step << " size " << size;
      if (!got) continue;
      ASSERT_EQ(got->offset, *expect) << "step " << step << ": not the best fit for " << size;
      model.take(got->offset, size);
      live.push_back(*got);
    } else if (!live.empty() && r < 90) {
      const std::size_t i = rng() % live.size();
      ASSERT_TRUE(a.free(live[i]));
      ASSERT_FALSE(a.free(live[i])) << "a double free is refused";
      model.give(live[i].offset, live[i].size);
      live[i] = live.back();
      live.pop_back();
    } else if (!live.empty()) {
      const std::size_t i = rng() % live.size();
      const Alloc old = live[i];
      const std::uint32_t new_size = 1 + static_cast<std::uint32_t>(rng() % (2 * old.size + 8));
      auto next = model.free.find(std::uint64_t{old.offset} + old.size);
      const bool can =
          new_size <= old.size || (next != model.free.end() && next->second >= new_size - old.size);
      auto got = a.try_reallocate(old, new_size);
      ASSERT_EQ(got.has_value(), can) << "step " << step;
      if (got) {
        ASSERT_EQ(got->offset, old.offset);
        ASSERT_EQ(got->size, new_size);
        if (new_size < old.size) {
          model.give(old.offset + new_size, old.size - new_size);
        } else if (new_size > old.size) {
          model.take(old.offset + old.size, new_size - old.size);
        }
        live[i] = *got;
        if (new_size != old.size) {
          ASSERT_FALSE(a.free(old)) << "the old size no longer frees";
        }
      }
    }
    std::uint64_t free_units = 0;
    for (auto [o, s] : model.free)
      free_units += s;
    ASSERT_EQ(a.total_available(), free_units) << "step " << step;
    ASSERT_EQ(a.free_region_count(), model.free.size()) << "step " << step;
    ASSERT_EQ(a.largest_available(), model.largest()) << "step " << step;
    ASSERT_EQ(a.allocations(), live.size());
    if (step % 53 == 0) {
      std::vector<Alloc> expect;
      for (auto [o, s] : model.free)
        expect.push_back(Alloc{static_cast<std::uint32_t>(o), static_cast<std::uint32_t>(s)});
      ASSERT_EQ(a.free_regions(), expect) << "step " << step;
    }
    max_overflow = std::max(max_overflow, detail::OffsetAllocatorInspector::overflowed(a));
    if (step % 7 == 0) {
      ASSERT_EQ(detail::OffsetAllocatorInspector::check(a), "") << "step " << step;
    }
  }
  std::printf("most allocations in the overflow tree at once: %zu\n", max_overflow);
  EXPECT_GT(max_overflow, 0u) << "the run never reached the overflow tree";
  for (const Alloc& l : live)
    ASSERT_TRUE(a.free(l));
  EXPECT_EQ(a.free_region_count(), 1u);
  EXPECT_EQ(detail::OffsetAllocatorInspector::overflowed(a), 0u);
}

TEST(OffsetAllocator, FreeRefusesWhatIsNotLive) {
  OffsetAllocator a(1000);
  Alloc x = must(a.try_allocate(100));
  EXPECT_FALSE(a.free(Alloc{x.offset, 99})) << "wrong size";
  EXPECT_FALSE(a.free(Alloc{x.offset + 1, 99})) << "not an allocation's start";
  EXPECT_FALSE(a.free(Alloc{500, 10})) << "free space";
  EXPECT_EQ(a.total_available(), 900u);
  EXPECT_TRUE(a.free(x));
  EXPECT_FALSE(a.free(x));
  EXPECT_EQ(a.total_available(), 1000u);
  EXPECT_FALSE(a.try_reallocate(x, 50)) << "no longer live";
}

TEST(OffsetAllocator, MaxAllocationsIsChecked) {
  EXPECT_THROW(OffsetAllocator(100, 0), std::system_error);
  OffsetAllocator a(100, 3);
  for (int i = 0; i < 3; ++i)
    must(a.try_allocate(1));
  std::error_code ec;
  a.try_allocate(1, 1, ec);
  EXPECT_EQ(ec, errc::out_of_memory) << "the fourth allocation exceeds max_allocations";
}

}  // namespace
}  // namespace bufpool

namespace bufpool {
namespace {

std::size_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f) {
    if (std::fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * 4096;
}

// Metadata is reserved for the worst case but becomes resident only as it is used, so a large
// max_allocations costs address space, not memory; reset() gives the used pages back.
TEST(OffsetAllocator, MetadataIsResidentOnlyWhenUsed) {
  const std::size_t before = resident_bytes();
  OffsetAllocator a(1u << 30, 4u << 20);  // room for 4 Mi allocations: 256 MiB of nodes reserved
  EXPECT_LT(resident_bytes() - before, std::size_t{8} << 20);
  std::vector<Alloc> v;
  for (int i = 0; i < 100'000; ++i)
    v.push_back(must(a.try_allocate(64)));
  // 100,000 allocations touch 100,000 nodes (3 MiB) and, being hashed, most of the 64 MiB table
  // (one 64-byte bucket per 6 allocations of max_allocations): the table is the part that a
  // large max_allocations makes resident once keys spread over it.
  const std::size_t used = resident_bytes() - before;
  EXPECT_GT(used, std::size_t{3} << 20);
  EXPECT_LT(used, std::size_t{80} << 20);
  a.reset();
  EXPECT_EQ(a.total_available(), 1u << 30);
  EXPECT_LT(resident_bytes() - before, used / 2) << "reset() gives the pages back";
  EXPECT_EQ(must(a.try_allocate(1u << 30)).offset, 0u);
}

// The vocabulary of every bufpool allocator: try_allocate never throws (an empty result or an
// error code), allocate throws std::system_error with the bufpool::errc.
TEST(OffsetAllocator, AllocateThrowsTheErrorThatTryAllocateReports) {
  OffsetAllocator a(100);
  EXPECT_EQ(a.allocate(60).size, 60u);
  try {
    a.allocate(60);
    ADD_FAILURE() << "allocate() returned without room";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), errc::out_of_memory);
  }
  EXPECT_THROW(a.allocate(1, 3), std::system_error);  // align not a power of two
  std::error_code ec;
  a.try_allocate(101, 1, ec);
  EXPECT_EQ(ec, errc::too_large);
  EXPECT_FALSE(a.try_allocate(101));
}

}  // namespace
}  // namespace bufpool

namespace bufpool {
namespace {

// Good fit, freed through handles, with and without the table by offset: sizes from 1 to
// 40,000 units with random alignments; frees (and double frees, refused), shrinks and grows.
// After every step against the brute-force model: the allocation lies in a free region, a
// request fails only when no free region holds it at its alignment, the totals, the largest
// region; often the full list of free regions and the structure.
void good_fit_against_model(bool lookup_by_offset) {
  constexpr std::uint64_t seed = 0x600df17;
  std::printf("offset allocator good-fit model: seed=%llu lookup=%d\n",
              static_cast<unsigned long long>(seed), lookup_by_offset);
  std::mt19937_64 rng(seed);
  constexpr std::uint32_t capacity = 1u << 19;
  OffsetAllocator a(capacity, {.max_allocations = 64,
                               .placement = Placement::good_fit,
                               .lookup_by_offset = lookup_by_offset});
  RegionModel model(capacity);
  std::vector<OffsetAllocator::Handle> live;
  auto fits_somewhere = [&](std::uint64_t size, std::uint64_t align) {
    for (auto [o, s] : model.free) {
      const std::uint64_t start = (o + align - 1) & ~(align - 1);
      if (start + size <= o + s) return true;
    }
    return false;
  };
  for (int step = 0; step < 60'000; ++step) {
    const auto roll = rng() % 100;
    if (live.empty() || roll < 50) {
      const auto size = static_cast<std::uint32_t>(1 + rng() % (rng() % 4 == 0 ? 40'000 : 300));
      const auto align = std::uint32_t{1} << (rng() % 4 == 0 ? rng() % 7 : 0);
      std::error_code ec;
      const auto h = a.try_allocate_handle(size, align, ec);
      if (ec) {
        ASSERT_EQ(ec, errc::out_of_memory) << "step " << step;
        ASSERT_TRUE(live.size() == 64 || !fits_somewhere(size, align))
            << "step " << step << ": refused " << size << " (align " << align
            << ") although a region holds it";
        continue;
      }
      ASSERT_EQ(h.offset % align, 0u) << "step " << step;
      auto it = model.free.upper_bound(h.offset);
      ASSERT_NE(it, model.free.begin()) << "step " << step;
      --it;
      ASSERT_LE(h.offset + size, it->first + it->second) << "step " << step << ": overlap";
      model.take(h.offset, size);
      live.push_back(h);
    } else if (roll < 85) {
      const std::size_t i = rng() % live.size();
      ASSERT_TRUE(a.free(live[i])) << "step " << step;
      ASSERT_FALSE(a.free(live[i])) << "step " << step << ": a double free was taken";
      model.give(live[i].offset, live[i].size);
      live[i] = live.back();
      live.pop_back();
    } else {
      const std::size_t i = rng() % live.size();
      OffsetAllocator::Handle& h = live[i];
      const auto new_size = static_cast<std::uint32_t>(1 + rng() % (2 * h.size + 8));
      const auto next = model.free.find(h.offset + h.size);
      const bool can =
          new_size <= h.size || (next != model.free.end() && next->second >= new_size - h.size);
      const auto r = a.try_reallocate(h, new_size);
      ASSERT_EQ(r.has_value(), can) << "step " << step;
      if (r) {
        if (new_size < h.size) model.give(h.offset + new_size, h.size - new_size);
        if (new_size > h.size) model.take(h.offset + h.size, new_size - h.size);
        if (new_size != h.size) {
          EXPECT_FALSE(a.free(h)) << "the old handle is stale";
        }
        h = *r;
      }
    }
    std::uint64_t free_units = 0;
    for (auto [o, s] : model.free)
      free_units += s;
    ASSERT_EQ(a.total_available(), free_units) << "step " << step;
    ASSERT_EQ(a.largest_available(), model.largest()) << "step " << step;
    ASSERT_EQ(a.free_region_count(), model.free.size()) << "step " << step;
    if (step % 61 == 0) {
      ASSERT_EQ(detail::OffsetAllocatorInspector::check(a), "") << "step " << step;
      std::size_t k = 0;
      for (auto r : a.free_regions()) {
        auto it = model.free.find(r.offset);
        ASSERT_TRUE(it != model.free.end() && it->second == r.size) << "step " << step;
        ++k;
      }
      ASSERT_EQ(k, model.free.size());
    }
  }
  for (const auto& h : live)
    ASSERT_TRUE(a.free(h));
  EXPECT_EQ(a.total_available(), capacity);
  EXPECT_EQ(a.free_region_count(), 1u) << "everything coalesced back";
}

TEST(OffsetAllocatorGoodFit, RandomizedAgainstModelWithTheTable) {
  good_fit_against_model(true);
}
TEST(OffsetAllocatorGoodFit, RandomizedAgainstModelWithHandlesOnly) {
  good_fit_against_model(false);
}

// The cases on which sebbbi/OffsetAllocator and its ports are known to fail, in every mode.
TEST(OffsetAllocatorGoodFit, KnownPeerFailuresInEveryMode) {
  for (Placement placement : {Placement::exact, Placement::good_fit}) {
    for (bool lookup : {true, false}) {
      SCOPED_TRACE(testing::Message()
                   << "good_fit=" << (placement == Placement::good_fit) << " lookup=" << lookup);
      const OffsetAllocatorOptions o{
          .max_allocations = 65536, .placement = placement, .lookup_by_offset = lookup};
      {
        OffsetAllocator a(324, o);
        a.allocate_handle(255);
        EXPECT_EQ(a.allocate_handle(67).offset, 255u);  // 69 units are free: it fits
      }
      {
        auto two = o;
        two.max_allocations = 2;  // room for exactly two allocations
        OffsetAllocator a(36864, two);
        a.allocate_handle(1000);
        a.allocate_handle(1000);
        std::error_code ec;
        a.try_allocate_handle(1000, 1, ec);
        EXPECT_EQ(ec, errc::out_of_memory);
      }
      {
        OffsetAllocator a(513, o);
        EXPECT_EQ(a.allocate_handle(513).size, 513u);
      }
    }
  }
}

TEST(OffsetAllocatorHandle, FreeChecksTheNodeAndTheTableIsOptional) {
  OffsetAllocator a(1000, {.max_allocations = 16, .lookup_by_offset = false});
  const auto h = a.allocate_handle(100);
  EXPECT_NE(h.node, 0u);
  EXPECT_FALSE(a.free(h.allocation())) << "no table: {offset, size} cannot be freed";
  EXPECT_FALSE(a.try_reallocate(h.allocation(), 50).has_value());
  auto wrong = h;
  wrong.size = 99;
  EXPECT_FALSE(a.free(wrong));
  wrong = h;
  wrong.node = 12345;  // beyond any node ever used
  EXPECT_FALSE(a.free(wrong));
  EXPECT_EQ(a.allocations(), 1u);
  EXPECT_TRUE(a.free(h));
  EXPECT_FALSE(a.free(h)) << "double free";
  EXPECT_EQ(a.total_available(), 1000u);
  EXPECT_TRUE(a.free(OffsetAllocator::Handle{}));  // the empty allocation: a no-op
}

TEST(OffsetAllocatorHandle, WithTheTableBothFormsFreeTheSameAllocation) {
  OffsetAllocator a(1000);
  const auto h = a.allocate_handle(100);
  const auto b = a.allocate_handle(200);
  EXPECT_TRUE(a.free(h.allocation()));
  EXPECT_FALSE(a.free(h)) << "freed through the other form already";
  EXPECT_TRUE(a.free(b));
  EXPECT_FALSE(a.free(b.allocation()));
  EXPECT_EQ(a.total_available(), 1000u);
  EXPECT_EQ(a.free_region_count(), 1u);
}

}  // namespace
}  // namespace bufpool

namespace bufpool {
namespace {

// Hundreds of free regions of one size in one class's list; merges take regions out of its
// middle. Fixed order, checked after every phase.
TEST(OffsetAllocatorGoodFit, AClassOfManyRegions) {
  OffsetAllocator a(4000, {.max_allocations = 4000, .placement = Placement::good_fit});
  std::vector<OffsetAllocator::Handle> all;
  for (int i = 0; i < 2000; ++i)
    all.push_back(a.allocate_handle(2));
  for (std::size_t i = 0; i < all.size(); i += 2)
    ASSERT_TRUE(a.free(all[i]));  // 1,000 free regions of 2 units in one class
  EXPECT_EQ(a.free_region_count(), 1000u);
  ASSERT_EQ(detail::OffsetAllocatorInspector::check(a), "");
  for (std::size_t i = 1; i < all.size(); i += 6)
    ASSERT_TRUE(a.free(all[i]));  // merges: three regions become one, from the middle
  ASSERT_EQ(detail::OffsetAllocatorInspector::check(a), "");
  std::vector<OffsetAllocator::Handle> again;
  while (true) {  // every region of 2 (and the merged 6s) taken again, newest first
    std::error_code ec;
    const auto h = a.try_allocate_handle(2, 1, ec);
    if (ec) break;
    again.push_back(h);
  }
  EXPECT_EQ(a.total_available(), 0u);
  ASSERT_EQ(detail::OffsetAllocatorInspector::check(a), "");
  for (const auto& h : again)
    ASSERT_TRUE(a.free(h));
  for (std::size_t i = 3; i < all.size(); i += 2)
    if ((i - 1) % 6 != 0) {
      ASSERT_TRUE(a.free(all[i])) << i;
    }
  EXPECT_EQ(a.total_available(), 4000u);
  EXPECT_EQ(a.free_region_count(), 1u);
  ASSERT_EQ(detail::OffsetAllocatorInspector::check(a), "");
}

}  // namespace
}  // namespace bufpool
