// SPDX-License-Identifier: BSL-1.0
// cache.hpp: the block cache. It holds immutable decoded objects (data blocks,
// open-chunk metadata) as std::shared_ptr<const void>, each with an exact byte
// charge given by the caller, keyed by (file, offset), under a byte capacity.
// Which entry to drop is decided by an Eviction policy (eviction.hpp).
//
// Invariant: the cache is split into shards by key hash; shard i has a share
// of the capacity (the shares sum to capacity()) and, whenever its mutex is
// free, the charges of its entries sum to at most that share. An object whose
// charge exceeds its shard's share is handed back to the caller but not kept.
// Every entry is in exactly one shard's map, its eviction queue and its
// per-file list. Charges are exactly what callers pass (the cache's own
// bookkeeping, about 170 bytes per entry, is not counted).
//
// Priorities: an entry is inserted at CachePriority::low (data blocks) or
// CachePriority::high (chunk metadata: block index and Bloom filter, which
// every lookup of the chunk needs and which cost a file open and a meta
// block parse to rebuild). Each priority has its own eviction queue; a shard
// evicts low entries first, and high ones only while they hold more than
// three quarters (kHighShareQuarters / 4) of the shard's capacity or no low
// entry is left. So a stream of data blocks cannot push metadata out, yet
// data blocks keep at least a quarter of the capacity whenever metadata
// would take more.
//
// Objects evicted while readers still hold them stay alive through their
// shared_ptr; the cache only drops its own reference. A hit hands out a
// shared_ptr that shares ownership of the entry (the entry and its reference
// count are one allocation, and the entry holds the object), so a hit
// increments a count on a cache line it has just read, not the object's own
// count, which every key holding the same object would share. An entry's
// object never changes: insert() over an existing key makes a new entry.
//
// File numbers must not be reused after erase_file(): a load that was running
// when the file was erased may still insert its (now unreachable) block,
// which then simply ages out.
//
// Locking, per member of BlockCache (a shard's lock is a spin lock that
// yields the CPU when it waits long, ShardLock; "mutex" below means it):
//   - constructor, destructor: no locking; no other thread may use the cache.
//   - lookup, insert, get_or_load: lock the key's shard only, and never while
//     calling load() or destroying evicted objects.
//   - erase_file, set_capacity, stats: lock the shards one at a time, never
//     two at once (so they never deadlock and readers of other shards go on).
//   - capacity: no lock (an atomic).
//   - set_capacity (and the constructor) also hold capacity_mutex_ around
//     the shard locks, so concurrent resizes apply whole; no path takes a
//     shard mutex and then capacity_mutex_.
// Shard mutexes are never held while calling user code other than the
// eviction queue and shared_ptr reference counting.
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/intrusive/list.hpp>

#include "error.hpp"
#include "eviction.hpp"

