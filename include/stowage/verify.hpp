// SPDX-License-Identifier: BSL-1.0
// verify.hpp: looking into a store without opening it.
//
//   stowage::inspect(dir)  what the MANIFEST says (format, policies, key and
//                          value types, schema version, keyspaces with their
//                          live record counts and levels, chunk files, WAL
//                          segments) and the files' sizes; reads MANIFEST
//                          and lists the directory, nothing more.
//   stowage::verify(dir)   reads every file the MANIFEST names: every chunk's
//                          header, footer, meta block and data blocks
//                          (checksums verified, blocks decoded, keys ascending
//                          within blocks and across the blocks of a chunk,
//                          the block index, the meta block's record and
//                          tombstone counts and the MANIFEST's entry agreeing
//                          with what the blocks hold), key order across the
//                          files of each run (level 0 holds runs that may
//                          overlap one another; every deeper level is one
//                          run), and, merging the runs newest first as a read
//                          does, that no older record of a key carries a
//                          higher sequence number than a newer one and that
//                          the keys whose newest record is a put number
//                          exactly the MANIFEST's live count; then every
//                          live WAL segment (record checksums, batch
//                          decoding, sequences continuing from the
//                          MANIFEST's). Problems are collected with their
//                          file and offset, and checking goes on with the
//                          next block, chunk or segment.
//
// Neither takes the store's LOCK, opens it, or writes anything, so both work
// on a store another process has open for writing, without disturbing it (they
// never even open LOCK: closing any descriptor of it would drop the lock of a
// Storage open in the calling process). A writer may flush or compact
// meanwhile: a new MANIFEST replaces the one read and old files are deleted.
// verify therefore opens every file a MANIFEST names before it reads any, then
// reads MANIFEST again: unchanged, no file it names can have been deleted yet
// (a writer deletes a file only after a MANIFEST without it is in place), and
// open files stay readable after a deletion, so the pass that follows reads
// one consistent state however busy the writer is. Changed, it opens the new
// state's files (a few times). A store with more files than
// VerifyOptions::max_open_files has each opened when reached instead, and
// verify reads MANIFEST again after the pass and starts over when it changed. The
// live WAL's last segment may end in a record being written: a torn tail there
// is a note, not a problem (an open would cut it), as in any segment after a
// crash.
//
// The merged read of a keyspace's runs (detail::RunCursor, detail::merge_runs)
// is also what the `stowage` tool reads stores with. This header needs none of
// the engine: only the on-disk components (manifest, chunk, WAL, file layer).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chunk.hpp"
#include "compression.hpp"
#include "error.hpp"
#include "file.hpp"
#include "manifest.hpp"
#include "store_files.hpp"
#include "wal.hpp"

namespace stowage {

/// One chunk file as the MANIFEST names it.
struct ChunkFileInfo {
  std::uint64_t number = 0;        ///< file number: NNNNNN.chunk
  std::filesystem::path file;      ///< its path
  std::uint64_t records = 0;       ///< records (puts and tombstones), as the MANIFEST says
  std::uint64_t bytes = 0;         ///< file size, as the MANIFEST says
  std::uint64_t max_seq = 0;       ///< largest sequence number of its records
  std::string first_key;           ///< smallest encoded key
  std::string last_key;            ///< largest encoded key
  unsigned level = 0;              ///< its level, 0 .. detail::kLastLevel
  std::uint64_t run = 0;           ///< level 0: its run (higher: newer); 0 below level 0
  bool present = false;            ///< whether the file exists
};

/// One level of a keyspace's chunk files.
struct LevelInfo {
  unsigned level = 0;          ///< 0 (the newest records) .. detail::kLastLevel
  std::uint64_t runs = 0;      ///< sorted runs: level 0 one per flush not yet compacted; below it 0 or 1
  std::uint64_t files = 0;     ///< chunk files
  std::uint64_t bytes = 0;     ///< bytes of those files
  std::uint64_t records = 0;   ///< records in them (puts and tombstones, overwritten ones included)
};

/// One keyspace (typed collection) as the MANIFEST names it: its chunk files
/// sit in levels (format 3; formats 1 and 2 hold one run, read as the last
/// level), and it records how many live records they hold.
struct KeyspaceInfo {
  std::string name;                   ///< "default" for Storage's records
  std::string key_order;              ///< KeyCodec<Key>::name() of the writer
  std::string value_type;             ///< describe_value<Serializer, Value>() of the writer (empty: unknown)
  std::uint32_t schema_version = 0;   ///< value schema version of the records
  /// What the MANIFEST counts of its chunks' live records (the WAL not
  /// included): exact when `uncounted` is 0; else the uncounted records add
  /// their part once looked up (verify() and `stowage stats` do), and this
  /// may even be below zero.
  std::int64_t live = 0;
  std::uint64_t uncounted = 0;        ///< records in its chunks not yet in `live` (see docs/format.md, "The live count")
  std::uint64_t records = 0;          ///< records in its chunks (puts and tombstones, overwritten ones included)
  std::uint64_t bytes = 0;            ///< bytes of its chunk files
  std::vector<ChunkFileInfo> chunks;  ///< in MANIFEST order: by level, level-0 runs newest first, then by key
  std::vector<LevelInfo> levels;      ///< detail::kLevels entries, levels[l] for level l (empty ones too)

