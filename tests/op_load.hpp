// op_load.hpp: a deterministic load of single-op commits and the model of
// what a fresh store holds after any prefix of it, for tests that check a
// moment of a store (a backup, a snapshot) against the sequence it reports.
#pragma once

#include <cstdint>
#include <map>

#include <stowage/stowage.hpp>

namespace stowage_test {

using OpModel = std::map<std::uint64_t, std::uint64_t>;

// Small buffers and chunks: freezes, flushes, WAL releases and compactions
// all run during a load of a few thousand ops.
inline stowage::Options busy_options() {
  return stowage::Options{
      .cache_bytes = 256 << 10, .chunk_bytes = 8 << 10, .block_bytes = 512, .write_buffer_bytes = 16 << 10};
}

// Op k of the load: one commit each, so op k has sequence k + 1 in a fresh
// store. Keys repeat (1,500 of them); every fifth op erases.
inline std::uint64_t op_key(std::uint64_t k) { return (k * 7919) % 1500; }
inline bool op_erases(std::uint64_t k) { return k % 5 == 4; }
template <class Store>
void apply_op(Store& db, std::uint64_t k) {
  if (op_erases(k))
    db.erase(op_key(k));
  else
    db.put(op_key(k), k);
}
// What a fresh store holds after its first n ops.
inline OpModel model_after(std::uint64_t n) {
  OpModel m;
  for (std::uint64_t k = 0; k < n; ++k) {
    if (op_erases(k))
      m.erase(op_key(k));
    else
      m[op_key(k)] = k;
  }
  return m;
}

}  // namespace stowage_test
