// SPDX-License-Identifier: BSL-1.0
// detail/arena.hpp: a bump allocator. It hands out pieces of larger blocks
// and frees nothing until it is destroyed (or moved from), when every block
// goes at once. Blocks grow with what the arena holds (a quarter of it, within
// [kMinBlock, kMaxBlock]), so a small arena wastes little and a large one
// calls malloc rarely; a request larger than a quarter of the next block gets
// a block of its own, so the current block is not abandoned for it.
//
// reserved() is the heap the arena holds: every block's size plus the
// allocator's header per block, including the unused tail of each block. It
// never shrinks until the arena is emptied.
//
// Not synchronised.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace stowage::detail {

/// Bump allocator over growing blocks, freed all at once.
class Arena {
 public:
  /// Smallest block the arena allocates.
  static constexpr std::size_t kMinBlock = 4 << 10;
  /// Largest regular block; larger requests get a block of their own.
  static constexpr std::size_t kMaxBlock = 256 << 10;
  /// Bytes charged per block for the allocator's own header and the
  /// block list's slot.
  static constexpr std::size_t kBlockOverhead = 16 + sizeof(std::unique_ptr<std::byte[]>);

  /// An empty arena; allocates nothing until the first allocate().
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  /// Takes o's blocks (pointers into them stay valid); o is left empty.
  Arena(Arena&& o) noexcept
      : blocks_(std::move(o.blocks_)),
        ptr_(std::exchange(o.ptr_, nullptr)),
        left_(std::exchange(o.left_, 0)),
        reserved_(std::exchange(o.reserved_, 0)) {
    o.blocks_.clear();
  }
  /// Frees this arena's blocks and takes o's; o is left empty.
  Arena& operator=(Arena&& o) noexcept {
    if (this != &o) {
      blocks_ = std::move(o.blocks_);
      o.blocks_.clear();
      ptr_ = std::exchange(o.ptr_, nullptr);
      left_ = std::exchange(o.left_, 0);
      reserved_ = std::exchange(o.reserved_, 0);
    }
    return *this;
  }
  ~Arena() = default;

  /// Returns n bytes (n > 0) aligned to align (a power of two, at most
  /// alignof(std::max_align_t)), uninitialised, valid until the arena is
  /// destroyed or moved into another.
  std::byte* allocate(std::size_t n, std::size_t align = 1) {
    std::size_t pad = (align - (reinterpret_cast<std::uintptr_t>(ptr_) & (align - 1))) & (align - 1);
    if (ptr_ != nullptr && pad + n <= left_) {
      std::byte* p = ptr_ + pad;
      ptr_ = p + n;
      left_ -= pad + n;
      return p;
    }
    std::size_t size = next_block_size();
    if (n > size / 4) return new_block(n);  // its own block: the current one stays
    std::byte* p = new_block(size);
    ptr_ = p + n;
    left_ = size - n;
    return p;
  }
  /// Heap bytes held: every block, its unused tail and per-block overhead.
  std::size_t reserved() const { return reserved_; }
  /// Blocks allocated.
  std::size_t blocks() const { return blocks_.size(); }

 private:
  std::size_t next_block_size() const { return std::clamp(reserved_ / 4, kMinBlock, kMaxBlock); }
  std::byte* new_block(std::size_t size) {
    blocks_.emplace_back(std::make_unique_for_overwrite<std::byte[]>(size));
    reserved_ += size + kBlockOverhead;
    return blocks_.back().get();
  }

  std::vector<std::unique_ptr<std::byte[]>> blocks_;
  std::byte* ptr_ = nullptr;  // next free byte of the current block
  std::size_t left_ = 0;      // free bytes after ptr_ in the current block
  std::size_t reserved_ = 0;
};

}  // namespace stowage::detail
