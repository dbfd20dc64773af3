// SPDX-License-Identifier: BSL-1.0
// eviction.hpp: eviction policies for the block cache, and the concept every
// policy satisfies. Policies: LruEviction (the default), SieveEviction,
// S3FifoEviction, WTinyLfuEviction (hill-climbing window),
// StaticWTinyLfuEviction and ShadowTinyLfuEviction (window chosen by
// miniature simulations); README.md ("Eviction") compares them against
// Belady's optimum on public traces (benchmarks/cache_replay.cpp).
//
// A policy is a type E with
//   - `E::name`, a `std::string_view` naming it ("lru");
//   - `E::hook`, a default-constructible hook that every cache entry embeds as
//     `typename E::hook eviction_hook;` (so queue operations never allocate);
//     or instead `template <class Entry> using hook_for = ...;`, a hook that
//     knows the entry type, for a policy that links entries itself (say
//     `struct { Entry* prev; Entry* next; }`) rather than through
//     Boost.Intrusive: the entry then embeds `E::hook_for<Entry>`
//     (eviction_hook_t<E, Entry> names whichever the policy has);
//   - `E::queue<Entry>`, a default-constructible class with
//       void insert(Entry&)   a new entry joins the queue;
//       void touch(Entry&)    the entry was hit;
//       void erase(Entry&)    the cache removed the entry (evicted, replaced,
//                             or its file was deleted); must not throw;
//       Entry* victim()       the entry to evict next, nullptr when empty. It
//                             is not removed by this call: the cache calls
//                             erase() on it afterwards.
//     Entry has the members `eviction_hook`, `std::size_t charge` (its byte
//     charge, constant while it is queued) and `std::uint64_t hash` (a mixed
//     64-bit hash of its key, for policies that keep frequency sketches or
//     ghost queues).
//     Optionally, `void share(const queue& first, std::size_t parts)`: the
//     cache calls it once, before any access, on every shard's queue of
//     ordinary blocks but the first, with the first and the shard count, so
//     that queues can learn from all shards together (shards split keys by
//     hash, so each sees a like share); ShadowTinyLfuEviction's queues share
//     one window simulation this way.
// The cache inserts a new entry first and then asks for victims while its
// shard is over capacity, so victim() may name the newcomer itself (which is
// how an admission policy such as TinyLFU turns one away).
// The cache knows nothing else about a policy, so adding one (S3-FIFO,
// W-TinyLFU, ...) never changes the cache.
//
// Invariant: an entry is linked into a queue exactly from insert() until
// erase(), and victim() only ever returns an entry that is linked. Policies
// keep per-entry state (a segment tag, a hit counter) in their hook, and
// nothing on the heap per entry; their side tables (a frequency sketch,
// ghost sets, mini caches) are sized from the number of entries queued and
// reallocated only when that grows past them.
//
// Locking, per member:
//   - `name`, `hook`: compile-time constants, nothing to lock.
//   - `queue<Entry>::insert`, `touch`, `erase`, `victim`: no locking of their
//     own. The cache owns one queue per shard and calls them only while it
//     holds that shard's mutex, so a policy must not share mutable state
//     between queues (or must lock it itself, as share() above does).
//   - the probe and concepts in `detail`: compile-time only.
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include <boost/intrusive/list.hpp>

namespace stowage {

namespace detail {

/// E's hook for entries of type Entry: E::hook_for<Entry> when E has it,
/// else E::hook.
template <class E, class Entry>
struct eviction_hook_of {
  using type = typename E::hook;
};
template <class E, class Entry>
  requires requires { typename E::template hook_for<Entry>; }
struct eviction_hook_of<E, Entry> {
  using type = typename E::template hook_for<Entry>;
};

}  // namespace detail

/// The hook a cache entry of type Entry embeds for policy E: E::hook_for<Entry>
/// when E declares that template, else E::hook (see the top of eviction.hpp).
template <class E, class Entry>
using eviction_hook_t = typename detail::eviction_hook_of<E, Entry>::type;

namespace detail {

/// The smallest cache entry a policy must handle; EvictionPolicy instantiates
/// a policy's queue with it to check the queue's interface.
template <class E>
struct EvictionProbe {
  /// The policy's hook.
  eviction_hook_t<E, EvictionProbe> eviction_hook;
  /// Byte charge of the entry.
  std::size_t charge = 0;
  /// Mixed hash of the entry's key.
  std::uint64_t hash = 0;
};

/// E names itself: `E::name` converts to std::string_view.
template <class E>
concept eviction_policy_has_name = requires {
  { E::name } -> std::convertible_to<std::string_view>;
};

/// E has a default-constructible `E::hook` for entries to embed, or a
/// `hook_for<Entry>` template whose hooks are.
template <class E>
concept eviction_policy_declares_hook =
    requires { typename E::hook; } || requires { typename E::template hook_for<EvictionProbe<E>>; };
template <class E>
concept eviction_policy_has_hook =
    eviction_policy_declares_hook<E> && std::default_initializable<eviction_hook_t<E, EvictionProbe<E>>>;

/// `E::queue<Entry>` is default-constructible and has insert, touch, erase
/// and victim with the signatures eviction.hpp describes.
template <class E>
concept eviction_policy_has_queue =
    std::default_initializable<typename E::template queue<EvictionProbe<E>>> &&
    requires(typename E::template queue<EvictionProbe<E>>& q, EvictionProbe<E>& e) {
      q.insert(e);
      q.touch(e);
      q.erase(e);
      { q.victim() } -> std::same_as<EvictionProbe<E>*>;
    };

}  // namespace detail

/// A cache eviction policy: `name`, `hook` and `queue<Entry>` with insert,
/// touch, erase and victim (see the top of eviction.hpp).
template <class E>
concept EvictionPolicy =
    detail::eviction_policy_has_name<E> && detail::eviction_policy_has_hook<E> && detail::eviction_policy_has_queue<E>;

/// Least recently used: evicts the entry whose last insert or hit is oldest.
/// Every operation is O(1) and allocation-free.
struct LruEviction {
  /// The policy's name.
  static constexpr std::string_view name = "lru";

