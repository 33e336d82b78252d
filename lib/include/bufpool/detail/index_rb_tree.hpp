// A red-black tree whose nodes live in one array and link to each other by 32-bit index.
#pragma once

#include <cstdint>

namespace bufpool::detail {

/// Intrusive red-black tree operations over `Node base[]`. A node has the fields `left`, `right`,
/// `parent` (std::uint32_t indices) and `red` (bool-like). Index 0 is the shared black sentinel
/// (CLRS's T.nil): every missing child points at it, and erase() writes its parent field
/// while it rebalances, so base[0] must exist and be writable. Many trees may share one array and
/// one sentinel; each tree is only its root index, held by the caller. Not thread-safe.
///
/// Worst case O(log n) for insert, erase and the searches. erase() needs no search (parent
/// links), and both insert and erase rotate at most three times.
template <typename Node>
class IndexRbTree {
 public:
  static constexpr std::uint32_t nil = 0;

  explicit IndexRbTree(Node* base) noexcept : n_(base) {}

  /// Links node z (its key already set) into the tree at `root`; less(a, b) orders indices.
  template <typename Less>
  void insert(std::uint32_t& root, std::uint32_t z, Less less) noexcept {
    std::uint32_t y = nil;
    for (std::uint32_t x = root; x != nil;) {
      y = x;
      x = less(z, x) ? n_[x].left : n_[x].right;
    }
    n_[z].parent = y;
    n_[z].left = n_[z].right = nil;
    n_[z].red = true;
    if (y == nil) {
      root = z;
    } else if (less(z, y)) {
      n_[y].left = z;
    } else {
      n_[y].right = z;
    }
    insert_fixup(root, z);
  }

  /// Unlinks node z from the tree at `root`.
  void erase(std::uint32_t& root, std::uint32_t z) noexcept {
    std::uint32_t y = z;
    bool y_was_red = n_[y].red;
    std::uint32_t x;
    if (n_[z].left == nil) {
      x = n_[z].right;
      transplant(root, z, x);
    } else if (n_[z].right == nil) {
      x = n_[z].left;
      transplant(root, z, x);
    } else {
      y = minimum(n_[z].right);
      y_was_red = n_[y].red;
      x = n_[y].right;
      if (n_[y].parent == z) {
        n_[x].parent = y;  // x may be the sentinel: the fixup climbs from its parent
      } else {
        transplant(root, y, x);
        n_[y].right = n_[z].right;
        n_[n_[y].right].parent = y;
      }
      transplant(root, z, y);
      n_[y].left = n_[z].left;
      n_[n_[y].left].parent = y;
      n_[y].red = n_[z].red;
    }
    if (!y_was_red) erase_fixup(root, x);
  }

  /// Puts node y (not in any tree) in node x's place, with x's links and colour. x leaves the
  /// tree. For when y has the same key as x, so the order holds. O(1).
  void replace(std::uint32_t& root, std::uint32_t x, std::uint32_t y) noexcept {
    n_[y].left = n_[x].left;
    n_[y].right = n_[x].right;
    n_[y].red = n_[x].red;
    relink_parent(root, x, y);
    if (n_[y].left != nil) n_[n_[y].left].parent = y;
    if (n_[y].right != nil) n_[n_[y].right].parent = y;
  }

  std::uint32_t minimum(std::uint32_t x) const noexcept {
    while (n_[x].left != nil)
      x = n_[x].left;
    return x;
  }
  std::uint32_t maximum(std::uint32_t x) const noexcept {
    while (n_[x].right != nil)
      x = n_[x].right;
    return x;
  }
  /// The next node in order, or nil.
  std::uint32_t successor(std::uint32_t x) const noexcept {
    if (n_[x].right != nil) return minimum(n_[x].right);
    std::uint32_t p = n_[x].parent;
    while (p != nil && x == n_[p].right) {
      x = p;
      p = n_[p].parent;
    }
    return p;
  }

 private:
  bool red(std::uint32_t x) const noexcept { return n_[x].red; }

