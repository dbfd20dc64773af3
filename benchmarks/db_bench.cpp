// db_bench.cpp: a LevelDB-db_bench-style benchmark of stowage and, side by
// side, of LevelDB, RocksDB, LMDB and SQLite (each compiled in when its Debian
// package was found at configure time; --engine chooses one).
//
// Conventions follow LevelDB's db_bench: 16-byte keys (the record number,
// zero-padded decimal), 100-byte values of which about half compresses away
// (each value is 50 random printable bytes followed by a repeat of them),
// 1,000,000 records, and a comma list of workloads run in order on the same
// store, where every fill starts from an empty directory. Random workloads
// draw keys from a fixed-seed generator, each workload with its own seed.
// YCSB workloads A, B, C, E and F use YCSB's scrambled Zipfian (0.99) chooser.
//
// Fairness, by construction (DESIGN.md, "Benchmarks: fair by construction"):
//  - every adapter hands keys and values back as owned std::strings, built
//    fresh per record, as a typed caller receives them;
//  - each write is one atomic commit in every engine (except SQLite's bulk
//    writes, which the issue fixes at 1,000 per transaction; see --help);
//  - a timed write workload ends with flush(): everything durable (stowage:
//    checkpoint() + flush()); then, untimed, settle() lets the LSM engines
//    (stowage, LevelDB, RocksDB) finish compacting before the bytes on disk
//    are counted and the read workloads run;
//  - scripts/bench.sh runs each engine and group of workloads in its own
//    process, so the peak RSS of one does not leak into another.
//
// Latency: every write operation (put, erase, put_batch) is timed on its own
// with std::chrono::steady_clock into a log-linear histogram (bench_util.hpp;
// preallocated, nothing allocated in the timed loop), and p50 / p99 / p99.9 /
// max are printed per workload (--latency=all times reads too, --latency=none
// nothing).
//
// Online backups (issue 15): `backup` takes one backup of the current store
// into a fresh directory beside it (<store>-backups/) and reports its time,
// its bytes, and the bytes it wrote. Bytes written are measured the same way
// for every engine: the sizes of the backup's files that are not hard links
// of the store's files (st_nlink > 1, or the st_dev/st_ino, name and size of
// a store file listed before the backup); stowage's own BackupReport is
// printed beside it. Then the
// backup is opened as a store of the same engine and 1,000 random keys are
// read from it and from the store: they must agree. The peers' native online
// backups: RocksDB Checkpoint::CreateCheckpoint (hard links; its default
// log_size_for_flush 0 flushes the memtable first), LMDB mdb_env_copy2 (flags
// 0: a plain copy of the map, writers blocked only while the meta pages are
// copied), SQLite's online backup API (sqlite3_backup_step(-1) from a second
// connection, WAL mode: the writer goes on). LevelDB has none: "n/a".
// `overwrite_during_backup` is `overwrite` (num random overwrites, each put
// timed into the histogram) while a second thread takes backups back to back
// into fresh directories, deleting each previous one, from the first put to
// the last; it reports the puts' latencies and the backups taken (LevelDB: n/a).
//
// Snapshots: `overwrite_during_snapshot` is `overwrite` while a snapshot of
// the store taken before the first put is held until the last put has
// returned, and a second thread reads random keys through that one snapshot,
// back to back, the whole time. The engines' snapshots: stowage
// Storage::snapshot() (a Storage::View), LevelDB and RocksDB GetSnapshot
// (ReadOptions.snapshot, ReleaseSnapshot at the end), LMDB a read-only
// transaction held open (MDB_NOTLS: the reader thread may use the one the
// benchmark's thread began), SQLite a read transaction (BEGIN, then a SELECT)
// held open on a second connection (WAL mode: the writer goes on). It reports
// the puts' latencies, the reads made through the snapshot, and the bytes on
// disk while the snapshot is still held (after the last put, before its
// release and the final flush: what the old versions it keeps cost there);
// 1,000 random keys read from the store before the first put must read the
// same through the snapshot after the last. While it is held, LMDB cannot
// reuse the pages the puts free (its file, which never shrinks, grows by the
// pages every put copies) and SQLite's checkpoints cannot reset the WAL.
// `overwrite_holding_snapshot` is the same without the reader: what holding a
// snapshot alone costs the writer.
//
// Readers: `overwrite_during_reads` is `overwrite` while a second thread gets
// uniformly random keys of the live store, back to back, from before the
// first put to after the last, through the engine's reader(): stowage
// Storage::get and LevelDB's and RocksDB's DB::Get from that thread (all
// thread-safe), LMDB a read-only transaction of the reader's own, renewed
// before and reset after each get (MDB_NOTLS), SQLite a second connection on
// which each get is its own autocommit SELECT (WAL: the writer goes on, and
// no read transaction outlives a get, so checkpoints pass). It reports the
// puts' latencies and the reads made (their latencies too with
// --latency=all): whether a reader slows the puts down or stalls them.
#include <stowage/stowage.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#ifdef STOWAGE_BENCH_HAVE_LEVELDB
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>
#endif
#ifdef STOWAGE_BENCH_HAVE_ROCKSDB
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#endif
#ifdef STOWAGE_BENCH_HAVE_LMDB
#include <lmdb.h>
#endif
#ifdef STOWAGE_BENCH_HAVE_SQLITE
#include <sqlite3.h>
#endif

#include "bench_util.hpp"

namespace fs = std::filesystem;
using namespace stowage_bench;

namespace {

// ---- the engine interface ----------------------------------------------------

[[noreturn]] void engine_error(const std::string& engine, const std::string& what) {
  throw std::runtime_error(engine + ": " + what);
}

/// What every engine is opened with (the flags that are not engine-specific).
struct EngineConfig {
  std::uint64_t cache_bytes = std::uint64_t{64} << 20;  ///< 0: each engine's own default (--cache_bytes=default)
  std::uint64_t chunk_bytes = 0;  ///< 0: the engine's default (stowage only)
  std::uint64_t write_buffer_bytes = 0;  ///< 0: the engine's default (stowage only)
  std::string eviction = "lru";   ///< the Eviction policy's name (stowage only)
  bool sync = false;              ///< every write durable when it returns
  bool wal_mmap = true;           ///< stowage Options::wal_mmap
};

/// One named counter an engine reports after a workload.
using Counter = std::pair<std::string, std::uint64_t>;

/// Receives one record of a scan, as owned strings.
using ScanFn = std::function<void(const std::string& key, const std::string& value)>;

/// A read-only handle on the engine's open store, for one thread at a time
/// while others write; it must not outlive the store. Engine::snapshot()
/// makes one that reads the store as it was when it was taken (held until
/// it is destroyed), Engine::reader() one that reads the store as it is at
/// each get.
class ReadView {
 public:
  virtual ~ReadView() = default;
  /// Looks a key up (as it was at the snapshot, or as it is now); fills
  /// *value (a fresh owned string) and returns true when found.
  virtual bool get(const std::string& key, std::string* value) = 0;
  /// The engine's own figures about the view while it is held (may be empty).
  virtual std::vector<Counter> counters() { return {}; }
};

/// A key-value store under test. Keys and values are byte strings; what comes
/// back (get, scan) is always a freshly built owned std::string.
class Engine {
 public:
  virtual ~Engine() = default;
  /// Short name, as given to --engine.
  virtual std::string name() const = 0;
  /// One line describing the build and configuration (printed in the header).
  virtual std::string description(const EngineConfig& config) const = 0;
  /// What a process crash and a power cut may lose, per operation, when opened with config.
  virtual std::string durability(const EngineConfig& config) const = 0;
  /// A file the engine's store always holds (destroy() refuses directories without it).
  virtual std::string marker() const = 0;
  /// Opens (creating if needed) the store in dir.
  virtual void open(const fs::path& dir, const EngineConfig& config) = 0;
  /// Stores one record (one atomic commit). Thread-safe.
  virtual void put(const std::string& key, const std::string& value) = 0;
  /// Looks a key up; fills *value (a fresh owned string) and returns true when found.
  virtual bool get(const std::string& key, std::string* value) = 0;
  /// Removes a key (present or not).
  virtual void erase(const std::string& key) = 0;
  /// Stores records as one atomic batch.
  virtual void put_batch(const std::vector<std::pair<std::string, std::string>>& records) = 0;
  /// Calls fn for every record in ascending key order.
  virtual void scan(const ScanFn& fn) = 0;
  /// Calls fn for up to n records with key >= from, ascending; returns how many.
  virtual std::uint64_t scan_from(const std::string& from, std::uint64_t n, const ScanFn& fn) = 0;
  /// Bulk writes start / end (SQLite groups them into transactions of 1,000).
  virtual void bulk_begin() {}
  virtual void bulk_end() {}
  /// Makes everything written so far durable and moves it into the store's
  /// long-term files (timed as part of every write workload).
  virtual void flush() = 0;
  /// Untimed, after flush(): lets background work finish (LevelDB, RocksDB:
  /// a full compaction) so that bytes on disk are the engine's settled size.
  virtual void settle() {}
  /// Closes the store (idempotent).
  virtual void close() = 0;
  /// Engine counters after a workload (may be empty).
  virtual std::vector<Counter> counters() = 0;
  /// The engine's native online backup, in a few words; empty when it has none.
  virtual std::string backup_method() const { return {}; }
  /// Writes an online backup of the open store into target (which does not
  /// exist yet), while other threads go on writing; returns what the engine
  /// itself reports about it (may be empty). Only when backup_method() is
  /// not empty.
  virtual std::vector<Counter> backup(const fs::path& target) {
    engine_error(name(), "no online backup (" + target.string() + ")");
  }
  /// The engine's snapshot (a consistent read view), in a few words.
  virtual std::string snapshot_method() const = 0;
  /// Takes a snapshot of the open store: reads through it see every write
  /// made before it and none made after, while other threads go on writing.
  virtual std::unique_ptr<ReadView> snapshot() = 0;
  /// How reader() reads the live store from a second thread, in a few words.
  virtual std::string reader_method() const = 0;
  /// A handle for one more thread to get keys of the live store through
  /// while other threads write (each get sees the writes committed before
  /// it, and holds nothing between gets).
  virtual std::unique_ptr<ReadView> reader() = 0;

  /// Removes the store in dir; refuses (throws) when dir is not empty and
  /// does not hold marker(). No-op when dir does not exist.
  void destroy(const fs::path& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) return;
    if (!fs::is_directory(dir, ec)) throw std::runtime_error(dir.string() + " exists and is not a directory");
    if (!fs::is_empty(dir, ec) && !fs::exists(dir / marker(), ec))
      throw std::runtime_error("refusing to wipe " + dir.string() + ": it is not empty and holds no " + marker() +
                               ", so it does not look like a " + name() + " store");
    fs::remove_all(dir);
  }
};

/// A ReadView that gets through Engine::get: the reader() of an engine whose
/// get() may be called from several threads at once.
class EngineReader final : public ReadView {
 public:
  explicit EngineReader(Engine& engine) : engine_(engine) {}
  bool get(const std::string& key, std::string* value) override { return engine_.get(key, value); }

 private:
  Engine& engine_;
};


// ---- stowage -----------------------------------------------------------------

/// stowage with the Eviction policy Eviction (--eviction=NAME picks it).
template <class Eviction>
class StowageEngine final : public Engine {
  using Store = stowage::Storage<std::string, std::string, stowage::BinarySerializer, stowage::Lz4Compression,
                                 Eviction, stowage::ThreadLock>;

 public:
  std::string name() const override { return "stowage"; }
  std::string description(const EngineConfig& c) const override {
    return "stowage::Storage<std::string, std::string> (BinarySerializer, Lz4Compression, eviction " +
           std::string(Eviction::name) + ", ThreadLock); cache_bytes " +
           (c.cache_bytes != 0 ? mib(c.cache_bytes) : mib(stowage::Options{}.cache_bytes) + " (default)") +
           " (block cache + write buffer), durability " + (c.sync ? "sync" : "none") +
           (c.wal_mmap ? "" : ", wal_mmap off");
  }
  std::string durability(const EngineConfig& c) const override {
    return c.sync ? "each put fdatasynced before it returns (group commit): nothing acknowledged is lost"
                  : "each put written to the OS (WAL): a process crash loses nothing, a power cut may lose the "
                    "writes since the last flush()";
  }
  std::string marker() const override { return "MANIFEST"; }
  void open(const fs::path& dir, const EngineConfig& config) override {
    stowage::Options options;
    if (config.cache_bytes != 0) options.cache_bytes = static_cast<std::size_t>(config.cache_bytes);
    if (config.chunk_bytes != 0) options.chunk_bytes = static_cast<std::size_t>(config.chunk_bytes);
    if (config.write_buffer_bytes != 0) options.write_buffer_bytes = static_cast<std::size_t>(config.write_buffer_bytes);
    options.durability = config.sync ? stowage::Durability::sync : stowage::Durability::none;
    options.wal_mmap = config.wal_mmap;
    db_ = std::make_unique<Store>(dir, std::move(options));
  }
  void put(const std::string& key, const std::string& value) override { db_->put(key, value); }
  bool get(const std::string& key, std::string* value) override {
    std::optional<std::string> v = db_->get(key);
    if (!v) return false;
    *value = std::move(*v);
    return true;
  }
  void erase(const std::string& key) override { db_->discard(key); }  // as the peers: no existence report
  void put_batch(const std::vector<std::pair<std::string, std::string>>& records) override {
    db_->put_batch(records);
  }
  void scan(const ScanFn& fn) override {
    for (const auto& [k, v] : db_->scan()) fn(k, v);
  }
  std::uint64_t scan_from(const std::string& from, std::uint64_t n, const ScanFn& fn) override {
    std::uint64_t got = 0;
    if (n == 0) return 0;
    for (const auto& [k, v] : db_->scan(from)) {
      fn(k, v);
      if (++got == n) break;
    }
    return got;
  }
  void flush() override {
    db_->checkpoint();
    db_->flush();
  }
  // As LevelDB's and RocksDB's CompactRange: every level merged into the last.
  void settle() override { db_->compact(); }
  std::string backup_method() const override {
    return "Storage::backup_to (chunk files hard-linked, WAL copied up to one commit)";
  }
  std::vector<Counter> backup(const fs::path& target) override {
    const stowage::BackupReport r = db_->backup_to(target);
    return {{"sequence", r.sequence},   {"files", r.files}, {"files_linked", r.files_linked},
            {"bytes", r.bytes},         {"bytes_written", r.bytes_written},
            {"micros", static_cast<std::uint64_t>(r.seconds * 1e6)}};
  }
  std::string snapshot_method() const override {
    return "Storage::snapshot(), a Storage::View (pins the write buffers of its moment; compactions keep the versions it sees)";
  }
  std::unique_ptr<ReadView> snapshot() override { return std::make_unique<View>(*db_); }
  std::string reader_method() const override {
    return "Storage::get from the second thread (Storage<..., ThreadLock> is thread-safe)";
  }
  std::unique_ptr<ReadView> reader() override { return std::make_unique<EngineReader>(*this); }
  void close() override {
    if (!db_) return;
    db_->close();
    db_.reset();
  }
  std::vector<Counter> counters() override {
    stowage::Stats s = db_->stats();
    return {{"records", s.records},
            {"chunks", s.chunks},
            {"cache_bytes", s.cache_bytes},
            {"cache_capacity", s.cache_capacity},
            {"write_buffer_bytes", s.write_buffer_bytes},
            {"cache_hits", s.cache_hits},
            {"cache_misses", s.cache_misses},
            {"block_form", static_cast<std::uint64_t>(s.block_form)},
            {"cache_evictions", s.cache_evictions},
            {"metadata_bytes", s.metadata_bytes},
            {"open_files", s.open_files},
            {"file_opens", s.file_opens},
            {"wal_bytes", s.wal_bytes},
            {"disk_bytes", s.disk_bytes},
            {"checkpoints", s.checkpoints},
            {"last_sequence", s.last_sequence},
            {"bytes_put", s.bytes_put},
            {"chunk_bytes_written", s.chunk_bytes_written},
            {"flushes", s.flushes},
            {"compactions", s.compactions},
            {"bytes_flushed", s.bytes_flushed},
            {"bytes_compacted", s.bytes_compacted},
            {"pending_compaction_bytes", s.pending_compaction_bytes},
            {"write_slowdowns", s.write_slowdowns},
            {"write_slowed_micros", s.write_slowed_micros},
            {"compaction_pauses", s.compaction_pauses},
            {"compaction_paused_micros", s.compaction_paused_micros},
            {"uncounted_records", s.uncounted_records},
            {"count_micros", s.count_micros}};
  }

