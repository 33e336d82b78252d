// A baseline for perf/offset_allocator_bench, not part of bufpool: the O(1) design that
// sebbbi/OffsetAllocator made known (256 size bins on an 8-bit float scale, 3 bits of mantissa;
// a 32-bit mask of non-empty bin groups over 8-bit masks of non-empty bins; requests rounded up
// to a bin whose every region fits; doubly linked bin lists; neighbours linked in address
// order; merges at free), written here from that description so that the bench can price it in
// the same run. It keeps that design's known limits (a region just below a bin's top is found
// only by a larger request) and has no checks: benchmark use only.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

namespace bufpool::perf {

class TwoLevelBitmap {
 public:
  static constexpr std::uint32_t none = 0xffffffff;
  struct Allocation {
    std::uint32_t offset = 0;
    std::uint32_t node = none;
  };

  TwoLevelBitmap(std::uint32_t capacity, std::uint32_t max_allocations)
      : nodes_(max_allocations + 1), free_nodes_(max_allocations + 1) {
    for (std::uint32_t i = 0; i < free_nodes_.size(); ++i)
      free_nodes_[i] = static_cast<std::uint32_t>(free_nodes_.size()) - 1 - i;
    for (auto& head : heads_)
      head = none;
    insert(capacity, 0);
  }

  Allocation allocate(std::uint32_t size) {
    const std::uint32_t min_bin = bin_round_up(size);
    std::uint32_t group = min_bin >> 3;
    std::uint32_t bin = none;
    const std::uint32_t in_group = group_masks_[group] & (~0u << (min_bin & 7));
    if (in_group != 0) {
      bin = (group << 3) | static_cast<std::uint32_t>(std::countr_zero(in_group));
    } else {
      const std::uint32_t above = group + 1 < 32 ? top_ & (~0u << (group + 1)) : 0;
      if (above == 0) return {};
      group = static_cast<std::uint32_t>(std::countr_zero(above));
      bin = (group << 3) | static_cast<std::uint32_t>(std::countr_zero(group_masks_[group]));
    }
    const std::uint32_t x = heads_[bin];
    Node& node = nodes_[x];
    const std::uint32_t total = node.size;
    node.size = size;
    node.used = true;
    heads_[bin] = node.bin_next;
    if (node.bin_next != none) nodes_[node.bin_next].bin_prev = none;
    if (heads_[bin] == none) clear_bin(bin);
    const std::uint32_t rest = total - size;
    if (rest > 0) {
      const std::uint32_t y = insert(rest, node.offset + size);
      if (node.next != none) nodes_[node.next].prev = y;
      nodes_[y].prev = x;
      nodes_[y].next = node.next;
      node.next = y;
    }
    return {node.offset, x};
  }

  void free(Allocation a) {
    std::uint32_t x = a.node;
    Node& node = nodes_[x];
    std::uint32_t offset = node.offset, size = node.size;
    if (node.prev != none && !nodes_[node.prev].used) {
      const std::uint32_t p = node.prev;
      offset = nodes_[p].offset;
      size += nodes_[p].size;
      remove(p);
      node.prev = nodes_[p].prev;
    }
    if (node.next != none && !nodes_[node.next].used) {
      const std::uint32_t q = node.next;
      size += nodes_[q].size;
      remove(q);
      node.next = nodes_[q].next;
    }
    const std::uint32_t prev = node.prev, next = node.next;
    free_nodes_[free_top_++] = x;
    const std::uint32_t y = insert(size, offset);
    nodes_[y].prev = prev;
    nodes_[y].next = next;
    if (prev != none) nodes_[prev].next = y;
    if (next != none) nodes_[next].prev = y;
  }

 private:
  struct Node {
    std::uint32_t offset = 0, size = 0;
    std::uint32_t bin_prev = none, bin_next = none;
    std::uint32_t prev = none, next = none;
    bool used = false;
  };
  // An 8-bit float: 5 bits of exponent, 3 of mantissa (sizes below 8 are exact).
  static std::uint32_t bin_round_down(std::uint32_t size) {
    if (size < 8) return size;
    const std::uint32_t e = static_cast<std::uint32_t>(std::bit_width(size)) - 4;
    return ((e + 1) << 3) | ((size >> e) & 7);
  }
  static std::uint32_t bin_round_up(std::uint32_t size) {
    if (size < 8) return size;
    const std::uint32_t e = static_cast<std::uint32_t>(std::bit_width(size)) - 4;
    const std::uint32_t down = ((e + 1) << 3) | ((size >> e) & 7);
    return (size & ((1u << e) - 1)) != 0 ? down + 1 : down;
  }
  std::uint32_t insert(std::uint32_t size, std::uint32_t offset) {
    const std::uint32_t bin = bin_round_down(size);
    if (heads_[bin] == none) {
      group_masks_[bin >> 3] |= 1u << (bin & 7);
      top_ |= 1u << (bin >> 3);
    }
    const std::uint32_t x = free_nodes_[--free_top_];
    nodes_[x] = Node{offset, size, none, heads_[bin], none, none, false};
    if (heads_[bin] != none) nodes_[heads_[bin]].bin_prev = x;
    heads_[bin] = x;
    return x;
  }
  void remove(std::uint32_t x) {
    Node& node = nodes_[x];
    if (node.bin_prev != none) {
      nodes_[node.bin_prev].bin_next = node.bin_next;
      if (node.bin_next != none) nodes_[node.bin_next].bin_prev = node.bin_prev;
    } else {
      const std::uint32_t bin = bin_round_down(node.size);
      heads_[bin] = node.bin_next;
      if (node.bin_next != none) nodes_[node.bin_next].bin_prev = none;
      if (heads_[bin] == none) clear_bin(bin);
    }
    free_nodes_[free_top_++] = x;
  }
  void clear_bin(std::uint32_t bin) {
    group_masks_[bin >> 3] &= ~(1u << (bin & 7));
    if (group_masks_[bin >> 3] == 0) top_ &= ~(1u << (bin >> 3));
  }

  std::vector<Node> nodes_;
  std::vector<std::uint32_t> free_nodes_;
  std::uint32_t free_top_ = static_cast<std::uint32_t>(free_nodes_.size());
  std::uint32_t heads_[256];
  std::uint32_t group_masks_[32] = {};
  std::uint32_t top_ = 0;
};

}  // namespace bufpool::perf
