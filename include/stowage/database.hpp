// SPDX-License-Identifier: BSL-1.0
// database.hpp: Database<Compression, Eviction, Lock>, one store (one
// directory, WAL, manifest, cache budget, LOCK and set of background
// threads) that keeps several typed collections, each a Collection handle:
//
//   stowage::Database db("data");
//   auto users = db.collection<std::uint64_t, User>("users");
//   auto orders = db.collection<std::uint64_t, Order>("orders");
//   db.batch().put(users, 1, u).put(orders, 7, o).commit();  // one WAL record
//
// Every key of a collection starts with its collection's prefix (the
// prefixed layout, docs/format.md, "Collections"). A store a Storage wrote
// (one collection, bare keys) is converted at the Database's first open,
// as a migration (backup first); its records become the "default"
// collection, which a Storage still opens.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "backup.hpp"
#include "collection.hpp"

namespace stowage {

/// A store of named, typed collections in one directory (see the top of
/// database.hpp). Thread-safe as Storage is; movable, not copyable.
// Default template arguments: in stowage_fwd.hpp.
template <class Compression, class Eviction, class Lock>
class Database {
#ifndef STOWAGE_SEPARATE_COMPILATION
  static_assert(detail::PolicyChecks<Compression, Eviction, Lock>::done);  // one error per failing policy
#endif

 public:
  /// The untyped engine the collections share (detail::engine_for).
  using engine_type = detail::engine_for<Compression, Eviction, Lock>;
  /// The handle collection<Key, Value, Serializer>() returns.
  template <class Key, class Value, class Serializer = BinarySerializer>
  using collection_type = Collection<Key, Value, Serializer, Compression, Eviction, Lock>;

  /// Opens the store in dir, creating it (empty, no collections) when
  /// Options::create_if_missing. A store a Storage wrote is converted to the
  /// layout of several collections first (a migration: a backup is taken,
  /// every record rewritten with its prefix; see last_migration()), unless
  /// Options::read_only, which reads it as it is. Throws as Storage's
  /// constructor does.
  explicit Database(const std::filesystem::path& dir, Options options = {})
      : engine_(std::make_unique<engine_type>(dir, std::move(options), database_types(), nullptr, 0, false)) {}
  /// Opens the store in dir as above, running what `migrations` allows of
  /// the whole store: Migrator::change_compression() rewrites every record
  /// of every collection (and index) into chunk files compressed by this
  /// Database's Compression, with the usual backup first (see
  /// last_migration(); Migrator::backup_to sets where). Value steps and
  /// serializer changes are a collection's: give them to
  /// collection(name, migrations).
  Database(const std::filesystem::path& dir, Options options, const Migrator& migrations)
      : engine_(std::make_unique<engine_type>(dir, std::move(options), database_types(), &migrations, 0, false)) {}

  /// Closes the store (see close()); errors are logged, not thrown.
  ~Database() = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  /// Takes over other's open store; handles from other stay valid.
  Database(Database&& other) noexcept = default;
  /// Closes this store, then takes over other's.
  Database& operator=(Database&& other) noexcept = default;

  /// A handle to the collection called name, created (empty, durably) on
  /// first use with these types. "default" is the default collection, the
  /// one a Storage of the same directory opens. Throws MigrationError, naming
  /// both, when the collection was created with another Key order,
  /// Serializer, Value type or schema version (collection(name, migrations)
  /// migrates it); ValidationError for a name that is empty or over 255
  /// bytes, or a collection a read_only Database does not find. The handle
  /// is cheap to copy and valid while this Database is open.
  template <class Key, class Value, class Serializer = BinarySerializer>
  collection_type<Key, Value, Serializer> collection(std::string_view name) {
    using C = collection_type<Key, Value, Serializer>;
    return C(&engine(), &engine().collection(name, C::record_types()));
  }

  /// collection<Key, Value, Serializer>(name), first migrating a collection
  /// recorded at another schema version (or serializer) to Value's with
  /// the steps in migrations, as Storage's open does for its store (the
  /// shortest path of steps; typed steps checked against the recorded
  /// types; a serializer change registered with change_serializer() runs
  /// first). The records are converted into a new copy, made durable, and
  /// one MANIFEST swap makes it the collection: a crash or a step that
  /// throws leaves the collection as it was. The old records stay as the
  /// collection `<name>.backup-<UTC time>-v<from>` (see last_migration();
  /// drop it to reclaim the space). The collection's indexes are built
  /// anew when next declared. Pass the Migrator to the first collection()
  /// call for the name in this Database's life: once a handle was taken
  /// with the old types, ValidationError. Throws MigrationError (nothing
  /// changed) when the steps do not lead to Value's version or do not fit
  /// the recorded types.
  template <class Key, class Value, class Serializer = BinarySerializer>
  collection_type<Key, Value, Serializer> collection(std::string_view name, const Migrator& migrations) {
    using C = collection_type<Key, Value, Serializer>;
    return C(&engine(), &engine().collection(name, C::record_types(), &migrations));
  }

  /// The names of the collections: "default" first when it has types (a
  /// Storage, or collection("default"), opened it), then the named ones in
  /// the order they were created.
  std::vector<std::string> collections() const { return engine().collections(); }

  /// Drops the collection called name: it is gone from collections() at
  /// once, and its records are erased before this returns (their space is
  /// reclaimed by compaction). Handles to it throw ValidationError from
  /// then on; the name may be created again, empty, with any types. Returns
  /// whether it existed. The default collection cannot be dropped
  /// (ValidationError).
  bool drop_collection(std::string_view name) { return engine().drop_collection(name); }

