// SPDX-License-Identifier: BSL-1.0
// storage.hpp: the typed façade. Storage<Key, Value, Serializer,
// Compression, Eviction, Lock> turns keys into order-preserving bytes
// (key_codec.hpp) and values into bytes (the Serializer), and keeps them in
// an Engine<Compression, Eviction, Lock> (engine.hpp: the WAL, the write
// buffer, chunk files, the chunk index, the block cache, the manifest and
// the file lock). It adds no state or locking of its own: every member is
// as thread-safe as the engine call it makes, under the Lock policy.
#pragma once

#include <cstddef>
#include <filesystem>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine_handle.hpp"
#include "error.hpp"
#include "key_codec.hpp"
#include "migration_report.hpp"
#include "options.hpp"
#include "serializer.hpp"
#include "store_files.hpp"
#include "stowage_fwd.hpp"
// With STOWAGE_SEPARATE_COMPILATION, Storage keeps its engine behind an
// EngineHandle and this file includes neither the engine nor the migration
// machinery (the file that includes <stowage/engine_src.hpp> compiles them).
#ifndef STOWAGE_DECLARES_ENGINE_ONLY
#include "engine.hpp"
#include "migration.hpp"
#endif

namespace stowage {

/// An embedded, persistent, typed key-value store in one directory.
///
/// Keys are kept in std::less<Key> order (through KeyCodec<Key>); values are
/// stored through Serializer, blocks compressed by Compression, cached blocks
/// evicted by Eviction, threads coordinated by Lock. See README.md.
// Default template arguments: in stowage_fwd.hpp.
template <class Key, class Value, class Serializer, class Compression, class Eviction, class Lock>
class Storage {
  static_assert(EncodableKey<Key>,
                "stowage: Key has no order-preserving codec: specialise stowage::KeyCodec<Key> with encode, "
                "decode and name");
  static_assert(SerializerFor<Serializer, Value>,
                "stowage: Serializer must provide static id(), serialize(const Value&, std::string&) and "
                "deserialize<Value>(std::string_view) for this Value");
#ifndef STOWAGE_SEPARATE_COMPILATION
  // The policies are checked here, before anything uses them: a policy that
  // fails its concept is replaced by a stand-in below, so its static_assert
  // is the only error (not one per use inside the engine).
  static_assert(CompressionPolicy<Compression>,
                "stowage: Compression must provide static constexpr std::uint8_t id, std::string_view name, "
                "static void compress(std::string_view, std::string&) and static void "
                "decompress(std::string_view, std::size_t, char*) (see CompressionPolicy)");
  static_assert(EvictionPolicy<Eviction>,
                "stowage: Eviction must provide static constexpr std::string_view name, a default-constructible "
                "hook type (or template hook_for<Entry>) and a template queue<Entry> with insert(Entry&), "
                "touch(Entry&), erase(Entry&) and Entry* victim() (see EvictionPolicy)");
  static_assert(LockPolicy<Lock>,
                "stowage: Lock must be default-constructible and provide lock(), unlock(), lock_shared(), "
                "unlock_shared() and static constexpr bool waits_for_other_processes (see LockPolicy)");
#endif

 public:
  /// The untyped engine this store keeps its bytes in: Engine<Compression,
  /// Eviction, Lock>, or with STOWAGE_SEPARATE_COMPILATION an EngineHandle
  /// to one (the same members, defined in another translation unit).
#ifdef STOWAGE_SEPARATE_COMPILATION
  using engine_type = EngineHandle<Compression, Eviction, Lock>;
#else
  using engine_type = Engine<std::conditional_t<CompressionPolicy<Compression>, Compression, NoCompression>,
                             std::conditional_t<EvictionPolicy<Eviction>, Eviction, LruEviction>,
                             std::conditional_t<LockPolicy<Lock>, Lock, ThreadLock>>;
#endif
  using key_type = Key;
  using mapped_type = Value;
  using value_type = std::pair<Key, Value>;
  class iterator;
  class range;

