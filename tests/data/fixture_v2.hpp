// SPDX-License-Identifier: BSL-1.0
// fixture_v2.hpp: the operations that wrote the format-version-2 fixture store
// (tests/data/format-v2/) and the records it must hold, shared by its
// generator (make_format_v2.cpp, built against the headers of the commit
// tagged `format-v2`, 28a902a) and by migration_test.cpp, which opens it with
// today's headers. Standard C++ only, so it compiles against either.
//
// The store: Storage<std::string, ItemV2> with chunk_bytes 4096 and
// block_bytes 512 (so several chunk files), written in three phases:
//   1. 600 puts, then checkpoint();
//   2. overwrites, erase(), discard() and 40 new keys, then checkpoint()
//      (the chunks now hold overwritten values and lack erased keys);
//   3. only in the WAL (flush()ed, never checkpointed: the generator closes
//      with checkpoint_on_close = false): overwrites, erases and discards of
//      chunk keys, new keys, a put_batch mixing new keys and keys erased in
//      phase 2, a key put and erased again, an erase and a discard of keys
//      that never existed.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace stowage_fixture_v2 {

/// The fixture's value type (schema version 1).
struct ItemV2 {
  static constexpr unsigned version = 1;
  std::string label;
  std::int64_t count = 0;
  double score = 0;
  std::vector<std::uint32_t> tags;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & label & count & score & tags;
  }
  friend bool operator==(const ItemV2&, const ItemV2&) = default;
};

inline std::string key(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "item-%05d", i);
  return buf;
}

/// The value key(i) gets in its `round`-th write (0 = first put).
inline ItemV2 value(int i, int round) {
  ItemV2 v;
  v.label = key(i) + "/r" + std::to_string(round);
  v.count = static_cast<std::int64_t>(i) * 1000 - 500000 + round;
  v.score = i * 0.25 + round;
  for (int t = 0; t < (i + round) % 5; ++t) v.tags.push_back(static_cast<std::uint32_t>(i * 7 + t));
  return v;
}

/// Keys that never existed (erased and discarded in phase 3).
inline constexpr int kNeverPut = 99990;

/// Runs the fixture's operations against `s`, which provides put(key, value),
/// erase(key), discard(key), put_batch(vector<pair<key, value>>) and
/// checkpoint(). The generator passes the store, the tests a std::map.
template <class Sink>
void run_operations(Sink& s) {
  // Phase 1: 600 records, checkpointed into chunk files.
  for (int i = 0; i < 600; ++i) s.put(key(i), value(i, 0));
  s.checkpoint();
  // Phase 2: overwrites, erases, discards and new keys, checkpointed.
  for (int i = 0; i < 600; ++i) {
    if (i % 7 == 0) s.put(key(i), value(i, 1));
    if (i % 11 == 3) s.erase(key(i));
    if (i % 13 == 4) s.discard(key(i));
  }
  for (int i = 600; i < 640; ++i) s.put(key(i), value(i, 0));
  s.checkpoint();
  // Phase 3: left in the WAL.
  for (int i = 0; i < 640; ++i) {
    if (i % 5 == 1) s.put(key(i), value(i, 2));
    if (i % 17 == 2) s.erase(key(i));
    if (i % 19 == 6) s.discard(key(i));
  }
  for (int i = 640; i < 660; ++i) s.put(key(i), value(i, 0));
  std::vector<std::pair<std::string, ItemV2>> batch;
  for (int i = 660; i < 665; ++i) batch.emplace_back(key(i), value(i, 0));
  for (int i : {3, 14, 25, 4, 17}) batch.emplace_back(key(i), value(i, 3));  // erased or discarded in phase 2
  s.put_batch(batch);
  s.erase(key(641));  // put earlier in this phase
  s.put(key(650), value(650, 4));
  s.discard(key(650));
  s.erase(key(kNeverPut));
  s.discard(key(kNeverPut + 1));
}

/// A std::map that records run_operations.
struct MapSink {
  std::map<std::string, ItemV2> m;
  void put(const std::string& k, const ItemV2& v) { m[k] = v; }
  void erase(const std::string& k) { m.erase(k); }
  void discard(const std::string& k) { m.erase(k); }
  void put_batch(const std::vector<std::pair<std::string, ItemV2>>& b) {
    for (const auto& [k, v] : b) m[k] = v;
  }
  void checkpoint() {}
};

/// What the fixture holds once its WAL is replayed.
inline std::map<std::string, ItemV2> expected() {
  MapSink s;
  run_operations(s);
  return std::move(s.m);
}

}  // namespace stowage_fixture_v2