  /// Levels that hold at least one file.
  unsigned level_count() const {
    unsigned n = 0;
    for (const auto& l : levels) n += l.files > 0 ? 1 : 0;
    return n;
  }
};

/// One WAL segment in the directory.
struct WalSegmentInfo {
  std::uint64_t number = 0;    ///< wal-NNNNNN.log
  std::filesystem::path file;  ///< its path
  std::uint64_t bytes = 0;     ///< file size (records and preallocated zeros)
  bool live = false;           ///< at or after the MANIFEST's wal_start: replayed at open
};

/// What inspect() found: the MANIFEST's contents and the files' sizes.
struct StoreInfo {
  std::filesystem::path dir;                ///< the store's directory
  unsigned format_major = 0;                ///< on-disk format (MANIFEST major version)
  unsigned format_minor = 0;                ///< MANIFEST minor version
  std::string serializer;                   ///< Serializer::id() of the writer
  std::string compression;                  ///< Compression::name of the writer
  unsigned compression_id = 0;              ///< Compression::id of the writer
  std::uint64_t last_seq = 0;               ///< last sequence number the chunks cover
  std::uint64_t next_file = 0;              ///< next file number the MANIFEST allows
  std::uint64_t wal_start = 0;              ///< first WAL segment still needed
  std::vector<KeyspaceInfo> keyspaces;      ///< in MANIFEST order
  std::vector<WalSegmentInfo> wal;          ///< every WAL segment in the directory, by number
  std::uint64_t manifest_bytes = 0;         ///< size of MANIFEST
  std::uint64_t chunk_bytes = 0;            ///< bytes of the chunk files the MANIFEST names
  std::uint64_t wal_bytes = 0;              ///< bytes of the live WAL segments
  std::uint64_t disk_bytes = 0;             ///< manifest + named chunks + live WAL
  std::int64_t live = 0;                    ///< KeyspaceInfo::live summed over every keyspace
  std::uint64_t uncounted = 0;              ///< KeyspaceInfo::uncounted summed over every keyspace
  std::uint64_t records = 0;                ///< records in chunks (puts and tombstones, overwritten ones included)
  std::vector<std::string> unnamed_files;   ///< chunk and WAL files nothing needs (left by a close or a crash)
  std::vector<std::string> other_files;     ///< names stowage does not write (besides LOCK, MANIFEST.tmp, BACKUP, feed-*.log)