  /// Opens the store in dir, creating it when Options::create_if_missing.
  /// Throws LockError when another process (or Storage) holds it,
  /// CorruptionError on damaged files, MigrationError when it was written
  /// with other policies or types, or at another value schema version (use
  /// the constructor that takes a Migrator), IoError on system errors.
  explicit Storage(const std::filesystem::path& dir, Options options = {})
      : engine_(std::make_unique<engine_type>(dir, std::move(options), record_types(), nullptr, value_version<Value>,
                                              false)) {}

  /// Opens the store in dir like the constructor above; when its values are
  /// at another schema version than value_version<Value> (or its on-disk
  /// format is older), first migrates it along the shortest path of steps in
  /// `migrations`, after taking a backup (see migration.hpp and
  /// last_migration()). No path: MigrationError, and the store is untouched.
  Storage(const std::filesystem::path& dir, Options options, const Migrator& migrations)
      : engine_(std::make_unique<engine_type>(dir, std::move(options), record_types(), &migrations,
                                              value_version<Value>, false)) {}

  /// Closes the store (see close()); errors are logged, not thrown.
  ~Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  /// Takes over other's open store (returned from a factory, kept in a
  /// container). Iterators and ranges from other stay valid and read the
  /// same store. The moved-from Storage may only be destroyed or assigned
  /// to; any other call throws ValidationError.
  Storage(Storage&& other) noexcept = default;
  /// Closes this Storage's store (errors logged, as the destructor does),
  /// then takes over other's (see the move constructor).
  Storage& operator=(Storage&& other) noexcept = default;

  /// Stores value under key, replacing any previous value.
  void put(const Key& key, const Value& value) { engine().put(encode_checked_key(key), serialize_checked(value)); }

  /// The value stored under key, or std::nullopt.
  std::optional<Value> get(const Key& key) const {
    std::optional<Value> out;
    const engine_type& e = engine();
    e.find(encode_lookup_key(key),
           [&](std::string_view bytes, const std::filesystem::path* file) { out = deserialize(e, bytes, file); });
    return out;
  }

  /// Whether key is stored.
  bool contains(const Key& key) const {
    return engine().find(encode_lookup_key(key), [](std::string_view, const std::filesystem::path*) {});
  }

  /// Removes key; returns whether it was there.
  bool erase(const Key& key) { return engine().erase(encode_checked_key(key)); }

  /// Removes key if it is there, without finding out whether it was: no
  /// lookup (erase() may read a block from disk to answer), so it costs what
  /// a put costs. size() stays exact.
  void discard(const Key& key) { engine().discard(encode_checked_key(key)); }

  /// Stores value under key only if key is not stored; returns whether it
  /// stored. The check and the write are atomic against every other writer
  /// (see update()).
  bool insert(const Key& key, const Value& value) {
    const std::string k = encode_checked_key(key);
    const std::string v = serialize_checked(value);
    auto decide = [&](const std::string* current, std::string& next) {
      if (current != nullptr) return WriteDecision::keep;
      next = v;
      return WriteDecision::put;
    };
    return engine().read_modify_write(k, DecideRef(decide)).decision == WriteDecision::put;
  }

