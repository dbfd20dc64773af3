// SPDX-License-Identifier: BSL-1.0
// history.hpp: the earlier versions of a collection's records
// (Collection::keep_history, history, get_at). A collection that keeps
// history has a history keyspace of its own (an entry of kind "history" in
// the MANIFEST's collection table, docs/format.md, "History"). Every put
// and erase of the collection writes, in the same commit, one entry:
//
//   prefix + varint len(pk) + pk + fixed64 BE ~sequence
//     -> u8 flags | varint commit time (us) | value
//
// pk is the record's encoded key (without its collection prefix), sequence
// the commit sequence of the record's op. Complemented big-endian sequences
// put a key's entries newest first. The engine writes the sequences in
// when it numbers the commit (WriteOp::stamp), so an entry's sequence is
// the one the change feed and snapshots use. When the history begins, every
// record then stored gets an entry at the start sequence (a baseline), so
// a key without an entry at or before a sequence was not stored then.
//
// Compaction keeps what the collection's History asks for and drops the
// rest of a key's entries (HistoryPruner), leaving a small cut marker in
// place of the newest entry it drops, so a reader knows that older versions
// existed; reads apply the same rule, so what history() returns does not
// depend on when compaction ran. A write reads nothing to make its entry.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "detail/coding.hpp"
#include "detail/collection_prefix.hpp"
#include "error.hpp"
#include "options.hpp"

namespace stowage {

/// How much history a collection keeps (Collection::keep_history). A key's
/// newest version is always kept; an older one is kept while it is among
/// the key's `versions` newest (when versions is not 0) and younger than
/// `keep_for` (when keep_for is not 0). Both 0: no history.
struct History {
  std::uint32_t versions = 0;        ///< versions kept per key, the newest included (0: no limit by count)
  std::chrono::seconds keep_for{0};  ///< age past which a version is dropped (0: no limit by age)
  /// Whether any history is kept.
  bool enabled() const { return versions != 0 || keep_for.count() > 0; }
  /// Same limits.
  friend bool operator==(const History&, const History&) = default;
};

/// One version of a record (Collection::history): what a put stored, or an
/// erase, committed as `sequence` at `time` (Options::clock).
template <class Value>
struct Version {
  std::uint64_t sequence = 0;                    ///< the commit's sequence number
  std::chrono::system_clock::time_point time{};  ///< when it was committed
  bool erased = false;                           ///< an erase of the record
  std::optional<Value> value;                    ///< the value put; empty for an erase
};

namespace detail {

/// A collection's history keyspace, as its writers and readers use it.
struct HistoryHook {
  std::string prefix;       ///< collection_prefix of the history keyspace's id
  History rule;             ///< what is kept
  std::uint64_t start = 0;  ///< the store's last sequence when history began
};

/// The store's wall clock: Options::clock, or the system clock.
inline std::chrono::system_clock::time_point clock_now(const Options& o) {
  return o.clock ? o.clock() : std::chrono::system_clock::now();
}

/// Bytes of a stamped sequence.
inline constexpr std::size_t kStampBytes = 8;

/// Flags of a history entry's value (one of them, or none: a put).
inline constexpr std::uint8_t kHistoryErased = 1;  ///< the version is an erase
inline constexpr std::uint8_t kHistoryCut = 2;     ///< a cut marker: older versions of the key were dropped

/// The bytes every history entry key of pk starts with, in the history
/// keyspace with prefix.
inline std::string history_group(std::string_view prefix, std::string_view pk) {
  std::string out(prefix);
  put_varint(out, pk.size());
  out.append(pk);
  return out;
}

/// Writes sequence as a stamp: big-endian, complemented (newest first).
inline void write_stamp(char* at, std::uint64_t sequence) {
  const std::uint64_t v = ~sequence;
  for (std::size_t i = 0; i < kStampBytes; ++i) at[i] = static_cast<char>((v >> (8 * (kStampBytes - 1 - i))) & 0xff);
}
/// The sequence a stamp holds.
inline std::uint64_t read_stamp(const char* at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < kStampBytes; ++i) v = (v << 8) | static_cast<unsigned char>(at[i]);
  return ~v;
}

/// Microseconds since the epoch of t (0 for times before it).
inline std::uint64_t history_micros(std::chrono::system_clock::time_point t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  return us < 0 ? 0 : static_cast<std::uint64_t>(us);
}

/// The current time (Options::clock, or the system clock) in microseconds
/// since the Unix epoch: what expiry and history times are measured in.
inline std::uint64_t now_micros(const Options& o) { return history_micros(clock_now(o)); }

/// The value of a history entry: a put of value, or an erase.
inline std::string history_value(bool erased, std::uint64_t micros, std::string_view value) {
  std::string out;
  out.reserve(1 + 10 + value.size());
  out.push_back(static_cast<char>(erased ? kHistoryErased : 0));
  put_varint(out, micros);
  out.append(value);
  return out;
}

/// The value of a cut marker (HistoryPruner).
inline std::string_view history_cut_value() {
  static constexpr char bytes[] = {static_cast<char>(kHistoryCut), 0};
  return std::string_view(bytes, sizeof bytes);
}

/// A decoded history entry (views into the key and value it came from).
struct HistoryEntry {
  std::uint64_t sequence = 0;
  std::uint64_t micros = 0;  ///< commit time, microseconds since the epoch
  bool erased = false;
  bool cut = false;          ///< a cut marker: no version, older ones were dropped
  std::string_view value;    ///< a put's value bytes
};

/// Decodes the entry whose key ends with stamp (kStampBytes bytes) and whose
/// value is value. CorruptionError (naming file) for bytes no writer makes.
inline HistoryEntry decode_history_entry(std::string_view stamp, std::string_view value,
                                         const std::filesystem::path* file) {
  Reader r(value, file);
  if (stamp.size() != kStampBytes) r.fail("a history entry's key does not end with an 8-byte sequence");
  HistoryEntry e;
  e.sequence = read_stamp(stamp.data());
  const std::uint8_t flags = r.u8("history entry flags");
  if (flags > kHistoryCut) r.fail("history entry flags " + std::to_string(flags) + " are unknown");
  e.erased = flags == kHistoryErased;
  e.cut = flags == kHistoryCut;
  e.micros = r.varint("history entry time");
  e.value = value.substr(r.position());
  if ((e.erased || e.cut) && !e.value.empty()) r.fail("a history entry of an erase or a cut holds a value");
  return e;
}

/// Whether rule keeps a key's version that is the rank-th newest (from 1)
/// and was committed at micros, judged at now (microseconds since the epoch).
inline bool history_keeps(const History& rule, std::size_t rank, std::uint64_t micros, std::uint64_t now) {
  if (rank <= 1) return true;
  if (rule.versions != 0 && rank > rule.versions) return false;
  if (rule.keep_for.count() > 0) {
    const auto span = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(rule.keep_for).count());
    if (now > micros && now - micros > span) return false;
  }
  return true;
}