  /// Puts and erases across collections, committed as one WAL record: after
  /// a crash either all of them are there or none. Each is encoded and
  /// checked as it is added (see Collection::Batch); later operations on a
  /// key win over earlier ones.
  class Batch {
   public:
    /// Adds a put of value under key into collection c (a handle of this
    /// Database).
    template <class K, class V, class S>
    Batch& put(const collection_type<K, V, S>& c, const std::type_identity_t<K>& key,
               const std::type_identity_t<V>& value) {
      check(c);
      ops_.push_back(WriteOp{false, c.encode_checked_key(key), c.serialize_checked(value)});
      slots_.push_back(c.slot_);
      return *this;
    }
    /// Adds a put of value under key into collection c that expires ttl
    /// after the commit (see Collection::put(key, value, ttl)); the first
    /// makes c expire records, at once.
    template <class K, class V, class S>
    Batch& put(const collection_type<K, V, S>& c, const std::type_identity_t<K>& key,
               const std::type_identity_t<V>& value, std::chrono::microseconds ttl) {
      check(c);
      ops_.push_back(collection_type<K, V, S>::expiring_put(c.engine(), *c.slot_, c.prefix_, key, value, ttl));
      slots_.push_back(c.slot_);
      return *this;
    }
    /// Adds an erase of key from collection c (not knowing whether it is there).
    template <class K, class V, class S>
    Batch& erase(const collection_type<K, V, S>& c, const std::type_identity_t<K>& key) {
      check(c);
      ops_.push_back(WriteOp{true, c.encode_checked_key(key), {}});
      slots_.push_back(c.slot_);
      return *this;
    }
    /// Operations added since the last commit().
    std::size_t size() const { return ops_.size(); }
    /// Whether none were added since the last commit().
    bool empty() const { return ops_.empty(); }
    /// Drops every operation added since the last commit().
    void clear() {
      ops_.clear();
      slots_.clear();
    }
    /// Commits the operations as one atomic commit (none: nothing happens)
    /// and clears the batch. When it throws the operations stay in the
    /// batch, and nothing was stored, except after an IoError from the
    /// freeze of a full write buffer that follows the commit's WAL record:
    /// the commit is then kept (it replays at the next open, whole). Index
    /// entries of the collections' indexes are kept in the same commit
    /// (ConstraintError, nothing written, when a unique index would hold
    /// one key twice).
    void commit() {
      if (ops_.empty()) return;
      detail::commit_guarded(*engine_, slots_, ops_);
      clear();
    }

   private:
    friend class Database;
    explicit Batch(engine_type* e) : engine_(e) {}
    template <class C>
    void check(const C& c) const {
      if (&c.engine() != engine_)
        throw ValidationError("stowage: a Database batch takes collections of its own Database only");
    }
    engine_type* engine_;
    std::vector<WriteOp> ops_;
    std::vector<CollectionSlot*> slots_;  // the collection of each op
  };
  /// An empty Batch over this Database's collections.
  Batch batch() { return Batch(&engine()); }

  /// Makes every write that returned before this call survive power loss.
  void flush() { engine().flush(); }
  /// As Storage::checkpoint.
  void checkpoint() { engine().checkpoint(); }
  /// As Storage::compact.
  void compact() { engine().compact(); }
  /// A consistent read-only moment of the whole store: every commit so far
  /// (in every collection), none after. Read a collection at it with
  /// `collection.at(snapshot)`. Cheap: it pins, it copies nothing (see
  /// Snapshot for what holding one keeps).
  Snapshot snapshot() const { return engine().snapshot(); }
  /// A snapshot of the store's counters (every collection together).
  Stats stats() const { return engine().stats(); }
  /// As Storage::close: later calls on this Database or its handles throw
  /// ValidationError.
  void close() { engine().close(); }
  /// What the last migration this Database ran did, if one ran: its open's
  /// conversion of a Storage's store, or a collection's migration
  /// (collection(name, migrations)). Read it from the thread that ran it.
  const std::optional<MigrationReport>& last_migration() const { return engine().last_migration(); }

  /// Writes a backup of the whole store into the new directory dir while
  /// writers go on (Engine::backup_to): every commit up to the report's
  /// sequence and none after, as a store that opens on its own. Chunk files
  /// are hard-linked, so a backup beside the store takes almost no space;
  /// a second backup beside the first shares its files even on another file
  /// system. ValidationError when dir exists and is not empty, or lies
  /// inside the store. See backups(), remove_backup(), restore_from().
  BackupReport backup_to(const std::filesystem::path& dir) { return engine().backup_to(dir); }
  /// stowage::backups(path()): this store's backups in its parent
  /// directory (online and migration backups), oldest first.
  std::vector<BackupInfo> backups() const { return stowage::backups(this->path(), std::nullopt, this->options().file_system); }
  /// The store's directory.
  const std::filesystem::path& path() const { return engine().path(); }
  /// The options it was opened with.
  const Options& options() const { return engine().options(); }

 private:
  static RecordTypes database_types() {
    RecordTypes t;
    t.database = true;
    return t;
  }
  engine_type& engine() const {
    if (!engine_) throw ValidationError("stowage: this Database was moved from; use the Database it was moved to");
    return *engine_;
  }
  std::unique_ptr<engine_type> engine_;
};

}  // namespace stowage
