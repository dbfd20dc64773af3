// SPDX-License-Identifier: BSL-1.0
// write_buffer.hpp: the records committed since the last checkpoint, sorted
// by encoded key. Each entry is a put or an erase tombstone with the sequence
// number of the commit that wrote it; an entry only ever replaces one with a
// lower sequence, so concurrent commits applied out of order still end right.
// Its bytes are charged against Options::cache_bytes. A put never reads a
// chunk; whether a key existed below the buffer is resolved lazily (for
// size()) and remembered in the entry.
//
// Layout: a B+tree whose nodes and records all live in one Arena, so an
// insert costs no malloc of its own. A record holds the entry, then its key
// and value bytes; it never moves, so entry pointers stay valid while the
// buffer lives (also across a move). Each node slot keeps, beside the
// record's address, the key's first 16 bytes as two big-endian integers (its
// head, zero-padded): most comparisons end on the heads, inside the node,
// without reading the record. Leaves hold up to kFanout records and link to
// the next leaf; a full leaf splits in half, except the last leaf when the
// key goes at its end (ascending loads then fill leaves completely). A new
// value replaces the old one in place when it fits the old one's room, else
// it takes new room and the old room stays unused until the buffer goes.
// bytes() is the arena's reserved(): all of that, node slack and block tails
// included (and the links of versions kept for snapshots, below). Nothing
// is freed before the whole buffer is. Iterators (leaf, slot) are
// invalidated by an insert, not by a move.
//
// A key filter (BlockedBloomFilter, bloom.hpp) over the buffer's keys lets
// find(key, hash) answer "not here" for most keys it does not hold with one
// cache line read instead of a walk down the tree. Its size is set once
// (set_filter_bytes); a buffer makes its filter at the first apply() into
// it while it has never held a key, and keeps it through a move (a frozen
// buffer keeps its own). A buffer that held keys before it had a filter
// never gets one. Rolled-back keys stay in it (a "maybe", never wrong). Its
// memory is not in bytes() (which decides when a buffer is frozen), but in
// filter_charge(): the store takes it from the block cache's share.
//
// Snapshots: apply() keeps the version it replaces when a snapshot may
// read it (its sequence is at or below `keep_seen_by`, the newest live
// snapshot's): a copy of the entry in the arena whose value keeps the old
// bytes (the new ones then take new room), found through older_ from the
// entry that replaced it. visible() walks that chain. A buffer no snapshot
// ever saw keeps no chain and pays nothing for it.
//
// Not synchronised: the store guards it with its Lock policy. The const
// members change nothing, so readers may share it while no one applies.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <new>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bloom.hpp"
#include "detail/arena.hpp"

namespace stowage::detail {

/// Whether a buffered key also exists in the layers below the buffer.
enum class Below : std::int8_t { unknown, absent, present };

/// One buffered record. value points into the buffer's arena.
struct BufferEntry {
  std::uint64_t seq = 0;
  std::string_view value;
  bool tombstone = false;
  Below below = Below::unknown;
  /// The version it replaced is kept for a snapshot (WriteBuffer::visible).
  bool has_older = false;
};

/// Sorted buffer of puts and tombstones.
class WriteBuffer {
 public:
  /// What iteration yields: the encoded key (first) and its entry (second).
  using value_type = std::pair<const std::string_view, BufferEntry>;
  /// Most slots in a node.
  static constexpr int kFanout = 32;

 private:
  struct Record {
    value_type kv;
    std::size_t room;  // bytes available at kv.second.value's data
  };
  // A key's first 16 bytes, zero-padded, as big-endian integers: comparing
  // heads gives the keys' order whenever the heads differ.
  struct Head {
    std::uint64_t hi = 0, lo = 0;
  };
  struct Node {
    int count = 0;  // slots in use (separators, for an inner node)
    bool leaf = true;
    Head heads[kFanout];
    Record* recs[kFanout];  // leaf: the records; inner: separator i = first key under kids[i + 1]
  };
  struct Leaf : Node {
    Leaf* next = nullptr;
    Leaf* prev = nullptr;
  };
  struct Inner : Node {
    Node* kids[kFanout + 1];
  };

