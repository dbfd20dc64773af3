// SPDX-License-Identifier: BSL-1.0
// change_feed.hpp: reading the change feed from WAL segments: the loop
// Engine::changes_since runs over the segments it picked, and ChangeReader,
// which follows a store that another process has open for writing.
//
// The feed is the WAL's records, in order: the live segments (wal-N.log)
// and the released ones kept for it (feed-N.log, Options::change_feed_bytes),
// numbered from one counter, each record a batch of ops with consecutive
// sequence numbers. A reader walks them from the oldest, skips the ops at or
// below the sequence it was given, and hands over the rest. An op after a
// missing sequence is a gap: before anything was handed over, the commits
// asked for were released (a ValidationError that names the oldest kept);
// after, the kept WAL lost a segment (a CorruptionError).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/collection_prefix.hpp"
#include "engine_handle.hpp"
#include "error.hpp"
#include "file.hpp"
#include "key_codec.hpp"
#include "manifest.hpp"
#include "serializer.hpp"
#include "wal.hpp"

namespace stowage {

/// One change a feed hands over (Collection::changes_since, ChangeReader):
/// a put of value under key, or an erase of key (value empty), committed as
/// `sequence`.
template <class Key, class Value>
struct Change {
  std::uint64_t sequence = 0;  ///< the commit's sequence number (Stats::last_sequence counts them)
  bool erased = false;         ///< an erase (handed over whether or not the key was there)
  Key key{};
  std::optional<Value> value;  ///< the value put; empty for an erase
  /// A put into a collection that expires records: when the record
  /// expires (Options::clock's time; the epoch: never). The feed hands the
  /// put over whether or not it has expired since.
  std::chrono::system_clock::time_point expires{};
};

namespace detail {

/// A put's value as the change feed reads it: split from its expiry time
/// when its collection expires records (rule) and the put came after
/// expiry began.
inline Expiring feed_value(const ExpiryRule* rule, std::uint64_t seq, std::string_view value) {
  if (rule == nullptr || seq <= rule->start) return {0, value};
  return split_expiry(value, nullptr);
}

/// An expiry time (us since the Unix epoch; 0: never) as a time point.
inline std::chrono::system_clock::time_point expiry_point(std::uint64_t micros) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::microseconds(micros)));
}

/// Where a feed read stands: the next sequence it must meet, and the
/// sequence it asked from (to tell a released start from a lost middle).
struct FeedPosition {
  std::uint64_t since = 0;
  std::uint64_t next = 1;   ///< the sequence the next op must have
  std::uint64_t last = ~std::uint64_t{0};  ///< ops after it are not handed over
  std::uint64_t seen = 0;  ///< the highest sequence of any op read, handed over or not
};

/// A gap inside the kept WAL (see the top of change_feed.hpp).
class FeedGap : public CorruptionError {
 public:
  using CorruptionError::CorruptionError;
};

/// The error for commits after since that are no longer kept.
inline ValidationError feed_released(const std::filesystem::path& dir, std::uint64_t since, std::uint64_t oldest) {
  return ValidationError("stowage: changes_since(" + std::to_string(since) +
                         "): the commits after it are no longer kept in the store at " + dir.string() +
                         (oldest ? " (the oldest kept is " + std::to_string(oldest) + ")" : std::string(" (none is)")) +
                         "; Options::change_feed_bytes keeps the WAL a flush releases");
}

/// Reads segment `number` from file, record by record, up to the first one
/// that is not whole (where a segment still being written ends), and hands
/// fn(sequence, erased, key without prefix, value) each op of pos's range
/// whose key starts with prefix. Throws as the top of this file says.
inline void read_feed_segment(const RandomAccessFile& file, std::uint64_t number, FeedPosition& pos,
                              std::string_view prefix, const std::filesystem::path& dir, const ChangeFn& fn) {
  const auto log_number = static_cast<std::uint32_t>(number);
  wal_detail::WindowReader reader(file, file.size());
  std::string_view record;
  std::uint64_t durable = 0;
  for (std::uint64_t at = 0; at < file.size() && pos.next <= pos.last;) {
    const std::uint64_t n = wal_detail::valid_record_in(reader, at, log_number, record, durable);
    if (n == 0) break;
    decode_wal_batch(record, file.path(), at, [&](const WalOp& op) {
      pos.seen = std::max(pos.seen, op.seq);
      if (op.seq < pos.next || op.seq > pos.last) return;
      if (op.seq > pos.next) {
        if (pos.next == pos.since + 1) throw feed_released(dir, pos.since, op.seq);
        throw FeedGap(file.path(), at,
                              "the WAL kept for the change feed misses the commits " + std::to_string(pos.next) +
                                  " to " + std::to_string(op.seq - 1));
      }
      ++pos.next;
      if (op.key.substr(0, prefix.size()) != prefix) return;
      fn(op.seq, op.kind == kOpErase, op.key.substr(prefix.size()), op.value);
    });
    at += n;
  }
}

