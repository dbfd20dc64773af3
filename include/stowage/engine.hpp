// SPDX-License-Identifier: BSL-1.0
// engine.hpp: the untyped engine under Storage. Engine<Compression,
// Eviction, Lock> stores encoded byte keys (memcmp order) and stored value
// bytes: the WAL, the write buffers, levels of chunk files (version.hpp),
// background flushes and compactions (compaction.hpp), the block cache, the
// manifest, migrations of the on-disk format and of value bytes, and the
// file lock. It never decodes a key or a value itself; what it must know of
// the types (their names for the manifest, a key check for WAL replay, a key
// printer for messages) comes in a RecordTypes. The typed façade,
// Storage<Key, Value, Serializer, ...> (storage.hpp), encodes and decodes
// around it, so one engine instantiation serves every Key and Value over the
// same policies.
//
// Data flow:
//   put:   one WAL record (group commit) → write buffer. No chunk read.
//   get:   write buffer → frozen buffer (while it is flushed) → the current
//          Version's runs, newest first (level-0 runs, then one run per
//          level): file range → Bloom filter → block index → block cache →
//          binary search. A tombstone ends the search.
//   freeze: when the write buffer reaches half its budget, the writer moves
//          on to the next WAL segment (made and prepared ahead) and makes the
//          buffer the frozen one; puts go on into a fresh buffer. No fsync,
//          unless the segment it leaves was not prepared (the first after
//          an open): the writer seals that one.
//   flush (background thread): seal the segment the freeze left (synced,
//          its zeros cut off: before any later segment is synced, which
//          recovery relies on, see judge_wal_end in wal.hpp) and make the
//          next freeze's segment, on a helper thread, while it writes the
//          frozen buffer as one new level-0 file (records whose presence
//          below is unknown flagged uncounted: docs/format.md, "The live
//          count"); then record the file in a new MANIFEST and install the
//          new Version. The writer may freeze again from there; the flush
//          thread then drops the WAL segments the flush covered. Never
//          reads or rewrites a chunk.
//   compaction (another background thread): merge level-0 runs into the
//          base level, or a file of an over-full level into the level below
//          (compaction.hpp picks); tombstones are dropped where no older
//          record can lie below. Reads and writes files without any store
//          lock; installs like a flush. A dropped file is deleted once no
//          Version names it (version.hpp).
//   open:  LOCK → MANIFEST (policies and types checked) → replay the WAL.
//
// Locking (members say which guard they need):
//   lock_          (the Lock policy; a shared mutex under NoLock, since the
//                  background threads need one) guards wb_, imm_, version_ and live_:
//                  readers share it, writers hold it only to apply a commit
//                  or swap a buffer or a Version.
//   queue_mu_      the queue of Durability::sync commits (commit_synced).
//   install_mu_    one install (flush, compaction, checkpoint) at a time;
//                  guards manifest_ and the compaction positions.
//   sync_mu_       one WAL fdatasync at a time (group commit: writers queued
//                  behind a sync find their record already synced).
//   write_mu_      serialises commits: sequence numbers, WAL appends, applies.
//   seal_mu_       the seal of the segment a freeze left (seal_frozen_wal);
//                  a leaf: nothing else is taken while it is held.
//   bg_mu_         the background threads' flags (with bg_cv_, done_cv_).
//   Order: install_mu_ → sync_mu_ → write_mu_ → lock_ → bg_mu_. The logger
//   is called with none of them held.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#endif

#include "backup.hpp"
#include "cache.hpp"
#include "change_feed.hpp"
#include "chunk.hpp"
#include "compaction.hpp"
#include "compression.hpp"
#include "concepts.hpp"
#include "detail/coding.hpp"
#include "detail/collection_prefix.hpp"
#include "engine_handle.hpp"
#include "error.hpp"
#include "eviction.hpp"
#include "file.hpp"
#include "file_lock.hpp"
#include "history.hpp"
#include "index.hpp"
#include "lock.hpp"
#include "manifest.hpp"
#include "migration.hpp"
#include "open_files.hpp"
#include "options.hpp"
#include "store_files.hpp"
#include "version.hpp"
#include "wal.hpp"
#include "write_buffer.hpp"

namespace stowage {

/// Most bytes of block frames a scan reads from a chunk file at once, when
/// it reads ahead the blocks that are not cached (see Storage::iterator).
inline constexpr std::size_t kScanReadahead = std::size_t{128} << 10;
/// Most bytes of block frames the count's lookups (size(), stats()) read
/// from a chunk file at once when their keys touch most blocks of a run (see
/// Engine::OrderedProbe).
inline constexpr std::size_t kCountReadahead = std::size_t{256} << 10;
/// Durability::none: the flush thread writes the WAL out in the background
/// each time this many bytes were appended (a segment written through a map:
/// the bytes whose pages the writer gave back, written to the device but
/// not synced; otherwise synced), so sealing a segment after a freeze syncs
/// little.
inline constexpr std::uint64_t kWalBytesPerSync = std::uint64_t{1} << 20;
/// The flush a close waits for writes a buffer of at least this many bytes
/// as several files of one level-0 run, one a core from as many threads
/// (compaction has stopped by then, so the cores are free); a smaller one
/// as one file.
inline constexpr std::size_t kParallelFlushBytes = std::size_t{1} << 20;
/// Most files (and threads) the flush a close waits for is cut into.
inline constexpr std::size_t kMaxFlushParts = 4;
/// Whether the background compaction pauses while a flush runs, on a
/// machine with `cores` hardware threads (0: unknown). With fewer than three
/// a writer, the flush and the compaction cannot all run at once, and the
/// scheduler gave the flush thread the writer's core at each freeze: a put
/// off the CPU for 4 to 8 ms (db_bench overwrite, 2 cores). The flush frees
/// write buffer space the writer may wait for; the compaction's work can
/// wait a flush's length.
namespace detail {
constexpr bool compaction_yields_to_flush(unsigned cores) { return cores != 0 && cores < 3; }
}  // namespace detail
/// The base level's least target size, in flushes (Engine::targets). Two,
/// where RocksDB's defaults give four (a 256 MiB base over 64 MiB write
/// buffers): at 4M records on two cores a level above the last then comes
/// in at about 64 MiB instead of 128, and each level-0 merge stops rewriting
/// the whole store sooner (9% more puts/s, p99.9 42 against 53 us).
inline constexpr std::uint64_t kBaseFlushes = 2;
/// When the write buffers' budget is used up while a flush runs, each
/// commit waits at most this long for it (so the writer slows instead of
/// stopping for the whole flush). The writer waits as long in total
/// whatever the slice (until the flush ends); a longer slice makes fewer
/// slowed puts, each longer. 4 ms keeps them under a thousandth of the puts
/// of a 4M-record fill on two cores (2 ms: over), and the longest put under
/// 10 ms with the few ms a busy machine adds to a timed wait (5 ms: over).
inline constexpr std::chrono::milliseconds kFlushWaitSlice{4};
/// With detail::kL0Slowdown level-0 runs or more (and fewer than
/// detail::kL0Stop), a commit sleeps this long whenever the writer has
/// worked a share of it since the last such sleep (all of it at
/// kL0Slowdown runs, less with each run more). One sleep a millisecond
/// per commit kept the writer idle while compaction used one core of two;
/// a slice of this length slows under a thousandth of the puts.
inline constexpr std::chrono::milliseconds kL0SlowdownSlice{4};
/// Each write buffer's key filter (WriteBuffer::set_filter_bytes) takes
/// this share of the write buffers' byte limit, out of the block cache's
/// share of Options::cache_bytes (two buffers: 1/64 of the limit). 1/128:
/// a buffer is frozen at half the limit, and each record takes 90 bytes of
/// it or more (its entry and tree slot), so a full buffer has at least 11
/// bits of filter per key (7 at the most a writer lets it grow to while a
/// flush runs), and about one get in 100 for a key the buffer does not
/// hold still walks its tree.
inline constexpr std::size_t kBufferFilterShare = 128;
/// Most WAL segments an open leaves live; past it, open checkpoints the
/// replayed writes (see Options::checkpoint_on_close).
inline constexpr std::size_t kMaxWalSegments = 8;

namespace detail {
/// Cache offset under which a chunk's metadata (ChunkTable) is kept.
inline constexpr std::uint64_t kTableSlot = ~std::uint64_t{0};
/// Set in the cache offset of a data block kept as stored (StoredBlock, for
/// gets) rather than decoded (Block, under the plain block index, for scans).
inline constexpr std::uint64_t kStoredSlot = std::uint64_t{1} << 63;

/// Names the calling thread as `top -H`, `ps -L`, perf and debuggers show
/// it (at most 15 characters). Linux only; elsewhere nothing. A failure is
/// ignored: the name is only a label.
inline void name_this_thread([[maybe_unused]] const char* name) {
#if defined(__linux__)
  (void)::pthread_setname_np(::pthread_self(), name);
#endif
}

/// What a Snapshot pins (snapshot.hpp): the moment after commit `seq`. It
/// pins no chunk file: a snapshot reads the current files at its sequence,
/// and compactions keep the older versions of records it can see while it
/// lives (Engine::merge).
struct SnapshotState {
  std::uint64_t seq = 0;
  /// The write buffer of that moment once a freeze made it a frozen one
  /// (set under the engine's lock_); null while it is the engine's wb_.
  std::shared_ptr<const WriteBuffer> active;
  std::shared_ptr<const WriteBuffer> imm;  ///< the frozen buffer of that moment (or none)
  /// The count of the files and the frozen buffer of that moment, when it
  /// was known then (else size_at counts by a scan).
  std::optional<std::int64_t> below_part;
  /// Set by a compaction that could not keep a version this snapshot sees
  /// (the versions of one key over a block's limit, about 1 GiB): reads at
  /// it then throw rather than answer wrong.
  std::atomic<bool> lost{false};
  /// Engine::size_at's answer, once counted (size_mu).
  mutable std::mutex size_mu;
  mutable std::optional<std::uint64_t> size;
};
}  // namespace detail

/// The untyped store in one directory: byte keys in memcmp order, byte
/// values. See the top of engine.hpp; Storage (storage.hpp) is its typed
/// face, and what users call.
template <class Compression, class Eviction, class Lock>
class Engine {
  static_assert(CompressionPolicy<Compression>,
                "stowage: Compression must provide id, name, compress(std::string_view, std::string&) and "
                "decompress(std::string_view, std::size_t, char*)");
  static_assert(EvictionPolicy<Eviction>,
                "stowage: Eviction must provide a hook type and a queue<Entry> with insert, touch, erase, victim");
  static_assert(LockPolicy<Lock>,
                "stowage: Lock must provide lock, unlock, lock_shared, unlock_shared and "
                "waits_for_other_processes");

  using Table = detail::ChunkTable<Compression>;
  using Block = detail::Block;
  using StoredBlock = detail::StoredBlock;

 public:
  /// Opens (or creates, per Options::create_if_missing) the store in dir for
  /// records of `types`, migrating it first to value schema version `target`
  /// along `migrations` (may be null) when it is at another one or at an
  /// older format. With migrate_only, the engine closes once that is done.
  /// Throws as Storage's constructors do.
  Engine(const std::filesystem::path& dir, Options options, RecordTypes types, const Migrator* migrations,
         unsigned target, bool migrate_only)
      : dir_(dir),
        opt_(std::move(options)),
        types_(std::move(types)),
        cache_(1, cache_shards(opt_.cache_bytes)),
        files_(detail::open_file_limit(opt_.max_open_files)) {
    fs_ = opt_.file_system ? opt_.file_system : default_file_system();
    validate_options();
    wb_limit_ = opt_.write_buffer_bytes ? opt_.write_buffer_bytes : opt_.cache_bytes / 4;
    const std::size_t filter_bytes = wb_limit_ / kBufferFilterShare;
    wb_.set_filter_bytes(filter_bytes);
    // The buffers' filters (the active one's and the frozen one's) come out
    // of the block cache's share.
    const std::size_t filters = 2 * detail::BlockedBloomFilter::charge_for(filter_bytes);
    cache_.set_capacity(opt_.cache_bytes - std::min<std::uint64_t>(opt_.cache_bytes, wb_limit_ + filters));
    open(migrations, target, migrate_only);
  }

  /// Closes the store (see close()); errors are logged, not thrown.
  ~Engine() {
    try {
      close();
    } catch (...) {
      try {
        log(LogLevel::error, "close failed: " + describe_exception(std::current_exception()));
      } catch (...) {
      }
    }
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Throws ValidationError when an encoded key is over kMaxKeyBytes.
  void check_key_size(std::size_t bytes) const {
    if (bytes > kMaxKeyBytes)
      throw ValidationError("stowage: a key of " + std::to_string(bytes) + " encoded bytes exceeds the limit of " +
                            std::to_string(kMaxKeyBytes) + " (store " + dir_.string() + ")");
  }
  /// Throws ValidationError when an encoded value is over kMaxValueBytes.
  void check_value_size(std::size_t bytes) const {
    if (bytes > kMaxValueBytes)
      throw ValidationError("stowage: a value of " + std::to_string(bytes) + " encoded bytes exceeds the limit of " +
                            std::to_string(kMaxValueBytes) + " (store " + dir_.string() + ")");
  }

  /// Stores value under key (both encoded, within the limits).
  void put(std::string_view key, std::string_view value) {
    check_key_size(key.size());
    check_value_size(value.size());
    detail::WalBatch batch;
    batch.reserve(1 + detail::varint_length(key.size()) + key.size() + detail::varint_length(value.size()) +
                  value.size());
    batch.put(key, value);
    Op op{detail::kOpPut, key, value};
    commit(batch, &op, 1);
  }

  /// Removes key; returns whether it was there. The lookup that answers
  /// (it may read a block) runs before the commit, under the shared lock
  /// only; the commit repeats it, under the writers' mutex, only when a
  /// write or a checkpoint came in between.
  bool erase(std::string_view key) {
    check_key_size(key.size());
    bool in_buffer = false, existed = false;
    auto look = [&] {
      in_buffer = wb_.find(key) != nullptr;
      existed = find_locked(key, [](std::string_view, const std::filesystem::path*) {});
    };
    std::uint64_t wb_seen, chunks_seen;
    {
      std::shared_lock guard(lock_);
      check_open();
      wb_seen = wb_version_.load();
      chunks_seen = chunk_version_.load();
      look();
    }
    detail::WalBatch batch;
    batch.erase(key);
    Op op{detail::kOpErase, key, {}};
    commit(batch, &op, 1, [&] {
      // Under write_mu_ (and, for a synced commit, after every earlier
      // commit is applied): the buffer and the chunks change only with the
      // versions.
      if (wb_version_.load() != wb_seen || chunk_version_.load() != chunks_seen) {
        std::shared_lock guard(lock_);
        look();
      }
      op.below = in_buffer ? detail::Below::unknown : (existed ? detail::Below::present : detail::Below::absent);
    });
    return existed;
  }

  /// Removes key if it is there, without finding out whether it was: no
  /// lookup, so it costs what a put costs.
  void discard(std::string_view key) {
    check_key_size(key.size());
    detail::WalBatch batch;
    batch.erase(key);
    Op op{detail::kOpErase, key, {}};
    commit(batch, &op, 1);
  }

  /// Reads key's value and calls decide(current, next) with no lock held:
  /// current is the stored bytes (nullptr when absent); decide returns
  /// WriteDecision::put (having written the new value into next, a cleared
  /// std::string), WriteDecision::erase or WriteDecision::keep. The decision commits
  /// only if nothing wrote key in between (checked under the writers'
  /// mutex, without a disk read); otherwise the key is read again and decide
  /// runs again. So the read and the write are atomic against every other
  /// writer, and decide may run more than once. A decide that throws
  /// commits nothing and the exception propagates.
  ReadModifyWrite read_modify_write(std::string_view key, DecideRef decide) {
    check_key_size(key.size());
    std::string current, next;
    for (;;) {
      bool existed = false, in_buffer = false;
      std::uint64_t freezes_seen = 0, seq_seen = 0;
      {
        std::shared_lock guard(lock_);
        check_open();
        check_writable();
        freezes_seen = freezes_;
        if (const auto* e = wb_.find(key)) {
          in_buffer = true;
          seq_seen = e->seq;
        }
        existed = find_locked(key, [&](std::string_view v, const std::filesystem::path*) { current.assign(v); });
      }
      next.clear();
      const WriteDecision d = decide(existed ? &current : nullptr, next);
      if (d == WriteDecision::keep) return ReadModifyWrite{existed, d};
      if (d == WriteDecision::put) check_value_size(next.size());
      detail::WalBatch batch;
      if (d == WriteDecision::put)
        batch.put(key, next);
      else
        batch.erase(key);
      Op op{d == WriteDecision::put ? detail::kOpPut : detail::kOpErase, key,
            d == WriteDecision::put ? std::string_view(next) : std::string_view()};
      op.below = in_buffer ? detail::Below::unknown : (existed ? detail::Below::present : detail::Below::absent);
      // Under write_mu_, after every earlier commit is applied: key's state
      // is what was read when no freeze moved the buffer and its entry (or
      // its absence) in the buffer is the same one; what lies below the
      // buffer changes only by a freeze (flushes and compactions keep each
      // key's value).
      auto unchanged = [&] {
        std::shared_lock guard(lock_);
        if (freezes_ != freezes_seen) return false;
        const auto* e = wb_.find(key);
        return (e != nullptr) == in_buffer && (e == nullptr || e->seq == seq_seen);
      };
      if (commit(batch, &op, 1, [] {}, unchanged)) return ReadModifyWrite{existed, d};
    }
  }

  /// Applies ops (puts and erases, in order: a later op on a key wins) as
  /// one atomic commit: after a crash either all of them are there or none.
  /// An erase does not find out whether its key was there (as discard()).
  void write(const std::vector<WriteOp>& ops) {
    std::size_t bytes = 0, stamped = 0;
    for (const auto& op : ops) {
      check_key_size(op.key.size());
      if (!op.erase) check_value_size(op.value.size());
      bytes += detail::varint_length(op.key.size()) + op.key.size() + 1 +
               (op.erase ? 0 : detail::varint_length(op.value.size()) + op.value.size());
      if (op.stamp != WriteOp::kNoStamp) {
        if (op.stamp >= ops.size() || op.key.size() < detail::kStampBytes)
          throw std::logic_error("stowage: a stamped WriteOp names no op of its write or has no room for a stamp");
        ++stamped;
      }
    }
    if (ops.empty()) return;
    detail::WalBatch batch;
    batch.reserve(bytes);
    std::vector<Op> engine_ops;
    engine_ops.reserve(ops.size());
    // A stamped key is copied (the commit writes the sequence into the copy
    // and into the record's bytes); reserved first, so copies stay put.
    std::vector<std::string> copies;
    copies.reserve(stamped);
    Stamps stamps;
    stamps.list.reserve(stamped);
    for (const auto& op : ops) {
      std::string_view key = op.key;
      if (op.stamp != WriteOp::kNoStamp) {
        // The key's last bytes, after the op's kind and the key's length.
        const std::size_t at = batch.size() + 1 + detail::varint_length(key.size()) + key.size() - detail::kStampBytes;
        key = copies.emplace_back(op.key);
        stamps.list.push_back(Stamp{at, copies.back().data() + key.size() - detail::kStampBytes, op.stamp});
      }
      if (op.erase) {
        batch.erase(key);
        engine_ops.push_back(Op{detail::kOpErase, key, {}});
      } else {
        batch.put(key, op.value);
        engine_ops.push_back(Op{detail::kOpPut, key, op.value});
      }
    }
    stamps.shift = detail::varint_length(batch.count());  // finish() puts the op count before the ops
    commit(batch, engine_ops.data(), engine_ops.size(), [] {}, nullptr, stamped ? &stamps : nullptr);
  }

  /// Stores the pairs (kv[0], kv[1]), (kv[2], kv[3]), ... as one atomic
  /// commit: after a crash either all of them are there or none.
  void put_batch(const std::vector<std::string>& kv) {
    std::size_t bytes = 0;
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
      check_key_size(kv[i].size());
      check_value_size(kv[i + 1].size());
      bytes += detail::varint_length(kv[i].size()) + kv[i].size() + detail::varint_length(kv[i + 1].size()) +
               kv[i + 1].size() + 1;
    }
    detail::WalBatch batch;
    batch.reserve(bytes);
    std::vector<Op> ops;
    ops.reserve(kv.size() / 2);
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
      batch.put(kv[i], kv[i + 1]);
      ops.push_back(Op{detail::kOpPut, kv[i], kv[i + 1]});
    }
    if (ops.empty()) return;
    commit(batch, ops.data(), ops.size());
  }

  /// Erases every key with from <= key < to (nullopt: unbounded), in
  /// atomic commits of up to kEraseRangeBatch keys (write()), not as one:
  /// after a crash a prefix of the range may be gone, and a key written into
  /// the range while it runs, behind its position, stays. Returns how many
  /// keys it erased.
  std::size_t erase_range(std::optional<std::string> from, std::optional<std::string> to) {
    return detail::walk_in_batches(
        *this, std::move(from), to,
        [](std::string_view key, std::string_view, std::vector<WriteOp>& ops) {
          ops.push_back(WriteOp{true, std::string(key), {}});
        },
        [this](std::vector<WriteOp>&& ops) { write(ops); });
  }

  /// The bytes every key of the default collection (Storage's) starts
  /// with: none in a bare store, collection_prefix(0) in a prefixed one.
  const std::string& default_prefix() const { return default_slot_.prefix; }

  /// The collection called name (a Database's; "default" is the default
  /// collection), checked against types: MigrationError, naming both, when
  /// it was created with another key order, serializer, value type or
  /// schema version. A named collection that does not exist is created (its
  /// entry in a new MANIFEST, durable before this returns): ValidationError
  /// on a read_only or bare store (only a Database's open converts a store
  /// to the prefixed layout), or for a name that is empty or over 255 bytes.
  /// The default collection of a store no Storage has opened yet takes
  /// types. The slot lives as long as the engine. With `migrations`, a named
  /// collection recorded at another schema version (or with a serializer
  /// they change) is migrated first (see migrate_collection()).
  CollectionSlot& collection(std::string_view name, const RecordTypes& types,
                             const Migrator* migrations = nullptr) {
    check_open();
    if (migrations && name != detail::kDefaultKeyspace) migrate_collection(name, types, *migrations);
    std::lock_guard inst(install_mu_);
    if (name == detail::kDefaultKeyspace) {
      const auto* ks = manifest_.keyspace(detail::kDefaultKeyspace);
      if (ks->key_order.empty()) {
        if (!opt_.read_only) adopt_default_types(types);
      } else {
        check_collection_types(name, ks->key_order, manifest_.serializer, ks->value_type, ks->schema_version, types);
      }
      return default_slot_;
    }
    if (name.empty() || name.size() > 255)
      throw ValidationError("stowage: a collection name must be 1 to 255 bytes (got " + std::to_string(name.size()) +
                            ")");
    if (const auto* c = manifest_.collection(name)) {
      check_collection_types(name, c->key_order, c->serializer, c->value_type, c->schema_version, types);
    } else {
      if (opt_.read_only)
        throw ValidationError("stowage: the store at " + dir_.string() + " has no collection '" + std::string(name) +
                              "', and a read_only open cannot create one");
      if (manifest_.layout != detail::Layout::prefixed)
        throw ValidationError("stowage: the store at " + dir_.string() +
                              " keeps one collection (bare layout, written by Storage); open it with a Database, "
                              "which converts it, to add collections");
      if (manifest_.next_collection_id >= detail::kMaxCollections)
        throw ValidationError("stowage: the store at " + dir_.string() + " has used every collection id");
      check_writable();
      detail::Manifest m = manifest_;
      detail::CollectionState fresh;
      fresh.name = std::string(name);
      fresh.id = m.next_collection_id++;
      fresh.key_order = types.key_order;
      fresh.serializer = types.serializer;
      fresh.value_type = types.value_type;
      fresh.schema_version = types.value_version;
      m.collections.push_back(std::move(fresh));
      replace_manifest(std::move(m));
      log(LogLevel::info, "created collection '" + std::string(name) + "' in " + dir_.string());
    }
    const auto* c = manifest_.collection(name);
    auto it = slots_.find(name);
    if (it == slots_.end()) {
      auto slot = make_slot(*c);
      slot->undeclared = recorded_indexes(c->id);
      slot->history = history_hook(c->id);
      slot->expiry = expiry_rule(c->id);
      slot->indexed = !slot->undeclared.empty() || slot->history || slot->expiry;
      it = slots_.emplace(c->name, std::move(slot)).first;
    }
    return *it->second;
  }

  /// The default collection (Storage's; "default" of a Database).
  CollectionSlot& default_collection() { return default_slot_; }

  /// An id for a new record of slot's collection: unique and increasing
  /// (from 1) across threads, sessions and processes that open the store
  /// one after another, never handed out twice even across a crash. Ids
  /// are reserved kIdBlock at a time in the MANIFEST (one durable write per
  /// block), so a crash or a close skips the rest of a block.
  std::uint64_t next_id(CollectionSlot& slot) {
    check_writable();
    std::lock_guard g(slot.id_mu);
    if (slot.next_id == 0) {
      std::lock_guard inst(install_mu_);
      std::uint64_t reserved = manifest_.default_ids_reserved;
      if (slot.id != 0) {
        const auto* c = manifest_.by_id(slot.id);
        if (!c || slot.dropped.load()) throw ValidationError("stowage: collection '" + slot.name + "' was dropped");
        reserved = c->ids_reserved;
      }
      slot.next_id = slot.id_ceiling = std::max<std::uint64_t>(reserved, 1);
    }
    if (slot.next_id == slot.id_ceiling) {
      if (slot.id_ceiling > std::numeric_limits<std::uint64_t>::max() - kIdBlock)
        throw ValidationError("stowage: collection '" + slot.name + "' has used every id");
      const std::uint64_t ceiling = slot.id_ceiling + kIdBlock;
      std::lock_guard inst(install_mu_);
      detail::Manifest m = manifest_;
      if (slot.id == 0) {
        m.default_ids_reserved = ceiling;
      } else {
        auto* c = m.by_id(slot.id);
        if (!c || slot.dropped.load()) throw ValidationError("stowage: collection '" + slot.name + "' was dropped");
        c->ids_reserved = ceiling;
      }
      replace_manifest(std::move(m));
      slot.id_ceiling = ceiling;
    }
    return slot.next_id++;
  }
  /// Ids next_id() reserves at once.
  static constexpr std::uint64_t kIdBlock = 4096;

  /// Whether keys start with their collection's prefix (a Database's store).
  bool prefixed() const { return !default_slot_.prefix.empty(); }

  /// Declares the index called name of parent's collection, with index keys
  /// in key_order: returns its slot, and sets build when its entries must be
  /// (re)built before use (it is new, its definition changed, or it is not
  /// ready: a build was interrupted, or a session wrote the collection
  /// without it). The MANIFEST records the definition (not ready when
  /// build) before this returns. The caller holds parent.gate exclusively.
  /// ValidationError in a bare store, for a collection that expires
  /// records, or for an index a read_only store would have to build.
  CollectionSlot& declare_index(CollectionSlot& parent, std::string_view name, const std::string& key_order,
                                bool unique, std::uint32_t version, bool& build) {
    check_open();
    if (!prefixed())
      throw ValidationError("stowage: the store at " + dir_.string() +
                            " keeps one collection (bare layout, written by Storage); open it once with a "
                            "Database, which converts it, to declare indexes");
    if (name.empty() || name.size() > 255)
      throw ValidationError("stowage: an index name must be 1 to 255 bytes (got " + std::to_string(name.size()) + ")");
    std::lock_guard inst(install_mu_);
    if (parent.dropped.load()) throw ValidationError("stowage: collection '" + parent.name + "' was dropped");
    if (manifest_.expiry(parent.id))
      throw ValidationError("stowage: collection '" + parent.name + "' of the store at " + dir_.string() +
                            " expires records; a collection that expires records cannot have indexes yet");
    const auto kind = unique ? detail::CollectionKind::unique_index : detail::CollectionKind::multi_index;
    const auto* have = manifest_.index(parent.id, name);
    build = !have || !have->ready || have->kind != kind || have->key_order != key_order ||
            have->index_version != version;
    if (build) {
      if (opt_.read_only)
        throw ValidationError("stowage: index '" + std::string(name) + "' of collection '" + parent.name +
                              "' must be built (it is new, changed or stale), which a read_only open cannot do");
      check_writable();
      detail::Manifest m = manifest_;
      detail::CollectionState* e = have ? m.by_id(have->id) : nullptr;
      if (!e) {
        if (m.next_collection_id >= detail::kMaxCollections)
          throw ValidationError("stowage: the store at " + dir_.string() + " has used every collection id");
        detail::CollectionState fresh;
        fresh.name = std::string(name);
        fresh.id = m.next_collection_id++;
        fresh.parent = parent.id;
        m.collections.push_back(std::move(fresh));
        e = &m.collections.back();
      }
      e->kind = kind;
      e->key_order = key_order;
      e->index_version = version;
      e->ready = false;
      replace_manifest(std::move(m));
    }
    const auto* c = manifest_.index(parent.id, name);
    auto& slot = index_slots_[c->id];
    if (!slot) slot = make_slot(*c);
    std::erase(parent.undeclared, c->id);
    return *slot;
  }

  /// Records in the MANIFEST that index's entries are built.
  void index_built(CollectionSlot& index) { set_ready({index.id}, true); }

  /// Removes a declared index whose build failed from the MANIFEST (its
  /// entries are erased by the caller).
  void forget_index(CollectionSlot& index) {
    std::lock_guard inst(install_mu_);
    detail::Manifest m = manifest_;
    std::erase_if(m.collections, [&](const detail::CollectionState& e) { return e.id == index.id; });
    m.dropped.push_back(index.id);
    replace_manifest(std::move(m));
    index.dropped.store(true);
  }

  /// Marks the indexes of parent's collection that this session has not
  /// declared (parent.undeclared) stale in the MANIFEST, durably: a write
  /// is about to change the collection without them. They are rebuilt when
  /// next declared. The caller holds parent.gate exclusively.
  void mark_stale(CollectionSlot& parent) {
    if (parent.undeclared.empty()) return;
    set_ready(parent.undeclared, false);
    log(LogLevel::info, "collection '" + parent.name + "' written without " + std::to_string(parent.undeclared.size()) +
                            " of its indexes declared: they will be rebuilt when declared");
    parent.undeclared.clear();
  }