 private:
  /// The records at db.snapshot(): released when the View dies.
  class View final : public ReadView {
   public:
    explicit View(Store& db) : db_(db), view_(db.snapshot()) {}
    bool get(const std::string& key, std::string* value) override {
      std::optional<std::string> v = view_.get(key);
      if (!v) return false;
      *value = std::move(*v);
      return true;
    }
    std::vector<Counter> counters() override {
      const stowage::Stats s = db_.stats();
      return {{"sequence", view_.sequence()},
              {"snapshots", s.snapshots},
              {"snapshot_versions", s.snapshot_versions},
              {"snapshot_pinned_bytes", s.snapshot_pinned_bytes},
              {"write_buffer_bytes", s.write_buffer_bytes},
              {"disk_bytes", s.disk_bytes}};
    }

   private:
    Store& db_;
    typename Store::View view_;
  };

  std::unique_ptr<Store> db_;
};

// ---- LevelDB -------------------------------------------------------------------

#ifdef STOWAGE_BENCH_HAVE_LEVELDB
/// LevelDB as its documentation (doc/index.md) recommends: default options
/// (Snappy compression, 4 MiB write buffer, 4 KiB blocks), an LRU block cache
/// of cache_bytes, and a Bloom filter of 10 bits per key.
class LevelDbEngine final : public Engine {
 public:
  ~LevelDbEngine() override { close(); }
  std::string name() const override { return "leveldb"; }
  std::string description(const EngineConfig& c) const override {
    return "LevelDB defaults (Snappy, 4 MiB write buffer), " +
           (c.cache_bytes != 0 ? "NewLRUCache(" + mib(c.cache_bytes) + ")" : std::string("its default 8 MiB block cache")) +
           ", NewBloomFilterPolicy(10), WriteOptions.sync=" + (c.sync ? "true" : "false");
  }
  std::string durability(const EngineConfig& c) const override {
    return c.sync ? "each put fsynced before it returns (group commit)"
                  : "each put written to the OS (log): a process crash loses nothing, a power cut may lose recent "
                    "writes";
  }
  std::string marker() const override { return "CURRENT"; }
  void open(const fs::path& dir, const EngineConfig& config) override {
    cache_.reset(config.cache_bytes != 0 ? leveldb::NewLRUCache(static_cast<std::size_t>(config.cache_bytes)) : nullptr);
    filter_.reset(leveldb::NewBloomFilterPolicy(10));
    leveldb::Options o;
    o.create_if_missing = true;
    o.block_cache = cache_.get();  // null: LevelDB makes its own of 8 MiB
    o.filter_policy = filter_.get();
    leveldb::DB* db = nullptr;
    check(leveldb::DB::Open(o, dir.string(), &db), "open");
    db_.reset(db);
    write_.sync = config.sync;
  }
  void put(const std::string& key, const std::string& value) override { check(db_->Put(write_, key, value), "put"); }
  bool get(const std::string& key, std::string* value) override {
    std::string v;
    leveldb::Status s = db_->Get(leveldb::ReadOptions(), key, &v);
    if (s.IsNotFound()) return false;
    check(s, "get");
    *value = std::move(v);
    return true;
  }
  void erase(const std::string& key) override { check(db_->Delete(write_, key), "delete"); }
  void put_batch(const std::vector<std::pair<std::string, std::string>>& records) override {
    leveldb::WriteBatch b;
    for (const auto& [k, v] : records) b.Put(k, v);
    check(db_->Write(write_, &b), "write batch");
  }
  void scan(const ScanFn& fn) override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) emit(*it, fn);
    check(it->status(), "scan");
  }
  std::uint64_t scan_from(const std::string& from, std::uint64_t n, const ScanFn& fn) override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    std::uint64_t got = 0;
    for (it->Seek(from); got < n && it->Valid(); it->Next(), ++got) emit(*it, fn);
    check(it->status(), "scan");
    return got;
  }
  void flush() override {
    // LevelDB has no public memtable flush: a synced (empty) write makes the
    // log, and so every earlier write, durable.
    leveldb::WriteOptions w;
    w.sync = true;
    leveldb::WriteBatch empty;
    check(db_->Write(w, &empty), "sync");
  }
  void settle() override { db_->CompactRange(nullptr, nullptr); }
  std::string snapshot_method() const override {
    return "DB::GetSnapshot, read through ReadOptions.snapshot, ReleaseSnapshot at the end";
  }
  std::unique_ptr<ReadView> snapshot() override { return std::make_unique<View>(db_.get()); }
  std::string reader_method() const override {
    return "DB::Get (default ReadOptions) from the second thread (a DB is thread-safe)";
  }
  std::unique_ptr<ReadView> reader() override { return std::make_unique<EngineReader>(*this); }
  void close() override {
    db_.reset();
    cache_.reset();
    filter_.reset();
  }
  std::vector<Counter> counters() override {
    std::string v;
    std::vector<Counter> out;
    if (db_->GetProperty("leveldb.approximate-memory-usage", &v)) out.emplace_back("approximate_memory_usage", std::stoull(v));
    return out;
  }

 private:
  /// Reads at db->GetSnapshot(); released when the View dies.
  class View final : public ReadView {
   public:
    explicit View(leveldb::DB* db) : db_(db) { read_.snapshot = db_->GetSnapshot(); }
    ~View() override { db_->ReleaseSnapshot(read_.snapshot); }
    View(const View&) = delete;
    View& operator=(const View&) = delete;
    bool get(const std::string& key, std::string* value) override {
      std::string v;
      leveldb::Status s = db_->Get(read_, key, &v);
      if (s.IsNotFound()) return false;
      check(s, "snapshot get");
      *value = std::move(v);
      return true;
    }

   private:
    leveldb::DB* db_;
    leveldb::ReadOptions read_;
  };

  static void emit(leveldb::Iterator& it, const ScanFn& fn) {
    const std::string k(it.key().data(), it.key().size());
    const std::string v(it.value().data(), it.value().size());
    fn(k, v);
  }
  static void check(const leveldb::Status& s, const char* what) {
    if (!s.ok()) engine_error("leveldb", std::string(what) + ": " + s.ToString());
  }
  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::unique_ptr<leveldb::DB> db_;
  leveldb::WriteOptions write_;
};
#endif

// ---- RocksDB -------------------------------------------------------------------

#ifdef STOWAGE_BENCH_HAVE_ROCKSDB
/// RocksDB as its tuning guide ("Setup Options and Basic Tuning") recommends:
/// defaults plus LZ4 compression, an LRU block cache of cache_bytes holding the
/// index and filter blocks too (L0's pinned), a 10-bit Bloom filter, dynamic
/// level sizes and bytes_per_sync of 1 MiB. Index and filters are partitioned
/// (kTwoLevelIndexSearch, partition_filters, top level pinned), as the
/// "Partitioned Index/Filters" page recommends when they share a small cache:
/// without it a cache of 1/10 of the data thrashes on whole index blocks.
class RocksDbEngine final : public Engine {
 public:
  ~RocksDbEngine() override { close(); }
  std::string name() const override { return "rocksdb"; }
  std::string description(const EngineConfig& c) const override {
    return "RocksDB " + std::to_string(ROCKSDB_MAJOR) + "." + std::to_string(ROCKSDB_MINOR) +
           " defaults + LZ4, " +
           (c.cache_bytes != 0 ? "NewLRUCache(" + mib(c.cache_bytes) + ")" : std::string("its default block cache")) +
           ") with partitioned index/filter blocks, Bloom 10 bits, level_compaction_dynamic_level_bytes, "
           "bytes_per_sync 1 MiB, "
           "WriteOptions.sync=" + (c.sync ? "true" : "false");
  }
  std::string durability(const EngineConfig& c) const override {
    return c.sync ? "each put fsynced before it returns (group commit)"
                  : "each put written to the OS (WAL): a process crash loses nothing, a power cut may lose recent "
                    "writes";
  }
  std::string marker() const override { return "CURRENT"; }
  void open(const fs::path& dir, const EngineConfig& config) override {
    rocksdb::Options o;
    o.create_if_missing = true;
    o.compression = rocksdb::kLZ4Compression;
    o.level_compaction_dynamic_level_bytes = true;
    o.bytes_per_sync = 1 << 20;
    rocksdb::BlockBasedTableOptions t;
    if (config.cache_bytes != 0) t.block_cache = rocksdb::NewLRUCache(static_cast<std::size_t>(config.cache_bytes));
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    t.cache_index_and_filter_blocks = true;
    t.pin_l0_filter_and_index_blocks_in_cache = true;
    t.cache_index_and_filter_blocks_with_high_priority = true;
    t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
    t.partition_filters = true;
    t.metadata_block_size = 4096;
    t.pin_top_level_index_and_filter = true;
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    rocksdb::DB* db = nullptr;
    check(rocksdb::DB::Open(o, dir.string(), &db), "open");
    db_.reset(db);
    write_.sync = config.sync;
  }
  void put(const std::string& key, const std::string& value) override { check(db_->Put(write_, key, value), "put"); }
  bool get(const std::string& key, std::string* value) override {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &v);
    if (s.IsNotFound()) return false;
    check(s, "get");
    *value = std::move(v);
    return true;
  }
  void erase(const std::string& key) override { check(db_->Delete(write_, key), "delete"); }
  void put_batch(const std::vector<std::pair<std::string, std::string>>& records) override {
    rocksdb::WriteBatch b;
    for (const auto& [k, v] : records) check(b.Put(k, v), "batch put");
    check(db_->Write(write_, &b), "write batch");
  }
  void scan(const ScanFn& fn) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) emit(*it, fn);
    check(it->status(), "scan");
  }
  std::uint64_t scan_from(const std::string& from, std::uint64_t n, const ScanFn& fn) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    std::uint64_t got = 0;
    for (it->Seek(from); got < n && it->Valid(); it->Next(), ++got) emit(*it, fn);
    check(it->status(), "scan");
    return got;
  }
  void flush() override {
    check(db_->Flush(rocksdb::FlushOptions()), "flush");  // memtable into an SST, waits
    check(db_->FlushWAL(true), "sync WAL");
  }
  void settle() override {
    check(db_->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr), "compact");
  }
  std::string backup_method() const override {
    return "Checkpoint::CreateCheckpoint (SST files hard-linked; log_size_for_flush 0: memtable flushed first)";
  }
  std::vector<Counter> backup(const fs::path& target) override {
    rocksdb::Checkpoint* raw = nullptr;
    check(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint");
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    std::uint64_t sequence = 0;
    check(checkpoint->CreateCheckpoint(target.string(), 0, &sequence), "create checkpoint");
    return {{"sequence", sequence}};
  }
  std::string snapshot_method() const override {
    return "DB::GetSnapshot, read through ReadOptions.snapshot, ReleaseSnapshot at the end";
  }
  std::unique_ptr<ReadView> snapshot() override { return std::make_unique<View>(db_.get()); }
  std::string reader_method() const override {
    return "DB::Get (default ReadOptions) from the second thread (a DB is thread-safe)";
  }
  std::unique_ptr<ReadView> reader() override { return std::make_unique<EngineReader>(*this); }
  void close() override {
    if (!db_) return;
    db_->Close();
    db_.reset();
  }
  std::vector<Counter> counters() override {
    std::vector<Counter> out;
    for (const char* p : {"rocksdb.block-cache-usage", "rocksdb.cur-size-all-mem-tables",
                          "rocksdb.estimate-table-readers-mem", "rocksdb.num-files-at-level0"}) {
      std::uint64_t v = 0;
      if (db_->GetIntProperty(p, &v)) out.emplace_back(p + 8, v);
    }
    return out;
  }

 private:
  /// Reads at db->GetSnapshot(); released when the View dies.
  class View final : public ReadView {
   public:
    explicit View(rocksdb::DB* db) : db_(db) { read_.snapshot = db_->GetSnapshot(); }
    ~View() override { db_->ReleaseSnapshot(read_.snapshot); }
    View(const View&) = delete;
    View& operator=(const View&) = delete;
    bool get(const std::string& key, std::string* value) override {
      std::string v;
      rocksdb::Status s = db_->Get(read_, key, &v);
      if (s.IsNotFound()) return false;
      check(s, "snapshot get");
      *value = std::move(v);
      return true;
    }
    std::vector<Counter> counters() override {
      std::vector<Counter> out{{"sequence", read_.snapshot->GetSequenceNumber()}};
      std::uint64_t v = 0;
      if (db_->GetIntProperty("rocksdb.num-snapshots", &v)) out.emplace_back("num-snapshots", v);
      return out;
    }

   private:
    rocksdb::DB* db_;
    rocksdb::ReadOptions read_;
  };

  static void emit(rocksdb::Iterator& it, const ScanFn& fn) {
    const std::string k(it.key().data(), it.key().size());
    const std::string v(it.value().data(), it.value().size());
    fn(k, v);
  }
  static void check(const rocksdb::Status& s, const char* what) {
    if (!s.ok()) engine_error("rocksdb", std::string(what) + ": " + s.ToString());
  }
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_;
};
#endif

