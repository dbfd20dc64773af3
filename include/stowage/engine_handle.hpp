// SPDX-License-Identifier: BSL-1.0
// engine_handle.hpp: what a typed layer needs to name the engine without
// including it: RecordTypes (what the engine must know of a store's types)
// and EngineHandle<Compression, Eviction, Lock>, the engine behind a pointer.
//
// EngineHandle has Engine's public members (engine.hpp), each defined out of
// line at the end of engine.hpp, and an owned Engine behind them. Storage
// uses it as its engine_type only with STOWAGE_SEPARATE_COMPILATION: a file
// built so includes this header and not engine.hpp, and calls members that
// the one file including <stowage/engine_src.hpp> compiles. Header-only
// builds use Engine itself (no pointer, every call inlined).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "backup_report.hpp"
#include "expiry.hpp"
#include "history.hpp"
#include "migration_report.hpp"
#include "options.hpp"
#include "snapshot.hpp"
#include "stowage_fwd.hpp"

// Set when this file may only declare the engine: built with
// STOWAGE_SEPARATE_COMPILATION from include/. The single header (which
// defines STOWAGE_SINGLE_HEADER) always holds every part.
#if defined(STOWAGE_SEPARATE_COMPILATION) && !defined(STOWAGE_SINGLE_HEADER)
#define STOWAGE_DECLARES_ENGINE_ONLY 1
#endif