  /// The keyspace called name, or nullptr.
  const KeyspaceInfo* keyspace(std::string_view name) const {
    for (const auto& ks : keyspaces)
      if (ks.name == name) return &ks;
    return nullptr;
  }
};

/// One thing wrong with a store: the file, the byte offset and what.
struct StoreProblem {
  std::filesystem::path file;  ///< the damaged (or missing) file
  std::uint64_t offset = 0;    ///< byte offset of the damage in it (0 when the whole file is concerned)
  std::string what;            ///< description, with what to do
};

/// What verify() checked of one file.
struct VerifiedFile {
  std::filesystem::path file;  ///< its path
  std::string kind;            ///< "manifest", "chunk" or "wal"
  std::uint64_t bytes = 0;     ///< bytes read
  std::uint64_t records = 0;   ///< records (chunk: puts and tombstones) or operations (WAL) decoded
  std::uint64_t blocks = 0;    ///< data blocks (chunk) or records (WAL) verified
  bool ok = true;              ///< no problem found in it
};

/// What verify() found.
struct VerifyReport {
  StoreInfo info;                      ///< inspect()'s view of the state that was verified
  std::vector<VerifiedFile> files;     ///< every file read, MANIFEST first, chunks in MANIFEST order
  std::uint64_t chunk_records = 0;     ///< records decoded from chunk blocks (puts and tombstones)
  std::uint64_t chunk_tombstones = 0;  ///< of those, tombstones
  std::uint64_t live_records = 0;      ///< keys whose newest chunk record is a put, counted by merging the runs
  bool live_checked = false;           ///< every keyspace was read whole, so live_records was compared with the MANIFEST's
  std::uint64_t wal_operations = 0;    ///< puts and erases decoded from the WAL
  std::uint64_t bytes = 0;             ///< bytes read and checked
  std::vector<StoreProblem> problems;  ///< everything wrong; empty when the store is sound
  std::vector<std::string> notes;      ///< harmless findings (a torn WAL tail, leftover files)
  unsigned passes = 1;                 ///< >1 when a writer changed the store during a pass
  /// True when no problem was found.
  bool ok() const { return problems.empty(); }
};

/// Options of verify() and inspect().
struct VerifyOptions {
  /// The file layer (nullptr: the POSIX one).
  std::shared_ptr<FileSystem> file_system;
  /// Called now and then with (bytes checked, bytes to check) for a progress display.
  std::function<void(std::uint64_t, std::uint64_t)> progress;
  /// How many times verify starts over when a writer replaces MANIFEST meanwhile.
  unsigned max_passes = 5;
  /// Most files verify holds open at once. A store with no more chunk files
  /// and live WAL segments than this has all of them opened before a pass
  /// reads any (see the top of this header); a larger one has each opened
  /// when reached.
  std::size_t max_open_files = 1000;
};

namespace detail {

/// The directory's chunk and WAL files by number, and the other names.
struct StoreListing {
  std::vector<std::uint64_t> chunks;
  std::vector<std::uint64_t> wal;
  std::vector<std::string> other;
};

/// Lists dir through fs, sorting chunk and WAL files by number.
inline StoreListing list_store(FileSystem& fs, const std::filesystem::path& dir) {
  StoreListing l;
  for (const auto& n : fs.list(dir)) {
    if (auto w = parse_wal_file_name(n))
      l.wal.push_back(*w);
    else if (auto c = parse_chunk_file_name(n))
      l.chunks.push_back(*c);
    else if (n != "MANIFEST" && n != "LOCK" && n != "MANIFEST.tmp" && n != "BACKUP" && !parse_feed_file_name(n))
      l.other.push_back(n);
  }
  std::sort(l.chunks.begin(), l.chunks.end());
  std::sort(l.wal.begin(), l.wal.end());
  return l;
}

/// The size of p, or nullopt when it cannot be opened.
inline std::optional<std::uint64_t> file_size_if_any(FileSystem& fs, const std::filesystem::path& p) {
  try {
    return fs.open_read(p)->size();
  } catch (const IoError&) {
    return std::nullopt;
  }
}

/// The byte offset an error names (CorruptionError), else 0.
inline std::uint64_t error_offset(const Error& e) {
  const auto* c = dynamic_cast<const CorruptionError*>(&e);
  return c ? c->offset() : 0;
}

/// The runs of a keyspace's chunk list (in manifest order, as decode_manifest
/// checked it): each a list of indexes into `chunks`, in key order, newest
/// run first (level-0 runs by run number, then levels 1 .. kLastLevel).
inline std::vector<std::vector<std::size_t>> runs_of(const std::vector<ChunkRef>& chunks) {
  std::vector<std::vector<std::size_t>> runs;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const ChunkRef& c = chunks[i];
    if (i == 0 || chunks[i - 1].level != c.level || chunks[i - 1].run != c.run) runs.emplace_back();
    runs.back().push_back(i);
  }
  return runs;
}

/// StoreInfo from a decoded manifest and a listing of the directory.
inline StoreInfo describe_store(FileSystem& fs, const std::filesystem::path& dir, const Manifest& m,
                                std::uint64_t manifest_bytes, const StoreListing& listing) {
  StoreInfo info;
  info.dir = dir;
  info.format_major = m.format_major;
  info.format_minor = m.format_minor;
  info.serializer = m.serializer;
  info.compression = m.compression;
  info.compression_id = m.compression_id;
  info.last_seq = m.last_seq;
  info.next_file = m.next_file;
  info.wal_start = m.wal_start;
  info.manifest_bytes = manifest_bytes;
  std::vector<std::uint64_t> named;
  for (const auto& ks : m.keyspaces) {
    KeyspaceInfo k;
    k.name = ks.name;
    k.key_order = ks.key_order;
    k.value_type = ks.value_type;
    k.schema_version = ks.schema_version;
    k.live = ks.live;
    k.levels.resize(kLevels);
    for (unsigned l = 0; l < kLevels; ++l) k.levels[l].level = l;
    for (const auto& run : runs_of(ks.chunks)) ++k.levels[ks.chunks[run.front()].level].runs;
    for (const auto& c : ks.chunks) {
      ChunkFileInfo f;
      f.number = c.file;
      f.file = dir / chunk_file_name(c.file);
      f.records = c.records;
      k.uncounted += c.uncounted;
      f.bytes = c.bytes;
      f.max_seq = c.max_seq;
      f.first_key = c.first_key;
      f.last_key = c.last_key;
      f.level = c.level;
      f.run = c.run;
      f.present = std::binary_search(listing.chunks.begin(), listing.chunks.end(), c.file);
      k.records += c.records;
      k.bytes += c.bytes;
      LevelInfo& level = k.levels[c.level];
      ++level.files;
      level.bytes += c.bytes;
      level.records += c.records;
      named.push_back(c.file);
      k.chunks.push_back(std::move(f));
    }
    info.live += k.live;
    info.uncounted += k.uncounted;
    info.records += k.records;
    info.chunk_bytes += k.bytes;
    info.keyspaces.push_back(std::move(k));
  }
  std::sort(named.begin(), named.end());
  for (auto c : listing.chunks)
    if (!std::binary_search(named.begin(), named.end(), c)) info.unnamed_files.push_back(chunk_file_name(c));
  for (auto n : listing.wal) {
    WalSegmentInfo w;
    w.number = n;
    w.file = dir / wal_file_name(n);
    w.bytes = file_size_if_any(fs, w.file).value_or(0);
    w.live = n >= m.wal_start;
    if (w.live)
      info.wal_bytes += w.bytes;
    else
      info.unnamed_files.push_back(wal_file_name(n));
    info.wal.push_back(std::move(w));
  }
  info.other_files = listing.other;
  info.disk_bytes = info.manifest_bytes + info.chunk_bytes + info.wal_bytes;
  return info;
}

/// Reads MANIFEST's bytes; ValidationError when dir holds no store.
inline std::string read_manifest_bytes(FileSystem& fs, const std::filesystem::path& dir) {
  if (!fs.is_directory(dir)) throw ValidationError("stowage: no store at " + dir.string() + " (not a directory); check the path");
  if (!manifest_exists(fs, dir))
    throw ValidationError("stowage: no store at " + dir.string() + " (no MANIFEST); check the path");
  return read_file(fs, dir / "MANIFEST", kManifestMaxBytes);
}

/// Reads one run of chunk files (in key order, not overlapping) record by
/// record, without the engine: a file is opened when the cursor reaches it
/// (unless the caller opened it already) and let go when the cursor leaves
/// it, so a cursor holds at most one file open. Damage is handed to hooks
/// instead of being thrown, so each reader decides: verify lists it, the
/// tool's salvage mode skips it, a strict reader rethrows (a hook left
/// empty rethrows). Besides what ChunkTable checks (every block against the
/// chunk's index), the cursor checks that each block's first key is above
/// the last key read before it in the run, so a merge of cursors always
/// sees ascending keys.
template <CompressionPolicy Compression>
class RunCursor {
 public:
  using Table = ChunkTable<Compression>;
  /// One file of the run.
  struct File {
    ChunkRef ref;                  ///< the MANIFEST's entry
    std::filesystem::path path;    ///< its path
    std::shared_ptr<Table> table;  ///< opened already, or null: opened when reached
    bool skip = false;             ///< known to be unreadable (missing, listed as lost): never read
  };
  /// What the cursor tells its owner; each is optional.
  struct Hooks {
    /// File i was opened (or reached, when opened by the caller); false: skip it.
    std::function<bool(std::size_t, const Table&)> opened;
    /// File i could not be opened; the cursor goes on with the next file (empty: rethrow).
    std::function<void(std::size_t, const Error&)> file_failed;
    /// Block b of file i was read and verified.
    std::function<void(std::size_t, std::size_t, const Block&)> block_read;
    /// Block b of file i failed to read or verify; the cursor goes on with
    /// the next block (empty: rethrow).
    std::function<void(std::size_t, std::size_t, const Error&)> block_failed;
    /// Every block of file i was tried (it was read from its first block on
    /// unless the cursor was sought into it).
    std::function<void(std::size_t, const Table&)> file_done;
  };