  /// The hook each cache entry embeds (safe-link mode: a hook destroyed while
  /// still linked is caught by Boost's assertions in debug builds).
  using hook = boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>>;

  /// The recency list of one cache shard: most recent at the front, the
  /// victim at the back.
  template <class Entry>
  class queue {
   public:
    /// An empty queue.
    queue() = default;
    queue(const queue&) = delete;
    queue& operator=(const queue&) = delete;

    /// A new entry becomes the most recent.
    void insert(Entry& e) { list_.push_front(e); }
    /// A hit makes e the most recent.
    void touch(Entry& e) { list_.splice(list_.begin(), list_, list_.iterator_to(e)); }
    /// Unlinks e, which must be in this queue.
    void erase(Entry& e) { list_.erase(list_.iterator_to(e)); }
    /// The least recently used entry, or nullptr when the queue is empty.
    Entry* victim() { return list_.empty() ? nullptr : &list_.back(); }

   private:
    using list_type = boost::intrusive::list<Entry,
                                             boost::intrusive::member_hook<Entry, hook, &Entry::eviction_hook>,
                                             boost::intrusive::constant_time_size<false>>;
    list_type list_;
  };
};

static_assert(EvictionPolicy<LruEviction>);

// ---- building blocks shared by the policies below --------------------------------

namespace detail {

/// A list hook with two bytes of per-entry state, for policies that keep an
/// entry in one of several lists (`segment`) and count or flag its hits
/// (`freq`). Safe-link mode, like LruEviction's hook.
struct TaggedListHook
    : boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> {
  /// Which of the policy's lists holds the entry.
  std::uint8_t segment = 0;
  /// A small saturating hit counter (SIEVE: the visited bit).
  std::uint8_t freq = 0;
};

/// An intrusive list of Entry, linked through its TaggedListHook
/// `eviction_hook`, that keeps the count and byte charge of what it holds.
template <class Entry>
class WeighedList {
 public:
  /// Links e at the front (the newest end).
  void push_front(Entry& e) {
    list_.push_front(e);
    bytes_ += e.charge;
    ++count_;
  }
  /// Unlinks e, which must be in this list.
  void remove(Entry& e) noexcept {
    list_.erase(list_.iterator_to(e));
    bytes_ -= e.charge;
    --count_;
  }
  /// Moves e, which must be in this list, to the front.
  void to_front(Entry& e) { list_.splice(list_.begin(), list_, list_.iterator_to(e)); }
  /// The entry at the back (the oldest end), or nullptr.
  Entry* back() { return list_.empty() ? nullptr : &list_.back(); }
  /// Whether the list is empty.
  bool empty() const { return list_.empty(); }
  /// Sum of the charges of its entries.
  std::size_t bytes() const { return bytes_; }
  /// Number of entries.
  std::size_t count() const { return count_; }
  /// Iterator access for policies that walk the list (SIEVE's hand).
  auto& list() { return list_; }

 private:
  using list_type =
      boost::intrusive::list<Entry, boost::intrusive::member_hook<Entry, TaggedListHook, &Entry::eviction_hook>,
                             boost::intrusive::constant_time_size<false>>;
  list_type list_;
  std::size_t bytes_ = 0;
  std::size_t count_ = 0;
};

/// Moves e from one WeighedList to the front of another, tagging its segment.
template <class Entry>
void move_to_front(WeighedList<Entry>& from, WeighedList<Entry>& to, Entry& e, std::uint8_t segment) {
  from.remove(e);
  e.eviction_hook.segment = segment;
  to.push_front(e);
}

/// The hashes of recently evicted keys (a ghost queue without entries): a key
/// added is found by take() until about `capacity` newer keys were added (or
/// earlier, when its bucket of four slots fills with newer ones). A table of
/// (fingerprint, add count) slots; it allocates only when reserve() grows it,
/// never per add or take. Growing forgets every key.
class GhostSet {
 public:
  /// Remember about `capacity` keys.
  void reserve(std::size_t capacity) {
    capacity_ = capacity;
    if (capacity * 2 <= slots_.size()) return;
    std::size_t n = 16;
    while (n < capacity * 2) n *= 2;
    slots_.assign(n, Slot{});
    bucket_mask_ = n / 4 - 1;
  }
  /// Remembers h (a mixed key hash).
  void add(std::uint64_t h) noexcept {
    if (slots_.empty()) return;
    ++clock_;
    Slot* b = bucket(h);
    const std::uint32_t fp = fingerprint(h);
    Slot* pick = b;
    for (int i = 0; i < 4; ++i) {
      if (b[i].fp == fp) {
        pick = &b[i];
        break;
      }
      if (b[i].stamp < pick->stamp) pick = &b[i];
    }
    *pick = Slot{fp, clock_};
  }
  /// Whether h is remembered; forgets it if so.
  bool take(std::uint64_t h) noexcept {
    if (slots_.empty()) return false;
    Slot* b = bucket(h);
    const std::uint32_t fp = fingerprint(h);
    for (int i = 0; i < 4; ++i) {
      if (b[i].fp == fp && clock_ - b[i].stamp < capacity_) {
        b[i] = Slot{};
        return true;
      }
    }
    return false;
  }