namespace stowage {

/// What Engine::changes_since hands over for each change: its sequence,
/// whether it is an erase, the key (without the collection's prefix) and
/// the value's bytes (empty for an erase).
using ChangeFn = std::function<void(std::uint64_t sequence, bool erased, std::string_view key, std::string_view value)>;

/// What the engine needs to know of the records a typed layer stores in it
/// (all of it recorded in, or checked against, the manifest).
struct RecordTypes {
  /// Serializer::id() of the values.
  std::string serializer;
  /// KeyCodec<Key>::name(): the order the encoded keys are in.
  std::string key_order;
  /// describe_value<Serializer, Value>() ("" when unknown).
  std::string value_type;
  /// value_version<Value>: the schema version values are written at.
  unsigned value_version = 0;
  /// Throws CorruptionError when an encoded key does not decode as the key
  /// type (WAL replay checks each key with it); nullptr: no check.
  void (*check_key)(std::string_view encoded) = nullptr;
  /// The key for messages, decoded when that reads well; nullptr: hex.
  std::string (*describe_key)(std::string_view encoded) = nullptr;
  /// Opened by a Database: the default collection's types are not checked
  /// (the other fields are unused), a new store is created with the
  /// prefixed layout, and a bare store (written by Storage) is converted to
  /// it at open, as a migration (backup first).
  bool database = false;
};

/// Most keys Engine::erase_range (Storage::erase_range, erase_prefix)
/// commits at once.
inline constexpr std::size_t kEraseRangeBatch = 1024;

/// A secondary index a typed layer declared on a collection
/// (Collection::index): how a record's index entry is made. The engine
/// keeps it in the collection's slot; writers of the collection call it.
struct IndexHook {
  std::uint32_t id = 0;   ///< the index's collection id
  std::string name;       ///< its name
  std::string prefix;     ///< collection_prefix(id)
  bool unique = false;    ///< one record per index key
  /// Appends to out (which holds prefix) the entry's key for the record
  /// whose encoded key (no collection prefix) is pk and whose value bytes
  /// are value: the encoded index key, then pk for an index that is not
  /// unique. Throws as the Serializer does for bytes that do not decode.
  std::function<void(std::string_view pk, std::string_view value, std::string& out)> entry_key;
};

/// A collection as the engine knows it (Engine::collection): the bytes
/// every key of it starts with. It lives as long as the engine.
struct CollectionSlot {
  std::string name;                  ///< its name ("default": the default collection)
  std::uint32_t id = 0;              ///< 0 for the default collection
  std::string prefix;                ///< the bytes its keys start with (empty in a bare store)
  std::atomic<bool> dropped{false};  ///< set by Engine::drop_collection
  /// Engine::next_id's state: ids from next_id below id_ceiling are
  /// reserved (in the MANIFEST) and not handed out yet. id_mu guards them.
  std::mutex id_mu;
  std::uint64_t next_id = 0;     ///< 0: not loaded from the MANIFEST yet
  std::uint64_t id_ceiling = 0;
  /// Writers of the collection hold it shared while `indexed` is false,
  /// exclusively while it is true (they read the old record and write the
  /// index and history entries with it); declaring an index or setting the
  /// history holds it exclusively.
  std::shared_mutex gate;
  /// Writes must take the index path: an index is declared (hooks), the
  /// MANIFEST records indexes not declared in this session (undeclared:
  /// the first write marks them stale), or the collection keeps history.
  std::atomic<bool> indexed{false};
  std::vector<std::shared_ptr<const IndexHook>> hooks;  ///< gate
  std::vector<std::uint32_t> undeclared;                ///< gate
  /// The collection's history keyspace, when it keeps history
  /// (Collection::keep_history; loaded from the MANIFEST). gate
  std::shared_ptr<const detail::HistoryHook> history;
  /// The collection's expiry, when its values carry expiry times
  /// (Collection::set_default_ttl; loaded from the MANIFEST). gate
  std::shared_ptr<const detail::ExpiryRule> expiry;
};

/// One operation of an atomic write (Engine::write): a put of value under
/// key, or an erase of key (value unused). Key and value are encoded bytes.
struct WriteOp {
  bool erase = false;  ///< an erase (true) or a put
  std::string key;     ///< the encoded key
  std::string value;   ///< the encoded value of a put
  /// Internal (history entries, detail/index_ops.hpp): when not kNoStamp,
  /// the op's key ends with kStampBytes bytes that the commit replaces by
  /// the sequence of op number `stamp` of the same write (history.hpp's
  /// write_stamp).
  std::size_t stamp = kNoStamp;
  /// See stamp.
  static constexpr std::size_t kNoStamp = ~std::size_t{0};
  /// A put into a collection that expires records (expiry.hpp): how long
  /// the record lives, in microseconds (0: the collection's default TTL).
  /// The commit puts the expiry time in front of the value.
  std::uint64_t ttl = 0;
};

namespace detail {

/// Walks the keys from <= key < to of engine e (an Engine or EngineHandle)
/// in batches of up to kEraseRangeBatch records: add(key, value, ops) is
/// called for each record and appends the WriteOps it wants (any number);
/// commit(ops) then gets each batch's ops (not called when there are none),
/// with no cursor held, and the walk resumes after the batch's last key.
/// Returns the records walked. With stored, values come as stored (with
/// their expiry times, expired records too: Engine::Cursor::read_stored). What erase_range, index builds and
/// collection migrations share: each batch is one atomic commit, and a key
/// written behind the walk's position while it runs is not seen.
template <class E, class Add, class Commit>
std::size_t walk_in_batches(E& e, std::optional<std::string> from, const std::optional<std::string>& to, Add&& add,
                            Commit&& commit, bool stored = false) {
  std::size_t walked = 0;
  for (;;) {
    std::vector<WriteOp> ops;
    std::size_t n = 0;
    {
      typename E::Cursor cursor(&e, from, to);
      if (stored) cursor.read_stored();
      while (n < kEraseRangeBatch && cursor.peek()) {
        add(cursor.key(), cursor.value(), ops);
        from = std::string(cursor.key());
        from->push_back('\0');
        ++n;
        cursor.accept();
      }
    }
    walked += n;
    if (!ops.empty()) commit(std::move(ops));
    if (n < kEraseRangeBatch) return walked;
  }
}

}  // namespace detail

/// What a read-modify-write's decide function chose (Engine::read_modify_write).
enum class WriteDecision {
  keep,   ///< write nothing
  put,    ///< store the value decide wrote into its second argument
  erase,  ///< remove the key
};

/// What Engine::read_modify_write did.
struct ReadModifyWrite {
  bool existed = false;                          ///< the key was stored when decide last ran
  WriteDecision decision = WriteDecision::keep;  ///< what was committed (keep: nothing)
};

/// A decide function for Engine::read_modify_write, by reference: called as
/// decide(current value bytes or nullptr, the new value to fill). It does
/// not own the callable, which must outlive the call it is passed to.
class DecideRef {
 public:
  /// Refers to f, callable as WriteDecision(const std::string*, std::string&).
  template <class F>
  explicit DecideRef(F& f)
      : ctx_(static_cast<void*>(&f)), fn_([](void* ctx, const std::string* current, std::string& next) {
          return static_cast<WriteDecision>((*static_cast<F*>(ctx))(current, next));
        }) {}
  /// Calls the callable.
  WriteDecision operator()(const std::string* current, std::string& next) const { return fn_(ctx_, current, next); }

