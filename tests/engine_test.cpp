// Tests of the untyped engine (engine.hpp) on its own: byte keys in memcmp
// order, byte values, batches, the cursor, the record types recorded in the
// manifest; and the opt-in separate compilation mode (this file is built
// with STOWAGE_SEPARATE_COMPILATION and holds the explicit instantiation).
#define STOWAGE_SEPARATE_COMPILATION
#include <catch2/catch.hpp>

#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <stowage/engine_src.hpp>

#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;
using DefaultEngine = Engine<Lz4Compression, LruEviction, ThreadLock>;

namespace {

RecordTypes bytes_types() {
  RecordTypes t;
  t.serializer = "raw-bytes";
  t.key_order = "bytes";
  t.value_type = "bytes";
  t.value_version = 1;
  return t;
}

Options small() {
  return Options{.cache_bytes = 256 << 10, .chunk_bytes = 8 << 10, .block_bytes = 512, .write_buffer_bytes = 32 << 10};
}

std::optional<std::string> get(const DefaultEngine& e, std::string_view key) {
  std::optional<std::string> out;
  e.find(key, [&](std::string_view v, const std::filesystem::path*) { out.emplace(v); });
  return out;
}

std::map<std::string, std::string> scan(const DefaultEngine& e, std::optional<std::string> from = std::nullopt,
                                        std::optional<std::string> to = std::nullopt) {
  std::map<std::string, std::string> out;
  DefaultEngine::Cursor c(&e, std::move(from), std::move(to));
  std::string previous;
  bool first = true;
  while (c.peek()) {
    std::string k(c.key());
    if (!first && !(previous < k)) FAIL("cursor keys do not ascend");
    out.emplace(k, std::string(c.value()));
    c.accept();
    REQUIRE(c.last() == k);
    previous = k;
    first = false;
  }
  REQUIRE(c.at_end());
  return out;
}

std::string random_bytes(std::mt19937_64& rng, std::size_t max) {
  std::string s(rng() % max, '\0');
  for (auto& ch : s) ch = static_cast<char>(rng() % 4 == 0 ? 0 : rng() % 256);
  return s;
}

}  // namespace

TEST_CASE("the engine keeps byte keys in memcmp order across checkpoints and reopen") {
  TempDir dir;
  std::mt19937_64 rng(5);
  std::map<std::string, std::string> model;
  {
    DefaultEngine e(dir.path(), small(), bytes_types(), nullptr, 1, false);
    for (int i = 0; i < 3000; ++i) {
      std::string k = random_bytes(rng, 24);
      if (rng() % 5 == 0) {
        REQUIRE(e.erase(k) == (model.erase(k) == 1));
      } else {
        std::string v = random_bytes(rng, 200);
        e.put(k, v);
        model[k] = v;
      }
      if (i % 1000 == 999) e.checkpoint();
    }
    std::vector<std::string> kv;
    for (int i = 0; i < 50; ++i) {
      kv.push_back("batch-" + std::to_string(i));
      kv.push_back(std::string(static_cast<std::size_t>(i), '\0'));
      model[kv[kv.size() - 2]] = kv.back();
    }
    e.put_batch(kv);
    REQUIRE(e.size() == model.size());
    REQUIRE(scan(e) == model);
  }
  DefaultEngine e(dir.path(), small(), bytes_types(), nullptr, 1, false);
  REQUIRE(e.size() == model.size());
  REQUIRE(scan(e) == model);
  for (const auto& [k, v] : model) REQUIRE(get(e, k) == v);
  // A range, half-open.
  auto from = std::next(model.begin(), static_cast<std::ptrdiff_t>(model.size() / 3))->first;
  auto to = std::next(model.begin(), static_cast<std::ptrdiff_t>(2 * model.size() / 3))->first;
  std::map<std::string, std::string> want(model.lower_bound(from), model.lower_bound(to));
  REQUIRE(scan(e, from, to) == want);
}

TEST_CASE("a close writes a large write buffer as one level-0 run of several files") {
  // Over kParallelFlushBytes of buffer at close: cut into one file per core
  // (at least two), written from as many threads, named as one run.
  TempDir dir;
  std::mt19937_64 rng(17);
  std::map<std::string, std::string> model;
  Options o;
  o.write_buffer_bytes = 16 << 20;  // freezes at 8 MiB: the close flushes the only buffer
  {
    DefaultEngine e(dir.path(), o, bytes_types(), nullptr, 1, false);
    for (int i = 0; i < 12000; ++i) {
      std::string k = "key-" + std::to_string(rng() % 100000);
      if (i % 10 == 9) {
        e.erase(k);  // a tombstone over a buffered key, or over nothing (not written)
        model.erase(k);
      } else {
        std::string v = random_bytes(rng, 300);
        e.put(k, v);
        model[k] = v;
      }
    }
    REQUIRE(e.stats().write_buffer_bytes >= kParallelFlushBytes);
    e.close();
  }
  DefaultEngine e(dir.path(), o, bytes_types(), nullptr, 1, false);
  const Stats st = e.stats();
  REQUIRE(!st.levels.empty());
  CHECK(st.levels[0].runs == 1);
  CHECK(st.levels[0].files >= 2);
  CHECK(st.levels[0].files <= kMaxFlushParts);
  CHECK(st.write_buffer_bytes == 0);
  REQUIRE(e.size() == model.size());
  REQUIRE(scan(e) == model);
  for (const auto& [k, v] : model) REQUIRE(get(e, k) == v);
  CHECK(!get(e, "key-absent").has_value());
}

