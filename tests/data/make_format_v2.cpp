// SPDX-License-Identifier: BSL-1.0
// make_format_v2.cpp: writes the format-version-2 fixture store (manifest
// format 2, chunk format 2). Built by make_format_v2.sh against the headers
// of the commit tagged `format-v2` (28a902a, the last one that wrote those
// formats), never against today's headers.
//
//   usage: make_format_v2 <empty-directory>
#include <cstdio>
#include <stowage/stowage.hpp>

#include "fixture_v2.hpp"

namespace {

using stowage_fixture_v2::ItemV2;

// Forwards run_operations to the store.
struct StoreSink {
  stowage::Storage<std::string, ItemV2>& db;
  void put(const std::string& k, const ItemV2& v) { db.put(k, v); }
  void erase(const std::string& k) { db.erase(k); }
  void discard(const std::string& k) { db.discard(k); }
  void put_batch(const std::vector<std::pair<std::string, ItemV2>>& b) { db.put_batch(b); }
  void checkpoint() { db.checkpoint(); }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_format_v2 <empty-directory>\n");
    return 2;
  }
  stowage::Options opt;
  opt.cache_bytes = 4 << 20;         // a write buffer far larger than the operations: no checkpoint but ours
  opt.block_bytes = 512;
  opt.chunk_bytes = 4096;            // several chunk files
  opt.checkpoint_on_close = false;   // leave phase 3 in the WAL
  stowage::Storage<std::string, ItemV2> db(argv[1], opt);
  StoreSink sink{db};
  stowage_fixture_v2::run_operations(sink);
  db.flush();
  const auto st = db.stats();
  std::printf("format-2 fixture: %zu records (expected %zu), %llu chunks, %llu checkpoints, %llu WAL bytes\n", db.size(),
              stowage_fixture_v2::expected().size(), static_cast<unsigned long long>(st.chunks),
              static_cast<unsigned long long>(st.checkpoints), static_cast<unsigned long long>(st.wal_bytes));
  if (db.size() != stowage_fixture_v2::expected().size() || st.checkpoints != 2) {
    std::fprintf(stderr, "make_format_v2: the store does not hold what fixture_v2.hpp expects\n");
    return 1;
  }
  return 0;
}