/// Opens WAL segment n of dir as wal-n.log or, once a flush moved it,
/// feed-n.log; nullptr when neither is there (deleted).
inline std::unique_ptr<RandomAccessFile> open_feed_segment(FileSystem& fs, const std::filesystem::path& dir,
                                                          std::uint64_t n) {
  // A flush renames wal- to feed- at any time: wal- again after feed- misses.
  for (const auto& name : {wal_file_name(n), feed_file_name(n), wal_file_name(n)}) {
    try {
      return fs.open_read(dir / name);
    } catch (const IoError&) {
    }
  }
  return nullptr;
}

}  // namespace detail

/// Follows the change feed of one collection of a store that another
/// process may have open for writing (Collection::changes_since needs the
/// store open in this process, which a writer elsewhere prevents). Takes no
/// lock and writes nothing: it reads MANIFEST (to find the collection and
/// check its types) and the WAL files, as a follower keeping a replica does.
/// The feed reaches back as far as the writer keeps WAL
/// (Options::change_feed_bytes).
template <class Key, class Value, class Serializer = BinarySerializer>
class ChangeReader {
 public:
  /// A reader of collection `collection` ("default": a Storage's records)
  /// of the store in dir. Nothing is read before changes_since().
  explicit ChangeReader(std::filesystem::path dir, std::string collection = "default",
                        std::shared_ptr<FileSystem> file_system = nullptr)
      : dir_(std::move(dir)),
        collection_(std::move(collection)),
        fs_(file_system ? std::move(file_system) : default_file_system()) {}

  /// Calls fn(const Change<Key, Value>&) for every put and erase of the
  /// collection committed after `sequence` that the WAL holds now, in commit
  /// order, and returns the sequence of the last commit it read (`sequence`
  /// when none): pass it to the next call. Throws ValidationError when there
  /// is no store or no such collection, when commits after `sequence`
  /// are no longer kept, or when `sequence` is after the store's last
  /// commit (as Collection::changes_since does: the store lost commits a
  /// follower read, in a power cut before they were synced; once it commits
  /// past `sequence` again this can no longer be told); MigrationError when
  /// the collection's Key order or Serializer is not this reader's;
  /// CorruptionError on damaged files. Unless the collection expires
  /// records, one call's changes are held in memory and handed over at its
  /// end (after a second read of the MANIFEST: expiry may begin on the
  /// collection meanwhile, and puts after that carry times): a follower
  /// that calls it often holds little.
  template <class Fn>
  std::uint64_t changes_since(std::uint64_t sequence, Fn&& fn) {
    if (!detail::manifest_exists(*fs_, dir_)) throw ValidationError("stowage: no store at " + dir_.string() + " (no MANIFEST)");
    const detail::Manifest m = detail::read_manifest(*fs_, dir_);
    const std::string prefix = collection_prefix(m);
    std::optional<detail::ExpiryRule> rule = expiry_of(m, prefix);
    detail::FeedPosition pos;
    pos.since = sequence;
    pos.next = sequence + 1;
    auto deliver = [&](std::uint64_t seq, bool erased, std::string_view key, std::string_view value) {
      Change<Key, Value> c;
      c.sequence = seq;
      c.erased = erased;
      decode_key_into<Key>(key, c.key);
      if (!erased) {
        const detail::Expiring v = detail::feed_value(rule ? &*rule : nullptr, seq, value);
        c.value = Serializer::template deserialize<Value>(v.value);
        c.expires = detail::expiry_point(v.expires);
      }
      fn(static_cast<const Change<Key, Value>&>(c));
    };
    // Without expiry in the MANIFEST read first, the changes are kept and
    // handed over once the MANIFEST is read again: expiry may begin on the
    // collection meanwhile, and the puts after it carry times (the MANIFEST
    // that says so is written before the first of them).
    struct Held {
      std::uint64_t seq;
      bool erased;
      std::string key, value;
    };
    std::vector<Held> held;
    const ChangeFn take = [&](std::uint64_t seq, bool erased, std::string_view key, std::string_view value) {
      if (rule)
        deliver(seq, erased, key, value);
      else
        held.push_back(Held{seq, erased, std::string(key), std::string(value)});
    };
    // A listing taken while the writer renames a segment (wal- to feed-)
    // may show neither name: a gap is read again from where it stopped,
    // with a new listing, before it counts.
    for (int attempt = 1;; ++attempt) {
      try {
        read_all(prefix, pos, take);
        break;
      } catch (const detail::FeedGap&) {
        if (attempt == 3) throw;
      } catch (const ValidationError&) {  // released: or a listing that missed the oldest segment
        if (attempt == 3) throw;
      }
    }
    if (!held.empty()) {
      rule = expiry_of(detail::read_manifest(*fs_, dir_), prefix);
      for (const auto& h : held) deliver(h.seq, h.erased, h.key, h.value);
    }
    // The MANIFEST's commits are in chunk files only: asking from below it
    // and finding nothing means the WAL holding them is gone.
    if (pos.next == sequence + 1 && m.last_seq > sequence) throw detail::feed_released(dir_, sequence, 0);
    // A sequence after every commit the store holds was read from it before
    // it lost them (a power cut takes the WAL tail that was never synced),
    // and its next commits will take those numbers again. The MANIFEST is
    // read again first: a flush after the first read may have released the
    // WAL that held the last commits, and its MANIFEST counts them.
    if (pos.next == sequence + 1 && std::max(pos.seen, m.last_seq) < sequence) {
      const std::uint64_t last = std::max(pos.seen, detail::read_manifest(*fs_, dir_).last_seq);
      if (last < sequence)
        throw ValidationError("stowage: changes_since(" + std::to_string(sequence) + "): the last commit of the store at " +
                              dir_.string() + " is " + std::to_string(last) +
                              "; it lost commits that were read from it (a power cut loses what was not yet synced), "
                              "so what was built from them must be rebuilt");
    }
    return pos.next - 1;
  }