TEST_CASE("the empty key survives background compactions") {
  // Keys ascend from round to round, so each level-0 run begins above what
  // the base level holds; every third round also writes the empty key, so a
  // newer run begins with it while older ones do not. Level 0's key range
  // once began at an older run's first key then, the merge left out the
  // base-level file holding the empty key, and that level's files overlapped.
  TempDir dir;
  std::map<std::string, std::string> model;
  auto check = [&](const DefaultEngine& e) {
    REQUIRE(e.size() == model.size());
    REQUIRE(scan(e) == model);
    REQUIRE(get(e, "") == model.at(""));
  };
  {
    DefaultEngine e(dir.path(), small(), bytes_types(), nullptr, 1, false);
    for (int round = 0; round < 60; ++round) {
      if (round % 3 == 2) {
        e.put("", "empty." + std::to_string(round));
        model[""] = "empty." + std::to_string(round);
      }
      for (int k = 0; k < 150; ++k) {
        char key[16];
        std::snprintf(key, sizeof key, "k%06d", round * 1000 + k);
        const std::string value(static_cast<std::size_t>(k % 97), static_cast<char>('a' + round % 26));
        e.put(key, value);
        model[key] = value;
      }
      if (round % 10 == 9) check(e);
    }
    check(e);
  }
  DefaultEngine e(dir.path(), small(), bytes_types(), nullptr, 1, false);  // the manifest names no overlapping files
  check(e);
  e.compact();
  check(e);
}

TEST_CASE("a cursor peeked twice without accept returns the same record") {
  TempDir dir;
  DefaultEngine e(dir.path(), small(), bytes_types(), nullptr, 1, false);
  for (char c = 'a'; c <= 'e'; ++c) e.put(std::string(1, c), std::string(3, c));
  DefaultEngine::Cursor cur(&e, std::nullopt, std::nullopt);
  REQUIRE(cur.peek());
  REQUIRE(cur.key() == "a");
  e.put("0", "before everything");  // the store changes between peeks
  REQUIRE(cur.peek());
  REQUIRE(cur.key() == "0");  // nothing accepted yet: the range starts over
  cur.accept();
  REQUIRE(cur.peek());
  REQUIRE(cur.key() == "a");
  cur.accept();
  REQUIRE(cur.peek());
  REQUIRE(cur.key() == "b");
}

TEST_CASE("the engine records the record types in the manifest and checks them at open") {
  TempDir dir;
  { DefaultEngine e(dir.path(), small(), bytes_types(), nullptr, 1, false); }
  auto m = detail::read_manifest(*default_file_system(), dir.path());
  REQUIRE(m.serializer == "raw-bytes");
  REQUIRE(m.keyspaces.at(0).key_order == "bytes");
  RecordTypes other = bytes_types();
  other.key_order = "something else";
  REQUIRE_THROWS_AS(DefaultEngine(dir.path(), small(), other, nullptr, 1, false), MigrationError);
  other = bytes_types();
  other.serializer = "another";
  REQUIRE_THROWS_AS(DefaultEngine(dir.path(), small(), other, nullptr, 1, false), MigrationError);
}

TEST_CASE("the engine refuses keys and values over the limits") {
  TempDir dir;
  DefaultEngine e(dir.path(), small(), bytes_types(), nullptr, 1, false);
  REQUIRE_THROWS_AS(e.put(std::string(kMaxKeyBytes + 1, 'k'), "v"), ValidationError);
  REQUIRE_THROWS_AS(e.erase(std::string(kMaxKeyBytes + 1, 'k')), ValidationError);
  REQUIRE_THROWS_AS(e.put_batch({"ok", "v", std::string(kMaxKeyBytes + 1, 'k'), "v"}), ValidationError);
  REQUIRE(e.size() == 0);
}