  /// Sets what history slot's collection keeps (Collection::keep_history),
  /// in the MANIFEST, durably, before it returns. The first time, the
  /// collection's history keyspace is created: every record stored now gets
  /// a baseline version at the store's last sequence (the history's start),
  /// written and made durable before the MANIFEST names the keyspace (until
  /// then its id is listed as dropped, so a crash leaves nothing behind);
  /// from then on every put and erase of the collection writes a version
  /// (detail/index_ops.hpp). A rule that keeps nothing drops the history
  /// keyspace (its entries are erased). The caller holds slot.gate
  /// exclusively. ValidationError in a bare store, in a read_only one, or
  /// for a keep_for below 0 or over kMaxHistorySeconds.
  void keep_history(CollectionSlot& slot, const History& rule) {
    check_open();
    if (!prefixed())
      throw ValidationError("stowage: the store at " + dir_.string() +
                            " keeps one collection (bare layout, written by Storage); open it once with a "
                            "Database, which converts it, to keep history");
    if (rule.keep_for.count() < 0 || static_cast<std::uint64_t>(rule.keep_for.count()) > detail::kMaxHistorySeconds)
      throw ValidationError("stowage: History::keep_for must be 0 to " + std::to_string(detail::kMaxHistorySeconds) +
                            " seconds (got " + std::to_string(rule.keep_for.count()) + ")");
    check_writable();
    const auto seconds = static_cast<std::uint64_t>(rule.keep_for.count());
    std::uint32_t fresh_id = 0;
    {
      std::lock_guard inst(install_mu_);
      if (slot.dropped.load()) throw ValidationError("stowage: collection '" + slot.name + "' was dropped");
      const auto* have = manifest_.history(slot.id);
      if (have && have->history_versions == rule.versions && have->history_seconds == seconds) return;
      if (!have && !rule.enabled()) return;
      detail::Manifest m = manifest_;
      if (!rule.enabled()) {
        m.dropped.push_back(have->id);
        std::erase_if(m.collections, [&](const detail::CollectionState& e) { return e.id == have->id; });
      } else if (have) {
        auto* e = m.by_id(have->id);
        e->history_versions = rule.versions;
        e->history_seconds = seconds;
      } else {
        if (m.next_collection_id >= detail::kMaxCollections)
          throw ValidationError("stowage: the store at " + dir_.string() + " has used every collection id");
        fresh_id = m.next_collection_id++;
        m.dropped.push_back(fresh_id);  // until the baseline is durable
      }
      replace_manifest(std::move(m));
      if (fresh_id == 0) slot.history = history_hook(slot.id);
    }
    if (fresh_id == 0) {
      log(LogLevel::info, "collection '" + slot.name + "' of " + dir_.string() +
                              (rule.enabled() ? ": history rule changed" : " keeps no history any more"));
      if (!rule.enabled()) purge_dropped();
      return;
    }
    std::uint64_t start = 0;
    {
      std::lock_guard w(write_mu_);
      start = last_seq_;  // no commit of the collection is in flight: the caller holds its gate
    }
    std::uint64_t baseline = 0;
    try {
      const std::string hprefix = detail::collection_prefix(fresh_id);
      const std::uint64_t micros = detail::now_micros(opt_);
      baseline = detail::walk_in_batches(
          *this, slot.prefix, prefix_end(slot.prefix),
          [&](std::string_view key, std::string_view value, std::vector<WriteOp>& ops) {
            std::string k = detail::history_group(hprefix, key.substr(slot.prefix.size()));
            k.resize(k.size() + detail::kStampBytes);
            detail::write_stamp(k.data() + k.size() - detail::kStampBytes, start);
            ops.push_back(WriteOp{false, std::move(k), detail::history_value(false, micros, value)});
          },
          [this](std::vector<WriteOp>&& ops) { write(ops); });
      flush();  // the baseline durable before the MANIFEST names it
      std::lock_guard inst(install_mu_);
      if (slot.dropped.load()) throw ValidationError("stowage: collection '" + slot.name + "' was dropped");
      detail::Manifest m = manifest_;
      std::erase(m.dropped, fresh_id);
      detail::CollectionState fresh;
      fresh.name = std::string(detail::kHistoryName);
      fresh.id = fresh_id;
      fresh.kind = detail::CollectionKind::history;
      fresh.parent = slot.id;
      fresh.history_versions = rule.versions;
      fresh.history_seconds = seconds;
      fresh.history_start = start;
      auto at = std::find_if(m.collections.begin(), m.collections.end(),
                             [&](const detail::CollectionState& e) { return e.id > fresh_id; });
      m.collections.insert(at, std::move(fresh));  // in id order
      replace_manifest(std::move(m));
      slot.history = history_hook(slot.id);
      slot.indexed.store(true, std::memory_order_release);
    } catch (...) {
      try {
        purge_dropped();
      } catch (...) {  // the next open purges the baseline
      }
      throw;
    }
    log(LogLevel::info, "collection '" + slot.name + "' of " + dir_.string() + " keeps history from sequence " +
                            std::to_string(start) + " (" + std::to_string(baseline) + " records in its baseline)");
  }

  /// Makes slot's collection expire records (Collection::set_default_ttl),
  /// with ttl (microseconds, 0: none) as the default time to live of a put
  /// that gives none, recorded in the MANIFEST, durably, before it returns.
  /// The first time, the collection must hold no record: from then on each
  /// value it stores starts with its expiry time (expiry.hpp), which the
  /// values stored before lack. The caller holds slot.gate exclusively.
  /// ValidationError in a bare store, in a read_only one, for a collection
  /// that holds records or has an index, or for a ttl over
  /// detail::kMaxExpiryMicros.
  void set_expiry(CollectionSlot& slot, std::uint64_t ttl) {
    check_open();
    const std::string where = "collection '" + slot.name + "' of the store at " + dir_.string();
    if (!prefixed())
      throw ValidationError("stowage: the store at " + dir_.string() +
                            " keeps one collection (bare layout, written by Storage); open it once with a "
                            "Database, which converts it, to expire records");
    if (ttl > detail::kMaxExpiryMicros)
      throw ValidationError("stowage: a time to live must be at most " +
                            std::to_string(detail::kMaxExpiryMicros / 1000000) + " s (got " +
                            std::to_string(ttl / 1000000) + " s)");
    check_writable();
    std::lock_guard inst(install_mu_);
    if (slot.dropped.load()) throw ValidationError("stowage: collection '" + slot.name + "' was dropped");
    detail::Manifest m = manifest_;
    if (const auto* have = manifest_.expiry(slot.id)) {
      if (have->expiry_ttl == ttl) return;
      m.by_id(have->id)->expiry_ttl = ttl;
      replace_manifest(std::move(m));
      slot.expiry = expiry_rule(slot.id);
      return;
    }
    for (const auto& c : manifest_.collections)
      if (c.is_index() && c.parent == slot.id)
        throw ValidationError("stowage: " + where + " has index '" + c.name +
                              "'; a collection with indexes cannot expire records yet");
    {
      Cursor any(this, slot.prefix, prefix_end(slot.prefix));
      if (any.peek())
        throw ValidationError("stowage: " + where +
                              " holds records stored without an expiry time; set expiry (set_default_ttl, or a "
                              "put with a ttl) before its first put, or copy its records into a new collection");
    }
    if (m.next_collection_id >= detail::kMaxCollections)
      throw ValidationError("stowage: the store at " + dir_.string() + " has used every collection id");
    detail::CollectionState fresh;
    fresh.name = std::string(detail::kExpiryName);
    fresh.id = m.next_collection_id++;
    fresh.kind = detail::CollectionKind::expiry;
    fresh.parent = slot.id;
    fresh.expiry_ttl = ttl;
    {
      std::lock_guard w(write_mu_);
      fresh.expiry_start = last_seq_;  // no commit of the collection is in flight: the caller holds its gate
    }
    m.collections.push_back(std::move(fresh));
    replace_manifest(std::move(m));  // publishes the id to readers before any value carries a time
    slot.expiry = expiry_rule(slot.id);
    slot.indexed.store(true, std::memory_order_release);
    log(LogLevel::info, where + " expires records (default time to live " + std::to_string(ttl / 1000000) + " s)");
  }

  /// The current time (Options::clock) in microseconds since the Unix
  /// epoch: what expiry and history times are measured in.
  std::uint64_t now_micros() const { return detail::now_micros(opt_); }

  /// The names of the store's collections, in the order they were created:
  /// "default" first when a Storage (or the default collection of a
  /// Database) has given it types.
  std::vector<std::string> collections() const {
    check_open();
    std::lock_guard inst(install_mu_);
    std::vector<std::string> names;
    if (!manifest_.keyspace(detail::kDefaultKeyspace)->key_order.empty())
      names.emplace_back(detail::kDefaultKeyspace);
    for (const auto& c : manifest_.collections)
      if (c.is_table()) names.push_back(c.name);
    return names;
  }

  /// Drops the named collection: removes it from the MANIFEST (its name may
  /// then be created again, empty, with other types), then erases its
  /// records (erase_range over its prefix; compaction reclaims their
  /// space) and syncs. A crash in between leaves the id listed as dropped,
  /// and the next writable open finishes the purge. Handles to it throw
  /// ValidationError afterwards. Returns false when there is no such
  /// collection; the default collection cannot be dropped (ValidationError).
  bool drop_collection(std::string_view name) {
    check_writable();
    if (name == detail::kDefaultKeyspace)
      throw ValidationError("stowage: the default collection cannot be dropped; erase its records instead");
    {
      std::lock_guard inst(install_mu_);
      const auto* c = manifest_.collection(name);
      if (!c) return false;
      detail::Manifest m = manifest_;
      const std::uint32_t id = c->id;
      // The collection and its indexes.
      std::erase_if(m.collections, [&](const detail::CollectionState& e) {
        const bool gone = e.id == id || e.serves(id);
        if (gone) m.dropped.push_back(e.id);
        return gone;
      });
      replace_manifest(std::move(m));
      if (auto it = slots_.find(name); it != slots_.end()) {
        it->second->dropped.store(true);
        dropped_slots_.push_back(std::move(it->second));
        slots_.erase(it);
      }
      for (auto gone : manifest_.dropped)
        if (auto it = index_slots_.find(gone); it != index_slots_.end()) it->second->dropped.store(true);
    }
    log(LogLevel::info, "dropped collection '" + std::string(name) + "' of " + dir_.string());
    purge_dropped();
    return true;
  }

  /// Looks key up; on a hit calls on_value(value bytes, chunk file or
  /// nullptr) and returns true (the bytes are valid only during the call).
  /// The store's shared lock is held only to probe the write buffer (and
  /// through on_value when the buffer holds the key): the frozen buffer and
  /// the chunk files are read with them pinned and no lock held, so block
  /// reads never hold writers off (a writer waits for lock_, which readers
  /// holding it through their reads could keep from it for as long as
  /// they kept coming).
  /// A record of a collection that expires records is found only until
  /// its expiry time, and on_value gets its value without the time.
  template <class Fn>
  bool find(std::string_view key, Fn&& on_value) const {
    bool gone = false;
    return find_stored(key, unexpired(key, on_value, gone)) && !gone;
  }

  /// find(), but every record as stored (values with their expiry times,
  /// expired records too).
  template <class Fn>
  bool find_stored(std::string_view key, Fn&& on_value) const {
    const std::uint64_t hash = detail::bloom_hash(key);
    std::shared_ptr<const detail::WriteBuffer> imm;
    std::shared_ptr<const detail::Version> v;
    {
      std::shared_lock guard(lock_);
      check_open();
      if (const int p = take_entry(wb_.find(key, hash), on_value); p >= 0) return p == 1;
      imm = imm_;
      v = version_;
    }
    return find_below(imm.get(), *v, key, hash, on_value);
  }

  /// A consistent read-only moment of the store: every commit so far, none
  /// after (see Snapshot). Waits for the commit being applied, if any; copies
  /// nothing.
  Snapshot snapshot() const {
    auto st = std::make_shared<detail::SnapshotState>();
    std::lock_guard w(write_mu_);  // every commit numbered up to last_seq_ is applied
    std::unique_lock guard(lock_);
    check_open();
    st->seq = last_seq_;
    st->imm = imm_;
    if (const auto part = version_->resolved_part(); part && (!imm_ || imm_resolved_.load()))
      st->below_part = live_ + *part + (imm_ ? imm_delta_ : 0);
    prune_snapshots();
    snapshots_.push_back(st);
    snap_max_ = std::max(snap_max_, st->seq);
    return Snapshot(std::move(st), this, last_seq_);
  }

  /// find() at a snapshot of this store: the record as it was then (gone
  /// once its expiry time has come, now).
  template <class Fn>
  bool find_at(const Snapshot& at, std::string_view key, Fn&& on_value) const {
    bool gone = false;
    return find_at_stored(at, key, unexpired(key, on_value, gone)) && !gone;
  }
  /// find_at() with every record as stored (see find_stored()).
  template <class Fn>
  bool find_at_stored(const Snapshot& at, std::string_view key, Fn&& on_value) const {
    const detail::SnapshotState& st = *state_of(at);
    // Whether a buffer holds a version of key the snapshot sees: 1 a put
    // (on_value called), 0 an erase, -1 none.
    const std::uint64_t hash = detail::bloom_hash(key);
    auto probe = [&](const detail::WriteBuffer& b) {
      const auto* e = b.find(key, hash);
      return take_entry(e ? b.visible(*e, st.seq) : nullptr, on_value);
    };
    std::shared_ptr<const detail::WriteBuffer> frozen;
    std::shared_ptr<const detail::Version> v;
    {
      // lock_ only for the write buffer while it is the store's (writers
      // change it), to read st.active (a freeze sets it) and the Version.
      std::shared_lock guard(lock_);
      check_open();
      if (!st.active) {
        if (const int p = probe(wb_); p >= 0) return p == 1;
      } else {
        frozen = st.active;
      }
      v = version_;
    }
    // The rest is read with no lock, so that a block read here never holds
    // writers off. Every entry of its frozen buffers is at or below its
    // sequence: they are read as they are; the files at its sequence.
    if (frozen)
      if (const int p = probe(*frozen); p >= 0) return p == 1;
    const bool found = find_below(st.imm.get(), *v, key, hash, on_value, st.seq);
    check_kept(st);
    return found;
  }

  /// size() at a snapshot of this store (exact; counted once per snapshot:
  /// the files' and the frozen buffer's parts as size() counts them, the
  /// write buffer's records at the snapshot's sequence one by one).
  std::size_t size_at(const Snapshot& at) const;

  /// Number of records (exact). Looks up, with no lock held, the records
  /// whose part of the count is not known yet (docs/format.md, "The live
  /// count"): after a load, about those in the levels above the last.
  std::size_t size() const {
    std::shared_lock guard(lock_, std::defer_lock);
    return static_cast<std::size_t>(exact_count(guard));
  }

  /// Makes every write that returned before this call survive power loss.
  void flush() {
    FailureReport report{this};
    check_open();
    std::uint64_t seq;
    {
      std::lock_guard w(write_mu_);
      seq = last_seq_;
    }
    sync_up_to(seq);
  }

  /// Writes the write buffer into a new level-0 chunk file, records it in a
  /// new MANIFEST and drops the WAL it covered; returns once that is done.
  void checkpoint() {
    FailureReport report{this};
    check_open();
    check_writable();
    flush_buffer();
  }

  /// Writes a backup of the store into the new directory `target` while
  /// writers go on: every commit up to one moment (the report's sequence)
  /// and none after, a store that opens on its own (see backup.hpp). Chunk
  /// files are hard-linked (copied across file systems, or linked from an
  /// earlier backup of this store beside target that holds them), the WAL
  /// the MANIFEST still needs is copied up to that moment. Holds the store's
  /// locks only to pick the files: writers wait for no copy. Throws
  /// ValidationError when target exists and is not empty or lies inside the
  /// store; a failed backup leaves nothing under target's name.
  BackupReport backup_to(const std::filesystem::path& target);

  /// Calls fn(sequence, erased, key, value) for every put and erase
  /// committed after `since` whose key starts with prefix (key without it;
  /// value empty for an erase), in commit order, up to the last commit when
  /// the call began; returns that commit's sequence (pass it to the next
  /// call to go on from there). Reads the live WAL and the released segments
  /// Options::change_feed_bytes keeps; writers wait for no read. Throws
  /// ValidationError when since is after the last commit, or when commits
  /// after since are no longer kept (never a silent gap).
  std::uint64_t changes_since(std::uint64_t since, std::string_view prefix, const ChangeFn& fn) const;

  /// Merges every level into the last one (dropping overwritten records and
  /// tombstones) and returns once that is done; waits for running background
  /// work first. Reads afterwards probe one run per key. It also removes the
  /// files an earlier session left.
  void compact();

  /// A snapshot of the store's counters.
  Stats stats() const;

  /// Flushes the write buffer (when Options::checkpoint_on_close), stops the
  /// background threads at a safe point, syncs and releases the store. Later
  /// calls on this object throw ValidationError. Idempotent. Files no longer
  /// needed (obsolete chunk files, released WAL segments) may stay for the
  /// next open to remove in the background.
  void close();

  /// What the migration run by this object's open did, if one ran.
  const std::optional<MigrationReport>& last_migration() const { return last_migration_; }
  /// The report of a migration that had nothing to do: the current format,
  /// from and to `version`.
  static MigrationReport no_migration(unsigned version) {
    MigrationReport nothing;
    nothing.from_format = nothing.to_format = detail::kFormatMajor;
    nothing.from_version = nothing.to_version = version;
    return nothing;
  }
  /// stowage::migration_status(dir, migrations, target, options.file_system)
  /// (no migrations: a Migrator with no steps), with the steps that change
  /// the store's Compression to this engine's and (a Storage's default
  /// collection) its Serializer to `serializer`, when they differ.
  static MigrationStatus migration_status(const std::filesystem::path& dir, const Migrator* migrations,
                                          unsigned target, const Options& options, std::string_view serializer) {
    if (migrations == nullptr)
      return detail::migration_status(dir, Migrator{}, target, options.file_system, Compression::name, serializer);
    return detail::migration_status(dir, *migrations, target, options.file_system, Compression::name, serializer);
  }

  /// The store's directory.
  const std::filesystem::path& path() const { return dir_; }
  /// The options it was opened with.
  const Options& options() const { return opt_; }
  /// What it was opened for.
  const RecordTypes& types() const { return types_; }

 private:
  // Blocks (and the tables of their files) a cursor's batch views.
  struct Pins {
    std::vector<std::shared_ptr<const Block>> blocks;
    std::vector<std::shared_ptr<const Table>> tables;
    void push(const std::shared_ptr<const Block>& b, const std::shared_ptr<const Table>& t) {
      if (b) blocks.push_back(b);
      if (t && (tables.empty() || tables.back() != t)) tables.push_back(t);
    }
    void clear() {
      blocks.clear();
      tables.clear();
    }
  };

  // Reads one run's records in key order, a block at a time (cursors and
  // compactions): each key's newest record (a format-5 chunk's older
  // versions of it, which follow it in its block, are stepped over), or at
  // a snapshot's sequence `at` the newest record at or below it (keys with
  // none are stepped over); with `every` (merges) every record, versions
  // too. The run must outlive it (its Version is pinned).
  class RunReader {
   public:
    // Every record a reader at the present sees: no sequence bound.
    // sequential: a compaction's full pass (reads ahead from the start and
    // fills no cache); else a scan's (the block a seek lands in is read like
    // a get's, what it then streams through is not cached).
    RunReader(const Engine* s, const detail::Run* run, bool sequential, std::uint64_t at = detail::kNoSeqBound,
              bool every = false)
        : s_(s), run_(run), sequential_(sequential), every_(every), at_(at) {}
    // Positions at the first record >= target (> target when after).
    void seek(std::string_view target, bool after) {
      position(target, after);
      settle_forward(nullptr);
    }
    // Positions at the last record < below (the run's last record when
    // below is absent), for a reverse scan: every block it reads is read
    // like a get's (cached), one at a time.
    void seek_back(std::optional<std::string_view> below) {
      position_back(below);
      settle_backward(nullptr);
    }
    // True while the reader takes each record as it is: no sequence bound
    // and no older versions in the current file (a cursor may then take a
    // block's records without asking for each).
    bool plain() const { return at_ == detail::kNoSeqBound && !repeats_; }
    // The sequence bound (detail::kNoSeqBound: none).
    std::uint64_t at() const { return at_; }
    // True if the current file may keep older versions (format 5).
    bool repeats() const { return repeats_; }

   private:
    void position(std::string_view target, bool after) {
      block_.reset();
      table_.reset();
      bool first = !sequential_;
      for (file_i_ = run_->seek(target); file_i_ < run_->files.size(); ++file_i_) {
        open_file(first);
        std::size_t bi = table_->find_block(target);
        if (bi >= table_->block_count()) bi = 0;
        for (; bi < table_->block_count(); ++bi) {
          block_ = first ? s_->cached_scan_block(*table_, file(), bi) : read_block(bi);
          first = false;
          block_i_ = bi;
          rec_ = block_->lower_bound(target);
          if (after && rec_ < block_->size() && block_->key(rec_) == target) past_versions();
          if (rec_ < block_->size()) return;
        }
        block_.reset();
      }
      table_.reset();
    }
    void position_back(std::optional<std::string_view> below) {
      block_.reset();
      table_.reset();
      // Past the last file whose first key is < below.
      std::size_t f = run_->files.size();
      if (below) {
        auto it = std::lower_bound(run_->files.begin(), run_->files.end(), *below,
                                   [](const auto& file, std::string_view k) {
                                     return std::string_view(file->ref().first_key) < k;
                                   });
        f = static_cast<std::size_t>(it - run_->files.begin());
      }
      if (f == 0) return;
      file_i_ = f - 1;
      open_file(true);
      std::size_t bi = table_->block_count();
      if (below) {
        bi = table_->find_block(*below);  // the last block whose first key is <= below
        bi = bi >= table_->block_count() ? 0 : bi + 1;
      }
      // Blocks [0, bi) may hold a record < below; the last one that does.
      while (bi > 0) {
        --bi;
        block_ = s_->cached_scan_block(*table_, file(), bi);
        block_i_ = bi;
        rec_ = below ? block_->lower_bound(*below) : block_->size();
        if (rec_ > 0) {
          --rec_;
          to_newest();
          return;
        }
      }
      // Nothing below it in this file (its first key is < below, so only
      // empty blocks): the files before it.
      block_.reset();
      block_i_ = 0;
      prev_block(nullptr);
    }

   public:
    // The previous key's record (reverse scans); the block it leaves goes to
    // keep.
    void prev(Pins* keep) {
      to_newest();
      if (rec_ > 0) {
        --rec_;
        to_newest();
      } else {
        prev_block(keep);
      }
      settle_backward(keep);
    }
    bool valid() const { return block_ != nullptr; }
    std::string_view key() const { return block_->key(rec_); }
    std::string_view value() const { return block_->value(rec_); }
    bool tombstone() const { return block_->tombstone(rec_); }
    bool uncounted() const { return block_->uncounted(rec_); }
    std::uint64_t seq() const { return block_->seq(rec_); }
    const Block& block() const { return *block_; }
    std::size_t rec() const { return rec_; }
    const std::filesystem::path* path() const { return &table_->path(); }
    // The next record (the next key's, unless every); the block it leaves
    // goes to keep (when given).
    void next(Pins* keep) {
      if (repeats_ && !every_)
        past_versions();
      else
        ++rec_;
      if (rec_ >= block_->size()) next_block(keep);
      if (at_ != detail::kNoSeqBound) settle_forward(keep);
    }
    // Past the rest of the current block.
    void skip_block(Pins* keep) {
      rec_ = block_->size();
      next_block(keep);
      if (at_ != detail::kNoSeqBound) settle_forward(keep);
    }

   private:
    // To the last record of the block before the current one (or of the
    // files before), or invalid at the run's start.
    void prev_block(Pins* keep) {
      if (keep && block_) keep->push(block_, table_);
      block_.reset();
      for (;;) {
        if (table_ && block_i_ > 0 && block_i_ <= table_->block_count()) {
          --block_i_;
          block_ = s_->cached_scan_block(*table_, file(), block_i_);
          if (block_->size() > 0) {
            rec_ = block_->size() - 1;
            to_newest();
            return;
          }
          block_.reset();
          continue;
        }
        if (file_i_ == 0) {
          table_.reset();
          return;
        }
        --file_i_;
        open_file(true);
        block_i_ = table_->block_count();
      }
    }
    std::uint64_t file() const { return run_->files[file_i_]->ref().file; }
    void open_file(bool cached) {
      table_ = s_->table(run_->files[file_i_]->ref(), cached);
      repeats_ = table_->may_repeat();
      br_ = BlockRun{};
    }
    // Past the current record and the older versions of its key (a format-5
    // chunk keeps them after it, in its block).
    void past_versions() {
      const std::string_view k = block_->key(rec_);
      while (++rec_ < block_->size() && block_->key(rec_) == k) {
      }
    }
    // Back from an older version to its key's newest record.
    void to_newest() {
      if (!repeats_) return;
      while (rec_ > 0 && block_->key(rec_ - 1) == block_->key(rec_)) --rec_;
    }
    // With a sequence bound: from the current record (a key's newest, or
    // one of its versions) to the first of the key's records at or below
    // it, else on to the next keys' until one has such a record.
    void settle_forward(Pins* keep) {
      if (at_ == detail::kNoSeqBound) return;
      while (block_ != nullptr) {
        const std::string_view k = block_->key(rec_);
        std::size_t i = rec_;
        do {
          if (block_->seq(i) <= at_) {
            rec_ = i;
            return;
          }
          ++i;
        } while (repeats_ && i < block_->size() && block_->key(i) == k);
        rec_ = i;  // past the key: none of its records is visible
        if (rec_ >= block_->size()) next_block(keep);
      }
    }
    // settle_forward() for reverse scans, from a key's newest record: to its
    // first record at or below the bound, else back to the keys before.
    void settle_backward(Pins* keep) {
      if (at_ == detail::kNoSeqBound) return;
      while (block_ != nullptr) {
        const std::string_view k = block_->key(rec_);
        for (std::size_t i = rec_; i < block_->size() && (i == rec_ || (repeats_ && block_->key(i) == k)); ++i)
          if (block_->seq(i) <= at_) {
            rec_ = i;
            return;
          }
        if (rec_ > 0) {
          --rec_;
          to_newest();
        } else {
          prev_block(keep);
        }
      }
    }
    void next_block(Pins* keep) {
      if (keep) keep->push(block_, table_);
      block_.reset();
      ++blocks_read_;
      for (;;) {
        if (++block_i_ < table_->block_count()) {
          block_ = read_block(block_i_);
          rec_ = 0;
          if (block_->size() > 0) return;
          continue;
        }
        if (++file_i_ >= run_->files.size()) {
          table_.reset();
          br_ = BlockRun{};
          return;
        }
        open_file(false);
        block_i_ = static_cast<std::size_t>(-1);
      }
    }
    // Block i of table_: from the cache, from br_, or read with the blocks
    // after it. A scan's readahead grows with the blocks it has stepped
    // through (none for the first two: a short scan reads what it needs).
    std::shared_ptr<const Block> read_block(std::size_t i) {
      // A scan's first blocks are cached as a get's are: short scans (most
      // are) come back to them; what a long one streams through is not.
      if (!sequential_ && blocks_read_ < 2) return s_->cached_scan_block(*table_, file(), i);
      const std::size_t ahead =
          sequential_ ? kScanReadahead
          : blocks_read_ < 2
              ? 0
              : std::min(kScanReadahead, std::size_t{8} << 10 << std::min<std::size_t>(blocks_read_ - 2, 8));
      return s_->scan_block(*table_, file(), i, br_, ahead);
    }
    using BlockRun = typename Table::BlockRun;
    const Engine* s_;
    const detail::Run* run_;
    bool sequential_;
    bool every_;        // merges: every record, older versions too
    std::uint64_t at_;  // a snapshot's sequence (detail::kNoSeqBound: none)
    std::size_t file_i_ = 0, block_i_ = 0, rec_ = 0, blocks_read_ = 0;
    bool repeats_ = false;  // the current file may keep older versions (format 5)
    std::shared_ptr<const Table> table_;
    std::shared_ptr<const Block> block_;
    BlockRun br_;
  };

 public:
  /// Reads the records of a key range in order, a block at a time, holding
  /// no lock between batches (see Storage::iterator, its typed face, for
  /// the guarantees under concurrent writes). It pins the Version it reads:
  /// compactions do not disturb it, and the files it reads stay on disk
  /// until it moves on or dies.
  class Cursor {
   public:
    /// A cursor at the end.
    Cursor() = default;
    /// A cursor over the records with from <= key < to (either bound may be
    /// absent), before its first record: call peek(). With reverse, it
    /// returns them in descending order (from the last key below to).
    /// With `at` (a snapshot of e), it reads the records as they were at
    /// that moment: writes never disturb its batch.
    Cursor(const Engine* e, std::optional<std::string> from, std::optional<std::string> to, bool reverse = false,
           const Snapshot* at = nullptr)
        : store_(e), from_(std::move(from)), to_(std::move(to)), reverse_(reverse) {
      if (at != nullptr) snap_ = e->state_of(*at);
    }
    /// A copy at the same position; it reads its next records from the store
    /// itself rather than sharing the original's batch.
    Cursor(const Cursor& other) { copy_from(other); }
    /// Moves the position and the batch; the moved-from cursor may only be
    /// assigned to or destroyed.
    Cursor(Cursor&& other) noexcept = default;
    /// See the copy constructor.
    Cursor& operator=(const Cursor& other) {
      if (this != &other) copy_from(other);
      return *this;
    }
    /// See the move constructor.
    Cursor& operator=(Cursor&& other) noexcept = default;
    /// Releases the blocks and the Version it pins.
    ~Cursor() = default;

    /// Makes the cursor read records as stored: the values of a collection
    /// that expires records with their expiry times in front, and expired
    /// records too (by default it skips those and strips the times). Call
    /// before the first peek().
    void read_stored() { stored_ = true; }
    /// Positions on the next record after the last accepted one (the first
    /// of the range before any) without accepting it; false at the end.
    /// After it returns true, key(), value() and file() describe the record
    /// until the next peek(), accept() or change of the cursor. Calling it
    /// again without accept() looks at the same record (as the store holds
    /// it then): a caller whose decoding of the record threw retries that way.
    bool peek() {
      advance();
      return !done_;
    }
    /// Makes the peeked record the last one returned.
    void accept() {
      last_.assign(key());
      started_ = true;
      ++pos_;
    }
    /// The peeked record's encoded key.
    std::string_view key() const { return batch_[pos_].key; }
    /// The peeked record's value bytes (as stored, but without an expiry
    /// time unless read_stored() was called).
    std::string_view value() const { return batch_[pos_].value; }
    /// The chunk file the peeked record came from (nullptr: a buffered write).
    const std::filesystem::path* file() const { return batch_[pos_].file; }
    /// Whether the cursor has passed its last record (or is an end cursor).
    bool at_end() const { return store_ == nullptr || done_; }
    /// The encoded key last accepted ("" before the first), or an expired
    /// record's the cursor skipped after it.
    const std::string& last() const { return last_; }

   private:
    using MapIt = detail::WriteBuffer::const_iterator;

    // Most records one batch takes (a block's tail is taken whole): the
    // first batch of a pass kFirstBatch, each next one four times the one
    // before, up to kBatchRecords. A short scan (YCSB E: 1 to 100 records)
    // then reads no block past the ones it returns.
    static constexpr std::size_t kBatchRecords = 256;
    static constexpr std::size_t kFirstBatch = 16;
    // Bytes of buffered-write records one batch copies (at least one record).
    static constexpr std::size_t kArenaBytes = std::size_t{16} << 10;

    // One record of the batch: key and value view a pinned block, or arena_
    // (a copy of a buffered write, whose entry may change once the lock is
    // released).
    struct Pending {
      std::string_view key, value;
      const std::filesystem::path* file = nullptr;
    };