 public:
  /// Forward iterator over the entries in key order; valid while the buffer
  /// (or the one it was moved into) lives and no entry is inserted.
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = WriteBuffer::value_type;
    using difference_type = std::ptrdiff_t;
    using pointer = const value_type*;
    using reference = const value_type&;

    /// A singular iterator (equal to end()).
    const_iterator() = default;
    /// The entry.
    reference operator*() const { return leaf_->recs[slot_]->kv; }
    /// The entry.
    pointer operator->() const { return &leaf_->recs[slot_]->kv; }
    /// Steps to the next key.
    const_iterator& operator++() {
      // Records lie in the arena in the order they were first written, not
      // in key order: fetch one a few keys ahead while this one is used
      // (a flush walks every record, and each would otherwise be a miss).
      if (slot_ + kAhead < leaf_->count) {
        const char* r = reinterpret_cast<const char*>(leaf_->recs[slot_ + kAhead]);
        __builtin_prefetch(r);  // the entry, then its key and value bytes after it
        __builtin_prefetch(r + 64);
        __builtin_prefetch(r + 128);
      }
      if (++slot_ == leaf_->count) {
        leaf_ = leaf_->next;
        slot_ = 0;
        skip_empty();
      }
      return *this;
    }
    /// Steps to the previous key; from the first entry, to end() (a
    /// singular iterator, which steps no further).
    const_iterator& retreat() {
      if (leaf_ == nullptr) return *this;
      if (slot_ > 0) {
        --slot_;
        return *this;
      }
      do leaf_ = leaf_->prev;
      while (leaf_ != nullptr && leaf_->count == 0);
      slot_ = leaf_ != nullptr ? leaf_->count - 1 : 0;
      return *this;
    }
    /// Steps to the next key; returns the previous position.
    const_iterator operator++(int) {
      const_iterator old = *this;
      ++*this;
      return old;
    }
    /// Same position.
    friend bool operator==(const const_iterator&, const const_iterator&) = default;

   private:
    friend class WriteBuffer;
    static constexpr int kAhead = 6;
    // slot may be leaf->count: then the position is the next leaf's first.
    const_iterator(const Leaf* leaf, int slot) : leaf_(leaf), slot_(slot) {
      if (leaf_ != nullptr && slot_ == leaf_->count) {
        leaf_ = leaf_->next;
        slot_ = 0;
        skip_empty();
      }
    }
    // A rolled-back insert can leave a leaf empty (see Undo): step over it.
    void skip_empty() {
      while (leaf_ != nullptr && leaf_->count == 0) leaf_ = leaf_->next;
    }
    const Leaf* leaf_ = nullptr;
    int slot_ = 0;
  };
  /// The only iterator: entries are changed through apply() and resolve().
  using iterator = const_iterator;

  /// An empty buffer; allocates nothing until the first apply().
  WriteBuffer() = default;
  WriteBuffer(const WriteBuffer&) = delete;
  WriteBuffer& operator=(const WriteBuffer&) = delete;
  /// Takes o's entries (iterators and entry pointers stay valid); o is left empty.
  WriteBuffer(WriteBuffer&& o) noexcept { take(o); }
  /// Frees this buffer's entries and takes o's; o is left empty.
  WriteBuffer& operator=(WriteBuffer&& o) noexcept {
    if (this != &o) take(o);
    return *this;
  }
  ~WriteBuffer() = default;  // nodes and records are trivially destructible: the arena frees them