// ---- LMDB ----------------------------------------------------------------------

#ifdef STOWAGE_BENCH_HAVE_LMDB
/// LMDB as its documentation recommends for this use: a large map (64 GiB of
/// address space; the file grows only as pages are used), MDB_NOSYNC when
/// writes need not be durable one by one (mdb_env_sync() in flush), one write
/// transaction per put, reads through one reused read-only transaction
/// (mdb_txn_reset / mdb_txn_renew). LMDB has no cache of its own: it reads
/// through the OS page cache via mmap.
class LmdbEngine final : public Engine {
 public:
  ~LmdbEngine() override { close(); }
  std::string name() const override { return "lmdb"; }
  std::string description(const EngineConfig& c) const override {
    return std::string(MDB_VERSION_STRING) + ", mapsize 64 GiB, MDB_NOTLS" + (c.sync ? "" : " | MDB_NOSYNC") +
           ", a write transaction per put, no cache of its own (mmap)";
  }
  std::string durability(const EngineConfig& c) const override {
    return c.sync ? "each put's transaction fsynced at commit (no group commit: writers take turns)"
                  : "MDB_NOSYNC: each commit is in the OS: a process crash loses nothing, a power cut may undo the "
                    "transactions since the last mdb_env_sync()";
  }
  std::string marker() const override { return "data.mdb"; }
  void open(const fs::path& dir, const EngineConfig& config) override {
    fs::create_directories(dir);
    check(mdb_env_create(&env_), "env_create");
    check(mdb_env_set_mapsize(env_, std::size_t{64} << 30), "set_mapsize");
    unsigned flags = MDB_NOTLS | (config.sync ? 0u : static_cast<unsigned>(MDB_NOSYNC));
    int rc = mdb_env_open(env_, dir.c_str(), flags, 0644);
    if (rc != 0) {
      mdb_env_close(env_);
      env_ = nullptr;
      check(rc, "env_open");
    }
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    check(mdb_dbi_open(txn, nullptr, 0, &dbi_), "dbi_open");
    check(mdb_txn_commit(txn), "txn_commit");
    check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &rtxn_), "read txn");
    mdb_txn_reset(rtxn_);
  }
  void put(const std::string& key, const std::string& value) override {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    MDB_val k = val(key), v = val(value);
    int rc = mdb_put(txn, dbi_, &k, &v, 0);
    if (rc != 0) {
      mdb_txn_abort(txn);
      check(rc, "put");
    }
    check(mdb_txn_commit(txn), "commit");
  }
  bool get(const std::string& key, std::string* value) override { return get_renewed(rtxn_, dbi_, key, value); }
  void erase(const std::string& key) override {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    MDB_val k = val(key);
    int rc = mdb_del(txn, dbi_, &k, nullptr);
    if (rc != 0 && rc != MDB_NOTFOUND) {
      mdb_txn_abort(txn);
      check(rc, "del");
    }
    check(mdb_txn_commit(txn), "commit");
  }
  void put_batch(const std::vector<std::pair<std::string, std::string>>& records) override {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    for (const auto& [key, value] : records) {
      MDB_val k = val(key), v = val(value);
      int rc = mdb_put(txn, dbi_, &k, &v, 0);
      if (rc != 0) {
        mdb_txn_abort(txn);
        check(rc, "put");
      }
    }
    check(mdb_txn_commit(txn), "commit");
  }
  void scan(const ScanFn& fn) override { walk(nullptr, ~std::uint64_t{0}, fn); }
  std::uint64_t scan_from(const std::string& from, std::uint64_t n, const ScanFn& fn) override {
    return walk(&from, n, fn);
  }
  void flush() override { check(mdb_env_sync(env_, 1), "env_sync"); }
  std::string backup_method() const override {
    return "mdb_env_copy2(flags 0): a copy of the map from a read transaction (writers wait only for the meta pages)";
  }
  std::vector<Counter> backup(const fs::path& target) override {
    fs::create_directories(target);  // mdb_env_copy2 writes data.mdb into an existing empty directory
    check(mdb_env_copy2(env_, target.c_str(), 0), "env_copy2");
    return {};
  }
  std::string snapshot_method() const override {
    return "a read-only transaction (mdb_txn_begin MDB_RDONLY) held open, aborted at the end (MDB_NOTLS: "
           "another thread may read through it)";
  }
  std::unique_ptr<ReadView> snapshot() override { return std::make_unique<View>(env_, dbi_); }
  std::string reader_method() const override {
    return "a read-only transaction per get: the reader's own, mdb_txn_renew before and mdb_txn_reset after "
           "each (MDB_NOTLS: begun on one thread, used on another)";
  }
  std::unique_ptr<ReadView> reader() override { return std::make_unique<Reader>(env_, dbi_); }
  void close() override {
    if (!env_) return;
    if (rtxn_) mdb_txn_abort(rtxn_);
    rtxn_ = nullptr;
    mdb_dbi_close(env_, dbi_);
    mdb_env_close(env_);
    env_ = nullptr;
  }
  std::vector<Counter> counters() override {
    MDB_stat st{};
    MDB_envinfo info{};
    mdb_env_stat(env_, &st);
    mdb_env_info(env_, &info);
    return {{"entries", st.ms_entries},
            {"depth", st.ms_depth},
            {"leaf_pages", st.ms_leaf_pages},
            {"last_pgno", info.me_last_pgno}};
  }

 private:
  /// Reads through one read-only transaction, begun when the View is made
  /// and aborted when it dies. The env is opened with MDB_NOTLS, so the
  /// transaction is not tied to the thread that began it: another thread may
  /// use it (one at a time).
  class View final : public ReadView {
   public:
    View(MDB_env* env, MDB_dbi dbi) : env_(env), dbi_(dbi) {
      check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn_), "snapshot txn_begin");
    }
    ~View() override { mdb_txn_abort(txn_); }
    View(const View&) = delete;
    View& operator=(const View&) = delete;
    bool get(const std::string& key, std::string* value) override {
      MDB_val k = val(key), v{};
      int rc = mdb_get(txn_, dbi_, &k, &v);
      if (rc == MDB_NOTFOUND) return false;
      check(rc, "snapshot get");
      *value = std::string(static_cast<const char*>(v.mv_data), v.mv_size);
      return true;
    }
    std::vector<Counter> counters() override {
      MDB_envinfo info{};
      mdb_env_info(env_, &info);
      return {{"txnid", mdb_txn_id(txn_)},
              {"last_txnid", info.me_last_txnid},
              {"last_pgno", info.me_last_pgno}};
    }

   private:
    MDB_env* env_;
    MDB_dbi dbi_;
    MDB_txn* txn_ = nullptr;
  };

  /// Reads the live store for one more thread through a read-only
  /// transaction of its own, renewed for each get and reset after it (as
  /// get() does with rtxn_): each get reads the last committed transaction,
  /// and no pages are held between gets. MDB_NOTLS lets the thread that uses
  /// it differ from the one that began it.
  class Reader final : public ReadView {
   public:
    Reader(MDB_env* env, MDB_dbi dbi) : dbi_(dbi) {
      check(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn_), "reader txn_begin");
      mdb_txn_reset(txn_);
    }
    ~Reader() override { mdb_txn_abort(txn_); }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    bool get(const std::string& key, std::string* value) override { return get_renewed(txn_, dbi_, key, value); }

   private:
    MDB_dbi dbi_;
    MDB_txn* txn_ = nullptr;
  };

  /// A get in a read-only transaction of its own: renews txn (a reset
  /// read-only transaction), looks key up, copies the value out, resets txn.
  static bool get_renewed(MDB_txn* txn, MDB_dbi dbi, const std::string& key, std::string* value) {
    check(mdb_txn_renew(txn), "txn_renew");
    MDB_val k = val(key), v{};
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0) *value = std::string(static_cast<const char*>(v.mv_data), v.mv_size);
    mdb_txn_reset(txn);
    if (rc == MDB_NOTFOUND) return false;
    check(rc, "get");
    return true;
  }

  std::uint64_t walk(const std::string* from, std::uint64_t n, const ScanFn& fn) {
    check(mdb_txn_renew(rtxn_), "txn_renew");
    MDB_cursor* cur = nullptr;
    check(mdb_cursor_open(rtxn_, dbi_, &cur), "cursor_open");
    MDB_val k{}, v{};
    if (from) k = val(*from);
    std::uint64_t got = 0;
    int rc = mdb_cursor_get(cur, &k, &v, from ? MDB_SET_RANGE : MDB_FIRST);
    for (; rc == 0 && got < n; ++got) {
      const std::string key(static_cast<const char*>(k.mv_data), k.mv_size);
      const std::string value(static_cast<const char*>(v.mv_data), v.mv_size);
      fn(key, value);
      rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_reset(rtxn_);
    if (rc != 0 && rc != MDB_NOTFOUND) check(rc, "cursor_get");
    return got;
  }
  static MDB_val val(const std::string& s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
  static void check(int rc, const char* what) {
    if (rc != 0) engine_error("lmdb", std::string(what) + ": " + mdb_strerror(rc));
  }
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  MDB_txn* rtxn_ = nullptr;
};
#endif

// ---- SQLite --------------------------------------------------------------------

#ifdef STOWAGE_BENCH_HAVE_SQLITE
/// SQLite as its documentation recommends for a key-value table: WAL mode with
/// synchronous=NORMAL (FULL when every write must be durable), a WITHOUT ROWID
/// table keyed by a BLOB, prepared statements, a page cache of cache_bytes
/// (PRAGMA cache_size=-KiB), and bulk writes in transactions of 1,000.
/// One connection; a mutex serialises threads (SQLite's serialized mode).
class SqliteEngine final : public Engine {
 public:
  static constexpr std::uint64_t kBulkTxn = 1000;
  ~SqliteEngine() override { close(); }
  std::string name() const override { return "sqlite"; }
  std::string description(const EngineConfig& c) const override {
    return std::string("SQLite ") + sqlite3_libversion() + ", journal_mode=WAL, synchronous=" +
           (c.sync ? "FULL" : "NORMAL") + ", cache_size=" +
           (c.cache_bytes != 0 ? mib(c.cache_bytes) : std::string("its default (2 MiB)")) +
           ", WITHOUT ROWID table, prepared statements, bulk writes 1,000 per transaction";
  }
  std::string durability(const EngineConfig& c) const override {
    return c.sync ? "synchronous=FULL, each put its own transaction, WAL fsynced at commit (no group commit)"
                  : "synchronous=NORMAL: a process crash loses nothing committed, a power cut may roll back recent "
                    "commits; bulk writes commit every 1,000, so a crash may lose up to 999 writes that returned";
  }
  std::string marker() const override { return "db.sqlite"; }
  void open(const fs::path& dir, const EngineConfig& config) override {
    fs::create_directories(dir);
    const std::string path = (dir / "db.sqlite").string();
    int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      engine_error("sqlite", "open " + path + ": " + msg);
    }
    exec("PRAGMA journal_mode=WAL");
    exec(config.sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    if (config.cache_bytes != 0)
      exec("PRAGMA cache_size=-" + std::to_string(std::max<std::uint64_t>(1, config.cache_bytes / 1024)));
    path_ = path;
    cache_bytes_ = config.cache_bytes;
    exec("CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID");
    put_ = prepare("INSERT OR REPLACE INTO kv(k, v) VALUES(?1, ?2)");
    get_ = prepare("SELECT v FROM kv WHERE k = ?1");
    del_ = prepare("DELETE FROM kv WHERE k = ?1");
    scan_ = prepare("SELECT k, v FROM kv ORDER BY k");
    range_ = prepare("SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2");
    begin_ = prepare("BEGIN");
    commit_ = prepare("COMMIT");
  }
  void put(const std::string& key, const std::string& value) override {
    std::lock_guard g(mu_);
    before_write();
    bind(put_, 1, key);
    bind(put_, 2, value);
    step_done(put_, "put");
    after_write();
  }
  bool get(const std::string& key, std::string* value) override {
    std::lock_guard g(mu_);
    bind(get_, 1, key);
    int rc = sqlite3_step(get_);
    bool found = false;
    if (rc == SQLITE_ROW) {
      *value = column(get_, 0);
      found = true;
      rc = sqlite3_step(get_);
    }
    sqlite3_reset(get_);
    if (rc != SQLITE_DONE) fail("get");
    return found;
  }
  void erase(const std::string& key) override {
    std::lock_guard g(mu_);
    before_write();
    bind(del_, 1, key);
    step_done(del_, "delete");
    after_write();
  }
  void put_batch(const std::vector<std::pair<std::string, std::string>>& records) override {
    std::lock_guard g(mu_);
    commit_open();
    step_done(begin_, "begin");
    for (const auto& [k, v] : records) {
      bind(put_, 1, k);
      bind(put_, 2, v);
      step_done(put_, "put");
    }
    step_done(commit_, "commit");
  }
  void scan(const ScanFn& fn) override {
    std::lock_guard g(mu_);
    walk(scan_, ~std::uint64_t{0}, fn);
  }
  std::uint64_t scan_from(const std::string& from, std::uint64_t n, const ScanFn& fn) override {
    std::lock_guard g(mu_);
    bind(range_, 1, from);
    sqlite3_bind_int64(range_, 2, static_cast<sqlite3_int64>(n));
    return walk(range_, n, fn);
  }
  void bulk_begin() override {
    std::lock_guard g(mu_);
    bulk_ = true;
  }
  void bulk_end() override {
    std::lock_guard g(mu_);
    commit_open();
    bulk_ = false;
  }
  void flush() override {
    std::lock_guard g(mu_);
    commit_open();
    // Copies the WAL into the database file, fsyncing both, and empties the WAL.
    if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr) != SQLITE_OK)
      fail("wal_checkpoint");
  }
  void close() override {
    if (!db_) return;
    commit_open();
    for (sqlite3_stmt** s : {&put_, &get_, &del_, &scan_, &range_, &begin_, &commit_}) {
      sqlite3_finalize(*s);
      *s = nullptr;
    }
    sqlite3_close(db_);
    db_ = nullptr;
  }
  std::string backup_method() const override {
    return "online backup API: sqlite3_backup_step(-1) from a second connection (WAL: the writer goes on)";
  }
  std::vector<Counter> backup(const fs::path& target) override {
    // Its own connections, so the benchmark's connection (and mu_) is not
    // involved: one read transaction copies every page of one commit.
    fs::create_directories(target);
    const std::string dest_path = (target / "db.sqlite").string();
    sqlite3 *src = nullptr, *dst = nullptr;
    auto give_up = [&](const std::string& what, sqlite3* db) {
      std::string msg = what + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
      sqlite3_close(src);
      sqlite3_close(dst);
      engine_error("sqlite", msg);
    };
    if (sqlite3_open_v2(path_.c_str(), &src, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK)
      give_up("backup: open " + path_, src);
    if (sqlite3_open_v2(dest_path.c_str(), &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
      give_up("backup: open " + dest_path, dst);
    sqlite3_busy_timeout(src, 10000);
    sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
    if (b == nullptr) give_up("backup_init", dst);
    int rc;
    int pages = 0;
    do {
      rc = sqlite3_backup_step(b, -1);
      if (rc == SQLITE_DONE || rc == SQLITE_OK) pages = sqlite3_backup_pagecount(b);
      if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(1);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) give_up("backup_step", dst);
    sqlite3_close(src);
    if (sqlite3_close(dst) != SQLITE_OK) engine_error("sqlite", "backup: close " + dest_path);
    return {{"pages", static_cast<std::uint64_t>(pages)}};
  }
  std::string snapshot_method() const override {
    return "a read transaction (BEGIN, then a SELECT) held open on a second connection with its own cache_size "
           "(WAL: the writer goes on; checkpoints cannot pass it)";
  }
  std::unique_ptr<ReadView> snapshot() override { return std::make_unique<View>(path_, cache_bytes_, true); }
  std::string reader_method() const override {
    return "a second connection with its own cache_size, each get its own autocommit SELECT (a read transaction "
           "that ends with it; WAL: the writer goes on, checkpoints pass between gets)";
  }
  std::unique_ptr<ReadView> reader() override { return std::make_unique<View>(path_, cache_bytes_, false); }
  std::vector<Counter> counters() override {
    int cur = 0, hi = 0;
    sqlite3_db_status(db_, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0);
    std::vector<Counter> out{{"cache_used", static_cast<std::uint64_t>(cur)}};
    sqlite3_db_status(db_, SQLITE_DBSTATUS_CACHE_HIT, &cur, &hi, 0);
    out.emplace_back("cache_hit", static_cast<std::uint64_t>(cur));
    sqlite3_db_status(db_, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 0);
    out.emplace_back("cache_miss", static_cast<std::uint64_t>(cur));
    return out;
  }

 private:
  /// A second connection, its own (so the benchmark's connection and mu_
  /// are not involved). A snapshot (hold) holds one read transaction open
  /// from the View's making to its death: in WAL mode every read through it
  /// sees the database as of that transaction's first read. A reader (not
  /// hold) runs each get as its own statement in autocommit mode, so its own
  /// read transaction, ended when the statement is reset: it reads the last
  /// commit, and checkpoints may pass it between gets.
  class View final : public ReadView {
   public:
    View(const std::string& path, std::uint64_t cache_bytes, bool hold)
        : hold_(hold), role_(hold ? "snapshot" : "reader") {
      if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        engine_error("sqlite", std::string(role_) + ": open " + path + ": " + msg);
      }
      try {
        sqlite3_busy_timeout(db_, 10000);
        if (cache_bytes != 0)
          run("PRAGMA cache_size=-" + std::to_string(std::max<std::uint64_t>(1, cache_bytes / 1024)));
        get_ = prepare("SELECT v FROM kv WHERE k = ?1");
        if (hold_) {
          run("BEGIN");
          // The read transaction starts at its first read of the database.
          run("SELECT 1 FROM kv LIMIT 1");
        }
      } catch (...) {
        sqlite3_finalize(get_);
        sqlite3_close(db_);
        throw;
      }
    }
    ~View() override {
      sqlite3_finalize(get_);
      if (hold_) sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);  // a read transaction: nothing to keep
      sqlite3_close(db_);
    }
    View(const View&) = delete;
    View& operator=(const View&) = delete;
    bool get(const std::string& key, std::string* value) override {
      if (sqlite3_bind_blob(get_, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC) != SQLITE_OK)
        fail("bind");
      int rc = sqlite3_step(get_);
      bool found = false;
      if (rc == SQLITE_ROW) {
        *value = column(get_, 0);
        found = true;
        rc = sqlite3_step(get_);
      }
      sqlite3_reset(get_);
      if (rc != SQLITE_DONE) fail("get");
      return found;
    }

   private:
    sqlite3_stmt* prepare(const char* sql) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) fail(sql);
      return s;
    }
    void run(const std::string& sql) {
      char* err = nullptr;
      if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "?";
        sqlite3_free(err);
        engine_error("sqlite", std::string(role_) + ": " + sql + ": " + msg);
      }
    }
    [[noreturn]] void fail(const char* what) {
      engine_error("sqlite", std::string(role_) + " " + what + ": " + sqlite3_errmsg(db_));
    }
    bool hold_;
    const char* role_;  // "snapshot" or "reader", in error messages
    sqlite3* db_ = nullptr;
    sqlite3_stmt* get_ = nullptr;
  };

  void before_write() {
    if (bulk_ && !in_txn_) {
      step_done(begin_, "begin");
      in_txn_ = true;
      pending_ = 0;
    }
  }
  void after_write() {
    if (in_txn_ && ++pending_ >= kBulkTxn) commit_open();
  }
  void commit_open() {
    if (!in_txn_) return;
    in_txn_ = false;
    step_done(commit_, "commit");
  }
  std::uint64_t walk(sqlite3_stmt* s, std::uint64_t n, const ScanFn& fn) {
    std::uint64_t got = 0;
    int rc;
    while (got < n && (rc = sqlite3_step(s)) == SQLITE_ROW) {
      const std::string k = column(s, 0);
      const std::string v = column(s, 1);
      fn(k, v);
      ++got;
    }
    if (got < n && rc != SQLITE_DONE) {
      sqlite3_reset(s);
      fail("scan");
    }
    sqlite3_reset(s);
    return got;
  }
  static std::string column(sqlite3_stmt* s, int i) {
    const void* p = sqlite3_column_blob(s, i);
    const int n = sqlite3_column_bytes(s, i);
    return n > 0 ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
  }
  void bind(sqlite3_stmt* s, int i, const std::string& v) {
    if (sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC) != SQLITE_OK) fail("bind");
  }
  void step_done(sqlite3_stmt* s, const char* what) {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) fail(what);
  }
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) fail(sql);
    return s;
  }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      engine_error("sqlite", sql + ": " + msg);
    }
  }
  [[noreturn]] void fail(const char* what) { engine_error("sqlite", std::string(what) + ": " + sqlite3_errmsg(db_)); }

  std::mutex mu_;
  std::string path_;  // the database file (backup and snapshot open their own connections to it)
  std::uint64_t cache_bytes_ = 0;  // the snapshot's connection gets the same cache_size
  sqlite3* db_ = nullptr;
  sqlite3_stmt *put_ = nullptr, *get_ = nullptr, *del_ = nullptr, *scan_ = nullptr, *range_ = nullptr,
               *begin_ = nullptr, *commit_ = nullptr;
  bool bulk_ = false, in_txn_ = false;
  std::uint64_t pending_ = 0;
};
#endif