 private:
  // One pass over the segments the directory lists now.
  void read_all(const std::string& prefix, detail::FeedPosition& pos, const ChangeFn& fn) {
    // Every segment: the live ones, those a flush released that a close
    // left (below the MANIFEST's first needed one), and the feed files.
    std::vector<std::uint64_t> numbers;
    for (const auto& name : fs_->list(dir_)) {
      if (auto n = detail::parse_wal_file_name(name)) numbers.push_back(*n);
      if (auto n = detail::parse_feed_file_name(name)) numbers.push_back(*n);
    }
    std::sort(numbers.begin(), numbers.end());
    numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());
    for (auto n : numbers)
      if (auto file = detail::open_feed_segment(*fs_, dir_, n)) detail::read_feed_segment(*file, n, pos, prefix, dir_, fn);
  }

  // The expiry of the collection whose keys start with prefix, in m.
  static std::optional<detail::ExpiryRule> expiry_of(const detail::Manifest& m, const std::string& prefix) {
    if (m.layout != detail::Layout::prefixed) return std::nullopt;
    if (const auto p = detail::parse_collection_prefix(prefix))
      if (const auto* e = m.expiry(p->id)) return detail::ExpiryRule{e->expiry_ttl, e->expiry_start};
    return std::nullopt;
  }

  std::string collection_prefix(const detail::Manifest& m) const {
    const auto* ks = m.keyspace(detail::kDefaultKeyspace);
    std::string key_order, serializer = m.serializer;
    std::string prefix;
    if (collection_ == detail::kDefaultKeyspace) {
      if (ks) key_order = ks->key_order;
      if (m.layout == detail::Layout::prefixed) prefix = detail::collection_prefix(0);
    } else {
      const auto* c = m.collection(collection_);
      if (!c || m.layout != detail::Layout::prefixed)
        throw ValidationError("stowage: the store at " + dir_.string() + " has no collection '" + collection_ + "'");
      key_order = c->key_order;
      serializer = c->serializer;
      prefix = detail::collection_prefix(c->id);
    }
    if ((!key_order.empty() && key_order != KeyCodec<Key>::name()) || (!serializer.empty() && serializer != Serializer::id()))
      throw MigrationError("stowage: collection '" + collection_ + "' of the store at " + dir_.string() +
                           " holds keys in order " + key_order + " with serializer " + serializer +
                           "; this ChangeReader reads " + std::string(KeyCodec<Key>::name()) + " with " +
                           std::string(Serializer::id()));
    return prefix;
  }

  std::filesystem::path dir_;
  std::string collection_;
  std::shared_ptr<FileSystem> fs_;
};

}  // namespace stowage