  /// What a run of apply() calls changed, so that rollback() can take all of
  /// them back: a batch applies all of its records or none, even when an
  /// apply() in the middle throws (std::bad_alloc from the arena). begin()
  /// allocates everything rollback() needs, so rollback() cannot fail.
  class Undo {
   public:
    /// Room for the changes of n apply() calls; may throw (nothing changed yet).
    void reserve(std::size_t n) { changes_.reserve(n); }

   private:
    friend class WriteBuffer;
    struct Change {
      Record* rec = nullptr;
      BufferEntry before{};
      std::size_t room = 0;
      bool inserted = false;
    };
    std::vector<Change> changes_;
    std::size_t entries_ = 0, unknown_ = 0;
    std::int64_t delta_ = 0;
    std::uint64_t max_seq_ = 0;
    bool started_ = false;
  };

  /// Starts recording into undo (reserved for the batch's size first): the
  /// apply() calls given `&undo` after this can be rolled back together.
  void begin(Undo& undo) const noexcept {
    undo.changes_.clear();
    undo.entries_ = entries_;
    undo.unknown_ = unknown_;
    undo.delta_ = delta_;
    undo.max_seq_ = max_seq_;
    undo.started_ = true;
  }

  /// Takes back every apply() recorded in undo since begin(), newest first:
  /// the buffer then holds exactly what it held at begin(). An inserted key
  /// leaves its leaf (the leaf may be left empty; the tree's separators stay
  /// valid, since records are never freed); a replaced entry gets its old
  /// state and bytes back (apply() with undo never overwrites old bytes).
  void rollback(Undo& undo) noexcept {
    if (!undo.started_) return;
    for (auto it = undo.changes_.rbegin(); it != undo.changes_.rend(); ++it) {
      if (it->inserted) {
        std::string_view key = it->rec->kv.first;
        const Head h = head_of(key);
        auto* leaf = const_cast<Leaf*>(leaf_for(h, key));
        int pos = lower(*leaf, h, key);
        for (int i = pos; i + 1 < leaf->count; ++i) {
          leaf->heads[i] = leaf->heads[i + 1];
          leaf->recs[i] = leaf->recs[i + 1];
        }
        --leaf->count;
      } else {
        it->rec->kv.second = it->before;
        it->rec->room = it->room;
      }
    }
    entries_ = undo.entries_;
    unknown_ = undo.unknown_;
    delta_ = undo.delta_;
    max_seq_ = undo.max_seq_;
    undo.changes_.clear();
    undo.started_ = false;
  }