 private:
  void* ctx_;
  WriteDecision (*fn_)(void*, const std::string*, std::string&);
};

/// Engine<Compression, Eviction, Lock> behind a pointer, with the same
/// public members (see Engine in engine.hpp for what each does). It is
/// movable; a moved-from handle may only be destroyed or assigned to.
template <class Compression, class Eviction, class Lock>
class EngineHandle {
 public:
  /// The engine it owns.
  using engine_type = Engine<Compression, Eviction, Lock>;

  /// Opens the engine: as Engine's constructor.
  EngineHandle(const std::filesystem::path& dir, Options options, RecordTypes types, const Migrator* migrations,
               unsigned target, bool migrate_only);
  /// Closes the engine (as ~Engine: errors are logged, not thrown).
  ~EngineHandle();
  EngineHandle(const EngineHandle&) = delete;
  EngineHandle& operator=(const EngineHandle&) = delete;
  /// Takes over other's engine.
  EngineHandle(EngineHandle&& other) noexcept;
  /// Closes this handle's engine, then takes over other's.
  EngineHandle& operator=(EngineHandle&& other) noexcept;

  /// Engine::check_key_size.
  void check_key_size(std::size_t bytes) const;
  /// Engine::check_value_size.
  void check_value_size(std::size_t bytes) const;
  /// Engine::put.
  void put(std::string_view key, std::string_view value);
  /// Engine::read_modify_write.
  ReadModifyWrite read_modify_write(std::string_view key, DecideRef decide);
  /// Engine::write.
  void write(const std::vector<WriteOp>& ops);
  /// Engine::erase.
  bool erase(std::string_view key);
  /// Engine::discard.
  void discard(std::string_view key);
  /// Engine::put_batch.
  void put_batch(const std::vector<std::string>& kv);
  /// Engine::erase_range.
  std::size_t erase_range(std::optional<std::string> from, std::optional<std::string> to);
  /// Engine::default_prefix.
  const std::string& default_prefix() const;
  /// Engine::collection.
  CollectionSlot& collection(std::string_view name, const RecordTypes& types);
  /// Engine::collections.
  std::vector<std::string> collections() const;
  /// Engine::drop_collection.
  bool drop_collection(std::string_view name);
  /// Engine::next_id.
  std::uint64_t next_id(CollectionSlot& slot);
  /// Engine::default_collection.
  CollectionSlot& default_collection();
  /// Engine::declare_index.
  CollectionSlot& declare_index(CollectionSlot& parent, std::string_view name, const std::string& key_order,
                                bool unique, std::uint32_t version, bool& build);
  /// Engine::index_built.
  void index_built(CollectionSlot& index);
  /// Engine::forget_index.
  void forget_index(CollectionSlot& index);
  /// Engine::mark_stale.
  void mark_stale(CollectionSlot& parent);
  /// Engine::keep_history.
  void keep_history(CollectionSlot& slot, const History& rule);
  /// Engine::set_expiry.
  void set_expiry(CollectionSlot& slot, std::uint64_t ttl);
  /// Engine::prefixed.
  bool prefixed() const;
  /// Engine::find: on_value(std::string_view value, const std::filesystem::path* file)
  /// is called with the stored value when key is stored.
  template <class Fn>
  bool find(std::string_view key, Fn&& on_value) const {
    return find_with(
        key,
        [](void* fn, std::string_view value, const std::filesystem::path* file) {
          (*static_cast<std::remove_reference_t<Fn>*>(fn))(value, file);
        },
        const_cast<void*>(static_cast<const void*>(&on_value)));
  }
  /// Engine::find_at.
  template <class Fn>
  bool find_at(const Snapshot& at, std::string_view key, Fn&& on_value) const {
    return find_at_with(
        at, key,
        [](void* fn, std::string_view value, const std::filesystem::path* file) {
          (*static_cast<std::remove_reference_t<Fn>*>(fn))(value, file);
        },
        const_cast<void*>(static_cast<const void*>(&on_value)));
  }
  /// Engine::snapshot.
  Snapshot snapshot() const;
  /// Engine::size_at.
  std::size_t size_at(const Snapshot& at) const;
  /// Engine::size.
  std::size_t size() const;
  /// Engine::flush.
  void flush();
  /// Engine::checkpoint.
  void checkpoint();
  /// Engine::backup_to.
  BackupReport backup_to(const std::filesystem::path& target);
  /// Engine::changes_since.
  std::uint64_t changes_since(std::uint64_t since, std::string_view prefix, const ChangeFn& fn) const;
  /// Engine::compact.
  void compact();
  /// Engine::stats.
  Stats stats() const;
  /// Engine::close.
  void close();
  /// Engine::last_migration.
  const std::optional<MigrationReport>& last_migration() const;
  /// Engine::no_migration.
  static MigrationReport no_migration(unsigned version);
  /// Engine::migration_status.
  static MigrationStatus migration_status(const std::filesystem::path& dir, const Migrator* migrations,
                                          unsigned target, const Options& options, std::string_view serializer);
  /// Engine::path.
  const std::filesystem::path& path() const;
  /// Engine::options.
  const Options& options() const;
  /// Engine::types.
  const RecordTypes& types() const;
  /// The engine itself.
  engine_type& engine() { return *engine_; }
  /// The engine itself.
  const engine_type& engine() const { return *engine_; }