  RunCursor(FileSystem& fs, std::vector<File> files, Hooks hooks)
      : fs_(&fs), files_(std::move(files)), hooks_(std::move(hooks)) {}
  RunCursor(RunCursor&&) noexcept = default;
  RunCursor& operator=(RunCursor&&) noexcept = default;

  /// Positions the cursor at the first record whose key is >= from (the
  /// first record when from is nullopt); must be called before reading.
  void seek(const std::optional<std::string_view>& from) {
    block_.reset();
    table_.reset();
    last_read_.reset();
    rec_ = 0;
    bi_ = 0;
    fi_ = 0;
    if (from) {
      // The first file whose last key is >= from (the files do not overlap).
      while (fi_ < files_.size() && std::string_view(files_[fi_].ref.last_key) < *from) ++fi_;
      seek_key_ = std::string(*from);
    } else {
      seek_key_.reset();
    }
    load();
    const std::optional<std::string> key = std::exchange(seek_key_, std::nullopt);
    if (key && block_) {
      rec_ = block_->lower_bound(*key);
      if (rec_ == block_->size()) advance_block();  // every key of the block is below it
    }
  }

  /// Whether the cursor is at a record (false at the end of the run).
  bool valid() const { return block_ != nullptr; }
  std::string_view key() const { return block_->key(rec_); }
  std::string_view value() const { return block_->value(rec_); }
  std::uint64_t seq() const { return block_->seq(rec_); }
  bool tombstone() const { return block_->tombstone(rec_); }
  bool uncounted() const { return block_->uncounted(rec_); }
  /// The file the current record is in (an index into the files given).
  std::size_t file() const { return fi_; }
  const File& file_at(std::size_t i) const { return files_[i]; }
  std::size_t file_count() const { return files_.size(); }
  /// The last key of the last block read before the current one (nullopt:
  /// none yet): a lost block's keys lie above it.
  const std::optional<std::string>& last_read() const { return last_read_; }

  /// Moves to the next key (past the older versions of this one that a
  /// format-5 chunk keeps after it, in its block).
  void next() {
    const std::string_view k = block_->key(rec_);
    while (++rec_ < block_->size() && block_->key(rec_) == k) {
    }
    if (rec_ == block_->size()) advance_block();
  }

 private:
  void advance_block() {
    last_read_ = std::string(block_->key(block_->size() - 1));
    block_.reset();
    rec_ = 0;
    ++bi_;
    load();
  }

  // Loads the first readable block at or after (fi_, bi_), or ends the run.
  void load() {
    while (fi_ < files_.size()) {
      File& f = files_[fi_];
      if (!table_) {
        if (f.skip) {
          next_file();
          continue;
        }
        std::shared_ptr<Table> t = f.table;
        if (!t) {
          try {
            t = Table::open(*fs_, f.path);
          } catch (const Error& e) {
            if (!hooks_.file_failed) throw;
            hooks_.file_failed(fi_, e);
            next_file();
            continue;
          }
        }
        if (hooks_.opened && !hooks_.opened(fi_, *t)) {
          next_file();
          continue;
        }
        table_ = std::move(t);
        bi_ = 0;
        if (seek_key_) {
          const std::size_t b = table_->find_block(*seek_key_);
          bi_ = b >= table_->block_count() ? 0 : b;  // block_count(): the key precedes the file
        }
      }
      if (bi_ >= table_->block_count()) {
        if (hooks_.file_done) hooks_.file_done(fi_, *table_);
        next_file();
        continue;
      }
      std::shared_ptr<const Block> b;
      try {
        b = table_->read_block(bi_);
        if (last_read_ && !(std::string_view(*last_read_) < b->key(0)))
          throw CorruptionError(f.path, 0,
                                "data block " + std::to_string(bi_) +
                                    ": its first key is not above the last key read before it in its run (chunk "
                                    "files of one run overlap, or a file is not the one the MANIFEST names)");
      } catch (const Error& e) {
        if (!hooks_.block_failed) throw;
        hooks_.block_failed(fi_, bi_, e);
        ++bi_;
        continue;
      }
      if (hooks_.block_read) hooks_.block_read(fi_, bi_, *b);
      block_ = std::move(b);
      rec_ = 0;
      return;
    }
  }