 private:
  struct Slot {
    std::uint32_t fp = 0;  // 0: empty
    std::uint64_t stamp = 0;
  };
  static std::uint32_t fingerprint(std::uint64_t h) noexcept { return static_cast<std::uint32_t>(h >> 20) | 1U; }
  Slot* bucket(std::uint64_t h) noexcept { return &slots_[(h & bucket_mask_) * 4]; }
  std::vector<Slot> slots_;
  std::size_t bucket_mask_ = 0;
  std::size_t capacity_ = 0;
  std::uint64_t clock_ = 0;
};

/// A count-min sketch of 4-bit counters estimating how often each key hash
/// was seen recently (TinyLFU). Each key owns one counter in each of the four
/// 64-bit words of one 32-byte block, so an increment touches one cache line.
/// It keeps 8 words (128 counters) per key it was sized for, and increments
/// conservatively: only the key's smallest counters grow, so the keys that
/// share its other counters do not inflate each other's estimates. After 20
/// additions per key it was sized for, all counters halve, so old popularity
/// fades. Growing keeps what it counted: the larger table starts as copies
/// of the smaller one, so every estimate stays what it was.
/// It allocates only when reserve() grows it, never per increment or
/// estimate.
class FrequencySketch {
 public:
  /// 64-bit words per key sized for.
  static constexpr std::size_t kWordsPerKey = 8;
  /// Additions per key sized for between two halvings.
  static constexpr std::uint64_t kPeriodPerKey = 20;

  /// Size for at least `entries` keys (grows only, by powers of two).
  void reserve(std::size_t entries) {
    if (entries <= sized_for_) return;
    std::size_t words = 4;
    while (words < kWordsPerKey * entries) words *= 2;
    const std::size_t old = table_.size();
    table_.resize(words);
    // Block b of the old table answers for the keys of blocks b, b + old/4,
    // ... of the new one (the block index takes more low bits of the hash).
    if (old != 0)
      for (std::size_t i = old; i < words; i += old)
        std::copy_n(table_.begin(), old, table_.begin() + static_cast<std::ptrdiff_t>(i));
    block_mask_ = words / 4 - 1;
    sized_for_ = std::max<std::size_t>(words / kWordsPerKey, 1);
    sample_ = kPeriodPerKey * sized_for_;
  }
  /// The number of keys it was sized for.
  std::size_t sized_for() const { return sized_for_; }
  /// Counts one more sighting of h: raises those of its counters that hold
  /// its estimate (none once that is 15).
  void increment(std::uint64_t h) noexcept {
    if (table_.empty()) return;
    std::uint64_t* block = &table_[(h & block_mask_) * 4];
    const unsigned m = estimate(h);
    if (m == 15) return;
    for (unsigned k = 0; k < 4; ++k) {
      const unsigned shift = nibble(h, k) * 4;
      if (((block[k] >> shift) & 15U) == m) block[k] += std::uint64_t{1} << shift;
    }
    if (++additions_ >= sample_) age();
  }
  /// Asks the CPU to load h's counters (a hint; changes nothing).
  void prefetch(std::uint64_t h) const noexcept {
    if (!table_.empty()) __builtin_prefetch(&table_[(h & block_mask_) * 4], 1);
  }
  /// The estimated recent count of h (0 to 15; never below the true count
  /// since the last halving, halved).
  unsigned estimate(std::uint64_t h) const noexcept {
    if (table_.empty()) return 0;
    const std::uint64_t* block = &table_[(h & block_mask_) * 4];
    unsigned m = 15;
    for (unsigned k = 0; k < 4; ++k) {
      const auto c = static_cast<unsigned>((block[k] >> (nibble(h, k) * 4)) & 15U);
      m = c < m ? c : m;
    }
    return m;
  }

 private:
  // Counter k of h within its word: bits 44..59 of h (the block index uses
  // the low bits; the cache's shard choice uses bits 40..43).
  static unsigned nibble(std::uint64_t h, unsigned k) noexcept {
    return static_cast<unsigned>(h >> (44 + 4 * k)) & 15U;
  }
  void age() noexcept {
    for (auto& w : table_) w = (w >> 1) & 0x7777777777777777ULL;
    additions_ /= 2;
  }
  std::vector<std::uint64_t> table_;
  std::size_t block_mask_ = 0;
  std::size_t sized_for_ = 0;
  std::uint64_t sample_ = 0;
  std::uint64_t additions_ = 0;
};

}  // namespace detail

// ---- SIEVE --------------------------------------------------------------------------

/// SIEVE (Zhang et al., NSDI 2024): one FIFO list and a hand. A hit only sets
/// the entry's visited bit; to evict, the hand walks from the oldest entry
/// towards the newest, clearing visited bits, and stops at the first entry
/// that was not visited. Survivors stay in place (no move to the front), so a
/// hit writes one byte and never relinks.
struct SieveEviction {
  /// The policy's name.
  static constexpr std::string_view name = "sieve";
  /// The hook each cache entry embeds (freq is the visited bit).
  using hook = detail::TaggedListHook;