  /// Records a put (tombstone = false) or an erase; ignored when the buffer
  /// already holds a newer sequence for the key. `below` is what the caller
  /// knows about lower layers (unknown when it did not look). Strong
  /// guarantee: when it throws (std::bad_alloc), the buffer is unchanged.
  /// With `undo` (after begin(undo), reserved for this call), the change is
  /// recorded so that rollback(undo) can take it back.
  ///
  /// keep_seen_by: the newest live snapshot's sequence (0: none). A
  /// replaced version at or below it is kept for visible().
  void apply(std::string_view key, std::uint64_t seq, bool tombstone, std::string_view value,
             Below below = Below::unknown, Undo* undo = nullptr, std::uint64_t keep_seen_by = 0) {
    if (root_ == nullptr && filter_bytes_ != 0 && !filter_.enabled())
      filter_ = BlockedBloomFilter(filter_bytes_);  // may throw: nothing changed yet
    const Head h = head_of(key);
    Inner* path[kMaxDepth];
    int at[kMaxDepth];
    int depth = 0;
    Node* n = root_;
    if (n == nullptr) n = root_ = first_ = last_ = new_leaf();
    while (!n->leaf) {
      auto* in = static_cast<Inner*>(n);
      int i = upper(*in, h, key);
      path[depth] = in;
      at[depth++] = i;
      n = in->kids[i];
    }
    auto* leaf = static_cast<Leaf*>(n);
    int pos = lower(*leaf, h, key);
    if (pos < leaf->count && compare(*leaf, pos, h, key) == 0) {
      Record& r = *leaf->recs[pos];
      BufferEntry& e = r.kv.second;
      if (e.seq >= seq) return;
      const bool keep = e.seq <= keep_seen_by;
      if (undo == nullptr && !keep) {
        update(r, seq, tombstone, value, below);
      } else {
        const BufferEntry before = e;
        const std::size_t room = r.room;
        BufferEntry* old = keep ? keep_version(e) : nullptr;  // may throw: nothing changed yet
        // New room for the bytes, so that the old ones stay (for a
        // rollback, or for the kept version's value).
        r.room = 0;
        try {
          update(r, seq, tombstone, value, below);
        } catch (...) {
          r.room = room;
          if (old != nullptr) forget_version(e, old);
          throw;
        }
        if (old != nullptr) e.has_older = true;
        if (undo != nullptr) undo->changes_.push_back(Undo::Change{&r, before, room, false});  // reserved
      }
    } else {
      Record* rec = new_record(key, seq, tombstone, value, below);
      insert(leaf, pos, h, rec, path, at, depth);
      if (filter_.enabled()) filter_.add(bloom_hash(key));
      if (undo != nullptr) undo->changes_.push_back(Undo::Change{rec, {}, 0, true});
      ++entries_;
      if (below == Below::unknown)
        ++unknown_;
      else
        delta_ += contribution(tombstone, below);
    }
    if (seq > max_seq_) max_seq_ = seq;
  }
  /// The version of an entry of this buffer that a reader at sequence
  /// `seq` sees: e itself, or a version it replaced that was kept for a
  /// snapshot; nullptr when every kept version is newer than seq.
  const BufferEntry* visible(const BufferEntry& e, std::uint64_t seq) const {
    const BufferEntry* v = &e;
    while (v->seq > seq) {
      if (!v->has_older) return nullptr;
      v = older_.find(v)->second;
    }
    return v;
  }
  /// Versions kept for snapshots (see visible()).
  std::size_t kept_versions() const { return older_.size(); }
  /// Live records this buffer adds to the layers below it (negative when it
  /// erases more than it adds). Exact once resolve() has run.
  std::int64_t delta() const { return delta_; }
  /// Entries whose presence below is not yet known.
  std::size_t unknown() const { return unknown_; }
  /// Looks up every unknown entry with exists_below(key) -> bool.
  template <class Fn>
  void resolve(Fn&& exists_below) {
    if (unknown_ == 0) return;
    for (Leaf* l = first_; l != nullptr; l = l->next) {
      for (int i = 0; i < l->count; ++i) {
        BufferEntry& e = l->recs[i]->kv.second;
        if (e.below == Below::unknown) mark_below(e, exists_below(l->recs[i]->kv.first));
      }
    }
  }
  /// Records that key is (or is not) present below, when its entry exists
  /// and its presence is still unknown (what resolve() would do for it).
  void settle(std::string_view key, bool present) {
    BufferEntry* e = find(key);
    if (e != nullptr && e->below == Below::unknown) mark_below(*e, present);
  }
  /// The entry of key, or nullptr.
  const BufferEntry* find(std::string_view key) const {
    const Head h = head_of(key);
    const Leaf* leaf = leaf_for(h, key);
    if (leaf == nullptr) return nullptr;
    int pos = lower(*leaf, h, key);
    return pos < leaf->count && compare(*leaf, pos, h, key) == 0 ? &leaf->recs[pos]->kv.second : nullptr;
  }
  /// The entry of key, or nullptr.
  BufferEntry* find(std::string_view key) {
    return const_cast<BufferEntry*>(static_cast<const WriteBuffer&>(*this).find(key));
  }
  /// find(key), given key's bloom_hash(): most keys the buffer does not
  /// hold are answered by its key filter alone.
  const BufferEntry* find(std::string_view key, std::uint64_t hash) const {
    return may_hold(hash) ? find(key) : nullptr;
  }
  /// What the key filter says of a key, given its bloom_hash(): false only
  /// when the buffer does not hold the key (true when it has no filter).
  bool may_hold(std::uint64_t hash) const { return filter_.may_contain(hash); }
  /// Bytes of key filter (rounded down to 64-byte blocks) the buffer makes
  /// when it next takes a key while it has never held one (0: none). Not
  /// moved with the buffer's entries.
  void set_filter_bytes(std::size_t bytes) { filter_bytes_ = bytes; }
  /// Whether find(key, hash) consults a key filter.
  bool filtered() const { return filter_.enabled(); }
  /// Bytes the key filter holds (0 without one); not in bytes().
  std::size_t filter_charge() const { return filter_.charge(); }
  /// The first entry whose key is not less than key.
  const_iterator lower_bound(std::string_view key) const {
    const Head h = head_of(key);
    const Leaf* leaf = leaf_for(h, key);
    return leaf == nullptr ? end() : const_iterator(leaf, lower(*leaf, h, key));
  }
  /// The first entry whose key is greater than key.
  const_iterator upper_bound(std::string_view key) const {
    const Head h = head_of(key);
    const Leaf* leaf = leaf_for(h, key);
    return leaf == nullptr ? end() : const_iterator(leaf, upper(*leaf, h, key));
  }
  /// The last entry whose key is less than key (end() when none).
  const_iterator before(std::string_view key) const {
    const_iterator it = lower_bound(key);
    if (it == end()) return last();
    return it.retreat();
  }
  /// The entry with the largest key (end() when empty).
  const_iterator last() const {
    const Leaf* leaf = last_;
    while (leaf != nullptr && leaf->count == 0) leaf = leaf->prev;
    return leaf == nullptr ? end() : const_iterator(leaf, leaf->count - 1);
  }
  /// The entry with the smallest key.
  const_iterator begin() const { return const_iterator(first_, 0); }
  /// Past the entry with the largest key.
  const_iterator end() const { return const_iterator(); }
  /// Cuts the entries into `parts` ranges of about equal counts, at leaf
  /// boundaries, for writing them from several threads: returns parts + 1
  /// positions, the first begin() and the last end(); range i is
  /// [at[i], at[i + 1]) and may be empty. parts must be at least 1. Walks
  /// the leaves, not the entries.
  std::vector<const_iterator> split(std::size_t parts) const {
    std::vector<const_iterator> at;
    at.reserve(parts + 1);
    at.push_back(begin());
    std::size_t seen = 0;
    const Leaf* leaf = first_;
    for (std::size_t i = 1; i < parts; ++i) {
      const std::size_t want = entries_ * i / parts;
      while (leaf != nullptr && seen + static_cast<std::size_t>(leaf->count) <= want) {
        seen += static_cast<std::size_t>(leaf->count);
        leaf = leaf->next;
      }
      // The cut falls inside `leaf` (or past the end): cut before or after
      // it, whichever lands nearer the wanted count.
      if (leaf != nullptr && want - seen > static_cast<std::size_t>(leaf->count) / 2) {
        seen += static_cast<std::size_t>(leaf->count);
        leaf = leaf->next;
      }
      at.push_back(const_iterator(leaf, 0));
    }
    at.push_back(end());
    return at;
  }
  /// No entries.
  bool empty() const { return entries_ == 0; }
  /// Distinct keys buffered.
  std::size_t entries() const { return entries_; }
  /// Bytes charged to the memory budget: the heap the arena holds (the key
  /// filter apart: filter_charge()).
  std::size_t bytes() const {
    // Kept versions' links: a node of two pointers with the allocator's
    // overhead each, and the bucket array.
    if (older_.empty()) return arena_.reserved();
    return arena_.reserved() + older_.size() * 4 * sizeof(void*) + older_.bucket_count() * sizeof(void*);
  }
  /// Highest sequence applied.
  std::uint64_t max_seq() const { return max_seq_; }