  /// Reads, changes and writes key's record as one step, atomic against
  /// every other writer (no write to key can come between the read and the
  /// write). fn is called with no lock held, and again on the new value when
  /// another writer wrote key in between, so it should do nothing but
  /// compute (it may run more than once). It takes either
  ///   - `Value&`: the stored value, to change in place; a key that is not
  ///     stored is left alone (fn is not called);
  ///   - `std::optional<Value>&`: the stored value or nothing; what it holds
  ///     afterwards is stored, and emptying it erases the key.
  /// fn returns void, or bool: false writes nothing. Returns whether it
  /// wrote (put or erased). An exception from fn propagates; nothing is
  /// written then.
  template <class Fn>
  bool update(const Key& key, Fn&& fn) {
    const std::string k = encode_checked_key(key);
    auto decide = [&](const std::string* current, std::string& next) {
      if constexpr (std::is_invocable_v<Fn&, Value&>) {
        if (current == nullptr) return WriteDecision::keep;
        Value v = deserialize(engine(), *current, nullptr);
        if (!call_update(fn, v)) return WriteDecision::keep;
        Serializer::serialize(v, next);
        return WriteDecision::put;
      } else {
        static_assert(std::is_invocable_v<Fn&, std::optional<Value>&>,
                      "stowage: update(key, fn) needs fn callable with Value& or std::optional<Value>&");
        std::optional<Value> v;
        if (current != nullptr) v = deserialize(engine(), *current, nullptr);
        if (!call_update(fn, v)) return WriteDecision::keep;
        if (!v) return current != nullptr ? WriteDecision::erase : WriteDecision::keep;
        Serializer::serialize(*v, next);
        return WriteDecision::put;
      }
    };
    return engine().read_modify_write(k, DecideRef(decide)).decision != WriteDecision::keep;
  }

  /// Removes every record with from <= key < to; returns how many it
  /// removed. It commits in batches of up to kEraseRangeBatch keys, each
  /// atomic, not the whole range at once: after a crash a prefix of the
  /// range may be gone, and a key written into the range while it runs,
  /// behind its position, stays.
  std::size_t erase_range(const Key& from, const Key& to) {
    return erase_encoded_range(encode_lookup_key(from), encode_lookup_key(to));
  }
  /// erase_range over the records whose keys start with prefix (see
  /// scan_prefix).
  template <class P>
    requires KeyPrefix<Key, P>
  std::size_t erase_prefix(const P& prefix) {
    std::string p = encode_key_prefix<Key>(prefix);
    std::optional<std::string> end = prefix_end(p);
    return erase_encoded_range(std::move(p), std::move(end));
  }
  /// Most keys erase_range commits at once.
  static constexpr std::size_t kEraseRangeBatch = 1024;

  /// Stores every (key, value) pair of the range as one atomic commit: after a
  /// crash either all of them are there or none. Elements may be std::pair,
  /// std::tuple or anything a structured binding splits into key and value.
  template <class Range>
  void put_batch(const Range& pairs) {
    std::vector<std::string> kv;
    for (const auto& [key, value] : pairs) {
      kv.push_back(encode_checked_key(key));
      kv.push_back(serialize_checked(value));
    }
    engine().put_batch(kv);
  }

  /// Puts and erases gathered first and committed together (batch()), as
  /// one WAL record: after a crash either all of them are there or none.
  /// Each put and erase is encoded (and checked against the size limits) as
  /// it is added, so a bad one throws there and commit() stores nothing
  /// unless every one was good. Later operations on a key win over earlier
  /// ones of the same batch. It refers to the store's engine: it stays
  /// usable when the Storage moves, not after it is destroyed.
  class Batch {
   public:
    /// Adds a put of value under key.
    Batch& put(const Key& key, const Value& value) {
      ops_.push_back(WriteOp{false, encode_checked_key(*engine_, key), serialize_checked(*engine_, value)});
      return *this;
    }
    /// Adds an erase of key (as discard(): not knowing whether it is there).
    Batch& erase(const Key& key) {
      ops_.push_back(WriteOp{true, encode_checked_key(*engine_, key), {}});
      return *this;
    }
    /// Operations added since the last commit().
    std::size_t size() const { return ops_.size(); }
    /// Whether none were added since the last commit().
    bool empty() const { return ops_.empty(); }
    /// Drops every operation added since the last commit().
    void clear() { ops_.clear(); }
    /// Commits the operations as one atomic commit (none: nothing happens)
    /// and clears the batch. When it throws nothing was stored, and the
    /// operations stay in the batch.
    void commit() {
      if (ops_.empty()) return;
      engine_->write(ops_);
      ops_.clear();
    }