  /// One shard's list and hand.
  template <class Entry>
  class queue {
   public:
    /// An empty queue.
    queue() = default;
    queue(const queue&) = delete;
    queue& operator=(const queue&) = delete;

    /// A new entry joins at the front, not visited.
    void insert(Entry& e) {
      e.eviction_hook.freq = 0;
      list_.push_front(e);
      newest_ = &e;
    }
    /// A hit sets the visited bit.
    void touch(Entry& e) { e.eviction_hook.freq = 1; }
    /// Unlinks e; a hand on e moves one step towards the newer end.
    void erase(Entry& e) noexcept {
      if (hand_ == &e) hand_ = newer(e);
      if (newest_ == &e) newest_ = nullptr;
      list_.remove(e);
    }
    /// The first unvisited entry from the hand towards the front (wrapping to
    /// the back), clearing the visited bits it passes. The entry inserted
    /// last is passed over unless it is alone: the cache inserts before it
    /// evicts, where SIEVE evicts before it inserts.
    Entry* victim() {
      if (list_.empty()) return nullptr;
      Entry* e = hand_ != nullptr ? hand_ : list_.back();
      while (e->eviction_hook.freq != 0 || (e == newest_ && list_.count() > 1)) {
        e->eviction_hook.freq = 0;
        e = newer(*e);
        if (e == nullptr) e = list_.back();
      }
      hand_ = e;
      return e;
    }

   private:
    // The entry linked just before e (one step newer), or nullptr at the front.
    Entry* newer(Entry& e) {
      auto it = list_.list().iterator_to(e);
      return it == list_.list().begin() ? nullptr : &*std::prev(it);
    }
    detail::WeighedList<Entry> list_;
    Entry* hand_ = nullptr;
    Entry* newest_ = nullptr;  // the entry inserted last, while it is queued
  };
};

static_assert(EvictionPolicy<SieveEviction>);

// ---- S3-FIFO --------------------------------------------------------------------------

/// S3-FIFO (Yang et al., SOSP 2023): a small FIFO (a tenth of the bytes) that
/// new entries enter, a main FIFO, and a ghost set of keys recently evicted
/// from the small one. An entry hit at least once while in the small FIFO
/// moves to the main one when it reaches the small FIFO's end; one never hit
/// is evicted (so a one-hit scan passes through the small FIFO only) and its
/// key remembered; a key found in the ghost set enters the main FIFO
/// directly. The main FIFO reinserts an entry at its end while the entry's
/// hit counter (at most 3) is above zero, decrementing it.
struct S3FifoEviction {
  /// The policy's name.
  static constexpr std::string_view name = "s3-fifo";
  /// The hook each cache entry embeds (segment: small or main; freq: hits, at
  /// most 3).
  using hook = detail::TaggedListHook;

  /// One shard's two FIFOs and ghost set.
  template <class Entry>
  class queue {
   public:
    /// An empty queue.
    queue() = default;
    queue(const queue&) = delete;
    queue& operator=(const queue&) = delete;

    /// A new entry enters the small FIFO, or the main one if its key is in
    /// the ghost set.
    void insert(Entry& e) {
      ghost_.reserve(main_.count() + small_.count() + 1);
      e.eviction_hook.freq = 0;
      const bool returning = ghost_.take(e.hash);
      e.eviction_hook.segment = returning ? kMain : kSmall;
      (returning ? main_ : small_).push_front(e);
      newest_ = &e;
    }
    /// A hit counts, up to 3.
    void touch(Entry& e) {
      if (e.eviction_hook.freq < 3) ++e.eviction_hook.freq;
    }
    /// Unlinks e; an entry evicted from the small FIFO leaves its key in the
    /// ghost set.
    void erase(Entry& e) noexcept {
      if (&e == pending_ && e.eviction_hook.segment == kSmall) ghost_.add(e.hash);
      if (&e == pending_) pending_ = nullptr;
      if (&e == newest_) newest_ = nullptr;
      (e.eviction_hook.segment == kSmall ? small_ : main_).remove(e);
    }
    /// Promotes hit entries from the end of the small FIFO and reinserts hit
    /// entries at the end of the main one until it finds an entry to evict.
    Entry* victim() {
      pending_ = nullptr;
      for (;;) {
        const std::size_t total = small_.bytes() + main_.bytes();
        // The entry inserted last is not evicted from the small FIFO while
        // the main one has entries (S3-FIFO evicts before it inserts).
        const bool small_over = small_.bytes() * 10 > total && small_.back() != newest_;
        if (!small_.empty() && (small_over || main_.empty())) {
          Entry& t = *small_.back();
          if (t.eviction_hook.freq > 0 && !(main_.empty() && small_.count() == 1)) {
            t.eviction_hook.freq = 0;
            detail::move_to_front(small_, main_, t, kMain);
            continue;
          }
          return pending_ = &t;
        }
        Entry* t = main_.back();
        if (t == nullptr) return nullptr;
        if (t->eviction_hook.freq > 0) {
          --t->eviction_hook.freq;
          main_.to_front(*t);
          continue;
        }
        return pending_ = t;
      }
    }