// ---- the engine list -----------------------------------------------------------

/// The engines this binary was built with, in --engine order.
std::vector<std::string> built_engines() {
  std::vector<std::string> out{"stowage"};
#ifdef STOWAGE_BENCH_HAVE_LEVELDB
  out.emplace_back("leveldb");
#endif
#ifdef STOWAGE_BENCH_HAVE_ROCKSDB
  out.emplace_back("rocksdb");
#endif
#ifdef STOWAGE_BENCH_HAVE_LMDB
  out.emplace_back("lmdb");
#endif
#ifdef STOWAGE_BENCH_HAVE_SQLITE
  out.emplace_back("sqlite");
#endif
  return out;
}

std::string joined(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

/// stowage's engine with the named Eviction policy, or nullptr.
std::unique_ptr<Engine> make_stowage_engine(std::string_view eviction) {
  if (eviction == stowage::LruEviction::name) return std::make_unique<StowageEngine<stowage::LruEviction>>();
  if (eviction == stowage::ShadowTinyLfuEviction::name)
    return std::make_unique<StowageEngine<stowage::ShadowTinyLfuEviction>>();
  if (eviction == stowage::WTinyLfuEviction::name) return std::make_unique<StowageEngine<stowage::WTinyLfuEviction>>();
  if (eviction == stowage::S3FifoEviction::name) return std::make_unique<StowageEngine<stowage::S3FifoEviction>>();
  if (eviction == stowage::SieveEviction::name) return std::make_unique<StowageEngine<stowage::SieveEviction>>();
  return nullptr;
}

std::unique_ptr<Engine> make_engine(std::string_view name, std::string_view eviction) {
  if (name == "stowage") return make_stowage_engine(eviction);
#ifdef STOWAGE_BENCH_HAVE_LEVELDB
  if (name == "leveldb") return std::make_unique<LevelDbEngine>();
#endif
#ifdef STOWAGE_BENCH_HAVE_ROCKSDB
  if (name == "rocksdb") return std::make_unique<RocksDbEngine>();
#endif
#ifdef STOWAGE_BENCH_HAVE_LMDB
  if (name == "lmdb") return std::make_unique<LmdbEngine>();
#endif
#ifdef STOWAGE_BENCH_HAVE_SQLITE
  if (name == "sqlite") return std::make_unique<SqliteEngine>();
#endif
  return nullptr;
}

/// The Debian package an engine needs, for the "not built with" message.
const char* engine_package(std::string_view name) {
  if (name == "leveldb") return "libleveldb-dev";
  if (name == "rocksdb") return "librocksdb-dev";
  if (name == "lmdb") return "liblmdb-dev";
  if (name == "sqlite") return "libsqlite3-dev";
  return nullptr;
}

// ---- flags -------------------------------------------------------------------

struct Flags {
  std::string benchmarks = "fillseq,fillrandom,readrandom,readseq";
  std::string engine = "stowage";
  std::string group;  // a label copied into the JSON lines
  std::uint64_t num = 1000000;
  std::optional<std::uint64_t> reads;       // default: num
  std::optional<std::uint64_t> sync_num;    // default: num / 100
  std::optional<std::uint64_t> ycsb_ops;    // default: num
  std::optional<std::uint64_t> ycsb_scans;  // default: num / 10
  std::uint64_t value_size = 100;
  double compression_ratio = 0.5;
  std::uint64_t batch_size = 1000;
  std::uint64_t seed = 301;
  EngineConfig config;
  std::string db;  // empty: a fresh directory under /tmp
  bool keep = false;
  bool use_existing_db = false;
  bool no_flush = false;  // write workloads end without flush() and settle()
  std::string latency = "writes";  // which operations are timed one by one: writes, all, none
};

const char* const kWorkloads[] = {"fillseq",    "fillrandom", "fillbatch",      "overwrite", "fillsync",
                                  "fillsync2",  "load",       "warmup",         "readrandom", "readrandom-cold",
                                  "readmissing", "readseq",   "deleterandom",   "ycsb-a",    "ycsb-b",
                                  "ycsb-c",     "ycsb-e",     "ycsb-f",         "reopen",    "backup",
                                  "overwrite_during_backup", "overwrite_during_snapshot",
                                  "overwrite_holding_snapshot", "overwrite_during_reads"};

bool known_workload(std::string_view w) {
  for (const char* k : kWorkloads)
    if (w == k) return true;
  return false;
}

void usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: db_bench [flags]\n"
      "  --benchmarks=LIST      comma list, run in order on the same store (default\n"
      "                         fillseq,fillrandom,readrandom,readseq). Known:\n"
      "    fillseq          write num records in key order into an empty store\n"
      "    fillrandom       write num records with uniformly random keys into an empty store\n"
      "    fillbatch        fillseq through put_batch of --batch_size records (atomic batches)\n"
      "    overwrite        write num records with random keys into the current store\n"
      "    fillsync         --sync_num random writes into an empty store, each durable (sync)\n"
      "    fillsync2        the same from 2 writer threads (--sync_num in all; group commit)\n"
      "    load             write every key 0..num-1 once, in a fixed random order, into an empty store\n"
      "    warmup           get every key once in a random order (fills the cache; not a result)\n"
      "    readrandom       get --reads uniformly random keys of [0, num)\n"
      "    readrandom-cold  readrandom after reopening the store and dropping its files from the OS\n"
      "                     page cache (posix_fadvise DONTNEED); meant for a --cache_bytes ~1/10 of the store\n"
      "    readmissing      get --reads absent keys (a present key with '.' appended)\n"
      "    readseq          scan every record in key order\n"
      "    deleterandom     erase num uniformly random keys (some twice, some absent)\n"
      "    reopen           close the store and open it again, timed as one operation (after a fill\n"
      "                     without its own close: what a program pays to stop and start again)\n"
      "    backup           one online backup of the current store (after a fill) into a fresh directory\n"
      "                     beside it (<store>-backups/): seconds, bytes of the backup, bytes written (its\n"
      "                     files that are not hard links of the store's), the engine's own report; then\n"
      "                     the backup is opened and 1,000 random keys checked against the store. Native\n"
      "                     backups: stowage backup_to, RocksDB Checkpoint, LMDB mdb_env_copy2 (flags 0),\n"
      "                     SQLite online backup API from a second connection; LevelDB has none (n/a)\n"
      "    overwrite_during_backup\n"
      "                     overwrite (each put timed) while a second thread takes online backups back\n"
      "                     to back into fresh directories, deleting each previous one, from the first\n"
      "                     put to the last: put latency under backups, and the backups taken (n/a for\n"
      "                     LevelDB). SQLite's puts are grouped 1,000 per transaction, as in overwrite\n"
      "    overwrite_during_snapshot\n"
      "                     overwrite (each put timed) while a snapshot taken before the first put is held\n"
      "                     to the last, and a second thread gets random keys through it back to back:\n"
      "                     put latency under a held snapshot, the reads through it, and the bytes on\n"
      "                     disk before it is released (after the last put, before the final flush).\n"
      "                     Snapshots: stowage Storage::snapshot(), LevelDB and RocksDB GetSnapshot, LMDB\n"
      "                     a read-only transaction held open, SQLite a read transaction held open on a\n"
      "                     second connection. 1,000 random keys must read through it after the last put\n"
      "                     as they read from the store before the first. While it is held, LMDB's map\n"
      "                     file (which never shrinks) and SQLite's WAL grow with every put: mind the\n"
      "                     disk at a large --num\n"
      "    overwrite_holding_snapshot\n"
      "                     overwrite_during_snapshot without the reader: the snapshot is held from\n"
      "                     before the first put to after the last and read only by the check at the end\n"
      "    overwrite_during_reads\n"
      "                     overwrite (each put timed) while a second thread gets uniformly random keys\n"
      "                     of [0, num) from the live store back to back, from before the first put to\n"
      "                     after the last: put latency under a concurrent reader, and the reads made\n"
      "                     (timed with --latency=all). Readers: stowage Storage::get, LevelDB and\n"
      "                     RocksDB DB::Get, LMDB a read-only transaction per get (renewed and reset),\n"
      "                     SQLite a second connection, each get its own autocommit SELECT\n"
      "    ycsb-a|b|c|e|f   YCSB core workloads over [0, num) with the scrambled Zipfian (0.99)\n"
      "                     chooser: A 50%% read 50%% update, B 95/5, C read only, F 50%% read 50%%\n"
      "                     read-modify-write (--ycsb_ops each); E 95%% scans of 1..100 records\n"
      "                     from a Zipfian key, 5%% inserts of new keys (--ycsb_scans ops)\n"
      "                     Every write workload ends with flush() (durable, in the engine's files),\n"
      "                     timed; then settle() (stowage, LevelDB, RocksDB: full compaction), untimed.\n"
      "                     SQLite groups the writes of fills, overwrite(_during_backup, _during_snapshot,\n"
      "                     _holding_snapshot, _during_reads), load and deleterandom 1,000 per transaction;\n"
      "                     every other write is its own transaction.\n"
      "  --num=N                records (default 1000000)\n"
      "  --reads=N              gets for readrandom/readmissing (default --num)\n"
      "  --sync_num=N           writes for fillsync/fillsync2 (default --num / 100)\n"
      "  --ycsb_ops=N           operations for ycsb-a/b/c/f (default --num)\n"
      "  --ycsb_scans=N         operations for ycsb-e (default --num / 10)\n"
      "  --value_size=N         value bytes (default 100)\n"
      "  --compression_ratio=F  fraction of each value that is random (default 0.5)\n"
      "  --batch_size=N         records per put_batch in fillbatch (default 1000)\n"
      "  --cache_bytes=N        the engine's memory budget; K/M/G suffixes (default 64M); 'default':\n"
      "                         each engine's own default (stowage 64 MiB, LevelDB 8 MiB, RocksDB its\n"
      "                         default block cache, SQLite 2 MiB; LMDB has none)\n"
      "  --chunk_bytes=N        stowage Options::chunk_bytes (default: the engine's, 256K)\n"
      "  --write_buffer_bytes=N stowage Options::write_buffer_bytes (default: the engine's, cache_bytes / 4)\n"
      "  --wal_mmap=0|1         stowage Options::wal_mmap (default 1): WAL records through a shared map\n"
      "  --eviction=NAME        stowage's block cache policy: lru (default), shadow-tinylfu, w-tinylfu,\n"
      "                         s3-fifo, sieve\n"
      "  --durability=none|sync every write durable when it returns (default none; fillsync* always sync)\n"
      "  --latency=writes|all|none\n"
      "                         time each operation with steady_clock and report p50/p99/p99.9/max:\n"
      "                         writes (default): every put, erase and put_batch (fillbatch: per batch),\n"
      "                         and the writes of the YCSB workloads; all: gets and YCSB reads and scans\n"
      "                         too (two clock reads per operation cost ~50 ns, a visible share of a\n"
      "                         0.2 us get); none: no per-operation timing\n"
      "  --engine=NAME          engine under test (built: %s)\n"
      "  --list_engines         print the engines this binary was built with, one a line\n"
      "  --group=NAME           a label copied into every JSON line\n"
      "  --seed=N               base seed of the key and value generators (default 301)\n"
      "  --db=DIR               store directory (default: a fresh directory under /tmp,\n"
      "                         removed at the end unless --keep; a DIR given here is kept).\n"
      "                         Fills wipe it first: it must be empty or hold a store.\n"
      "  --use_existing_db      do not wipe --db before the first workload\n"
      "  --no_flush             write workloads end without flush() and settle(): the engine keeps its\n"
      "                         buffers and compaction debt, and the next workload (reopen) pays for them\n"
      "  --keep                 keep the default temporary directory\n"
      "  --help                 this text\n",
      joined(built_engines(), ", ").c_str());
}

