// write_buffer.hpp: the records committed since the last checkpoint, sorted
// by encoded key. Each entry is a put or an erase tombstone with the sequence
// number of the commit that wrote it; an entry only ever replaces one with a
// lower sequence, so concurrent commits applied out of order still end right.
// Its bytes are charged against Options::cache_bytes. A put never reads a
// chunk; whether a key existed below the buffer is resolved lazily (for
// size()) and remembered in the entry.
//
// Not synchronised: the store guards it with its Lock policy.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace stowage::detail {

/// Whether a buffered key also exists in the layers below the buffer.
enum class Below : std::int8_t { unknown, absent, present };

/// One buffered record.
struct BufferEntry {
  std::uint64_t seq = 0;
  bool tombstone = false;
  std::string value;
  Below below = Below::unknown;
};

/// Sorted buffer of puts and tombstones.
class WriteBuffer {
 public:
  using Map = std::map<std::string, BufferEntry, std::less<>>;
  /// Approximate heap bytes of one map node beyond key and value.
  static constexpr std::size_t kEntryOverhead = 96;

  /// Records a put (tombstone = false) or an erase; ignored when the buffer
  /// already holds a newer sequence for the key. `below` is what the caller
  /// knows about lower layers (unknown when it did not look).
  void apply(std::string_view key, std::uint64_t seq, bool tombstone, std::string_view value,
             Below below = Below::unknown) {
    auto it = map_.lower_bound(key);
    if (it != map_.end() && it->first == key) {
      BufferEntry& e = it->second;
      if (e.seq >= seq) return;
      if (e.below != Below::unknown) {
        delta_ -= contribution(e);
      } else if (below != Below::unknown) {
        e.below = below;
        --unknown_;
      }
      bytes_ -= e.value.size();
      e.seq = seq;
      e.tombstone = tombstone;
      e.value.assign(value);
      bytes_ += e.value.size();
      if (e.below != Below::unknown) delta_ += contribution(e);
    } else {
      BufferEntry e;
      e.seq = seq;
      e.tombstone = tombstone;
      e.value.assign(value);
      e.below = below;
      if (below == Below::unknown)
        ++unknown_;
      else
        delta_ += contribution(e);
      bytes_ += key.size() + value.size() + kEntryOverhead;
      map_.emplace_hint(it, std::string(key), std::move(e));
    }
    if (seq > max_seq_) max_seq_ = seq;
  }
  /// Live records this buffer adds to the layers below it (negative when it
  /// erases more than it adds). Exact once resolve() has run.
  std::int64_t delta() const { return delta_; }
  /// Entries whose presence below is not yet known.
  std::size_t unknown() const { return unknown_; }
  /// Looks up every unknown entry with exists_below(key) -> bool.
  template <class Fn>
  void resolve(Fn&& exists_below) {
    if (unknown_ == 0) return;
    for (auto& [k, e] : map_) {
      if (e.below != Below::unknown) continue;
      e.below = exists_below(std::string_view(k)) ? Below::present : Below::absent;
      delta_ += contribution(e);
    }
    unknown_ = 0;
  }
  const BufferEntry* find(std::string_view key) const {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  BufferEntry* find(std::string_view key) {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  Map::const_iterator lower_bound(std::string_view key) const { return map_.lower_bound(key); }
  Map::const_iterator upper_bound(std::string_view key) const { return map_.upper_bound(key); }
  Map::const_iterator begin() const { return map_.begin(); }
  Map::const_iterator end() const { return map_.end(); }
  Map::iterator begin() { return map_.begin(); }
  Map::iterator end() { return map_.end(); }
  bool empty() const { return map_.empty(); }
  std::size_t entries() const { return map_.size(); }
  /// Bytes charged to the memory budget.
  std::size_t bytes() const { return bytes_; }
  /// Highest sequence applied.
  std::uint64_t max_seq() const { return max_seq_; }

 private:
  static std::int64_t contribution(const BufferEntry& e) {
    return (e.tombstone ? 0 : 1) - (e.below == Below::present ? 1 : 0);
  }
  Map map_;
  std::size_t bytes_ = 0;
  std::int64_t delta_ = 0;
  std::size_t unknown_ = 0;
  std::uint64_t max_seq_ = 0;
};

}  // namespace stowage::detail