   private:
    static constexpr std::uint8_t kSmall = 0;
    static constexpr std::uint8_t kMain = 1;
    detail::WeighedList<Entry> small_;
    detail::WeighedList<Entry> main_;
    detail::GhostSet ghost_;
    Entry* pending_ = nullptr;  // the last victim() named, until erased
    Entry* newest_ = nullptr;   // the entry inserted last, while it is queued
  };
};

static_assert(EvictionPolicy<S3FifoEviction>);

// ---- W-TinyLFU --------------------------------------------------------------------------

namespace detail {

/// W-TinyLFU tuning: the window keeps a fixed share of the bytes (1% unless
/// set otherwise).
class FixedWindowTuning {
 public:
  /// The window's share of the bytes held.
  double window_share() const { return share_; }
  /// Sets the share (0 to 1).
  void set_share(double share) { share_ = share; }
  /// An access (nothing to adapt).
  void on_access(std::uint64_t /*hash*/, std::size_t /*charge*/, bool /*hit*/, std::size_t /*entries*/,
                 std::size_t /*bytes*/) {}

 private:
  double share_ = 0.01;
};

/// W-TinyLFU tuning by hill climbing, as Caffeine adapts its window: every
/// sample of 10 accesses per entry held, compare the hit ratio with the
/// previous sample's; keep moving the window's share the same way while the
/// ratio improves, turn back when it falls. Steps start at 1/16 of the bytes
/// and shrink by 2% a sample, growing back to 1/16 when the hit ratio jumps
/// by 5 points or more (the workload changed).
class HillClimbTuning {
 public:
  /// The window's share of the bytes held, between 0 and 1.
  double window_share() const { return share_; }
  /// Counts a hit or a miss; `entries` (held now) sizes the sample.
  void on_access(std::uint64_t /*hash*/, std::size_t /*charge*/, bool hit, std::size_t entries,
                 std::size_t /*bytes*/) {
    if (hit) ++hits_;
    sample_ = entries < 100 ? 1000 : 10 * entries;
    if (++seen_ >= sample_) climb();
  }

 private:
  void climb() {
    const double ratio = static_cast<double>(hits_) / static_cast<double>(seen_);
    const double change = ratio - previous_;
    if (previous_ >= 0) {
      if (change < 0) direction_ = -direction_;
      if (change >= 0.05 || change <= -0.05) step_ = kFirstStep;
      share_ += direction_ * step_;
      share_ = share_ < 0 ? 0 : share_ > 1 ? 1 : share_;
      step_ *= 0.98;
    }
    previous_ = ratio;
    hits_ = 0;
    seen_ = 0;
  }
  static constexpr double kFirstStep = 0.0625;
  double share_ = 0.01;
  double step_ = kFirstStep;
  double direction_ = 1;
  double previous_ = -1;
  std::uint64_t hits_ = 0;
  std::uint64_t seen_ = 0;
  std::uint64_t sample_ = 1000;
};

/// The queue of a W-TinyLFU policy (Einziger et al., ACM TOS 2017; Caffeine's
/// design): new entries enter an LRU window; entries pushed out of the
/// window become candidates for the main segmented LRU (probation, then
/// protected, which keeps 80% of the main bytes), and a candidate gets in
/// only if a frequency sketch has seen its key more often than the main
/// victim's; otherwise the candidate is evicted. Tuning sets the window's
/// share of the bytes and learns from hits, misses and evictions.
template <class Entry, class Tuning>
class WTinyLfuQueue {
 public:
  /// An empty queue.
  WTinyLfuQueue() = default;
  WTinyLfuQueue(const WTinyLfuQueue&) = delete;
  WTinyLfuQueue& operator=(const WTinyLfuQueue&) = delete;