[[noreturn]] void bad_flag(const std::string& msg) {
  std::fprintf(stderr, "db_bench: %s\n\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view name = arg, value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto need_value = [&] {
      if (!has_value) bad_flag("flag " + std::string(name) + " needs a value (" + std::string(name) + "=...)");
    };
    auto no_value = [&] {
      if (has_value) bad_flag("flag " + std::string(name) + " takes no value");
    };
    auto number = [&](bool allow_zero = false) {
      need_value();
      std::uint64_t v = 0;
      if (!parse_size(value, v) || (!allow_zero && v == 0))
        bad_flag("bad value for " + std::string(name) + ": '" + std::string(value) + "' (a positive integer)");
      return v;
    };
    if (name == "--help" || name == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (name == "--list_engines") {
      no_value();
      for (const auto& e : built_engines()) std::printf("%s\n", e.c_str());
      std::exit(0);
    } else if (name == "--benchmarks") {
      need_value();
      f.benchmarks = value;
    } else if (name == "--engine") {
      need_value();
      f.engine = value;
    } else if (name == "--group") {
      need_value();
      f.group = value;
    } else if (name == "--num") {
      f.num = number();
    } else if (name == "--reads") {
      f.reads = number();
    } else if (name == "--sync_num") {
      f.sync_num = number();
    } else if (name == "--ycsb_ops") {
      f.ycsb_ops = number();
    } else if (name == "--ycsb_scans") {
      f.ycsb_scans = number();
    } else if (name == "--value_size") {
      f.value_size = number();
    } else if (name == "--compression_ratio") {
      need_value();
      char* end = nullptr;
      std::string text(value);
      double r = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !(r > 0.0 && r <= 1.0))
        bad_flag("bad value for --compression_ratio: '" + text + "' (a number in (0, 1])");
      f.compression_ratio = r;
    } else if (name == "--batch_size") {
      f.batch_size = number();
    } else if (name == "--seed") {
      f.seed = number(/*allow_zero=*/true);
    } else if (name == "--cache_bytes") {
      if (value == "default") {
        f.config.cache_bytes = 0;
      } else {
        f.config.cache_bytes = number();
      }
    } else if (name == "--chunk_bytes") {
      f.config.chunk_bytes = number();
    } else if (name == "--write_buffer_bytes") {
      f.config.write_buffer_bytes = number();
    } else if (name == "--eviction") {
      need_value();
      f.config.eviction = value;
    } else if (name == "--durability") {
      need_value();
      if (value == "none") {
        f.config.sync = false;
      } else if (value == "sync") {
        f.config.sync = true;
      } else {
        bad_flag("bad value for --durability: '" + std::string(value) + "' (none or sync)");
      }
    } else if (name == "--latency") {
      need_value();
      if (value != "writes" && value != "all" && value != "none")
        bad_flag("bad value for --latency: '" + std::string(value) + "' (writes, all or none)");
      f.latency = value;
    } else if (name == "--db") {
      need_value();
      if (value.empty()) bad_flag("--db needs a directory");
      f.db = value;
    } else if (name == "--keep") {
      no_value();
      f.keep = true;
    } else if (name == "--wal_mmap") {
      need_value();
      if (value != "0" && value != "1") bad_flag("--wal_mmap takes 0 or 1");
      f.config.wal_mmap = value == "1";
    } else if (name == "--no_flush") {
      no_value();
      f.no_flush = true;
    } else if (name == "--use_existing_db") {
      no_value();
      f.use_existing_db = true;
    } else {
      bad_flag("unknown flag '" + std::string(arg) + "'");
    }
  }
  return f;
}

std::vector<std::string> split_list(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

// ---- data ----------------------------------------------------------------------

/// The record number as a 16-byte zero-padded decimal key.
void make_key(std::uint64_t n, std::string& key) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llu", static_cast<unsigned long long>(n));
  key.assign(buf, 16);
}
constexpr std::uint64_t kKeySize = 16;

/// Values in the manner of db_bench's RandomGenerator: a pool of about 1 MiB
/// made of pieces of value_size bytes, each piece ratio * value_size random
/// printable bytes repeated to fill it; values are consecutive slices.
class ValueGenerator {
 public:
  ValueGenerator(std::uint64_t value_size, double ratio, std::uint64_t seed) : size_(value_size) {
    std::uint64_t state = seed;
    std::uint64_t target = std::max<std::uint64_t>(std::uint64_t{1} << 20, value_size * 2);
    std::string raw;
    while (pool_.size() < target) {
      std::uint64_t raw_len = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(static_cast<double>(size_) * ratio));
      raw.clear();
      for (std::uint64_t i = 0; i < raw_len; ++i) raw.push_back(static_cast<char>(' ' + uniform(state, 95)));
      for (std::uint64_t i = 0; i < size_; ++i) pool_.push_back(raw[i % raw_len]);
    }
  }
  /// The next value; `cursor` lets each thread walk the pool on its own.
  void next(std::string& value, std::uint64_t& cursor) const {
    if (cursor + size_ > pool_.size()) cursor = 0;
    value.assign(pool_.data() + cursor, size_);
    cursor += size_;
  }

 private:
  std::uint64_t size_;
  std::string pool_;
};

// ---- workloads -------------------------------------------------------------------

struct Result {
  std::string workload;
  std::uint64_t ops = 0;
  std::uint64_t threads = 1;
  double seconds = 0;
  std::uint64_t bytes = 0;                  // key + value bytes moved
  std::optional<std::uint64_t> found;       // reads that found their key
  std::optional<std::uint64_t> total;       // reads (default: ops)
  std::optional<std::uint64_t> disk_bytes;  // write workloads: after flush() and settle()
  std::optional<std::uint64_t> disk_files;
  bool includes_flush = false;
  bool sync = false;
  std::string durability;
  std::uint64_t phase_peak_rss = 0;
  std::uint64_t peak_rss = 0;
  std::uint64_t rss_after = 0;
  std::vector<Counter> counters;
  /// Per-operation latencies (microseconds) of the workload's writes and of its
  /// reads; each present when that kind of operation was timed (--latency).
  struct Latency {
    std::string op;  ///< what one timed operation is: put, put_batch, erase, update, insert, get, scan, ...
    std::uint64_t count = 0;
    double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
  };
  std::optional<Latency> write_latency, read_latency;
  std::string write_op, read_op;       // set by the workload: what a timed write / read is
  std::optional<double> flush_seconds;  // write workloads: the final bulk_end() + flush(), inside `seconds`
  /// backup and overwrite_during_backup: what the backups did.
  struct Backups {
    std::string method;      ///< the engine's backup_method(); empty: it has none (n/a)
    std::uint64_t taken = 0;  ///< backups completed
    double seconds_sum = 0, seconds_max = 0;
    std::uint64_t bytes = 0;          ///< bytes of the last backup's files
    std::uint64_t bytes_written = 0;  ///< of the last backup: its files that are not hard links of the store's
    std::uint64_t bytes_written_sum = 0;
    std::uint64_t files = 0, files_linked = 0;  ///< of the last backup
    std::vector<Counter> report;                ///< the engine's own figures for the last backup
    std::optional<std::uint64_t> report_bytes_written_sum;  ///< the engine's own bytes_written, all backups
    std::string verified;                       ///< backup: the check of the backup against the store
  };
  std::optional<Backups> backups;
  /// overwrite_during_reads (and the base of SnapshotReads): the second thread's gets.
  struct Reads {
    std::string method;       ///< the engine's reader_method() (SnapshotReads: snapshot_method())
    std::uint64_t reads = 0;  ///< gets by the second thread
    std::uint64_t found = 0;  ///< of them, found
    double seconds = 0;       ///< the second thread's time, first get to last
  };
  std::optional<Reads> reads;
  /// overwrite_during_snapshot: the snapshot held and the reads through it.
  struct SnapshotReads : Reads {
    std::uint64_t disk_bytes_held = 0, disk_files_held = 0;  ///< after the last put, the snapshot still held
    std::vector<Counter> report;  ///< the engine's own figures, the snapshot still held
    std::string verified;         ///< the check of the snapshot against the store before the first put
  };
  std::optional<SnapshotReads> snapshot;
};

Result::Latency summarize(const LatencyHistogram& h, std::string op) {
  Result::Latency l;
  l.op = std::move(op);
  l.count = h.count();
  l.p50_us = static_cast<double>(h.percentile(0.50)) / 1e3;
  l.p99_us = static_cast<double>(h.percentile(0.99)) / 1e3;
  l.p999_us = static_cast<double>(h.percentile(0.999)) / 1e3;
  l.max_us = static_cast<double>(h.max()) / 1e3;
  l.mean_us = h.mean() / 1e3;
  return l;
}

/// Runs op(); when h is not null, times it with steady_clock into h.
template <class Op>
inline void timed(LatencyHistogram* h, Op&& op) {
  if (h == nullptr) {
    op();
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  op();
  h->record(nanos(start, std::chrono::steady_clock::now()));
}

/// posix_fadvise(DONTNEED) on every file under dir, after fdatasync, so the
/// next reads of those files come from the disk, not the OS page cache.
void drop_from_page_cache(const fs::path& dir) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    (void)::fdatasync(fd);
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

/// The store's regular files by (st_dev, st_ino): name and size.
using FileIds = std::map<std::pair<std::uint64_t, std::uint64_t>, std::pair<std::string, std::uint64_t>>;

/// The (device, inode), name and size of every regular file under dir
/// (files that vanish while it walks are skipped).
FileIds file_ids(const fs::path& dir) {
  FileIds out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
      out.emplace(std::pair{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)},
                  std::pair{it->path().filename().string(), static_cast<std::uint64_t>(st.st_size)});
  }
  return out;
}

/// Files, bytes and bytes written of the backup in target. A file is a hard
/// link (no bytes written) when it has more than one name now, or when it is
/// one of source's files as listed before the backup (same device, inode,
/// name and size: a store file the backup linked and the store has deleted
/// since; the name and size keep a copy that got a deleted file's inode
/// number from counting as a link). Any other file's bytes were written.
void measure_backup(const fs::path& target, const FileIds& source_ids, Result::Backups& b) {
  b.bytes = b.bytes_written = b.files = b.files_linked = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(target, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const auto size = static_cast<std::uint64_t>(st.st_size);
    ++b.files;
    b.bytes += size;
    const auto was = source_ids.find({static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)});
    if (st.st_nlink > 1 ||
        (was != source_ids.end() && was->second.first == it->path().filename().string() && was->second.second == size)) {
      ++b.files_linked;
    } else {
      b.bytes_written += size;
    }
  }
  if (ec) throw std::system_error(ec, "walking " + target.string());
}

