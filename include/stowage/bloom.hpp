// SPDX-License-Identifier: BSL-1.0
// bloom.hpp: the Bloom filter stored in every chunk's meta block.
// Serialized form (see docs/format.md, "Bloom filter"):
//   m bytes of bit array (m >= 8; bit j is bit (j % 8) of byte j / 8) | u8 k (1..30)
// A key's probes come from one 64-bit hash h = bloom_hash(key) by double hashing:
//   delta = rotate_right(h, 33); probe i (0 <= i < k) sets bit (h + i * delta) mod (8 * m)
// using wrapping 64-bit arithmetic. Invariant: every hash added to a builder is
// reported by may_contain() of the filter built from it (no false negatives).
//
// BlockedBloomFilter, at the end, is never stored: the write buffer keeps one
// over its keys, so that a get skips the buffer's tree for a key it does not
// hold with one cache line read.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/coding.hpp"
#include "error.hpp"

namespace stowage::detail {

/// Seed of bloom_hash, distinct from every checksum seed.
inline constexpr std::uint64_t kBloomHashSeed = 0x53545742424c4f4dULL;  // "STWBBLOM"
/// Smallest bit array a filter holds, in bytes.
inline constexpr std::size_t kBloomMinBytes = 8;
/// Largest number of probes a filter may declare.
inline constexpr unsigned kBloomMaxProbes = 30;

/// The 64-bit hash a key is added to and looked up in a Bloom filter with
/// (XXH3-64 of the key bytes, seed kBloomHashSeed).
inline std::uint64_t bloom_hash(std::string_view key) { return checksum(key, kBloomHashSeed); }

/// The step between a hash's successive probes.
inline std::uint64_t bloom_delta(std::uint64_t hash) { return (hash >> 33) | (hash << 31); }

/// Collects key hashes and serializes a Bloom filter over them.
class BloomFilterBuilder {
 public:
  /// bits_per_key in 1..64 (ValidationError otherwise); k = round(bits_per_key * ln 2), clamped to 1..30.
  explicit BloomFilterBuilder(unsigned bits_per_key = 10) : bits_per_key_(bits_per_key) {
    if (bits_per_key < 1 || bits_per_key > 64)
      throw ValidationError("stowage: Bloom filter bits per key must be 1..64, not " + std::to_string(bits_per_key));
    const auto k = static_cast<unsigned>(std::lround(bits_per_key * 0.6931471805599453));
    k_ = std::clamp(k, 1u, kBloomMaxProbes);
  }

  /// Adds one key hash (from bloom_hash); duplicates are harmless.
  void add(std::uint64_t hash) { hashes_.push_back(hash); }

  /// Number of hashes added so far.
  std::size_t size() const { return hashes_.size(); }

  /// Probes per key the filter will use.
  unsigned probes() const { return k_; }

  /// The serialized filter over every hash added: max(8, ceil(n * bits_per_key / 8))
  /// bytes of bits, then one byte k.
  std::string finish() const {
    const std::uint64_t bits = static_cast<std::uint64_t>(hashes_.size()) * bits_per_key_;
    const std::size_t bytes = std::max<std::size_t>(kBloomMinBytes, static_cast<std::size_t>((bits + 7) / 8));
    std::string out(bytes + 1, '\0');
    const std::uint64_t m = static_cast<std::uint64_t>(bytes) * 8;
    for (std::uint64_t h : hashes_) {
      const std::uint64_t delta = bloom_delta(h);
      for (unsigned i = 0; i < k_; ++i) {
        const std::uint64_t bit = h % m;
        out[bit / 8] = static_cast<char>(static_cast<unsigned char>(out[bit / 8]) | (1u << (bit % 8)));
        h += delta;
      }
    }
    out[bytes] = static_cast<char>(k_);
    return out;
  }

 private:
  unsigned bits_per_key_;
  unsigned k_ = 1;
  std::vector<std::uint64_t> hashes_;
};

/// A serialized Bloom filter, validated on construction, immutable afterwards
/// (safe to share across threads).
class BloomFilter {
 public:
  /// A filter that holds no information: may_contain() is always true.
  BloomFilter() = default;

  /// Adopts the bytes of BloomFilterBuilder::finish(). Fewer than 9 bytes or
  /// k outside 1..30 is a CorruptionError naming `file` and `offset` (where the
  /// bytes were read from).
  explicit BloomFilter(std::string bytes, const std::filesystem::path& file = {}, std::uint64_t offset = 0)
      : bytes_(std::move(bytes)) {
    if (bytes_.size() < kBloomMinBytes + 1)
      throw CorruptionError(file, offset, "Bloom filter of " + std::to_string(bytes_.size()) +
                                              " bytes is shorter than the minimum of " +
                                              std::to_string(kBloomMinBytes + 1));
    k_ = static_cast<unsigned char>(bytes_.back());
    if (k_ < 1 || k_ > kBloomMaxProbes)
      throw CorruptionError(file, offset + bytes_.size() - 1,
                            "Bloom filter declares " + std::to_string(k_) + " probes (expected 1.." +
                                std::to_string(kBloomMaxProbes) + ")");
    bits_ = static_cast<std::uint64_t>(bytes_.size() - 1) * 8;
  }

