// SPDX-License-Identifier: BSL-1.0
// detail/index_ops.hpp: how writes keep secondary indexes in the same
// commit as their records. Every writer of a collection in a store of the
// prefixed layout goes through commit_guarded(): it holds the collection's
// gate shared while no index is declared (a plain commit, with the history
// entries of a collection that keeps history), and exclusively otherwise,
// when it reads each record's old value, works out which
// index entries go and come (refusing, with ConstraintError, a write that
// would give two records one key of a unique index) and commits records and
// entries as one WAL record.
//
// An index entry (docs/format.md, "Indexes"): key = the index's collection
// prefix + the encoded index key (+ the record's encoded key, for an index
// that is not unique); value = the record's encoded key.
//
// A collection that keeps history (history.hpp) takes the same path: each
// commit also writes, for every key it changes, a history entry stamped
// with the sequence of the key's op. So does a collection that expires
// records (expiry.hpp): each put's value gets its expiry time in front.
#pragma once

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "../engine_handle.hpp"
#include "../error.hpp"
#include "../expiry.hpp"
#include "../history.hpp"
#include "../store_files.hpp"

namespace stowage::detail {

/// The entry key hook makes for the record (pk, value bytes).
inline std::string index_entry(const IndexHook& hook, std::string_view pk, std::string_view value) {
  std::string out = hook.prefix;
  hook.entry_key(pk, value, out);
  return out;
}

/// Appends to out, after the ops of slot's collection (keys with its
/// prefix) in ops[first, last), the index entries they change: erases of
/// the entries records leave, then puts of the entries they take. Reads
/// each record's stored value. ConstraintError when a unique index would
/// hold one key for two records. The caller holds slot.gate exclusively.
template <class Engine>
void expand_index_ops(const Engine& e, const CollectionSlot& slot, const std::vector<WriteOp>& ops,
                      const std::vector<std::size_t>& mine, std::vector<WriteOp>& out) {
  if (slot.hooks.empty()) return;
  std::map<std::string_view, const WriteOp*> last;  // the op that decides each key
  for (auto i : mine) last[ops[i].key] = &ops[i];
  const std::size_t nh = slot.hooks.size();
  struct Change {
    std::string_view pk;
    std::vector<std::string> before, after;  // per hook; empty: no entry
  };
  std::vector<Change> changes;
  changes.reserve(last.size());
  std::set<std::string> released;  // entries of unique indexes the write frees
  for (const auto& [key, op] : last) {
    Change c;
    c.pk = key.substr(slot.prefix.size());
    std::optional<std::string> old;
    e.find(key, [&](std::string_view bytes, const std::filesystem::path*) { old.emplace(bytes); });
    c.before.resize(nh);
    c.after.resize(nh);
    for (std::size_t h = 0; h < nh; ++h) {
      if (old) c.before[h] = index_entry(*slot.hooks[h], c.pk, *old);
      if (!op->erase) c.after[h] = index_entry(*slot.hooks[h], c.pk, op->value);
      if (slot.hooks[h]->unique && !c.before[h].empty() && c.before[h] != c.after[h]) released.insert(c.before[h]);
    }
    changes.push_back(std::move(c));
  }
  std::set<std::string> claimed;
  for (const auto& c : changes)
    for (std::size_t h = 0; h < nh; ++h) {
      const IndexHook& hook = *slot.hooks[h];
      const std::string& entry = c.after[h];
      if (!hook.unique || entry.empty() || entry == c.before[h]) continue;
      bool taken = !claimed.insert(entry).second;
      if (!taken && !released.count(entry))
        taken = e.find(entry, [](std::string_view, const std::filesystem::path*) {});
      if (taken)
        throw ConstraintError("stowage: index '" + hook.name + "' of collection '" + slot.name +
                              "' is unique, and its key " + hex_key(std::string_view(entry).substr(hook.prefix.size())) +
                              " belongs to another record; nothing was written");
    }
  for (const auto& c : changes)
    for (std::size_t h = 0; h < nh; ++h)
      if (!c.before[h].empty() && c.before[h] != c.after[h]) out.push_back(WriteOp{true, c.before[h], {}});
  for (const auto& c : changes)
    for (std::size_t h = 0; h < nh; ++h)
      if (!c.after[h].empty() && c.after[h] != c.before[h]) out.push_back(WriteOp{false, c.after[h], std::string(c.pk)});
}

/// Appends to out, after the ops of slot's collection in ops[first, last)
/// (mine lists them), the history entries they make when the collection
/// keeps history (history.hpp): for the op that decides each key, one
/// entry stamped with that op's sequence (an erase too, whether or not the
/// key is stored). Reads nothing. The caller holds slot.gate exclusively.
template <class Engine>
void expand_history_ops(const Engine& e, const CollectionSlot& slot, const std::vector<WriteOp>& ops,
                        const std::vector<std::size_t>& mine, std::vector<WriteOp>& out) {
  if (!slot.history) return;
  const HistoryHook& h = *slot.history;
  std::map<std::string_view, std::size_t> last;  // the op that decides each key
  for (auto i : mine) last[ops[i].key] = i;
  const std::uint64_t micros = now_micros(e.options());
  for (const auto& [key, i] : last) {
    const WriteOp& op = ops[i];
    WriteOp entry{false, history_group(h.prefix, key.substr(slot.prefix.size())),
                  history_value(op.erase, micros, op.erase ? std::string_view() : op.value)};
    entry.key.resize(entry.key.size() + kStampBytes);
    entry.stamp = i;
    out.push_back(std::move(entry));
  }
}

/// Puts the expiry time (expiry.hpp) in front of the value of every put
/// all[i] (i in mine: the ops of slot's collection) when the collection
/// expires records: the op's ttl from now, or the collection's default
/// TTL. A put with a ttl into a collection that does not expire records is
/// a ValidationError. The caller holds slot.gate (either way).
template <class Engine>
void apply_expiry(const Engine& e, const CollectionSlot& slot, const std::vector<std::size_t>& mine,
                  std::vector<WriteOp>& all) {
  if (!slot.expiry) {
    for (auto i : mine)
      if (!all[i].erase && all[i].ttl != 0)
        throw ValidationError("stowage: collection '" + slot.name +
                              "' does not expire records (a put with a ttl, or set_default_ttl, makes it)");
    return;
  }
  const std::uint64_t now = now_micros(e.options());
  for (auto i : mine) {
    WriteOp& op = all[i];
    if (!op.erase) op.value = with_expiry(expiry_time(now, op.ttl != 0 ? op.ttl : slot.expiry->ttl), op.value);
  }
}

/// Whether slot's writes need its gate only to keep history or put expiry
/// times in (no index declared or recorded): blind writes may then hold it
/// shared. The caller holds slot.gate (either way).
inline bool reads_nothing(const CollectionSlot& slot) {
  return (slot.history || slot.expiry) && slot.hooks.empty() && slot.undeclared.empty();
}

/// The indexes of the ops that write slot's collection (slot_of[i] == slot).
inline std::vector<std::size_t> ops_of(const std::vector<CollectionSlot*>& slot_of, const CollectionSlot* slot) {
  std::vector<std::size_t> mine;
  for (std::size_t i = 0; i < slot_of.size(); ++i)
    if (slot_of[i] == slot) mine.push_back(i);
  return mine;
}

/// Commits ops, op i writing the collection of slot_of[i], as one atomic
/// write with the index entries they change (see the top of this file). In
/// a bare store (no collection can have indexes) it is e.write(ops).
template <class Engine>
void commit_guarded(Engine& e, const std::vector<CollectionSlot*>& slot_of, const std::vector<WriteOp>& ops) {
  if (ops.empty()) return;
  if (!e.prefixed()) {
    e.write(ops);
    return;
  }
  std::vector<CollectionSlot*> slots(slot_of.begin(), slot_of.end());
  std::sort(slots.begin(), slots.end(), [](const CollectionSlot* a, const CollectionSlot* b) { return a->id < b->id; });
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  {
    std::vector<std::shared_lock<std::shared_mutex>> shared;
    bool indexed = false, reads = false;
    for (auto* s : slots) {
      shared.emplace_back(s->gate);
      const bool i = s->indexed.load(std::memory_order_acquire);
      indexed = indexed || i;
      reads = reads || (i && !reads_nothing(*s));
    }
    if (!indexed) {
      e.write(ops);
      return;
    }
    if (!reads) {
      // History and expiry only: they need no read, so the gates stay
      // shared (concurrent writers still share commits and syncs).
      std::vector<WriteOp> all(ops);
      for (auto* s : slots) {
        const std::vector<std::size_t> mine = ops_of(slot_of, s);
        expand_history_ops(e, *s, ops, mine, all);
        apply_expiry(e, *s, mine, all);
      }
      e.write(all);
      return;
    }
  }
  std::vector<std::unique_lock<std::shared_mutex>> exclusive;  // in id order: no two writers deadlock
  for (auto* s : slots) exclusive.emplace_back(s->gate);
  for (auto* s : slots) {
    e.mark_stale(*s);
    if (s->hooks.empty() && !s->history && !s->expiry) s->indexed.store(false, std::memory_order_release);
  }
  std::vector<WriteOp> all(ops);
  for (auto* s : slots) {
    const std::vector<std::size_t> mine = ops_of(slot_of, s);
    expand_index_ops(e, *s, ops, mine, all);
    expand_history_ops(e, *s, ops, mine, all);
    apply_expiry(e, *s, mine, all);
  }
  e.write(all);
}

}  // namespace stowage::detail