class Benchmark {
 public:
  Benchmark(Flags flags, std::unique_ptr<Engine> engine, fs::path dir)
      : f_(std::move(flags)),
        engine_(std::move(engine)),
        dir_(std::move(dir)),
        values_(f_.value_size, f_.compression_ratio, f_.seed) {}

  void start() {
    if (!f_.use_existing_db) engine_->destroy(dir_);
    open(f_.config.sync);
  }
  void finish() { engine_->close(); }
  Engine& engine() { return *engine_; }

  /// Runs one workload (the name was checked by known_workload).
  Result run(const std::string& name, std::uint64_t index) {
    Result r;
    r.workload = name;
    std::uint64_t seed = f_.seed + 1000 * (index + 1);
    const bool during_backup = name == "overwrite_during_backup";
    if (name == "backup" || (during_backup && engine_->backup_method().empty())) {
      backup_once(r, seed);
      return r;
    }
    const bool holding_snapshot = name == "overwrite_holding_snapshot";
    const bool during_snapshot = name == "overwrite_during_snapshot" || holding_snapshot;
    const bool during_reads = name == "overwrite_during_reads";
    const bool overwrite = name == "overwrite" || during_backup || during_snapshot || during_reads;
    const bool write = name.rfind("fill", 0) == 0 || overwrite || name == "load" || name == "deleterandom";
    if (write && !overwrite && name != "deleterandom")
      fresh(name.rfind("fillsync", 0) == 0 || f_.config.sync);
    if (name == "readrandom-cold") {
      engine_->close();
      drop_from_page_cache(dir_);
      open(sync_);
    }
    r.sync = sync_;
    r.durability = engine_->durability(current_config());
    write_lat_.clear();
    read_lat_.clear();
    wl_ = f_.latency != "none" ? &write_lat_ : nullptr;
    rl_ = f_.latency == "all" ? &read_lat_ : nullptr;
    rss_.begin_phase();
    Stopwatch sw;
    if (write && name != "fillsync" && name != "fillsync2" && name != "fillbatch") engine_->bulk_begin();
    if (name == "fillseq") {
      fill(r, Order::sequential, f_.num, seed);
    } else if (name == "fillrandom" || name == "overwrite") {
      fill(r, Order::random, f_.num, seed);
    } else if (during_backup) {
      overwrite_during_backup(r, seed);
    } else if (during_snapshot) {
      overwrite_during_snapshot(r, seed, /*reader=*/!holding_snapshot);
    } else if (during_reads) {
      overwrite_during_reads(r, seed);
    } else if (name == "load") {
      fill(r, Order::permutation, f_.num, seed);
    } else if (name == "fillbatch") {
      fill_batch(r);
    } else if (name == "fillsync") {
      fill_threads(r, f_.sync_num.value_or(std::max<std::uint64_t>(1, f_.num / 100)), 1, seed);
    } else if (name == "fillsync2") {
      fill_threads(r, f_.sync_num.value_or(std::max<std::uint64_t>(1, f_.num / 100)), 2, seed);
    } else if (name == "deleterandom") {
      delete_random(r, seed);
    } else if (name == "warmup") {
      warmup(r, seed);
    } else if (name == "readrandom" || name == "readrandom-cold") {
      read_random(r, seed, false);
    } else if (name == "readmissing") {
      read_random(r, seed, true);
    } else if (name == "readseq") {
      read_seq(r);
    } else if (name.rfind("ycsb-", 0) == 0) {
      ycsb(r, name.back(), seed);
    } else if (name == "reopen") {
      engine_->close();
      open(sync_);
      r.ops = 1;
    }
    if (write && f_.no_flush) {
      engine_->bulk_end();
    } else if (write) {
      const auto flush_start = std::chrono::steady_clock::now();
      engine_->bulk_end();
      engine_->flush();
      r.flush_seconds = static_cast<double>(nanos(flush_start, std::chrono::steady_clock::now())) / 1e9;
      r.includes_flush = true;
    }
    r.seconds = sw.seconds();
    if (write_lat_.count() > 0) r.write_latency = summarize(write_lat_, r.write_op);
    if (read_lat_.count() > 0) r.read_latency = summarize(read_lat_, r.read_op);
    if (write && !f_.no_flush) {
      engine_->settle();
      r.disk_bytes = directory_bytes(dir_);
      r.disk_files = directory_files(dir_);
    }
    r.phase_peak_rss = rss_.phase_peak();
    r.peak_rss = rss_.overall();
    r.rss_after = current_rss();
    for (auto& c : engine_->counters()) r.counters.push_back(std::move(c));
    return r;
  }

  PeakRss& rss() { return rss_; }

 private:
  enum class Order { sequential, random, permutation };

  EngineConfig current_config() const {
    EngineConfig c = f_.config;
    c.sync = sync_;
    return c;
  }
  void open(bool sync) {
    sync_ = sync;
    engine_->open(dir_, current_config());
  }
  void fresh(bool sync) {
    engine_->close();
    engine_->destroy(dir_);
    open(sync);
  }

  void fill(Result& r, Order order, std::uint64_t n, std::uint64_t seed) {
    std::string key, value;
    std::uint64_t state = seed;
    Permutation perm(f_.num, seed);
    for (std::uint64_t i = 0; i < n; ++i) {
      std::uint64_t k = order == Order::sequential ? i : order == Order::random ? uniform(state, f_.num) : perm(i);
      make_key(k, key);
      values_.next(value, cursor_);
      timed(wl_, [&] { engine_->put(key, value); });
    }
    r.write_op = "put";
    r.ops = n;
    r.bytes = n * (kKeySize + f_.value_size);
  }

  /// Where the backups go: a directory beside the store's, made here.
  fs::path backup_root() const { return dir_.parent_path() / (dir_.filename().string() + "-backups"); }

  /// Takes one backup into target: the engine's backup, timed, then measured
  /// (source's files listed first, for the hard-link test).
  double take_backup(const fs::path& target, Result::Backups& b) {
    const FileIds source = file_ids(dir_);
    Stopwatch sw;
    std::vector<Counter> report = engine_->backup(target);
    const double seconds = sw.seconds();
    measure_backup(target, source, b);
    b.report = std::move(report);
    ++b.taken;
    b.seconds_sum += seconds;
    b.seconds_max = std::max(b.seconds_max, seconds);
    b.bytes_written_sum += b.bytes_written;
    for (const auto& [name, value] : b.report)
      if (name == "bytes_written") b.report_bytes_written_sum = b.report_bytes_written_sum.value_or(0) + value;
    return seconds;
  }

  /// backup (and overwrite_during_backup for an engine without backups: n/a).
  void backup_once(Result& r, std::uint64_t seed) {
    rss_.begin_phase();
    r.sync = sync_;
    r.durability = engine_->durability(current_config());
    r.backups = Result::Backups{};
    Result::Backups& b = *r.backups;
    b.method = engine_->backup_method();
    if (!b.method.empty()) {
      const fs::path root = backup_root();
      const fs::path target = root / "backup";
      fs::create_directories(root);
      if (fs::exists(target)) throw std::runtime_error(target.string() + " exists: remove it first");
      r.seconds = take_backup(target, b);
      r.ops = 1;
      b.verified = verify_backup(target, seed);
      fs::remove_all(root);
    }
    r.phase_peak_rss = rss_.phase_peak();
    r.peak_rss = rss_.overall();
    r.rss_after = current_rss();
    for (auto& c : engine_->counters()) r.counters.push_back(std::move(c));
  }

  /// Opens the backup in target as a store of the same engine and compares
  /// 1,000 random keys' values with the store's (nothing is written in
  /// between); throws when one differs.
  std::string verify_backup(const fs::path& target, std::uint64_t seed) {
    std::unique_ptr<Engine> copy = make_engine(f_.engine, f_.config.eviction);
    copy->open(target, current_config());
    constexpr std::uint64_t kSample = 1000;
    std::uint64_t state = seed ^ 0xBAC0ULL, found = 0;
    std::string key, in_store, in_backup;
    for (std::uint64_t i = 0; i < kSample; ++i) {
      make_key(uniform(state, f_.num), key);
      in_store.clear();
      in_backup.clear();
      const bool a = engine_->get(key, &in_store);
      const bool c = copy->get(key, &in_backup);
      if (a != c || in_store != in_backup) {
        copy->close();
        throw std::runtime_error("the backup in " + target.string() + " differs from the store at key " + key);
      }
      found += a ? 1 : 0;
    }
    copy->close();
    return "opened; " + std::to_string(kSample) + " random keys agree with the store (" + std::to_string(found) +
           " present)";
  }

  /// overwrite (num random puts into the current store, each timed, as
  /// `overwrite`) while side runs on a second thread: side(started, stop)
  /// calls started() once it is under way (the first put waits for that, or
  /// for side to throw) and goes on until stop() is true, which it is once
  /// the last put has returned. The thread is joined before this returns;
  /// what the puts threw is rethrown, else what side threw.
  template <class Side>
  void fill_while(Result& r, std::uint64_t seed, Side&& side) {
    std::atomic<bool> stop{false}, started{false};
    std::exception_ptr error;
    std::thread thread([&] {
      try {
        side([&] { started.store(true, std::memory_order_release); },
             [&] { return stop.load(std::memory_order_acquire); });
      } catch (...) {
        error = std::current_exception();
      }
      started.store(true, std::memory_order_release);  // side may have thrown before it started
    });
    while (!started.load(std::memory_order_acquire)) std::this_thread::yield();
    try {
      fill(r, Order::random, f_.num, seed);
    } catch (...) {
      stop.store(true, std::memory_order_release);
      thread.join();
      throw;
    }
    stop.store(true, std::memory_order_release);
    thread.join();
    if (error) std::rethrow_exception(error);
  }

  /// overwrite, while a second thread gets uniformly random keys of [0, num)
  /// through view, back to back, from before the first put to after the
  /// last, counted into reads (each timed into the read histogram, as
  /// read_op, with --latency=all).
  void overwrite_reading(Result& r, std::uint64_t seed, ReadView& view, Result::Reads& reads, const char* read_op) {
    std::optional<LatencyHistogram> reader_lat;  // merged into read_lat_ after
    if (rl_) reader_lat.emplace();
    fill_while(r, seed, [&](auto started, auto stop) {
      std::string key, value;
      std::uint64_t state = seed ^ 0x5EADULL;
      LatencyHistogram* lat = reader_lat ? &*reader_lat : nullptr;
      Stopwatch sw;
      started();
      do {
        make_key(uniform(state, f_.num), key);
        bool hit = false;
        timed(lat, [&] { hit = view.get(key, &value); });
        ++reads.reads;
        reads.found += hit ? 1 : 0;
      } while (!stop());
      reads.seconds = sw.seconds();
    });
    if (reader_lat) read_lat_.merge(*reader_lat);
    r.read_op = read_op;
  }

  /// overwrite, while a second thread takes backups back to back (each into
  /// a fresh directory, the previous one deleted once the next is taken)
  /// from before the first put until the last put has returned.
  void overwrite_during_backup(Result& r, std::uint64_t seed) {
    r.backups = Result::Backups{};
    Result::Backups& b = *r.backups;
    b.method = engine_->backup_method();
    const fs::path root = backup_root();
    fs::create_directories(root);
    try {
      fill_while(r, seed, [&](auto started, auto stop) {
        fs::path previous;
        for (std::uint64_t n = 0; n == 0 || !stop(); ++n) {
          const fs::path target = root / ("backup-" + std::to_string(n));
          if (fs::exists(target)) throw std::runtime_error(target.string() + " exists: remove it first");
          started();
          take_backup(target, b);
          if (!previous.empty()) fs::remove_all(previous);
          previous = target;
        }
        if (!previous.empty()) fs::remove_all(previous);
      });
    } catch (...) {
      std::error_code ec;
      fs::remove_all(root, ec);
      throw;
    }
    fs::remove_all(root);
  }

  /// overwrite, while a second thread gets uniformly random keys of the live
  /// store through the engine's reader(), back to back, from before the
  /// first put to after the last (timed into the read histogram with
  /// --latency=all): whether readers slow the puts down or stall them.
  void overwrite_during_reads(Result& r, std::uint64_t seed) {
    r.reads = Result::Reads{};
    r.reads->method = engine_->reader_method();
    std::unique_ptr<ReadView> reader = engine_->reader();
    overwrite_reading(r, seed, *reader, *r.reads, "get (second thread)");
  }

  /// overwrite, while a snapshot taken before the first put is held until
  /// the last put has returned, and (with reader; not in
  /// overwrite_holding_snapshot) a second thread gets random keys through
  /// it, back to back, from before the first put to the last (timed into the
  /// read histogram with --latency=all). Then, the snapshot still held: 1,000
  /// random keys must read through it as they read from the store before the
  /// first put (else it throws), and the store's bytes on disk are counted
  /// (before the final flush); then it is released. All inside the
  /// workload's time, as the backups are in overwrite_during_backup.
  void overwrite_during_snapshot(Result& r, std::uint64_t seed, bool reader) {
    r.snapshot = Result::SnapshotReads{};
    Result::SnapshotReads& s = *r.snapshot;
    s.method = engine_->snapshot_method();
    std::unique_ptr<ReadView> view = engine_->snapshot();
    // Nothing is written between the snapshot and these gets: they read its moment.
    constexpr std::uint64_t kSample = 1000;
    std::vector<std::pair<std::string, std::optional<std::string>>> sample;
    std::uint64_t state = seed ^ 0xBAC0ULL;
    for (std::uint64_t i = 0; i < kSample; ++i) {
      std::string key, value;
      make_key(uniform(state, f_.num), key);
      const bool found = engine_->get(key, &value);
      sample.emplace_back(std::move(key), found ? std::optional<std::string>(std::move(value)) : std::nullopt);
    }
    if (reader)
      overwrite_reading(r, seed, *view, s, "get (snapshot)");
    else
      fill(r, Order::random, f_.num, seed);
    std::uint64_t changed = 0, present = 0;
    for (const auto& [key, then] : sample) {
      std::string value;
      const bool found = view->get(key, &value);
      if (found != then.has_value() || (found && value != *then))
        throw std::runtime_error("the snapshot no longer reads key " + key + " as the store did when it was taken");
      present += found ? 1 : 0;
      std::string now;
      const bool now_found = engine_->get(key, &now);
      changed += now_found != found || (found && now != value) ? 1 : 0;
    }
    s.verified = std::to_string(kSample) + " random keys (" + std::to_string(present) +
                 " present) read through it as from the store before the first put; " + std::to_string(changed) +
                 " of them read otherwise from the store now";
    s.disk_bytes_held = directory_bytes(dir_);
    s.disk_files_held = directory_files(dir_);
    s.report = view->counters();
    view.reset();
  }