    void copy_from(const Cursor& o) {
      store_ = o.store_;
      snap_ = o.snap_;
      from_ = o.from_;
      to_ = o.to_;
      reverse_ = o.reverse_;
      stored_ = o.stored_;
      last_ = o.last_;
      started_ = o.started_;
      done_ = o.done_;
      // The copy re-seeks after last_ at its next step: the merge position of
      // `o` may lie past it (the batch), and the batch is not shared.
      positioned_ = false;
      fills_ = 0;
      release();
    }
    // Drops the batch and everything the cursor pins.
    void release() {
      batch_.clear();
      pos_ = 0;
      arena_.clear();
      pins_.clear();
      readers_.clear();
      imm_.reset();
      version_.reset();
    }

    // Makes batch_[pos_] the next record (refilling the batch when it is used
    // up or the buffers changed since it was read); done_ at the end.
    void advance() {
      if (at_end()) return;
      const Engine& s = *store_;
      s.check_open();
      if (pos_ < batch_.size()) {
        if (snap_) return;  // writes do not change what a snapshot sees
        if (wb_version_ == s.wb_version_.load(std::memory_order_acquire) &&
            chunk_version_ == s.chunk_version_.load(std::memory_order_acquire)) {
          return;
        }
        positioned_ = false;  // the store changed: the batch may be stale
      }
      try {
        do fill();
        while (!hide_expired());
        if (snap_) check_kept(*snap_);
      } catch (...) {
        // A failed read may leave the merge position anywhere: the next ++
        // starts over after the last key returned (and meets the error again).
        batch_.clear();
        pos_ = 0;
        positioned_ = false;
        throw;
      }
      if (batch_.empty()) {
        done_ = true;
        release();
      }
    }

    // Takes the expired records of the collections that expire records out
    // of a batch fill() just made, and the expiry times off the values of
    // the others. False when none was left of a batch that was not empty:
    // fill() again, after the last of them.
    bool hide_expired() {
      const Engine& s = *store_;
      if (stored_ || batch_.empty() || s.expiring_.empty()) return true;
      std::uint64_t now = 0;
      std::size_t kept = 0;
      std::string_view prefix;  // of the last key looked at (keys of one collection are adjacent)
      bool covered = false;
      for (std::size_t i = 0; i < batch_.size(); ++i) {
        Pending p = batch_[i];
        if (prefix.empty() || !p.key.starts_with(prefix)) {
          const auto parsed = detail::parse_collection_prefix(p.key);
          prefix = parsed ? p.key.substr(0, parsed->size) : std::string_view();
          covered = parsed && s.expiring_.contains(parsed->id);
        }
        if (covered) {
          const detail::Expiring e = detail::split_expiry(p.value, p.file);
          if (e.expires != 0 && now == 0) now = s.now_micros();
          if (detail::expired_at(e.expires, now)) continue;
          p.value = e.value;
        }
        batch_[kept++] = p;
      }
      if (kept == 0) {
        last_.assign(batch_.back().key);
        started_ = true;
        batch_.clear();
        return false;
      }
      batch_.resize(kept);
      return true;
    }

    // Under the shared lock: positions the sources after last_ (or at from_)
    // if a buffer was frozen since, then merges the next records into batch_
    // (up to the batch's limit, or kArenaBytes of copied buffered writes). Empty
    // only at the end of the range.
    void fill();
    // fill()'s merge for a reverse cursor: the largest key first, down to from_.
    void fill_reverse(std::size_t batch_limit);
    // Adds a buffered write to the batch as a copy (the entry may change once
    // the lock is released; views into arena_ stay valid while it does not
    // reallocate). False, adding nothing, when the arena holds records and
    // this one does not fit.
    bool take_buffered(std::string_view key, const detail::BufferEntry& entry) {
      const std::size_t need = key.size() + entry.value.size();
      if (arena_.size() + need > arena_.capacity()) {
        if (!arena_.empty()) return false;
        arena_.reserve(std::max(need, kArenaBytes));
      }
      const std::size_t at = arena_.size();
      arena_.insert(arena_.end(), key.begin(), key.end());
      arena_.insert(arena_.end(), entry.value.begin(), entry.value.end());
      batch_.push_back(Pending{std::string_view(arena_.data() + at, key.size()),
                               std::string_view(arena_.data() + at + key.size(), entry.value.size()), nullptr});
      return true;
    }
    // Positions every source at the first key after last_ (or at from_);
    // reverse: at the last key before last_ (or before to_, or the last):
    // the write buffer, the frozen one and one RunReader per run of the
    // current Version, which the cursor pins.
    void reseek();
    // The write buffer it merges: the store's, or the one of its snapshot's
    // moment (the store's until a freeze). Needs lock_.
    const detail::WriteBuffer& write_buffer() const {
      return snap_ && snap_->active ? *snap_->active : store_->wb_;
    }
    // The buffered entry at the merge's smallest key: the write buffer's when
    // it is there (wb_at), else the frozen one's (imm_at); at a snapshot, the
    // version it could see (none: the key's record lies below). Needs lock_.
    // A snapshot's frozen buffer was frozen before it was taken: the
    // snapshot sees each of its entries as it is.
    const detail::BufferEntry* buffered(bool wb_at, bool imm_at) const {
      if (!snap_) return wb_at ? &wb_it_->second : imm_at ? &imm_it_->second : nullptr;
      const detail::BufferEntry* e = wb_at ? write_buffer().visible(wb_it_->second, snap_->seq) : nullptr;
      if (e == nullptr && imm_at) e = &imm_it_->second;
      return e;
    }
    // Where a buffer's position lies: see reseek().
    MapIt seek_buffer(const detail::WriteBuffer& b) const {
      if (reverse_) {
        if (started_) return b.before(last_);
        return to_ ? b.before(*to_) : b.last();
      }
      if (started_) return b.upper_bound(last_);
      return from_ ? b.lower_bound(*from_) : b.begin();
    }

    const Engine* store_ = nullptr;
    std::shared_ptr<const detail::SnapshotState> snap_;  // reads at this moment (or now)
    std::optional<std::string> from_, to_;
    bool reverse_ = false;
    bool stored_ = false;  // read_stored()
    std::string last_;  // encoded key last returned
    bool started_ = false, positioned_ = false, done_ = false;
    std::size_t fills_ = 0;  // batches filled (their size grows: see kFirstBatch)
    // The merge position (valid under the lock while the versions match).
    std::uint64_t wb_version_ = 0, chunk_version_ = 0;
    MapIt wb_it_, imm_it_;
    std::shared_ptr<const detail::WriteBuffer> imm_;
    std::shared_ptr<const detail::Version> version_;
    std::vector<RunReader> readers_;  // newest run first
    Pins pins_;
    // The batch: records not yet returned, from pos_ on.
    std::vector<Pending> batch_;
    std::size_t pos_ = 0;
    std::vector<char> arena_;
  };
  /// What scan() returns: begin() starts a new pass each time it is called.

 private:
  // Shards of the block cache: up to 16 (readers on many threads contend
  // less), but each at least 1 MiB, since an entry larger than its shard's
  // share cannot be cached (with 16 shards of a small cache, chunk metadata
  // would be read again on every get).
  static std::size_t cache_shards(std::size_t cache_bytes) {
    std::size_t shards = 1;
    while (shards < 16 && cache_bytes / 2 / (shards * 2) >= (std::size_t{1} << 20)) shards *= 2;
    return shards;
  }

  struct Op {
    std::uint8_t kind;
    std::string_view key;
    std::string_view value;
    detail::Below below = detail::Below::unknown;
  };

  // ---- helpers -----------------------------------------------------------

  void log(LogLevel level, const std::string& msg) const {
    if (opt_.logger) opt_.logger(level, msg);
  }

  void validate_options() {
    auto bad = [&](const std::string& what) {
      throw ValidationError("stowage: invalid Options for " + dir_.string() + ": " + what);
    };
    if (opt_.cache_bytes < (std::size_t{256} << 10)) bad("cache_bytes must be at least 256 KiB");
    if (opt_.block_bytes < 256 || opt_.block_bytes > (std::size_t{4} << 20))
      bad("block_bytes must be between 256 bytes and 4 MiB");
    if (opt_.chunk_bytes < opt_.block_bytes) bad("chunk_bytes must be at least block_bytes");
    if (opt_.write_buffer_bytes > opt_.cache_bytes / 2) bad("write_buffer_bytes must be at most cache_bytes / 2");
  }

  void check_open() const {
    if (closed_.load()) throw ValidationError("stowage: the store at " + dir_.string() + " is closed");
  }
  void check_writable() const {
    if (opt_.read_only)
      throw ValidationError("stowage: the store at " + dir_.string() + " was opened read_only; it takes no writes");
    check_writable_state();
  }
  void check_writable_state() const {
    if (failed_.load()) {
      std::string why;
      {
        std::lock_guard g(failure_mu_);
        why = failure_.empty() ? std::string("an error whose message could not be kept") : failure_;
      }
      throw IoError("stowage: the store at " + dir_.string() + " refuses writes after an earlier error (" + why +
                    "); reopen it to recover from the WAL");
    }
  }