 private:
  // Levels of inner nodes: each has at least kFanout / 2 children.
  static constexpr int kMaxDepth = 16;

  static std::int64_t contribution(bool tombstone, Below below) {
    return (tombstone ? 0 : 1) - (below == Below::present ? 1 : 0);
  }
  static std::int64_t contribution(const BufferEntry& e) { return contribution(e.tombstone, e.below); }

  static Head head_of(std::string_view key) {
    unsigned char b[16] = {};
    if (!key.empty()) std::memcpy(b, key.data(), std::min<std::size_t>(key.size(), 16));
    Head h;
    for (int i = 0; i < 8; ++i) h.hi = h.hi << 8 | b[i];
    for (int i = 8; i < 16; ++i) h.lo = h.lo << 8 | b[i];
    return h;
  }
  // <0, 0, >0 as key (with head h) is before, equal to or after slot i of n.
  static int compare(const Node& n, int i, const Head& h, std::string_view key) {
    const Head& s = n.heads[i];
    if (h.hi != s.hi) return h.hi < s.hi ? -1 : 1;
    if (h.lo != s.lo) return h.lo < s.lo ? -1 : 1;
    // Equal heads: the first 16 bytes match, and a key of at most 16 bytes
    // is a prefix of the other (zero bytes after it pad like the head).
    std::string_view other = n.recs[i]->kv.first;
    if (key.size() <= 16 || other.size() <= 16)
      return key.size() < other.size() ? -1 : key.size() > other.size() ? 1 : 0;
    return key.substr(16).compare(other.substr(16));
  }
  // The first slot of n not before key.
  static int lower(const Node& n, const Head& h, std::string_view key) {
    int lo = 0, len = n.count;
    while (len > 0) {
      int half = len / 2;
      if (compare(n, lo + half, h, key) > 0) {
        lo += half + 1;
        len -= half + 1;
      } else {
        len = half;
      }
    }
    return lo;
  }
  // The first slot of n after key.
  static int upper(const Node& n, const Head& h, std::string_view key) {
    int lo = 0, len = n.count;
    while (len > 0) {
      int half = len / 2;
      if (compare(n, lo + half, h, key) >= 0) {
        lo += half + 1;
        len -= half + 1;
      } else {
        len = half;
      }
    }
    return lo;
  }
  // The leaf where key's lower and upper bounds start (they may be past its end).
  const Leaf* leaf_for(const Head& h, std::string_view key) const {
    const Node* n = root_;
    if (n == nullptr) return nullptr;
    while (!n->leaf) {
      const auto* in = static_cast<const Inner*>(n);
      n = in->kids[upper(*in, h, key)];
    }
    return static_cast<const Leaf*>(n);
  }