/// Decides, as a merge writes records in key order, what becomes of each
/// history entry: for each key of a history keyspace, the entries the rule
/// no longer keeps are dropped (ranked newest first among the entries this
/// merge sees: a merge sees a subset of a key's entries, newer ones may sit
/// in levels above, so its ranks are at most the true ones and it drops only
/// what the rule drops). The newest entry it drops of each key is replaced
/// by a cut marker, the rest become tombstones; a cut marker met again is
/// dropped like an entry. Bytes it does not recognise are kept.
class HistoryPruner {
 public:
  /// A keyspace's id and rule.
  struct Keyspace {
    std::uint32_t id = 0;
    History rule;
  };
  /// What becomes of an entry.
  enum class Fate { keep, cut, drop };
  HistoryPruner() = default;
  /// Prunes the keyspaces given, judging ages at now (microseconds).
  HistoryPruner(std::vector<Keyspace> keyspaces, std::uint64_t now) : keyspaces_(std::move(keyspaces)), now_(now) {}
  /// Whether there is nothing to prune.
  bool empty() const { return keyspaces_.empty(); }

  /// What becomes of the put of value under key (the newest record of key
  /// in the merge). Keys must come in ascending order.
  Fate fate(std::string_view key, std::string_view value) {
    if (keyspaces_.empty()) return Fate::keep;
    const auto p = parse_collection_prefix(key);
    if (!p) return Fate::keep;
    const History* rule = nullptr;
    for (const auto& k : keyspaces_)
      if (k.id == p->id) rule = &k.rule;
    if (!rule) return Fate::keep;
    Reader r(key.substr(p->size));
    std::uint64_t len = 0;
    std::uint8_t flags = 0;
    std::uint64_t micros = 0;
    try {
      len = r.varint();
      Reader v(value);
      flags = v.u8();
      micros = v.varint();
    } catch (const CorruptionError&) {
      return Fate::keep;
    }
    const std::size_t head = p->size + r.position();
    if (len > key.size() - head || key.size() - head - len != kStampBytes || flags > kHistoryCut) return Fate::keep;
    const std::string_view group = key.substr(0, head + static_cast<std::size_t>(len));
    if (group != group_) {
      group_.assign(group);
      rank_ = 0;
      cut_ = false;
    }
    if (flags != kHistoryCut && history_keeps(*rule, ++rank_, micros, now_)) return Fate::keep;
    if (cut_) return Fate::drop;
    cut_ = true;
    return Fate::cut;
  }

 private:
  std::vector<Keyspace> keyspaces_;
  std::uint64_t now_ = 0;
  std::string group_;  // the key prefix whose entries are being ranked
  std::size_t rank_ = 0;
  bool cut_ = false;   // a cut marker was placed in the group
};

}  // namespace detail
}  // namespace stowage