  void rotate_left(std::uint32_t& root, std::uint32_t x) noexcept {
    const std::uint32_t y = n_[x].right;
    n_[x].right = n_[y].left;
    if (n_[y].left != nil) n_[n_[y].left].parent = x;
    relink_parent(root, x, y);
    n_[y].left = x;
    n_[x].parent = y;
  }
  void rotate_right(std::uint32_t& root, std::uint32_t x) noexcept {
    const std::uint32_t y = n_[x].left;
    n_[x].left = n_[y].right;
    if (n_[y].right != nil) n_[n_[y].right].parent = x;
    relink_parent(root, x, y);
    n_[y].right = x;
    n_[x].parent = y;
  }
  // y takes x's place under x's parent.
  void relink_parent(std::uint32_t& root, std::uint32_t x, std::uint32_t y) noexcept {
    const std::uint32_t p = n_[x].parent;
    n_[y].parent = p;
    if (p == nil) {
      root = y;
    } else if (x == n_[p].left) {
      n_[p].left = y;
    } else {
      n_[p].right = y;
    }
  }
  // v takes u's place; v's parent is set even when v is the sentinel (erase_fixup relies on it).
  void transplant(std::uint32_t& root, std::uint32_t u, std::uint32_t v) noexcept {
    const std::uint32_t p = n_[u].parent;
    if (p == nil) {
      root = v;
    } else if (u == n_[p].left) {
      n_[p].left = v;
    } else {
      n_[p].right = v;
    }
    n_[v].parent = p;
  }

  void insert_fixup(std::uint32_t& root, std::uint32_t z) noexcept {
    while (red(n_[z].parent)) {
      std::uint32_t p = n_[z].parent;
      const std::uint32_t g = n_[p].parent;  // exists: a red node is never the root
      if (p == n_[g].left) {
        const std::uint32_t u = n_[g].right;
        if (red(u)) {
          n_[p].red = n_[u].red = false;
          n_[g].red = true;
          z = g;
          continue;
        }
        if (z == n_[p].right) {
          z = p;
          rotate_left(root, z);
          p = n_[z].parent;
        }
        n_[p].red = false;
        n_[g].red = true;
        rotate_right(root, g);
      } else {
        const std::uint32_t u = n_[g].left;
        if (red(u)) {
          n_[p].red = n_[u].red = false;
          n_[g].red = true;
          z = g;
          continue;
        }
        if (z == n_[p].left) {
          z = p;
          rotate_right(root, z);
          p = n_[z].parent;
        }
        n_[p].red = false;
        n_[g].red = true;
        rotate_left(root, g);
      }
    }
    n_[root].red = false;
  }

  void erase_fixup(std::uint32_t& root, std::uint32_t x) noexcept {
    while (x != root && !red(x)) {
      const std::uint32_t p = n_[x].parent;
      if (x == n_[p].left) {
        std::uint32_t w = n_[p].right;  // never the sentinel: x's side is one black short
        if (red(w)) {
          n_[w].red = false;
          n_[p].red = true;
          rotate_left(root, p);
          w = n_[p].right;
        }
        if (!red(n_[w].left) && !red(n_[w].right)) {
          n_[w].red = true;
          x = p;
          continue;
        }
        if (!red(n_[w].right)) {
          n_[n_[w].left].red = false;
          n_[w].red = true;
          rotate_right(root, w);
          w = n_[p].right;
        }
        n_[w].red = n_[p].red;
        n_[p].red = false;
        n_[n_[w].right].red = false;
        rotate_left(root, p);
        x = root;
      } else {
        std::uint32_t w = n_[p].left;
        if (red(w)) {
          n_[w].red = false;
          n_[p].red = true;
          rotate_right(root, p);
          w = n_[p].left;
        }
        if (!red(n_[w].left) && !red(n_[w].right)) {
          n_[w].red = true;
          x = p;
          continue;
        }
        if (!red(n_[w].left)) {
          n_[n_[w].right].red = false;
          n_[w].red = true;
          rotate_left(root, w);
          w = n_[p].left;
        }
        n_[w].red = n_[p].red;
        n_[p].red = false;
        n_[n_[w].left].red = false;
        rotate_right(root, p);
        x = root;
      }
    }
    n_[x].red = false;
  }

  Node* n_;
};

}  // namespace bufpool::detail
