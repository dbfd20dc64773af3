// SPDX-License-Identifier: BSL-1.0
// offline.hpp (the `stowage` tool): reading and rewriting a store without
// its C++ types, from what its MANIFEST records.
//
//   StoreReader      a consistent read-only view of one keyspace: every chunk
//                    of every run opened at once (level-0 runs newest first,
//                    then levels 1 .. 6), and, for 'default', the live WAL
//                    replayed into an overlay. A scan merges the runs as a
//                    read does (detail::RunCursor, detail::merge_runs of
//                    verify.hpp): the newest record of a key wins, and a
//                    tombstone hides the older ones; the WAL overlay wins
//                    over all of them. Takes no lock: when a writer replaces
//                    MANIFEST while it opens, it opens again (open files stay
//                    readable after a writer deletes them). In salvage mode
//                    (repair) damaged chunks, blocks and WAL records are
//                    skipped and listed as lost ranges; an older record of a
//                    key whose newer record was in a lost block is read in
//                    its place (nothing tells the two apart any more).
//   write_chunks     sorted records into new chunk files of one run at the
//                    last level, as the engine's compaction writes them.
//   compact_store    the engine itself (Engine::compact(), opened with the
//                    MANIFEST's policies and types) merges every level of
//                    the 'default' keyspace into the last one, the WAL folded
//                    in; the tool rewrites no file itself.
//   append_records   records appended as WAL batches in a new segment, which
//                    the next open replays (what `load` does).
//   backup_store     hard links of the chunks and durable copies of MANIFEST
//                    and the live WAL, never LOCK.
//   repair_store     every record of every keyspace that still verifies, into
//                    a new store (one run at the last level per keyspace).
// Writers never write to a store another process holds: load, backup and
// repair take the store's LOCK first (detail::FileLock); compact opens the
// engine, which takes it.
//
// Keyspaces: a store's MANIFEST may name keyspaces besides 'default' (the one
// Storage reads and writes). The WAL and the engine serve 'default' only; the
// others' chunk files are kept as they are by every open. So dump and repair
// read every keyspace, backup copies them, compact leaves the others as they
// are (and says so), and load writes 'default' only (refusing any other).
//
// Collections (manifest format 5, docs/format.md "Collections"): a Database's
// collections all live in keyspace 'default' (its chunks and the WAL). In
// the prefixed layout each key starts with its collection's prefix
// (detail::collection_prefix(id); the default collection is id 0), so a
// collection is one contiguous key range: CollectionView gives its range and
// types (collections_of, require_collection), and dump and load add or strip
// the prefix. In the bare layout (a Storage's store) 'default' is the only
// collection and keys have no prefix. Repair and compact copy keys as they
// are, whichever collection they belong to; repair carries the layout, the
// collection table and the dropped ids over into the new MANIFEST.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <stowage/stowage.hpp>

namespace stowage::tool {

/// Records a repair could not save: where, why, and between which keys.
struct LostRange {
  std::string keyspace;               ///< the keyspace the records belonged to
  std::filesystem::path file;         ///< the damaged file
  std::uint64_t offset = 0;           ///< where the damage starts in it
  std::string what;                   ///< "chunk", "block 3", "WAL records"
  std::string error;                  ///< the CorruptionError's message
  std::optional<std::string> first;   ///< encoded key: the first lost key, when known (a whole chunk)
  std::optional<std::string> last;    ///< encoded key: the last lost key, when known (a whole chunk)
  std::optional<std::string> after;   ///< else: lost keys are above this one (nullopt: from the start)
  std::optional<std::string> before;  ///< else: lost keys are below this one (nullopt: to the end)
  std::uint64_t records = 0;          ///< records known lost (0: not known)
};

/// Progress reporting: (bytes done, bytes in all).
using ProgressFn = std::function<void(std::uint64_t, std::uint64_t)>;

namespace offline_detail {

/// The largest chunk or WAL file number in dir (0 when none).
inline std::uint64_t max_file_number(FileSystem& fs, const std::filesystem::path& dir) {
  const auto l = detail::list_store(fs, dir);
  std::uint64_t n = 0;
  if (!l.chunks.empty()) n = std::max(n, l.chunks.back());
  if (!l.wal.empty()) n = std::max(n, l.wal.back());
  return n;
}

/// Refuses stores in an older format than this program writes: a writable
/// open migrates them (after a backup), which the tool leaves to the program
/// that owns the store.
inline void require_current_format(const detail::Manifest& m, const std::filesystem::path& dir, const char* command) {
  if (m.format_major != detail::kFormatMajor)
    throw MigrationError("stowage: " + dir.string() + " is in format " + std::to_string(m.format_major) + "; `" +
                         command + "` needs format " + std::to_string(detail::kFormatMajor) +
                         ": open it once with a writable Storage (which migrates it, after a backup) first");
}

/// The keyspace called name, or a ValidationError naming the ones there are.
inline const detail::KeyspaceState& require_keyspace(const detail::Manifest& m, const std::filesystem::path& dir,
                                                     std::string_view name) {
  if (const auto* ks = m.keyspace(name)) return *ks;
  std::string names;
  for (const auto& ks : m.keyspaces) names += (names.empty() ? "'" : ", '") + ks.name + "'";
  throw ValidationError("stowage: " + dir.string() + " holds no keyspace '" + std::string(name) + "' (it holds " +
                        (names.empty() ? std::string("none") : names) + ")");
}

/// Lower-case hex of bytes, for messages.
inline std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

/// Marks the secondary indexes of m's collection table not ready, so that
/// each is rebuilt from its collection when next declared: every index, or
/// (parent set) those of collection id *parent. Returns how many.
inline std::size_t mark_indexes_not_ready(detail::Manifest& m, std::optional<std::uint32_t> parent = std::nullopt) {
  std::size_t n = 0;
  for (auto& c : m.collections)
    if (c.is_index() && (!parent || c.parent == *parent)) {
      c.ready = false;
      ++n;
    }
  return n;
}

/// Calls fn(std::type_identity<Compression>{}) with the built-in policy of id.
template <class Fn>
decltype(auto) with_compression(std::uint8_t id, const std::filesystem::path& dir, Fn&& fn) {
  if (id == NoCompression::id) return fn(std::type_identity<NoCompression>{});
  if (id == Lz4Compression::id) return fn(std::type_identity<Lz4Compression>{});
  throw ValidationError("stowage: " + dir.string() + " was written with a user compression policy (id " +
                        std::to_string(id) + "); the tool reads and writes only lz4 and none");
}

}  // namespace offline_detail

/// One collection of a store as the tool reads it (docs/format.md,
/// "Collections"): the default collection (id 0: Storage's, the `default`
/// keyspace's types and the store's serializer) and, in the prefixed
/// layout, a Database's named ones. All of them live in keyspace 'default'.
struct CollectionView {
  std::string name;                  ///< "default" for id 0
  std::uint32_t id = 0;              ///< 0 for the default collection
  std::string prefix;                ///< the bytes every key of it starts with (empty in a bare store)
  std::string key_order;             ///< KeyCodec<Key>::name() (empty: no types yet)
  std::string serializer;            ///< Serializer::id() (empty: no types yet)
  std::string value_type;            ///< describe_value<Serializer, Value>() (empty: unknown)
  std::uint32_t schema_version = 0;  ///< value_version<Value>

