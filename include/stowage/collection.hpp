// SPDX-License-Identifier: BSL-1.0
// collection.hpp: the typed façade. Collection<Key, Value, Serializer,
// Compression, Eviction, Lock> turns keys into order-preserving bytes
// (key_codec.hpp) and values into bytes (the Serializer), and keeps them in
// an Engine<Compression, Eviction, Lock> (engine.hpp: the WAL, the write
// buffer, chunk files, the chunk index, the block cache, the manifest and
// the file lock), each key after its collection's prefix (none for the
// default collection of a bare store: detail/collection_prefix.hpp). A
// Storage (storage.hpp) is the default collection with its engine; a
// Database (database.hpp) hands out Collections of one engine. It adds no
// locking of its own: every member is as thread-safe as the engine call it
// makes, under the Lock policy.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <iterator>
#include <memory>
#include <functional>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "change_feed.hpp"
#include "detail/index_ops.hpp"
#include "engine_handle.hpp"
#include "error.hpp"
#include "history.hpp"
#include "key_codec.hpp"
#include "migration_report.hpp"
#include "options.hpp"
#include "serializer.hpp"
#include "snapshot.hpp"
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

namespace detail {
/// The engine a Collection or Database over these policies keeps its bytes
/// in: Engine<Compression, Eviction, Lock>, or with
/// STOWAGE_SEPARATE_COMPILATION an EngineHandle to one (the same members,
/// defined in another translation unit). A policy that fails its concept is
/// replaced by a stand-in, so that its static_assert (in Collection and
/// Database) is the only error.
#ifdef STOWAGE_SEPARATE_COMPILATION
template <class Compression, class Eviction, class Lock>
using engine_for = EngineHandle<Compression, Eviction, Lock>;
#else
template <class Compression, class Eviction, class Lock>
using engine_for = Engine<std::conditional_t<CompressionPolicy<Compression>, Compression, NoCompression>,
                          std::conditional_t<EvictionPolicy<Eviction>, Eviction, LruEviction>,
                          std::conditional_t<LockPolicy<Lock>, Lock, ThreadLock>>;
#endif
}  // namespace detail

#ifndef STOWAGE_SEPARATE_COMPILATION
namespace detail {
/// One static_assert per policy that fails its concept (Collection and
/// Database instantiate it); `done` is true either way, so nothing else
/// errors.
template <class Compression, class Eviction, class Lock>
struct PolicyChecks {
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
  static constexpr bool done = true;
};
}  // namespace detail
#endif

/// Tag for Collection::index: the index holds at most one record per index
/// key (`users.index("by_email", &User::email, stowage::unique)`).
struct unique_t {
  explicit constexpr unique_t() = default;
};
/// See unique_t.
inline constexpr unique_t unique{};

/// Typed records in a store: the default collection of a Storage (which
/// derives from it), or a named collection of a Database
/// (Database::collection). It is a handle: copies refer to the same
/// records, and it is valid while the Storage or Database it came from is
/// open (a Storage's moves keep it valid).
///
/// Keys are kept in std::less<Key> order (through KeyCodec<Key>); values are
/// stored through Serializer, blocks compressed by Compression, cached blocks
/// evicted by Eviction, threads coordinated by Lock. See README.md.
// Default template arguments: in stowage_fwd.hpp.
template <class Key, class Value, class Serializer, class Compression, class Eviction, class Lock>
class Collection {
  static_assert(EncodableKey<Key>,
                "stowage: Key has no order-preserving codec: specialise stowage::KeyCodec<Key> with encode, "
                "decode and name");
  static_assert(SerializerFor<Serializer, Value>,
                "stowage: Serializer must provide static id(), serialize(const Value&, std::string&) and "
                "deserialize<Value>(std::string_view) for this Value");
#ifndef STOWAGE_SEPARATE_COMPILATION
  // The policies are checked here, before anything uses them: a policy that
  // fails its concept is replaced by a stand-in (detail::engine_for), so its
  // static_assert is the only error (not one per use inside the engine).
  static_assert(detail::PolicyChecks<Compression, Eviction, Lock>::done);
#endif

 public:
  /// The untyped engine the records are kept in (detail::engine_for).
  using engine_type = detail::engine_for<Compression, Eviction, Lock>;
  using key_type = Key;
  using mapped_type = Value;
  using value_type = std::pair<Key, Value>;
  class iterator;
  class range;

  /// A handle to nothing: every call throws ValidationError until one is
  /// assigned to it.
  Collection() = default;
  /// Another handle to the same records.
  Collection(const Collection&) = default;
  /// See the copy constructor.
  Collection& operator=(const Collection&) = default;
  /// Takes over other's records; other refers to nothing afterwards.
  Collection(Collection&& other) noexcept
      : engine_(std::exchange(other.engine_, nullptr)),
        slot_(std::exchange(other.slot_, nullptr)),
        prefix_(std::move(other.prefix_)) {}
  /// See the move constructor.
  Collection& operator=(Collection&& other) noexcept {
    engine_ = std::exchange(other.engine_, nullptr);
    slot_ = std::exchange(other.slot_, nullptr);
    prefix_ = std::move(other.prefix_);
    return *this;
  }
  ~Collection() = default;

  /// The collection's name ("default" for a Storage's records).
  const std::string& name() const {
    static const std::string none;
    return slot_ ? slot_->name : none;
  }

  /// An id for a new record: unique and increasing (from 1) across threads,
  /// sessions and processes that open the store one after another, never
  /// handed out twice, even across a crash (reserved in blocks of
  /// Engine::kIdBlock in the MANIFEST, so a crash or a close skips the rest
  /// of a block). Nothing is stored under it: it is for the caller's key.
  std::uint64_t next_id() { return engine().next_id(*slot_); }

  /// Stores value under key, replacing any previous value.
  void put(const Key& key, const Value& value) {
    std::string k = encode_checked_key(key);
    std::string v = serialize_checked(value);
    guarded([&](engine_type& e) { e.put(k, v); },
            [&](engine_type& e) { commit_indexed(e, {WriteOp{false, std::move(k), std::move(v)}}); }, kBlind);
  }