  void fill_threads(Result& r, std::uint64_t n, unsigned threads, std::uint64_t seed) {
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(threads);
    std::vector<LatencyHistogram> latencies(wl_ ? threads : 0);  // one per thread, merged after
    for (unsigned t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        try {
          std::string key, value;
          std::uint64_t state = seed + 7919 * t, cursor = 4096 * t * f_.value_size;
          LatencyHistogram* lat = wl_ ? &latencies[t] : nullptr;
          for (std::uint64_t i = t; i < n; i += threads) {
            make_key(uniform(state, f_.num), key);
            values_.next(value, cursor);
            timed(lat, [&] { engine_->put(key, value); });
          }
        } catch (...) {
          errors[t] = std::current_exception();
        }
      });
    }
    for (auto& th : pool) th.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
    for (const auto& l : latencies) write_lat_.merge(l);
    r.write_op = "put";
    r.ops = n;
    r.threads = threads;
    r.bytes = n * (kKeySize + f_.value_size);
  }

  void fill_batch(Result& r) {
    std::vector<std::pair<std::string, std::string>> batch;
    batch.reserve(static_cast<std::size_t>(f_.batch_size));
    std::string key, value;
    for (std::uint64_t i = 0; i < f_.num;) {
      batch.clear();
      for (std::uint64_t j = 0; j < f_.batch_size && i < f_.num; ++j, ++i) {
        make_key(i, key);
        values_.next(value, cursor_);
        batch.emplace_back(key, value);
      }
      timed(wl_, [&] { engine_->put_batch(batch); });
    }
    r.write_op = "put_batch";
    r.ops = f_.num;
    r.bytes = f_.num * (kKeySize + f_.value_size);
  }

  void delete_random(Result& r, std::uint64_t seed) {
    std::string key;
    std::uint64_t state = seed;
    for (std::uint64_t i = 0; i < f_.num; ++i) {
      make_key(uniform(state, f_.num), key);
      timed(wl_, [&] { engine_->erase(key); });
    }
    r.write_op = "erase";
    r.ops = f_.num;
    r.bytes = f_.num * kKeySize;
  }

  void warmup(Result& r, std::uint64_t seed) {
    Permutation perm(f_.num, seed);
    std::string key, value;
    std::uint64_t found = 0, bytes = 0;
    for (std::uint64_t i = 0; i < f_.num; ++i) {
      make_key(perm(i), key);
      bool hit = false;
      timed(rl_, [&] { hit = engine_->get(key, &value); });
      if (hit) {
        ++found;
        bytes += key.size() + value.size();
      }
    }
    r.read_op = "get";
    r.ops = f_.num;
    r.found = found;
    r.bytes = bytes;
  }

  void read_random(Result& r, std::uint64_t seed, bool missing) {
    std::uint64_t reads = f_.reads.value_or(f_.num);
    std::string key, value;
    std::uint64_t state = seed, found = 0, bytes = 0;
    for (std::uint64_t i = 0; i < reads; ++i) {
      make_key(uniform(state, f_.num), key);
      if (missing) key.push_back('.');
      bool hit = false;
      timed(rl_, [&] { hit = engine_->get(key, &value); });
      if (hit) {
        ++found;
        bytes += key.size() + value.size();
      }
    }
    r.read_op = "get";
    r.ops = reads;
    r.found = found;
    r.bytes = bytes;
  }

  void read_seq(Result& r) {
    std::uint64_t n = 0, bytes = 0;
    engine_->scan([&](const std::string& k, const std::string& v) {
      ++n;
      bytes += k.size() + v.size();
    });
    r.ops = n;
    r.found = n;
    r.bytes = bytes;
  }

  /// YCSB core workloads. Keys are record numbers 0..num-1 (loaded before);
  /// E inserts new record numbers num, num+1, ... and draws scan starts over
  /// the records inserted so far (re-drawing a chooser over num + expected
  /// inserts, as YCSB does). Updates write a whole new value.
  void ycsb(Result& r, char kind, std::uint64_t seed) {
    const std::uint64_t ops = kind == 'e' ? f_.ycsb_scans.value_or(std::max<std::uint64_t>(1, f_.num / 10))
                                          : f_.ycsb_ops.value_or(f_.num);
    const double read_share = kind == 'a' ? 0.5 : kind == 'b' ? 0.95 : kind == 'c' ? 1.0 : kind == 'f' ? 0.5 : 0.95;
    const std::uint64_t expected_inserts = kind == 'e' ? ops / 10 + 1 : 0;
    const ScrambledZipfian chooser(f_.num + expected_inserts);
    std::uint64_t state = seed, scan_state = seed ^ 0x5CA9ULL, inserted = f_.num;
    std::string key, value;
    std::uint64_t found = 0, bytes = 0, reads = 0;
    auto pick = [&] {
      std::uint64_t k;
      do k = chooser.next(state);
      while (k >= inserted);
      return k;
    };
    for (std::uint64_t i = 0; i < ops; ++i) {
      const bool read = uniform01(state) < read_share;
      if (kind == 'e') {
        if (read) {
          make_key(pick(), key);
          const std::uint64_t len = 1 + uniform(scan_state, 100);
          std::uint64_t got = 0;
          timed(rl_, [&] {
            got = engine_->scan_from(key, len, [&](const std::string& k, const std::string& v) {
              bytes += k.size() + v.size();
            });
          });
          ++reads;
          found += got > 0 ? 1 : 0;
        } else {
          make_key(inserted++, key);
          values_.next(value, cursor_);
          timed(wl_, [&] { engine_->put(key, value); });
          bytes += key.size() + value.size();
        }
        continue;
      }
      make_key(pick(), key);
      if (read) {
        ++reads;
        bool hit = false;
        timed(rl_, [&] { hit = engine_->get(key, &value); });
        if (hit) {
          ++found;
          bytes += key.size() + value.size();
        }
      } else if (kind == 'f') {  // read-modify-write: read, then write a new value (timed as one write)
        ++reads;
        timed(wl_, [&] {
          if (engine_->get(key, &value)) ++found;
          values_.next(value, cursor_);
          engine_->put(key, value);
        });
        bytes += 2 * (key.size() + value.size());
      } else {
        values_.next(value, cursor_);
        timed(wl_, [&] { engine_->put(key, value); });
        bytes += key.size() + value.size();
      }
    }
    r.write_op = kind == 'e' ? "insert" : kind == 'f' ? "read-modify-write" : "update";
    r.read_op = kind == 'e' ? "scan" : "get";
    r.ops = ops;
    r.found = found;
    r.total = reads;
    r.bytes = bytes;
  }

  Flags f_;
  std::unique_ptr<Engine> engine_;
  fs::path dir_;
  ValueGenerator values_;
  std::uint64_t cursor_ = 0;
  bool sync_ = false;
  PeakRss rss_;
  LatencyHistogram write_lat_, read_lat_;         // allocated once, cleared per workload
  LatencyHistogram *wl_ = nullptr, *rl_ = nullptr;  // the ones this workload records into (null: untimed)
};

// ---- output ------------------------------------------------------------------------