  /// A new entry enters the window (its key counted in the sketch).
  void insert(Entry& e) {
    const std::size_t entries = count() + 1;
    count_hits();
    if (entries > sketch_.sized_for()) sketch_.reserve(entries);
    sketch_.increment(e.hash);
    tuning_.on_access(e.hash, e.charge, false, entries, count_bytes());
    e.eviction_hook.segment = kWindow;
    window_.push_front(e);
  }
  /// A hit counts in the sketch and renews the entry: in the window it moves
  /// to the front; a candidate or probation entry is promoted to protected.
  /// The sketch's counters are raised kHitBatch hits at a time (see
  /// count_hits()); every decision reads them after all earlier hits.
  void touch(Entry& e) {
    hits_[pending_] = e.hash;
    if (++pending_ == kHitBatch) count_hits();
    tuning_.on_access(e.hash, e.charge, true, count(), count_bytes());
    switch (e.eviction_hook.segment) {
      case kWindow:
        window_.to_front(e);
        break;
      case kCandidate:
        detail::move_to_front(candidates_, protected_, e, kProtected);
        break;
      case kProbation:
        detail::move_to_front(probation_, protected_, e, kProtected);
        break;
      default:
        protected_.to_front(e);
        return;
    }
    if (e.eviction_hook.segment != kProtected) return;
    // Keep protected within 80% of the main bytes: demote its oldest.
    const std::size_t main = candidates_.bytes() + probation_.bytes() + protected_.bytes();
    while (protected_.bytes() * 5 > main * 4 && protected_.count() > 1)
      detail::move_to_front(protected_, probation_, *protected_.back(), kProbation);
  }
  /// Unlinks e.
  void erase(Entry& e) noexcept { list_of(e.eviction_hook.segment).remove(e); }
  /// Moves what overflows the window into the candidates, then evicts the
  /// loser of the oldest candidate and the main victim (by sketch estimate,
  /// the incumbent winning ties, except that a candidate seen at least kWarm
  /// times wins one lost duel in 128); with no candidate, the main victim; with an
  /// empty main, the window's oldest.
  Entry* victim() {
    count_hits();
    const std::size_t total = count_bytes();
    const auto window_target = static_cast<std::size_t>(tuning_.window_share() * static_cast<double>(total));
    // The window keeps at least its newest entry (a small cache's window
    // would otherwise be empty, and every new key would duel at once).
    while (window_.bytes() > window_target && window_.count() > 1)
      detail::move_to_front(window_, candidates_, *window_.back(), kCandidate);
    Entry* main = probation_.back();
    if (main == nullptr) main = protected_.back();
    if (main == nullptr) {
      // An empty main (the cache just filled up): all candidates but the
      // newest join it without a duel, so the newest duels the oldest.
      while (candidates_.count() > 1)
        detail::move_to_front(candidates_, probation_, *candidates_.back(), kProbation);
      main = probation_.back();
    }
    if (Entry* cand = candidates_.back()) {
      const unsigned seen = sketch_.estimate(cand->hash);
      if (main != nullptr && (seen > sketch_.estimate(main->hash) || (seen >= kWarm && lucky()))) {
        detail::move_to_front(candidates_, probation_, *cand, kProbation);
        return main;
      }
      return cand;
    }
    if (main == nullptr) main = window_.back();
    return main;
  }
  /// The window's current share of the bytes (for tests and reports).
  double window_share() const { return tuning_.window_share(); }
  /// Tunes the window together with `first`'s queue, this queue holding one
  /// of `parts` hash-split shares of a cache (BlockCache calls it on its
  /// shards' queues, for a Tuning that can be shared).
  void share(const WTinyLfuQueue& first, std::size_t parts)
    requires requires(Tuning& t, std::size_t n) { t.share(t, n); }
  {
    tuning_.share(first.tuning_, parts);
  }
  /// The tuning object.
  Tuning& tuning() { return tuning_; }

 private:
  static constexpr std::uint8_t kWindow = 0;
  static constexpr std::uint8_t kCandidate = 1;
  static constexpr std::uint8_t kProbation = 2;
  static constexpr std::uint8_t kProtected = 3;
  // A candidate seen at least this often that loses its duel still gets in
  // one time in 128 (lucky()), as in Caffeine: otherwise a main segment full
  // of keys whose counts stay high (a loop larger than the cache, keys
  // flooded to collide in the sketch) would turn every newcomer away.
  static constexpr unsigned kWarm = 6;
  // Hits whose sketch counts wait in hits_.
  static constexpr unsigned kHitBatch = 16;
  // Raises the sketch's counters for the hits that wait, in the order they
  // came (so the sketch, its halvings included, ends as if each hit had
  // raised them at once), having first asked for all their counter blocks:
  // a hit's increment misses the CPU cache on a large sketch, and one at a
  // time the hit path waited on each miss in turn.
  void count_hits() noexcept {
    for (unsigned i = 0; i < pending_; ++i) sketch_.prefetch(hits_[i]);
    for (unsigned i = 0; i < pending_; ++i) sketch_.increment(hits_[i]);
    pending_ = 0;
  }
  // True one time in 128 (a linear congruential generator's top 7 bits).
  bool lucky() noexcept {
    rng_ = rng_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return (rng_ >> 57) == 0;
  }
  WeighedList<Entry>& list_of(std::uint8_t segment) {
    switch (segment) {
      case kWindow:
        return window_;
      case kCandidate:
        return candidates_;
      case kProbation:
        return probation_;
      default:
        return protected_;
    }
  }
  std::size_t count() const {
    return window_.count() + candidates_.count() + probation_.count() + protected_.count();
  }
  std::size_t count_bytes() const {
    return window_.bytes() + candidates_.bytes() + probation_.bytes() + protected_.bytes();
  }
  WeighedList<Entry> window_;
  WeighedList<Entry> candidates_;
  WeighedList<Entry> probation_;
  WeighedList<Entry> protected_;
  FrequencySketch sketch_;
  Tuning tuning_;
  std::uint64_t rng_ = 0x2545F4914F6CDD1DULL;  // lucky()'s generator
  std::uint64_t hits_[kHitBatch] = {};         // hashes of hits not yet counted
  unsigned pending_ = 0;
};

/// A miniature W-TinyLFU cache of key hashes (no values) at a fixed window
/// share, for MiniSimTuning. Its entries come from a pool that reset()
/// allocates, so access() never allocates.
class MiniCache {
 public:
  /// An empty mini cache with no room; reset() gives it some.
  MiniCache() = default;
  MiniCache(const MiniCache&) = delete;
  MiniCache& operator=(const MiniCache&) = delete;
  ~MiniCache() { clear(); }