  /// The first encoded key of its range in keyspace 'default' (nullopt: unbounded).
  std::optional<std::string> range_begin() const {
    if (prefix.empty()) return std::nullopt;
    return prefix;
  }
  /// The encoded key its range ends before (nullopt: unbounded).
  std::optional<std::string> range_end() const {
    if (prefix.empty()) return std::nullopt;
    return prefix_end(prefix);
  }
};

/// The collections of the store m describes: the default one first, then
/// the named ones by id (none in a bare store).
inline std::vector<CollectionView> collections_of(const detail::Manifest& m) {
  std::vector<CollectionView> out;
  CollectionView d;
  d.name = std::string(detail::kDefaultKeyspace);
  if (m.layout == detail::Layout::prefixed) d.prefix = detail::collection_prefix(0);
  if (const auto* ks = m.keyspace(detail::kDefaultKeyspace)) {
    d.key_order = ks->key_order;
    d.value_type = ks->value_type;
    d.schema_version = ks->schema_version;
  }
  d.serializer = m.serializer;
  out.push_back(std::move(d));
  if (m.layout != detail::Layout::prefixed) return out;
  for (const auto& c : m.collections)
    if (c.is_table())
      out.push_back({c.name, c.id, detail::collection_prefix(c.id), c.key_order, c.serializer, c.value_type,
                     c.schema_version});
  return out;
}

/// A secondary index of a collection, as the collection table lists it
/// (its entries' keys start with its own prefix).
struct IndexView {
  std::string name;
  std::uint32_t id = 0;
  std::string collection;    ///< the name of the collection it indexes
  std::string key_order;     ///< of its index keys
  bool unique = false;       ///< at most one record per index key
  std::uint32_t version = 0; ///< the definition version its user gave
  bool ready = true;         ///< false: being built, or stale (rebuilt when next declared)
};

/// The secondary indexes of the store m describes, by id.
inline std::vector<IndexView> indexes_of(const detail::Manifest& m) {
  std::vector<IndexView> out;
  if (m.layout != detail::Layout::prefixed) return out;
  const auto tables = collections_of(m);
  for (const auto& c : m.collections) {
    if (!c.is_index()) continue;
    IndexView v{c.name, c.id, "", c.key_order, c.kind == detail::CollectionKind::unique_index, c.index_version,
                c.ready};
    for (const auto& t : tables)
      if (t.id == c.parent) v.collection = t.name;
    out.push_back(std::move(v));
  }
  return out;
}

/// "'default', 'a', 'b'": the names of the store's collections.
inline std::string collection_names(const detail::Manifest& m) {
  std::string names;
  for (const auto& c : collections_of(m)) names += (names.empty() ? "'" : ", '") + c.name + "'";
  return names;
}

/// The collection called name, or a ValidationError naming the ones there are.
inline CollectionView require_collection(const detail::Manifest& m, const std::filesystem::path& dir,
                                         std::string_view name) {
  for (auto& c : collections_of(m))
    if (c.name == name) return c;
  if (m.layout != detail::Layout::prefixed)
    throw ValidationError("stowage: " + dir.string() + " holds no collection '" + std::string(name) +
                          "': it keeps one collection, 'default' (the bare layout a Storage writes; a Database "
                          "converts it when it opens it)");
  throw ValidationError("stowage: " + dir.string() + " holds no collection '" + std::string(name) +
                        "' (it holds " + collection_names(m) + ")");
}

/// The collection an encoded key of keyspace 'default' belongs to, with its
/// prefix's size; nullopt when its prefix does not parse or names no
/// collection in the table (an index's, or a dropped one's not purged yet:
/// owner_of_key says which).
inline std::optional<std::pair<CollectionView, std::size_t>> collection_of_key(const detail::Manifest& m,
                                                                                std::string_view key) {
  if (m.layout != detail::Layout::prefixed) return std::pair{collections_of(m).front(), std::size_t{0}};
  const auto p = detail::parse_collection_prefix(key);
  if (!p) return std::nullopt;
  for (auto& c : collections_of(m))
    if (c.id == p->id) return std::pair{std::move(c), p->size};
  return std::nullopt;
}

/// What owns an encoded key of keyspace 'default' that is no collection's
/// record (collection_of_key found none), for messages: "index 'by_email'
/// of collection 'a'", "dropped collection id 4", "no collection".
inline std::string owner_of_key(const detail::Manifest& m, std::string_view key) {
  const auto p = detail::parse_collection_prefix(key);
  if (m.layout != detail::Layout::prefixed || !p) return "no collection";
  for (const auto& i : indexes_of(m))
    if (i.id == p->id) return "index '" + i.name + "' of collection '" + i.collection + "'";
  if (std::find(m.dropped.begin(), m.dropped.end(), p->id) != m.dropped.end())
    return "dropped collection id " + std::to_string(p->id);
  return "no collection";
}

/// WAL records of a store of the prefixed layout that hold a key of no
/// collection: one whose prefix does not parse, or names an id at or above
/// the next collection id. An open refuses such a record (CorruptionError
/// "WAL record holds a key of no collection"), and stowage::verify does not
/// look at keys, so `stowage verify` adds these. One problem per record;
/// records that do not decode are skipped (verify lists those). Takes no
/// lock: the WAL is read before MANIFEST is read again, so a collection a
/// writer creates meanwhile (its MANIFEST comes before its first record) is
/// in the table its keys are checked against. Nothing for a bare store.
inline std::vector<StoreProblem> wal_keys_of_no_collection(FileSystem& fs, const std::filesystem::path& dir) {
  const detail::Manifest before = detail::read_manifest(fs, dir);
  if (before.layout != detail::Layout::prefixed) return {};
  struct Suspect {
    std::uint64_t segment;
    std::filesystem::path path;
    std::uint64_t offset;
    std::optional<std::uint32_t> id;  // nullopt: no prefix parses
    std::string key;
  };
  std::vector<Suspect> suspects;
  for (auto n : detail::list_store(fs, dir).wal) {
    if (n < before.wal_start) continue;
    const auto path = dir / detail::wal_file_name(n);
    try {
      detail::replay_wal(fs, path, n, [&](std::string_view payload, std::uint64_t offset) {
        bool found = false;
        detail::decode_wal_batch(payload, path, offset, [&](const detail::WalOp& op) {
          if (found) return;
          const auto p = detail::parse_collection_prefix(op.key);
          if (p && p->id < before.next_collection_id) return;
          found = true;
          suspects.push_back({n, path, offset, p ? std::optional<std::uint32_t>(p->id) : std::nullopt,
                              std::string(op.key.substr(0, 8))});
        });
      });
    } catch (const Error&) {
      // Damage (verify lists it), or a segment a writer deleted meanwhile.
    }
  }
  if (suspects.empty()) return {};
  const detail::Manifest after = detail::read_manifest(fs, dir);
  std::vector<StoreProblem> out;
  for (const auto& s : suspects) {
    if (s.segment < after.wal_start || (s.id && *s.id < after.next_collection_id)) continue;
    out.push_back({s.path, s.offset,
                   "WAL record holds a key of no collection (it starts with bytes " + offline_detail::hex(s.key) +
                       (s.id ? ", the prefix of collection id " + std::to_string(*s.id) + ", but ids end before " +
                                   std::to_string(after.next_collection_id)
                             : std::string(", which are no collection's prefix")) +
                       "): an open refuses this segment"});
  }
  return out;
}

/// A consistent read-only view of one keyspace of a store (see the top of
/// this file).
class StoreReader {
 public:
  using Table = detail::ChunkTable<Lz4Compression>;  // reads lz4 and uncompressed chunks alike

