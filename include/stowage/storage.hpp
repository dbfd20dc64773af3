// SPDX-License-Identifier: BSL-1.0
// storage.hpp: Storage<Key, Value, Serializer, Compression, Eviction, Lock>,
// an embedded, persistent, typed key-value store in one directory: the
// default collection of a store (every typed member is Collection's,
// collection.hpp) with the engine it opened. A store of several collections
// is a Database (database.hpp); a Storage opens one as its default
// collection.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <utility>

#include "backup.hpp"
#include "collection.hpp"

namespace stowage {

namespace detail {
// Owns a Storage's engine; a base listed before Collection, so the engine
// exists when Collection is given it.
template <class Engine>
struct EngineOwner {
  explicit EngineOwner(std::unique_ptr<Engine> e) : owned(std::move(e)) {}
  std::unique_ptr<Engine> owned;
};
}  // namespace detail

/// An embedded, persistent, typed key-value store in one directory.
///
/// Keys are kept in std::less<Key> order (through KeyCodec<Key>); values are
/// stored through Serializer, blocks compressed by Compression, cached blocks
/// evicted by Eviction, threads coordinated by Lock. See README.md. Every
/// typed member (put, get, scan, batch, ...) is Collection's: a Storage is
/// the default collection of its store, opened with its own engine.
// Default template arguments: in stowage_fwd.hpp.
template <class Key, class Value, class Serializer, class Compression, class Eviction, class Lock>
class Storage : private detail::EngineOwner<detail::engine_for<Compression, Eviction, Lock>>,
                public Collection<Key, Value, Serializer, Compression, Eviction, Lock> {
  using base = Collection<Key, Value, Serializer, Compression, Eviction, Lock>;
  using owner = detail::EngineOwner<detail::engine_for<Compression, Eviction, Lock>>;

 public:
  using typename base::engine_type;

  /// Opens the store in dir, creating it when Options::create_if_missing.
  /// Throws LockError when another process (or Storage) holds it,
  /// CorruptionError on damaged files, MigrationError when it was written
  /// with other policies or types, or at another value schema version (use
  /// the constructor that takes a Migrator), IoError on system errors. A
  /// store a Database keeps (several collections) opens too: this Storage
  /// reads and writes its default collection.
  explicit Storage(const std::filesystem::path& dir, Options options = {})
      : Storage(dir, std::move(options), nullptr, value_version<Value>, false) {}

  /// Opens the store in dir like the constructor above; when its values are
  /// at another schema version than value_version<Value> (or its on-disk
  /// format is older), first migrates it along the shortest path of steps in
  /// `migrations`, after taking a backup (see migration.hpp and
  /// last_migration()). No path: MigrationError, and the store is untouched.
  Storage(const std::filesystem::path& dir, Options options, const Migrator& migrations)
      : Storage(dir, std::move(options), &migrations, value_version<Value>, false) {}

  /// Closes the store (see close()); errors are logged, not thrown.
  ~Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  /// Takes over other's open store (returned from a factory, kept in a
  /// container). Iterators, ranges, batches and Collection copies from
  /// other stay valid and read the same store. The moved-from Storage may
  /// only be destroyed or assigned to; any other call throws
  /// ValidationError.
  Storage(Storage&& other) noexcept = default;
  /// Closes this Storage's store (errors logged, as the destructor does),
  /// then takes over other's (see the move constructor).
  Storage& operator=(Storage&& other) noexcept = default;

  /// Flushes the write buffer (when Options::checkpoint_on_close), stops the
  /// background threads, syncs and releases the store. Later calls on this
  /// object throw ValidationError. Idempotent. Chunk files that compactions
  /// made obsolete just before, and WAL segments the last flush released,
  /// may stay in the directory: the MANIFEST names none of them, and the
  /// next open removes them in the background (so does compact()).
  void close() { engine().close(); }

  /// What the migration run by this object's open did, if one ran.
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

  /// Migrates the store in dir to value schema version `version` with the
  /// steps in `migrations`, then closes it: the way back to an older version
  /// (a 3 -> 2 step registered by the newer program) or a migration run ahead
  /// of time. The store must be closed, and must have been written with this
  /// Storage's Key, Serializer and Compression. A backup is taken first.
  static MigrationReport migrate_to(const std::filesystem::path& dir, unsigned version, const Migrator& migrations,
                                    Options options = {}) {
    if (options.read_only) throw ValidationError("stowage: migrate_to cannot run on a read_only store (" + dir.string() + ")");
    options.create_if_missing = false;
    Storage s(dir, std::move(options), &migrations, version, true);
    if (s.last_migration()) return *s.last_migration();
    return engine_type::no_migration(version);
  }

  /// migration_status(dir, migrations, value_version<Value>): what opening
  /// dir with this Storage type would run, a change of its Compression or
  /// Serializer included (path_found is false when `migrations` does not
  /// allow one that is needed: the open would throw MigrationError). Takes
  /// no lock, writes nothing.
  static MigrationStatus migration_status(const std::filesystem::path& dir, const Migrator& migrations,
                                          const Options& options = {}) {
    return engine_type::migration_status(dir, &migrations, value_version<Value>, options, Serializer::id());
  }
  /// migration_status(dir, Migrator{}): with no steps registered.
  static MigrationStatus migration_status(const std::filesystem::path& dir) {
    return engine_type::migration_status(dir, nullptr, value_version<Value>, Options{}, Serializer::id());
  }


 private:
  // Every open: migrate_to's too (migrate_only).
  Storage(const std::filesystem::path& dir, Options options, const Migrator* migrations, unsigned target,
          bool migrate_only)
      : owner(std::make_unique<engine_type>(dir, std::move(options), base::record_types(), migrations, target,
                                            migrate_only)),
        base(owner::owned.get(), &owner::owned->default_collection()) {}
  using base::engine;
};

}  // namespace stowage