  /// Stores value under key for ttl (more than 0): the record expires ttl
  /// from now (Options::clock), after which every read (get, contains,
  /// scans, counts, size, snapshots) finds it gone, across restarts (the
  /// time on disk is absolute); compaction then reclaims its space. A later
  /// put without a ttl gives the record the collection's default TTL (see
  /// set_default_ttl: none, unless one was set). The first put with a ttl
  /// makes the collection expire records, as set_default_ttl(0) would:
  /// ValidationError when it holds records stored before (or has an index,
  /// or is a bare Storage store's).
  void put(const Key& key, const Value& value, std::chrono::microseconds ttl) {
    WriteOp op = expiring_put(engine(), *slot_, prefix_, key, value, ttl);
    guarded([&](engine_type& e) { commit_indexed(e, {std::move(op)}); },
            [&](engine_type& e) { commit_indexed(e, {std::move(op)}); }, kBlind);
  }

  /// Makes every later put of this collection that gives no ttl (put,
  /// put_batch, insert, update, batches) expire ttl after it, for every
  /// session (recorded in the MANIFEST, durably, before this returns);
  /// ttl 0: such puts never expire (a put with a ttl still does). Records
  /// already stored keep their expiry times. The first call (or the first
  /// put with a ttl) makes the collection expire records: each value it
  /// stores from then on carries its expiry time (docs/format.md,
  /// "Expiry"), so the collection must hold no record then (a
  /// ValidationError says so; copy the records into a new collection to
  /// give them times). Needs a store of several collections (a
  /// Database's); ValidationError otherwise, in a read_only store, for a
  /// collection with an index (not supported yet), or for a ttl below 0 or
  /// over about 2,000 years. It waits for the collection's writers in
  /// flight.
  void set_default_ttl(std::chrono::microseconds ttl) {
    if (ttl.count() < 0)
      throw ValidationError("stowage: a default time to live must not be negative (got " +
                            std::to_string(ttl.count()) + " us)");
    engine_type& e = engine();
    std::unique_lock gate(slot_->gate);
    e.set_expiry(*slot_, static_cast<std::uint64_t>(ttl.count()));
  }
  /// What set_default_ttl() last set (0: puts without a ttl never expire).
  std::chrono::microseconds default_ttl() const {
    const auto rule = expiry_rule();
    return std::chrono::microseconds(rule ? static_cast<std::int64_t>(rule->ttl) : 0);
  }
  /// Whether the collection expires records (set_default_ttl() or a put
  /// with a ttl made it so).
  bool expires_records() const { return expiry_rule() != nullptr; }

  /// The value stored under key, or std::nullopt.
  std::optional<Value> get(const Key& key) const { return get_in(key, nullptr); }

  /// Whether key is stored.
  bool contains(const Key& key) const {
    return engine().find(encode_lookup_key(key), [](std::string_view, const std::filesystem::path*) {});
  }

  /// Removes key; returns whether it was there.
  bool erase(const Key& key) {
    std::string k = encode_checked_key(key);
    return guarded([&](engine_type& e) { return e.erase(k); },
                   [&](engine_type& e) {
                     const bool existed = e.find(k, [](std::string_view, const std::filesystem::path*) {});
                     if (existed) commit_indexed(e, {WriteOp{true, std::move(k), {}}});
                     return existed;
                   });
  }