  /// Opens keyspace `keyspace` of the store at dir through fs. salvage: skip
  /// and list damage instead of throwing CorruptionError.
  StoreReader(FileSystem& fs, std::filesystem::path dir, std::string keyspace = std::string(detail::kDefaultKeyspace),
              bool salvage = false)
      : fs_(&fs), dir_(std::move(dir)), name_(std::move(keyspace)) {
    std::string before = detail::read_manifest_bytes(fs, dir_);
    for (int pass = 0;; ++pass) {
      load(before, salvage);
      std::string after = detail::read_manifest_bytes(fs, dir_);
      if (after == before || pass >= 4) break;
      before = std::move(after);
    }
  }

  /// The MANIFEST this view was opened from.
  const detail::Manifest& manifest() const { return manifest_; }
  /// The keyspace read.
  const detail::KeyspaceState& keyspace() const { return *manifest_.keyspace(name_); }
  /// The sequence number of the last operation, the WAL's included.
  std::uint64_t last_seq() const { return last_seq_; }
  /// Puts and erases replayed from the WAL ('default' only; else 0).
  std::uint64_t wal_operations() const { return wal_ops_; }
  /// Keys whose last WAL operation is a put: each adds at most one live record.
  std::uint64_t wal_puts() const {
    return static_cast<std::uint64_t>(std::count_if(overlay_.begin(), overlay_.end(), [](const auto& e) { return e.second.has_value(); }));
  }
  /// Keys whose last WAL operation is an erase: each removes at most one.
  std::uint64_t wal_erases() const { return overlay_.size() - wal_puts(); }
  /// Exactly what the WAL changes in the live count: each key it puts that
  /// the chunks do not hold adds one, each key it erases that they hold
  /// removes one (every WAL key is looked up in the runs, newest first).
  std::int64_t wal_live_delta() const {
    std::int64_t delta = 0;
    for (const auto& [key, value] : overlay_) {
      const bool below = in_chunks(key);
      if (value && !below) ++delta;
      if (!value && below) --delta;
    }
    return delta;
  }
  /// What the chunks' uncounted records add to the MANIFEST's live count
  /// (docs/format.md, "The live count"): each its put, less the put it hides
  /// (the key looked up in the runs older than its own).
  std::int64_t uncounted_part() const {
    std::int64_t part = 0;
    for (std::size_t r = 0; r < runs_.size(); ++r)
      for (const auto& f : runs_[r]) {
        if (f.ref.uncounted == 0 || !f.table) continue;
        for (std::size_t b = 0; b < f.table->block_count(); ++b) {
          const auto block = f.table->read_block(b);
          for (std::size_t i = 0; i < block->size(); ++i)
            if (block->uncounted(i)) part += (block->tombstone(i) ? 0 : 1) - (in_chunks(block->key(i), r + 1) ? 1 : 0);
        }
      }
    return part;
  }
  /// Whether the chunks (the runs from `first_run` on, newest first) hold a
  /// put of key (its newest record there is not a tombstone).
  bool in_chunks(std::string_view key, std::size_t first_run = 0) const {
    for (std::size_t r = first_run; r < runs_.size(); ++r) {
      const auto& run = runs_[r];
      auto it = std::lower_bound(run.begin(), run.end(), key,
                                 [](const File& f, std::string_view k) { return std::string_view(f.ref.last_key) < k; });
      if (it == run.end() || key < std::string_view(it->ref.first_key) || !it->table) continue;
      if (!it->table->may_contain(key)) continue;
      const std::size_t b = it->table->find_block(key);
      if (b >= it->table->block_count()) continue;
      const auto block = it->table->read_block(b);
      const std::size_t i = block->lower_bound(key);
      if (i < block->size() && block->key(i) == key) return !block->tombstone(i);
    }
    return false;
  }
  /// Bytes of the chunks a full scan reads.
  std::uint64_t chunk_bytes() const { return chunk_bytes_; }
  /// What salvage mode skipped (filled while opening, and by scan()).
  const std::vector<LostRange>& lost() const { return lost_; }
  /// The last live WAL segment's number and what replaying it found, if any.
  const std::optional<std::pair<std::uint64_t, detail::WalReplay>>& last_segment() const { return last_segment_; }
  /// Live WAL segments after the one where a power cut ended the log (see
  /// judge_wal_end): their records were never synced, and an open deletes
  /// them.
  const std::vector<std::uint64_t>& dropped_segments() const { return dropped_wal_; }