  void next_file() {
    table_.reset();
    files_[fi_].table.reset();  // let go of a table the caller opened, too: it is read once
    ++fi_;
    bi_ = 0;
  }

  FileSystem* fs_;
  std::vector<File> files_;
  Hooks hooks_;
  std::size_t fi_ = 0, bi_ = 0, rec_ = 0;  // file, block (the one loaded, while loaded) and record
  std::shared_ptr<Table> table_;
  std::shared_ptr<const Block> block_;
  std::optional<std::string> last_read_, seek_key_;
};

/// Merges runs (sought cursors, newest run first) as a read does: calls
/// fn(key, holders) once per key, in key order, with the cursors positioned at
/// that key, newest first (holders[0] holds the record that wins: a put, or a
/// tombstone that hides the older ones); fn returns false to stop. The
/// cursors move on after fn returns.
template <class Cursor, class Fn>
void merge_runs(const std::vector<Cursor*>& runs, Fn&& fn) {
  std::vector<Cursor*> holders;
  holders.reserve(runs.size());
  for (;;) {
    Cursor* best = nullptr;
    for (Cursor* r : runs)
      if (r->valid() && (!best || r->key() < best->key())) best = r;
    if (!best) return;
    holders.clear();
    for (Cursor* r : runs)
      if (r->valid() && (r == best || r->key() == best->key())) holders.push_back(r);
    if (!fn(best->key(), static_cast<const std::vector<Cursor*>&>(holders))) return;
    for (Cursor* r : holders) r->next();
  }
}

/// A file verify opened, or why it could not.
template <class Handle>
struct OpenedFile {
  std::shared_ptr<Handle> file;      ///< null: not opened (see error)
  std::optional<StoreProblem> error;  ///< the open failed (damage or I/O)
};

/// opener() -> the handle of `path`, or the stowage::Error it threw as a problem.
template <class Handle, class Opener>
OpenedFile<Handle> open_file(const std::filesystem::path& path, Opener&& opener) {
  OpenedFile<Handle> f;
  try {
    f.file = opener();
  } catch (const Error& e) {
    f.error = StoreProblem{path, error_offset(e), e.what()};
  }
  return f;
}

/// One state of a store as verify reads it: its MANIFEST, decoded, the
/// directory listed and, when `held`, every file the MANIFEST names opened.
template <CompressionPolicy Compression>
struct HeldStore {
  std::string manifest_bytes;
  std::optional<Manifest> manifest;           ///< nullopt: damaged (see manifest_error)
  std::optional<StoreProblem> manifest_error;
  StoreInfo info;                             ///< describe_store's view (with manifest only)
  bool held = false;                          ///< every named file was opened (or failed to)
  std::vector<std::vector<OpenedFile<ChunkTable<Compression>>>> chunks;  ///< [keyspace][chunk], when held
  std::vector<OpenedFile<RandomAccessFile>> wal;                         ///< [info.wal index] (live ones), when held
};

/// Opens the live WAL segments info lists, newest first: a segment that is
/// empty when opened makes every older one the last written at that moment,
/// and a segment only gets records once the one before it is sealed (its
/// preallocated zeros cut), so an older segment opened after a non-empty
/// newer one has no zero tail unless it is damaged.
inline std::vector<OpenedFile<RandomAccessFile>> open_wal_segments(FileSystem& fs, const StoreInfo& info) {
  std::vector<OpenedFile<RandomAccessFile>> wal(info.wal.size());
  for (std::size_t i = info.wal.size(); i-- > 0;)
    if (info.wal[i].live)
      wal[i] = open_file<RandomAccessFile>(info.wal[i].file, [&] { return fs.open_read(info.wal[i].file); });
  return wal;
}

/// Reads the state `manifest_bytes` describes and, when the store has at most
/// opt.max_open_files files, opens all of them.
template <CompressionPolicy Compression>
HeldStore<Compression> hold_store(FileSystem& fs, const std::filesystem::path& dir, std::string manifest_bytes,
                                  const VerifyOptions& opt) {
  HeldStore<Compression> h;
  h.manifest_bytes = std::move(manifest_bytes);
  const auto manifest_path = dir / "MANIFEST";
  try {
    h.manifest = decode_manifest(h.manifest_bytes, manifest_path);
  } catch (const CorruptionError& e) {
    h.manifest_error = StoreProblem{e.file(), e.offset(), e.what()};
    return h;
  }
  h.info = describe_store(fs, dir, *h.manifest, h.manifest_bytes.size(), list_store(fs, dir));
  std::size_t files = 0;
  for (const auto& ks : h.info.keyspaces) files += ks.chunks.size();
  for (const auto& w : h.info.wal) files += w.live ? 1 : 0;
  if (files > opt.max_open_files) return h;
  const bool readable = can_decompress<Compression>(h.manifest->compression_id);
  for (const auto& ks : h.info.keyspaces) {
    auto& slots = h.chunks.emplace_back(ks.chunks.size());
    if (!readable) continue;
    for (std::size_t i = 0; i < ks.chunks.size(); ++i)
      if (ks.chunks[i].present)
        slots[i] = open_file<ChunkTable<Compression>>(
            ks.chunks[i].file, [&] { return ChunkTable<Compression>::open(fs, ks.chunks[i].file); });
  }
  h.wal = open_wal_segments(fs, h.info);
  h.held = true;
  return h;
}

/// Verifies one pass over the state h describes (reading the files it holds,
/// and opening the others when reached).
template <CompressionPolicy Compression>
VerifyReport verify_pass(FileSystem& fs, const std::filesystem::path& dir, const HeldStore<Compression>& h,
                         const VerifyOptions& opt, bool& wal_gap) {
  VerifyReport rep;
  const auto manifest_path = dir / "MANIFEST";
  VerifiedFile mf{manifest_path, "manifest", h.manifest_bytes.size(), 0, 1, true};
  if (!h.manifest) {
    mf.ok = false;
    rep.files.push_back(mf);
    rep.problems.push_back(*h.manifest_error);
    rep.notes.push_back("MANIFEST is damaged, so no other file can be checked against it");
    return rep;
  }
  const Manifest& m = *h.manifest;
  rep.files.push_back(mf);
  rep.bytes += h.manifest_bytes.size();
  rep.info = h.info;
  const std::uint64_t total = rep.info.disk_bytes;
  auto progress = [&] {
    if (opt.progress) opt.progress(rep.bytes, total);
  };
  auto problem = [&](const std::filesystem::path& file, std::uint64_t offset, const std::string& what) {
    rep.problems.push_back({file, offset, what});
  };

  const bool readable = can_decompress<Compression>(m.compression_id);
  if (!readable)
    problem(manifest_path, 0,
            "stowage: the store was written with compression '" + m.compression + "' (id " +
                std::to_string(m.compression_id) + "), which verify<" + std::string(Compression::name) +
                "> cannot decode: call stowage::verify<ThatPolicy>(dir) to check its chunks");
  rep.live_checked = true;
  using Cursor = RunCursor<Compression>;
  using Table = ChunkTable<Compression>;
  for (std::size_t k = 0; k < m.keyspaces.size(); ++k) {
    const KeyspaceState& ks = m.keyspaces[k];
    const KeyspaceInfo& ki = rep.info.keyspaces[k];
    // One VerifiedFile per chunk, in manifest order.
    const std::size_t first_slot = rep.files.size();
    for (const auto& c : ki.chunks) rep.files.push_back({c.file, "chunk", 0, 0, 0, true});
    std::vector<std::uint64_t> tombstones(ks.chunks.size(), 0);
    auto vf = [&](std::size_t chunk) -> VerifiedFile& { return rep.files[first_slot + chunk]; };
    bool whole = readable;  // every record of the keyspace is read
    auto bad = [&](std::size_t chunk, std::uint64_t offset, const std::string& what) {
      vf(chunk).ok = false;
      whole = false;
      problem(ki.chunks[chunk].file, offset, what);
    };
    auto done = [&](std::size_t chunk) {  // each file counts once, however its reading ends
      rep.chunk_records += vf(chunk).records;
      rep.bytes += ki.chunks[chunk].bytes;
      progress();
    };

    // One cursor per run, newest first; merging them reads every block.
    std::vector<Cursor> cursors;
    for (const auto& run : runs_of(ks.chunks)) {
      std::vector<typename Cursor::File> files;
      for (std::size_t i : run) {
        const auto& c = ki.chunks[i];
        const auto* held = h.held ? &h.chunks[k][i] : nullptr;
        files.push_back({ks.chunks[i], c.file, held ? held->file : nullptr,
                         !c.present || !readable || (held && held->error)});
        if (!c.present)
          bad(i, 0, "stowage: chunk file named by the MANIFEST (keyspace '" + ks.name + "', level " +
                        std::to_string(c.level) +
                        ") is missing; restore it from a backup, or run `stowage repair` to save the rest");
        else if (held && held->error)
          bad(i, held->error->offset, held->error->what);
        if (files.back().skip) done(i);
      }
      typename Cursor::Hooks hooks;
      hooks.opened = [&, run](std::size_t f, const Table& table) {
        const std::size_t i = run[f];
        const ChunkRef& c = ks.chunks[i];
        // The MANIFEST's entry must describe this very file.
        auto differs = [&](const char* what) {
          bad(i, 0, std::string("stowage: the chunk's ") + what +
                        " differs from the MANIFEST's entry (a swapped, copied or truncated chunk file)");
        };
        if (table.file_bytes() != c.bytes) differs("size");
        if (table.records() != c.records) differs("record count");
        if (table.first_key() != c.first_key) differs("first key");
        if (table.last_key() != c.last_key) differs("last key");
        if (table.max_seq() != c.max_seq) differs("maximum sequence number");
        if (table.uncounted() != c.uncounted) differs("uncounted record count");
        vf(i).bytes = table.file_bytes();
        return true;  // its blocks are checked all the same
      };
      hooks.file_failed = [&, run](std::size_t f, const Error& e) {
        bad(run[f], error_offset(e), e.what());
        done(run[f]);
      };
      hooks.block_read = [&, run](std::size_t f, std::size_t, const Block& b) {
        VerifiedFile& v = vf(run[f]);
        ++v.blocks;
        v.records += b.size();
        for (std::size_t r = 0; r < b.size(); ++r)
          if (b.tombstone(r)) ++tombstones[run[f]];
      };
      hooks.block_failed = [&, run](std::size_t f, std::size_t, const Error& e) {
        bad(run[f], error_offset(e), e.what());
      };
      hooks.file_done = [&, run](std::size_t f, const Table& table) {
        const std::size_t i = run[f];
        const VerifiedFile& v = vf(i);
        if (v.ok && v.records != table.records())
          bad(i, 0, "stowage: the chunk's blocks hold " + std::to_string(v.records) +
                        " records but its meta block says " + std::to_string(table.records()));
        if (v.ok && tombstones[i] != table.tombstones())
          bad(i, 0, "stowage: the chunk's blocks hold " + std::to_string(tombstones[i]) +
                        " tombstones but its meta block says " + std::to_string(table.tombstones()));
        rep.chunk_tombstones += tombstones[i];
        done(i);
      };
      cursors.emplace_back(fs, std::move(files), std::move(hooks));
    }
    std::vector<Cursor*> runs;
    for (auto& c : cursors) {
      runs.push_back(&c);
      c.seek(std::nullopt);
    }
    std::uint64_t live = 0, inverted = 0;
    std::int64_t uncounted_part = 0;  // what the uncounted records add to the count
    std::size_t inversion = 0;  // its problem's index
    merge_runs(runs, [&](std::string_view key, const std::vector<Cursor*>& holders) {
      if (!holders[0]->tombstone()) ++live;
      // An uncounted record adds its put, less the put it hides (the next
      // older record of its key, if any).
      for (std::size_t j = 0; j < holders.size(); ++j)
        if (holders[j]->uncounted())
          uncounted_part += (holders[j]->tombstone() ? 0 : 1) -
                            (j + 1 < holders.size() && !holders[j + 1]->tombstone() ? 1 : 0);
      // A newer run's record of a key is newer than an older run's.
      for (std::size_t j = 1; j < holders.size(); ++j) {
        const Cursor& older = *holders[j];
        const Cursor& newer = *holders[j - 1];
        if (older.seq() <= newer.seq()) continue;
        if (inverted++ == 0) {
          inversion = rep.problems.size();
          const auto& o = older.file_at(older.file());
          const auto& n = newer.file_at(newer.file());
          problem(o.path, 0,
                  "stowage: key " + hex_key(key, 32) + " (keyspace '" + ks.name + "') has sequence " +
                      std::to_string(older.seq()) + " in this file (level " + std::to_string(o.ref.level) +
                      "), above the sequence " + std::to_string(newer.seq()) + " of the record that hides it in " +
                      n.path.string() + " (level " + std::to_string(n.ref.level) +
                      "): the files' levels or runs are out of order, so reads return an older value");
        }
        break;
      }
      return true;
    });
    if (inverted > 1)
      rep.problems[inversion].what += " (and " + std::to_string(inverted - 1) + " more keys like it)";
    rep.live_records += live;
    if (!whole) {
      rep.live_checked = false;
      if (readable && !ks.chunks.empty())
        rep.notes.push_back("keyspace '" + ks.name + "': its live record count (" + std::to_string(ks.live) +
                            " in the MANIFEST) was not checked, as not every record could be read");
    } else if (static_cast<std::int64_t>(live) != ks.live + uncounted_part) {
      problem(manifest_path, 0,
              "stowage: the MANIFEST counts " + std::to_string(ks.live) + " live records in keyspace '" + ks.name +
                  "' (and the uncounted records " + std::to_string(uncounted_part) + ") but its chunks hold " +
                  std::to_string(live) + " (keys whose newest record is a put): size() would be wrong");
    }
  }

  // The live WAL segments, in order: sequences continue from the MANIFEST's.
  // The last one written may end in preallocated zeros or a torn record;
  // empty segments after it (the writer creates the next one ahead) are not
  // written yet.
  const auto wal = h.held ? h.wal : open_wal_segments(fs, rep.info);
  std::vector<std::size_t> live;  // indexes into info.wal (and wal)
  for (std::size_t i = 0; i < rep.info.wal.size(); ++i)
    if (rep.info.wal[i].live) live.push_back(i);
  std::size_t last_written = 0;  // in live
  for (std::size_t i = 0; i < live.size(); ++i)
    if (!wal[live[i]].file || wal[live[i]].file->size() > 0) last_written = i;
  std::uint64_t next_seq = m.last_seq + 1;
  bool log_ended = false;  // a segment before ended the log (WalEnd::cut): an open drops the rest
  for (std::size_t i = 0; i < live.size(); ++i) {
    const auto& w = rep.info.wal[live[i]];
    const bool last = i >= last_written;
    VerifiedFile vf{w.file, "wal", w.bytes, 0, 0, true};
    if (log_ended) {
      rep.bytes += w.bytes;
      rep.files.push_back(std::move(vf));
      progress();
      continue;
    }
    auto bad = [&](std::uint64_t offset, const std::string& what) {
      vf.ok = false;
      problem(w.file, offset, what);
    };
    const auto& opened = wal[live[i]];
    if (opened.error) {
      bad(opened.error->offset, opened.error->what);
    } else {
      try {
        const auto r = replay_wal(*opened.file, w.number, [&](std::string_view payload, std::uint64_t offset) {
          ++vf.blocks;
          bool reported = false;
          decode_wal_batch(payload, w.file, offset, [&](const WalOp& op) {
            ++vf.records;
            if (op.seq != next_seq && !reported) {
              wal_gap = true;
              bad(offset, "stowage: WAL record has sequence " + std::to_string(op.seq) + " where " +
                              std::to_string(next_seq) +
                              " was expected (records before it are missing: an earlier WAL segment was truncated "
                              "or removed)");
              reported = true;
            }
            next_seq = op.seq + 1;
            if (op.key.size() > kMaxKeyBytes || op.value.size() > kMaxValueBytes)
              bad(offset, "stowage: WAL record holds a key or value over the format's limits");
          });
        });
        if (r.cut_bytes > 0 && last) {
          rep.notes.push_back(w.file.string() + ": a torn tail of " + std::to_string(r.cut_bytes) +
                              " bytes at offset " + std::to_string(r.valid_bytes) +
                              " (a record being written, or unsynced bytes a crash left; an open cuts it)");
        } else if (!last && !r.sealed()) {
          // Frozen, then a crash before its seal: whole, or the log ends here.
          std::vector<WalReplay> later;
          for (std::size_t j = i + 1; j < live.size(); ++j) {
            if (!wal[live[j]].file) continue;
            try {
              later.push_back(replay_wal(*wal[live[j]].file, rep.info.wal[live[j]].number,
                                         [](std::string_view, std::uint64_t) {}));
            } catch (const CorruptionError&) {  // reported when its turn comes
            }
          }
          try {
            if (judge_wal_end(w.file, r, next_seq, later) == WalEnd::cut) {
              log_ended = true;
              rep.notes.push_back(w.file.string() + ": the WAL ends early at offset " + std::to_string(r.valid_bytes) +
                                  " (a power cut before this segment was sealed); an open keeps the records before "
                                  "it and drops the later segments, whose records were never synced");
            }
          } catch (const CorruptionError& e) {
            bad(e.offset(), e.what());
          }
        }
      } catch (const CorruptionError& e) {
        bad(e.offset(), e.what());
      } catch (const IoError& e) {
        bad(0, e.what());
      }
    }
    rep.wal_operations += vf.records;
    rep.bytes += w.bytes;
    rep.files.push_back(std::move(vf));
    progress();
  }
  for (const auto& n : rep.info.unnamed_files)
    rep.notes.push_back(n + " is not needed by the MANIFEST (left by the last close, an interrupted flush or a "
                            "crash; the next writable open deletes it)");
  for (const auto& n : rep.info.other_files) rep.notes.push_back(n + " is not a stowage file");
  return rep;
}

}  // namespace detail