  Leaf* new_leaf() { return new (arena_.allocate(sizeof(Leaf), alignof(Leaf))) Leaf(); }
  Inner* new_inner() {
    Inner* in = new (arena_.allocate(sizeof(Inner), alignof(Inner))) Inner();
    in->leaf = false;
    return in;
  }
  Record* new_record(std::string_view key, std::uint64_t seq, bool tombstone, std::string_view value, Below below) {
    std::byte* mem = arena_.allocate(sizeof(Record) + key.size() + value.size(), alignof(Record));
    char* key_at = reinterpret_cast<char*>(mem + sizeof(Record));
    char* value_at = key_at + key.size();
    if (!key.empty()) std::memcpy(key_at, key.data(), key.size());
    if (!value.empty()) std::memcpy(value_at, value.data(), value.size());
    return new (mem) Record{value_type(std::string_view(key_at, key.size()),
                                       BufferEntry{seq, std::string_view(value_at, value.size()), tombstone, below}),
                            value.size()};
  }
  // A copy of e (its value's bytes stay where they are: the caller gives
  // the new ones new room), chained after e in older_. Strong guarantee.
  BufferEntry* keep_version(const BufferEntry& e) {
    auto* old = new (arena_.allocate(sizeof(BufferEntry), alignof(BufferEntry))) BufferEntry(e);
    if (e.has_older) {
      const BufferEntry* next = older_.find(&e)->second;
      older_.emplace(old, next);
      older_.find(&e)->second = old;  // no allocation
    } else {
      older_.insert_or_assign(&e, old);  // a rollback may have left a stale link
    }
    return old;
  }
  // Takes back keep_version(e) (old is what it returned). No-throw.
  void forget_version(const BufferEntry& e, const BufferEntry* old) noexcept {
    if (e.has_older) {
      auto it = older_.find(old);
      older_.find(&e)->second = it->second;
      older_.erase(it);
    } else {
      older_.erase(&e);
    }
  }
  // Records whether the unknown entry e is present below.
  void mark_below(BufferEntry& e, bool present) {
    e.below = present ? Below::present : Below::absent;
    --unknown_;
    delta_ += contribution(e);
  }
  void update(Record& r, std::uint64_t seq, bool tombstone, std::string_view value, Below below) {
    BufferEntry& e = r.kv.second;
    if (e.seq >= seq) return;
    // The new bytes go in the old room when they fit, else in new room
    // (taken first: when that throws, nothing has changed).
    char* at = const_cast<char*>(e.value.data());
    if (value.size() > r.room) {
      at = reinterpret_cast<char*>(arena_.allocate(value.size()));
      r.room = value.size();
    }
    if (e.below != Below::unknown) {
      delta_ -= contribution(e);
    } else if (below != Below::unknown) {
      e.below = below;
      --unknown_;
    }
    e.seq = seq;
    e.tombstone = tombstone;
    if (!value.empty()) std::memmove(at, value.data(), value.size());
    e.value = std::string_view(at, value.size());
    if (e.below != Below::unknown) delta_ += contribution(e);
  }