  /// Calls fn(key, value) -> bool for every live record with from <= key < to
  /// (encoded keys; nullopt: unbounded) in key order, until fn returns false.
  void scan(const std::optional<std::string>& from, const std::optional<std::string>& to,
            const std::function<bool(std::string_view, std::string_view)>& fn, const ProgressFn& progress = {}) {
    using Cursor = detail::RunCursor<Lz4Compression>;
    auto ov = from ? overlay_.lower_bound(*from) : overlay_.begin();
    bool stop = false;
    std::uint64_t done = 0;
    auto past_end = [&](std::string_view k) { return to && !(k < std::string_view(*to)); };
    // Emits overlay records below `bound` (all when bound is null).
    auto drain = [&](const std::string_view* bound) {
      while (!stop && ov != overlay_.end() && (!bound || std::string_view(ov->first) < *bound)) {
        if (past_end(ov->first)) {
          stop = true;
          return;
        }
        if (ov->second) stop = !fn(ov->first, *ov->second);
        ++ov;
      }
    };

    // One cursor per run, newest first. In salvage mode a lost block is
    // listed with the keys around it in its own run: the last key read
    // before it, and the first one read after it (filled in when read).
    std::vector<Cursor> cursors;
    cursors.reserve(runs_.size());
    std::vector<std::vector<std::size_t>> open_losses(runs_.size());  // per run: lost_ entries waiting for `before`
    for (std::size_t r = 0; r < runs_.size(); ++r) {
      std::vector<Cursor::File> files;
      for (const auto& c : runs_[r]) files.push_back({c.ref, c.path, c.table, c.table == nullptr});
      // Per file: records read from blocks, and its losses (for the count of records lost).
      auto read = std::make_shared<std::vector<std::uint64_t>>(files.size(), 0);
      auto losses = std::make_shared<std::vector<std::vector<std::size_t>>>(files.size());
      Cursor::Hooks hooks;
      hooks.block_read = [this, r, read, &open_losses](std::size_t f, std::size_t, const detail::Block& b) {
        (*read)[f] += b.size();
        for (auto i : open_losses[r]) lost_[i].before = std::string(b.key(0));
        open_losses[r].clear();
      };
      if (salvage_) {
        hooks.block_failed = [this, r, losses, &cursors, &open_losses](std::size_t f, std::size_t b, const Error& e) {
          const auto& file = runs_[r][f];
          lost_.push_back({name_, file.path, detail::error_offset(e), "block " + std::to_string(b), e.what(), {}, {},
                           cursors[r].last_read(), {}, 0});
          open_losses[r].push_back(lost_.size() - 1);
          (*losses)[f].push_back(lost_.size() - 1);
        };
      }
      hooks.file_done = [this, r, read, losses, &from, &done, &progress](std::size_t f, const Table&) {
        const auto& file = runs_[r][f];
        // One lost block in a file read whole: its records are the ones missing.
        if ((*losses)[f].size() == 1 && !from) lost_[(*losses)[f][0]].records = file.ref.records - (*read)[f];
        done += file.ref.bytes;
        if (progress) progress(done, chunk_bytes_);
      };
      cursors.emplace_back(*fs_, std::move(files), std::move(hooks));
    }
    std::vector<Cursor*> runs;
    for (auto& c : cursors) runs.push_back(&c);
    for (auto* c : runs) c->seek(from ? std::optional<std::string_view>(*from) : std::nullopt);

    detail::merge_runs(runs, [&](std::string_view key, const std::vector<Cursor*>& holders) {
      if (past_end(key)) {
        drain(nullptr);  // the WAL's records below `to` after the last chunk key below it
        stop = true;
        return false;
      }
      drain(&key);
      if (stop) return false;
      if (ov != overlay_.end() && ov->first == key) {  // the WAL is newer than every chunk
        if (ov->second) stop = !fn(key, *ov->second);
        ++ov;
      } else if (!holders[0]->tombstone()) {
        stop = !fn(key, holders[0]->value());
      }
      return !stop;
    });
    if (!stop) drain(nullptr);
  }