   private:
    friend class Storage;
    explicit Batch(engine_type* e) : engine_(e) {}
    engine_type* engine_;
    std::vector<WriteOp> ops_;
  };
  /// An empty Batch for this store.
  Batch batch() { return Batch(&engine()); }

  /// get() for every key of the range, in order.
  template <class Range>
  std::vector<std::optional<Value>> get_batch(const Range& keys) const {
    std::vector<std::optional<Value>> out;
    for (const auto& key : keys) out.push_back(get(key));
    return out;
  }

  /// All records in ascending key order.
  range scan() const { return range(&engine(), std::nullopt, std::nullopt); }
  /// Records with from <= key, ascending.
  range scan(const Key& from) const { return range(&engine(), encode_lookup_key(from), std::nullopt); }
  /// Records with from <= key < to, ascending.
  range scan(const Key& from, const Key& to) const {
    return range(&engine(), encode_lookup_key(from), encode_lookup_key(to));
  }

  /// Records whose keys start with prefix, ascending. prefix is string bytes
  /// for a std::string key (the keys that start with them), or for a
  /// std::pair or std::tuple key its first element or a std::tuple of its
  /// first elements (the keys whose leading elements equal them): see
  /// KeyPrefix.
  template <class P>
    requires KeyPrefix<Key, P>
  range scan_prefix(const P& prefix) const {
    std::string p = encode_key_prefix<Key>(prefix);
    std::optional<std::string> end = prefix_end(p);
    return range(&engine(), std::move(p), std::move(end));
  }

  /// Number of records with from <= key < to, counted by walking their keys
  /// (no value is decoded).
  std::size_t count(const Key& from, const Key& to) const {
    return count_encoded(encode_lookup_key(from), encode_lookup_key(to));
  }
  /// Number of records whose keys start with prefix (see scan_prefix),
  /// counted by walking their keys.
  template <class P>
    requires KeyPrefix<Key, P>
  std::size_t count_prefix(const P& prefix) const {
    std::string p = encode_key_prefix<Key>(prefix);
    std::optional<std::string> end = prefix_end(p);
    return count_encoded(std::move(p), std::move(end));
  }

  /// Number of records (exact). Records whose presence below is not known
  /// yet (written since the last flush began, or flushed uncounted and not
  /// yet met by a compaction: Stats::uncounted_records) are looked up in the
  /// files, each once, with no lock held that writers or readers need.
  std::size_t size() const { return engine().size(); }
  /// size() == 0, found as a scan's first step: no count, no value decoded.
  bool empty() const {
    typename engine_type::Cursor cursor(&engine(), std::nullopt, std::nullopt);
    return !cursor.peek();
  }

  /// Makes every write that returned before this call survive power loss.
  void flush() { engine().flush(); }

  /// Writes the write buffer into a new level-0 chunk file, records it in
  /// a new MANIFEST and drops the WAL it covered; returns once that is done.
  /// Background flushes do this on their own; call it to empty the WAL now.
  void checkpoint() { engine().checkpoint(); }

  /// Merges every level of chunk files into the last one, dropping
  /// overwritten records and erased keys, and returns once that is done
  /// (background compaction keeps the levels in shape on its own; this is
  /// for a store that will mostly be read from now on, or before a backup).
  /// It also removes the files an earlier session left (see close()).
  void compact() { engine().compact(); }

  /// A snapshot of the store's counters.
  Stats stats() const { return engine().stats(); }

  /// Flushes the write buffer (when Options::checkpoint_on_close), stops the
  /// background threads, syncs and releases the store. Later calls on this
  /// object throw ValidationError. Idempotent. Chunk files that compactions
  /// made obsolete just before, and WAL segments the last flush released,
  /// may stay in the directory: the MANIFEST names none of them, and the
  /// next open removes them in the background (so does compact()).
  void close() { engine().close(); }