  /// Empties it and makes room for up to `max_entries` entries, with the
  /// window at `share` of the bytes.
  void reset(std::size_t max_entries, double share) {
    clear();
    pool_ = std::make_unique<Node[]>(max_entries);
    pool_size_ = max_entries;
    used_ = 0;
    free_ = nullptr;
    std::size_t n = 16;
    while (n < max_entries) n *= 2;
    buckets_.assign(n, nullptr);
    mask_ = n - 1;
    queue_.tuning().set_share(share);
  }
  /// One access to hash h weighing `charge`, the cache holding at most
  /// `capacity` bytes: whether it hit.
  bool access(std::uint64_t h, std::size_t charge, std::size_t capacity) {
    if (pool_size_ == 0) return false;
    Node** head = &buckets_[h & mask_];
    for (Node* n = *head; n != nullptr; n = n->next) {
      if (n->hash == h) {
        queue_.touch(*n);
        return true;
      }
    }
    if (free_ == nullptr && used_ == pool_size_) remove(*queue_.victim());
    Node* n = free_ != nullptr ? free_ : &pool_[used_++];
    if (n == free_) free_ = free_->next;
    n->hash = h;
    n->charge = charge;
    n->next = *head;
    *head = n;
    bytes_ += charge;
    queue_.insert(*n);
    while (bytes_ > capacity) remove(*queue_.victim());
    return false;
  }

 private:
  struct Node {
    TaggedListHook eviction_hook;
    std::size_t charge = 0;
    std::uint64_t hash = 0;
    Node* next = nullptr;  // the bucket chain while cached, the free list after
  };
  void remove(Node& v) {
    queue_.erase(v);
    Node** p = &buckets_[v.hash & mask_];
    while (*p != &v) p = &(*p)->next;
    *p = v.next;
    bytes_ -= v.charge;
    v.next = free_;
    free_ = &v;
  }
  void clear() {
    while (Node* v = queue_.victim()) remove(*v);
  }
  std::unique_ptr<Node[]> pool_;
  std::size_t pool_size_ = 0;
  std::size_t used_ = 0;
  Node* free_ = nullptr;
  std::vector<Node*> buckets_;
  std::size_t mask_ = 0;
  std::size_t bytes_ = 0;
  WTinyLfuQueue<Node, FixedWindowTuning> queue_;
};

/// W-TinyLFU tuning by miniature simulation (after Waldspurger et al., "Cache
/// Modeling and Optimization using Miniature Simulations", USENIX ATC 2017):
/// a spatially sampled share of the keys (a power of two, so that at most
/// kMiniEntries of the entries the queue holds are sampled) is replayed
/// through one MiniCache per candidate window share in kShares, each scaled
/// to the same share of the bytes. Every period (kPeriod sampled accesses,
/// or twice the sampled entries if more) the real window takes the share
/// whose mini cache hit most, if it beat the current share's by 3% and 4
/// hits (hit counts decay by a quarter a period), except while the queue is
/// still growing. A share of 1 is plain LRU, so where LRU wins, the queue
/// becomes LRU. Sampling by key hash keeps a key's accesses together; the
/// sample rate only falls as the queue grows, and the mini caches' room
/// (twice the sampled entries) only grows, by doubling; each change resets
/// them, their only allocation, so a small queue (chunk metadata) keeps
/// small mini caches. The shards of a BlockCache share one simulation
/// (share()): it samples all their accesses at the rate one queue of all
/// their entries would, so a hit pays for a sampled access a sixteenth as
/// often as with one simulation per shard; a sampled access takes the
/// simulation's mutex.
class MiniSimTuning {
 public:
  /// The window shares simulated.
  static constexpr double kShares[] = {0.01, 0.1, 0.35, 1.0};
  /// About how many entries each mini cache holds.
  static constexpr std::size_t kMiniEntries = 512;
  /// Sampled accesses per decision, at least.
  static constexpr std::size_t kPeriod = 1024;

  /// A tuning of its own.
  MiniSimTuning() : sim_(std::make_shared<Sim>()) {}
  MiniSimTuning(const MiniSimTuning&) = delete;
  MiniSimTuning& operator=(const MiniSimTuning&) = delete;

  /// From now on, decides with (and as) `first`, for a queue that holds one
  /// of `parts` like shares of a cache's keys (the shards of a BlockCache,
  /// which split keys by hash): one simulation samples the accesses of all
  /// of them, as if one queue held parts times this one's entries and
  /// bytes. Call before any access, from one thread.
  void share(const MiniSimTuning& first, std::size_t parts) {
    sim_ = first.sim_;
    sim_->parts = std::max<std::size_t>(parts, 1);
  }
  /// The window's share of the bytes held.
  double window_share() const { return kShares[sim_->current.load(std::memory_order_relaxed)]; }
  /// Replays a sampled access in every mini cache.
  void on_access(std::uint64_t hash, std::size_t charge, bool /*hit*/, std::size_t entries, std::size_t bytes) {
    Sim& s = *sim_;
    const std::size_t own = entries;
    entries *= s.parts;
    bytes *= s.parts;
    const unsigned was = s.shift.load(std::memory_order_relaxed);
    const unsigned shift = shift_for(entries, was);
    const bool resize = shift != was || room_for(entries, shift) > s.pool.load(std::memory_order_relaxed);
    if (!resize && !sampled(hash, shift)) return;
    std::lock_guard lock(s.mutex);
    s.access(hash, charge, entries, bytes, own, held_);
  }