  /// Removes key if it is there, without finding out whether it was: no
  /// lookup (erase() may read a block from disk to answer), so it costs what
  /// a put costs. size() stays exact.
  void discard(const Key& key) {
    std::string k = encode_checked_key(key);
    guarded([&](engine_type& e) { e.discard(k); },
            [&](engine_type& e) { commit_indexed(e, {WriteOp{true, std::move(k), {}}}); }, kBlind);
  }

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
    return read_modify_write(k, decide) == WriteDecision::put;
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
    return read_modify_write(k, decide) != WriteDecision::keep;
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
    auto [from, to] = prefix_bounds(prefix);
    return erase_encoded_range(std::move(from), std::move(to));
  }
  /// Most keys erase_range commits at once.
  static constexpr std::size_t kEraseRangeBatch = stowage::kEraseRangeBatch;

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
    guarded([&](engine_type& e) { e.put_batch(kv); },
            [&](engine_type& e) {
              std::vector<WriteOp> ops;
              for (std::size_t i = 0; i + 1 < kv.size(); i += 2) ops.push_back(WriteOp{false, kv[i], kv[i + 1]});
              commit_indexed(e, std::move(ops));
            },
            kBlind);
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
      ops_.push_back(WriteOp{false, encode_checked_key(*engine_, prefix_, key), serialize_checked(*engine_, value)});
      return *this;
    }
    /// Adds a put of value under key that expires ttl after the commit
    /// (see Collection::put(key, value, ttl)); the first makes the
    /// collection expire records, at once.
    Batch& put(const Key& key, const Value& value, std::chrono::microseconds ttl) {
      ops_.push_back(expiring_put(*engine_, *slot_, prefix_, key, value, ttl));
      return *this;
    }
    /// Adds an erase of key (as discard(): not knowing whether it is there).
    Batch& erase(const Key& key) {
      ops_.push_back(WriteOp{true, encode_checked_key(*engine_, prefix_, key), {}});
      return *this;
    }
    /// Operations added since the last commit().
    std::size_t size() const { return ops_.size(); }
    /// Whether none were added since the last commit().
    bool empty() const { return ops_.empty(); }
    /// Drops every operation added since the last commit().
    void clear() { ops_.clear(); }
    /// Commits the operations as one atomic commit (none: nothing happens)
    /// and clears the batch. When it throws the operations stay in the
    /// batch, and nothing was stored, except after an IoError from the
    /// freeze of a full write buffer that follows the commit's WAL record:
    /// the commit is then kept (it replays at the next open, whole).
    void commit() {
      if (ops_.empty()) return;
      detail::commit_guarded(*engine_, std::vector<CollectionSlot*>(ops_.size(), slot_), ops_);
      ops_.clear();
    }

   private:
    friend class Collection;
    Batch(engine_type* e, CollectionSlot* slot) : engine_(e), slot_(slot), prefix_(slot->prefix) {}
    engine_type* engine_;
    CollectionSlot* slot_;
    std::string prefix_;
    std::vector<WriteOp> ops_;
  };
  /// An empty Batch for this collection (Database::batch() spans
  /// collections).
  Batch batch() { return Batch(&engine(), slot_); }

  /// get() for every key of the range, in order.
  template <class Range>
  std::vector<std::optional<Value>> get_batch(const Range& keys) const {
    std::vector<std::optional<Value>> out;
    for (const auto& key : keys) out.push_back(get(key));
    return out;
  }

  /// All records in ascending key order.
  range scan() const { return range(&engine(), first_key(), end_key(), prefix_.size()); }
  /// Records with from <= key, ascending.
  range scan(const Key& from) const { return range(&engine(), encode_lookup_key(from), end_key(), prefix_.size()); }
  /// Records with from <= key < to, ascending.
  range scan(const Key& from, const Key& to) const {
    return range(&engine(), encode_lookup_key(from), encode_lookup_key(to), prefix_.size());
  }

  /// Records whose keys start with prefix, ascending. prefix is string bytes
  /// for a std::string key (the keys that start with them), or for a
  /// std::pair or std::tuple key its first element or a std::tuple of its
  /// first elements (the keys whose leading elements equal them): see
  /// KeyPrefix.
  template <class P>
    requires KeyPrefix<Key, P>
  range scan_prefix(const P& prefix) const {
    auto [from, to] = prefix_bounds(prefix);
    return range(&engine(), std::move(from), std::move(to), prefix_.size());
  }

 private:
  // What an index's hook computes (IndexHook::entry_key) from a value
  // already decoded: appends the entry key for the record (pk, value).
  using EntryKeyOf = std::function<void(std::string_view pk, const Value& value, std::string& out)>;

 public:
  /// A secondary index of this collection (see index()): its records in
  /// the order of their index keys, IndexKey = what the index's extractor
  /// returns. A handle: cheap to copy, valid while the collection is.
  template <class IndexKey, bool Unique>
  class Index {
   public:
    /// What find() of a unique index returns, and ranges yield.
    using value_type = std::pair<Key, Value>;
    class iterator;
    class range;

    /// The record whose index key is k (a unique index), or the records
    /// whose index key is k, in the order of their keys (an index that is
    /// not unique).
    auto find(const IndexKey& k) const {
      if constexpr (Unique) {
        std::optional<value_type> out;
        const std::string entry = index_key(k);
        std::optional<std::string> pk;
        engine().find(entry, [&](std::string_view bytes, const std::filesystem::path*) { pk.emplace(bytes); });
        if (pk) out = record(*pk, entry);
        return out;
      } else {
        std::string from = index_key(k);
        std::optional<std::string> to = prefix_end(from);
        return range(*this, std::move(from), std::move(to));
      }
    }
    /// Every record with an index entry, in index key order.
    range scan() const { return range(*this, hook_->prefix, prefix_end(hook_->prefix)); }
    /// Records whose index key k satisfies from <= k < to, in index key order.
    range scan(const IndexKey& from, const IndexKey& to) const { return range(*this, index_key(from), index_key(to)); }
    /// Records whose index key starts with prefix (see KeyPrefix), in index
    /// key order.
    template <class P>
      requires KeyPrefix<IndexKey, P>
    range scan_prefix(const P& prefix) const {
      std::string from = hook_->prefix + encode_key_prefix<IndexKey>(prefix);
      std::optional<std::string> to = prefix_end(from);
      return range(*this, std::move(from), std::move(to));
    }
    /// Number of entries (records with an index key), counted by walking them.
    std::size_t size() const {
      typename engine_type::Cursor cursor(&engine(), hook_->prefix, prefix_end(hook_->prefix));
      std::size_t n = 0;
      for (; cursor.peek(); cursor.accept()) ++n;
      return n;
    }
    /// The index's name.
    const std::string& name() const { return hook_->name; }
    /// Whether it holds at most one record per index key.
    static constexpr bool unique = Unique;

    /// Forward iterator over the records of an index range: as
    /// Collection::iterator, it holds no lock between steps and sees
    /// writes made while it runs; a record whose index key changed since
    /// its entry was read is skipped.
    class iterator {
     public:
      using iterator_category = std::forward_iterator_tag;
      using value_type = std::pair<Key, Value>;
      using difference_type = std::ptrdiff_t;
      using pointer = const value_type*;
      using reference = const value_type&;
      /// The end iterator.
      iterator() = default;
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
      /// Two ends are equal; otherwise iterators at the same entry are.
      friend bool operator==(const iterator& a, const iterator& b) {
        if (!a.current_ || !b.current_) return !a.current_ == !b.current_;
        return a.cursor_.last() == b.cursor_.last();
      }

     private:
      friend class range;
      iterator(const Index& index, std::optional<std::string> from, std::optional<std::string> to)
          : index_(index), cursor_(&index.engine(), std::move(from), std::move(to)) {
        advance();
      }
      void advance() {
        current_.reset();
        while (cursor_.peek()) {
          const std::string entry(cursor_.key());
          const std::string pk(cursor_.value());
          cursor_.accept();
          if ((current_ = index_->record(pk, entry))) return;
        }
      }
      std::optional<Index> index_;  // a copy: the iterator outlives the handle and range it came from
      typename engine_type::Cursor cursor_;
      std::optional<value_type> current_;
    };

    /// What find() (of an index that is not unique) and scan() return.
    class range {
     public:
      /// A new pass from the range's start.
      iterator begin() const { return iterator(index_, from_, to_); }
      /// The end of every pass.
      iterator end() const { return iterator(); }

     private:
      friend class Index;
      range(const Index& index, std::optional<std::string> from, std::optional<std::string> to)
          : index_(index), from_(std::move(from)), to_(std::move(to)) {}
      Index index_;  // a copy: the range outlives the handle it came from
      std::optional<std::string> from_, to_;
    };

   private:
    friend class Collection;
    Index(Collection c, std::shared_ptr<const IndexHook> hook, std::shared_ptr<const EntryKeyOf> key_of)
        : c_(std::move(c)), hook_(std::move(hook)), key_of_(std::move(key_of)) {}
    engine_type& engine() const {
      engine_type& e = c_.engine();
      if (c_.slot_->dropped.load(std::memory_order_relaxed))
        throw ValidationError("stowage: index '" + hook_->name + "' was dropped with its collection");
      return e;
    }
    std::string index_key(const IndexKey& k) const {
      std::string out = hook_->prefix;
      encode_key(k, out);
      return out;
    }
    // The record pk as it is now, if its entry is still entry (a writer may
    // have changed it since the entry was read).
    // The value is decoded once: the entry key is worked out from the
    // decoded value (key_of_), which is then the one returned.
    std::optional<value_type> record(const std::string& pk, const std::string& entry) const {
      const engine_type& e = engine();
      std::optional<value_type> out;
      e.find(c_.prefix_ + pk, [&](std::string_view bytes, const std::filesystem::path* file) {
        Value v = deserialize(e, bytes, file);
        std::string now = hook_->prefix;
        (*key_of_)(pk, v, now);
        if (now == entry) out.emplace(decode_stored_key(e, pk, file), std::move(v));
      });
      return out;
    }
    Collection c_;
    std::shared_ptr<const IndexHook> hook_;
    std::shared_ptr<const EntryKeyOf> key_of_;  // hook_->entry_key on a decoded value
  };

  /// Declares the secondary index called name on this collection (or opens
  /// it again: an index is recorded in the MANIFEST by name, with its index
  /// key type and `version`) and returns it. extract is a pointer to a data
  /// member of Value, a function of `const Value&`, or a function of
  /// `(const Key&, const Value&)`; what it returns is the index key (any Key
  /// type). The index is kept in the same commit as each
  /// record from then on, by every handle of the collection in this process.
  ///
  /// It is built here (holding the collection's writers off, streaming the
  /// records in batches: memory stays bounded) when it is new, when its key
  /// type or version changed (give a new version whenever extract's meaning
  /// changes: the index is rebuilt, never silently stale), or when it is not
  /// ready: its build was interrupted, or a session wrote the collection
  /// without declaring it (such a write marks it stale first). Declare
  /// indexes before writing, in every session. Needs a store of several
  /// collections (a Database's). ConstraintError when a unique index finds
  /// two records with one key (the index is then not created).
  template <class Extract>
  auto index(std::string_view name, Extract extract, std::uint32_t version = 0) {
    return declare_index<false>(name, std::move(extract), version);
  }
  /// index() of a unique index: at most one record per index key; a write
  /// that would add a second one throws ConstraintError and writes nothing.
  template <class Extract>
  auto index(std::string_view name, Extract extract, unique_t, std::uint32_t version = 0) {
    return declare_index<true>(name, std::move(extract), version);
  }

  /// Keeps the earlier versions of this collection's records as rule says
  /// (see History), from now on, for every session: the rule is recorded in
  /// the MANIFEST (durably, before this returns) and every later put and
  /// erase of the collection, by any handle or process, writes a version in
  /// the same commit as the record (detail/index_ops.hpp), stamped with its
  /// commit's sequence and the time (Options::clock). The first call
  /// records every stored record as a version at the store's last sequence
  /// (streaming them, holding the collection's writers off). Versions the rule no
  /// longer keeps are hidden from history() and get_at() at once, and their
  /// space is reclaimed by compaction. Calling it again changes the rule
  /// (versions already dropped stay dropped); a rule that keeps nothing
  /// (History{}) stops history and erases every version. It waits for the
  /// collection's writers in flight. Needs a store of several collections (a
  /// Database's); ValidationError otherwise, in a read_only store, or for a
  /// keep_for below 0 or over about 3,000 years. A migration of the
  /// collection (Database::collection(name, migrations)) leaves its history
  /// with the old records (the backup collection); the migrated collection
  /// keeps none until this is called again.
  void keep_history(const History& rule) {
    engine_type& e = engine();
    if (prefix_.empty())
      throw ValidationError("stowage: history needs a store of several collections (a Database's); this one keeps "
                            "one (bare layout, written by Storage)");
    std::unique_lock gate(slot_->gate);
    e.keep_history(*slot_, rule);
  }
  /// What keep_history() last set (History{}: no history is kept).
  History history_kept() const {
    const auto hook = history_hook();
    return hook ? hook->rule : History{};
  }
  /// The sequence the history begins at (the store's last sequence when
  /// keep_history() first ran): get_at() answers for it and every later
  /// one. ValidationError when the collection keeps no history.
  std::uint64_t history_start() const { return kept_history_hook()->start; }

  /// The versions of key that the collection's history keeps, newest first
  /// (the current one first): what each put stored, or an erase (listed
  /// whether or not the key was stored, as the change feed lists it), with
  /// its commit's sequence number and time. A record stored when
  /// keep_history() began has a version at that sequence (the history's
  /// start). Read at one moment (a snapshot): a write made while it runs is
  /// either wholly in or out. ValidationError when the collection keeps no
  /// history.
  std::vector<Version<Value>> history(const Key& key) const {
    const auto hook = kept_history_hook();
    const engine_type& e = engine();
    std::vector<Version<Value>> out;
    const Snapshot at = e.snapshot();
    walk_history(*hook, key, at, [&](const detail::HistoryEntry& h, bool kept, const std::filesystem::path* file) {
      if (!kept) return false;
      Version<Value> v;
      v.sequence = h.sequence;
      v.time = std::chrono::system_clock::time_point(std::chrono::microseconds(static_cast<std::int64_t>(h.micros)));
      v.erased = h.erased;
      if (!h.erased) v.value = deserialize(e, h.value, file);
      out.push_back(std::move(v));
      return true;
    });
    return out;
  }

  /// The value key had just after commit `sequence` (a sequence number as
  /// snapshots, Stats::last_sequence and the change feed give them), read
  /// from the collection's history: std::nullopt when key was not stored
  /// then. A sequence after the last commit reads the present. Throws
  /// ValidationError when the history cannot answer: the collection keeps
  /// none, `sequence` is before keep_history() began, or the version it asks
  /// for is one the rule no longer keeps.
  std::optional<Value> get_at(const Key& key, std::uint64_t sequence) const {
    const auto hook = kept_history_hook();
    const engine_type& e = engine();
    if (sequence < hook->start)
      throw ValidationError("stowage: get_at(" + describe_key(encode_lookup_key(key).substr(prefix_.size())) + ", " +
                            std::to_string(sequence) + "): the history of collection '" + slot_->name +
                            "' begins after sequence " + std::to_string(hook->start));
    const Snapshot at = e.snapshot();
    std::optional<Value> out;
    bool found = false, gone = false;
    walk_history(*hook, key, at, [&](const detail::HistoryEntry& h, bool kept, const std::filesystem::path* file) {
      if (!kept) {  // a version the rule drops, or a cut marker: older ones are not known
        gone = true;
        return false;
      }
      if (h.sequence <= sequence) {
        found = true;
        if (!h.erased) out = deserialize(e, h.value, file);
        return false;
      }
      return true;
    });
    if (found) return out;
    if (gone)
      throw ValidationError("stowage: get_at(" + describe_key(encode_lookup_key(key).substr(prefix_.size())) + ", " +
                            std::to_string(sequence) + "): collection '" + slot_->name +
                            "' no longer keeps that version (History keeps " + describe_rule(hook->rule) + ")");
    // Every version since the start is listed, and a record stored at the
    // start has one there (the baseline): the key was not stored then.
    return std::nullopt;
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
    auto [from, to] = prefix_bounds(prefix);
    return count_encoded(std::move(from), std::move(to));
  }

  /// Number of records (exact). Records whose presence below is not known
  /// yet (written since the last flush began, or flushed uncounted and not
  /// yet met by a compaction: Stats::uncounted_records) are looked up in the
  /// files, each once, with no lock held that writers or readers need.
  /// In a store of several collections (the prefixed layout: a Database's)
  /// it counts the collection's keys as count() does, in time linear in
  /// their number.
  std::size_t size() const {
    if (prefix_.empty()) return engine().size();
    return count_encoded(first_key(), end_key());
  }
  /// size() == 0, found as a scan's first step: no count, no value decoded.
  bool empty() const {
    typename engine_type::Cursor cursor(&engine(), first_key(), end_key());
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

  /// Calls fn(const Change<Key, Value>&) for every put and erase of this
  /// collection committed after `sequence`, in commit order (a batch's
  /// operations one by one), up to the store's last commit when the call
  /// began, and returns that commit's sequence: pass it to the next call to
  /// follow the collection from there (a follower tails it so; 0 starts at
  /// the first commit still kept). Reaches back as far as the live WAL (the
  /// commits since the last flush) and, with Options::change_feed_bytes,
  /// the released WAL kept for it, across restarts. Commits after
  /// `sequence` that are no longer kept are a ValidationError, never a
  /// silent gap; so is a sequence after the last commit. A migration that
  /// rewrites the records ends the feed (its older changes are dropped).
  /// Writers wait for none of it.
  template <class Fn>
  std::uint64_t changes_since(std::uint64_t sequence, Fn&& fn) const {
    const engine_type& eng = engine();
    const auto rule = expiry_rule();
    return eng.changes_since(sequence, prefix_,
                             [&](std::uint64_t seq, bool erased, std::string_view key, std::string_view value) {
                               Change<Key, Value> c;
                               c.sequence = seq;
                               c.erased = erased;
                               decode_stored_key_into(eng, key, c.key, nullptr);
                               if (!erased) {
                                 const detail::Expiring v = detail::feed_value(rule.get(), seq, value);
                                 c.value = deserialize(eng, v.value, nullptr);
                                 c.expires = detail::expiry_point(v.expires);
                               }
                               fn(static_cast<const Change<Key, Value>&>(c));
                             });
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
    friend class Collection;
    iterator(const engine_type* e, std::optional<std::string> from, std::optional<std::string> to, bool reverse,
             std::size_t skip, const Snapshot* at)
        : engine_(e), cursor_(e, std::move(from), std::move(to), reverse, at), skip_(skip) {
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
        const std::string_view key = cursor_.key().substr(skip_);
        if (current_) {
          decode_stored_key_into(e, key, current_->first, file);
          deserialize_into(e, cursor_.value(), current_->second, file);
        } else {
          current_.emplace(decode_stored_key(e, key, file), deserialize(e, cursor_.value(), file));
        }
      } catch (...) {
        current_.reset();
        throw;
      }
      cursor_.accept();
    }

    const engine_type* engine_ = nullptr;
    typename engine_type::Cursor cursor_;
    std::size_t skip_ = 0;  // the collection prefix's bytes, before each key
    std::optional<value_type> current_;
  };

  /// What scan() and scan_prefix() return: begin() starts a new pass each
  /// time it is called.
  class range {
   public:
    /// A new pass from the range's start (its end, when reversed).
    iterator begin() const { return iterator(engine_, from_, to_, reverse_, skip_, at_ ? &at_ : nullptr); }
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
    friend class Collection;
    range(const engine_type* e, std::optional<std::string> from, std::optional<std::string> to, std::size_t skip,
          const Snapshot* at = nullptr)
        : engine_(e), from_(std::move(from)), to_(std::move(to)), skip_(skip) {
      if (at != nullptr) at_ = *at;
    }
    const engine_type* engine_;
    std::optional<std::string> from_, to_;
    std::size_t skip_;
    bool reverse_ = false;
    Snapshot at_;  // reads at this moment (empty: now)
  };

  /// The collection's records as they were at a snapshot (snapshot(), at()):
  /// read-only, consistent, unchanged by later writes. A scan of it sees
  /// none of the writes made during the scan; get_batch reads every key at
  /// the same moment. A handle: cheap to copy; valid while its store is
  /// open and its Snapshot lives (it holds one).
  class View {
   public:
    /// The value stored under key at the snapshot, or std::nullopt.
    std::optional<Value> get(const Key& key) const { return c_.get_in(key, &at_); }
    /// Whether key was stored at the snapshot.
    bool contains(const Key& key) const {
      return c_.engine().find_at(at_, c_.encode_lookup_key(key), [](std::string_view, const std::filesystem::path*) {});
    }
    /// get() for every key of the range, in order, all at the snapshot.
    template <class Range>
    std::vector<std::optional<Value>> get_batch(const Range& keys) const {
      std::vector<std::optional<Value>> out;
      for (const auto& key : keys) out.push_back(get(key));
      return out;
    }
    /// All records at the snapshot, ascending.
    range scan() const { return range(&c_.engine(), c_.first_key(), c_.end_key(), c_.prefix_.size(), &at_); }
    /// Records with from <= key, ascending.
    range scan(const Key& from) const {
      return range(&c_.engine(), c_.encode_lookup_key(from), c_.end_key(), c_.prefix_.size(), &at_);
    }
    /// Records with from <= key < to, ascending.
    range scan(const Key& from, const Key& to) const {
      return range(&c_.engine(), c_.encode_lookup_key(from), c_.encode_lookup_key(to), c_.prefix_.size(), &at_);
    }
    /// Records whose keys start with prefix (see Collection::scan_prefix).
    template <class P>
      requires KeyPrefix<Key, P>
    range scan_prefix(const P& prefix) const {
      auto [from, to] = c_.prefix_bounds(prefix);
      return range(&c_.engine(), std::move(from), std::move(to), c_.prefix_.size(), &at_);
    }
    /// Number of records with from <= key < to at the snapshot.
    std::size_t count(const Key& from, const Key& to) const {
      return c_.count_encoded(c_.encode_lookup_key(from), c_.encode_lookup_key(to), &at_);
    }
    /// Number of records whose keys start with prefix, at the snapshot.
    template <class P>
      requires KeyPrefix<Key, P>
    std::size_t count_prefix(const P& prefix) const {
      auto [from, to] = c_.prefix_bounds(prefix);
      return c_.count_encoded(std::move(from), std::move(to), &at_);
    }
    /// Number of records at the snapshot (exact). A Storage's: counted once
    /// per snapshot, from the store's count of its files plus the write
    /// buffer's records; a Database collection's: by walking its keys.
    std::size_t size() const {
      if (c_.prefix_.empty()) return c_.engine().size_at(at_);
      return c_.count_encoded(c_.first_key(), c_.end_key(), &at_);
    }
    /// size() == 0, found as a scan's first step.
    bool empty() const {
      typename engine_type::Cursor cursor(&c_.engine(), c_.first_key(), c_.end_key(), false, &at_);
      return !cursor.peek();
    }
    /// The snapshot it reads at.
    const Snapshot& snapshot() const { return at_; }
    /// The sequence number of the last commit it sees.
    std::uint64_t sequence() const { return at_.sequence(); }

   private:
    friend class Collection;
    View(const Collection& c, Snapshot at) : c_(c), at_(std::move(at)) {}
    Collection c_;
    Snapshot at_;
  };

  /// A snapshot of the store (Snapshot: every commit so far, none after),
  /// viewed through this collection. Cheap: it pins, it copies nothing.
  /// For several collections of a Database at one moment, take one
  /// Database::snapshot() and view each with at().
  View snapshot() const { return View(*this, engine().snapshot()); }
  /// This collection's records at `snapshot`, a snapshot of its store
  /// (Database::snapshot() or another collection's View::snapshot()).
  /// Reading through it throws ValidationError for an empty snapshot or
  /// one of another store.
  View at(const Snapshot& snapshot) const { return View(*this, snapshot); }

 protected:
  template <class C, class E, class L>
  friend class Database;

  // A handle to the records of slot (a collection of e).
  Collection(engine_type* e, CollectionSlot* slot) : engine_(e), slot_(slot), prefix_(slot->prefix) {}

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

  // The engine; ValidationError once this handle was moved from (or refers
  // to nothing) or its collection was dropped.
  engine_type& engine() const {
    if (!engine_)
      throw ValidationError("stowage: this Storage or Collection was moved from (or never opened); use the one it "
                            "was moved to");
    if (slot_->dropped.load(std::memory_order_relaxed))
      throw ValidationError("stowage: collection '" + slot_->name + "' was dropped");
    return *engine_;
  }

  std::string encode_lookup_key(const Key& key) const {
    std::string k = prefix_;
    encode_key(key, k);
    return k;
  }

  // Runs plain(engine) for a write when the collection has no index and
  // keeps no history (under its gate, shared, in a store of several
  // collections), else indexed(engine) under the gate held exclusively
  // (detail/index_ops.hpp), after marking stale the recorded indexes this
  // session has not declared. A blind write (it reads nothing: a put, a
  // discard, a put_batch) of a collection that keeps history and has no
  // index runs indexed(engine) under the gate shared: its versions need no
  // read, so concurrent writers still share commits (and syncs).
  static constexpr bool kBlind = true;
  template <class Plain, class Indexed>
  decltype(auto) guarded(Plain&& plain, Indexed&& indexed, bool blind = false) const {
    engine_type& e = engine();
    if (prefix_.empty()) return plain(e);  // a bare store: no indexes
    {
      std::shared_lock gate(slot_->gate);
      if (!slot_->indexed.load(std::memory_order_acquire)) return plain(e);
      if (blind && detail::reads_nothing(*slot_)) return indexed(e);
    }
    std::unique_lock gate(slot_->gate);
    e.mark_stale(*slot_);
    if (slot_->hooks.empty() && !slot_->history && !slot_->expiry) {
      slot_->indexed.store(false, std::memory_order_release);
      return plain(e);
    }
    return indexed(e);
  }
  // Commits ops (of this collection) with the index entries they change.
  // The caller holds the gate exclusively.
  void commit_indexed(engine_type& e, std::vector<WriteOp> ops) const {
    std::vector<std::size_t> mine(ops.size());
    for (std::size_t i = 0; i < ops.size(); ++i) mine[i] = i;
    if (slot_->hooks.empty() && !slot_->history) {  // no entries to add (expiry at most): no copy
      detail::apply_expiry(e, *slot_, mine, ops);
      if (ops.size() == 1 && !ops[0].erase)
        e.put(ops[0].key, ops[0].value);
      else
        e.write(ops);
      return;
    }
    std::vector<WriteOp> all = ops;
    detail::expand_index_ops(e, *slot_, ops, mine, all);
    detail::expand_history_ops(e, *slot_, ops, mine, all);
    detail::apply_expiry(e, *slot_, mine, all);
    e.write(all);
  }
  // insert() and update(): Engine::read_modify_write, or with indexes a read
  // and a commit under the exclusive gate (no other writer between).
  template <class Decide>
  WriteDecision read_modify_write(const std::string& k, Decide& decide) {
    return guarded([&](engine_type& e) { return e.read_modify_write(k, DecideRef(decide)).decision; },
                   [&](engine_type& e) {
                     std::optional<std::string> current;
                     e.find(k, [&](std::string_view bytes, const std::filesystem::path*) { current.emplace(bytes); });
                     std::string next;
                     const WriteDecision d = decide(current ? &*current : nullptr, next);
                     if (d == WriteDecision::put) commit_indexed(e, {WriteOp{false, k, std::move(next)}});
                     if (d == WriteDecision::erase) commit_indexed(e, {WriteOp{true, k, {}}});
                     return d;
                   });
  }
  // erase_range() and erase_prefix(): Engine::erase_range, or with indexes
  // batches of kEraseRangeBatch keys committed with their index entries.
  std::size_t erase_encoded_range(std::optional<std::string> from, std::optional<std::string> to) {
    return guarded([&](engine_type& e) { return e.erase_range(from, to); },
                   [&](engine_type& e) {
                     return detail::walk_in_batches(
                         e, from, to,
                         [](std::string_view key, std::string_view, std::vector<WriteOp>& ops) {
                           ops.push_back(WriteOp{true, std::string(key), {}});
                         },
                         [&](std::vector<WriteOp>&& ops) { commit_indexed(e, std::move(ops)); });
                   });
  }
  // The collection's first possible key, and the smallest key above all of
  // its keys (nullopt: none, in a bare store).
  std::optional<std::string> first_key() const {
    if (prefix_.empty()) return std::nullopt;
    return prefix_;
  }
  std::optional<std::string> end_key() const {
    if (prefix_.empty()) return std::nullopt;
    return prefix_end(prefix_);
  }
  // The bounds of the keys that start with prefix (scan_prefix).
  template <class P>
  std::pair<std::optional<std::string>, std::optional<std::string>> prefix_bounds(const P& prefix) const {
    std::string p = prefix_ + encode_key_prefix<Key>(prefix);
    std::optional<std::string> end = prefix_end(p);
    return {std::move(p), std::move(end)};
  }

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

  // A put's ttl in microseconds: ValidationError unless it is more than 0
  // (and within kMaxExpiryMicros).
  static std::uint64_t checked_ttl(std::chrono::microseconds ttl) {
    if (ttl.count() <= 0 || static_cast<std::uint64_t>(ttl.count()) > detail::kMaxExpiryMicros)
      throw ValidationError("stowage: a put's time to live must be more than 0 and at most " +
                            std::to_string(detail::kMaxExpiryMicros / 1000000) + " s (got " +
                            std::to_string(ttl.count()) + " us)");
    return static_cast<std::uint64_t>(ttl.count());
  }
  // Makes slot's collection expire records when it does not yet (see
  // set_default_ttl; the default TTL stays 0).
  static void expire_records(engine_type& e, CollectionSlot& slot) {
    {
      std::shared_lock gate(slot.gate);
      if (slot.expiry) return;
    }
    std::unique_lock gate(slot.gate);
    if (!slot.expiry) e.set_expiry(slot, 0);
  }
  // A put of value under key into slot's collection (its prefix) that
  // expires ttl after its commit (put, Batch::put and Database::Batch::put
  // with a ttl): the key, the value and the ttl are checked first, then
  // the collection is made to expire records.
  static WriteOp expiring_put(engine_type& e, CollectionSlot& slot, const std::string& prefix, const Key& key,
                              const Value& value, std::chrono::microseconds ttl) {
    WriteOp op{false, encode_checked_key(e, prefix, key), serialize_checked(e, value)};
    op.ttl = checked_ttl(ttl);
    expire_records(e, slot);
    return op;
  }
  // The collection's expiry (nullptr: it does not expire records), read
  // under its gate.
  std::shared_ptr<const detail::ExpiryRule> expiry_rule() const {
    engine();
    std::shared_lock gate(slot_->gate);
    return slot_->expiry;
  }

  // The collection's history hook (nullptr: none), read under its gate.
  std::shared_ptr<const detail::HistoryHook> history_hook() const {
    engine();
    std::shared_lock gate(slot_->gate);
    return slot_->history;
  }
  // history_hook(), or ValidationError when the collection keeps no history.
  std::shared_ptr<const detail::HistoryHook> kept_history_hook() const {
    auto hook = history_hook();
    if (!hook)
      throw ValidationError("stowage: collection '" + slot_->name + "' keeps no history (see keep_history)");
    return hook;
  }
  static std::string describe_rule(const History& r) {
    std::string out;
    if (r.versions != 0) out = std::to_string(r.versions) + " versions";
    if (r.keep_for.count() > 0) out += (out.empty() ? "" : ", ") + std::to_string(r.keep_for.count()) + " s";
    return out;
  }
  // Calls fn(entry, kept, file) for key's history entries at `at`, newest
  // first, while it returns true; kept says whether the rule still keeps
  // the entry (judged now).
  template <class Fn>
  void walk_history(const detail::HistoryHook& hook, const Key& key, const Snapshot& at, Fn&& fn) const {
    const engine_type& e = engine();
    const std::string head = detail::history_group(hook.prefix, encode_lookup_key(key).substr(prefix_.size()));
    const std::uint64_t now = detail::now_micros(e.options());
    typename engine_type::Cursor cursor(&e, head, prefix_end(head), false, &at);
    std::size_t rank = 0;
    for (; cursor.peek(); cursor.accept()) {
      const std::string_view k = cursor.key();
      if (k.size() != head.size() + detail::kStampBytes)
        throw CorruptionError(cursor.file() ? *cursor.file() : std::filesystem::path{}, 0,
                              "a history entry of collection '" + slot_->name + "' has a key of " +
                                  std::to_string(k.size()) + " bytes where " +
                                  std::to_string(head.size() + detail::kStampBytes) + " belong");
      const detail::HistoryEntry h = detail::decode_history_entry(k.substr(head.size()), cursor.value(), cursor.file());
      if (!fn(h, !h.cut && detail::history_keeps(hook.rule, ++rank, h.micros, now), cursor.file())) return;
    }
  }

  // get(), or View::get() with `at`.
  std::optional<Value> get_in(const Key& key, const Snapshot* at) const {
    std::optional<Value> out;
    const engine_type& e = engine();
    auto take = [&](std::string_view bytes, const std::filesystem::path* file) { out = deserialize(e, bytes, file); };
    if (at != nullptr)
      e.find_at(*at, encode_lookup_key(key), take);
    else
      e.find(encode_lookup_key(key), take);
    return out;
  }

  std::size_t count_encoded(std::optional<std::string> from, std::optional<std::string> to,
                            const Snapshot* at = nullptr) const {
    typename engine_type::Cursor cursor(&engine(), std::move(from), std::move(to), false, at);
    std::size_t n = 0;
    while (cursor.peek()) {
      ++n;
      cursor.accept();
    }
    return n;
  }

  template <bool Unique, class Extract>
  auto declare_index(std::string_view name, Extract extract, std::uint32_t version) {
    constexpr bool with_key = std::is_invocable_v<const Extract&, const Key&, const Value&>;
    static_assert(with_key || std::is_invocable_v<const Extract&, const Value&>,
                  "stowage: an index's extractor must be a pointer to a data member of Value, or callable with "
                  "(const Value&) or (const Key&, const Value&)");
    using IndexKey = typename decltype([] {
      if constexpr (with_key)
        return std::type_identity<std::remove_cvref_t<std::invoke_result_t<const Extract&, const Key&, const Value&>>>{};
      else
        return std::type_identity<std::remove_cvref_t<std::invoke_result_t<const Extract&, const Value&>>>{};
    }())::type;
    static_assert(EncodableKey<IndexKey>,
                  "stowage: an index key (what the index's extractor returns) needs an order-preserving "
                  "KeyCodec, as a Key does");
    engine_type& e = engine();
    std::unique_lock gate(slot_->gate);
    bool build = false;
    CollectionSlot& is = e.declare_index(*slot_, name, KeyCodec<IndexKey>::name(), Unique, version, build);
    auto hook = std::make_shared<IndexHook>();
    hook->id = is.id;
    hook->name = std::string(name);
    hook->prefix = is.prefix;
    hook->unique = Unique;
    auto key_of = std::make_shared<const EntryKeyOf>(
        [extract = std::move(extract)](std::string_view pk, const Value& v, std::string& out) {
          if constexpr (with_key)
            encode_key(std::invoke(extract, decode_key<Key>(pk), v), out);
          else
            encode_key(std::invoke(extract, v), out);
          if constexpr (!Unique) out.append(pk);
        });
    hook->entry_key = [key_of, path = e.path()](std::string_view pk, std::string_view bytes, std::string& out) {
      Value v;
      try {
        v = Serializer::template deserialize<Value>(bytes);
      } catch (const CorruptionError& err) {
        throw CorruptionError(path, 0, std::string("a stored value does not decode as this Value type: ") + err.what());
      }
      (*key_of)(pk, v, out);
    };
    if (build) build_index(e, is, *hook);
    std::erase_if(slot_->hooks, [&](const auto& h) { return h->id == hook->id; });
    slot_->hooks.push_back(hook);
    slot_->indexed.store(true, std::memory_order_release);
    return Index<IndexKey, Unique>(*this, std::move(hook), std::move(key_of));
  }

  // Writes the entries of index `is` for every record (the gate held
  // exclusively), a batch of kEraseRangeBatch records at a time, then marks
  // it ready. On failure the index is forgotten and its entries erased.
  void build_index(engine_type& e, CollectionSlot& is, const IndexHook& hook) {
    const std::optional<std::string> end = prefix_end(is.prefix);
    try {
      e.erase_range(is.prefix, end);  // entries of an earlier definition
      std::set<std::string> batch_keys;  // a batch's unique entries, not yet written
      detail::walk_in_batches(
          e, first_key(), end_key(),
          [&](std::string_view key, std::string_view value, std::vector<WriteOp>& ops) {
            const std::string_view pk = key.substr(prefix_.size());
            std::string entry = detail::index_entry(hook, pk, value);
            if (hook.unique && (!batch_keys.insert(entry).second ||
                                e.find(entry, [](std::string_view, const std::filesystem::path*) {})))
              throw ConstraintError("stowage: unique index '" + hook.name + "' of collection '" + slot_->name +
                                    "' cannot be built: two records have the index key " +
                                    detail::hex_key(std::string_view(entry).substr(is.prefix.size())));
            ops.push_back(WriteOp{false, std::move(entry), std::string(pk)});
          },
          [&](std::vector<WriteOp>&& ops) {
            e.write(ops);
            batch_keys.clear();
          });
      // The entries durable before the MANIFEST says the index is ready:
      // under Durability::none a power cut could otherwise keep the mark
      // and lose the entries (power_loss_test [indexes]).
      e.flush();
      e.index_built(is);
    } catch (...) {
      try {
        e.erase_range(is.prefix, end);
        e.forget_index(is);
      } catch (...) {  // the index stays not ready: the next declaration builds it again
      }
      throw;
    }
  }

  // Encoded within the limits (ValidationError otherwise), checked before
  // anything else happens, so a batch with one bad element stores nothing.
  std::string encode_checked_key(const Key& key) const { return encode_checked_key(engine(), prefix_, key); }
  static std::string encode_checked_key(const engine_type& eng, const std::string& prefix, const Key& key) {
    std::string k = prefix;
    encode_key(key, k);
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

  engine_type* engine_ = nullptr;         // null: moved from, or never opened
  CollectionSlot* slot_ = nullptr;        // the collection's (the engine's), null when engine_ is
  std::string prefix_;                    // the bytes every key starts with
};

}  // namespace stowage