  /// What the migration run by this object's open did, if one ran.
  const std::optional<MigrationReport>& last_migration() const { return engine().last_migration(); }

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
  /// dir with this Storage type would run. Takes no lock, writes nothing.
  static MigrationStatus migration_status(const std::filesystem::path& dir, const Migrator& migrations,
                                          const Options& options = {}) {
    return engine_type::migration_status(dir, &migrations, value_version<Value>, options);
  }
  /// migration_status(dir, Migrator{}): with no steps registered.
  static MigrationStatus migration_status(const std::filesystem::path& dir) {
    return engine_type::migration_status(dir, nullptr, value_version<Value>, Options{});
  }

  /// The store's directory.
  const std::filesystem::path& path() const { return engine().path(); }
  /// The options it was opened with.
  const Options& options() const { return engine().options(); }

  /// Forward iterator over (key, value) pairs in key order (descending, from
  /// a reversed() range: read "largest below" for "smallest above" below).
  ///
  /// It holds no lock between steps. It takes the store's shared lock once
  /// per batch: the records from its position to the end of the block it is
  /// reading (with the buffered writes that fall among them), merged and kept
  /// as encoded bytes; each ++ then decodes the next record of the batch
  /// into the same key and value objects, reusing their memory where the
  /// KeyCodec and Serializer offer decode_into / deserialize_into. A reference
  /// from operator* is valid until the next ++ (or until the iterator dies).
  /// It pins the blocks of its batch, and a long scan reads the blocks that
  /// are not cached ahead, several per read (at most kScanReadahead bytes).
  ///
  /// Writes are allowed, even inside the loop and from other threads. Each
  /// ++ returns the smallest key above the last key it returned, as the store
  /// holds it when the ++ runs: a ++ first checks (lock-free) whether any
  /// write or checkpoint happened since the batch was read and, if one did,
  /// drops the batch and re-seeks after the last key returned. So a write
  /// that returned before a ++ began (in this thread, or in a thread this one
  /// synchronised with) is seen by it, exactly as if no batch were kept; no
  /// key is returned twice or out of order. After a ++ throws, the iterator
  /// may be destroyed, compared or incremented again (which retries), but not
  /// dereferenced.
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::pair<Key, Value>;
    using difference_type = std::ptrdiff_t;
    using pointer = const value_type*;
    using reference = const value_type&;

    /// The end iterator.
    iterator() = default;
    /// A copy at the same position; it reads its next records from the store
    /// itself rather than sharing the original's batch.
    iterator(const iterator& other) = default;
    /// Moves the position, the batch and the current record; the moved-from
    /// iterator may only be assigned to or destroyed.
    iterator(iterator&& other) noexcept = default;
    /// See the copy constructor.
    iterator& operator=(const iterator& other) = default;
    /// See the move constructor.
    iterator& operator=(iterator&& other) noexcept = default;
    /// Releases the blocks it pins.
    ~iterator() = default;

    /// The current record.
    reference operator*() const { return *current_; }
    /// The current record.
    pointer operator->() const { return &*current_; }
    /// Steps to the next record (or to the end).
    iterator& operator++() {
      advance();
      return *this;
    }
    /// Steps to the next record; returns a copy of the iterator before the step.
    iterator operator++(int) {
      iterator old = *this;
      advance();
      return old;
    }
    /// Two ends are equal; otherwise iterators at the same key are.
    friend bool operator==(const iterator& a, const iterator& b) {
      if (a.cursor_.at_end() || b.cursor_.at_end()) return a.cursor_.at_end() == b.cursor_.at_end();
      return a.cursor_.last() == b.cursor_.last();
    }

