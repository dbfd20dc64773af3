// SPDX-License-Identifier: BSL-1.0
// index.hpp: the chunk directory of one keyspace. Chunks partition the key
// space: each holds the records in [its first key, the next chunk's first
// key), and no two chunks overlap. The index is sparse, one entry per chunk,
// ordered by first key. Keys before the first chunk belong to it when a
// checkpoint routes new records.
//
// Point lookups (find) use a flat search aid (detail/prefix_search.hpp) over
// the chunks' first keys once seal() has built it; any change drops the aid
// (find then walks the map) until the next seal(). The store seals an index
// before it installs it.
//
// Not synchronised: the store reads it under its shared lock and replaces it
// only under the exclusive lock.
#pragma once

#include <cstdint>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/prefix_search.hpp"

namespace stowage::detail {

/// What the index knows of one chunk file (also what the manifest stores).
struct ChunkRef {
  std::uint64_t file = 0;      ///< file number: NNNNNN.chunk
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;     ///< file size
  std::uint64_t max_seq = 0;
  std::string first_key;
  std::string last_key;
  std::uint32_t level = 0;     ///< 0 (newest runs) .. kLevels - 1 (the last level); format 3
  std::uint64_t run = 0;       ///< level 0: the run it belongs to (higher: newer); 0 elsewhere
  std::uint64_t uncounted = 0; ///< records not yet in the live count (format 4)
  /// Older versions it keeps for snapshots, and their bytes (chunk format 5;
  /// in memory only: known for the files written since the store opened,
  /// 0 for the others).
  std::uint64_t versions = 0, version_bytes = 0;
  /// Smallest sequence number of its records (in memory only, as versions:
  /// 0, unknown, for files the store did not write since it opened). A
  /// snapshot older than it sees nothing in the file.
  std::uint64_t min_seq = 0;
};

/// Ordered first key → chunk.
class ChunkIndex {
 public:
  using Map = std::map<std::string, ChunkRef, std::less<>>;

  ChunkIndex() = default;
  /// A copy is sealed when `o` is (its aid points into its own map).
  ChunkIndex(const ChunkIndex& o) : map_(o.map_), records_(o.records_), bytes_(o.bytes_) {
    if (o.sealed_) seal();
  }
  ChunkIndex& operator=(const ChunkIndex& o) {
    if (this != &o) *this = ChunkIndex(o);
    return *this;
  }
  // Moving a std::map keeps its nodes, so the aid's pointers stay valid;
  // the moved-from index is empty and unsealed.
  ChunkIndex(ChunkIndex&& o) noexcept
      : map_(std::move(o.map_)),
        records_(std::exchange(o.records_, 0)),
        bytes_(std::exchange(o.bytes_, 0)),
        sealed_(std::exchange(o.sealed_, false)),
        refs_(std::move(o.refs_)),
        search_(std::move(o.search_)) {
    o.map_.clear();
    o.refs_.clear();
  }
  ChunkIndex& operator=(ChunkIndex&& o) noexcept {
    if (this != &o) {
      map_ = std::move(o.map_);
      records_ = std::exchange(o.records_, 0);
      bytes_ = std::exchange(o.bytes_, 0);
      sealed_ = std::exchange(o.sealed_, false);
      refs_ = std::move(o.refs_);
      search_ = std::move(o.search_);
      o.map_.clear();
      o.refs_.clear();
    }
    return *this;
  }

  /// Builds the search aid find() uses (until the next change). Without
  /// memory for it the index stays unsealed: find() walks the map instead.
  void seal() noexcept {
    unseal();
    try {
      refs_.reserve(map_.size());
      for (const auto& kv : map_) refs_.push_back(&kv.second);
      search_.build(refs_.size(), [this](std::size_t i) { return std::string_view(refs_[i]->first_key); });
      sealed_ = true;
    } catch (...) {
      unseal();
    }
  }
  /// Whether find() uses the search aid.
  bool sealed() const { return sealed_; }

  void add(ChunkRef c) {
    unseal();
    records_ += c.records;
    bytes_ += c.bytes;
    std::string k = c.first_key;
    map_.insert_or_assign(std::move(k), std::move(c));
  }
  /// Removes the chunk whose first key is first_key.
  void remove(std::string_view first_key) {
    auto it = map_.find(first_key);
    if (it == map_.end()) return;
    unseal();
    records_ -= it->second.records;
    bytes_ -= it->second.bytes;
    map_.erase(it);
  }
  /// The chunk that may hold key, or nullptr when key is outside every chunk.
  const ChunkRef* find(std::string_view key) const {
    if (sealed_) {
      const std::size_t above =
          search_.upper_bound(key, [this](std::size_t i) { return std::string_view(refs_[i]->first_key); });
      if (above == 0) return nullptr;
      const ChunkRef* c = refs_[above - 1];
      return key <= c->last_key ? c : nullptr;
    }
    auto it = map_.upper_bound(key);
    if (it == map_.begin()) return nullptr;
    --it;
    return key <= it->second.last_key ? &it->second : nullptr;
  }
  /// The first chunk whose records may be >= key (for seeks).
  Map::const_iterator seek(std::string_view key) const {
    auto it = map_.upper_bound(key);
    if (it != map_.begin()) {
      auto prev = std::prev(it);
      if (key <= prev->second.last_key) return prev;
    }
    return it;
  }
  /// The chunk a new record with this key is merged into (the first chunk
  /// for keys before all chunks); end() when the index is empty.
  Map::const_iterator route(std::string_view key) const {
    auto it = map_.upper_bound(key);
    if (it != map_.begin()) --it;
    return it;
  }
  Map::const_iterator begin() const { return map_.begin(); }
  Map::const_iterator end() const { return map_.end(); }
  Map::const_iterator next(Map::const_iterator it) const { return ++it; }
  std::size_t chunks() const { return map_.size(); }
  std::uint64_t records() const { return records_; }
  std::uint64_t bytes() const { return bytes_; }
  bool empty() const { return map_.empty(); }

 private:
  void unseal() {
    sealed_ = false;
    refs_.clear();
  }
  Map map_;
  std::uint64_t records_ = 0;
  std::uint64_t bytes_ = 0;
  bool sealed_ = false;
  std::vector<const ChunkRef*> refs_;  // map_'s values in order, when sealed
  PrefixSearch search_;                // over refs_' first keys, when sealed
};

}  // namespace stowage::detail