double ops_per_sec(const Result& r) { return r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0.0; }
double micros_per_op(const Result& r) {
  return r.ops > 0 ? r.seconds * 1e6 / static_cast<double>(r.ops) : 0.0;
}
double reads_per_sec(const Result::Reads& n) {
  return n.seconds > 0 ? static_cast<double>(n.reads) / n.seconds : 0.0;
}
double mb_per_sec(const Result& r) {
  return r.seconds > 0 ? static_cast<double>(r.bytes) / (1024.0 * 1024.0) / r.seconds : 0.0;
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void print_progress_line(const Result& r) {
  if (r.backups && r.backups->method.empty()) {
    std::printf("%-15s : n/a (the engine has no online backup; nothing ran)\n", r.workload.c_str());
    std::fflush(stdout);
    return;
  }
  std::printf("%-15s : %10.3f micros/op; %7.1f MB/s; %10.0f ops/s", r.workload.c_str(), micros_per_op(r),
              mb_per_sec(r), ops_per_sec(r));
  if (r.found) std::printf(" (%llu of %llu found)", static_cast<unsigned long long>(*r.found),
                           static_cast<unsigned long long>(r.total.value_or(r.ops)));
  if (r.disk_bytes) std::printf(" disk %s", mib(*r.disk_bytes).c_str());
  std::printf("; peak RSS %s\n", mib(r.peak_rss).c_str());
  auto latency_line = [](const char* kind, const Result::Latency& l) {
    std::printf("                  %s latency per %s (us): p50 %.2f  p99 %.2f  p99.9 %.2f  max %.1f  mean %.2f"
                " (%llu timed)\n",
                kind, l.op.c_str(), l.p50_us, l.p99_us, l.p999_us, l.max_us, l.mean_us,
                static_cast<unsigned long long>(l.count));
  };
  if (r.write_latency) latency_line("write", *r.write_latency);
  if (r.read_latency) latency_line("read", *r.read_latency);
  if (r.flush_seconds) std::printf("                  final flush: %.1f ms\n", *r.flush_seconds * 1e3);
  if (r.backups) {
    const Result::Backups& b = *r.backups;
    if (b.method.empty()) {
      std::printf("                  backup: n/a (the engine has no online backup)\n");
    } else {
      std::printf("                  backup: %s\n", b.method.c_str());
      std::printf("                  backups taken %llu, seconds mean %.3f max %.3f; last: %llu files (%llu hard "
                  "links), %llu bytes (%s), %llu bytes written (%s); written by all: %s\n",
                  static_cast<unsigned long long>(b.taken), b.taken ? b.seconds_sum / static_cast<double>(b.taken) : 0.0,
                  b.seconds_max, static_cast<unsigned long long>(b.files),
                  static_cast<unsigned long long>(b.files_linked), static_cast<unsigned long long>(b.bytes),
                  mib(b.bytes).c_str(), static_cast<unsigned long long>(b.bytes_written), mib(b.bytes_written).c_str(),
                  mib(b.bytes_written_sum).c_str());
      if (!b.report.empty()) {
        std::printf("                  the engine's report of the last:");
        for (const auto& [name, value] : b.report)
          std::printf(" %s=%llu", name.c_str(), static_cast<unsigned long long>(value));
        std::printf("\n");
      }
      if (b.report_bytes_written_sum)
        std::printf("                  the engine's bytes_written of all: %llu (%s)\n",
                    static_cast<unsigned long long>(*b.report_bytes_written_sum),
                    mib(*b.report_bytes_written_sum).c_str());
      if (!b.verified.empty()) std::printf("                  verified: %s\n", b.verified.c_str());
    }
  }
  if (r.snapshot) {
    const Result::SnapshotReads& n = *r.snapshot;
    std::printf("                  snapshot: %s\n", n.method.c_str());
    std::printf("                  reads through it %llu (%llu found), %.0f reads/s; disk while held %s (%llu files)\n",
                static_cast<unsigned long long>(n.reads), static_cast<unsigned long long>(n.found),
                reads_per_sec(n), mib(n.disk_bytes_held).c_str(),
                static_cast<unsigned long long>(n.disk_files_held));
    if (!n.report.empty()) {
      std::printf("                  the engine's figures while held:");
      for (const auto& [name, value] : n.report)
        std::printf(" %s=%llu", name.c_str(), static_cast<unsigned long long>(value));
      std::printf("\n");
    }
    std::printf("                  verified: %s\n", n.verified.c_str());
  }
  if (r.reads) {
    const Result::Reads& n = *r.reads;
    std::printf("                  reader: %s\n", n.method.c_str());
    std::printf("                  reads by the second thread %llu (%llu found), %.0f reads/s\n",
                static_cast<unsigned long long>(n.reads), static_cast<unsigned long long>(n.found),
                reads_per_sec(n));
  }
  std::printf("                  stats:");
  for (const auto& [name, value] : r.counters) std::printf(" %s=%llu", name.c_str(), static_cast<unsigned long long>(value));
  std::printf("\n");
  std::fflush(stdout);
}

void print_table(const std::vector<Result>& results) {
  std::printf("\n%-15s %9s %3s %8s %12s %11s %8s %10s %16s %10s %10s %-17s %9s %9s %9s %11s\n", "workload", "ops",
              "thr", "seconds", "ops/s", "micros/op", "MB/s", "disk", "found/total", "phase RSS", "peak RSS",
              "timed op", "p50 us", "p99 us", "p99.9 us", "max us");
  for (const auto& r : results) {
    if (r.backups && r.backups->method.empty()) {
      std::printf("%-15s n/a (no online backup)\n", r.workload.c_str());
      continue;
    }
    std::string found = "-";
    if (r.found) found = std::to_string(*r.found) + "/" + std::to_string(r.total.value_or(r.ops));
    std::string disk = r.disk_bytes ? mib(*r.disk_bytes) : "-";
    std::printf("%-15s %9llu %3llu %8.2f %12.0f %11.3f %8.1f %10s %16s %10s %10s", r.workload.c_str(),
                static_cast<unsigned long long>(r.ops), static_cast<unsigned long long>(r.threads), r.seconds,
                ops_per_sec(r), micros_per_op(r), mb_per_sec(r), disk.c_str(), found.c_str(),
                mib(r.phase_peak_rss).c_str(), mib(r.peak_rss).c_str());
    // The writes' latencies where the workload has writes, else its reads'.
    const std::optional<Result::Latency>& l = r.write_latency ? r.write_latency : r.read_latency;
    if (l) {
      std::printf(" %-17s %9.2f %9.2f %9.2f %11.1f\n", l->op.c_str(), l->p50_us, l->p99_us, l->p999_us, l->max_us);
    } else {
      std::printf(" %-17s %9s %9s %9s %11s\n", "-", "-", "-", "-", "-");
    }
  }
  bool any_backups = false;
  for (const auto& r : results) any_backups = any_backups || r.backups.has_value();
  if (any_backups) {
    std::printf("\n%-24s %7s %12s %12s %14s %14s %14s %7s %7s\n", "backups during", "taken", "mean s", "max s",
                "bytes (last)", "written (last)", "written (all)", "files", "linked");
    for (const auto& r : results) {
      if (!r.backups) continue;
      const Result::Backups& b = *r.backups;
      if (b.method.empty()) {
        std::printf("%-24s %7s %12s %12s %14s %14s %14s %7s %7s\n", r.workload.c_str(), "n/a", "n/a", "n/a", "n/a",
                    "n/a", "n/a", "n/a", "n/a");
        continue;
      }
      std::printf("%-24s %7llu %12.4f %12.4f %14llu %14llu %14llu %7llu %7llu\n", r.workload.c_str(),
                  static_cast<unsigned long long>(b.taken),
                  b.taken ? b.seconds_sum / static_cast<double>(b.taken) : 0.0, b.seconds_max,
                  static_cast<unsigned long long>(b.bytes), static_cast<unsigned long long>(b.bytes_written),
                  static_cast<unsigned long long>(b.bytes_written_sum), static_cast<unsigned long long>(b.files),
                  static_cast<unsigned long long>(b.files_linked));
    }
    std::printf("(written = bytes of the backup's files that are not hard links of the store's files)\n");
  }
  bool any_snapshot = false;
  for (const auto& r : results) any_snapshot = any_snapshot || r.snapshot.has_value();
  if (any_snapshot) {
    std::printf("\n%-26s %12s %12s %12s %14s %14s\n", "snapshot held during", "reads", "found", "reads/s",
                "disk held", "disk after");
    for (const auto& r : results) {
      if (!r.snapshot) continue;
      const Result::SnapshotReads& n = *r.snapshot;
      std::printf("%-26s %12llu %12llu %12.0f %14s %14s\n", r.workload.c_str(),
                  static_cast<unsigned long long>(n.reads), static_cast<unsigned long long>(n.found),
                  reads_per_sec(n), mib(n.disk_bytes_held).c_str(),
                  r.disk_bytes ? mib(*r.disk_bytes).c_str() : "-");
    }
    std::printf("(reads = gets through the snapshot by the second thread; disk held = after the last put, the\n"
                " snapshot still held, before the final flush; disk after = after its release, flush() and settle())\n");
  }
  bool any_reads = false;
  for (const auto& r : results) any_reads = any_reads || r.reads.has_value();
  if (any_reads) {
    std::printf("\n%-26s %12s %12s %12s %11s %11s\n", "reads during", "reads", "found", "reads/s", "p99.9 us",
                "max us");
    for (const auto& r : results) {
      if (!r.reads) continue;
      const Result::Reads& n = *r.reads;
      std::printf("%-26s %12llu %12llu %12.0f", r.workload.c_str(), static_cast<unsigned long long>(n.reads),
                  static_cast<unsigned long long>(n.found), reads_per_sec(n));
      if (r.read_latency) {
        std::printf(" %11.2f %11.1f\n", r.read_latency->p999_us, r.read_latency->max_us);
      } else {
        std::printf(" %11s %11s\n", "-", "-");
      }
    }
    std::printf("(reads = gets of the live store by the second thread, back to back while the puts ran; p99.9\n"
                " and max: of those gets, with --latency=all)\n");
  }
  std::printf("(write workloads include the final flush() in their time; disk = sum of the file sizes in the\n"
              " directory after flush() and an untimed settle(); phase RSS = peak RSS during the workload,\n"
              " peak RSS = process peak so far; MB = 2^20 bytes of key+value; p50 .. max = latency of one\n"
              " timed op, the workload's writes where it has any, else its reads (--latency=all), steady_clock,\n"
              " log-linear buckets < 0.8%% wide, the final flush not included)\n\n");
}

void print_json(const Flags& f, const std::string& engine, const Result& r) {
  std::printf("{\"engine\":\"%s\",\"group\":\"%s\",\"workload\":\"%s\",\"num\":%llu,\"ops\":%llu,\"threads\":%llu,"
              "\"seconds\":%.6f,\"ops_per_sec\":%.1f,\"micros_per_op\":%.4f,\"mb_per_sec\":%.2f",
              json_escape(engine).c_str(), json_escape(f.group).c_str(), json_escape(r.workload).c_str(),
              static_cast<unsigned long long>(f.num), static_cast<unsigned long long>(r.ops),
              static_cast<unsigned long long>(r.threads), r.seconds, ops_per_sec(r), micros_per_op(r), mb_per_sec(r));
  if (r.found) std::printf(",\"found\":%llu,\"total\":%llu", static_cast<unsigned long long>(*r.found),
                           static_cast<unsigned long long>(r.total.value_or(r.ops)));
  if (r.disk_bytes) std::printf(",\"disk_bytes\":%llu", static_cast<unsigned long long>(*r.disk_bytes));
  if (r.disk_files) std::printf(",\"disk_files\":%llu", static_cast<unsigned long long>(*r.disk_files));
  if (r.flush_seconds) std::printf(",\"flush_us\":%.1f", *r.flush_seconds * 1e6);
  auto latency_fields = [](const char* prefix, const Result::Latency& l) {
    std::printf(",\"%slatency_op\":\"%s\",\"%slatency_count\":%llu,\"%sp50_us\":%.3f,\"%sp99_us\":%.3f,"
                "\"%sp999_us\":%.3f,\"%smax_us\":%.3f,\"%smean_us\":%.3f",
                prefix, json_escape(l.op).c_str(), prefix, static_cast<unsigned long long>(l.count), prefix, l.p50_us,
                prefix, l.p99_us, prefix, l.p999_us, prefix, l.max_us, prefix, l.mean_us);
  };
  if (r.write_latency) latency_fields("", *r.write_latency);
  if (r.read_latency) latency_fields("read_", *r.read_latency);
  if (r.backups) {
    const Result::Backups& b = *r.backups;
    std::printf(",\"backup_method\":\"%s\",\"backup_supported\":%s", json_escape(b.method).c_str(),
                b.method.empty() ? "false" : "true");
    if (!b.method.empty()) {
      std::printf(",\"backups\":%llu,\"backup_seconds_mean\":%.6f,\"backup_seconds_max\":%.6f,\"backup_bytes\":%llu,"
                  "\"backup_bytes_written\":%llu,\"backup_bytes_written_all\":%llu,\"backup_files\":%llu,"
                  "\"backup_files_linked\":%llu,\"backup_verified\":\"%s\",\"backup_report\":{",
                  static_cast<unsigned long long>(b.taken),
                  b.taken ? b.seconds_sum / static_cast<double>(b.taken) : 0.0, b.seconds_max,
                  static_cast<unsigned long long>(b.bytes), static_cast<unsigned long long>(b.bytes_written),
                  static_cast<unsigned long long>(b.bytes_written_sum), static_cast<unsigned long long>(b.files),
                  static_cast<unsigned long long>(b.files_linked), json_escape(b.verified).c_str());
      bool first = true;
      for (const auto& [name, value] : b.report) {
        std::printf("%s\"%s\":%llu", first ? "" : ",", json_escape(name).c_str(),
                    static_cast<unsigned long long>(value));
        first = false;
      }
      std::printf("}");
      if (b.report_bytes_written_sum)
        std::printf(",\"backup_report_bytes_written_all\":%llu",
                    static_cast<unsigned long long>(*b.report_bytes_written_sum));
    }
  }
  if (r.reads) {
    const Result::Reads& n = *r.reads;
    std::printf(",\"reader_method\":\"%s\",\"reader_reads\":%llu,\"reader_found\":%llu,\"reader_read_seconds\":%.6f,"
                "\"reader_reads_per_sec\":%.1f",
                json_escape(n.method).c_str(), static_cast<unsigned long long>(n.reads),
                static_cast<unsigned long long>(n.found), n.seconds, reads_per_sec(n));
  }
  if (r.snapshot) {
    const Result::SnapshotReads& n = *r.snapshot;
    std::printf(",\"snapshot_method\":\"%s\",\"snapshot_reads\":%llu,\"snapshot_found\":%llu,"
                "\"snapshot_read_seconds\":%.6f,\"snapshot_disk_bytes_held\":%llu,\"snapshot_disk_files_held\":%llu,"
                "\"snapshot_verified\":\"%s\",\"snapshot_report\":{",
                json_escape(n.method).c_str(), static_cast<unsigned long long>(n.reads),
                static_cast<unsigned long long>(n.found), n.seconds, static_cast<unsigned long long>(n.disk_bytes_held),
                static_cast<unsigned long long>(n.disk_files_held), json_escape(n.verified).c_str());
    bool first = true;
    for (const auto& [name, value] : n.report) {
      std::printf("%s\"%s\":%llu", first ? "" : ",", json_escape(name).c_str(), static_cast<unsigned long long>(value));
      first = false;
    }
    std::printf("}");
  }
  std::printf(",\"includes_final_flush\":%s,\"peak_rss_bytes\":%llu,\"phase_peak_rss_bytes\":%llu,"
              "\"key_size\":%llu,\"value_size\":%llu,\"cache_bytes\":%llu,\"durability\":\"%s\","
              "\"durability_note\":\"%s\",\"engine_stats\":{",
              r.includes_flush ? "true" : "false", static_cast<unsigned long long>(r.peak_rss),
              static_cast<unsigned long long>(r.phase_peak_rss), static_cast<unsigned long long>(kKeySize),
              static_cast<unsigned long long>(f.value_size), static_cast<unsigned long long>(f.config.cache_bytes),
              r.sync ? "sync" : "none", json_escape(r.durability).c_str());
  bool first = true;
  for (const auto& [name, value] : r.counters) {
    std::printf("%s\"%s\":%llu", first ? "" : ",", json_escape(name).c_str(), static_cast<unsigned long long>(value));
    first = false;
  }
  std::printf("}}\n");
}

fs::path make_temp_dir() {
  std::error_code ec;
  fs::path base = fs::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string pattern = (base / "stowage_db_bench-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  return fs::path(buf.data());
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = parse_flags(argc, argv);
  std::vector<std::string> workloads = split_list(flags.benchmarks);
  if (workloads.empty()) bad_flag("--benchmarks is empty");
  for (const auto& w : workloads)
    if (!known_workload(w)) bad_flag("unknown benchmark '" + w + "'");
  std::unique_ptr<Engine> engine = make_engine(flags.engine, flags.config.eviction);
  if (!engine) {
    if (flags.engine == "stowage")
      bad_flag("unknown --eviction '" + flags.config.eviction + "' (lru, shadow-tinylfu, w-tinylfu, s3-fifo, sieve)");
    if (const char* pkg = engine_package(flags.engine)) {
      std::fprintf(stderr, "db_bench: this db_bench was not built with %s (%s was not found when it was configured;\n"
                           "install it, e.g. bash scripts/deps.sh %s, and re-run cmake). Built: %s\n",
                   flags.engine.c_str(), pkg, pkg, joined(built_engines(), ", ").c_str());
      return 2;
    }
    bad_flag("unknown engine '" + flags.engine + "' (built: " + joined(built_engines(), ", ") + ")");
  }

  std::uint64_t baseline_rss = current_rss();
  fs::path temp_root;
  fs::path dir;
  int status = 0;
  try {
    if (flags.db.empty()) {
      // The store goes in a subdirectory of the fresh temporary directory.
      temp_root = make_temp_dir();
      dir = temp_root / "db";
    } else {
      dir = flags.db;
    }
    std::string engine_name = engine->name();
    std::printf("db_bench (%s)\n", engine_name.c_str());
    std::printf("Engine:      %s\n", engine->description(flags.config).c_str());
    std::printf("Keys:        %llu bytes each\n", static_cast<unsigned long long>(kKeySize));
    std::printf("Values:      %llu bytes each (%llu bytes after compression at ratio %.2f)\n",
                static_cast<unsigned long long>(flags.value_size),
                static_cast<unsigned long long>(static_cast<double>(flags.value_size) * flags.compression_ratio + 0.5),
                flags.compression_ratio);
    std::printf("Entries:     %llu\n", static_cast<unsigned long long>(flags.num));
    std::printf("RawSize:     %.1f MB (estimated)\n",
                static_cast<double>((kKeySize + flags.value_size) * flags.num) / 1048576.0);
    std::printf("FileSize:    %.1f MB (estimated)\n",
                (static_cast<double>(kKeySize) + static_cast<double>(flags.value_size) * flags.compression_ratio) *
                    static_cast<double>(flags.num) / 1048576.0);
    std::printf("Cache:       %s%s\n",
                flags.config.cache_bytes != 0 ? (mib(flags.config.cache_bytes) + " (cache_bytes)").c_str()
                                              : "each engine's default",
                (std::string(flags.config.chunk_bytes ? ", chunk_bytes " + std::to_string(flags.config.chunk_bytes) : "") +
                 (flags.config.write_buffer_bytes ? ", write_buffer_bytes " + std::to_string(flags.config.write_buffer_bytes)
                                                  : ""))
                    .c_str());
    std::printf("Durability:  %s\n", engine->durability(flags.config).c_str());
    std::printf("Directory:   %s%s\n", dir.string().c_str(),
                flags.db.empty() ? (flags.keep ? " (temporary, kept)" : " (temporary, removed at the end)") : "");
    std::printf("Baseline RSS: %s\n", mib(baseline_rss).c_str());
    std::printf("Write workloads include the final flush() in their time.\n");
    if (flags.latency != "none")
      std::printf("Latency:     each %s timed with steady_clock (--latency=%s); a clock read costs %.0f ns here,\n"
                  "             a timed operation pays two (included in ops/s)\n",
                  flags.latency == "all" ? "operation" : "write", flags.latency.c_str(), clock_read_nanos());
    std::printf("------------------------------------------------\n");
    std::fflush(stdout);

    Benchmark bench(flags, std::move(engine), dir);
    bench.start();
    std::vector<Result> results;
    for (std::size_t i = 0; i < workloads.size(); ++i) {
      Result r = bench.run(workloads[i], i);
      print_progress_line(r);
      results.push_back(std::move(r));
    }
    bench.finish();
    if (!bench.rss().resets())
      std::printf("note: /proc/self/clear_refs is not writable here, so phase RSS is the process peak so far\n");
    print_table(results);
    for (const auto& r : results) print_json(flags, engine_name, r);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "db_bench: error: %s\n", e.what());
    status = 1;
  }
  if (!temp_root.empty()) {
    std::error_code ec;
    if (flags.keep) {
      std::fprintf(stderr, "db_bench: kept %s\n", dir.string().c_str());
    } else {
      fs::remove_all(temp_root, ec);
      if (ec) std::fprintf(stderr, "db_bench: could not remove %s: %s\n", temp_root.string().c_str(), ec.message().c_str());
    }
  }
  return status;
}