  /// False only if no hash equal to `hash` was added to the builder.
  bool may_contain(std::uint64_t hash) const {
    if (k_ == 0) return true;
    const std::uint64_t delta = bloom_delta(hash);
    for (unsigned i = 0; i < k_; ++i) {
      const std::uint64_t bit = hash % bits_;
      if (!(static_cast<unsigned char>(bytes_[bit / 8]) & (1u << (bit % 8)))) return false;
      hash += delta;
    }
    return true;
  }

  /// Probes per key (0 for a default-constructed filter).
  unsigned probes() const { return k_; }

  /// The serialized form.
  std::string_view bytes() const { return bytes_; }

  /// Bytes of memory held, for cache budgets.
  std::size_t charge() const { return sizeof(*this) + bytes_.capacity(); }

 private:
  std::string bytes_;
  std::uint64_t bits_ = 0;
  unsigned k_ = 0;
};

/// An in-memory Bloom filter over bloom_hash() values, never stored (the
/// write buffer's, over its keys). Each hash sets kProbes bits in one
/// 64-byte block chosen by its high 32 bits, so a lookup reads one cache
/// line. Sized once: past the keys it was sized for it answers "maybe" more
/// often, never "no" for a hash added.
class BlockedBloomFilter {
 public:
  /// Bits a hash sets in its block.
  static constexpr unsigned kProbes = 6;
  /// Bytes of one block (one cache line).
  static constexpr std::size_t kBlockBytes = 64;

  /// A filter that holds no information: may_contain() is always true.
  BlockedBloomFilter() = default;
  BlockedBloomFilter(const BlockedBloomFilter&) = delete;
  BlockedBloomFilter& operator=(const BlockedBloomFilter&) = delete;
  /// Takes o's blocks; o is left empty (not enabled()).
  BlockedBloomFilter(BlockedBloomFilter&& o) noexcept
      : mem_(std::move(o.mem_)), words_(std::exchange(o.words_, nullptr)), blocks_(std::exchange(o.blocks_, 0)) {}
  /// Frees this filter's blocks and takes o's; o is left empty.
  BlockedBloomFilter& operator=(BlockedBloomFilter&& o) noexcept {
    mem_ = std::move(o.mem_);
    words_ = std::exchange(o.words_, nullptr);
    blocks_ = std::exchange(o.blocks_, 0);
    return *this;
  }
  ~BlockedBloomFilter() = default;
  /// bytes / 64 blocks (at most 2^32), zeroed; none (an empty filter) when
  /// bytes < 64. Throws std::bad_alloc.
  explicit BlockedBloomFilter(std::size_t bytes) : blocks_(blocks_for(bytes)) {
    if (blocks_ == 0) return;
    // calloc: large sizes come as fresh zero pages, with no memset here;
    // one block more, to align the first to a cache line.
    mem_.reset(std::calloc(blocks_ + 1, kBlockBytes));
    if (!mem_) throw std::bad_alloc();
    const auto at = (reinterpret_cast<std::uintptr_t>(mem_.get()) + kBlockBytes - 1) & ~(kBlockBytes - 1);
    words_ = reinterpret_cast<std::uint64_t*>(at);
  }

  /// Whether it holds any information (sized to at least one block).
  bool enabled() const { return blocks_ != 0; }

  /// Adds one hash. Needs enabled().
  void add(std::uint64_t hash) noexcept {
    std::uint64_t* block = block_of(hash);
    std::uint64_t bits = spread(hash);
    for (unsigned i = 0; i < kProbes; ++i, bits >>= 9) block[(bits >> 6) & 7] |= std::uint64_t{1} << (bits & 63);
  }

  /// False only if `hash` was not added; always true when not enabled().
  bool may_contain(std::uint64_t hash) const noexcept {
    if (!enabled()) return true;
    const std::uint64_t* block = block_of(hash);
    std::uint64_t bits = spread(hash);
    for (unsigned i = 0; i < kProbes; ++i, bits >>= 9)
      if (!(block[(bits >> 6) & 7] & (std::uint64_t{1} << (bits & 63)))) return false;
    return true;
  }

  /// Bytes of memory held, for memory budgets.
  std::size_t charge() const { return charge_of(blocks_); }
  /// charge() of a filter made with BlockedBloomFilter(bytes).
  static std::size_t charge_for(std::size_t bytes) { return charge_of(blocks_for(bytes)); }

 private:
  // Blocks of a filter asked for `bytes`: whole blocks, at most 2^32.
  static std::size_t blocks_for(std::size_t bytes) {
    return std::min<std::size_t>(bytes / kBlockBytes, std::size_t{1} << 32);
  }
  // Memory held by `blocks` blocks: one block more, for the alignment.
  static std::size_t charge_of(std::size_t blocks) { return blocks ? (blocks + 1) * kBlockBytes : 0; }
  struct Free {
    void operator()(void* p) const noexcept { std::free(p); }
  };
  // The block: the hash's high 32 bits scaled to the block count.
  std::uint64_t* block_of(std::uint64_t hash) const noexcept {
    return words_ + ((hash >> 32) * blocks_ >> 32) * (kBlockBytes / 8);
  }
  // The bit positions, 9 bits each (word 0..7, bit 0..63), from the hash
  // mixed by an odd multiplier (its low bits are independent of the block's).
  static std::uint64_t spread(std::uint64_t hash) noexcept { return hash * 0x9e3779b97f4a7c15ULL; }

  std::unique_ptr<void, Free> mem_;
  std::uint64_t* words_ = nullptr;
  std::size_t blocks_ = 0;
};

}  // namespace stowage::detail