  /// Engine::Cursor behind a pointer, with its members.
  class Cursor {
   public:
    /// A cursor at the end.
    Cursor() noexcept;
    /// Engine::Cursor(e, from, to, reverse, at) over h's engine.
    Cursor(const EngineHandle* h, std::optional<std::string> from, std::optional<std::string> to,
           bool reverse = false, const Snapshot* at = nullptr);
    /// A copy at the same position (see Engine::Cursor).
    Cursor(const Cursor& other);
    /// Takes over other's position; other may only be assigned to or destroyed.
    Cursor(Cursor&& other) noexcept;
    /// See the copy constructor.
    Cursor& operator=(const Cursor& other);
    /// See the move constructor.
    Cursor& operator=(Cursor&& other) noexcept;
    /// Releases what it pins.
    ~Cursor();
    /// Engine::Cursor::read_stored.
    void read_stored();
    /// Engine::Cursor::peek.
    bool peek();
    /// Engine::Cursor::accept.
    void accept();
    /// Engine::Cursor::key.
    std::string_view key() const;
    /// Engine::Cursor::value.
    std::string_view value() const;
    /// Engine::Cursor::file.
    const std::filesystem::path* file() const;
    /// Engine::Cursor::at_end (true for a cursor at the end).
    bool at_end() const;
    /// Engine::Cursor::last.
    const std::string& last() const;

   private:
    struct Impl;  // an Engine::Cursor (engine.hpp)
    std::unique_ptr<Impl> c_;
  };

 private:
  bool find_with(std::string_view key, void (*call)(void*, std::string_view, const std::filesystem::path*),
                 void* fn) const;
  bool find_at_with(const Snapshot& at, std::string_view key,
                    void (*call)(void*, std::string_view, const std::filesystem::path*), void* fn) const;
  std::unique_ptr<engine_type> engine_;
};

#ifdef STOWAGE_SEPARATE_COMPILATION
extern template class EngineHandle<Lz4Compression, LruEviction, ThreadLock>;
#endif

}  // namespace stowage