/// What the MANIFEST of the store at dir says, and the sizes of its files,
/// without opening the store (no LOCK, no WAL replay, nothing written).
/// ValidationError when dir holds no store; CorruptionError when MANIFEST
/// is damaged; MigrationError when it is newer than this program.
inline StoreInfo inspect(const std::filesystem::path& dir, const VerifyOptions& opt = {}) {
  auto fs = opt.file_system ? opt.file_system : default_file_system();
  const std::string bytes = detail::read_manifest_bytes(*fs, dir);
  const auto m = detail::decode_manifest(bytes, dir / "MANIFEST");
  return detail::describe_store(*fs, dir, m, bytes.size(), detail::list_store(*fs, dir));
}

/// Checks every byte of the store at dir that the MANIFEST names (see the top
/// of this header) and returns what it found; never changes the store, never
/// takes its LOCK, and works while another process writes to it. Damage is
/// reported in VerifyReport::problems, not thrown; only a missing store
/// (ValidationError) or a MANIFEST from a newer stowage (MigrationError) throw.
/// Compression: the policy of a store written with a user compression
/// policy (the built-in ones are always understood).
template <CompressionPolicy Compression = Lz4Compression>
VerifyReport verify(const std::filesystem::path& dir, const VerifyOptions& opt = {}) {
  auto fs = opt.file_system ? opt.file_system : default_file_system();
  auto reread = [&] {
    try {
      return detail::read_manifest_bytes(*fs, dir);
    } catch (const Error&) {
      return std::string();  // MANIFEST vanished meanwhile: report what the pass found
    }
  };
  const unsigned max_passes = std::max(1u, opt.max_passes);
  std::string before = detail::read_manifest_bytes(*fs, dir);
  for (unsigned pass = 1;; ++pass) {
    const auto held = detail::hold_store<Compression>(*fs, dir, before, opt);
    // With every file open, an unchanged MANIFEST means none was deleted
    // before it was opened: the pass reads one state, whatever the writer
    // does next. Without, the pass opens files as it reaches them, and
    // MANIFEST is read again after it.
    std::optional<VerifyReport> rep;
    bool wal_gap = false;
    if (!held.held) rep = detail::verify_pass<Compression>(*fs, dir, held, opt, wal_gap);
    std::string after = reread();
    const bool changed = !after.empty() && after != before;
    if (changed && pass < max_passes) {
      before = std::move(after);
      continue;
    }
    if (!rep) rep = detail::verify_pass<Compression>(*fs, dir, held, opt, wal_gap);
    // A writer seals a WAL segment (writes out its tail) while it already
    // appends to the next one: a pass can meet the next one's records
    // before the tail of the one before. Such a gap is looked at again
    // (twice at most) before it counts.
    if (wal_gap && pass < std::min(max_passes, 3u)) {
      if (!after.empty()) before = std::move(after);
      continue;
    }
    rep->passes = pass;
    if (changed)
      rep->notes.push_back("the store changed during each of " + std::to_string(pass) +
                           " passes (a busy writer); this report is of the last one, and may name files the writer "
                           "replaced meanwhile");
    return std::move(*rep);
  }
}

}  // namespace stowage