namespace stowage::detail {

/// Which eviction queue an entry joins; see the top of cache.hpp.
enum class CachePriority : std::uint8_t {
  /// Evicted first (data blocks).
  low,
  /// Evicted only past three quarters of the capacity or when nothing low is
  /// left (chunk metadata).
  high,
};

/// Names a cached object: the file it was read from and its byte offset there.
struct CacheKey {
  /// File number (never reused once the file is deleted).
  std::uint64_t file = 0;
  /// Byte offset of the object inside the file.
  std::uint64_t offset = 0;
  /// Field-wise equality.
  bool operator==(const CacheKey&) const = default;
};

/// A well-mixed 64-bit hash of a CacheKey (used for both shard choice and the
/// shard's hash map, and handed to eviction policies as Entry::hash).
inline std::uint64_t hash_cache_key(const CacheKey& k) noexcept {
  std::uint64_t h = k.file * 0x9E3779B97F4A7C15ULL ^ k.offset;
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDULL;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ULL;
  h ^= h >> 33;
  return h;
}

/// Hash functor over CacheKey for unordered containers.
struct CacheKeyHash {
  /// hash_cache_key(k), narrowed to size_t.
  std::size_t operator()(const CacheKey& k) const noexcept { return static_cast<std::size_t>(hash_cache_key(k)); }
};

/// A snapshot of the cache's counters, summed over shards.
struct CacheStats {
  /// Lookups that found their key.
  std::uint64_t hits = 0;
  /// Lookups that did not.
  std::uint64_t misses = 0;
  /// Entries dropped to make room (capacity pressure or set_capacity), not
  /// counting replacements or erase_file.
  std::uint64_t evictions = 0;
  /// Objects stored (including replacements; not those too large to keep).
  std::uint64_t inserts = 0;
  /// Sum of the charges of the entries held now.
  std::size_t bytes = 0;
  /// Number of entries held now.
  std::size_t entries = 0;
  /// Of `bytes`, the charges of CachePriority::high entries.
  std::size_t high_bytes = 0;
  /// The byte capacity.
  std::size_t capacity = 0;
};

/// A sharded, byte-bounded cache of immutable objects; see the top of
/// cache.hpp for its invariant and locking rules.
template <class Eviction>
class BlockCache {
  static_assert(EvictionPolicy<Eviction>,
                "stowage::BlockCache<Eviction>: Eviction is not a stowage::EvictionPolicy (it needs name, hook and "
                "queue<Entry> with insert/touch/erase/victim; see stowage/eviction.hpp)");
  // After a failed static_assert, fall back to LRU so the compiler reports
  // that one line and not a cascade from the class body.
  using Policy = std::conditional_t<EvictionPolicy<Eviction>, Eviction, LruEviction>;

 public:
  /// The eviction policy in use.
  using eviction_type = Eviction;

  /// An empty cache of capacity_bytes split over `shards` shards (at least
  /// one; throws ValidationError for zero).
  explicit BlockCache(std::size_t capacity_bytes, std::size_t shards = 16)
      : shard_count_(shards == 0 ? throw ValidationError("stowage: BlockCache needs at least one shard, got 0")
                                 : shards),
        shard_mask_((shard_count_ & (shard_count_ - 1)) == 0 ? shard_count_ - 1 : 0),
        shards_(new Shard[shard_count_]) {
    // A policy whose queues can learn together does so across the shards
    // (their low-priority queues: the same kind of blocks, split by hash).
    using Queue = typename Policy::template queue<Entry>;
    if constexpr (requires(Queue& q, std::size_t n) { q.share(q, n); })
      for (std::size_t i = 1; i < shard_count_; ++i) shards_[i].queue.share(shards_[0].queue, shard_count_);
    apply_capacity(capacity_bytes);
  }

  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  /// Of each shard's capacity, the share high-priority entries may keep when
  /// low ones need room (numerator over 4: three quarters).
  static constexpr std::size_t kHighShareQuarters = 3;

  /// The object cached under k cast to T (the type it was stored as), or
  /// nullptr. Counts a hit or a miss; touch=false leaves the entry's recency
  /// alone (for scans).
  template <class T>
  std::shared_ptr<const T> lookup(const CacheKey& k, bool touch = true) {
    const std::uint64_t h = hash_cache_key(k);
    Shard& s = shard_for(h);
    std::lock_guard lock(s.mutex);
    Entry* e = s.entries.find(k, h);
    if (e == nullptr) {
      ++s.misses;
      return nullptr;
    }
    ++s.hits;
    if (touch) s.queue_of(*e).touch(*e);
    return std::shared_ptr<const T>(e->self, static_cast<const T*>(e->object));
  }

