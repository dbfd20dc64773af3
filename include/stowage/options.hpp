// SPDX-License-Identifier: BSL-1.0
// options.hpp: the one aggregate that configures a store (designed for
// designated initialisers), the durability levels, the logger hook and the
// statistics a store reports.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

namespace stowage {

class FileSystem;

/// What a write survives once it returns.
enum class Durability {
  /// A process crash loses nothing that returned; a power cut may lose the
  /// writes since the last flush() (never older data). The default.
  none,
  /// Every commit is fsynced before it returns (group commit: concurrent
  /// writers share one fdatasync), and becomes visible to readers only after
  /// that fdatasync, so no reader sees a write that a failed sync or a power
  /// cut then takes away.
  sync,
};

/// Severity of a log line.
enum class LogLevel { debug, info, warning, error };

/// Receives what the store has to say: recovery, cut WAL tails, checkpoints,
/// failures. It is called with none of the store's mutexes held, so it may
/// call the store (stats(), for instance); it should not throw.
using Logger = std::function<void(LogLevel, std::string_view)>;

/// How a store is opened. Every field has a default; write only what differs:
/// `stowage::Options{.cache_bytes = 64 << 20, .durability = stowage::Durability::sync}`.
struct Options {
  /// Memory budget of the block cache and the write buffer together.
  std::size_t cache_bytes = std::size_t{64} << 20;
  /// Compaction splits its output into chunk files of about this many bytes
  /// of encoded records (a flush writes one level-0 file, whatever its size).
  /// Each file costs an fsync when written and an entry in every manifest,
  /// so they are not small.
  std::size_t chunk_bytes = std::size_t{4} << 20;
  /// See Durability.
  Durability durability = Durability::none;
  /// How long open waits for the store's LOCK while another process, or
  /// another Storage of this process, holds it in a conflicting mode (a
  /// writer, or readers when this open writes), whatever the Lock policy;
  /// then LockError. 0 fails at once.
  std::chrono::milliseconds lock_timeout{5000};
  /// Create the directory and an empty store when none exists.
  bool create_if_missing = true;
  /// Open for reading only: writes throw ValidationError and nothing on disk
  /// changes (the WAL is replayed into memory; not even LOCK is created), so
  /// it works on read-only media. The store is locked shared (a flock on the
  /// directory, and a read lock on LOCK when it exists), so any number of
  /// read_only opens, in this process and others, hold the store at once; a
  /// writable open waits for all of them to close (and they for it), up to
  /// lock_timeout.
  bool read_only = false;
  /// Target size of a block inside a chunk (the unit of caching, checksum and
  /// compression).
  std::size_t block_bytes = 4096;
  /// The write buffers' share of cache_bytes: the active buffer is frozen
  /// at half of it and flushed in the background while the next one fills
  /// the other half. 0 means cache_bytes / 4. Each buffer's key filter
  /// (1/128 of this, so that a get skips the buffer for a key it does not
  /// hold) comes out of the block cache's share.
  std::size_t write_buffer_bytes = 0;
  /// Live WAL segments (all of them) larger than this together also freeze
  /// and flush the write buffer.
  std::uint64_t wal_bytes = std::uint64_t{64} << 20;
  /// WAL segments a flush releases are kept (renamed `feed-NNNNNN.log`) up
  /// to this many bytes together, oldest removed first, so that
  /// changes_since() can hand over commits older than the live WAL. 0 (the
  /// default): released segments are deleted, and changes_since() reaches
  /// back only as far as the live WAL (the commits since the last flush).
  std::uint64_t change_feed_bytes = 0;
  /// Write WAL records (up to 64 KiB each) through a shared memory map of
  /// the active segment's preallocated bytes: a put is a copy into the OS's
  /// page cache with no system call, and a process crash keeps it exactly
  /// as after a write(2). Off: one pwrite(2) per commit. Same durability
  /// either way; see the README ("On disk and durability"). Only ext2/3/4,
  /// XFS and tmpfs are mapped (copy-on-write file systems always pwrite),
  /// and not with Durability::sync (each commit is synced anyway, and a
  /// mapped page faults again after every sync: pwrite is faster there).
  bool wal_mmap = true;
  /// The most chunk files kept open at once (least recently read closed
  /// first); chunk metadata stays cached without an open file. 0 means half
  /// the process's soft limit on open files (`ulimit -n`, read at open),
  /// between 64 and 8192.
  std::size_t max_open_files = 0;
  /// Compact levels of chunk files in the background as they fill. Off:
  /// only compact() does (for a bulk load compacted once at its end, or for
  /// tests that count file operations); level-0 files then pile up, and
  /// reads probe each of them.
  bool auto_compaction = true;
  /// close() (and the destructor) flush the write buffer, so the next open
  /// has no WAL to replay.
  bool checkpoint_on_close = true;
  /// Where log lines go; none by default.
  Logger logger{};
  /// The file layer; nullptr means the POSIX file system. Tests inject faults
  /// here.
  std::shared_ptr<FileSystem> file_system{};
  /// The wall clock a store reads: it stamps each version a collection's
  /// history keeps (Collection::keep_history) and judges their age by it.
  /// nullptr means std::chrono::system_clock::now. Tests give a clock they
  /// move by hand, so that nothing sleeps.
  std::function<std::chrono::system_clock::time_point()> clock{};
};

/// A snapshot of a store's counters (Storage::stats()).
/// One level of chunk files (Stats::levels).
struct LevelStats {
  std::uint64_t files = 0;         ///< chunk files in the level
  std::uint64_t runs = 0;          ///< sorted runs (level 0: one per flush not yet compacted; else 0 or 1)
  std::uint64_t bytes = 0;         ///< bytes of those files
  std::uint64_t records = 0;       ///< records in them (puts and tombstones, overwritten ones included)
  std::uint64_t target_bytes = 0;  ///< size compaction keeps the level to (0: level 0, or a level kept empty)
};

/// One secondary index (Collection::index) in Stats::indexes.
struct IndexStats {
  std::string collection;    ///< the collection it indexes ("default": the default collection)
  std::string name;          ///< its name
  bool unique = false;       ///< at most one record per index key
  bool ready = true;         ///< built and kept (false: to be rebuilt when next declared)
  std::uint64_t entries = 0; ///< entries (records with an index key), counted by walking their keys
};

/// The form in which gets keep the data blocks they read in the block cache
/// (Stats::block_form). The store picks the largest form in which all its
/// blocks would fit the cache, judged from its files' size and the blocks
/// read so far, every 4,096 lookups; it moves to a smaller form only while
/// the cache is full and more than a tenth of the lookups miss (a store whose
/// hot blocks fit decoded keeps them decoded).
enum class BlockForm : std::uint8_t {
  decoded,  ///< records laid out for binary search: the fastest hit, the most memory
  stored,   ///< as in the file after decompression, searched in place
  packed,   ///< compressed as in the file: each hit decompresses it; the least memory
};

struct Stats {
  std::uint64_t records = 0;             ///< live records (exact, as size())
  std::uint64_t chunks = 0;              ///< chunk files named by the manifest
  std::uint64_t cache_bytes = 0;         ///< bytes held by the block cache now
  std::uint64_t cache_capacity = 0;      ///< the block cache's share of Options::cache_bytes
  std::uint64_t write_buffer_bytes = 0;  ///< bytes held by the write buffer(s)
  std::uint64_t cache_hits = 0;          ///< block cache hits since open
  std::uint64_t cache_misses = 0;        ///< block cache misses since open
  std::uint64_t cache_evictions = 0;     ///< blocks evicted since open
  BlockForm block_form = BlockForm::decoded;  ///< the form gets now keep blocks in (see BlockForm)
  std::uint64_t metadata_bytes = 0;      ///< of cache_bytes, chunk metadata (block indexes, Bloom filters)
  std::uint64_t open_files = 0;          ///< chunk files open now (at most Options::max_open_files)
  std::uint64_t file_opens = 0;          ///< chunk file opens since open
  std::uint64_t wal_bytes = 0;           ///< bytes in live WAL segments
  std::uint64_t change_feed_bytes = 0;   ///< bytes of released WAL kept for changes_since()
  std::uint64_t disk_bytes = 0;          ///< chunk files + WAL + manifest
  std::uint64_t checkpoints = 0;         ///< flushes of the write buffer since open (as flushes)
  std::uint64_t last_sequence = 0;       ///< sequence number of the last commit
  std::uint64_t bytes_put = 0;           ///< encoded key + value bytes committed since open (erases: the key)
  std::uint64_t chunk_bytes_written = 0; ///< chunk file bytes written since open (flushes, compactions, migrations)
  /// chunk_bytes_written / bytes_put: how many times each byte put has been
  /// written into chunk files so far (0 before the first put)
  double write_amplification = 0;
  /// Per level, 0 (newest) to the last: files, runs, bytes, records, target.
  std::vector<LevelStats> levels;
  std::uint64_t flushes = 0;                   ///< write buffers written to level-0 files since open
  std::uint64_t compactions = 0;               ///< compactions installed since open (file moves included)
  std::uint64_t bytes_flushed = 0;             ///< chunk bytes written by flushes since open
  std::uint64_t bytes_compacted = 0;           ///< chunk bytes written by compactions since open
  std::uint64_t pending_compaction_bytes = 0;  ///< bytes levels hold beyond their targets
  std::uint64_t write_slowdowns = 0;           ///< commits slowed or stopped by back-pressure since open
  std::uint64_t write_slowed_micros = 0;       ///< microseconds those commits waited
  /// Times the background compaction paused for a running flush since open
  /// (machines with fewer than three hardware threads only: there a writer,
  /// a flush and a compaction cannot all have a core).
  std::uint64_t compaction_pauses = 0;
  std::uint64_t compaction_paused_micros = 0;  ///< microseconds those pauses took
  /// Records in chunk files not yet in the live count: flushed while their
  /// presence below was unknown, and not yet met by a compaction (see
  /// docs/format.md, "The live count"). size() looks them up.
  std::uint64_t uncounted_records = 0;
  /// Microseconds since open that size() and stats() spent looking up
  /// uncounted records (each once per chunk file that holds it).
  std::uint64_t count_micros = 0;
  /// Snapshots alive (Storage::snapshot, Database::snapshot).
  std::uint64_t snapshots = 0;
  /// Older versions of records kept for them: in the write buffer (writes
  /// that replaced a record a live snapshot can see; their bytes are in the
  /// buffer's) and in chunk files (what compactions kept for them, counted
  /// while a snapshot lives, for files written since the store opened).
  std::uint64_t snapshot_versions = 0;
  /// Bytes snapshots keep alive beyond the store's own: flushed write
  /// buffers in memory, and the older versions compactions kept for them in
  /// chunk files (records, as stored before compression). A compaction
  /// keeps exactly the versions a live snapshot can see; those left once
  /// the last snapshot is released go at the next compaction of their file.
  std::uint64_t snapshot_pinned_bytes = 0;
  /// The store's secondary indexes, each with its entries counted by walking
  /// their keys (time linear in the entries: a store with large indexes
  /// pays for it on each stats()).
  std::vector<IndexStats> indexes;
};

}  // namespace stowage