 private:
  static constexpr std::size_t kCount = std::size(kShares);
  // The sampling shift for `entries`, at least `from` (the rate only falls):
  // at most kMiniEntries of them are sampled.
  static unsigned shift_for(std::size_t entries, unsigned from) {
    while ((entries >> from) > kMiniEntries) ++from;
    return from;
  }
  // Room each mini cache needs: twice the sampled entries (charges differ).
  static std::size_t room_for(std::size_t entries, unsigned shift) { return 2 * (entries >> shift) + 16; }
  // Whether hash is sampled at shift: the top 32 bits of a remix of it lie
  // under 2^(32 - shift).
  static bool sampled(std::uint64_t hash, unsigned shift) {
    return ((hash * 0xD6E8FEB86659FD93ULL) >> 32) < (std::uint64_t{1} << (32 - shift));
  }
  // The simulation one queue, or the queues that share it, feed. Fields
  // read before the mutex is taken are atomic; the rest it guards.
  struct Sim {
    std::mutex mutex;
    std::atomic<std::size_t> current{0};
    std::atomic<unsigned> shift{0};
    std::atomic<std::size_t> pool{0};  // entries each mini cache has room for
    std::size_t parts = 1;
    MiniCache minis[kCount];
    double hits[kCount] = {};
    std::size_t seen = 0;

    // An access of a queue holding `own` entries (entries and bytes: as the
    // simulation sees them, times its parts); held: that queue's entries
    // when it last decided.
    void access(std::uint64_t hash, std::size_t charge, std::size_t entries, std::size_t bytes, std::size_t own,
                std::size_t& held) {
      const unsigned sh = shift_for(entries, shift.load(std::memory_order_relaxed));
      const std::size_t need = room_for(entries, sh);
      std::size_t room = pool.load(std::memory_order_relaxed);
      if (sh != shift.load(std::memory_order_relaxed) || need > room) {
        // Grown by doubling, to room for twice kMiniEntries at most.
        room = std::min(std::max(need, 2 * room), 2 * kMiniEntries + 16);
        for (std::size_t i = 0; i < kCount; ++i) minis[i].reset(room, kShares[i]);
        for (double& h : hits) h = 0;
        seen = 0;
        shift.store(sh, std::memory_order_relaxed);
        pool.store(room, std::memory_order_relaxed);
      }
      if (!sampled(hash, sh)) return;
      const std::size_t capacity = bytes >> sh;
      for (std::size_t i = 0; i < kCount; ++i)
        if (minis[i].access(hash, charge, capacity)) hits[i] += 1;
      const std::size_t period = std::max<std::size_t>(kPeriod, 2 * (entries >> sh));
      if (++seen >= period) decide(own, held);
    }
    // Takes the best share, unless the deciding queue is still growing (its
    // own count: shards of one cache differ by a few percent).
    void decide(std::size_t entries, std::size_t& held) {
      std::size_t best = current.load(std::memory_order_relaxed);
      for (std::size_t i = 0; i < kCount; ++i)
        if (hits[i] > hits[best] * 1.03 + 4) best = i;
      // While the queue is still filling up, periods only gather hits.
      const bool growing = entries > held + held / 64;
      held = entries;
      if (!growing) current.store(best, std::memory_order_relaxed);
      for (double& h : hits) h *= 0.75;
      seen = 0;
    }
  };
  std::shared_ptr<Sim> sim_;
  std::size_t held_ = 0;  // entries at this queue's last decision
};

/// What the W-TinyLFU policies share: the hook (segment: window, candidate,
/// probation or protected) and WTinyLfuQueue with their Tuning. Each policy
/// adds its name.
template <class Tuning>
struct WTinyLfuPolicy {
  /// The hook each cache entry embeds.
  using hook = TaggedListHook;
  /// One shard's queue.
  template <class Entry>
  using queue = WTinyLfuQueue<Entry, Tuning>;
};

}  // namespace detail

/// W-TinyLFU with Caffeine-style adaptation: a window LRU, a TinyLFU
/// admission filter and a segmented main LRU (see detail::WTinyLfuQueue),
/// the window's share of the bytes moved by hill climbing on the hit ratio
/// (detail::HillClimbTuning), starting at 1%.
struct WTinyLfuEviction : detail::WTinyLfuPolicy<detail::HillClimbTuning> {
  /// The policy's name.
  static constexpr std::string_view name = "w-tinylfu";
};

static_assert(EvictionPolicy<WTinyLfuEviction>);

/// W-TinyLFU with the window fixed at 1% of the bytes (the original paper's
/// configuration), for comparison with the adaptive one.
struct StaticWTinyLfuEviction : detail::WTinyLfuPolicy<detail::FixedWindowTuning> {
  /// The policy's name.
  static constexpr std::string_view name = "w-tinylfu-static";
};

static_assert(EvictionPolicy<StaticWTinyLfuEviction>);

/// stowage's own attempt at a policy that beats LRU broadly and never loses
/// to it by much: W-TinyLFU (detail::WTinyLfuQueue) whose window share is
/// chosen by miniature simulations of the same policy at 1%, 10%, 35% and
/// 100% over a sample of the keys (detail::MiniSimTuning). Where recency
/// wins, the window takes everything and the queue is plain LRU; where
/// frequency wins, TinyLFU's admission keeps one-hit keys out of the main
/// segments. A sampled access (about 512 of the entries a queue holds, or
/// all of them in a small queue) costs one access in each mini cache.
struct ShadowTinyLfuEviction : detail::WTinyLfuPolicy<detail::MiniSimTuning> {
  /// The policy's name.
  static constexpr std::string_view name = "shadow-tinylfu";
};

static_assert(EvictionPolicy<ShadowTinyLfuEviction>);

}  // namespace stowage
