// SPDX-License-Identifier: BSL-1.0
// eviction.hpp: eviction policies for the block cache, and the concept every
// policy satisfies.
//
// A policy is a type E with
//   - `E::name`, a `std::string_view` naming it ("lru");
//   - `E::hook`, a default-constructible hook that every cache entry embeds as
//     `typename E::hook eviction_hook;` (so queue operations never allocate);
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
// The cache inserts a new entry first and then asks for victims while its
// shard is over capacity, so victim() may name the newcomer itself (which is
// how an admission policy such as TinyLFU turns one away).
// The cache knows nothing else about a policy, so adding one (S3-FIFO,
// W-TinyLFU, ...) never changes the cache.
//
// Invariant: an entry is linked into a queue exactly from insert() until
// erase(), and victim() only ever returns an entry that is linked.
//
// Locking, per member:
//   - `name`, `hook`: compile-time constants, nothing to lock.
//   - `queue<Entry>::insert`, `touch`, `erase`, `victim`: no locking of their
//     own. The cache owns one queue per shard and calls them only while it
//     holds that shard's mutex, so a policy must not share mutable state
//     between queues (or must lock it itself).
//   - the probe and concepts in `detail`: compile-time only.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/intrusive/list.hpp>

namespace stowage {

namespace detail {

/// The smallest cache entry a policy must handle; EvictionPolicy instantiates
/// a policy's queue with it to check the queue's interface.
template <class Hook>
struct EvictionProbe {
  /// The policy's hook.
  Hook eviction_hook;
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

/// E has a default-constructible `E::hook` for entries to embed.
template <class E>
concept eviction_policy_has_hook = requires { typename E::hook; } && std::default_initializable<typename E::hook>;

/// `E::queue<Entry>` is default-constructible and has insert, touch, erase
/// and victim with the signatures eviction.hpp describes.
template <class E>
concept eviction_policy_has_queue =
    std::default_initializable<typename E::template queue<EvictionProbe<typename E::hook>>> &&
    requires(typename E::template queue<EvictionProbe<typename E::hook>>& q, EvictionProbe<typename E::hook>& e) {
      q.insert(e);
      q.touch(e);
      q.erase(e);
      { q.victim() } -> std::same_as<EvictionProbe<typename E::hook>*>;
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

}  // namespace stowage