 private:
  struct File {
    detail::ChunkRef ref;
    std::filesystem::path path;
    std::shared_ptr<Table> table;  // null: lost (salvage)
  };

  void load(const std::string& manifest_bytes, bool salvage) {
    salvage_ = salvage;
    runs_.clear();
    overlay_.clear();
    lost_.clear();
    wal_ops_ = 0;
    chunk_bytes_ = 0;
    last_segment_.reset();
    dropped_wal_.clear();
    manifest_ = detail::decode_manifest(manifest_bytes, dir_ / "MANIFEST");
    const auto& ks = offline_detail::require_keyspace(manifest_, dir_, name_);
    offline_detail::with_compression(manifest_.compression_id, dir_, [](auto) { return 0; });
    for (const auto& run : detail::runs_of(ks.chunks)) {
      runs_.emplace_back();
      for (std::size_t i : run) {
        const detail::ChunkRef& ref = ks.chunks[i];
        File c{ref, dir_ / detail::chunk_file_name(ref.file), nullptr};
        try {
          c.table = Table::open(*fs_, c.path);
          if (c.table->records() != ref.records || c.table->first_key() != ref.first_key ||
              c.table->last_key() != ref.last_key)
            throw CorruptionError(c.path, 0, "the chunk differs from the MANIFEST's entry for it");
        } catch (const Error& e) {
          if (!salvage) throw;
          c.table.reset();
          lost_.push_back({name_, c.path, detail::error_offset(e), "chunk", e.what(), ref.first_key, ref.last_key, {},
                           {}, ref.records});
        }
        chunk_bytes_ += ref.bytes;
        runs_.back().push_back(std::move(c));
      }
    }
    // The live WAL, in order, into the overlay: it holds 'default' records only.
    last_seq_ = manifest_.last_seq;
    if (name_ != detail::kDefaultKeyspace) return;
    std::vector<std::uint64_t> live;
    for (auto n : detail::list_store(*fs_, dir_).wal)
      if (n >= manifest_.wal_start) live.push_back(n);
    for (std::size_t i = 0; i < live.size(); ++i) {
      const std::uint64_t n = live[i];
      const auto path = dir_ / detail::wal_file_name(n);
      try {
        auto r = detail::replay_wal(*fs_, path, n, [&](std::string_view payload, std::uint64_t offset) {
          detail::decode_wal_batch(payload, path, offset, [&](const detail::WalOp& op) {
            ++wal_ops_;
            last_seq_ = std::max(last_seq_, op.seq);
            if (op.kind == detail::kOpErase)
              overlay_.insert_or_assign(std::string(op.key), std::nullopt);
            else
              overlay_.insert_or_assign(std::string(op.key), std::string(op.value));
          });
        });
        last_segment_ = std::pair{n, r};
        if (i + 1 < live.size() && !r.sealed()) {
          // Frozen, then a crash before its seal: whole, or the log ends here
          // (the later segments hold only records never synced).
          std::vector<detail::WalReplay> later;
          for (std::size_t j = i + 1; j < live.size(); ++j)
            later.push_back(detail::replay_wal(*fs_, dir_ / detail::wal_file_name(live[j]), live[j],
                                               [](std::string_view, std::uint64_t) {}));
          if (detail::judge_wal_end(path, r, last_seq_ + 1, later) == detail::WalEnd::cut) {
            dropped_wal_.assign(live.begin() + static_cast<std::ptrdiff_t>(i) + 1, live.end());
            break;
          }
        }
      } catch (const CorruptionError& e) {
        if (!salvage) throw;
        lost_.push_back({name_, path, e.offset(), "WAL records", e.what(), {}, {}, {}, {}, 0});
        last_segment_.reset();
      }
    }
  }