  // Puts (h, rec) at slot pos of n, which has room.
  static void put_slot(Node& n, int pos, const Head& h, Record* rec) {
    for (int i = n.count; i > pos; --i) {
      n.heads[i] = n.heads[i - 1];
      n.recs[i] = n.recs[i - 1];
    }
    n.heads[pos] = h;
    n.recs[pos] = rec;
    ++n.count;
  }
  // Moves slots [from, count) of a to the start of b (empty).
  static void move_slots(Node& a, int from, Node& b) {
    for (int i = from; i < a.count; ++i) {
      b.heads[i - from] = a.heads[i];
      b.recs[i - from] = a.recs[i];
    }
    b.count = a.count - from;
    a.count = from;
  }
  // Inserts rec at slot pos of leaf, splitting up the path as needed. The
  // nodes a split needs are all allocated before anything changes, so a
  // failed allocation leaves the tree as it was.
  void insert(Leaf* leaf, int pos, const Head& h, Record* rec, Inner* const* path, const int* at, int depth) {
    if (leaf->count < kFanout) {
      put_slot(*leaf, pos, h, rec);
      return;
    }
    int full = 0;  // full inner nodes above the leaf, from the bottom
    while (full < depth && path[depth - 1 - full]->count == kFanout) ++full;
    Inner* spare[kMaxDepth + 1];
    const int spares = full + (full == depth ? 1 : 0);  // their new halves, and a new root
    Leaf* right = new_leaf();
    for (int k = 0; k < spares; ++k) spare[k] = new_inner();
    int used = 0;
    if (pos == kFanout && leaf->next == nullptr) {
      put_slot(*right, 0, h, rec);  // appending: leave the full leaf full
    } else {
      move_slots(*leaf, kFanout / 2, *right);
      if (pos <= kFanout / 2)
        put_slot(*leaf, pos, h, rec);
      else
        put_slot(*right, pos - kFanout / 2, h, rec);
    }
    right->next = leaf->next;
    right->prev = leaf;
    if (leaf->next != nullptr)
      leaf->next->prev = right;
    else
      last_ = right;
    leaf->next = right;
    // The separator: the first key of the new right node.
    Head sep_head = right->heads[0];
    Record* sep = right->recs[0];
    Node* kid = right;
    while (depth > 0) {
      Inner* in = path[--depth];
      int i = at[depth];  // kid goes right of kids[i]: separator i, kid i + 1
      if (in->count < kFanout) {
        put_separator(*in, i, sep_head, sep, kid);
        return;
      }
      // Split: the left half keeps kFanout / 2 separators, the middle one goes up.
      Inner* r = spare[used++];
      const int m = kFanout / 2;
      if (i < m) {
        // The new separator lands in the left half; the left's last moves up.
        move_inner(*in, m, *r);  // r: separators m.., kids m+1..
        Head up_head = in->heads[m - 1];
        Record* up = in->recs[m - 1];
        r->kids[0] = in->kids[m];
        in->count = m - 1;
        put_separator(*in, i, sep_head, sep, kid);
        sep_head = up_head;
        sep = up;
      } else if (i == m) {
        // The new separator itself goes up; kid starts the right half.
        move_inner(*in, m, *r);
        r->kids[0] = kid;
      } else {
        // The new separator lands in the right half; separator m goes up.
        move_inner(*in, m + 1, *r);
        r->kids[0] = in->kids[m + 1];
        Head up_head = in->heads[m];
        Record* up = in->recs[m];
        in->count = m;
        put_separator(*r, i - m - 1, sep_head, sep, kid);
        sep_head = up_head;
        sep = up;
      }
      kid = r;
    }
    // The root split: a new root above the two halves.
    Inner* top = spare[used];
    top->kids[0] = root_;
    top->heads[0] = sep_head;
    top->recs[0] = sep;
    top->kids[1] = kid;
    top->count = 1;
    root_ = top;
  }
  // Puts separator (h, rec) at i and kid at i + 1 of in, which has room.
  static void put_separator(Inner& in, int i, const Head& h, Record* rec, Node* kid) {
    for (int j = in.count + 1; j > i + 1; --j) in.kids[j] = in.kids[j - 1];
    in.kids[i + 1] = kid;
    put_slot(in, i, h, rec);
  }
  // Moves separators [from, count) of a and the kids right of them to r
  // (empty; its kids[0] is left for the caller); a keeps count == from.
  static void move_inner(Inner& a, int from, Inner& r) {
    for (int j = from; j < a.count; ++j) r.kids[j - from + 1] = a.kids[j + 1];
    move_slots(a, from, r);
  }