   private:
    friend class Storage;
    iterator(const engine_type* e, std::optional<std::string> from, std::optional<std::string> to, bool reverse)
        : engine_(e), cursor_(e, std::move(from), std::move(to), reverse) {
      advance();
    }

    // Decodes the cursor's next record into current_ (reusing its memory),
    // then accepts it; a decode that throws leaves the cursor where it was,
    // so the next ++ retries the same record.
    void advance() {
      if (cursor_.at_end()) return;
      if (!cursor_.peek()) {
        current_.reset();
        return;
      }
      const engine_type& e = *engine_;
      const std::filesystem::path* file = cursor_.file();
      try {
        if (current_) {
          decode_stored_key_into(e, cursor_.key(), current_->first, file);
          deserialize_into(e, cursor_.value(), current_->second, file);
        } else {
          current_.emplace(decode_stored_key(e, cursor_.key(), file), deserialize(e, cursor_.value(), file));
        }
      } catch (...) {
        current_.reset();
        throw;
      }
      cursor_.accept();
    }

    const engine_type* engine_ = nullptr;
    typename engine_type::Cursor cursor_;
    std::optional<value_type> current_;
  };

  /// What scan() and scan_prefix() return: begin() starts a new pass each
  /// time it is called.
  class range {
   public:
    /// A new pass from the range's start (its end, when reversed).
    iterator begin() const { return iterator(engine_, from_, to_, reverse_); }
    /// The end of every pass.
    iterator end() const { return iterator(); }
    /// The same records in descending key order: `db.scan(from,
    /// to).reversed()` starts at the last key below `to` and ends with
    /// `from`. Each ++ reads the record before the last one returned as
    /// the store holds it then, as a forward pass does; the blocks a
    /// reverse pass reads are read one at a time (no readahead).
    range reversed() const {
      range r = *this;
      r.reverse_ = !reverse_;
      return r;
    }

   private:
    friend class Storage;
    range(const engine_type* e, std::optional<std::string> from, std::optional<std::string> to)
        : engine_(e), from_(std::move(from)), to_(std::move(to)) {}
    const engine_type* engine_;
    std::optional<std::string> from_, to_;
    bool reverse_ = false;
  };

 private:
  // migrate_to's open.
  Storage(const std::filesystem::path& dir, Options options, const Migrator* migrations, unsigned target,
          bool migrate_only)
      : engine_(std::make_unique<engine_type>(dir, std::move(options), record_types(), migrations, target,
                                              migrate_only)) {}

  static RecordTypes record_types() {
    RecordTypes t;
    t.serializer = std::string(Serializer::id());
    t.key_order = KeyCodec<Key>::name();
    t.value_type = describe_value<Serializer, Value>();
    t.value_version = value_version<Value>;
    t.check_key = [](std::string_view encoded) { (void)decode_key<Key>(encoded); };
    t.describe_key = &describe_key;
    return t;
  }

  // A key for messages: decoded and printed when that reads well, else hex.
  static std::string describe_key(std::string_view encoded) {
    try {
      Key k = decode_key<Key>(encoded);
      if constexpr (std::is_arithmetic_v<Key>) {
        return std::to_string(k);
      } else if constexpr (std::is_convertible_v<const Key&, std::string_view>) {
        std::string_view v = k;
        return "\"" + std::string(v.substr(0, 200)) + (v.size() > 200 ? "...\"" : "\"");
      }
    } catch (const Error&) {
    }
    return detail::hex_key(encoded);
  }

  // The engine; ValidationError once this Storage was moved from.
  engine_type& engine() const {
    if (!engine_) throw ValidationError("stowage: this Storage was moved from; use the Storage it was moved to");
    return *engine_;
  }

  std::string encode_lookup_key(const Key& key) const { return encode_key(key); }

  // update()'s call of fn: false when fn returned false.
  template <class Fn, class V>
  static bool call_update(Fn& fn, V& v) {
    if constexpr (std::is_same_v<std::invoke_result_t<Fn&, V&>, bool>) {
      return fn(v);
    } else {
      fn(v);
      return true;
    }
  }