TEST_CASE("gets keep blocks decoded, stored or packed by what fits the cache, and find the same records") {
  TempDir dir;
  std::mt19937_64 rng(13);
  std::map<std::string, std::string> model;
  {
    DefaultEngine e(dir.path(), small(), bytes_types(), nullptr, 1, false);
    for (int i = 0; i < 6000; ++i) {
      char key[24];
      std::snprintf(key, sizeof key, "key-%08llu", static_cast<unsigned long long>(rng() % 8000));
      if (i % 9 == 4) {
        e.erase(key);
        model.erase(key);
        continue;
      }
      // Half-compressible values: a run of one letter, then random bytes.
      std::string v(60, static_cast<char>('a' + i % 26));
      v += random_bytes(rng, 60);
      e.put(key, v);
      model[key] = v;
    }
    e.compact();
  }
  // From the smallest cache up: every form in turn, never back, and every
  // get (present, erased and absent keys alike) answers as the model does.
  std::vector<BlockForm> seen;
  for (std::size_t cache = 256 << 10; cache <= (std::size_t{16} << 20); cache = cache * 6 / 5) {
    Options o = small();
    o.cache_bytes = cache;
    DefaultEngine e(dir.path(), o, bytes_types(), nullptr, 1, false);
    std::size_t bad = 0;
    for (int pass = 0; pass < 2; ++pass)  // the second pass hits what the first cached
      for (int k = 0; k < 8000; ++k) {
        char key[24];
        std::snprintf(key, sizeof key, "key-%08d", k);
        const auto it = model.find(key);
        if (get(e, key) != (it == model.end() ? std::nullopt : std::optional<std::string>(it->second))) ++bad;
      }
    INFO("cache_bytes " << cache);
    CHECK(bad == 0);
    // Short scans (whose first blocks are cached in the form gets keep, and
    // decoded from it) return what the model holds, twice over (the second
    // time from what the first cached).
    std::size_t bad_scans = 0;
    for (int pass = 0; pass < 2; ++pass)
      for (int k = 0; k < 8000; k += 397) {
        char from[24], to[24];
        std::snprintf(from, sizeof from, "key-%08d", k);
        std::snprintf(to, sizeof to, "key-%08d", k + 60);
        const std::map<std::string, std::string> want(model.lower_bound(from), model.lower_bound(to));
        if (scan(e, std::string(from), std::string(to)) != want) ++bad_scans;
      }
    CHECK(bad_scans == 0);
    const BlockForm form = e.stats().block_form;
    if (!seen.empty()) CHECK(form <= seen.back());
    if (seen.empty() || form != seen.back()) seen.push_back(form);
  }
  CHECK(seen == std::vector<BlockForm>{BlockForm::packed, BlockForm::stored, BlockForm::decoded});
}

TEST_CASE("a short scan reads only the blocks it returns, and a second one finds them cached") {
  TempDir dir;
  Options o = small();
  o.block_bytes = 4096;  // about 30 records a block, as with db_bench's records
  // One file, and a cache that evicts nothing: the counts below then depend
  // only on the blocks the scan reads. With background compaction, a loaded
  // machine's flushes could reach the last level as files moved whole, which
  // compact() leaves as they are; a scan across two of them read two files'
  // metadata (4 misses, then a fifth, in a CI run).
  o.chunk_bytes = 4 << 20;
  o.cache_bytes = 8 << 20;
  o.auto_compaction = false;
  {
    DefaultEngine e(dir.path(), o, bytes_types(), nullptr, 1, false);
    for (int i = 0; i < 4000; ++i) {
      char key[24];
      std::snprintf(key, sizeof key, "key-%08d", i);
      e.put(key, std::string(100, static_cast<char>('a' + i % 26)));
    }
    e.compact();
  }
  // Still no background compaction: a version installed between the counts
  // would bring new files (and misses) of its own.
  DefaultEngine e(dir.path(), o, bytes_types(), nullptr, 1, false);
  REQUIRE(e.stats().chunks == 1);
  auto take = [&](int n) {
    DefaultEngine::Cursor c(&e, std::string("key-00002000"), std::nullopt);
    for (int i = 0; i < n; ++i) {
      REQUIRE(c.peek());
      char key[24];
      std::snprintf(key, sizeof key, "key-%08d", 2000 + i);
      REQUIRE(c.key() == key);
      c.accept();
    }
  };
  const auto before = e.stats();
  take(5);  // the first batch holds 16 records: a block or two
  const auto after = e.stats();
  // The file's metadata, the block the seek lands in, at most one more; a
  // 256-record batch would have read some 9 blocks.
  CHECK(after.cache_misses - before.cache_misses <= 3);
  take(5);
  CHECK(e.stats().cache_misses == after.cache_misses);
  // A long scan still returns everything, in order.
  CHECK(scan(e).size() == 4000);
}

TEST_CASE("a get holds no lock while it reads a chunk file: writes from inside its callback complete") {
  // A get used to hold the store's shared lock through its block reads, and
  // a writer waits for that lock exclusively: from the callback, a put or a
  // checkpoint would wait forever (and readers back to back kept writers
  // waiting). Only the write buffer is probed under the lock.
  TempDir dir;
  DefaultEngine e(dir.path(), small(), bytes_types(), nullptr, 1, false);
  e.put("a", "value of a");
  e.checkpoint();  // "a" now lives in a chunk file only
  std::string seen;
  const bool found = e.find("a", [&](std::string_view v, const std::filesystem::path* file) {
    REQUIRE(file != nullptr);  // read from a chunk file, not a buffer
    e.put("b", "value of b");
    e.erase("a");
    e.checkpoint();  // a new Version replaces the one this get reads
    e.compact();     // and the file it reads from leaves the store
    seen = std::string(v);  // still valid: the get pinned its Version
  });
  CHECK(found);
  CHECK(seen == "value of a");
  CHECK(get(e, "b") == "value of b");
  CHECK(!get(e, "a"));
}