  void take(WriteBuffer& o) {
    arena_ = std::move(o.arena_);
    root_ = std::exchange(o.root_, nullptr);
    first_ = std::exchange(o.first_, nullptr);
    last_ = std::exchange(o.last_, nullptr);
    entries_ = std::exchange(o.entries_, 0);
    delta_ = std::exchange(o.delta_, 0);
    unknown_ = std::exchange(o.unknown_, 0);
    max_seq_ = std::exchange(o.max_seq_, 0);
    older_ = std::exchange(o.older_, {});
    filter_ = std::move(o.filter_);
  }

  Arena arena_;
  Node* root_ = nullptr;
  Leaf* first_ = nullptr;  // the leftmost leaf
  Leaf* last_ = nullptr;   // the rightmost leaf
  std::size_t entries_ = 0;
  std::int64_t delta_ = 0;
  std::size_t unknown_ = 0;
  std::uint64_t max_seq_ = 0;
  // Kept versions: an entry (in a record or a kept copy) -> the version it
  // replaced, for the entries whose has_older is set.
  std::unordered_map<const BufferEntry*, const BufferEntry*> older_;
  BlockedBloomFilter filter_;    // over every key applied (see the top of the file)
  std::size_t filter_bytes_ = 0;  // the size of filter_ to make; stays with this object
};

}  // namespace stowage::detail