  // The failure rule: an exception of any type thrown after a commit's WAL
  // append, or while a checkpoint changes the store, either leaves the
  // change wholly applied or marks the store failed: writes are refused
  // from then on and a reopen recovers from the WAL (which still holds
  // everything acknowledged: WAL segments are dropped only after the
  // manifest naming their records' chunks is durable). fail() cannot throw
  // (it runs in catch blocks, where a second exception would replace the
  // first) and does not log: callers may hold store mutexes, and a logger
  // may call back into the store. The failure is logged by report_failure(),
  // which each public call runs once it has released every mutex.
  void fail(std::exception_ptr error) noexcept {
    std::string why;
    try {
      why = describe_exception(error);
    } catch (...) {  // std::bad_alloc: the store fails all the same, without its reason
    }
    std::lock_guard g(failure_mu_);
    if (failed_.load()) return;
    failure_.swap(why);
    failure_error_ = error;
    failure_unlogged_ = true;
    failed_ = true;
  }
  // Rethrows what failed the store (for a caller that waited on the
  // background work that failed: it sees the error itself, whatever its type).
  [[noreturn]] void rethrow_failure() const {
    std::exception_ptr e;
    {
      std::lock_guard g(failure_mu_);
      e = failure_error_;
    }
    if (e) std::rethrow_exception(e);
    check_writable_state();
    throw IoError("stowage: the store at " + dir_.string() + " failed");
  }
  static std::string describe_exception(std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      return e.what();
    } catch (...) {
      return "an exception of a type not derived from std::exception";
    }
  }
  // Logs a failure that fail() recorded, once. Never throws.
  void report_failure() noexcept {
    std::string why;
    {
      std::lock_guard g(failure_mu_);
      if (!failure_unlogged_) return;
      failure_unlogged_ = false;
      try {
        why = failure_;
      } catch (...) {
      }
    }
    try {
      log(LogLevel::error, "store failed: " + why);
    } catch (...) {
    }
  }
  // Runs report_failure() when the public call that made it ends, after the
  // call's own lock guards (declared after it) are released.
  struct FailureReport {
    const Engine* store;
    ~FailureReport() { const_cast<Engine*>(store)->report_failure(); }
  };

  std::filesystem::path chunk_path(std::uint64_t file) const { return dir_ / detail::chunk_file_name(file); }

  // The open chunk's metadata (block index, Bloom filter), cached at high
  // priority so data blocks do not push it out; fill=false for chunks read
  // once (scans, checkpoint merges), so they do not displace hot ones. The
  // file handle it was opened with goes to files_. The file must hold what
  // the manifest says it holds (a chunk file that was swapped, replaced or
  // truncated is corrupt, not just different).
  std::shared_ptr<const Table> table(const detail::ChunkRef& ref, bool fill = true) const {
    return cache_.template get_or_load<Table>(
        detail::CacheKey{ref.file, detail::kTableSlot},
        [&] {
          auto path = chunk_path(ref.file);
          auto t = Table::open(*fs_, path);
          if (t->file_bytes() != ref.bytes || t->records() != ref.records || t->first_key() != ref.first_key ||
              t->last_key() != ref.last_key || t->max_seq() != ref.max_seq || t->uncounted() != ref.uncounted)
            throw CorruptionError(path, 0,
                                  "the chunk file does not match the MANIFEST's record of it (size, record count, "
                                  "key range, sequence or uncounted records differ)");
          files_.put(ref.file, t->take_file());
          std::size_t charge = t->charge();
          return std::pair<std::shared_ptr<const Table>, std::size_t>(std::move(t), charge);
        },
        fill, detail::CachePriority::high);
  }
  std::shared_ptr<const Block> block(const Table& t, std::uint64_t file, std::size_t i, bool fill = true) const {
    return cache_.template get_or_load<Block>(
        detail::CacheKey{file, i},
        [&] {
          std::size_t raw = 0;
          auto b = t.read_block(i, *chunk_file(t, file), &raw);
          std::size_t charge = b->charge();
          note_block_read(t.block_framed(i), raw, charge);
          return std::pair<std::shared_ptr<const Block>, std::size_t>(std::move(b), charge);
        },
        fill);
  }
  // Block i as stored, for gets (chunk format 2 on): cached in that form
  // (see StoredBlock), packed or not, and searched in place.
  // With `raw` (a get's scratch), a miss that reads a packed block leaves its
  // decompressed bytes there and sets *unpacked, so the get searches them
  // without decompressing the block a second time.
  std::shared_ptr<const StoredBlock> stored_block(const Table& t, std::uint64_t file, std::size_t i, bool pack,
                                                  std::string* raw = nullptr, bool* unpacked = nullptr) const {
    return cache_.template get_or_load<StoredBlock>(detail::CacheKey{file, detail::kStoredSlot | i}, [&] {
      auto b = t.read_stored(i, *chunk_file(t, file), pack, raw);
      if (unpacked != nullptr) *unpacked = b->packed();
      note_block_read(t.block_framed(i), b->raw_size(), 0);
      std::size_t charge = b->charge();
      return std::pair<std::shared_ptr<const StoredBlock>, std::size_t>(std::move(b), charge);
    });
  }
  // Block i for the first blocks of a scan, which are cached as a get's
  // are (short scans, most of them, come back to them), in the form gets
  // keep (block_form()): decoded, or stored or packed and decoded from there
  // for the scan, so the cache holds blocks of one kind. (Decoded blocks
  // cached by scans between stored ones left holes that neither fit: in
  // the ycsb group's scans the heap grew by 165 MiB.)
  std::shared_ptr<const Block> cached_scan_block(const Table& t, std::uint64_t file, std::size_t i) const {
    const BlockForm form = t.format_major() < 2 ? BlockForm::decoded : block_form();
    if (form == BlockForm::decoded) return block(t, file, i, true);
    return t.decode_stored(i, *stored_block(t, file, i, form == BlockForm::packed));
  }
  // The form in which gets now cache the blocks they read (see
  // choose_form()).
  BlockForm block_form() const { return static_cast<BlockForm>(form_.load(std::memory_order_relaxed)); }
  // Counts a get's block lookup; every kFormWindow of them, chooses the form
  // again: the one that fits (fitting_form()) when it is larger than the
  // current one; a smaller one only while the cache is full and more than a
  // tenth of the lookups missed. A store read with a skewed key choice whose
  // hot blocks fit decoded (YCSB) keeps them decoded, however large its
  // files; one read uniformly keeps the form in which all its blocks fit.
  void note_get_lookup() const {
    if (form_lookups_.fetch_add(1, std::memory_order_relaxed) + 1 < kFormWindow) return;
    form_lookups_.store(0, std::memory_order_relaxed);
    const std::uint64_t misses = form_misses_.exchange(0, std::memory_order_relaxed);
    const BlockForm fits = fitting_form();
    if (fits > block_form()) {
      if (misses * 10 <= kFormWindow) return;
      if (static_cast<double>(cache_.stats().bytes) < 0.9 * static_cast<double>(cache_.capacity())) return;
    }
    const BlockForm was = static_cast<BlockForm>(form_.exchange(static_cast<std::uint8_t>(fits), std::memory_order_relaxed));
    if (was != fits) drop_unread_form(fits);
  }
  // After gets switched to caching blocks in form `now`: drops the cached
  // blocks of the other kind (decoded ones when gets now keep stored or packed
  // blocks, stored or packed ones when they keep decoded blocks), which gets
  // no longer look up, all at once. Left to the eviction policy, they went
  // one at a time while blocks of the new size took their places; a heap
  // at a full cache's size was left a fifth free in holes between blocks
  // (ycsb group, 256 MiB cache: a switch to stored blocks in ycsb-f). A
  // stored block and a packed one share a key, so a switch between those two
  // drops nothing. Blocks of format-1 chunks are only ever decoded; dropped,
  // they are read again on their next get.
  void drop_unread_form(BlockForm now) const {
    const bool decoded_now = now == BlockForm::decoded;
    cache_.erase_if([decoded_now](const detail::CacheKey& k) {
      if (k.offset == detail::kTableSlot) return false;
      const bool stored = (k.offset & detail::kStoredSlot) != 0;
      return decoded_now == stored;
    });
  }
  static constexpr std::uint64_t kFormWindow = 4096;
  // The largest form in which the store's blocks would all fit in nine
  // tenths of the cache (the rest is chunk metadata), judged from the data
  // files' size and the ratios of the blocks read so far. Measured with db_bench's records (4 KiB blocks: 2.0 KB in
  // the file, 3.6 KB decompressed, 4.5 KB decoded): a get's hit in a decoded
  // block is the fastest (1.02M gets/s on a 1M-record store with 256 MiB of
  // cache, 0.84M searching stored blocks), but a miss costs a pread from the
  // page cache (2 us here), the checksum and LZ4 (0.6 us) and the decode
  // (1.4 us); a packed block costs LZ4 (0.5 us) on every hit, and holds 2.2
  // times as many blocks as decoded ones. At default Options the 1M-record
  // store (40 MB of files) fits only packed: 0.38M gets/s decoded, 0.84M packed.
  BlockForm fitting_form() const {
    const auto load = [](const std::atomic<std::uint64_t>& a) {
      return static_cast<double>(a.load(std::memory_order_relaxed));
    };
    const double framed = load(framed_read_), raw = load(raw_read_);
    const double decoded = load(decoded_read_), decoded_raw = load(decoded_raw_read_);
    const double stored = load(data_bytes_) * (framed > 0 ? raw / framed : 1.0);
    const double room = 0.9 * static_cast<double>(cache_.capacity());
    if (stored * (decoded_raw > 0 ? decoded / decoded_raw : 1.25) <= room) return BlockForm::decoded;
    return stored <= room ? BlockForm::stored : BlockForm::packed;
  }
  // Counts a block read for fitting_form() and note_get_lookup(): its size
  // in the file, decompressed, and (decoded blocks) its charge.
  void note_block_read(std::uint64_t framed, std::size_t raw, std::size_t decoded) const {
    form_misses_.fetch_add(1, std::memory_order_relaxed);
    framed_read_.fetch_add(framed, std::memory_order_relaxed);
    raw_read_.fetch_add(raw, std::memory_order_relaxed);
    if (decoded == 0) return;
    decoded_read_.fetch_add(decoded, std::memory_order_relaxed);
    decoded_raw_read_.fetch_add(raw, std::memory_order_relaxed);
  }
  // Chunk file `file` (whose table is t) from files_, opened again when it
  // was closed; it must still be the size it had when t was verified.
  std::shared_ptr<const RandomAccessFile> chunk_file(const Table& t, std::uint64_t file) const {
    return files_.get(file, [&] {
      auto f = fs_->open_read(t.path());
      if (f->size() != t.file_bytes())
        throw CorruptionError(t.path(), 0,
                              "the chunk file changed size while the store had it open (" +
                                  std::to_string(t.file_bytes()) + " bytes, now " + std::to_string(f->size()) + ")");
      return f;
    });
  }

  // block(t, file, i, /*fill=*/false) for scans: on a miss, block i comes
  // from `run` (frames read earlier) or from a new run of the frames of
  // blocks i, i+1, ... read with one read of up to `readahead` bytes.
  std::shared_ptr<const Block> scan_block(const Table& t, std::uint64_t file, std::size_t i,
                                          typename Table::BlockRun& run, std::size_t readahead) const {
    return cache_.template get_or_load<Block>(
        detail::CacheKey{file, i},
        [&] {
          if (!run.holds(i)) run = t.read_block_run(i, readahead, *chunk_file(t, file));
          auto b = t.block_in_run(run, i);
          std::size_t charge = b->charge();
          return std::pair<std::shared_ptr<const Block>, std::size_t>(std::move(b), charge);
        },
        /*fill=*/false);
  }

  // What a run holds of a key.
  enum class Probe { absent, found, erased };
  // Looks key up in one run; on a hit calls on_value(bytes, file). The run's
  // Version must be pinned (or lock_ held). With a bound `at` (a snapshot's
  // read), the key's first record at or below it in the run (absent when it
  // has none there).
  template <class Fn>
  Probe probe_run(const detail::Run& run, std::string_view key, std::uint64_t hash, Fn&& on_value,
                  std::uint64_t at = detail::kNoSeqBound) const {
    const detail::LiveFile* f = run.find(key);
    if (!f || f->ref().min_seq > at) return Probe::absent;  // every record of the file is newer
    auto t = table(f->ref());
    if (!t->may_contain(key, hash)) return Probe::absent;
    std::size_t bi = t->find_block(key);
    if (bi >= t->block_count()) return Probe::absent;
    note_get_lookup();
    const BlockForm form = t->format_major() < 2 ? BlockForm::decoded : block_form();
    if (form != BlockForm::decoded) {
      // The value may lie in the scratch space until on_value returns; a
      // lookup that on_value makes meanwhile (a nested call from a
      // deserializer) gets its own.
      thread_local std::pair<StoredBlock::Scratch, bool> shared;  // the space, in use
      std::optional<StoredBlock::Scratch> own;
      StoredBlock::Scratch& scratch = shared.second ? own.emplace() : shared.first;
      const bool mine = !shared.second;
      shared.second = true;
      struct Release {
        bool* busy;
        ~Release() {
          if (busy) *busy = false;
        }
      } release{mine ? &shared.second : nullptr};
      bool unpacked = false;  // a miss left the packed block's bytes in scratch.raw
      auto b = stored_block(*t, f->ref().file, bi, form == BlockForm::packed, &scratch.raw, &unpacked);
      std::string_view value;
      const unsigned shift = detail::chunk_format::seq_shift(t->format_major());
      switch (unpacked ? b->find_unpacked(key, t->path(), scratch, &value, at, shift)
                       : b->find(key, t->path(), scratch, &value, at, shift)) {
        case Block::Holds::absent:
          return Probe::absent;
        case Block::Holds::tombstone:
          return Probe::erased;
        case Block::Holds::put:
          break;
      }
      on_value(value, &t->path());
      return Probe::found;
    }
    auto b = block(*t, f->ref().file, bi);
    std::size_t i = b->lower_bound(key);
    // Older versions of the key follow its newest record (format 5).
    while (i < b->size() && b->seq(i) > at && b->key(i) == key) ++i;
    if (i >= b->size() || b->key(i) != key) return Probe::absent;
    if (b->tombstone(i)) return Probe::erased;
    on_value(b->value(i), &t->path());
    return Probe::found;
  }
  // Finds key in v's files, newest run first; with a bound `at` (a
  // snapshot's read), each key's newest record at or below it.
  // hash: key's bloom_hash().
  template <class Fn>
  bool find_in_files(const detail::Version& v, std::string_view key, std::uint64_t hash, Fn&& on_value,
                     std::uint64_t at = detail::kNoSeqBound) const {
    for (const auto& r : v.l0) {
      const Probe p = probe_run(r, key, hash, on_value, at);
      if (p != Probe::absent) return p == Probe::found;
    }
    for (std::uint32_t l = 1; l < detail::kLevels; ++l) {
      if (v.levels[l].empty()) continue;
      const Probe p = probe_run(v.levels[l], key, hash, on_value, at);
      if (p != Probe::absent) return p == Probe::found;
    }
    return false;
  }
  // What a buffer's entry for a key (nullptr: none) says of it: -1 nothing
  // (look below), 0 erased, 1 a put, whose value on_value was given.
  template <class Fn>
  static int take_entry(const detail::BufferEntry* e, Fn& on_value) {
    if (e == nullptr) return -1;
    if (e->tombstone) return 0;
    on_value(std::string_view(e->value), nullptr);
    return 1;
  }
  // Looks key up through every layer. Needs lock_ (shared).
  template <class Fn>
  bool find_locked(std::string_view key, Fn&& on_value) const {
    const std::uint64_t hash = detail::bloom_hash(key);
    if (const int p = take_entry(wb_.find(key, hash), on_value); p >= 0) return p == 1;
    return find_below(imm_.get(), *version_, key, hash, on_value);
  }
  template <class Fn>
  bool find_below_buffer(std::string_view key, Fn&& on_value) const {
    return find_below(imm_.get(), *version_, key, detail::bloom_hash(key), on_value);
  }
  // find_below_buffer over a given frozen buffer (or none) and Version;
  // with a bound `at`, the files' records at or below it (find_in_files;
  // every entry of the frozen buffer must be at or below it). hash: key's
  // bloom_hash().
  template <class Fn>
  bool find_below(const detail::WriteBuffer* imm, const detail::Version& v, std::string_view key, std::uint64_t hash,
                  Fn&& on_value, std::uint64_t at = detail::kNoSeqBound) const {
    if (imm)
      if (const int p = take_entry(imm->find(key, hash), on_value); p >= 0) return p == 1;
    return find_in_files(v, key, hash, on_value, at);
  }
  // Looks up the buffered keys whose presence below the buffer is unknown
  // with no lock held (the frozen buffer and Version pinned), then records
  // what it found (lock_ shared, with count_mu_) unless a freeze replaced
  // the buffer meanwhile: size() and stats() then hold lock_ (shared) only
  // to count, and to look up the keys written in between. A few passes, while writers add many such keys
  // during one.
  void settle_unknown() const {
    for (int round = 0; round < 4; ++round)
      if (settle_unknown_pass() <= kSettleUnderLock) return;
  }
  // Keys left for count_shared() to look up under the lock, at most.
  static constexpr std::size_t kSettleUnderLock = 256;
  // Keys one step of settle_unknown_pass() copies, looks up and records: so
  // the copies take a bounded amount of memory (a buffer of erases can hold
  // a million unknown keys), and lock_ is held exclusively for one batch.
  static constexpr std::size_t kSettleBatch = 4096;
  // One pass of settle_unknown() over the buffer in key order, a batch at a
  // time; returns how many keys are still unknown.
  std::size_t settle_unknown_pass() const {
    std::vector<std::string> keys;
    std::vector<char> present;
    std::string after;  // the last key of the batch before ("" before the first)
    auto noop = [](std::string_view, const std::filesystem::path*) {};
    for (bool first = true;; first = false) {
      std::shared_ptr<const detail::WriteBuffer> imm;
      std::shared_ptr<const detail::Version> v;
      std::uint64_t seen;
      keys.clear();
      {
        std::shared_lock guard(lock_);
        check_open();
        std::lock_guard settle(count_mu_);
        if (wb_.unknown() <= kSettleUnderLock) return wb_.unknown();
        for (auto it = first ? wb_.begin() : wb_.upper_bound(after); it != wb_.end() && keys.size() < kSettleBatch;
             ++it)
          if (it->second.below == detail::Below::unknown) keys.emplace_back(it->first);
        if (keys.empty()) return wb_.unknown();  // the pass is over
        imm = imm_;
        v = version_;
        seen = wb_version_.load();
      }
      present.assign(keys.size(), 0);
      for (std::size_t i = 0; i < keys.size(); ++i)
        present[i] = find_below(imm.get(), *v, keys[i], detail::bloom_hash(keys[i]), noop) ? 1 : 0;
      std::shared_lock guard(lock_);
      std::lock_guard settle(count_mu_);
      if (closed_.load()) return 0;
      if (wb_version_.load() != seen) return wb_.unknown();  // frozen meanwhile: the new buffer's keys
      for (std::size_t i = 0; i < keys.size(); ++i) wb_.settle(keys[i], present[i] != 0);
      after = std::move(keys.back());
    }
  }
  // Answers, for keys that come in ascending order, whether `runs` (newest
  // first) hold a live record of the key (its newest record there a put).
  // Each run keeps its place (file, table, last block read), so most keys
  // cost one range check and one Bloom probe per run. A block the cache
  // does not hold is searched as stored (after its checksum and
  // decompression) instead of decoded, and not cached: the blocks these
  // lookups touch are spread over the whole store, and readers need the
  // cache more. Where there are at least a quarter as many keys as a run has
  // blocks, most of its blocks are needed: they are read ahead, many with
  // one read. The runs' Version must be pinned.
  class OrderedProbe {
   public:
    OrderedProbe(const Engine& e, const std::vector<const detail::Run*>& runs, std::uint64_t keys) : e_(e) {
      places_.reserve(runs.size());
      for (const auto* r : runs) {
        places_.emplace_back();
        places_.back().run = r;
        // About one block per Options::block_bytes of file (compression aside).
        if (keys * 4 * e.opt_.block_bytes >= r->bytes) places_.back().readahead = kCountReadahead;
      }
    }
    bool live(std::string_view key) {
      const std::uint64_t hash = detail::bloom_hash(key);
      for (auto& p : places_) {
        const auto& files = p.run->files;
        while (p.file < files.size() && std::string_view(files[p.file]->ref().last_key) < key) {
          ++p.file;
          p.table.reset();
          p.data.reset();
          p.cached.reset();
          p.block = static_cast<std::size_t>(-1);
          p.ahead = {};
        }
        if (p.file == files.size() || key < std::string_view(files[p.file]->ref().first_key)) continue;
        const std::uint64_t file = files[p.file]->ref().file;
        if (!p.table) p.table = e_.table(files[p.file]->ref());
        if (!p.table->may_contain(key, hash)) continue;
        const std::size_t bi = p.table->find_block(key);
        if (bi >= p.table->block_count()) continue;
        if (bi != p.block) {
          p.block = bi;
          p.data.reset();
          p.cached.reset();
          if (p.table->format_major() < 2)
            p.data = e_.block(*p.table, file, bi);
          else if (!(p.cached = e_.cache_.template lookup<StoredBlock>(
                         detail::CacheKey{file, detail::kStoredSlot | bi}, false)))
            p.data = e_.cache_.template lookup<Block>(detail::CacheKey{file, bi}, false);
          if (!p.cached && !p.data) {
            if (p.readahead == 0) {
              p.stored = p.table->read_stored_block(bi, *e_.chunk_file(*p.table, file));
            } else {
              if (!p.ahead.holds(bi))
                p.ahead = p.table->read_block_run(bi, p.readahead, *e_.chunk_file(*p.table, file));
              p.stored = p.table->stored_in_run(p.ahead, bi);
            }
          }
        }
        if (p.data) {
          const std::size_t i = p.data->lower_bound(key);
          if (i < p.data->size() && p.data->key(i) == key) return !p.data->tombstone(i);
          continue;
        }
        const auto holds =
            p.cached ? p.cached->find(key, p.table->path(), scratch_)
                     : Block::find_stored(p.stored, key, p.table->format_major() >= detail::chunk_format::kKindsMajor,
                                          p.table->path(), p.table->block_offset(bi), scratch_.key, nullptr,
                                          p.table->format_major() >= detail::chunk_format::kVersionsMajor);
        if (holds != Block::Holds::absent) return holds == Block::Holds::put;
      }
      return false;
    }

   private:
    struct Place {
      const detail::Run* run = nullptr;
      std::size_t file = 0, block = static_cast<std::size_t>(-1);
      std::size_t readahead = 0;  // bytes per read of this run's blocks (0: one block)
      std::shared_ptr<const Table> table;
      std::shared_ptr<const StoredBlock> cached;  // block `block`, when the cache held it as stored
      std::shared_ptr<const Block> data;          // or decoded (or the chunk is of format 1)
      std::string stored;                         // else block `block` as read
      typename Table::BlockRun ahead;             // blocks read ahead from file `file`
    };
    const Engine& e_;
    std::vector<Place> places_;
    StoredBlock::Scratch scratch_;
  };

  // Resolves the uncounted records of v's files whose part of the count is
  // not known yet (LiveFile::set_resolved): each is looked up in the runs
  // older than its own. v must be pinned; no lock is needed.
  void resolve_files(const detail::Version& v) const {
    const std::vector<const detail::Run*> runs = v.runs();
    for (std::size_t i = 0; i < runs.size(); ++i) {
      for (const auto& f : runs[i]->files) {
        if (f->ref().uncounted == 0 || f->resolved()) continue;
        const auto started = std::chrono::steady_clock::now();
        OrderedProbe below(*this, std::vector<const detail::Run*>(runs.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                                                  runs.end()),
                           f->ref().uncounted);
        detail::Run one;
        one.add(f);
        RunReader r(this, &one, /*sequential=*/true);
        std::int64_t sum = 0;
        std::uint64_t seen = 0;
        for (r.seek("", false); r.valid(); r.next(nullptr)) {
          if (!r.uncounted()) continue;
          ++seen;
          sum += (r.tombstone() ? 0 : 1) - (below.live(r.key()) ? 1 : 0);
        }
        if (seen != f->ref().uncounted)
          throw CorruptionError(chunk_path(f->ref().file), 0,
                                "the chunk file holds " + std::to_string(seen) +
                                    " uncounted records, but the MANIFEST says " +
                                    std::to_string(f->ref().uncounted));
        f->set_resolved(sum);
        count_micros_.fetch_add(micros_since(started), std::memory_order_relaxed);
      }
    }
  }
  // What the frozen buffer adds to the count over v: its entries whose
  // presence below is known, and the others looked up in v.
  std::int64_t frozen_part(const detail::WriteBuffer& imm, const detail::Version& v) const {
    std::int64_t sum = imm.delta();
    if (imm.unknown() == 0) return sum;
    OrderedProbe below(*this, v.runs(), imm.unknown());
    for (auto it = imm.begin(); it != imm.end(); ++it)
      if (it->second.below == detail::Below::unknown)
        sum += (it->second.tombstone ? 0 : 1) - (below.live(it->first) ? 1 : 0);
    return sum;
  }
  // Resolves, with no lock held, what the count needs of the frozen buffer
  // and the files (see resolve_files), so that count_shared() finds little
  // or nothing left to look up.
  void settle_files() const {
    std::shared_ptr<const detail::WriteBuffer> imm;
    std::shared_ptr<const detail::Version> v;
    {
      std::shared_lock guard(lock_);
      check_open();
      if (imm_ && !imm_resolved_.load()) imm = imm_;
      v = version_;
    }
    resolve_files(*v);
    if (!imm) return;
    // The frozen buffer's records are newer than every file of v, and v
    // changes under it only by compactions, which keep which keys are live.
    const std::int64_t part = frozen_part(*imm, *v);
    std::shared_lock guard(lock_);
    std::lock_guard settle(count_mu_);
    if (imm_ == imm) {
      imm_delta_ = part;
      imm_resolved_ = true;
    }
  }
  // Exact record count, with lock_ held (shared is enough): what the
  // settled parts give, plus lookups of what is still unknown, which are
  // not cached here (a shared holder may not change the buffers): the
  // files' parts (resolve_files() is safe with no lock), the frozen
  // buffer's part when not yet resolved, and the buffer's unknown keys.
  std::uint64_t count_shared() const {
    resolve_files(*version_);
    std::lock_guard settle(count_mu_);
    std::int64_t total = live_ + *version_->resolved_part() + wb_.delta();
    if (imm_) total += imm_resolved_.load() ? imm_delta_ : frozen_part(*imm_, *version_);
    if (wb_.unknown() > 0) {
      auto noop = [](std::string_view, const std::filesystem::path*) {};
      for (auto it = wb_.begin(); it != wb_.end(); ++it)
        if (it->second.below == detail::Below::unknown)
          total += (it->second.tombstone ? 0 : 1) - (find_below_buffer(it->first, noop) ? 1 : 0);
    }
    return static_cast<std::uint64_t>(std::max<std::int64_t>(total, 0));
  }
  // The exact count for size() and stats(), holding `guard` (on lock_,
  // unlocked when called, locked shared on return). The lookups run with no
  // lock held, a few rounds while writers add more to look up; the rest
  // (at most about kSettleUnderLock keys, unless writers keep adding) under
  // the shared lock, which readers share and writers wait for.
  template <class Guard>
  std::uint64_t exact_count(Guard& guard) const {
    for (int round = 0;; ++round) {
      settle_unknown();
      settle_files();
      guard.lock();
      check_open();
      if (round >= 3 || wb_.unknown() <= kSettleUnderLock) return count_shared();
      guard.unlock();
    }
  }
  // ---- snapshots ---------------------------------------------------------

  // What `at` pins; ValidationError for an empty snapshot or one of another
  // store.
  const std::shared_ptr<const detail::SnapshotState>& state_of(const Snapshot& at) const {
    if (!at.state_)
      throw ValidationError("stowage: reading at an empty Snapshot (default-constructed or moved from)");
    if (at.store_ != static_cast<const void*>(this))
      throw ValidationError("stowage: a Snapshot of another store used with the store in " + dir_.string());
    return at.state_;
  }
  // Throws once a compaction could not keep what snapshot st sees (its
  // reads may have missed a version): after a read, so that a read of the
  // Version the compaction installed sees the flag it set before.
  static void check_kept(const detail::SnapshotState& st) {
    if (st.lost.load(std::memory_order_acquire))
      throw Error("stowage: this snapshot can no longer be read: a compaction could not keep the older versions of "
                  "one key it sees together (over 1 GiB of values); take a new snapshot");
  }
  // Drops the dead snapshots from snapshots_ and sets snap_max_ to the
  // newest live one's sequence (0: none). Needs lock_ (unique).
  void prune_snapshots() const {
    std::uint64_t newest = 0;
    std::erase_if(snapshots_, [&](const std::weak_ptr<detail::SnapshotState>& w) {
      auto st = w.lock();
      if (!st) return true;
      newest = std::max(newest, st->seq);
      return false;
    });
    snap_max_ = newest;
  }

  // The current Version. Takes lock_ (shared).
  std::shared_ptr<const detail::Version> current_version() const {
    std::shared_lock guard(lock_);
    return version_;
  }

  // ---- commits -----------------------------------------------------------

  // A commit's `before` step (erase's existence lookup), type-erased so that
  // a queued commit can carry it.
  struct BeforeRef {
    void (*fn)(void*) = nullptr;
    void* ctx = nullptr;
    void operator()() const {
      if (fn != nullptr) fn(ctx);
    }
  };
  // A commit's condition (read_modify_write's check that the key is as it
  // was read), type-erased likewise; empty: commit unconditionally.
  struct ConditionRef {
    bool (*fn)(void*) = nullptr;
    void* ctx = nullptr;
    explicit operator bool() const { return fn != nullptr; }
    bool operator()() const { return fn == nullptr || fn(ctx); }
  };
  // A sequence to write into a commit's bytes when it is numbered
  // (WriteOp::stamp): at payload offset `at` (before WalBatch::finish) and
  // at `copy`, the op's bytes the write buffer takes, the sequence of op
  // `of` of the commit.
  struct Stamp {
    std::size_t at;
    char* copy;
    std::size_t of;
  };
  struct Stamps {
    std::vector<Stamp> list;
    std::size_t shift = 0;  // bytes finish() inserted before the ops
    void apply(std::string& payload, std::uint64_t first) const {
      for (const auto& s : list) {
        detail::write_stamp(payload.data() + s.at + shift, first + s.of);
        detail::write_stamp(s.copy, first + s.of);
      }
    }
  };
  // One Durability::sync commit in the queue (see commit_synced).
  struct Writer {
    std::string* payload = nullptr;
    const Stamps* stamps = nullptr;
    Op* ops = nullptr;
    std::size_t n = 0;
    BeforeRef before;
    ConditionRef condition;
    bool refused = false;  // its condition failed: nothing appended or applied
    detail::WriteBuffer::Undo* undo = nullptr;
    std::uint64_t first = 0;  // its first sequence number, once appended
    bool done = false;        // queue_mu_
    std::exception_ptr error;
    std::condition_variable cv;
  };
  // Most commits one leader syncs together.
  static constexpr std::size_t kMaxGroup = 128;

  // Appends one WAL record for ops and applies them; `before` runs first
  // (erase uses it to learn whether the key existed), after every earlier
  // commit is applied. A `condition` (not the default nullptr) runs under
  // write_mu_ before the append, after every earlier commit is applied;
  // when it returns false nothing is appended or applied and commit
  // returns false (otherwise true). A commit is applied all or nothing: when applying
  // throws after the append, the ops already applied are rolled back and
  // the store fails (see fail()). With Durability::sync a commit becomes
  // visible only after its fdatasync, so no reader sees a write that a
  // failed sync or a power cut then takes away.
  template <class Before = void (*)(), class Condition = std::nullptr_t>
  bool commit(detail::WalBatch& batch, Op* ops, std::size_t n, Before&& before = [] {},
              Condition&& condition = nullptr, const Stamps* stamps = nullptr) {
    FailureReport report{this};
    check_open();
    check_writable();
    std::string payload = batch.finish();
    // Everything a rollback needs is allocated before the WAL append.
    detail::WriteBuffer::Undo undo;
    if (n > 1) undo.reserve(n);
    BeforeRef before_ref{[](void* ctx) { (*static_cast<std::remove_reference_t<Before>*>(ctx))(); },
                         const_cast<void*>(static_cast<const void*>(&before))};
    ConditionRef condition_ref;
    if constexpr (!std::is_same_v<std::remove_cvref_t<Condition>, std::nullptr_t>)
      condition_ref = ConditionRef{
          [](void* ctx) -> bool { return (*static_cast<std::remove_reference_t<Condition>*>(ctx))(); },
          const_cast<void*>(static_cast<const void*>(&condition))};
    const bool slowed = throttle();
    bool need_freeze;
    if (opt_.durability == Durability::sync) {
      bool refused = false;
      need_freeze = commit_synced(payload, stamps, ops, n, before_ref, condition_ref, &undo, refused);
      if (refused) return false;
    } else {
      std::lock_guard w(write_mu_);
      check_open();
      check_writable();
      if (!condition_ref()) return false;
      before();
      const std::uint64_t first = last_seq_ + 1;
      detail::encode_fixed64(payload.data(), first);
      if (stamps) stamps->apply(payload, first);
      try {
        wal_->append(payload);
        last_seq_ += n;
        apply_commit(ops, n, first, &undo);
      } catch (...) {
        fail(std::current_exception());
        throw;
      }
      need_freeze = over_limits();
      if (wal_->size() >= wal_sync_at_) request_wal_sync();
    }
    if (need_freeze) maybe_freeze(slowed);
    return true;
  }

  // Applies one commit's ops (sequences first, first + 1, ...) to wb_, all
  // or none (the strong guarantee: a batch rolls back what it applied when
  // an apply throws). Needs write_mu_; takes lock_.
  void apply_commit(Op* ops, std::size_t n, std::uint64_t first, detail::WriteBuffer::Undo* undo);

  // Durability::sync: group commit through a queue of writers. The writer at
  // the front is the leader: it appends the records of the writers queued
  // behind it (itself first), syncs the WAL once for all of them, applies
  // them in order and wakes them; writers arriving meanwhile queue up for
  // the next leader. A writer's condition runs before its append, with the
  // earlier writers of its group appended but not applied (see run_group);
  // `refused` tells that it failed. Returns whether a checkpoint is due;
  // rethrows the writer's error.
  bool commit_synced(std::string& payload, const Stamps* stamps, Op* ops, std::size_t n, BeforeRef before,
                     ConditionRef condition,
                     detail::WriteBuffer::Undo* undo, bool& refused);

  // The leader's work for group[0, count): sets each writer's error instead
  // of throwing. Returns whether a checkpoint is due.
  //
  // Whether a writer of group[0, i) that is not refused writes one of w's
  // keys (a conditional writer's ops are few; the scan is over the group).
  bool run_group(Writer* const* group, std::size_t count) noexcept;
  static bool writes_key_before(Writer* const* group, std::size_t i, const Writer& w) {
    for (std::size_t j = 0; j < i; ++j) {
      const Writer& e = *group[j];
      if (e.refused) continue;
      for (std::size_t a = 0; a < e.n; ++a)
        for (std::size_t b = 0; b < w.n; ++b)
          if (e.ops[a].key == w.ops[b].key) return true;
    }
    return false;
  }

  // Group commit: one fdatasync covers every record appended before it began.
  // After a failed sync nothing is synced again (it could "succeed" with the
  // data gone): the store stays failed until it is reopened.
  void sync_up_to(std::uint64_t seq);

  // ---- freeze, flush, compaction -------------------------------------------

  // A new WAL segment `number`, written through a map (Options::wal_mmap)
  // except with Durability::sync: every commit is fdatasynced, which leaves
  // the mapped page clean and write-protected, so the next record pays a
  // page fault and an inode write on top of the sync (fillsync: 7.0K ->
  // 2.3-3.3K commits/s); pwrite is cheaper there.
  std::shared_ptr<detail::WalWriter> new_wal_segment(std::uint64_t number) const {
    return std::make_shared<detail::WalWriter>(*fs_, dir_, number, detail::kWalPreallocMax,
                                               opt_.wal_mmap && opt_.durability != Durability::sync);
  }

  // Whether the write buffer has reached half its budget (the frozen buffer
  // takes the other half) or the live WAL its limit. Needs write_mu_.
  bool over_limits() const {
    return wb_.bytes() > wb_limit_ / 2 || wal_closed_bytes_ + wal_->size() > opt_.wal_bytes;
  }

  // Back-pressure, before a commit takes any store mutex: with many level-0
  // runs waiting for compaction, the writer sleeps a slice now and then
  // (kL0SlowdownSlice); with more, it waits for compaction. Counted in
  // Stats. Returns whether this commit slept or waited.
  bool throttle();
  // Counts one slowed commit that waited since start (Stats).
  void count_slowdown(std::chrono::steady_clock::time_point start) {
    slowdowns_.fetch_add(1, std::memory_order_relaxed);
    slowed_micros_.fetch_add(micros_since(start), std::memory_order_relaxed);
  }
  // Whole microseconds from start to now (the times Stats adds up).
  static std::uint64_t micros_since(std::chrono::steady_clock::time_point start) {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count());
  }
  // Waits until no flush is pending and the last one's tail is done (see
  // flush_loop), or the store failed.
  void wait_for_flush() {
    std::unique_lock g(bg_mu_);
    done_cv_.wait(g, [&] { return (!flush_pending_ && !flush_tail_) || failed_.load(); });
  }
  // Makes the default keyspace's chunks in manifest_ the current Version,
  // with its live count. Open and migration only (no background thread runs).
  void adopt_manifest_files() {
    const auto* ks = manifest_.keyspace(detail::kDefaultKeyspace);
    version_ = std::make_shared<const detail::Version>(detail::Version::from_refs(ks->chunks, bin_));
    live_ = ks->live;
    l0_runs_ = version_->l0.size();
    data_bytes_ = version_->bytes();
  }

  // After a commit found the buffer over its limit: freezes it, unless a
  // flush is still running; then the writer goes on, and waits only when the
  // active buffer has used the whole budget. A commit that throttle()
  // already slowed waits no slice here (two slices in one put made the
  // longest puts 12 to 14 ms), only past the hard limit.
  void maybe_freeze(bool slowed = false);

  // Freezes wb_ into imm_ and wakes the flush thread. Needs write_mu_,
  // and sync_mu_ too when wal_ is not prepared(); imm_ must be empty.
  // No fsync when it is: the segment it leaves is sealed by the flush
  // thread, and the next one was created and prepared ahead. One that is
  // not prepared is sealed here.
  void freeze_locked();
  // Seals the segment the last freeze left, if not yet done (synced, its
  // zeros cut off): before any later segment is synced, so that a later
  // segment's synced records imply that every earlier segment is whole
  // (judge_wal_end). The flush thread calls it first thing; whoever syncs
  // the WAL calls it before (and waits here while the flush thread seals).
  // A seal that failed is never tried again (a handle whose sync failed
  // is not synced again): every later call rethrows its error, so no later
  // segment is synced either.
  void seal_frozen_wal() {
    std::lock_guard g(seal_mu_);
    if (seal_error_) std::rethrow_exception(seal_error_);
    if (!unsealed_wal_) return;
    try {
      unsealed_wal_->seal();
    } catch (...) {
      seal_error_ = std::current_exception();
      throw;
    }
    unsealed_wal_.reset();
    sealed_seq_.store(unsealed_seq_);
  }
  // Asks the flush thread to sync the WAL written so far. Needs write_mu_.
  void request_wal_sync() {
    wal_sync_at_ = wal_->size() + kWalBytesPerSync;
    {
      std::lock_guard g(bg_mu_);
      wal_sync_pending_ = true;
    }
    bg_cv_.notify_all();
  }
  // The flush thread's small jobs: the WAL synced, the next segment created.
  void background_wal_work() noexcept;
  // Creates the segment the next freeze takes (spare_wal_), unless there is
  // one or the store is closing (a closing store takes no next segment):
  // empty, prepared and durable in the directory, here and not on the
  // writer's path at a freeze. An empty segment replays nothing: open drops
  // one left at the end by a crash.
  void make_spare_wal() {
    {
      std::lock_guard w(write_mu_);
      if (spare_wal_ || closing_.load()) return;
    }
    auto spare = new_wal_segment(next_file_++);
    spare->prepare();  // its zeros durable: it may be left for a background seal (judge_wal_end)
    std::lock_guard w(write_mu_);
    if (!spare_wal_) spare_wal_ = std::move(spare);
  }

  // Freezes the buffer (after the running flush) and waits until it is
  // flushed. For checkpoint() and close().
  void flush_buffer();

  // The flush thread: flushes each frozen buffer (see the top of the file).
  void flush_loop() noexcept;
  // Flushes imm_ into a level-0 run and installs it; returns the WAL
  // segments the manifest no longer needs (flush_loop removes them).
  std::vector<std::uint64_t> run_flush();

  // The compaction thread: runs what pick_compaction() finds due.
  void compact_loop() noexcept;

  // One compaction: its inputs, pinned by v.
  struct Job {
    std::shared_ptr<const detail::Version> v;
    std::uint32_t level = 0, output = 0;
    std::vector<detail::Run> inputs;         // newest first
    std::vector<detail::FilePtr> upper;      // input files of `level`
    std::vector<detail::FilePtr> lower;      // input files of `output`
    bool move = false;                       // the upper files move down as they are
    std::string last_key;                    // largest input key (the round-robin position)
  };
  std::optional<Job> next_job(const std::shared_ptr<const detail::Version>& v, bool everything);
  // compact()'s last step: a merge of the last level's files that hold keys
  // time alone removes (of collections that expire records, and of
  // histories, whose versions age) and of those keeping older versions for
  // snapshots (which their release frees), so that an idle store gives
  // their space back too. One contiguous span of files, from the first holding such
  // keys to the last; nullopt when there is none.
  std::optional<Job> prune_job(const std::shared_ptr<const detail::Version>& v);
  // Runs job (merging its inputs into new files of its output level) and
  // installs the result. Throws Aborted when close() stops it.
  void run_job(Job& job, bool abortable);
  // The background compaction's pause while a flush is pending or runs
  // (flush_pending_; see detail::compaction_yields_to_flush), between two
  // records of its merge. Returns when the flush ends or the store closes;
  // counted in Stats.
  void yield_to_flush() {
    compaction_pauses_.fetch_add(1, std::memory_order_relaxed);
    const auto start = std::chrono::steady_clock::now();
    {
      std::unique_lock g(bg_mu_);
      done_cv_.wait(g, [&] { return !flush_pending_.load() || stop_ || stopping_.load(); });
    }
    paused_micros_.fetch_add(micros_since(start), std::memory_order_relaxed);
  }
  struct Aborted {};

  // New chunk files of one level, each cut at `file_bytes`.
  class Output;
  // The live snapshots, oldest first: what a merge keeps older versions for.
  struct LiveSnapshots {
    std::vector<std::uint64_t> seqs;                               // ascending
    std::vector<std::weak_ptr<detail::SnapshotState>> states;  // seqs[i]'s
    bool empty() const { return seqs.empty(); }
  };
  // Takes lock_ (unique) to drop the dead ones.
  LiveSnapshots live_snapshots() const {
    LiveSnapshots out;
    std::unique_lock guard(lock_);
    prune_snapshots();
    std::vector<std::pair<std::uint64_t, std::weak_ptr<detail::SnapshotState>>> all;
    for (const auto& w : snapshots_)
      if (auto st = w.lock()) all.emplace_back(st->seq, w);
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [seq, w] : all) {
      out.seqs.push_back(seq);
      out.states.push_back(std::move(w));
    }
    return out;
  }
  // Merges inputs (newest first) and, when given, a write buffer (newer than
  // all of them) into out: the newest record of each key, tombstones kept
  // unless nothing_below(key) says nothing older can lie below, sequence
  // numbers kept unless zero_seqs; convert (migrations) maps each value.
  // With live snapshots (snaps, not empty), every older record of a key
  // that one of them sees (the newest at or below its sequence) is kept
  // after the key's newest, as a format-5 version (docs/format.md,
  // "Versions kept for snapshots"); sequence numbers are then kept.
  // Returns what the merge adds to live_ (docs/format.md, "The live
  // count"): a record meeting the counted record it hides takes over its
  // place in the count, and an uncounted one with nothing below is counted.
  // The buffer's entries count as uncounted (its one caller, a migration,
  // counts its output itself).
  using Convert = std::function<bool(std::string_view key, std::string_view value, std::string& out)>;
  template <class Below>
  std::int64_t merge(std::vector<detail::Run>& inputs, const detail::WriteBuffer* buffer, Output& out,
                     Below&& nothing_below, bool zero_seqs, const Convert* convert, bool abortable,
                     const LiveSnapshots* snaps = nullptr);

  // Writes m (with v's chunks and live_'s part `live`), then makes v current;
  // a flush's install (flushed) drops the frozen buffer v now holds in the
  // same step, so that no count sees its records both in v and in imm_.
  // Needs install_mu_.
  void install(detail::Manifest m, std::shared_ptr<const detail::Version> v, std::int64_t live,
               bool flushed = false);

  // Deletes the files no Version names any more; once a close began, stops
  // and leaves the rest to the next open. Returns the first error (a file
  // left behind is harmless: the next open deletes it).
  std::exception_ptr drop_obsolete_files() noexcept;
  // Removes leftovers_ (the flush thread, as it starts; compact()).
  void remove_leftovers() noexcept;

  // A WAL segment that backup_to() or changes_since() reads, listed under
  // write_mu_ with the length of its records as of then (`limit`; the
  // active segment and the one the last freeze closed end in zeros until
  // sealed), and opened after write_mu_ is released: opening files under
  // it held the writer off (puts of up to 7.6 ms waited on it while
  // backups ran back to back).
  struct ListedSegment {
    std::uint64_t number;
    std::uint64_t limit;  // bytes of records (numeric_limits max: the whole file)
  };
  // Needs write_mu_.
  ListedSegment list_segment(std::uint64_t n) const {
    std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
    if (wal_ && n == wal_->number()) limit = wal_->size();
    if (n == frozen_wal_) limit = std::min(limit, frozen_wal_bytes_);
    return ListedSegment{n, limit};
  }
  // A listed segment, opened: read up to `bytes`.
  struct OpenSegment {
    std::uint64_t number;
    std::unique_ptr<RandomAccessFile> file;
    std::uint64_t bytes;
  };
  static OpenSegment open_segment(const ListedSegment& s, std::unique_ptr<RandomAccessFile> f) {
    const std::uint64_t bytes = std::min(f->size(), s.limit);
    return OpenSegment{s.number, std::move(f), bytes};
  }

  // ---- the change feed (changes_since) -----------------------------------
  // A WAL segment no manifest needs any more: kept as feed-N.log when
  // Options::change_feed_bytes (the oldest feed files then removed past
  // it), else deleted. The caller syncs the directory.
  void release_wal_segment(std::uint64_t n) {
    const auto wal = dir_ / detail::wal_file_name(n);
    if (opt_.change_feed_bytes == 0) {
      fs_->remove(wal);
      return;
    }
    const std::uint64_t bytes = file_size(wal);
    fs_->rename(wal, dir_ / detail::feed_file_name(n));
    {
      std::lock_guard f(feed_mu_);
      feed_.emplace_back(n, bytes);
      feed_bytes_ += bytes;
    }
    prune_feed();
  }
  // Removes the oldest feed files past Options::change_feed_bytes.
  void prune_feed() {
    std::vector<std::uint64_t> prune;
    {
      std::lock_guard f(feed_mu_);
      while (feed_bytes_ > opt_.change_feed_bytes && !feed_.empty()) {
        prune.push_back(feed_.front().first);
        feed_bytes_ -= feed_.front().second;
        feed_.pop_front();
      }
    }
    for (auto p : prune) fs_->remove(dir_ / detail::feed_file_name(p));
  }
  // Takes the feed files an earlier session kept (open's listing, ascending).
  void adopt_feed(const std::vector<std::uint64_t>& numbers) {
    std::lock_guard f(feed_mu_);
    for (auto n : numbers) {
      const std::uint64_t bytes = file_size(dir_ / detail::feed_file_name(n));
      feed_.emplace_back(n, bytes);
      feed_bytes_ += bytes;
    }
  }

  // Stops and joins the background threads (a running compaction stops at
  // its next safe point).
  void stop_threads() noexcept;

  // Level sizes.
  detail::LevelTargets targets(const detail::Version& v) const {
    // The base level's least target: kBaseFlushes flushes, each the size
    // the recent flushes wrote. A level above the last one appears once the
    // last holds kLevelFanout times that; until then every level-0 merge
    // rewrites the whole last level.
    return detail::level_targets(v, std::max<std::uint64_t>(kBaseFlushes * flush_bytes_.load(std::memory_order_relaxed),
                                                            std::uint64_t{64} << 10));
  }
  // ---- open ----------------------------------------------------------------

  void open(const Migrator* migrations, unsigned target, bool migrate_only);

  std::uint64_t file_size(const std::filesystem::path& p) const { return fs_->open_read(p)->size(); }

  // Replays the live WAL segments in order into wb_; drops the segments
  // after one whose end a power cut took before its seal (judge_wal_end).
  void replay_log(std::vector<std::uint64_t>& live);
  // Replays one WAL segment into wb_. Sequences must continue exactly from
  // last_seq_: a gap means records were lost (a truncated or missing earlier
  // segment), which is corruption, not a torn tail.
  detail::WalReplay replay_segment(std::uint64_t number);

  detail::Manifest fresh_manifest() const;

  // The policies that shape the bytes must match; the value type is the
  // migration plan's business.
  void check_manifest(const Migrator* migrations) const;

  // ---- migration -------------------------------------------------------------

  struct MigrationPlan {
    std::vector<const detail::FormatStep*> format;
    std::vector<const MigrationStep*> steps;
    unsigned from_version = 0;
    unsigned to_version = 0;
    std::string to_type;  ///< description of the values after the last step ("" if unknown)
    std::filesystem::path backup;
    std::chrono::steady_clock::time_point started;
    bool to_prefixed = false;  ///< a Database's open of a bare store: every key takes collection_prefix(0)
    const SerializerChange* reserialize = nullptr;  ///< every value re-encoded, before the steps
    bool recompress = false;  ///< every block written again with this Compression
    bool needed() const { return !format.empty() || !steps.empty() || to_prefixed || reserialize || recompress; }
    bool rewrites() const { return !steps.empty() || to_prefixed || reserialize || recompress; }
  };

  // What opening the store at value schema version `target` must run. Throws
  // MigrationError, before anything is touched, when no path exists or the
  // registered steps do not fit the stored and wanted types.
  MigrationPlan plan_migration(const Migrator* migrations, unsigned target);
  // The value part of a plan (plan.from_version set): the serializer change
  // when stored_serializer is not t's (registered, as the caller checked),
  // the steps from plan.from_version to target, their types checked against
  // stored_type and t. MigrationError naming `where` when they do not fit.
  void plan_values(MigrationPlan& plan, const Migrator* migrations, unsigned target,
                   const std::string& stored_serializer, const std::string& stored_type, const RecordTypes& t,
                   const std::string& where) const;

  // The names of a plan's steps, in the order they run ("format 4->5",
  // "layout bare->prefixed", "compression A -> B", "serializer A -> B",
  // "1->2"): MigrationReport::steps, and describe_plan() joins them.
  std::vector<std::string> plan_step_names(const MigrationPlan& plan) const;
  std::string describe_plan(const MigrationPlan& plan) const;

  // Before anything on disk changes (even a torn WAL tail being cut): the
  // backup. Chunk files are immutable, so they are hard-linked.
  void begin_migration(MigrationPlan& plan, const Migrator* migrations, const std::vector<std::uint64_t>& live);

  // Writes m as the MANIFEST (durably, atomically) and makes it manifest_.
  // Needs install_mu_ (or an open that has not started the threads).
  void replace_manifest(detail::Manifest m) {
    manifest_bytes_ = detail::write_manifest(*fs_, dir_, m);
    manifest_ = std::move(m);
    note_rules();
  }

  // The history keyspace of collection id as its writers use it, or
  // nullptr. Needs install_mu_ (or an open that has not started the threads).
  std::shared_ptr<const detail::HistoryHook> history_hook(std::uint32_t id) const {
    const auto* h = manifest_.history(id);
    if (!h) return nullptr;
    auto hook = std::make_shared<detail::HistoryHook>();
    hook->prefix = detail::collection_prefix(h->id);
    hook->rule = history_rule(*h);
    hook->start = h->history_start;
    return hook;
  }
  // The expiry of collection id (nullptr: its values carry no times).
  std::shared_ptr<const detail::ExpiryRule> expiry_rule(std::uint32_t id) const {
    const auto* e = manifest_.expiry(id);
    if (!e) return nullptr;
    return std::make_shared<const detail::ExpiryRule>(detail::ExpiryRule{e->expiry_ttl, e->expiry_start});
  }
  // on_value behind the expiry of key's collection: for a collection that
  // expires records, called with the value without its time, and not at
  // all once the record expired (gone is set then). Asked after the value
  // is read: a value carrying a time was written after its collection's id
  // was published.
  template <class Fn>
  auto unexpired(std::string_view key, Fn& on_value, bool& gone) const {
    return [this, key, &on_value, &gone](std::string_view value, const std::filesystem::path* file) {
      if (!expiring_.covers(key)) return on_value(value, file);
      const detail::Expiring e = detail::split_expiry(value, file);
      if (detail::expired_at(e.expires, now_micros())) {
        gone = true;
        return;
      }
      on_value(e.value, file);
    };
  }

  // The rule a history entry of the collection table records.
  static History history_rule(const detail::CollectionState& c) {
    return History{c.history_versions, std::chrono::seconds(static_cast<std::int64_t>(c.history_seconds))};
  }

  // What merges prune (HistoryPruner): every history keyspace of the
  // MANIFEST, ages judged now.
  detail::HistoryPruner history_pruner() const {
    std::vector<detail::HistoryPruner::Keyspace> ks;
    {
      std::lock_guard h(history_mu_);
      ks = history_rules_;
    }
    if (ks.empty()) return {};
    return detail::HistoryPruner(std::move(ks), detail::now_micros(opt_));
  }
  // Keeps history_rules_ and expiring_ in step with manifest_ (at every
  // change of it).
  void note_rules() {
    std::vector<detail::HistoryPruner::Keyspace> ks;
    std::vector<std::uint32_t> expiring;
    for (const auto& c : manifest_.collections) {
      if (c.is_history()) ks.push_back({c.id, history_rule(c)});
      if (c.is_expiry()) expiring.push_back(c.parent);
    }
    expiring_.assign(std::move(expiring));
    std::lock_guard h(history_mu_);
    history_rules_ = std::move(ks);
  }

  // The slot of the collection or index c (its prefix from its id).
  static std::unique_ptr<CollectionSlot> make_slot(const detail::CollectionState& c) {
    auto slot = std::make_unique<CollectionSlot>();
    slot->name = c.name;
    slot->id = c.id;
    slot->prefix = detail::collection_prefix(c.id);
    return slot;
  }

  // Sets the ready flag of the indexes ids in a new MANIFEST.
  void set_ready(const std::vector<std::uint32_t>& ids, bool ready) {
    check_writable();
    std::lock_guard inst(install_mu_);
    detail::Manifest m = manifest_;
    for (auto id : ids)
      if (auto* e = m.by_id(id)) e->ready = ready;
    replace_manifest(std::move(m));
  }

  // The indexes the MANIFEST records for collection id (undeclared, as a
  // slot for it is made). Needs install_mu_.
  std::vector<std::uint32_t> recorded_indexes(std::uint32_t id) const {
    std::vector<std::uint32_t> out;
    for (const auto& c : manifest_.collections)
      if (c.is_index() && c.parent == id) out.push_back(c.id);
    return out;
  }

  // The default collection takes types (a store a Database created, first
  // opened by a Storage or given types by a Database). Needs install_mu_.
  void adopt_default_types(const RecordTypes& t) {
    detail::Manifest m = manifest_;
    auto* ks = m.keyspace(detail::kDefaultKeyspace);
    ks->key_order = t.key_order;
    ks->value_type = t.value_type;
    ks->schema_version = t.value_version;
    m.serializer = t.serializer;
    replace_manifest(std::move(m));
  }

  // MigrationError, naming both, when a collection recorded with these
  // types is opened with t.
  void check_collection_types(std::string_view name, const std::string& key_order, const std::string& serializer,
                              const std::string& value_type, std::uint32_t schema_version,
                              const RecordTypes& t) const {
    const std::string where = "collection '" + std::string(name) + "' of the store at " + dir_.string();
    auto mismatch = [&](const std::string& what, const std::string& on_disk, const std::string& here) {
      throw MigrationError("stowage: " + where + " was created with " + what + " '" + on_disk +
                           "' but is opened with '" + here + "'; open it with the same " + what);
    };
    if (key_order != t.key_order) mismatch("key type", key_order, t.key_order);
    if (serializer != t.serializer)
      throw MigrationError("stowage: " + where + " was created with serializer '" + serializer +
                           "' but is opened with '" + t.serializer +
                           "'; open it with the same serializer, or migrate it: collection(name, migrations) with "
                           "Migrator::change_serializer()");
    if (schema_version != t.value_version)
      throw MigrationError("stowage: " + where + " holds values at schema version " + std::to_string(schema_version) +
                           " but is opened at " + std::to_string(t.value_version) +
                           "; migrate it: pass a Migrator with the steps to collection(name, migrations)");
    if (!value_type.empty() && value_type != t.value_type) mismatch("value type", value_type, t.value_type);
  }

  // Erases the records of the dropped collections (manifest_.dropped), makes
  // the erases durable, then removes their ids from the manifest.
  void purge_dropped() {
    std::vector<std::uint32_t> ids;
    {
      std::lock_guard inst(install_mu_);
      ids = manifest_.dropped;
    }
    if (ids.empty()) return;
    std::size_t erased = 0;
    for (auto id : ids) erased += erase_range(detail::collection_prefix(id), detail::collection_prefix(id + 1));
    flush();  // durable before the manifest forgets the ids
    std::lock_guard inst(install_mu_);
    detail::Manifest m = manifest_;
    std::erase_if(m.dropped, [&](std::uint32_t id) { return std::find(ids.begin(), ids.end(), id) != ids.end(); });
    replace_manifest(std::move(m));
    log(LogLevel::info, "purged " + std::to_string(erased) + " records of " + std::to_string(ids.size()) +
                            " dropped collection(s) of " + dir_.string());
  }

  // A key for messages: decoded and printed when that reads well, else hex.
  std::string describe_key(std::string_view encoded) const {
    if (types_.describe_key != nullptr) return types_.describe_key(encoded);
    return detail::hex_key(encoded);
  }

  // Runs the plan: every record of the store (chunks and replayed WAL)
  // through the steps into new chunk files, then one atomic MANIFEST swap.
  // Until the swap the live files are untouched; afterwards the old chunks
  // and WAL segments are no longer named (open's cleanup removes them).
  void run_migration(MigrationPlan& plan, std::vector<std::uint64_t>& live);
  // One value through the plan's serializer change and steps, into out
  // (current is scratch); false when a step dropped it. Counts it in
  // report. MigrationError naming the key when a step throws.
  bool convert_value(const MigrationPlan& plan, std::string_view key, std::string_view value, std::string& out,
                     std::string& current, MigrationReport& report) const;

 public:
  /// Migrates the named collection to t's schema version (and serializer)
  /// with migrations, when it is recorded otherwise; does nothing when it
  /// does not exist or needs nothing (or differs in a way migrations do
  /// not cover: collection() then names the mismatch). Every record is
  /// converted into a new collection id, the copies made durable, then one
  /// MANIFEST swap gives the name to the new id and renames the old one
  /// `<name>.backup-<UTC time>-v<from>`: the backup, a collection that opens
  /// with the old types (drop_collection() reclaims it). A crash before the
  /// swap leaves the collection as it was (the next open purges the
  /// copies). The collection's indexes are dropped by the swap and built
  /// anew by their next declaration. MigrationError (nothing changed) when
  /// no path of steps fits or a step throws; ValidationError on a read_only
  /// store, or when this engine already handed out a slot of the
  /// collection (migrate it before any handle to it is taken).
  void migrate_collection(std::string_view name, const RecordTypes& t, const Migrator& migrations);

 private:

  // ---- state ---------------------------------------------------------------

  std::filesystem::path dir_;
  Options opt_;
  RecordTypes types_;
  std::shared_ptr<FileSystem> fs_;
  std::size_t wb_limit_ = 0;
  std::unique_ptr<detail::FileLock> file_lock_;

  // The Lock policy, or a real shared mutex when the policy synchronises
  // nothing (NoLock): the background threads swap buffers and Versions
  // under it whatever the user's threading.
  static constexpr bool kLockSyncs = [] {
    if constexpr (requires { Lock::thread_safe; })
      return static_cast<bool>(Lock::thread_safe);
    else
      return true;
  }();
  mutable std::conditional_t<kLockSyncs, Lock, detail::PollingSharedMutex> lock_;
  mutable detail::WriteBuffer wb_;            // lock_ (mutable: size() caches lookups in it)
  // Live snapshots (dead ones until the next prune_snapshots()), and the
  // newest one's sequence: wb_ keeps a version it replaces at or below it.
  mutable std::vector<std::weak_ptr<detail::SnapshotState>> snapshots_;  // lock_
  mutable std::uint64_t snap_max_ = 0;                                    // lock_
  std::shared_ptr<detail::WriteBuffer> imm_;  // lock_ to swap; read by the flush thread without it
  std::shared_ptr<const detail::Version> version_;  // lock_ to read; install_mu_ + lock_ to swap
  std::atomic<std::uint64_t> data_bytes_{0};        // version_->bytes(), for fitting_form()
  // Blocks gets (and a scan's first blocks) read, for fitting_form(): bytes in the file,
  // decompressed, and decoded (with the decompressed bytes of those decoded).
  mutable std::atomic<std::uint64_t> framed_read_{0}, raw_read_{0}, decoded_read_{0}, decoded_raw_read_{0};
  // block_form()'s answer, and the block lookups and reads of gets since it
  // was last chosen (note_get_lookup()).
  mutable std::atomic<std::uint8_t> form_{static_cast<std::uint8_t>(BlockForm::decoded)};
  mutable std::atomic<std::uint64_t> form_lookups_{0}, form_misses_{0};
  std::int64_t live_ = 0;  // what version_'s counted records add to the live count; lock_
  mutable std::int64_t imm_delta_ = 0;              // what imm_ adds to the count, once resolved; see count_mu_
  // What size() and stats() learn of the buffers (wb_'s entries' presence
  // below, with its unknown() and delta(); imm_delta_ and imm_resolved_) is
  // recorded under lock_ held shared together with this mutex, and read
  // under lock_ (either side) with it: writers, which hold lock_
  // exclusively, need not take it.
  mutable std::mutex count_mu_;
  mutable std::atomic<bool> imm_resolved_{true};    // imm_delta_ holds for imm_ (or there is no imm_)
  std::shared_ptr<detail::FileBin> bin_ = std::make_shared<detail::FileBin>();
  // Bumped under lock_ (exclusive) by every commit / at each freeze; atomic
  // so that a scan can see without the lock that its batch is current.
  std::atomic<std::uint64_t> wb_version_{0};
  std::atomic<std::uint64_t> chunk_version_{0};
  std::uint64_t freezes_ = 0;  // freezes so far; written under write_mu_ and lock_ (exclusive), read under either
  mutable detail::BlockCache<Eviction> cache_;  // its own sharded locks
  mutable detail::OpenFileCache files_;         // its own lock

  mutable std::mutex write_mu_;
  std::shared_ptr<detail::WalWriter> wal_;   // write_mu_
  std::uint64_t last_seq_ = 0;               // write_mu_
  // The history keyspaces' rules, as manifest_ holds them, for merges
  // (which hold no install_mu_). history_mu_ is a leaf.
  mutable std::mutex history_mu_;
  std::vector<detail::HistoryPruner::Keyspace> history_rules_;  // history_mu_
  // The collections whose values carry expiry times (read without a lock).
  detail::ExpiringSet expiring_;
  std::uint64_t wal_closed_bytes_ = 0;       // write_mu_
  std::vector<std::uint64_t> wal_segments_;  // write_mu_
  // Segments a flush took out of wal_segments_ that the flush thread has not
  // yet deleted or moved to the feed (changes_since() looks for them too).
  std::vector<std::uint64_t> releasing_;  // write_mu_
  // The segment the last freeze closed, and the length of its records: it
  // takes no more, and its seal (on the flush thread, under seal_mu_, which
  // a reader of the WAL must not wait for) only cuts its zeros.
  std::uint64_t frozen_wal_ = 0, frozen_wal_bytes_ = 0;  // write_mu_
  // Released segments kept for changes_since() (Options::change_feed_bytes),
  // oldest first: (number, bytes). feed_mu_ is taken after write_mu_ when
  // with it, and nothing is taken while it is held.
  mutable std::mutex feed_mu_;
  std::deque<std::pair<std::uint64_t, std::uint64_t>> feed_;  // feed_mu_
  std::uint64_t feed_bytes_ = 0;                             // feed_mu_
  // Files an earlier session left that the manifest does not need (chunk
  // files no manifest names, WAL segments before wal_start): open hands
  // them to the flush thread, which removes them after open returned.
  std::vector<std::filesystem::path> leftovers_;  // leftovers_mu_ once the threads run
  std::mutex leftovers_mu_;
  std::uint64_t flush_wal_ = 0;              // the segment the frozen buffer's successor starts; write_mu_
  std::uint64_t flush_seq_ = 0;              // the frozen buffer's last sequence; write_mu_
  std::uint64_t wal_sync_at_ = kWalBytesPerSync;  // WAL size at which the next background sync is asked for; write_mu_
  std::shared_ptr<detail::WalWriter> spare_wal_;  // the next segment, created ahead (empty); write_mu_

  std::mutex sync_mu_;
  std::uint64_t synced_seq_ = 0;  // sync_mu_
  // Held while the segment a freeze left is sealed (seal_frozen_wal), so
  // that no later segment is synced before; taken after sync_mu_ and
  // write_mu_ when with them, never while waiting for either.
  std::mutex seal_mu_;
  std::shared_ptr<detail::WalWriter> unsealed_wal_;  // that segment, until sealed; seal_mu_
  std::uint64_t unsealed_seq_ = 0;                   // its last record's sequence; seal_mu_
  std::exception_ptr seal_error_;                    // why its seal failed; seal_mu_
  std::atomic<std::uint64_t> sealed_seq_{0};         // every record up to it is in a sealed segment

  mutable std::mutex install_mu_;
  detail::Manifest manifest_;                             // install_mu_
  CollectionSlot default_slot_;                           // set by open
  // A Database's named collections opened so far (collection()), and the
  // slots of dropped ones (handles may still point at them). install_mu_.
  std::map<std::string, std::unique_ptr<CollectionSlot>, std::less<>> slots_;
  std::vector<std::unique_ptr<CollectionSlot>> dropped_slots_;
  std::map<std::uint32_t, std::unique_ptr<CollectionSlot>> index_slots_;  // by id
  std::array<std::string, detail::kLevels> compact_after_;  // install_mu_ (round-robin positions)
  std::atomic<std::uint64_t> next_file_{1};
  std::atomic<std::uint64_t> manifest_bytes_{0};
  std::atomic<std::uint64_t> checkpoints_{0};  // flushes
  std::atomic<std::uint64_t> compactions_{0};
  std::atomic<std::uint64_t> bytes_put_{0};            // encoded key + value bytes of applied commits
  std::atomic<std::uint64_t> chunk_bytes_written_{0};  // chunk file bytes written since open
  std::atomic<std::uint64_t> bytes_flushed_{0};
  std::atomic<std::uint64_t> bytes_compacted_{0};
  std::atomic<std::uint64_t> slowdowns_{0};     // commits slowed or stopped by back-pressure
  std::atomic<std::uint64_t> slowed_micros_{0};  // time they waited
  std::atomic<std::uint64_t> compaction_pauses_{0};  // yield_to_flush() calls (counted as each begins)
  std::atomic<std::uint64_t> paused_micros_{0};      // time they waited (added as each ends)
  // When the last commit slowed by level-0 runs went on (steady_clock ticks; throttle()).
  std::atomic<std::int64_t> throttle_resumed_{0};
  mutable std::atomic<std::uint64_t> count_micros_{0};  // time spent resolving uncounted records
  std::atomic<std::size_t> l0_runs_{0};
  std::atomic<std::uint64_t> flush_bytes_{0};  // bytes a flush writes (a moving average)

  // Background threads.
  mutable std::mutex bg_mu_;
  std::condition_variable bg_cv_;            // wakes the threads
  mutable std::condition_variable done_cv_;  // wakes writers and waiters: a flush or compaction finished
  // imm_ waits for the flush thread. Changed under bg_mu_; atomic so that
  // the background merge may poll it (where yield_compaction_).
  std::atomic<bool> flush_pending_{false};
  bool flush_tail_ = false;                  // bg_mu_: the flush thread finishes the last flush (flush_loop)
  bool wal_sync_pending_ = false;            // bg_mu_: the flush thread should sync the WAL
  bool stop_ = false;                        // bg_mu_
  std::atomic<bool> closing_{false};         // close() began: no next WAL segment is made ahead, no file removed
  std::atomic<bool> stopping_{false};        // close() began (compactions poll it): set before stop_
  // Whether the background compaction pauses while flush_pending_ (see
  // yield_to_flush).
  const bool yield_compaction_ = detail::compaction_yields_to_flush(std::thread::hardware_concurrency());
  bool compacting_ = false;                  // bg_mu_: the compaction thread picks or runs a job
  int manual_ = 0;                           // bg_mu_: compact() calls running (the thread stays idle)
  std::uint64_t bg_epoch_ = 0;               // bg_mu_: bumped by each install
  std::thread flush_thread_, compact_thread_;

  std::atomic<bool> failed_{false};
  mutable std::mutex failure_mu_;
  std::string failure_;               // failure_mu_
  std::exception_ptr failure_error_;  // failure_mu_: what failed the store
  bool failure_unlogged_ = false;     // failure_mu_

  // Durability::sync commits queue here; the front one is the leader (see commit_synced).
  std::mutex queue_mu_;
  std::deque<Writer*> writers_;  // queue_mu_
  std::atomic<bool> closed_{false};
  std::optional<MigrationReport> last_migration_;  // set by open, and by each migrate_collection()
};