  std::size_t count_encoded(std::optional<std::string> from, std::optional<std::string> to) const {
    typename engine_type::Cursor cursor(&engine(), std::move(from), std::move(to));
    std::size_t n = 0;
    while (cursor.peek()) {
      ++n;
      cursor.accept();
    }
    return n;
  }

  std::size_t erase_encoded_range(std::optional<std::string> from, std::optional<std::string> to) {
    std::size_t erased = 0;
    std::vector<WriteOp> ops;
    for (;;) {
      ops.clear();
      {
        typename engine_type::Cursor cursor(&engine(), from, to);
        while (ops.size() < kEraseRangeBatch && cursor.peek()) {
          ops.push_back(WriteOp{true, std::string(cursor.key()), {}});
          cursor.accept();
        }
      }
      if (ops.empty()) return erased;
      engine().write(ops);
      erased += ops.size();
      if (ops.size() < kEraseRangeBatch) return erased;
      // Resume after the last key erased: it and every key before it are gone.
      from = std::move(ops.back().key);
      from->push_back('\0');
    }
  }
  // Encoded within the limits (ValidationError otherwise), checked before
  // anything else happens, so a batch with one bad element stores nothing.
  std::string encode_checked_key(const Key& key) const { return encode_checked_key(engine(), key); }
  static std::string encode_checked_key(const engine_type& eng, const Key& key) {
    std::string k = encode_key(key);
    eng.check_key_size(k.size());
    return k;
  }
  std::string serialize_checked(const Value& value) const { return serialize_checked(engine(), value); }
  static std::string serialize_checked(const engine_type& eng, const Value& value) {
    std::string v;
    Serializer::serialize(value, v);
    eng.check_value_size(v.size());
    return v;
  }
  static Value deserialize(const engine_type& eng, std::string_view bytes, const std::filesystem::path* file) {
    try {
      return Serializer::template deserialize<Value>(bytes);
    } catch (const CorruptionError& e) {
      throw CorruptionError(file ? *file : eng.path(), 0,
                            std::string("a stored value does not decode as this Value type: ") + e.what());
    }
  }

  static Key decode_stored_key(const engine_type& eng, std::string_view bytes, const std::filesystem::path* file) {
    try {
      return decode_key<Key>(bytes);
    } catch (const CorruptionError& e) {
      throw CorruptionError(file ? *file : eng.path(), 0, std::string("a stored key does not decode as this Key type: ") + e.what());
    }
  }
  // deserialize() into an existing value, through the Serializer's optional
  // deserialize_into when it has one (scans reuse one value's memory).
  static void deserialize_into(const engine_type& eng, std::string_view bytes, Value& out,
                               const std::filesystem::path* file) {
    if constexpr (SerializerDecodesInto<Serializer, Value>) {
      try {
        Serializer::template deserialize_into<Value>(bytes, out);
      } catch (const CorruptionError& e) {
        throw CorruptionError(file ? *file : eng.path(), 0,
                              std::string("a stored value does not decode as this Value type: ") + e.what());
      }
    } else {
      out = deserialize(eng, bytes, file);
    }
  }
  // decode_stored_key() into an existing key (see decode_key_into).
  static void decode_stored_key_into(const engine_type& eng, std::string_view bytes, Key& out,
                                     const std::filesystem::path* file) {
    try {
      decode_key_into<Key>(bytes, out);
    } catch (const CorruptionError& e) {
      throw CorruptionError(file ? *file : eng.path(), 0, std::string("a stored key does not decode as this Key type: ") + e.what());
    }
  }

  // The engine, behind a pointer so that a Storage moves (iterators and
  // ranges hold the engine, not the Storage, and survive the move); null
  // once moved from.
  std::unique_ptr<engine_type> engine_;
};

}  // namespace stowage