  FileSystem* fs_;
  std::filesystem::path dir_;
  std::string name_;
  bool salvage_ = false;
  detail::Manifest manifest_;
  std::vector<std::vector<File>> runs_;  // newest first, each in key order
  std::map<std::string, std::optional<std::string>, std::less<>> overlay_;  // WAL: nullopt = erased
  std::vector<LostRange> lost_;
  std::uint64_t last_seq_ = 0, wal_ops_ = 0, chunk_bytes_ = 0;
  std::optional<std::pair<std::uint64_t, detail::WalReplay>> last_segment_;
  std::vector<std::uint64_t> dropped_wal_;
};

/// Decoded and stored bytes of a chunk's data blocks, from their frame
/// headers alone (no block is read or verified): for a compression ratio.
struct BlockBytes {
  std::uint64_t raw = 0;     ///< bytes of the blocks once decoded
  std::uint64_t stored = 0;  ///< bytes of their frames in the file
  std::uint64_t blocks = 0;  ///< data blocks
};

/// Walks the frame headers of the chunk at path, from the first data block to
/// the meta block the footer names. CorruptionError when they do not tile.
inline BlockBytes chunk_block_bytes(FileSystem& fs, const std::filesystem::path& path) {
  namespace cf = detail::chunk_format;
  auto f = fs.open_read(path);
  const std::uint64_t size = f->size();
  if (size < cf::kMinFileBytes) throw CorruptionError(path, 0, "too short for a chunk file");
  char footer[cf::kFooterBytes];
  if (f->read(size - cf::kFooterBytes, sizeof footer, footer) != sizeof footer)
    throw CorruptionError(path, size - cf::kFooterBytes, "short read of the footer");
  const std::uint64_t meta = detail::decode_fixed64(footer);
  if (meta < cf::kHeaderBytes || meta > size - cf::kFooterBytes) throw CorruptionError(path, size - 32, "bad meta offset");
  BlockBytes out;
  for (std::uint64_t at = cf::kHeaderBytes; at < meta;) {
    char head[cf::kFrameHeadBytes];
    if (meta - at < sizeof head || f->read(at, sizeof head, head) != sizeof head)
      throw CorruptionError(path, at, "data block frame runs past the meta block");
    const std::uint64_t stored = detail::decode_fixed32(head + 5);
    out.raw += detail::decode_fixed32(head + 1);
    out.stored += cf::kFrameHeadBytes + stored;
    ++out.blocks;
    at += cf::kFrameHeadBytes + stored;
    if (at > meta) throw CorruptionError(path, at, "data block frame runs past the meta block");
  }
  return out;
}

/// Chunk files written by write_chunks: their MANIFEST entries.
struct WrittenChunks {
  std::vector<detail::ChunkRef> chunks;  ///< in key order
  std::uint64_t next_file = 0;           ///< the number after the last file written
  std::uint64_t records = 0;             ///< records written
  std::uint64_t bytes = 0;               ///< bytes of the files
};

/// Writes the records `source(emit)` emits (emit(key, value), keys strictly
/// ascending, puts only) into chunk files numbered from first_file in dir,
/// with the store's compression (by id), cut at chunk_bytes of records: one
/// run at the last level (level kLastLevel, run 0), where nothing lies below,
/// with sequence 0, as the engine's compaction into the last level writes
/// them. Each file is synced (the caller syncs dir).
inline WrittenChunks write_chunks(FileSystem& fs, const std::filesystem::path& dir, std::uint8_t compression_id,
                                  std::uint64_t first_file,
                                  const std::function<void(const std::function<void(std::string_view, std::string_view)>&)>& source,
                                  std::uint64_t chunk_bytes = std::uint64_t{4} << 20, std::size_t block_bytes = 4096) {
  return offline_detail::with_compression(compression_id, dir, [&]<class C>(std::type_identity<C>) {
    WrittenChunks out;
    out.next_file = first_file;
    std::unique_ptr<detail::ChunkWriter<C>> w;
    std::uint64_t number = 0;
    auto finish = [&] {
      const detail::ChunkInfo info = w->finish();
      detail::ChunkRef ref{number, info.records, info.file_bytes, info.max_seq, info.first_key, info.last_key};
      ref.level = detail::kLastLevel;
      ref.run = 0;
      out.chunks.push_back(std::move(ref));
      out.records += info.records;
      out.bytes += info.file_bytes;
      w.reset();
    };
    source([&](std::string_view key, std::string_view value) {
      if (!w) {
        number = out.next_file++;
        w = std::make_unique<detail::ChunkWriter<C>>(fs, dir / detail::chunk_file_name(number), block_bytes);
      }
      w->add(key, 0, value);
      if (w->raw_bytes() >= chunk_bytes) finish();
    });
    if (w) finish();
    return out;
  });
}

/// What compact_store did.
struct CompactResult {
  std::uint64_t records = 0;                        ///< live records of 'default' after it (exact)
  std::uint64_t bytes_before = 0, bytes_after = 0;  ///< chunk + live WAL + MANIFEST bytes
  std::uint64_t files_before = 0, files_after = 0;  ///< chunk + live WAL files
  unsigned levels_before = 0, levels_after = 0;     ///< levels of 'default' holding files
  std::vector<std::string> kept;                    ///< other keyspaces, left as they are
};

/// Compacts the store at dir with the engine: opens it (taking its LOCK:
/// LockError when another process holds it) with the policies and types its
/// MANIFEST names, calls Engine::compact() (the WAL folded in, every level of
/// 'default' merged into the last, overwritten records and tombstones
/// dropped) and closes it. Other keyspaces' chunks stay as they are (the
/// engine serves 'default' only). progress gets (bytes compaction wrote,
/// bytes of chunks and WAL before); it may pass 100% before the end.
inline CompactResult compact_store(const std::filesystem::path& dir, const ProgressFn& progress = {}) {
  auto fs = default_file_system();
  // Read without the lock, to choose the engine's policies and types; the
  // engine checks them against the MANIFEST it reads under the lock.
  const detail::Manifest m = detail::read_manifest(*fs, dir);
  offline_detail::require_current_format(m, dir, "compact");
  const auto& ks = offline_detail::require_keyspace(m, dir, detail::kDefaultKeyspace);
  RecordTypes types;
  types.serializer = m.serializer;
  types.key_order = ks.key_order;
  types.value_type = ks.value_type;
  types.value_version = ks.schema_version;
  Options options;
  options.create_if_missing = false;
  options.auto_compaction = false;  // compact() does it all, in the calling thread
  options.lock_timeout = std::chrono::milliseconds(0);  // a held store: exit at once, as the other commands do
  return offline_detail::with_compression(m.compression_id, dir, [&]<class C>(std::type_identity<C>) {
    auto count = [&](const StoreInfo& info, std::uint64_t& files, std::uint64_t& bytes, unsigned& levels) {
      files = 0;
      for (const auto& k : info.keyspaces) files += k.chunks.size();
      for (const auto& w : info.wal) files += w.live ? 1 : 0;
      bytes = info.disk_bytes;
      const auto* d = info.keyspace(detail::kDefaultKeyspace);
      levels = d ? d->level_count() : 0;
    };
    CompactResult res;
    // Before the open (which starts a WAL segment of its own); a writer
    // holding the store makes the open below fail with LockError anyway.
    const StoreInfo before = inspect(dir);
    count(before, res.files_before, res.bytes_before, res.levels_before);
    Engine<C, LruEviction, ThreadLock> engine(dir, options, types, nullptr, ks.schema_version, false);
    for (const auto& k : before.keyspaces)
      if (k.name != detail::kDefaultKeyspace) res.kept.push_back(k.name);
    {
      // A progress display from the engine's counters, polled.
      std::mutex mu;
      std::condition_variable cv;
      bool finished = false;
      std::thread poll;
      if (progress) {
        const std::uint64_t total = before.chunk_bytes + before.wal_bytes;
        // total by value: the thread outlives this block.
        poll = std::thread([&, total] {
          std::unique_lock g(mu);
          while (!cv.wait_for(g, std::chrono::milliseconds(100), [&] { return finished; })) {
            g.unlock();
            try {
              progress(std::min(engine.stats().bytes_compacted, total), total);
            } catch (...) {
            }
            g.lock();
          }
        });
      }
      auto stop_poll = [&] {
        if (!poll.joinable()) return;
        {
          std::lock_guard g(mu);
          finished = true;
        }
        cv.notify_all();
        poll.join();
      };
      try {
        engine.compact();
        res.records = engine.size();
      } catch (...) {
        stop_poll();
        throw;
      }
      stop_poll();
    }
    engine.close();
    count(inspect(dir), res.files_after, res.bytes_after, res.levels_after);
    return res;
  });
}

/// Appends (key, value-or-erase) operations to the 'default' keyspace of the
/// store at dir (whose LOCK the caller holds; keys as stored: in the
/// prefixed layout each after its collection's prefix, which is checked, as
/// an open's replay checks it) as WAL batches of at most
/// batch_ops operations in one new segment, synced; the next open replays
/// them. The previous last segment's zero or torn tail is cut first, as an
/// open would, since a segment now follows it. Returns the first and last
/// sequence numbers used.
inline std::pair<std::uint64_t, std::uint64_t> append_records(
    FileSystem& fs, const std::filesystem::path& dir,
    const std::vector<std::pair<std::string, std::optional<std::string>>>& ops, std::size_t batch_ops = 1000) {
  StoreReader reader(fs, dir);
  offline_detail::require_current_format(reader.manifest(), dir, "load");
  for (const auto& [k, v] : ops)
    if (k.size() > kMaxKeyBytes || (v && v->size() > kMaxValueBytes))
      throw ValidationError("stowage: a key over 64 KiB or a value over 1 GiB encoded cannot be stored");
  if (reader.manifest().layout == detail::Layout::prefixed)
    for (const auto& op : ops) {
      const auto p = detail::parse_collection_prefix(op.first);
      if (!p || p->id >= reader.manifest().next_collection_id)
        throw ValidationError("stowage: a key of no collection (" + offline_detail::hex(op.first) +
                              ") cannot be stored in " + dir.string() + ", which keeps keys after their "
                              "collection's prefix");
    }
  if (const auto& last = reader.last_segment()) {
    const auto& [n, r] = *last;
    if (r.cut_bytes > 0 || r.zero_bytes > 0) {
      const auto path = dir / detail::wal_file_name(n);
      fs.truncate(path, r.valid_bytes);
      fs.open_append(path)->sync();
    }
  }
  // As an open would: the log ended before them, so records after them
  // would never replay.
  for (auto n : reader.dropped_segments()) fs.remove(dir / detail::wal_file_name(n));
  if (!reader.dropped_segments().empty()) fs.sync_dir(dir);
  const std::uint64_t number = std::max(reader.manifest().next_file, offline_detail::max_file_number(fs, dir) + 1);
  detail::WalWriter w(fs, dir, number, 0);
  std::uint64_t seq = reader.last_seq() + 1;
  const std::uint64_t first = seq;
  for (std::size_t i = 0; i < ops.size();) {
    detail::WalBatch batch(seq);
    for (std::size_t end = std::min(ops.size(), i + batch_ops); i < end; ++i) {
      if (ops[i].second)
        batch.put(ops[i].first, *ops[i].second);
      else
        batch.erase(ops[i].first);
    }
    seq += batch.count();
    w.append(batch.finish());
  }
  w.sync();
  w.seal();
  w.close();
  return {first, seq - 1};
}

/// Before the tool writes records of collection id `collection` into the
/// store at dir (whose LOCK the caller holds) past the engine, which keeps
/// its secondary indexes in step with each write: a new MANIFEST marks
/// those indexes not ready, so each is rebuilt from the collection when a
/// program next declares it (a crash after this leaves them rebuilt
/// needlessly, never stale). Returns how many were marked (none: MANIFEST
/// unchanged).
inline std::size_t mark_indexes_stale(FileSystem& fs, const std::filesystem::path& dir, std::uint32_t collection) {
  detail::Manifest m = detail::read_manifest(fs, dir);
  const std::size_t n = offline_detail::mark_indexes_not_ready(m, collection);
  if (n > 0) detail::write_manifest(fs, dir, m);
  return n;
}

/// What backup_store copied.
struct BackupResult {
  std::uint64_t chunks = 0, wal_segments = 0, bytes = 0;  ///< files and bytes in the backup
};

/// Copies the store at dir (whose LOCK the caller holds, so nothing changes
/// meanwhile) to the new directory dest: hard links of the chunk files of
/// every keyspace (they are immutable; copies across file systems), durable
/// copies of MANIFEST and the live WAL segments, never LOCK; dest is synced.
/// dest must not exist.
inline BackupResult backup_store(FileSystem& fs, const std::filesystem::path& dir, const std::filesystem::path& dest) {
  if (fs.exists(dest))
    throw ValidationError("stowage: backup destination " + dest.string() + " exists; name a new directory");
  const StoreInfo info = inspect(dir);
  fs.create_dirs(dest);
  BackupResult res;
  for (const auto& ks : info.keyspaces)
    for (const auto& c : ks.chunks) {
      fs.link(c.file, dest / c.file.filename());
      ++res.chunks;
      res.bytes += c.bytes;
    }
  for (const auto& w : info.wal)
    if (w.live) {
      copy_file(fs, w.file, dest / w.file.filename());
      ++res.wal_segments;
      res.bytes += w.bytes;
    }
  copy_file(fs, dir / "MANIFEST", dest / "MANIFEST");
  res.bytes += info.manifest_bytes;
  fs.sync_dir(dest);
  return res;
}

/// What repair_store saved and lost.
struct RepairResult {
  std::uint64_t records = 0;    ///< records written to the new store (every keyspace)
  std::vector<LostRange> lost;  ///< what could not be saved
  std::size_t stale_indexes = 0;  ///< secondary indexes marked for a rebuild (records were lost)
};

/// Writes every live record of every keyspace of the store at dir that still
/// verifies (chunks block by block, the WAL up to its first bad record) into
/// a new store at out: a MANIFEST of the current format with the same
/// policies and types (an older format's upgraded in memory), the same
/// layout, collection table, next collection id and dropped ids (keys are
/// copied as they are, prefixes included; the next writable open purges
/// dropped ones' records, as it would have), each keyspace one run at the
/// last level with its live count; lists what was lost. When anything was
/// lost, secondary indexes (stores written by a stowage with indexes) are
/// marked not ready: a lost record may have kept its index entries, or a
/// record its lost ones, and a not-ready index is rebuilt from its
/// collection when next declared. dir is only read.
inline RepairResult repair_store(FileSystem& fs, const std::filesystem::path& dir, const std::filesystem::path& out,
                                 const ProgressFn& progress = {}) {
  if (fs.exists(out) && !(fs.is_directory(out) && fs.list(out).empty()))
    throw ValidationError("stowage: repair output " + out.string() + " exists and is not empty; name a new directory");
  detail::Manifest m = detail::decode_manifest(detail::read_manifest_bytes(fs, dir), dir / "MANIFEST");
  offline_detail::with_compression(m.compression_id, dir, [](auto) { return 0; });
  // Every reader first, so damage that stops the repair (a damaged MANIFEST)
  // shows before anything is written.
  std::vector<std::unique_ptr<StoreReader>> readers;
  std::uint64_t total = 0;
  for (const auto& ks : m.keyspaces) {
    readers.push_back(std::make_unique<StoreReader>(fs, dir, ks.name, /*salvage=*/true));
    total += readers.back()->chunk_bytes();
  }
  for (const auto* step : detail::format_path(m, dir)) step->apply(m);  // format 1's types, as an open reads them
  fs.create_dirs(out);
  RepairResult res;
  std::uint64_t next_file = 1, last_seq = m.last_seq, before = 0;
  for (std::size_t k = 0; k < m.keyspaces.size(); ++k) {
    StoreReader& reader = *readers[k];
    const auto written = write_chunks(fs, out, m.compression_id, next_file, [&](const auto& emit) {
      reader.scan({}, {}, [&](std::string_view key, std::string_view value) {
        emit(key, value);
        return true;
      }, [&](std::uint64_t done, std::uint64_t) {
        if (progress) progress(before + done, total);
      });
    });
    before += reader.chunk_bytes();
    next_file = written.next_file;
    last_seq = std::max(last_seq, reader.last_seq());
    m.keyspaces[k].chunks = written.chunks;
    m.keyspaces[k].live = written.records;
    res.records += written.records;
    res.lost.insert(res.lost.end(), reader.lost().begin(), reader.lost().end());
  }
  fs.sync_dir(out);  // the chunks' names are durable before MANIFEST names them
  m.format_major = detail::kFormatMajor;
  m.format_minor = detail::kFormatMinor;
  m.last_seq = last_seq;
  m.next_file = next_file;
  m.wal_start = next_file;  // no WAL: every record is in the chunks
  if (!res.lost.empty()) res.stale_indexes = offline_detail::mark_indexes_not_ready(m);
  detail::write_manifest(fs, out, m);
  return res;
}

}  // namespace stowage::tool