// ---- Engine members defined out of the class: not inline, so that with
// STOWAGE_SEPARATE_COMPILATION only engine_src.hpp compiles them. ----

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::Cursor::fill() -> void {
  const Engine& s = *store_;
  batch_.clear();
  pos_ = 0;
  pins_.clear();
  if (arena_.capacity() > 4 * kArenaBytes) arena_ = std::vector<char>();  // after one huge buffered value
  arena_.clear();
  const std::size_t batch_limit = std::min(kBatchRecords, kFirstBatch << (2 * std::min<std::size_t>(fills_, 2)));
  ++fills_;
  std::shared_lock guard(s.lock_);
  s.check_open();
  if (!positioned_ || chunk_version_ != s.chunk_version_.load(std::memory_order_relaxed)) {
    reseek();
    positioned_ = true;
  } else if (wb_version_ != s.wb_version_.load(std::memory_order_relaxed)) {
    wb_it_ = seek_buffer(write_buffer());  // an insert moves entries
    wb_version_ = s.wb_version_.load(std::memory_order_relaxed);
  }
  if (reverse_) {
    fill_reverse(batch_limit);
    return;
  }
  for (;;) {
    const bool wb_has = wb_it_ != s.wb_.end();
    const bool imm_has = imm_ && imm_it_ != imm_->end();
    // The run with the smallest key; the newest wins ties.
    RunReader* low = nullptr;
    for (auto& r : readers_)
      if (r.valid() && (low == nullptr || r.key() < low->key())) low = &r;
    if (low != nullptr) {
      // The common case: the rest of low's block precedes every other
      // source and the range's end; take it whole.
      const Block& b = low->block();
      const std::string_view last = b.key(b.size() - 1);
      bool whole = (!wb_has || last < std::string_view(wb_it_->first)) &&
                   (!imm_has || last < std::string_view(imm_it_->first)) && (!to_ || last < std::string_view(*to_));
      for (auto& r : readers_)
        if (whole && &r != low && r.valid() && !(last < r.key())) whole = false;
      if (whole) {
        if (low->plain()) {
          for (std::size_t i = low->rec(); i < b.size(); ++i)
            if (!b.tombstone(i)) batch_.push_back(Pending{b.key(i), b.value(i), low->path()});
        } else {
          // Each key's records [i, j): the first at or below the reader's
          // bound (no other source holds these keys).
          for (std::size_t i = low->rec(), j; i < b.size(); i = j) {
            j = i + 1;
            if (low->repeats())
              while (j < b.size() && b.key(j) == b.key(i)) ++j;
            std::size_t pick = i;
            while (pick < j && b.seq(pick) > low->at()) ++pick;
            if (pick < j && !b.tombstone(pick)) batch_.push_back(Pending{b.key(pick), b.value(pick), low->path()});
          }
        }
        low->skip_block(&pins_);
        if (batch_.size() >= batch_limit) return;
        continue;
      }
    }
    // The smallest key among the sources; the newest layer wins ties.
    std::string_view best;
    bool have = false;
    auto consider = [&](std::string_view k) {
      if (!have || k < best) best = k, have = true;
    };
    if (wb_has) consider(wb_it_->first);
    if (imm_has) consider(imm_it_->first);
    if (low != nullptr) consider(low->key());
    if (!have || (to_ && !(best < std::string_view(*to_)))) return;
    const bool wb_at = wb_has && wb_it_->first == best;
    const bool imm_at = imm_has && imm_it_->first == best;
    const detail::BufferEntry* entry = buffered(wb_at, imm_at);
    if (entry && !entry->tombstone) {
      if (!take_buffered(best, *entry)) return;  // the arena is full: this record starts the next batch
    } else if (!entry && (!snap_ || (low != nullptr && low->key() == best)) && !low->tombstone()) {
      batch_.push_back(Pending{low->key(), low->value(), low->path()});
    }
    // best views a buffer key or a block that stays pinned (pins_).
    if (wb_at) ++wb_it_;
    if (imm_at) ++imm_it_;
    for (auto& r : readers_)
      if (r.valid() && r.key() == best) r.next(&pins_);
    if (batch_.size() >= batch_limit) return;
  }
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::Cursor::fill_reverse(std::size_t batch_limit) -> void {
  const Engine& s = *store_;
  for (;;) {
    const bool wb_has = wb_it_ != s.wb_.end();
    const bool imm_has = imm_ && imm_it_ != imm_->end();
    // The run with the largest key; the newest (first) wins ties.
    RunReader* high = nullptr;
    for (auto& r : readers_)
      if (r.valid() && (high == nullptr || high->key() < r.key())) high = &r;
    std::string_view best;
    bool have = false;
    auto consider = [&](std::string_view k) {
      if (!have || best < k) best = k, have = true;
    };
    if (wb_has) consider(wb_it_->first);
    if (imm_has) consider(imm_it_->first);
    if (high != nullptr) consider(high->key());
    if (!have || (from_ && best < std::string_view(*from_))) return;
    const bool wb_at = wb_has && wb_it_->first == best;
    const bool imm_at = imm_has && imm_it_->first == best;
    const detail::BufferEntry* entry = buffered(wb_at, imm_at);
    if (entry && !entry->tombstone) {
      if (!take_buffered(best, *entry)) return;  // the arena is full: this record starts the next batch
    } else if (!entry && (!snap_ || (high != nullptr && high->key() == best)) && !high->tombstone()) {
      batch_.push_back(Pending{high->key(), high->value(), high->path()});
    }
    // best views a buffer key or a block that stays pinned (pins_).
    if (wb_at) wb_it_.retreat();
    if (imm_at) imm_it_.retreat();
    for (auto& r : readers_)
      if (r.valid() && r.key() == best) r.prev(&pins_);
    if (batch_.size() >= batch_limit) return;
  }
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::Cursor::reseek() -> void {
  const Engine& s = *store_;
  wb_it_ = seek_buffer(write_buffer());
  imm_ = snap_ ? snap_->imm : s.imm_;
  if (imm_) imm_it_ = seek_buffer(*imm_);
  readers_.clear();
  // A snapshot reads the current files too, each key's record at its
  // sequence: compactions keep those while it lives (see merge()).
  version_ = s.version_;
  const std::string_view target = started_ ? std::string_view(last_) : (from_ ? std::string_view(*from_) : "");
  std::optional<std::string_view> below;
  if (started_)
    below = last_;
  else if (to_)
    below = *to_;
  const std::uint64_t at = snap_ ? snap_->seq : detail::kNoSeqBound;
  version_->for_each_run([&](const detail::Run& r, std::uint32_t) {
    readers_.emplace_back(&s, &r, /*sequential=*/false, at);
    if (reverse_)
      readers_.back().seek_back(below);
    else
      readers_.back().seek(target, started_);
  });
  wb_version_ = s.wb_version_.load(std::memory_order_relaxed);
  chunk_version_ = s.chunk_version_.load(std::memory_order_relaxed);
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::size_at(const Snapshot& at) const -> std::size_t {
  const detail::SnapshotState& st = *state_of(at);
  std::lock_guard once(st.size_mu);
  if (st.size) return static_cast<std::size_t>(*st.size);
  if (!st.below_part) {
    // The count of the files of its moment was not known then: a scan at
    // it, no value decoded.
    std::uint64_t n = 0;
    Cursor c(this, std::nullopt, std::nullopt, false, &at);
    c.read_stored();
    for (; c.peek(); c.accept()) ++n;
    st.size = n;
    return static_cast<std::size_t>(n);
  }
  std::int64_t total = *st.below_part;
  // The write buffer's records at the snapshot's sequence: the versions it
  // sees, their presence below the buffer known or looked up (with no lock
  // held) in its frozen buffer and the files: there, only records older
  // than the version seen lie below the buffer (a flush of this buffer
  // wrote one record of the key, at least as new).
  struct Unknown {
    std::string key;
    bool put;
    std::uint64_t seq;
  };
  std::vector<Unknown> unknown;
  {
    std::shared_lock guard(lock_);
    check_open();
    const detail::WriteBuffer& wb = st.active ? *st.active : wb_;
    for (auto it = wb.begin(); it != wb.end(); ++it) {
      const detail::BufferEntry* v = wb.visible(it->second, st.seq);
      if (v == nullptr) continue;
      if (v->below == detail::Below::unknown)
        unknown.push_back(Unknown{std::string(it->first), !v->tombstone, v->seq});
      else
        total += (v->tombstone ? 0 : 1) - (v->below == detail::Below::present ? 1 : 0);
    }
  }
  auto noop = [](std::string_view, const std::filesystem::path*) {};
  const std::shared_ptr<const detail::Version> v = current_version();
  for (const auto& u : unknown) {
    assert(u.seq > 0);  // commits are numbered from 1
    const bool below = find_below(st.imm.get(), *v, u.key, detail::bloom_hash(u.key), noop, u.seq - 1);
    total += (u.put ? 1 : 0) - (below ? 1 : 0);
  }
  check_kept(st);
  st.size = static_cast<std::uint64_t>(std::max<std::int64_t>(total, 0));
  return static_cast<std::size_t>(*st.size);
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::stats() const -> Stats {
  Stats s;
  std::shared_ptr<const detail::Version> v;
  {
    std::shared_lock guard(lock_, std::defer_lock);
    s.records = exact_count(guard);
    v = version_;
    s.write_buffer_bytes = wb_.bytes() + (imm_ ? imm_->bytes() : 0);
    s.snapshot_versions = wb_.kept_versions() + (imm_ ? imm_->kept_versions() : 0);
    // What live snapshots keep beyond the store's own: buffers that are no
    // longer wb_ or imm_, and the older versions chunk files keep for them.
    std::vector<const detail::WriteBuffer*> buffers;
    for (const auto& w : snapshots_) {
      auto st = w.lock();
      if (!st) continue;
      ++s.snapshots;
      for (const detail::WriteBuffer* b : {st->active.get(), st->imm.get()}) {
        if (b == nullptr || b == imm_.get() || std::find(buffers.begin(), buffers.end(), b) != buffers.end()) continue;
        buffers.push_back(b);
        s.snapshot_pinned_bytes += b->bytes();
      }
    }
    if (s.snapshots > 0)
      for (const auto& f : v->refs()) {
        s.snapshot_versions += f.versions;
        s.snapshot_pinned_bytes += f.version_bytes;
      }
  }
  s.chunks = v->files();
  s.disk_bytes = v->bytes();
  const detail::LevelTargets t = targets(*v);
  s.levels.resize(detail::kLevels);
  for (const auto& r : v->l0) {
    s.levels[0].files += r.files.size();
    s.levels[0].bytes += r.bytes;
    s.levels[0].records += r.records;
    ++s.levels[0].runs;
  }
  for (std::uint32_t l = 1; l < detail::kLevels; ++l) {
    s.levels[l].files = v->levels[l].files.size();
    s.levels[l].bytes = v->levels[l].bytes;
    s.levels[l].records = v->levels[l].records;
    s.levels[l].runs = v->levels[l].empty() ? 0 : 1;
    s.levels[l].target_bytes = t.bytes[l];
  }
  s.pending_compaction_bytes = detail::pending_compaction_bytes(*v, t);
  auto c = cache_.stats();
  s.cache_bytes = c.bytes;
  s.cache_capacity = c.capacity;
  s.cache_hits = c.hits;
  s.cache_misses = c.misses;
  s.block_form = block_form();
  s.cache_evictions = c.evictions;
  s.metadata_bytes = c.high_bytes;
  auto f = files_.stats();
  s.open_files = f.open;
  s.file_opens = f.opens;
  {
    std::lock_guard w(write_mu_);
    s.last_sequence = last_seq_;
    s.wal_bytes = wal_closed_bytes_ + (wal_ ? wal_->size() : 0);
    std::lock_guard f(feed_mu_);
    s.change_feed_bytes = feed_bytes_;
    s.disk_bytes += wal_ ? wal_->allocated() - wal_->size() : 0;  // the current segment's preallocated zeros
  }
  s.disk_bytes += s.wal_bytes + s.change_feed_bytes + manifest_bytes_.load();
  s.checkpoints = checkpoints_.load();
  s.flushes = checkpoints_.load();
  s.compactions = compactions_.load();
  s.bytes_put = bytes_put_.load(std::memory_order_relaxed);
  s.chunk_bytes_written = chunk_bytes_written_.load(std::memory_order_relaxed);
  s.bytes_flushed = bytes_flushed_.load(std::memory_order_relaxed);
  s.bytes_compacted = bytes_compacted_.load(std::memory_order_relaxed);
  s.write_slowdowns = slowdowns_.load(std::memory_order_relaxed);
  s.write_slowed_micros = slowed_micros_.load(std::memory_order_relaxed);
  s.compaction_pauses = compaction_pauses_.load(std::memory_order_relaxed);
  s.compaction_paused_micros = paused_micros_.load(std::memory_order_relaxed);
  s.count_micros = count_micros_.load(std::memory_order_relaxed);
  s.uncounted_records = v->uncounted();
  s.write_amplification =
      s.bytes_put == 0 ? 0.0 : static_cast<double>(s.chunk_bytes_written) / static_cast<double>(s.bytes_put);
  {
    std::vector<std::pair<IndexStats, std::uint32_t>> indexes;
    {
      std::lock_guard inst(install_mu_);
      for (const auto& c : manifest_.collections) {
        if (!c.is_index()) continue;
        IndexStats is;
        const auto* parent = c.parent == 0 ? nullptr : manifest_.by_id(c.parent);
        is.collection = parent ? parent->name : std::string(detail::kDefaultKeyspace);
        is.name = c.name;
        is.unique = c.kind == detail::CollectionKind::unique_index;
        is.ready = c.ready;
        indexes.emplace_back(std::move(is), c.id);
      }
    }
    for (auto& [is, id] : indexes) {
      Cursor cursor(this, detail::collection_prefix(id), detail::collection_prefix(id + 1));
      for (; cursor.peek(); cursor.accept()) ++is.entries;
      s.indexes.push_back(std::move(is));
    }
  }
  return s;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::close() -> void {
  if (closed_.load()) return;
  FailureReport report{this};
  std::exception_ptr error;
  closing_ = true;
  // A running compaction stops at its next safe point (its files are
  // removed; the next open picks the work up again), so that the flush
  // below has a core to itself.
  stopping_ = true;
  {
    std::lock_guard g(bg_mu_);  // a waiting compaction thread sees stopping_
  }
  bg_cv_.notify_all();
  if (!opt_.read_only && !failed_.load()) {
    try {
      if (opt_.checkpoint_on_close) flush_buffer();
      flush();
    } catch (...) {
      error = std::current_exception();
    }
  }
  // Obsolete chunk files still queued, and WAL segments the last flush
  // released, stay on disk: the manifest names none of them, and the next
  // open removes them on its flush thread. Removing them here cost a close
  // 30 to 55 ms (about 20 files after a 1M-record random fill).
  stop_threads();
  {
    std::lock_guard inst(install_mu_);
    std::lock_guard s(sync_mu_);
    std::lock_guard w(write_mu_);
    std::unique_lock guard(lock_);
    closed_ = true;
    if (wal_ && !error && !failed_.load()) {
      try {
        seal_frozen_wal();
        wal_->seal();  // the segment ends at its last record, without preallocated zeros
        synced_seq_ = last_seq_;
      } catch (...) {
        error = std::current_exception();
        fail(error);
      }
    }
    if (spare_wal_) {
      const auto path = spare_wal_->path();
      spare_wal_.reset();
      try {
        fs_->remove(path);  // empty: an open would drop it, but a closed store holds only what it needs
      } catch (...) {
        if (!error) error = std::current_exception();  // reported; the store itself is whole
      }
    }
    wal_.reset();
    file_lock_.reset();
  }
  {
    std::lock_guard g(bg_mu_);  // waiters see closed_
  }
  done_cv_.notify_all();
  if (error) std::rethrow_exception(error);
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::run_group(Writer* const* group, std::size_t count) noexcept -> bool {
  try {
    std::lock_guard s(sync_mu_);
    std::lock_guard w(write_mu_);
    std::exception_ptr all;
    try {
      check_open();
      check_writable();
    } catch (...) {
      all = std::current_exception();  // refused: nothing was appended
    }
    if (!all) {
      try {
        bool appended = false;
        for (std::size_t i = 0; i < count; ++i) {
          Writer& g = *group[i];
          // A condition sees every earlier group applied, not the writers
          // before it in this one: one of them writing its key refuses it
          // (it reads again), and otherwise the buffer answers for the key.
          if (g.condition && (writes_key_before(group, i, g) || !g.condition())) {
            g.refused = true;
            continue;
          }
          g.first = last_seq_ + 1;
          detail::encode_fixed64(g.payload->data(), g.first);
          if (g.stamps) g.stamps->apply(*g.payload, g.first);
          wal_->append(*g.payload);
          last_seq_ += g.n;
          appended = true;
        }
        if (appended) {
          seal_frozen_wal();
          wal_->sync();
          synced_seq_ = last_seq_;
        }
      } catch (...) {
        all = std::current_exception();
        fail(all);
      }
    }
    if (all) {
      for (std::size_t i = 0; i < count; ++i) group[i]->error = all;
      return false;
    }
    for (std::size_t i = 0; i < count; ++i) {
      Writer& g = *group[i];
      if (g.refused) continue;
      try {
        g.before();
        apply_commit(g.ops, g.n, g.first, g.undo);
      } catch (...) {
        // Durable but not applied: the store fails, and so does every
        // later writer of the group (reopen replays all of them).
        g.error = std::current_exception();
        fail(g.error);
        for (std::size_t j = i + 1; j < count; ++j) group[j]->error = g.error;
        return false;
      }
    }
    return over_limits();
  } catch (...) {  // a mutex that failed to lock
    for (std::size_t i = 0; i < count; ++i)
      if (!group[i]->error) group[i]->error = std::current_exception();
    return false;
  }
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::commit_synced(std::string& payload, const Stamps* stamps, Op* ops,
                                                        std::size_t n, BeforeRef before, ConditionRef condition,
                                                        detail::WriteBuffer::Undo* undo, bool& refused) -> bool {
  Writer me;
  me.payload = &payload;
  me.stamps = stamps;
  me.ops = ops;
  me.n = n;
  me.before = before;
  me.condition = condition;
  me.undo = undo;
  std::unique_lock q(queue_mu_);
  writers_.push_back(&me);
  me.cv.wait(q, [&] { return me.done || writers_.front() == &me; });
  if (me.done) {
    if (me.error) std::rethrow_exception(me.error);
    refused = me.refused;
    return false;
  }
  Writer* group[kMaxGroup];
  std::size_t count = 0;
  for (auto it = writers_.begin(); it != writers_.end() && count < kMaxGroup; ++it) group[count++] = *it;
  q.unlock();
  const bool need_checkpoint = run_group(group, count);
  q.lock();
  for (std::size_t i = 0; i < count; ++i) {
    writers_.pop_front();
    group[i]->done = true;
    if (group[i] != &me) group[i]->cv.notify_one();
  }
  if (!writers_.empty()) writers_.front()->cv.notify_one();
  q.unlock();
  if (me.error) std::rethrow_exception(me.error);
  refused = me.refused;
  return need_checkpoint;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::sync_up_to(std::uint64_t seq) -> void {
  std::lock_guard s(sync_mu_);
  if (synced_seq_ >= seq || sealed_seq_.load() >= seq) return;
  check_writable_state();
  std::shared_ptr<detail::WalWriter> w;
  std::uint64_t target;
  {
    std::lock_guard g(write_mu_);
    w = wal_;
    target = last_seq_;
  }
  // close() syncs (seals) the WAL and advances synced_seq_ before it drops
  // it; a WAL dropped with records unsynced cannot be synced any more.
  if (!w)
    throw IoError("stowage: the store at " + dir_.string() +
                  " was closed before its last writes were synced; reopen it to recover them from the WAL");
  try {
    seal_frozen_wal();
    if (sealed_seq_.load() >= seq) return;  // the records were all in the frozen segment
    w->sync();
  } catch (...) {
    fail(std::current_exception());
    throw;
  }
  synced_seq_ = target;
}

template <class Compression, class Eviction, class Lock>
class Engine<Compression, Eviction, Lock>::Output {
 public:
  // Files of `level` (level 0: of run `run`), each cut once it holds
  // file_bytes of records.
  Output(Engine& e, std::uint32_t level, std::uint64_t run, std::uint64_t file_bytes)
      : e_(e), level_(level), run_(run), file_bytes_(file_bytes) {}
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;
  // Removes the files written, unless keep() was called or the store is
  // closing (a compaction close() stopped: its files are left for the next
  // open, which removes what no manifest names in the background).
  ~Output() {
    writer_.reset();
    if (kept_ || e_.closing_.load()) return;
    for (auto f : created_) {
      try {
        e_.fs_->remove(e_.chunk_path(f));
      } catch (...) {  // a leftover no manifest names: the next open removes it
      }
    }
  }
  void add(std::string_view key, std::uint64_t seq, std::string_view value, bool tombstone, bool uncounted) {
    if (writer_ && writer_->raw_bytes() >= file_bytes_) finish_file();
    if (!writer_) {
      created_.reserve(created_.size() + 1);
      file_ = e_.next_file_++;
      created_.push_back(file_);
      writer_.emplace(*e_.fs_, e_.chunk_path(file_), e_.opt_.block_bytes,
                      versions_ ? detail::chunk_format::kVersionsMajor : detail::chunk_format::kPlainMajor);
    }
    if (!key_prefix_.empty()) {
      key_buf_.assign(key_prefix_);
      key_buf_.append(key);
      key = key_buf_;
    }
    writer_->add(key, seq, value, tombstone, uncounted);
    ++records_;
  }
  // An older version of the key add() wrote last (in the same file and
  // block; format 5, see keep_versions()), counted; false, adding nothing,
  // when it does not fit the key's block.
  bool add_version(std::string_view key, std::uint64_t seq, std::string_view value, bool tombstone) {
    assert(versions_ && writer_ && key_prefix_.empty());
    if (!writer_->fits(value.size())) return false;
    writer_->add(key, seq, tombstone ? std::string_view() : value, tombstone, false);
    ++records_;
    return true;
  }
  // Files from now on are written in format 5, which may keep older
  // versions of a key for live snapshots (add_version()).
  void keep_versions() { versions_ = true; }
  // Every key added from now on is written with prefix in front (a
  // migration to the prefixed layout).
  void set_key_prefix(std::string prefix) { key_prefix_ = std::move(prefix); }
  // Finishes the last file; returns every file written.
  std::vector<detail::ChunkRef> finish() {
    finish_file();
    return std::move(refs_);
  }
  // The files are (or may be) named by a manifest: never remove them.
  void keep() { kept_ = true; }
  std::uint64_t bytes() const { return bytes_; }
  std::uint64_t records() const { return records_; }

 private:
  void finish_file() {
    if (!writer_) return;
    detail::ChunkInfo info = writer_->finish();
    writer_.reset();
    e_.chunk_bytes_written_.fetch_add(info.file_bytes, std::memory_order_relaxed);
    bytes_ += info.file_bytes;
    detail::ChunkRef ref;
    ref.file = file_;
    ref.records = info.records;
    ref.uncounted = info.uncounted;
    ref.versions = info.versions;
    ref.version_bytes = info.version_bytes;
    ref.min_seq = info.min_seq;
    ref.bytes = info.file_bytes;
    ref.max_seq = info.max_seq;
    ref.first_key = std::move(info.first_key);
    ref.last_key = std::move(info.last_key);
    ref.level = level_;
    ref.run = run_;
    refs_.push_back(std::move(ref));
  }
  Engine& e_;
  std::uint32_t level_;
  std::uint64_t run_, file_bytes_;
  std::optional<detail::ChunkWriter<Compression>> writer_;
  std::uint64_t file_ = 0, bytes_ = 0, records_ = 0;
  std::vector<std::uint64_t> created_;
  std::vector<detail::ChunkRef> refs_;
  std::string key_prefix_, key_buf_;
  bool kept_ = false;
  bool versions_ = false;
};

template <class Compression, class Eviction, class Lock>
template <class Below>
auto Engine<Compression, Eviction, Lock>::merge(std::vector<detail::Run>& inputs, const detail::WriteBuffer* buffer,
                                                Output& out, Below&& nothing_below, bool zero_seqs,
                                                const Convert* convert, bool abortable,
                                                const LiveSnapshots* snaps) -> std::int64_t {
  const bool versions = snaps != nullptr && !snaps->empty() && convert == nullptr;
  if (versions) zero_seqs = false;  // a snapshot tells records apart by them
  std::vector<RunReader> rs;
  rs.reserve(inputs.size());
  for (auto& r : inputs) {
    rs.emplace_back(this, &r, /*sequential=*/true, detail::kNoSeqBound, /*every=*/versions);
    rs.back().seek("", false);
  }
  detail::WriteBuffer::const_iterator bit, bend;
  if (buffer) bit = buffer->begin(), bend = buffer->end();
  // The runs' readers in a tournament (loser) tree ordered by (key, index),
  // exhausted readers last: a lower index is a newer run, so equal keys win
  // newest first. tree[0] is the winner, tree[p] (0 < p < k) the loser of
  // the match at node p, whose children are nodes 2p and 2p + 1; reader i is
  // leaf k + i. When the winner moves on, only the matches on its leaf's
  // path are replayed: log2(k) comparisons a record, where a heap's pop and
  // push take about twice as many (a level-0 merge may take 20 runs and
  // more). keys[i]: reader i's current key, read once each time it moves.
  const std::size_t k = rs.size();
  std::vector<std::string_view> keys(k);
  std::vector<char> live(k, 0);
  for (std::size_t i = 0; i < k; ++i)
    if (rs[i].valid()) {
      keys[i] = rs[i].key();
      live[i] = 1;
    }
  auto first = [&](std::size_t a, std::size_t b) {  // a wins over b
    if (!live[a] || !live[b]) return live[a] != 0 || (live[b] == 0 && a < b);
    const int c = keys[a].compare(keys[b]);
    return c < 0 || (c == 0 && a < b);
  };
  std::vector<std::size_t> tree(std::max<std::size_t>(k, 1), 0);
  if (k > 1) {
    std::vector<std::size_t> winner(2 * k);
    for (std::size_t i = 0; i < k; ++i) winner[k + i] = i;
    for (std::size_t p = k - 1; p >= 1; --p) {
      const std::size_t a = winner[2 * p], b = winner[2 * p + 1];
      const bool a_wins = first(a, b);
      winner[p] = a_wins ? a : b;
      tree[p] = a_wins ? b : a;
    }
    tree[0] = winner[1];
  }
  const auto replay = [&](std::size_t i) {  // reader i moved on
    std::size_t w = i;
    for (std::size_t p = (k + i) / 2; p >= 1; p /= 2)
      if (first(tree[p], w)) std::swap(tree[p], w);
    tree[0] = w;
  };
  // The newest record's key and value view blocks its reader moves past
  // while the older records of the key are counted: held here until the
  // record is written.
  Pins held;
  std::string converted;
  // The key's older records, newest first (with versions): their value
  // views blocks held pins.
  struct Older {
    std::uint64_t seq;
    bool tombstone;
    std::string_view value;
  };
  std::vector<Older> older;
  std::uint64_t n = 0;
  std::int64_t delta = 0;
  detail::HistoryPruner prune = history_pruner();  // history entries no longer kept become tombstones
  const detail::ExpiryPruner expire(&expiring_, now_micros());  // and so do expired records
  for (;;) {
    // The smallest key; the newest source holding it wins (the buffer, then
    // the runs in order).
    const bool buffered = buffer && bit != bend;
    const bool in_runs = k > 0 && live[tree[0]];
    if (!buffered && !in_runs) break;
    std::string_view best;
    if (!in_runs || (buffered && bit->first <= keys[tree[0]]))
      best = bit->first;
    else
      best = keys[tree[0]];
    const bool from_buffer = buffered && bit->first == best;
    if (abortable && (++n & 1023) == 0) {
      if (stopping_.load(std::memory_order_relaxed)) throw Aborted{};
      if (yield_compaction_ && flush_pending_.load(std::memory_order_relaxed)) yield_to_flush();
    }
    // The key's records, newest first: each counted one whose next older
    // record is merged away gives up its part of the count (its put, less
    // the older one's); the oldest decides whether the output is counted.
    // A put is 1, a tombstone 0; "hides" is the older record's put. After
    // the walk, last_* describe the oldest record met.
    std::int64_t given_up = 0;
    bool have = false, last_counted = false, last_put = false;
    auto meet = [&](bool put, bool counted) {
      if (have && last_counted) given_up += (last_put ? 1 : 0) - (put ? 1 : 0);
      have = true;
      last_counted = counted;
      last_put = put;
    };
    bool tombstone = false;
    std::string_view value;
    std::uint64_t seq = 0;
    if (from_buffer) {
      tombstone = bit->second.tombstone;
      value = bit->second.value;
      seq = bit->second.seq;
      meet(!tombstone, false);
    }
    // Every run holding the key, newest first, each moved past it (with
    // versions, past each record of it: a format-5 file's versions of the
    // key come from its run one after the other, and take no part in the
    // count).
    held.clear();
    older.clear();
    std::size_t last_run = k;
    for (bool newest = !from_buffer; k > 0 && live[tree[0]] && keys[tree[0]] == best; newest = false) {
      const std::size_t i = tree[0];
      RunReader& r = rs[i];
      const bool erased = r.tombstone();
      const bool version = i == last_run;
      last_run = i;
      if (newest) {
        tombstone = erased;
        value = r.value();
        seq = r.seq();
      } else if (versions) {
        older.push_back(Older{r.seq(), erased, r.value()});
      }
      if (!version) meet(!erased, !r.uncounted());
      r.next(&held);  // best and value may view the block it leaves
      live[i] = r.valid() ? 1 : 0;
      if (live[i]) keys[i] = r.key();
      replay(i);
    }
    if (!tombstone && !prune.empty()) {
      const auto fate = prune.fate(best, value);
      if (fate == detail::HistoryPruner::Fate::cut) value = detail::history_cut_value();
      if (fate == detail::HistoryPruner::Fate::drop) tombstone = true;
    }
    if (!tombstone && expire.expired(best, value)) tombstone = true;
    const int newest_put = tombstone ? 0 : 1;
    bool uncounted = false;
    int below = -1;  // nothing_below(best), once asked: 1 (nothing) or 0
    auto none_below = [&] {
      if (below < 0) below = nothing_below(best) ? 1 : 0;
      return below == 1;
    };
    if (last_counted) {
      // The output takes the oldest's place: its part was put - hidden, now newest - hidden.
      delta += newest_put - (last_put ? 1 : 0) - given_up;
    } else if (none_below()) {
      delta += newest_put - given_up;  // hides nothing: counted as it is
    } else {
      delta -= given_up;
      uncounted = true;
    }
    // The older records a live snapshot sees: the newest at or below its
    // sequence, of those strictly older than the record after them.
    std::size_t keep = 0;
    if (versions) {
      std::uint64_t newer = seq;
      for (const Older& o : older) {
        if (o.seq < newer) {
          const auto it = std::lower_bound(snaps->seqs.begin(), snaps->seqs.end(), o.seq);
          if (it != snaps->seqs.end() && *it < newer) older[keep++] = o;
          newer = o.seq;
        }
      }
    }
    // Sequence numbers stay while a reader could need them; with no live
    // snapshot the last level, which the oldest records reach, drops them
    // (a 1-byte 0 instead of 3 to 5 bytes).
    if (zero_seqs) seq = 0;
    bool wrote = true;
    if (tombstone) {
      if (!none_below() || keep > 0)
        out.add(best, seq, {}, true, uncounted);
      else
        wrote = false;
    } else if (convert) {
      if ((*convert)(best, value, converted)) out.add(best, seq, converted, false, uncounted);
    } else {
      out.add(best, seq, value, false, uncounted);
    }
    for (std::size_t j = 0; wrote && j < keep; ++j) {
      if (out.add_version(best, older[j].seq, older[j].value, older[j].tombstone)) continue;
      // Too large to keep beside the key's newer records in one block: the
      // snapshots that could see this key as it was are told (their reads
      // throw), not answered wrong.
      for (std::size_t s = 0; s < snaps->seqs.size() && snaps->seqs[s] < seq; ++s)
        if (auto st = snaps->states[s].lock()) st->lost.store(true, std::memory_order_release);
      break;
    }
    if (from_buffer) ++bit;  // best may view it: only now
  }
  return delta;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::install(detail::Manifest m, std::shared_ptr<const detail::Version> v,
                                                  std::int64_t live, bool flushed) -> void {
  m.next_file = next_file_.load();
  auto* ks = m.keyspace(detail::kDefaultKeyspace);
  ks->chunks = v->refs();
  ks->live = live;
  replace_manifest(std::move(m));
  const std::size_t runs = v->l0.size();
  {
    std::unique_lock guard(lock_);
    data_bytes_ = v->bytes();
    version_ = std::move(v);
    live_ = live;
    if (flushed) {
      imm_.reset();
      imm_delta_ = 0;
      imm_resolved_ = true;
    }
  }
  l0_runs_ = runs;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::throttle() -> bool {
  const std::size_t runs = l0_runs_.load(std::memory_order_relaxed);
  // Without background compaction nothing would ever lower the count: the
  // user compacts when they choose.
  if (runs < detail::kL0Slowdown || !opt_.auto_compaction) return false;
  const auto start = std::chrono::steady_clock::now();
  if (runs >= detail::kL0Stop) {
    std::unique_lock g(bg_mu_);
    done_cv_.wait(g, [&] { return l0_runs_.load() < detail::kL0Stop || failed_.load() || closed_.load() || stop_; });
  } else {
    // A duty cycle: after each slice asleep the writer works for a share of
    // a slice, the smaller the nearer the runs are to kL0Stop (a whole
    // slice at kL0Slowdown runs, 1/16 of one at kL0Stop - 1).
    const auto since = start.time_since_epoch().count() - throttle_resumed_.load(std::memory_order_relaxed);
    const auto slice = std::chrono::duration_cast<std::chrono::steady_clock::duration>(kL0SlowdownSlice).count();
    const auto left = static_cast<std::int64_t>(detail::kL0Stop - runs);
    if (since < slice * left / static_cast<std::int64_t>(detail::kL0Stop - detail::kL0Slowdown)) return false;
    std::unique_lock g(bg_mu_);  // woken early when a compaction brings the runs under kL0Slowdown
    done_cv_.wait_for(g, kL0SlowdownSlice, [&] {
      return l0_runs_.load() < detail::kL0Slowdown || failed_.load() || closed_.load() || stop_;
    });
  }
  throttle_resumed_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  count_slowdown(start);
  return true;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::freeze_locked() -> void {
  wal_segments_.reserve(wal_segments_.size() + 1);
  auto frozen = std::make_shared<detail::WriteBuffer>();
  // The segment is sealed by the flush thread (seal_frozen_wal), not
  // here: no fsync on the writer's path. Normally the last one is sealed
  // long since (the flush that sealed it has ended).
  seal_frozen_wal();
  std::shared_ptr<detail::WalWriter> writer = std::move(spare_wal_);
  if (!writer) writer = new_wal_segment(next_file_++);
  const std::uint64_t new_wal = writer->number();
  wal_sync_at_ = kWalBytesPerSync;
  wal_closed_bytes_ += wal_->size();
  frozen_wal_ = wal_->number();
  frozen_wal_bytes_ = wal_->size();
  {
    std::lock_guard g(seal_mu_);
    if (wal_->prepared()) {
      unsealed_wal_ = std::move(wal_);
      unsealed_seq_ = last_seq_;
    } else {
      // Records plainly appended (the segment open started, or a file
      // system that cannot write in place): a prefix a power cut leaves
      // could end exactly at a record and pass for sealed, so it is sealed
      // here, before the next segment takes a record.
      wal_->seal();
      sealed_seq_.store(last_seq_);
      wal_.reset();
    }
  }
  wal_ = std::move(writer);
  wal_segments_.push_back(new_wal);
  flush_wal_ = new_wal;
  flush_seq_ = last_seq_;
  {
    std::unique_lock guard(lock_);
    *frozen = std::move(wb_);
    // A snapshot that read wb_ reads the same buffer, frozen, from now on.
    prune_snapshots();
    for (const auto& w : snapshots_)
      if (auto st = w.lock(); st && !st->active) st->active = frozen;
    imm_ = std::move(frozen);
    imm_resolved_ = false;
    ++freezes_;
    ++wb_version_;
    ++chunk_version_;
    std::lock_guard g(bg_mu_);  // before lock_ is released
    // The compaction pauses from now (yield_to_flush), not from when the
    // flush thread runs: the sooner a core is free, the likelier the woken
    // flush thread takes it rather than the writer's.
    flush_pending_ = true;
  }
  bg_cv_.notify_all();
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::maybe_freeze(bool slowed) -> void {
  for (bool hard = false, take_sync = false;;) {
    {
      // Not sync_mu_: a background WAL sync holds it through an fsync.
      // Except to freeze with a segment that was not prepared: the writer
      // seals that one itself, and no other sync of it may run meanwhile.
      std::unique_lock<std::mutex> s(sync_mu_, std::defer_lock);
      if (take_sync) s.lock();
      std::lock_guard w(write_mu_);
      if (closed_.load() || failed_.load() || !over_limits()) return;
      bool busy;
      {
        std::lock_guard g(bg_mu_);
        busy = flush_pending_;
      }
      if (!busy && !s.owns_lock() && !wal_->prepared()) {
        take_sync = true;
        continue;
      }
      if (!busy) {
        try {
          freeze_locked();
        } catch (...) {
          fail(std::current_exception());
          throw;
        }
        return;
      }
      std::size_t frozen_bytes;
      {
        std::shared_lock guard(lock_);
        frozen_bytes = imm_ ? imm_->bytes() : 0;
      }
      if (wb_.bytes() + frozen_bytes < wb_limit_) return;  // room left: the flush will finish first
      // Past this the writer waits for the flush to end. Judged on the
      // active buffer alone: one that grew into the room a small frozen
      // buffer left is frozen large, and the buffer after it must not wait
      // for that whole flush as soon as it is half full.
      hard = wb_.bytes() >= wb_limit_ / 2 + wb_limit_ / 4;
      if (slowed && !hard) return;
    }
    // The budget is used: each commit now waits a slice for the flush, so
    // the writer slows to a trickle (the buffer overshoots by a few records
    // at most) instead of stopping for the whole flush; past an eighth over
    // the budget it waits for the flush to end.
    const auto start = std::chrono::steady_clock::now();
    {
      std::unique_lock g(bg_mu_);
      auto done = [&] { return !flush_pending_ || failed_.load() || closed_.load(); };
      if (hard)
        done_cv_.wait(g, done);
      else
        done_cv_.wait_for(g, kFlushWaitSlice, done);
    }
    count_slowdown(start);
    if (!hard) {
      std::lock_guard g(bg_mu_);
      if (flush_pending_) return;  // one slice per commit; else freeze now
    }
  }
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::flush_buffer() -> void {
  for (bool frozen = false; !frozen;) {
    wait_for_flush();
    check_writable_state();
    std::lock_guard s(sync_mu_);
    std::lock_guard w(write_mu_);
    check_open();
    check_writable();
    if (wb_.empty()) break;
    {
      std::lock_guard g(bg_mu_);
      if (flush_pending_) continue;  // a writer froze meanwhile: wait for that flush first
    }
    try {
      freeze_locked();
    } catch (...) {
      fail(std::current_exception());
      throw;
    }
    frozen = true;
  }
  wait_for_flush();
  if (failed_.load()) rethrow_failure();  // the flush this call waited for failed
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::flush_loop() noexcept -> void {
  detail::name_this_thread("stowage-flush");
  remove_leftovers();
  for (;;) {
    bool flush, wal_work;
    {
      std::unique_lock g(bg_mu_);
      bg_cv_.wait(g, [&] { return flush_pending_ || wal_sync_pending_ || stop_; });
      flush = flush_pending_;
      wal_work = std::exchange(wal_sync_pending_, false);
      if (!flush && !wal_work) return;  // stop_
    }
    if (wal_work) background_wal_work();
    if (!flush) continue;
    std::vector<std::uint64_t> drop;
    try {
      drop = run_flush();
    } catch (...) {
      fail(std::current_exception());
    }
    // The writer may freeze again from here (the next segment is made);
    // what is left is no business of its: the old WAL segments removed,
    // the WAL written back, obsolete chunk files deleted. Callers that wait
    // for the whole flush (wait_for_flush) wait for that too.
    {
      std::lock_guard g(bg_mu_);
      flush_pending_ = false;
      flush_tail_ = true;
      ++bg_epoch_;
    }
    bg_cv_.notify_all();
    done_cv_.notify_all();
    // A closing store leaves the segments to the next open, which removes
    // them after it returned (a close then waits for no removal); so does
    // a crash before the removal (they are older than the manifest's WAL).
    if (!closing_.load() && !drop.empty()) {
      try {
        for (auto seg : drop) release_wal_segment(seg);
        fs_->sync_dir(dir_);
        std::lock_guard w(write_mu_);
        std::erase_if(releasing_, [&](std::uint64_t n) { return std::find(drop.begin(), drop.end(), n) != drop.end(); });
      } catch (...) {
        fail(std::current_exception());
      }
    }
    background_wal_work();
    drop_obsolete_files();
    {
      std::lock_guard g(bg_mu_);
      flush_tail_ = false;
    }
    done_cv_.notify_all();
  }
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::background_wal_work() noexcept -> void {
  if (failed_.load() || closed_.load()) return;
  try {
    std::uint64_t seq, released = 0;
    std::shared_ptr<detail::WalWriter> mapped;
    {
      std::lock_guard w(write_mu_);
      seq = last_seq_;
      if (wal_ && wal_->mapping()) {
        mapped = wal_;
        released = wal_->released();
      }
    }
    // Durability::none: what a later seal or flush() must sync is only what
    // was written since (Durability::sync commits sync themselves). A
    // segment written through a map is not synced while the writer maps its
    // pages (see WalWriter::write_back): the records in the pages it gave
    // back are written to the device, and its seal, unmapped, syncs.
    if (opt_.durability != Durability::sync) {
      if (mapped)
        mapped->write_back(released);
      else
        sync_up_to(seq);
    }
    make_spare_wal();
  } catch (...) {
    // As any background I/O failure: the store fails (the next freeze
    // would need the segment anyway), and the next caller that waits on
    // the flush thread sees the error.
    fail(std::current_exception());
  }
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::changes_since(std::uint64_t since, std::string_view prefix,
                                                        const ChangeFn& fn) const -> std::uint64_t {
  check_open();
  std::vector<ListedSegment> listed;
  std::uint64_t last;
  {
    std::lock_guard w(write_mu_);
    check_open();
    last = last_seq_;
    if (since > last)
      throw ValidationError("stowage: changes_since(" + std::to_string(since) + "): the last commit of the store at " +
                            dir_.string() + " is " + std::to_string(last));
    if (since == last) return last;
    std::vector<std::uint64_t> numbers = wal_segments_;
    numbers.insert(numbers.end(), releasing_.begin(), releasing_.end());
    {
      std::lock_guard f(feed_mu_);
      for (const auto& [n, bytes] : feed_) numbers.push_back(n);
    }
    std::sort(numbers.begin(), numbers.end());
    numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());
    listed.reserve(numbers.size());
    for (auto n : numbers) listed.push_back(list_segment(n));
  }
  // Opened after write_mu_ is released: a flush may meanwhile rename a
  // segment (found under its feed name) or delete one (skipped: the gap is
  // found below); what was opened stays readable.
  std::vector<OpenSegment> segments;
  segments.reserve(listed.size());
  for (const auto& l : listed)
    if (auto f = detail::open_feed_segment(*fs_, dir_, l.number)) segments.push_back(open_segment(l, std::move(f)));
  detail::FeedPosition pos;
  pos.since = since;
  pos.next = since + 1;
  pos.last = last;
  for (const auto& seg : segments)
    detail::read_feed_segment(detail::FilePrefix(*seg.file, seg.bytes), seg.number, pos, prefix, dir_, fn);
  if (pos.next <= last) throw detail::feed_released(dir_, since, 0);
  return last;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::backup_to(const std::filesystem::path& target) -> BackupReport {
  FailureReport report{this};
  check_open();
  const auto started = std::chrono::steady_clock::now();
  detail::BackupStage stage(*fs_, dir_, target, /*share=*/true);
  std::vector<OpenSegment> segments;
  detail::Manifest m;
  std::shared_ptr<const detail::Version> pinned;  // keeps its chunk files while they are linked
  std::uint64_t seq;
  {
    // One moment: no install (a flush moves the WAL start and then removes
    // the segments before it, a compaction swaps files) and, for the
    // segments' list and lengths, no commit. install_mu_ is held until the
    // segments are open: no segment at or after the manifest's WAL start is
    // removed before the next install. write_mu_ only while listing them.
    std::lock_guard inst(install_mu_);
    check_open();
    m = manifest_;  // only installers change it
    {
      std::shared_lock guard(lock_);
      pinned = version_;
    }
    std::vector<ListedSegment> listed;
    {
      std::lock_guard w(write_mu_);
      check_open();
      seq = last_seq_;
      listed.reserve(wal_segments_.size());
      for (auto n : wal_segments_)
        if (n >= m.wal_start) listed.push_back(list_segment(n));  // else released by a flush removing it
    }
    for (const auto& l : listed)
      segments.push_back(open_segment(l, fs_->open_read(dir_ / detail::wal_file_name(l.number))));
  }
  for (const auto& ks : m.keyspaces)
    for (const auto& c : ks.chunks) stage.add_immutable(chunk_path(c.file), detail::chunk_file_name(c.file), c.bytes);
  for (const auto& seg : segments) stage.add_copy(*seg.file, detail::wal_file_name(seg.number), seg.bytes);
  segments.clear();
  pinned.reset();
  const detail::BackupDescriptor d{"online", detail::store_identity(dir_).string(), seq, detail::utc_stamp()};
  BackupReport r = stage.finish(&m, {}, &d);
  r.sequence = seq;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  log(LogLevel::info, "backup of " + dir_.string() + " at sequence " + std::to_string(seq) + " written to " +
                          r.path.string() + ": " + std::to_string(r.files) + " files, " + std::to_string(r.files_linked) +
                          " linked, " + std::to_string(r.bytes_written) + " bytes written in " +
                          std::to_string(r.seconds) + " s");
  return r;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::run_flush() -> std::vector<std::uint64_t> {
  // The segment the freeze left: until it is sealed no later segment may
  // be synced (a sync waits for it). A thread of its own seals it while
  // this one writes the files (a seal is mostly fsyncs, the files mostly
  // compression), then makes the segment the next freeze takes (also
  // mostly fsyncs); the manifest names the files only after both. Writing
  // chunk files syncs no WAL segment. Done one after the other, the two
  // took 5 to 20 ms of each 35 to 75 ms flush of a 4M-record fill, time the
  // writer spent waiting for the flush.
  using Clock = std::chrono::steady_clock;
  const auto began = Clock::now();
  std::thread sealer;
  std::exception_ptr seal_error;
  Clock::duration seal_time{};
  const auto seal = [&] {
    try {
      seal_frozen_wal();
      seal_time = Clock::now() - began;
      make_spare_wal();
    } catch (...) {
      seal_error = std::current_exception();
    }
  };
  struct JoinSealer {
    std::thread& t;
    ~JoinSealer() {
      if (t.joinable()) t.join();
    }
  } join_sealer{sealer};
  try {
    sealer = std::thread([&seal] {
      detail::name_this_thread("stowage-seal");  // else it bears the flush thread's name
      seal();
    });
  } catch (...) {  // no thread to be had (system_error, bad_alloc): seal first
    seal();
  }
  if (!sealer.joinable() && seal_error) std::rethrow_exception(seal_error);
  std::shared_ptr<detail::WriteBuffer> frozen;
  std::shared_ptr<const detail::Version> base;
  {
    std::shared_lock guard(lock_);
    frozen = imm_;
    base = version_;
  }
  const std::uint64_t new_wal = flush_wal_, seq = flush_seq_;
  const auto started = Clock::now();
  // No lookup below the buffer: an entry whose presence below is known adds
  // its part to the live count now (delta()); the others are written
  // uncounted, and resolved later (when size() asks, or when a compaction
  // meets an older record of the key or takes it to where nothing lies
  // below: see merge()).
  const std::int64_t delta = frozen->delta();
  // One level-0 run; its run number is a file number no file takes. The
  // flush a close waits for (compaction has stopped, so the cores are free)
  // cuts a large buffer into a file of the run per core, up to
  // kMaxFlushParts; the parts after the first are written, and their files
  // finished, by helper threads.
  const std::uint64_t run = next_file_++;
  const std::size_t n = closing_.load() && frozen->bytes() >= kParallelFlushBytes
                            ? std::clamp<std::size_t>(std::thread::hardware_concurrency(), 2, kMaxFlushParts)
                            : 1;
  const auto at = frozen->split(n);
  std::vector<std::unique_ptr<Output>> outs;  // one a part, in key order
  outs.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    outs.push_back(std::make_unique<Output>(*this, 0, run, std::numeric_limits<std::uint64_t>::max()));
  std::vector<std::vector<detail::ChunkRef>> part_refs(n);
  std::vector<std::exception_ptr> errors(n);
  const auto write_part = [&](std::size_t i) {
    try {
      for (auto it = at[i]; it != at[i + 1]; ++it) {
        const detail::BufferEntry& e = it->second;
        if (e.tombstone && e.below == detail::Below::absent) continue;  // nothing below for it to hide
        outs[i]->add(it->first, e.seq, e.tombstone ? std::string_view() : e.value, e.tombstone,
                     e.below == detail::Below::unknown);
      }
      if (i > 0) part_refs[i] = outs[i]->finish();
    } catch (...) {
      errors[i] = std::current_exception();
    }
  };
  std::vector<std::thread> helpers;
  helpers.reserve(n - 1);
  for (std::size_t i = 1; i < n; ++i) {
    try {
      helpers.emplace_back(write_part, i);
    } catch (...) {  // no thread to be had (system_error, bad_alloc): this one writes the part
      write_part(i);
    }
  }
  write_part(0);
  for (auto& h : helpers) h.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  const auto written = Clock::now();
  auto refs = outs[0]->finish();
  for (auto& part : part_refs)
    for (auto& ref : part) refs.push_back(std::move(ref));
  fs_->sync_dir(dir_);
  if (sealer.joinable()) {
    sealer.join();
    if (seal_error) std::rethrow_exception(seal_error);
  }
  const auto synced = Clock::now();
  std::uint64_t out_bytes = 0;
  for (const auto& o : outs) out_bytes += o->bytes();
  bytes_flushed_.fetch_add(out_bytes, std::memory_order_relaxed);
  {
    const std::uint64_t before = flush_bytes_.load(std::memory_order_relaxed);
    flush_bytes_.store(before == 0 ? out_bytes : (before * 3 + out_bytes) / 4, std::memory_order_relaxed);
  }
  {
    std::lock_guard inst(install_mu_);
    auto next = std::make_shared<detail::Version>(*version_);  // only installers change version_
    if (!refs.empty()) {
      detail::Run run;
      for (auto& ref : refs) run.add(std::make_shared<const detail::LiveFile>(std::move(ref), bin_));
      next->l0.insert(next->l0.begin(), std::move(run));
    }
    detail::Manifest m = manifest_;
    m.last_seq = seq;
    m.wal_start = new_wal;
    for (auto& o : outs) o->keep();  // from here the manifest may name the files
    install(std::move(m), std::move(next), live_ + delta, /*flushed=*/true);
  }
  ++checkpoints_;
  const auto installed = Clock::now();
  // The manifest no longer needs the WAL segments before new_wal.
  std::vector<std::uint64_t> drop;
  {
    std::lock_guard w(write_mu_);
    std::vector<std::uint64_t> keep;
    for (auto seg : wal_segments_) (seg < new_wal ? drop : keep).push_back(seg);
    wal_segments_ = std::move(keep);
    releasing_.insert(releasing_.end(), drop.begin(), drop.end());
    wal_closed_bytes_ = 0;
  }
  const auto done = Clock::now();
  const auto ms = [](auto a, auto b) {
    return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(b - a).count() / 1000.0).substr(0, 5);
  };
  log(LogLevel::info, "flush: " + std::to_string(frozen->entries()) + " buffered records (" +
                          std::to_string(frozen->bytes()) + " bytes) into a level-0 file of " +
                          std::to_string(out_bytes) + " bytes" +
                          (n == 1 ? std::string() : " (" + std::to_string(n) + " files written in parallel)") +
                          " in " + ms(began, done) + " ms (WAL seal " +
                          ms(began, began + seal_time) + ", write " + ms(started, written) + ", file sync " +
                          ms(written, synced) + ", manifest " + ms(synced, installed) + ")");
  return drop;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::compact_loop() noexcept -> void {
  detail::name_this_thread("stowage-compact");
  for (;;) {
    std::uint64_t epoch;
    {
      std::unique_lock g(bg_mu_);
      bg_cv_.wait(g, [&] { return stop_ || stopping_.load() || manual_ == 0; });
      if (stop_ || stopping_.load()) return;  // stopping_: close() began
      epoch = bg_epoch_;
      // From here until it is cleared this thread may hold a Version (its
      // job's): compact() waits for that, so that the files its own merges
      // make obsolete are released, and deleted, before it returns.
      compacting_ = true;
    }
    std::optional<Job> job;
    if (!failed_.load()) {
      try {
        job = next_job(current_version(), false);
      } catch (...) {
        fail(std::current_exception());
      }
    }
    const bool ran = job.has_value();
    if (job) {
      try {
        run_job(*job, /*abortable=*/true);
      } catch (const Aborted&) {
      } catch (...) {
        fail(std::current_exception());
      }
      job.reset();
    }
    {
      std::lock_guard g(bg_mu_);
      compacting_ = false;
    }
    done_cv_.notify_all();
    bg_cv_.notify_all();
    if (!ran) {
      std::unique_lock g(bg_mu_);
      bg_cv_.wait(g, [&] { return stop_ || stopping_.load() || bg_epoch_ != epoch; });
      continue;
    }
    drop_obsolete_files();
  }
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::next_job(const std::shared_ptr<const detail::Version>& v, bool everything)
    -> std::optional<Job> {
  Job job;
  job.v = v;
  if (everything) {
    job.level = 0;
    job.output = detail::kLastLevel;
    v->for_each_run([&](const detail::Run& r, std::uint32_t level) {
      job.inputs.push_back(r);
      for (const auto& f : r.files) (level == detail::kLastLevel ? job.lower : job.upper).push_back(f);
    });
    if (job.upper.empty()) return std::nullopt;
    return job;
  }
  std::array<std::string, detail::kLevels> after;
  {
    std::lock_guard inst(install_mu_);
    after = compact_after_;
  }
  const auto pick = detail::pick_compaction(*v, targets(*v), after);
  if (!pick) return std::nullopt;
  job.level = pick->level;
  job.output = pick->output;
  std::string_view lo, hi;
  if (pick->level == 0) {
    for (const auto& r : v->l0) {
      job.inputs.push_back(r);
      for (const auto& f : r.files) job.upper.push_back(f);
    }
    std::tie(lo, hi) = detail::key_range(v->l0);
  } else {
    const detail::FilePtr& f = v->levels[pick->level].files[pick->file];
    detail::Run r;
    r.add(f);
    job.inputs.push_back(std::move(r));
    job.upper.push_back(f);
    lo = f->ref().first_key;
    hi = f->ref().last_key;
  }
  const detail::Run& below = v->levels[job.output];
  const auto [first, last] = below.overlapping(lo, hi);
  if (first < last) {
    detail::Run r;
    for (std::size_t i = first; i < last; ++i) {
      r.add(below.files[i]);
      job.lower.push_back(below.files[i]);
    }
    job.inputs.push_back(std::move(r));
  }
  job.move = job.lower.empty() && (pick->level > 0 || v->l0.size() == 1);
  job.last_key.assign(hi);
  return job;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::prune_job(const std::shared_ptr<const detail::Version>& v)
    -> std::optional<Job> {
  std::vector<std::uint32_t> ids;
  {
    std::lock_guard inst(install_mu_);
    for (const auto& c : manifest_.collections) {
      if (c.is_expiry()) ids.push_back(c.parent);
      if (c.is_history()) ids.push_back(c.id);
    }
  }
  const detail::Run& last = v->levels[detail::kLastLevel];
  std::size_t first = last.files.size(), end = 0;
  // Files keeping older versions for snapshots: rewritten with what the
  // live ones still see (nothing once none is live).
  for (std::size_t i = 0; i < last.files.size(); ++i)
    if (last.files[i]->ref().versions > 0 || table(last.files[i]->ref(), false)->versions() > 0) {
      first = std::min(first, i);
      end = std::max(end, i + 1);
    }
  for (auto id : ids) {
    const std::string lo = detail::collection_prefix(id);
    const auto hi = prefix_end(lo);  // a collection prefix always has an end
    const auto [a, b] = last.overlapping(lo, hi ? *hi : lo);
    if (a < b) {
      first = std::min(first, a);
      end = std::max(end, b);
    }
  }
  if (first >= end) return std::nullopt;
  Job job;
  job.v = v;
  job.output = detail::kLastLevel;
  detail::Run r;
  for (std::size_t i = first; i < end; ++i) {
    r.add(last.files[i]);
    job.lower.push_back(last.files[i]);
  }
  job.inputs.push_back(std::move(r));
  return job;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::run_job(Job& job, bool abortable) -> void {
  std::vector<detail::ChunkRef> refs;
  std::optional<Output> out;
  std::int64_t live_delta = 0;
  std::uint64_t in_bytes = 0;
  for (const auto& f : job.upper) in_bytes += f->ref().bytes;
  for (const auto& f : job.lower) in_bytes += f->ref().bytes;
  if (job.move) {
    for (const auto& f : job.upper) {
      detail::ChunkRef r = f->ref();
      r.level = job.output;
      r.run = 0;
      refs.push_back(std::move(r));
    }
  } else {
    out.emplace(*this, job.output, 0, opt_.chunk_bytes);
    const detail::Version& v = *job.v;
    const std::uint32_t output = job.output;
    auto nothing_below = [&v, output](std::string_view key) {
      for (std::uint32_t l = output + 1; l < detail::kLevels; ++l)
        if (v.levels[l].find(key) != nullptr) return false;
      return true;
    };
    // Taken after the inputs were chosen: a snapshot taken later sees the
    // newest record of each of their keys, which the merge keeps anyway.
    const LiveSnapshots snaps = live_snapshots();
    if (!snaps.empty()) out->keep_versions();
    live_delta = merge(job.inputs, nullptr, *out, nothing_below, output == detail::kLastLevel, nullptr, abortable,
                       &snaps);
    refs = out->finish();
    fs_->sync_dir(dir_);
    bytes_compacted_.fetch_add(out->bytes(), std::memory_order_relaxed);
  }
  std::vector<std::uint64_t> gone;
  for (const auto& f : job.upper) gone.push_back(f->ref().file);
  for (const auto& f : job.lower) gone.push_back(f->ref().file);
  std::sort(gone.begin(), gone.end());
  {
    std::lock_guard inst(install_mu_);
    const detail::Version& cur = *version_;  // only installers change version_
    auto next = std::make_shared<detail::Version>();
    auto kept = [&](const detail::FilePtr& f) { return !std::binary_search(gone.begin(), gone.end(), f->ref().file); };
    for (const auto& r : cur.l0) {
      detail::Run nr;
      for (const auto& f : r.files)
        if (kept(f)) nr.add(f);
      if (!nr.empty()) next->l0.push_back(std::move(nr));
    }
    for (std::uint32_t l = 1; l < detail::kLevels; ++l) {
      std::vector<detail::FilePtr> files;
      for (const auto& f : cur.levels[l].files)
        if (kept(f)) files.push_back(f);
      if (l == job.output) {
        for (auto& ref : refs) files.push_back(std::make_shared<const detail::LiveFile>(std::move(ref), bin_));
        std::sort(files.begin(), files.end(),
                  [](const detail::FilePtr& a, const detail::FilePtr& b) { return a->ref().first_key < b->ref().first_key; });
      }
      for (auto& f : files) next->levels[l].add(std::move(f));
    }
    if (job.level > 0) compact_after_[job.level] = job.last_key;
    if (out) out->keep();  // from here the manifest may name the files
    install(manifest_, std::move(next), live_ + live_delta);
    if (!job.move) {
      for (const auto& f : job.upper) f->mark_obsolete();
      for (const auto& f : job.lower) f->mark_obsolete();
    }
  }
  {
    std::lock_guard g(bg_mu_);
    ++bg_epoch_;
  }
  done_cv_.notify_all();  // writers held back by level-0 runs
  ++compactions_;
  log(LogLevel::debug, std::string(job.move ? "compaction: moved " : "compaction: merged ") +
                           std::to_string(job.upper.size() + job.lower.size()) + " file(s) (" +
                           std::to_string(in_bytes) + " bytes) from level " + std::to_string(job.level) +
                           " into level " + std::to_string(job.output) +
                           (out ? " as " + std::to_string(out->bytes()) + " bytes" : std::string()));
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::compact() -> void {
  FailureReport report{this};
  check_open();
  check_writable();
  flush_buffer();
  {
    std::unique_lock g(bg_mu_);
    ++manual_;
    done_cv_.wait(g, [&] { return !compacting_; });
  }
  auto resume = [&] {
    {
      std::lock_guard g(bg_mu_);
      --manual_;
    }
    bg_cv_.notify_all();
  };
  try {
    for (;;) {
      check_open();
      auto job = next_job(current_version(), /*everything=*/true);
      if (!job) break;
      run_job(*job, /*abortable=*/false);
    }
    if (auto job = prune_job(current_version())) run_job(*job, /*abortable=*/false);
  } catch (...) {
    // As a background compaction would: the store fails (its files stay
    // consistent; a reopen recovers).
    fail(std::current_exception());
    resume();
    throw;
  }
  resume();
  // The merge is installed; a file that could not be deleted is reported.
  // What an earlier session left goes too.
  remove_leftovers();
  if (auto error = drop_obsolete_files()) std::rethrow_exception(error);
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::remove_leftovers() noexcept -> void {
  // A close waits for this pass (it joins the thread): what one session
  // leaves, the next removes, whatever the timing.
  std::lock_guard g(leftovers_mu_);  // compact() waits for the flush thread's pass
  if (leftovers_.empty()) return;
  for (const auto& path : leftovers_) {
    try {
      fs_->remove(path);
    } catch (...) {  // still unneeded: the next open tries again
    }
  }
  leftovers_.clear();
  try {
    fs_->sync_dir(dir_);
  } catch (...) {
  }
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::drop_obsolete_files() noexcept -> std::exception_ptr {
  if (closing_.load()) return nullptr;  // the queued files stay for the next open (see close())
  std::vector<std::uint64_t> files;
  try {
    files = bin_->take();
  } catch (...) {
    return std::current_exception();
  }
  if (files.empty()) return nullptr;
  std::exception_ptr first;
  for (auto f : files) {
    if (closing_.load()) return first;  // the rest stays for the next open (see close())
    try {
      cache_.erase_file(f);
      files_.erase(f);
      fs_->remove(chunk_path(f));
    } catch (...) {  // left on disk: the next open removes what no manifest names
      if (!first) first = std::current_exception();
    }
  }
  try {
    fs_->sync_dir(dir_);
  } catch (...) {
    if (!first) first = std::current_exception();
  }
  return first;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::stop_threads() noexcept -> void {
  {
    std::lock_guard g(bg_mu_);
    stop_ = true;
  }
  stopping_ = true;
  bg_cv_.notify_all();
  done_cv_.notify_all();
  if (flush_thread_.joinable()) flush_thread_.join();
  if (compact_thread_.joinable()) compact_thread_.join();
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::open(const Migrator* migrations, unsigned target,
                                               bool migrate_only) -> void {
  if (fs_->exists(dir_) && !fs_->is_directory(dir_))
    throw ValidationError("stowage: " + dir_.string() + " exists and is not a directory; give a directory path");
  if (!fs_->exists(dir_)) {
    if (!opt_.create_if_missing || opt_.read_only)
      throw ValidationError("stowage: no store at " + dir_.string() +
                            " (it does not exist and create_if_missing is off or read_only is on)");
    fs_->create_dirs(dir_);
    if (dir_.has_parent_path()) {
      try {
        fs_->sync_dir(dir_.parent_path());
      } catch (const IoError&) {
      }
    }
  }
  file_lock_ = std::make_unique<detail::FileLock>(
      dir_, opt_.read_only ? detail::FileLock::Mode::shared : detail::FileLock::Mode::exclusive, opt_.lock_timeout);

  auto names = fs_->list(dir_);
  std::vector<std::uint64_t> wal_files;
  std::vector<std::uint64_t> chunk_files;
  std::vector<std::uint64_t> feed_files;  // released segments kept for changes_since()
  std::uint64_t max_file = 0;
  for (const auto& n : names) {
    if (auto w = detail::parse_wal_file_name(n)) {
      wal_files.push_back(*w);
      max_file = std::max(max_file, *w);
    } else if (auto c = detail::parse_chunk_file_name(n)) {
      chunk_files.push_back(*c);
      max_file = std::max(max_file, *c);  // a leftover of a crash is never reused while it exists
    } else if (auto f = detail::parse_feed_file_name(n)) {
      feed_files.push_back(*f);
    }
  }
  std::sort(wal_files.begin(), wal_files.end());
  std::sort(feed_files.begin(), feed_files.end());

  MigrationPlan plan;
  if (detail::manifest_exists(*fs_, dir_)) {
    manifest_ = detail::read_manifest(*fs_, dir_);
    note_rules();
    check_manifest(migrations);
    plan = plan_migration(migrations, target);
  } else {
    if (!wal_files.empty() || !chunk_files.empty())
      throw CorruptionError(dir_ / "MANIFEST", 0,
                            "MANIFEST is missing but the directory holds WAL or chunk files");
    if (opt_.read_only || !opt_.create_if_missing)
      throw ValidationError("stowage: " + dir_.string() + " holds no store (no MANIFEST)");
    manifest_ = fresh_manifest();
    detail::write_manifest(*fs_, dir_, manifest_);
    log(LogLevel::info, "created a new store at " + dir_.string());
  }
  std::sort(chunk_files.begin(), chunk_files.end());
  for (const auto& ks : manifest_.keyspaces)
    for (const auto& c : ks.chunks)
      if (!std::binary_search(chunk_files.begin(), chunk_files.end(), c.file))
        throw CorruptionError(chunk_path(c.file), 0, "chunk file named by the MANIFEST is missing");
  std::vector<std::uint64_t> live;  // the WAL segments the manifest still needs
  for (auto n : wal_files)
    if (n >= manifest_.wal_start) live.push_back(n);
  if (plan.needed()) {
    if (opt_.read_only) {
      if (plan.reserialize || plan.recompress)
        throw MigrationError("stowage: the store at " + dir_.string() + " needs migrating (" + describe_plan(plan) +
                             "), which a read_only open cannot do; open it writable once");
      if (!plan.steps.empty())
        throw MigrationError("stowage: the store at " + dir_.string() + " holds values at schema version " +
                             std::to_string(plan.from_version) + " and needs migrating to " +
                             std::to_string(plan.to_version) + ", which a read_only open cannot do; open it "
                             "writable once (or use Storage::migrate_to)");
      // An older format is read as it is, upgraded in memory only.
      for (const auto* f : plan.format) f->apply(manifest_);
    } else {
      begin_migration(plan, migrations, live);
    }
  }
  manifest_bytes_ = file_size(dir_ / "MANIFEST");  // what it takes on disk, without encoding it again
  adopt_manifest_files();
  next_file_ = std::max(manifest_.next_file, max_file + 1);
  last_seq_ = manifest_.last_seq;

  // Replay the WAL segments the manifest still needs.
  // Empty segments at the end (the next segment, made ahead of a freeze
  // that a crash prevented) hold nothing: the one before them is the last.
  while (!live.empty() && file_size(dir_ / detail::wal_file_name(live.back())) == 0) {
    if (!opt_.read_only) fs_->remove(dir_ / detail::wal_file_name(live.back()));
    live.pop_back();
  }
  replay_log(live);
  synced_seq_ = last_seq_;
  if (plan.needed() && !opt_.read_only) run_migration(plan, live);
  default_slot_.name = std::string(detail::kDefaultKeyspace);
  if (manifest_.layout == detail::Layout::prefixed) default_slot_.prefix = detail::collection_prefix(0);
  default_slot_.undeclared = recorded_indexes(0);
  default_slot_.history = history_hook(0);
  default_slot_.expiry = expiry_rule(0);
  default_slot_.indexed = !default_slot_.undeclared.empty() || default_slot_.history || default_slot_.expiry;
  if (!types_.database && !opt_.read_only && manifest_.keyspace(detail::kDefaultKeyspace)->key_order.empty()) {
    std::lock_guard inst(install_mu_);
    adopt_default_types(types_);
  }

  if (opt_.read_only) {
    wal_segments_ = live;  // what backup_to() and changes_since() read
    adopt_feed(feed_files);
    // Segments released but not yet deleted or kept (the last flushes of a
    // close): the feed's newest part.
    for (auto n : wal_files)
      if (n < manifest_.wal_start) releasing_.push_back(n);
    return;
  }
  // Leftovers of an interrupted checkpoint: files no keyspace of the
  // manifest names (every keyspace's, not only the one this Storage reads).
  std::vector<std::uint64_t> named;
  for (const auto& ks : manifest_.keyspaces)
    for (const auto& c : ks.chunks) named.push_back(c.file);
  std::sort(named.begin(), named.end());
  // They are removed on the flush thread once open returned: about 2 ms a
  // file on ext4, and a close leaves the files its last compactions made
  // obsolete. No new file takes their numbers meanwhile (next_file_ is past
  // them). An open that migrated removes them here, as the migration's last
  // step (they are the whole store it replaced).
  bool removed = false;
  for (auto c : chunk_files)
    if (!std::binary_search(named.begin(), named.end(), c)) leftovers_.push_back(chunk_path(c));
  // The feed kept by earlier sessions: deleted when it is off or a
  // migration rewrote the records. Segments a flush released that a crash
  // or a close left join it like any released segment.
  if (plan.rewrites() || opt_.change_feed_bytes == 0) {
    for (auto n : feed_files) fs_->remove(dir_ / detail::feed_file_name(n));
    removed = removed || !feed_files.empty();
  } else {
    adopt_feed(feed_files);
    prune_feed();
  }
  for (auto n : wal_files)
    if (n < manifest_.wal_start) {
      if (opt_.change_feed_bytes > 0 && !plan.rewrites() && !migrate_only) {
        release_wal_segment(n);
        removed = true;
      } else {
        leftovers_.push_back(dir_ / detail::wal_file_name(n));
      }
    }
  if (migrate_only || plan.needed()) {
    for (const auto& path : leftovers_) fs_->remove(path);
    removed = removed || !leftovers_.empty();  // the feed's renames and removals above count too
    leftovers_.clear();
  }
  // Live segments that replayed nothing (a session that wrote nothing, or
  // whose writes a checkpoint already holds) are not needed: the buffer is
  // empty, so every record up to last_seq is in the chunks. Without this
  // every open would leave one more segment behind.
  if (wb_.empty() && !migrate_only) {
    for (auto n : live) {
      release_wal_segment(n);
      removed = true;
    }
    live.clear();
  }
  if (fs_->exists(dir_ / "MANIFEST.tmp")) {
    fs_->remove(dir_ / "MANIFEST.tmp");
    removed = true;
  }
  if (removed) fs_->sync_dir(dir_);
  if (migrate_only) {
    closed_ = true;  // migrated (or nothing to do): release the store without serving it
    file_lock_.reset();
    return;
  }
  wal_segments_ = live;
  for (auto n : live) wal_closed_bytes_ += file_size(dir_ / detail::wal_file_name(n));
  std::uint64_t seg = next_file_++;
  wal_ = new_wal_segment(seg);
  wal_segments_.push_back(seg);
  // The background threads start last: an open that throws after them
  // would leave them running.
  try {
    flush_thread_ = std::thread([this] { flush_loop(); });
    if (opt_.auto_compaction) compact_thread_ = std::thread([this] { compact_loop(); });
    // The replayed WAL is flushed before open returns when it is over a
    // limit, or spread over many segments (sessions that each wrote a
    // little and closed without a checkpoint), so segments do not pile up.
    if (!wb_.empty() && (wb_.bytes() > wb_limit_ / 2 || wal_closed_bytes_ > opt_.wal_bytes ||
                         wal_segments_.size() > kMaxWalSegments)) {
      {
        std::lock_guard s(sync_mu_);
        std::lock_guard w(write_mu_);
        freeze_locked();
      }
      wait_for_flush();
      if (failed_.load()) rethrow_failure();
    }
    // A drop a crash interrupted: its records are erased now. (manifest_
    // under install_mu_: the compaction thread may be installing.)
    bool purge;
    {
      std::lock_guard inst(install_mu_);
      purge = !manifest_.dropped.empty();
    }
    if (purge) purge_dropped();
  } catch (...) {
    stop_threads();
    throw;
  }
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::replay_log(std::vector<std::uint64_t>& live) -> void {
  for (std::size_t i = 0; i < live.size(); ++i) {
    const auto path = dir_ / detail::wal_file_name(live[i]);
    const detail::WalReplay result = replay_segment(live[i]);
    bool last = i + 1 == live.size();
    if (!last && !result.sealed()) {
      // Frozen, then a crash before its seal: whole, or the log ends here.
      std::vector<detail::WalReplay> later;
      for (std::size_t j = i + 1; j < live.size(); ++j)
        later.push_back(detail::replay_wal(*fs_, dir_ / detail::wal_file_name(live[j]), live[j],
                                           [](std::string_view, std::uint64_t) {}));
      if (detail::judge_wal_end(path, result, last_seq_ + 1, later) == detail::WalEnd::cut) {
        std::uint64_t dropped = 0;
        for (const auto& l : later) dropped += l.records;
        log(LogLevel::warning, "the WAL ends early in " + path.string() + " (a power cut before it was sealed): " +
                                   std::to_string(later.size()) + " later segments with " + std::to_string(dropped) +
                                   " records, none of them synced, are dropped");
        if (!opt_.read_only)
          for (std::size_t j = i + 1; j < live.size(); ++j) fs_->remove(dir_ / detail::wal_file_name(live[j]));
        live.resize(i + 1);
        last = true;
      }
    }
    if (result.cut_bytes > 0) {
      log(LogLevel::warning, "cut a torn WAL tail of " + std::to_string(result.cut_bytes) + " bytes from " +
                                 path.string() + " at offset " + std::to_string(result.valid_bytes) + " (" +
                                 std::to_string(result.records) + " records recovered)");
    }
    // The torn tail or the preallocated zeros go: a later segment follows now.
    const bool trim = !opt_.read_only && !result.sealed();
    if (trim) fs_->truncate(path, result.valid_bytes);
    // What was replayed is visible now, so it must be durable before a later
    // flush() can promise anything about it.
    if (!opt_.read_only && (result.records > 0 || trim)) fs_->open_append(path)->sync();
    if (last) break;
  }
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::replay_segment(std::uint64_t number) -> detail::WalReplay {
  auto path = dir_ / detail::wal_file_name(number);
  return detail::replay_wal(*fs_, path, number, [&](std::string_view payload, std::uint64_t offset) {
    detail::decode_wal_batch(payload, path, offset, [&](const detail::WalOp& op) {
      if (op.seq != last_seq_ + 1)
        throw CorruptionError(path, offset,
                              "WAL record has sequence " + std::to_string(op.seq) + " where " +
                                  std::to_string(last_seq_ + 1) +
                                  " was expected (records before it are missing: an earlier WAL segment was "
                                  "truncated or removed)");
      std::string_view key = op.key;
      bool check = types_.check_key != nullptr;
      if (manifest_.layout == detail::Layout::prefixed) {
        // Ids of dropped collections are accepted: a write that raced a
        // drop may leave records no handle reads.
        const auto p = detail::parse_collection_prefix(key);
        if (!p || p->id >= manifest_.next_collection_id)
          throw CorruptionError(path, offset, "WAL record holds a key of no collection");
        check = check && p->id == 0;
        key.remove_prefix(p->size);
      }
      if (check) {
        try {
          types_.check_key(key);
        } catch (const CorruptionError& e) {
          throw CorruptionError(path, offset, std::string("WAL record holds a key that does not decode: ") + e.what());
        }
      }
      if (op.key.size() > kMaxKeyBytes || op.value.size() > kMaxValueBytes)
        throw CorruptionError(path, offset, "WAL record holds a key or value over the format's limits");
      wb_.apply(op.key, op.seq, op.kind == detail::kOpErase, op.value);
      last_seq_ = op.seq;
    });
  });
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::fresh_manifest() const -> detail::Manifest {
  detail::Manifest m;
  m.serializer = types_.serializer;
  m.compression = std::string(Compression::name);
  m.compression_id = Compression::id;
  detail::KeyspaceState ks;
  ks.name = std::string(detail::kDefaultKeyspace);
  if (types_.database) {
    m.serializer.clear();  // the default collection takes types when first opened
    m.layout = detail::Layout::prefixed;
  } else {
    ks.key_order = types_.key_order;
    ks.value_type = types_.value_type;
    ks.schema_version = types_.value_version;
  }
  m.keyspaces.push_back(std::move(ks));
  return m;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::check_manifest(const Migrator* migrations) const -> void {
  detail::Manifest want = fresh_manifest();
  auto mismatch = [&](const std::string& what, const std::string& on_disk, const std::string& here,
                      const std::string& how) {
    throw MigrationError("stowage: the store at " + dir_.string() + " was written with " + what + " '" + on_disk +
                         "' but is opened with '" + here + "'; open it with the same " + what + how);
  };
  if ((manifest_.compression != want.compression || manifest_.compression_id != want.compression_id) &&
      !(migrations && migrations->changes_compression()))
    mismatch("compression", manifest_.compression, want.compression,
             types_.database ? std::string(" or migrate the store: pass a Migrator with change_compression() to "
                                           "the Database's constructor")
                             : std::string(" or migrate the store: pass a Migrator with change_compression()"));
  const auto* ks = manifest_.keyspace(detail::kDefaultKeyspace);
  if (!ks) throw CorruptionError(dir_ / "MANIFEST", 0, "MANIFEST names no 'default' keyspace");
  // A Database checks each collection's types as it opens it; a default
  // collection with no types yet (a store a Database created) takes them.
  if (types_.database || ks->key_order.empty()) return;
  if (manifest_.serializer != want.serializer &&
      !(migrations && migrations->serializer_change(manifest_.serializer, want.serializer)))
    mismatch("serializer", manifest_.serializer, want.serializer,
             " or migrate the store: pass a Migrator with change_serializer<Value, Old, New>(), Old the "
             "serializer whose id() is '" + manifest_.serializer + "'");
  if (ks->key_order != want.keyspaces[0].key_order)
    mismatch("key type", ks->key_order, want.keyspaces[0].key_order, std::string());
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::plan_migration(const Migrator* migrations,
                                                         unsigned target) -> MigrationPlan {
  MigrationPlan plan;
  plan.format = detail::format_path(manifest_, dir_);
  detail::Manifest upgraded = manifest_;
  for (const auto* f : plan.format) f->apply(upgraded);
  const auto& ks = *upgraded.keyspace(detail::kDefaultKeyspace);
  plan.from_version = ks.schema_version;
  plan.to_version = target;
  if (manifest_.compression != Compression::name || manifest_.compression_id != Compression::id) {
    // check_manifest() let it through: change_compression() was asked for.
    if (!detail::can_decompress<Compression>(manifest_.compression_id))
      throw MigrationError("stowage: cannot change the compression of the store at " + dir_.string() + " from '" +
                           manifest_.compression + "' (id " + std::to_string(manifest_.compression_id) +
                           ") to '" + std::string(Compression::name) + "': this policy cannot read the old blocks "
                           "(every policy reads ids 0 and 1 and its own); convert it with a policy that "
                           "decompresses both ids; the store is unchanged");
    plan.recompress = true;
  }
  if (types_.database || ks.key_order.empty()) {
    // A Database does not know the default collection's types; a default
    // collection no one gave types has no records: no value steps.
    plan.to_version = ks.schema_version;
    plan.to_type = ks.value_type;
    plan.to_prefixed = types_.database && upgraded.layout == detail::Layout::bare;
    return plan;
  }
  plan_values(plan, migrations, target, upgraded.serializer, ks.value_type, types_,
              "the store at " + dir_.string());
  return plan;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::plan_values(MigrationPlan& plan, const Migrator* migrations, unsigned target,
                                                      const std::string& stored_serializer,
                                                      const std::string& stored_type, const RecordTypes& t,
                                                      const std::string& where) const -> void {
  const bool to_value = target == t.value_version;
  const std::string& here = t.value_type;
  auto error = [&](const std::string& what) {
    throw MigrationError("stowage: cannot migrate " + where + " from value schema version " +
                         std::to_string(plan.from_version) + " to " + std::to_string(target) + ": " + what +
                         "; the store is unchanged");
  };
  std::string type = stored_type;  // the values' description before the next step
  if (stored_serializer != t.serializer) {
    // The caller let it through: change_serializer() registered it.
    plan.reserialize = migrations->serializer_change(stored_serializer, t.serializer);
    if (plan.reserialize->version != plan.from_version)
      error("the serializer change " + plan.reserialize->name() + " was registered for values at schema version " +
            std::to_string(plan.reserialize->version) + " but the values are at version " +
            std::to_string(plan.from_version) + " (register it with the Value type of that version)");
    if (!type.empty() && plan.reserialize->from_type != type)
      error("the serializer change " + plan.reserialize->name() + " reads values of type '" +
            plan.reserialize->from_type + "' but they are '" + type + "'");
    type = plan.reserialize->to_type;
  }
  if (plan.from_version == target) {
    if (to_value && !type.empty() && type != here)
      throw MigrationError("stowage: " + where + " was written with value type '" +
                           type + "' but is opened with '" + here + "' at the same schema version " +
                           std::to_string(target) + "; when a Value type changes, raise its `static constexpr "
                           "unsigned version` and register a migration step");
    plan.to_type = to_value ? here : type;
    return;
  }
  auto path = migrations ? migrations->path(plan.from_version, target) : std::nullopt;
  if (!path)
    error("no chain of registered migration steps leads there (registered: " +
          (migrations ? migrations->describe() : std::string("none, no Migrator was given")) +
          "); register the missing steps with Migrator::add and pass the Migrator when opening");
  for (const auto* st : *path) {
    if (!st->serializer.empty() && st->serializer != t.serializer)
      error("step " + st->name() + " was registered for serializer '" + st->serializer + "' but the values use '" +
            t.serializer + "' (pass it as add<Old, New, Serializer>)");
    if (!st->from_type.empty() && !type.empty() && st->from_type != type)
      error("step " + st->name() + " reads values of type '" + st->from_type + "' but they are '" + type + "'");
    type = st->to_type;
  }
  if (to_value && !type.empty() && type != here)
    error("the last step produces values of type '" + type + "' but the Value opened is '" + here + "'");
  plan.steps = *path;
  plan.to_type = to_value ? here : type;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::plan_step_names(const MigrationPlan& plan) const
    -> std::vector<std::string> {
  std::vector<std::string> out;
  for (const auto* f : plan.format) out.push_back(f->name());
  if (plan.to_prefixed) out.emplace_back("layout bare->prefixed");
  if (plan.recompress) out.push_back("compression " + manifest_.compression + " -> " + std::string(Compression::name));
  if (plan.reserialize) out.push_back("serializer " + plan.reserialize->name());
  for (const auto* st : plan.steps) out.push_back(st->name());
  return out;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::describe_plan(const MigrationPlan& plan) const -> std::string {
  std::string out;
  for (const auto& name : plan_step_names(plan)) out += (out.empty() ? "" : ", ") + name;
  return out;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::begin_migration(MigrationPlan& plan, const Migrator* migrations,
                                                          const std::vector<std::uint64_t>& live) -> void {
  plan.started = std::chrono::steady_clock::now();
  log(LogLevel::info, "migration of " + dir_.string() + ": start: format " + std::to_string(manifest_.format_major) +
                          ", value schema version " + std::to_string(plan.from_version) + " -> " +
                          std::to_string(plan.to_version) + " via " + describe_plan(plan));
  std::vector<std::string> links, copies{"MANIFEST"};
  for (const auto& ks : manifest_.keyspaces)
    for (const auto& c : ks.chunks) links.push_back(detail::chunk_file_name(c.file));
  for (auto n : live) copies.push_back(detail::wal_file_name(n));
  try {
    plan.backup = detail::take_backup(*fs_, dir_, links, copies,
                                      migrations ? migrations->backup_root() : std::nullopt,
                                      "v" + std::to_string(plan.from_version) + "-f" +
                                          std::to_string(manifest_.format_major));
  } catch (const Error& e) {
    log(LogLevel::error, std::string("migration: the backup failed, nothing was changed: ") + e.what());
    throw;
  }
  log(LogLevel::info, "migration: backup of the store taken at " + plan.backup.string());
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::run_migration(MigrationPlan& plan,
                                                        std::vector<std::uint64_t>& live) -> void {
  MigrationReport report;
  report.from_format = manifest_.format_major;
  report.from_version = plan.from_version;
  report.to_version = plan.to_version;
  report.backup = plan.backup;
  report.steps = plan_step_names(plan);
  detail::Manifest m = manifest_;
  for (const auto* f : plan.format) {
    log(LogLevel::info, "migration: " + f->name() + " (" + f->what + ")");
    f->apply(m);
  }
  std::optional<Output> out;  // removes the files it wrote unless the manifest may name them
  std::vector<detail::ChunkRef> refs;
  const bool rewrite = plan.rewrites();
  const bool convert_values = !plan.steps.empty() || plan.reserialize;
  try {
    if (plan.to_prefixed) {
      log(LogLevel::info, "migration: layout bare->prefixed (a Database: every key takes its collection's prefix)");
    }
    if (plan.recompress)
      log(LogLevel::info, "migration: compression " + manifest_.compression + " -> " + std::string(Compression::name) +
                              " (every block written again)");
    if (plan.reserialize)
      log(LogLevel::info, "migration: serializer " + plan.reserialize->name() + " (every value re-encoded)");
    if (rewrite) {
      for (const auto* st : plan.steps) {
        log(LogLevel::info, "migration: step " + st->name() +
                                (st->from_type.empty() ? std::string(" (on encoded values)")
                                                       : " (" + st->from_type + " -> " + st->to_type + ")"));
      }
      std::uint64_t total = wb_.entries();
      version_->for_each_run([&](const detail::Run& r, std::uint32_t) { total += r.records; });
      std::uint64_t seen = 0, next_progress = total / 10;
      std::string current;
      Convert convert = [&](std::string_view key, std::string_view value, std::string& out) {
        ++seen;
        if (total >= 1000 && seen >= next_progress && seen < total) {
          log(LogLevel::info, "migration: " + std::to_string(seen) + " of about " + std::to_string(total) +
                                  " records converted");
          next_progress += total / 10;
        }
        return convert_value(plan, key, value, out, current, report);
      };
      // Every record (every run and the replayed WAL) into one run at the
      // last level: nothing lies below it, so no tombstone is kept.
      std::vector<detail::Run> inputs;
      version_->for_each_run([&](const detail::Run& r, std::uint32_t) { inputs.push_back(r); });
      out.emplace(*this, detail::kLastLevel, 0, opt_.chunk_bytes);
      if (plan.to_prefixed) out->set_key_prefix(detail::collection_prefix(0));
      merge(inputs, &wb_, *out, [](std::string_view) { return true; }, /*zero_seqs=*/true,
            convert_values ? &convert : nullptr, /*abortable=*/false);
      if (!convert_values) report.records = out->records();
      refs = out->finish();
      fs_->sync_dir(dir_);
      auto* ks = m.keyspace(detail::kDefaultKeyspace);
      ks->chunks = refs;
      ks->live = static_cast<std::int64_t>(out->records());
      m.last_seq = last_seq_;
      m.wal_start = next_file_;  // the WAL segment open starts next; the old ones are folded in
    }
    m.next_file = next_file_;
    if (plan.to_prefixed) m.layout = detail::Layout::prefixed;
    if (plan.recompress) {
      m.compression = std::string(Compression::name);
      m.compression_id = Compression::id;
    }
    if (plan.reserialize) m.serializer = types_.serializer;
    auto* ks = m.keyspace(detail::kDefaultKeyspace);
    ks->schema_version = plan.to_version;
    ks->value_type = plan.to_type;
    if (out) out->keep();
    manifest_bytes_ = detail::write_manifest(*fs_, dir_, m);  // the switch
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("migration failed: ") + e.what());
    throw;
  }
  manifest_ = std::move(m);
  note_rules();
  if (rewrite) {
    version_->for_each_run([&](const detail::Run& r, std::uint32_t) {
      for (const auto& f : r.files) {
        cache_.erase_file(f->ref().file);
        files_.erase(f->ref().file);
      }
    });
    adopt_manifest_files();
    wb_ = detail::WriteBuffer();
    live.clear();
  }
  report.to_format = manifest_.format_major;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - plan.started).count();
  log(LogLevel::info, "migration of " + dir_.string() + ": done: value schema version " +
                          std::to_string(report.to_version) + ", format " + std::to_string(report.to_format) +
                          ", " + std::to_string(report.records) + " records converted, " +
                          std::to_string(report.dropped) + " dropped, in " + std::to_string(report.seconds) +
                          " s; backup at " + report.backup.string());
  last_migration_ = std::move(report);
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::convert_value(const MigrationPlan& plan, std::string_view key,
                                                        std::string_view value, std::string& out,
                                                        std::string& current, MigrationReport& report) const
    -> bool {
  // A value of a collection that expires records is converted without its
  // expiry time, which the result keeps; an expired record is dropped.
  const bool timed = expiring_.covers(key);
  std::uint64_t expires = 0;
  if (timed) {
    const detail::Expiring e = detail::split_expiry(value, nullptr);
    if (detail::expired_at(e.expires, now_micros())) {
      ++report.dropped;
      return false;
    }
    expires = e.expires;
    value = e.value;
  }
  if (plan.reserialize) {
    try {
      current = plan.reserialize->convert(value);
    } catch (const std::exception& e) {
      throw MigrationError("stowage: the serializer change " + plan.reserialize->name() + " failed on key " +
                           describe_key(key) + " of the store at " + dir_.string() + ": " + e.what() +
                           "; the store is unchanged");
    }
  } else {
    current.assign(value);
  }
  for (const auto* st : plan.steps) {
    std::optional<std::string> r;
    try {
      r = st->convert(current);
    } catch (const std::exception& e) {
      throw MigrationError("stowage: migration step " + st->name() + " failed on key " + describe_key(key) +
                           " of the store at " + dir_.string() + ": " + e.what() +
                           "; the store is unchanged (still at version " + std::to_string(plan.from_version) + ")");
    }
    if (!r) {
      ++report.dropped;
      return false;
    }
    current = std::move(*r);
  }
  if (current.size() > kMaxValueBytes)
    throw MigrationError("stowage: migration of the store at " + dir_.string() + " produced a value of " +
                         std::to_string(current.size()) + " bytes for key " + describe_key(key) +
                         ", over the limit of " + std::to_string(kMaxValueBytes));
  ++report.records;
  if (timed)
    out = detail::with_expiry(expires, current);
  else
    out.swap(current);
  return true;
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::migrate_collection(std::string_view name, const RecordTypes& t,
                                                             const Migrator& migrations) -> void {
  MigrationPlan plan;
  detail::CollectionState old;
  std::uint32_t fresh = 0;
  const std::string where = "collection '" + std::string(name) + "' of the store at " + dir_.string();
  {
    std::lock_guard inst(install_mu_);
    const auto* c = manifest_.collection(name);
    if (!c || c->key_order != t.key_order) return;  // collection() creates it, or names the mismatch
    const bool reserialize = c->serializer != t.serializer;
    if (reserialize && !migrations.serializer_change(c->serializer, t.serializer)) return;  // likewise
    if (!reserialize && c->schema_version == t.value_version) return;  // nothing to do
    if (opt_.read_only)
      throw MigrationError("stowage: " + where + " holds values at schema version " +
                           std::to_string(c->schema_version) + " (serializer '" + c->serializer +
                           "') and needs migrating, which a read_only open cannot do");
    if (slots_.count(name) != 0)
      throw ValidationError("stowage: " + where + " was already opened by this Database with its old types; "
                            "migrate it before any handle to it is taken (pass the Migrator to the first "
                            "collection() call)");
    check_writable();
    if (manifest_.next_collection_id >= detail::kMaxCollections)
      throw ValidationError("stowage: the store at " + dir_.string() + " has used every collection id");
    plan.from_version = c->schema_version;
    plan.to_version = t.value_version;
    plan_values(plan, &migrations, t.value_version, c->serializer, c->value_type, t, where);
    old = *c;
    detail::Manifest m = manifest_;
    fresh = m.next_collection_id++;
    m.dropped.push_back(fresh);  // a crash before the swap: the next open purges the copies
    replace_manifest(std::move(m));
  }
  plan.started = std::chrono::steady_clock::now();
  MigrationReport report;
  report.from_format = report.to_format = detail::kFormatMajor;  // a writable open upgraded the store to it
  report.from_version = plan.from_version;
  report.to_version = plan.to_version;
  report.steps = plan_step_names(plan);
  log(LogLevel::info, "migration of " + where + ": start: value schema version " + std::to_string(plan.from_version) +
                          " -> " + std::to_string(plan.to_version) + " via " + describe_plan(plan));
  const std::string from_prefix = detail::collection_prefix(old.id);
  const std::string to_prefix = detail::collection_prefix(fresh);
  bool timed = false;  // the copies carry expiry times when the records do
  std::uint64_t ttl = 0, copy_start = 0;
  {
    std::lock_guard inst(install_mu_);
    if (const auto* e = manifest_.expiry(old.id)) {
      timed = true;
      ttl = e->expiry_ttl;
    }
    std::lock_guard w(write_mu_);
    copy_start = last_seq_;
  }
  try {
    std::string current, converted;
    detail::walk_in_batches(
        *this, from_prefix, detail::collection_prefix(old.id + 1),
        [&](std::string_view key, std::string_view value, std::vector<WriteOp>& ops) {
          if (convert_value(plan, key, value, converted, current, report))
            ops.push_back(WriteOp{false, to_prefix + std::string(key.substr(from_prefix.size())), converted});
        },
        [this](std::vector<WriteOp>&& ops) { write(ops); }, /*stored=*/true);
    flush();  // the copies durable before the MANIFEST names them
  } catch (const std::exception& e) {
    log(LogLevel::error, "migration of " + where + " failed, nothing was changed: " + e.what());
    try {
      purge_dropped();
    } catch (...) {  // the next open purges the copies
    }
    throw;
  }
  {
    std::lock_guard inst(install_mu_);
    detail::Manifest m = manifest_;
    std::string backup = std::string(name).substr(0, 200) + ".backup-" + detail::utc_stamp() + "-v" +
                         std::to_string(old.schema_version);
    for (int n = 2; m.collection(backup) != nullptr; ++n) backup += "-" + std::to_string(n);
    m.by_id(old.id)->name = backup;
    detail::CollectionState moved = old;
    moved.id = fresh;
    moved.serializer = t.serializer;
    moved.value_type = plan.to_type;
    moved.schema_version = t.value_version;
    std::erase(m.dropped, fresh);
    std::vector<std::uint32_t> indexes;
    for (const auto& c : m.collections)
      if (c.is_index() && c.parent == old.id) indexes.push_back(c.id);
    std::erase_if(m.collections, [&](const detail::CollectionState& c) { return c.is_index() && c.parent == old.id; });
    m.dropped.insert(m.dropped.end(), indexes.begin(), indexes.end());
    m.collections.push_back(std::move(moved));
    if (timed) {  // the copies expire as the records did
      detail::CollectionState e;
      e.name = std::string(detail::kExpiryName);
      e.id = m.next_collection_id++;
      e.kind = detail::CollectionKind::expiry;
      e.parent = fresh;
      e.expiry_ttl = ttl;
      e.expiry_start = copy_start;
      m.collections.push_back(std::move(e));
    }
    replace_manifest(std::move(m));
    report.backup_collection = backup;
  }
  purge_dropped();  // the old indexes' entries
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - plan.started).count();
  log(LogLevel::info, "migration of " + where + ": done: " + std::to_string(report.records) + " records converted, " +
                          std::to_string(report.dropped) + " dropped, in " + std::to_string(report.seconds) +
                          " s; the old records stay as collection '" + report.backup_collection + "'");
  last_migration_ = std::move(report);
}

template <class Compression, class Eviction, class Lock>
auto Engine<Compression, Eviction, Lock>::apply_commit(Op* ops, std::size_t n, std::uint64_t first,
                                                       detail::WriteBuffer::Undo* undo) -> void {
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < n; ++i) bytes += ops[i].key.size() + ops[i].value.size();
  std::unique_lock guard(lock_);
  if (snap_max_ != 0) prune_snapshots();
  const std::uint64_t keep = snap_max_;
  if (n == 1) {
    wb_.apply(ops[0].key, first, ops[0].kind == detail::kOpErase, ops[0].value, ops[0].below, nullptr, keep);
  } else {
    wb_.begin(*undo);
    try {
      for (std::size_t i = 0; i < n; ++i)
        wb_.apply(ops[i].key, first + i, ops[i].kind == detail::kOpErase, ops[i].value, ops[i].below, undo, keep);
    } catch (...) {
      wb_.rollback(*undo);
      throw;
    }
  }
  ++wb_version_;
  bytes_put_.fetch_add(bytes, std::memory_order_relaxed);
}

// ---- EngineHandle's members (engine_handle.hpp): each a call on the engine.

template <class C, class E, class L>
EngineHandle<C, E, L>::EngineHandle(const std::filesystem::path& dir, Options options, RecordTypes types,
                                    const Migrator* migrations, unsigned target, bool migrate_only)
    : engine_(std::make_unique<engine_type>(dir, std::move(options), std::move(types), migrations, target,
                                            migrate_only)) {}
template <class C, class E, class L>
EngineHandle<C, E, L>::~EngineHandle() = default;
template <class C, class E, class L>
EngineHandle<C, E, L>::EngineHandle(EngineHandle&& other) noexcept = default;
template <class C, class E, class L>
auto EngineHandle<C, E, L>::operator=(EngineHandle&& other) noexcept -> EngineHandle& = default;
template <class C, class E, class L>
void EngineHandle<C, E, L>::check_key_size(std::size_t bytes) const {
  engine_->check_key_size(bytes);
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::check_value_size(std::size_t bytes) const {
  engine_->check_value_size(bytes);
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::put(std::string_view key, std::string_view value) {
  engine_->put(key, value);
}
template <class C, class E, class L>
ReadModifyWrite EngineHandle<C, E, L>::read_modify_write(std::string_view key, DecideRef decide) {
  return engine_->read_modify_write(key, decide);
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::write(const std::vector<WriteOp>& ops) {
  engine_->write(ops);
}
template <class C, class E, class L>
bool EngineHandle<C, E, L>::erase(std::string_view key) {
  return engine_->erase(key);
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::discard(std::string_view key) {
  engine_->discard(key);
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::put_batch(const std::vector<std::string>& kv) {
  engine_->put_batch(kv);
}
template <class C, class E, class L>
std::size_t EngineHandle<C, E, L>::erase_range(std::optional<std::string> from, std::optional<std::string> to) {
  return engine_->erase_range(std::move(from), std::move(to));
}
template <class C, class E, class L>
const std::string& EngineHandle<C, E, L>::default_prefix() const {
  return engine_->default_prefix();
}
template <class C, class E, class L>
CollectionSlot& EngineHandle<C, E, L>::collection(std::string_view name, const RecordTypes& types) {
  return engine_->collection(name, types);
}
template <class C, class E, class L>
std::vector<std::string> EngineHandle<C, E, L>::collections() const {
  return engine_->collections();
}
template <class C, class E, class L>
bool EngineHandle<C, E, L>::drop_collection(std::string_view name) {
  return engine_->drop_collection(name);
}
template <class C, class E, class L>
std::uint64_t EngineHandle<C, E, L>::next_id(CollectionSlot& slot) {
  return engine_->next_id(slot);
}
template <class C, class E, class L>
CollectionSlot& EngineHandle<C, E, L>::default_collection() {
  return engine_->default_collection();
}
template <class C, class E, class L>
CollectionSlot& EngineHandle<C, E, L>::declare_index(CollectionSlot& parent, std::string_view name,
                                                     const std::string& key_order, bool unique,
                                                     std::uint32_t version, bool& build) {
  return engine_->declare_index(parent, name, key_order, unique, version, build);
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::index_built(CollectionSlot& index) {
  engine_->index_built(index);
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::forget_index(CollectionSlot& index) {
  engine_->forget_index(index);
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::mark_stale(CollectionSlot& parent) {
  engine_->mark_stale(parent);
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::keep_history(CollectionSlot& slot, const History& rule) {
  engine_->keep_history(slot, rule);
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::set_expiry(CollectionSlot& slot, std::uint64_t ttl) {
  engine_->set_expiry(slot, ttl);
}
template <class C, class E, class L>
bool EngineHandle<C, E, L>::prefixed() const {
  return engine_->prefixed();
}
template <class C, class E, class L>
bool EngineHandle<C, E, L>::find_with(std::string_view key,
                                      void (*call)(void*, std::string_view, const std::filesystem::path*),
                                      void* fn) const {
  return engine_->find(key, [&](std::string_view value, const std::filesystem::path* file) { call(fn, value, file); });
}
template <class C, class E, class L>
bool EngineHandle<C, E, L>::find_at_with(const Snapshot& at, std::string_view key,
                                         void (*call)(void*, std::string_view, const std::filesystem::path*),
                                         void* fn) const {
  return engine_->find_at(at, key,
                          [&](std::string_view value, const std::filesystem::path* file) { call(fn, value, file); });
}
template <class C, class E, class L>
Snapshot EngineHandle<C, E, L>::snapshot() const {
  return engine_->snapshot();
}
template <class C, class E, class L>
std::size_t EngineHandle<C, E, L>::size_at(const Snapshot& at) const {
  return engine_->size_at(at);
}
template <class C, class E, class L>
std::size_t EngineHandle<C, E, L>::size() const {
  return engine_->size();
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::flush() {
  engine_->flush();
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::checkpoint() {
  engine_->checkpoint();
}
template <class C, class E, class L>
BackupReport EngineHandle<C, E, L>::backup_to(const std::filesystem::path& target) {
  return engine_->backup_to(target);
}
template <class C, class E, class L>
std::uint64_t EngineHandle<C, E, L>::changes_since(std::uint64_t since, std::string_view prefix,
                                                   const ChangeFn& fn) const {
  return engine_->changes_since(since, prefix, fn);
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::compact() {
  engine_->compact();
}
template <class C, class E, class L>
Stats EngineHandle<C, E, L>::stats() const {
  return engine_->stats();
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::close() {
  engine_->close();
}
template <class C, class E, class L>
const std::optional<MigrationReport>& EngineHandle<C, E, L>::last_migration() const {
  return engine_->last_migration();
}
template <class C, class E, class L>
MigrationReport EngineHandle<C, E, L>::no_migration(unsigned version) {
  return engine_type::no_migration(version);
}
template <class C, class E, class L>
MigrationStatus EngineHandle<C, E, L>::migration_status(const std::filesystem::path& dir, const Migrator* migrations,
                                                        unsigned target, const Options& options,
                                                        std::string_view serializer) {
  return engine_type::migration_status(dir, migrations, target, options, serializer);
}
template <class C, class E, class L>
const std::filesystem::path& EngineHandle<C, E, L>::path() const {
  return engine_->path();
}
template <class C, class E, class L>
const Options& EngineHandle<C, E, L>::options() const {
  return engine_->options();
}
template <class C, class E, class L>
const RecordTypes& EngineHandle<C, E, L>::types() const {
  return engine_->types();
}

template <class C, class E, class L>
struct EngineHandle<C, E, L>::Cursor::Impl {
  typename engine_type::Cursor cursor;
};
template <class C, class E, class L>
EngineHandle<C, E, L>::Cursor::Cursor() noexcept = default;
template <class C, class E, class L>
EngineHandle<C, E, L>::Cursor::Cursor(const EngineHandle* h, std::optional<std::string> from,
                                      std::optional<std::string> to, bool reverse, const Snapshot* at)
    : c_(std::make_unique<Impl>(
          Impl{typename engine_type::Cursor(h->engine_.get(), std::move(from), std::move(to), reverse, at)})) {}
template <class C, class E, class L>
EngineHandle<C, E, L>::Cursor::Cursor(const Cursor& other)
    : c_(other.c_ ? std::make_unique<Impl>(*other.c_) : nullptr) {}
template <class C, class E, class L>
EngineHandle<C, E, L>::Cursor::Cursor(Cursor&& other) noexcept = default;
template <class C, class E, class L>
auto EngineHandle<C, E, L>::Cursor::operator=(const Cursor& other) -> Cursor& {
  if (this != &other) c_ = other.c_ ? std::make_unique<Impl>(*other.c_) : nullptr;
  return *this;
}
template <class C, class E, class L>
auto EngineHandle<C, E, L>::Cursor::operator=(Cursor&& other) noexcept -> Cursor& = default;
template <class C, class E, class L>
EngineHandle<C, E, L>::Cursor::~Cursor() = default;
template <class C, class E, class L>
void EngineHandle<C, E, L>::Cursor::read_stored() {
  if (c_) c_->cursor.read_stored();
}
template <class C, class E, class L>
bool EngineHandle<C, E, L>::Cursor::peek() {
  return c_ && c_->cursor.peek();
}
template <class C, class E, class L>
void EngineHandle<C, E, L>::Cursor::accept() {
  c_->cursor.accept();
}
template <class C, class E, class L>
std::string_view EngineHandle<C, E, L>::Cursor::key() const {
  return c_->cursor.key();
}
template <class C, class E, class L>
std::string_view EngineHandle<C, E, L>::Cursor::value() const {
  return c_->cursor.value();
}
template <class C, class E, class L>
const std::filesystem::path* EngineHandle<C, E, L>::Cursor::file() const {
  return c_->cursor.file();
}
template <class C, class E, class L>
bool EngineHandle<C, E, L>::Cursor::at_end() const {
  return !c_ || c_->cursor.at_end();
}
template <class C, class E, class L>
const std::string& EngineHandle<C, E, L>::Cursor::last() const {
  static const std::string none;
  return c_ ? c_->cursor.last() : none;
}

}  // namespace stowage

// Separate compilation (opt-in). With STOWAGE_SEPARATE_COMPILATION defined
// in every translation unit of a program, the engine over the default
// policies (Lz4Compression, LruEviction, ThreadLock) is compiled once, in the
// one translation unit that includes <stowage/engine_src.hpp>; the others
// only declare it, and compile faster. Header-only stays the default.
#ifdef STOWAGE_SEPARATE_COMPILATION
extern template class stowage::Engine<stowage::Lz4Compression, stowage::LruEviction, stowage::ThreadLock>;
#endif