  /// Stores value under k with the given byte charge and priority, replacing
  /// any entry for k, then evicts victims until the shard fits its share. A
  /// null value, or one whose charge exceeds the shard's share, is not kept
  /// (and any old entry for k is dropped).
  void insert(const CacheKey& k, std::shared_ptr<const void> value, std::size_t charge,
              CachePriority priority = CachePriority::low) {
    const std::uint64_t h = hash_cache_key(k);
    Shard& s = shard_for(h);
    // Objects dropped here are destroyed after the lock is released (as is
    // the new entry, with `value`, when it is not kept).
    Garbage garbage;
    std::shared_ptr<Entry> fresh;
    if (value != nullptr) {
      fresh = std::make_shared<Entry>();
      fresh->key = k;
      fresh->object = value.get();
      fresh->hash = h;
      fresh->charge = charge;
      fresh->high = priority == CachePriority::high;
      fresh->value = std::move(value);
    }
    std::lock_guard lock(s.mutex);
    Entry* found = s.entries.find(k, h);
    if (fresh == nullptr || charge > s.capacity) {
      if (found != nullptr) s.remove(*found, garbage);
      return;
    }
    Entry& e = *fresh;
    if (found != nullptr) {
      // e takes found's slot and place in its file's list (no allocation);
      // readers still holding found keep it, and its object, alive.
      s.entries.replace(*found, e);
      FileList& list = s.files.find(k.file)->second;
      list.insert(list.iterator_to(*found), e);
      list.erase(list.iterator_to(*found));
      s.unlink(*found);
      s.release(*found, garbage);
    } else {
      s.entries.add(e);
      try {
        auto [fpos, finserted] = s.files.try_emplace(k.file);
        fpos->second.push_back(e);
      } catch (...) {
        s.entries.erase(e);
        throw;
      }
    }
    e.self = std::move(fresh);
    try {
      s.link(e);
    } catch (...) {  // the policy's insert threw: the entry goes
      s.drop_unlinked(e, garbage);
      throw;
    }
    ++s.inserts;
    s.evict_to_fit(garbage);
  }

  /// lookup<T>(k, fill); on a miss calls load() -> std::pair<std::shared_ptr<
  /// const T>, std::size_t charge> without holding any lock, and inserts the
  /// result (at `priority`) if fill is true and the object is not null.
  /// fill=false (scans) neither inserts nor touches, so blocks read once do
  /// not push hot ones out. If load throws, nothing is inserted and the
  /// exception propagates. Concurrent misses on one key may each call load;
  /// the last insert wins.
  template <class T, class Load>
    requires std::invocable<Load&&>
  std::shared_ptr<const T> get_or_load(const CacheKey& k, Load&& load, bool fill = true,
                                       CachePriority priority = CachePriority::low) {
    if (auto hit = lookup<T>(k, fill)) return hit;
    auto loaded = std::invoke(std::forward<Load>(load));
    std::shared_ptr<const T> value = std::move(loaded.first);
    const std::size_t charge = loaded.second;
    if (fill && value != nullptr) insert(k, value, charge, priority);
    return value;
  }

  /// Drops every entry of `file` (called after a chunk file is deleted).
  void erase_file(std::uint64_t file) {
    for (std::size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      Garbage garbage;
      std::lock_guard lock(s.mutex);
      auto fit = s.files.find(file);
      if (fit == s.files.end()) continue;
      // remove() erases the file's list once it empties, so stop on the last.
      bool last = false;
      while (!last) {
        Entry& e = fit->second.front();
        last = &e == &fit->second.back();
        s.remove(e, garbage);
      }
    }
  }

  /// Drops every entry whose key satisfies pred(const CacheKey&), as one
  /// batch per shard; returns how many. (The engine drops the blocks of a
  /// form its gets no longer read at once: evicted one by one, they left
  /// holes in the heap that blocks of the new form did not fit.)
  template <class Pred>
  std::size_t erase_if(Pred pred) {
    std::size_t n = 0;
    std::vector<Entry*> doomed;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      Garbage garbage;
      std::lock_guard lock(s.mutex);
      doomed.clear();
      s.entries.for_each([&](Entry& e) {
        if (pred(static_cast<const CacheKey&>(e.key))) doomed.push_back(&e);
      });
      garbage.reserve(doomed.size());
      for (Entry* e : doomed) s.remove(*e, garbage);
      n += doomed.size();
    }
    return n;
  }

