// SPDX-License-Identifier: BSL-1.0
// detail/prefix_search.hpp: a compact search aid over sorted byte-string keys.
//
// It keeps the keys' common prefix once and, per key, the next 8 bytes as a
// big-endian u64 (zero-padded) in one contiguous array. Integer order of those
// u64s is memcmp order of the padded bytes, and padding can only make keys
// tie, never reorder them, so a binary search over the array decides every
// comparison except ties, which fall back to the caller's full keys. A lookup
// touches a few cache lines of the array instead of one heap string per probe.
//
// The aid does not own the keys: upper_bound asks `key_at(i)` for key i only
// on ties. Immutable after build(); safe for concurrent readers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace stowage::detail {

/// Common prefix + 8-byte prefixes of a sorted key sequence; see above.
class PrefixSearch {
 public:
  /// Builds the aid over `count` keys, key_at(i) -> std::string_view, which
  /// must ascend (ties allowed).
  template <class KeyAt>
  void build(std::size_t count, KeyAt&& key_at) {
    common_.clear();
    prefixes_.clear();
    if (count == 0) return;
    const std::string_view first = key_at(0), last = key_at(count - 1);
    std::size_t l = 0;
    while (l < first.size() && l < last.size() && first[l] == last[l]) ++l;
    common_.assign(first.substr(0, l));
    prefixes_.reserve(count);
    for (std::size_t i = 0; i < count; ++i) prefixes_.push_back(prefix_of(key_at(i).substr(l)));
  }

  /// How many keys are <= key (the index of the first key above it).
  template <class KeyAt>
  std::size_t upper_bound(std::string_view key, KeyAt&& key_at) const {
    const std::size_t n = prefixes_.size();
    if (n == 0) return 0;
    const std::size_t l = common_.size();
    const std::size_t m = std::min(key.size(), l);
    if (m > 0) {
      const int c = std::memcmp(key.data(), common_.data(), m);
      if (c < 0) return 0;
      if (c > 0) return n;
    }
    if (key.size() < l) return 0;  // a proper prefix of every key: below them all
    const std::uint64_t probe = prefix_of(key.substr(l));
    auto first_tie = std::lower_bound(prefixes_.begin(), prefixes_.end(), probe);
    auto past_ties = std::upper_bound(first_tie, prefixes_.end(), probe);
    std::size_t lo = static_cast<std::size_t>(first_tie - prefixes_.begin());
    std::size_t hi = static_cast<std::size_t>(past_ties - prefixes_.begin());
    while (lo < hi) {  // ties: the first whose full key is above `key`
      const std::size_t mid = lo + (hi - lo) / 2;
      if (key_at(mid) <= key) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  /// Bytes of memory held.
  std::size_t charge() const { return sizeof(*this) + common_.capacity() + prefixes_.capacity() * 8; }

  /// The first 8 bytes of s as a big-endian number, zero-padded.
  static std::uint64_t prefix_of(std::string_view s) {
    std::uint64_t v = 0;
    const std::size_t n = std::min<std::size_t>(8, s.size());
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{static_cast<unsigned char>(s[i])} << (56 - 8 * i);
    return v;
  }

 private:
  std::string common_;
  std::vector<std::uint64_t> prefixes_;
};

}  // namespace stowage::detail