  /// Sets the byte capacity, evicting from each shard until it fits its new
  /// share.
  void set_capacity(std::size_t bytes) { apply_capacity(bytes); }

  /// The byte capacity.
  std::size_t capacity() const { return capacity_.load(std::memory_order_relaxed); }

  /// The counters summed over shards (each shard read under its own lock, so
  /// the sum is not one atomic snapshot while other threads are active).
  CacheStats stats() const {
    CacheStats out;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      const Shard& s = shards_[i];
      std::lock_guard lock(s.mutex);
      out.hits += s.hits;
      out.misses += s.misses;
      out.evictions += s.evictions;
      out.inserts += s.inserts;
      out.bytes += s.bytes;
      out.high_bytes += s.high_bytes;
      out.entries += s.entries.size();
    }
    out.capacity = capacity();
    return out;
  }

 private:
  using FileHook = boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>>;

  // One cached object. Allocated with its shared_ptr reference count
  // (make_shared); while cached it owns itself through `self`, and readers
  // share that ownership (see the top of cache.hpp). Linked into the shard's
  // table, eviction queue and the list of its file. What a hit reads or
  // writes comes first, right after the count. `object` and `value` are set
  // before the entry is shared and never changed after.
  struct Entry {
    CacheKey key;
    eviction_hook_t<Policy, Entry> eviction_hook;
    const void* object = nullptr;  // value.get()
    bool high = false;             // CachePriority::high: linked into Shard::high_queue
    std::uint64_t hash = 0;
    std::size_t charge = 0;
    FileHook file_hook;
    std::shared_ptr<const void> value;
    std::shared_ptr<Entry> self;  // the cache's reference while the entry is in the table
  };

  using FileList = boost::intrusive::list<Entry, boost::intrusive::member_hook<Entry, FileHook, &Entry::file_hook>,
                                          boost::intrusive::constant_time_size<false>>;
  using Garbage = std::vector<std::shared_ptr<const void>>;

  // A shard's lock: a test-and-test-and-set spin lock that yields the CPU
  // after kSpins failed polls. Shard critical sections are short (a hit
  // holds it for a table probe and a queue touch), and its unlock is a plain
  // release store where std::mutex's is an atomic read-modify-write.
  class ShardLock {
   public:
    void lock() noexcept {
      while (locked_.exchange(true, std::memory_order_acquire)) {
        for (int polls = 0; locked_.load(std::memory_order_relaxed);) {
          if (polls < kSpins)
            ++polls;
          else
            std::this_thread::yield();
        }
      }
    }
    void unlock() noexcept { locked_.store(false, std::memory_order_release); }

   private:
    static constexpr int kSpins = 100;
    std::atomic<bool> locked_{false};
  };

  // A shard's entries by key: open addressing with linear probing over a
  // power-of-two array of (hash, Entry*) slots, so a lookup reads one slot
  // and the entry it points to (node-based maps read a bucket, the node
  // before and the node). Entries are heap objects with stable addresses
  // (the eviction queue and file lists link them), owned through their
  // `self`. Deletion shifts later slots of the probe run back, so no
  // tombstones. At most 3/4 full.
  class EntryTable {
   public:
    EntryTable() = default;
    EntryTable(const EntryTable&) = delete;
    EntryTable& operator=(const EntryTable&) = delete;
    // Drops the table's entries (their lists must be cleared first).
    ~EntryTable() {
      for (std::size_t i = 0; i < slot_count(); ++i)
        if (slots_[i].entry != nullptr) slots_[i].entry->self.reset();
    }
    // The entry for k (whose hash is h), or nullptr.
    Entry* find(const CacheKey& k, std::uint64_t h) const {
      if (size_ == 0) return nullptr;
      for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
        const Slot& sl = slots_[i];
        if (sl.entry == nullptr) return nullptr;
        if (sl.hash == h && sl.entry->key == k) return sl.entry;
      }
    }
    // Adds e (key and hash set; its key not present). Strong guarantee: on
    // std::bad_alloc nothing changed.
    void add(Entry& e) {
      if ((size_ + 1) * 4 > slot_count() * 3) grow();
      std::size_t i = e.hash & mask_;
      while (slots_[i].entry != nullptr) i = (i + 1) & mask_;
      slots_[i] = Slot{e.hash, &e};
      ++size_;
    }
    // Puts fresh (same key) in old's slot.
    void replace(Entry& old, Entry& fresh) noexcept { slot_of(old).entry = &fresh; }
    // Takes e, which must be in the table, out of it.
    void erase(Entry& e) noexcept {
      std::size_t i = static_cast<std::size_t>(&slot_of(e) - slots_.get());
      // Shift back every later slot of the run that may move to i.
      for (std::size_t j = (i + 1) & mask_; slots_[j].entry != nullptr; j = (j + 1) & mask_) {
        const std::size_t home = slots_[j].hash & mask_;
        if (((j - home) & mask_) >= ((j - i) & mask_)) {
          slots_[i] = slots_[j];
          i = j;
        }
      }
      slots_[i] = Slot{};
      --size_;
    }
    std::size_t size() const { return size_; }
    // Calls fn(Entry&) for every entry.
    template <class Fn>
    void for_each(Fn&& fn) {
      for (std::size_t i = 0; i < slot_count(); ++i)
        if (slots_[i].entry != nullptr) fn(*slots_[i].entry);
    }

   private:
    struct Slot {
      std::uint64_t hash = 0;
      Entry* entry = nullptr;
    };
    Slot& slot_of(const Entry& e) noexcept {
      std::size_t i = e.hash & mask_;
      while (slots_[i].entry != &e) i = (i + 1) & mask_;
      return slots_[i];
    }
    void grow() {
      const std::size_t count = slot_count() == 0 ? 16 : slot_count() * 2;
      auto bigger = std::make_unique<Slot[]>(count);
      const std::size_t mask = count - 1;
      for (std::size_t j = 0; j < slot_count(); ++j) {
        const Slot& sl = slots_[j];
        if (sl.entry == nullptr) continue;
        std::size_t i = sl.hash & mask;
        while (bigger[i].entry != nullptr) i = (i + 1) & mask;
        bigger[i] = sl;
      }
      slots_ = std::move(bigger);
      mask_ = mask;
    }
    std::size_t slot_count() const { return slots_ == nullptr ? 0 : mask_ + 1; }
    std::unique_ptr<Slot[]> slots_;  // mask_ + 1 of them (a power of two), or none
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
  };

  // Members below `mutex` are guarded by it. Aligned so neighbouring shards'
  // locks do not share a cache line. What a hit touches (the lock, `hits`,
  // for LruEviction the low queue's list head, and the table's 24 bytes:
  // 56 bytes) comes first, on one cache line, so a hit on a shard another
  // core used last moves one line of the shard, not three.
  struct alignas(64) Shard {
    mutable ShardLock mutex;
    std::uint64_t hits = 0;
    typename Policy::template queue<Entry> queue;  // CachePriority::low entries
    EntryTable entries;
    std::unordered_map<std::uint64_t, FileList> files;
    typename Policy::template queue<Entry> high_queue;  // CachePriority::high entries
    std::size_t capacity = 0;
    std::size_t bytes = 0;
    std::size_t high_bytes = 0;
    std::uint64_t misses = 0;
    std::uint64_t evictions = 0;
    std::uint64_t inserts = 0;

    Shard() = default;
    Shard(const Shard&) = delete;
    Shard& operator=(const Shard&) = delete;

    // Unlink every entry from the policy's queue and the file lists before
    // the table deletes the entries, whatever the policy's destructor does.
    ~Shard() {
      entries.for_each([this](Entry& e) { queue_of(e).erase(e); });
      for (auto& kv : files) kv.second.clear();
    }

    typename Policy::template queue<Entry>& queue_of(const Entry& e) { return e.high ? high_queue : queue; }
    // Adds e (charge and priority set) to its queue and the byte counts.
    // When the policy's insert throws, nothing is added (the caller then
    // drops the entry with drop_unlinked).
    void link(Entry& e) {
      queue_of(e).insert(e);
      bytes += e.charge;
      if (e.high) high_bytes += e.charge;
    }
    // Takes e out of its queue and the byte counts.
    void unlink(Entry& e) noexcept {
      queue_of(e).erase(e);
      bytes -= e.charge;
      if (e.high) high_bytes -= e.charge;
    }

    // Removes entry e from every structure; its object goes to `garbage` so
    // it is destroyed after the lock is released (or, if `garbage` cannot
    // grow, here with the entry).
    void remove(Entry& e, Garbage& garbage) noexcept {
      unlink(e);
      drop_unlinked(e, garbage);
    }
    // remove() for an entry that is in no queue.
    void drop_unlinked(Entry& e, Garbage& garbage) noexcept {
      auto fit = files.find(e.key.file);
      fit->second.erase(fit->second.iterator_to(e));
      if (fit->second.empty()) files.erase(fit);
      entries.erase(e);
      release(e, garbage);
    }
    // Drops the cache's reference to e (out of every structure now): to
    // `garbage`, or here if `garbage` cannot grow.
    static void release(Entry& e, Garbage& garbage) noexcept {
      std::shared_ptr<const void> ref = std::move(e.self);
      try {
        garbage.push_back(std::move(ref));
      } catch (...) {  // std::bad_alloc: ref is untouched and drops it here
      }
    }

    // Evicts the policy's victims until the charges fit the capacity: low
    // entries first, high ones while they exceed their share (or nothing
    // low is left).
    void evict_to_fit(Garbage& garbage) {
      while (bytes > capacity) {
        const bool high_over = high_bytes > capacity / 4 * kHighShareQuarters;
        Entry* v = high_over ? high_queue.victim() : queue.victim();
        if (v == nullptr) v = high_over ? queue.victim() : high_queue.victim();
        if (v == nullptr) break;  // unreachable with a correct policy
        remove(*v, garbage);
        ++evictions;
      }
    }
  };

  // Bits 40.. of the hash pick the shard; a power-of-two count masks them
  // (a 64-bit division costs more than the rest of a hit's arithmetic).
  Shard& shard_for(std::uint64_t h) const {
    return shards_[shard_mask_ != 0 || shard_count_ == 1 ? (h >> 40) & shard_mask_ : (h >> 40) % shard_count_];
  }

  // Stores the new capacity and each shard's share of it (the shares differ
  // by at most one byte and sum to `bytes`), evicting where a share shrank.
  void apply_capacity(std::size_t bytes) {
    std::lock_guard resize(capacity_mutex_);
    capacity_.store(bytes, std::memory_order_relaxed);
    const std::size_t base = bytes / shard_count_;
    const std::size_t extra = bytes % shard_count_;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      Garbage garbage;
      std::lock_guard lock(s.mutex);
      s.capacity = base + (i < extra ? 1 : 0);
      s.evict_to_fit(garbage);
    }
  }

  const std::size_t shard_count_;
  const std::size_t shard_mask_;  // shard_count_ - 1 for a power of two, else 0
  const std::unique_ptr<Shard[]> shards_;
  std::atomic<std::size_t> capacity_{0};
  std::mutex capacity_mutex_;  // serialises set_capacity calls so shares stay consistent
};

}  // namespace stowage::detail
