// Tests of what users of a typed store expect beyond put/get/scan: insert,
// update (read-modify-write, atomic against other writers), erase_range and
// erase_prefix, scan_prefix, count and count_prefix, each checked against a
// std::map model across flushes, reopen and concurrent writers; and a
// Storage that moves (returned from a factory, kept in a container).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <stowage/stowage.hpp>

#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;

namespace {

// Small buffers so a few thousand writes freeze and flush many times.
Options small_options() {
  return Options{.cache_bytes = 256 << 10, .chunk_bytes = 8 << 10, .block_bytes = 512, .write_buffer_bytes = 32 << 10};
}

template <class Store>
std::map<typename Store::key_type, typename Store::mapped_type> contents(const Store& db) {
  std::map<typename Store::key_type, typename Store::mapped_type> out;
  for (const auto& [k, v] : db.scan()) out.emplace(k, v);
  return out;
}

template <class Range>
std::vector<std::string> keys_of(const Range& r) {
  std::vector<std::string> out;
  for (const auto& [k, v] : r) out.push_back(k);
  return out;
}

}  // namespace

TEST_CASE("insert stores only an absent key, wherever the present one lies") {
  TempDir dir("upd");
  Storage<std::string, std::string> db(dir.path(), small_options());
  CHECK(db.insert("a", "first"));
  CHECK_FALSE(db.insert("a", "second"));
  CHECK(db.get("a") == "first");
  db.checkpoint();  // now only in a chunk file
  CHECK_FALSE(db.insert("a", "third"));
  CHECK(db.get("a") == "first");
  CHECK(db.erase("a"));
  CHECK(db.insert("a", "fourth"));  // a tombstone in the buffer hides the chunk's record
  CHECK(db.get("a") == "fourth");
  CHECK(db.insert("b", "x"));
  CHECK(db.size() == 2);
  db.close();
  Storage<std::string, std::string> again(dir.path(), small_options());
  CHECK(again.get("a") == "fourth");
  CHECK_FALSE(again.insert("b", "y"));
  CHECK(again.get("b") == "x");
  CHECK(again.size() == 2);
}

TEST_CASE("update with Value& changes a stored value and leaves an absent key alone") {
  TempDir dir("upd");
  Storage<int, std::string> db(dir.path(), small_options());
  int calls = 0;
  CHECK_FALSE(db.update(1, [&](std::string& v) {
    ++calls;
    v += "!";
  }));
  CHECK(calls == 0);
  CHECK_FALSE(db.contains(1));
  db.put(1, "one");
  CHECK(db.update(1, [](std::string& v) { v += "!"; }));
  CHECK(db.get(1) == "one!");
  // Returning false writes nothing, even with the value changed.
  const auto put_before = db.stats().bytes_put;
  CHECK_FALSE(db.update(1, [](std::string& v) {
    v = "changed";
    return false;
  }));
  CHECK(db.get(1) == "one!");
  CHECK(db.stats().bytes_put == put_before);
  CHECK(db.update(1, [](std::string& v) { return (v += "?", true); }));
  CHECK(db.get(1) == "one!?");
}

TEST_CASE("update with std::optional<Value>& creates, changes and erases") {
  TempDir dir("upd");
  Storage<int, int> db(dir.path(), small_options());
  CHECK(db.update(7, [](std::optional<int>& v) {
    CHECK_FALSE(v);
    v = 1;
  }));
  CHECK(db.get(7) == 1);
  CHECK(db.size() == 1);
  db.checkpoint();
  CHECK(db.update(7, [](std::optional<int>& v) {
    REQUIRE(v);
    *v += 41;
  }));
  CHECK(db.get(7) == 42);
  CHECK(db.update(7, [](std::optional<int>& v) { v.reset(); }));
  CHECK_FALSE(db.contains(7));
  CHECK(db.size() == 0);
  // Empty stays empty: nothing to erase, nothing written.
  CHECK_FALSE(db.update(7, [](std::optional<int>& v) { CHECK_FALSE(v); }));
  CHECK(db.size() == 0);
}

TEST_CASE("update: an exception from fn writes nothing and propagates") {
  TempDir dir("upd");
  Storage<int, int> db(dir.path(), small_options());
  db.put(1, 10);
  CHECK_THROWS_AS(db.update(1,
                            [](int& v) {
                              v = 11;
                              throw std::runtime_error("no");
                            }),
                  std::runtime_error);
  CHECK(db.get(1) == 10);
  db.put(1, 12);  // the store still takes writes
  CHECK(db.get(1) == 12);
}

TEST_CASE("update is atomic against other writers: concurrent increments all count") {
  for (Durability durability : {Durability::none, Durability::sync}) {
    DYNAMIC_SECTION("durability " << static_cast<int>(durability)) {
      TempDir dir("upd");
      Options o = small_options();
      o.durability = durability;
      Storage<int, std::string> db(dir.path(), o);
      const int threads = 4;
      const int per_thread = durability == Durability::sync ? 150 : 1500;
      // Each value is a counter padded to 100 bytes, so the increments and
      // the other writes freeze and flush the buffer many times meanwhile.
      auto pad = [](long n) {
        std::string s = std::to_string(n);
        s.resize(100, ' ');
        return s;
      };
      std::vector<std::thread> pool;
      std::atomic<int> inserted{0};
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          for (int i = 0; i < per_thread; ++i) {
            db.update(i % 3, [&](std::optional<std::string>& v) { v = pad(v ? std::stol(*v) + 1 : 1); });
            if (db.insert(1000 + i, pad(t))) inserted.fetch_add(1);
            db.put(10000 + t * per_thread + i, pad(i));
          }
        });
      }
      for (auto& th : pool) th.join();
      long total = 0;
      for (int k = 0; k < 3; ++k) total += std::stol(db.get(k).value());
      CHECK(total == static_cast<long>(threads) * per_thread);
      CHECK(inserted.load() == per_thread);  // each key inserted by exactly one thread
      CHECK(db.size() == 3 + static_cast<std::size_t>(per_thread) + static_cast<std::size_t>(threads * per_thread));
      CHECK(db.stats().flushes > 0);
    }
  }
}

TEST_CASE("scan_prefix and count_prefix over string keys, zero and 0xFF bytes included") {
  TempDir dir("upd");
  Storage<std::string, int> db(dir.path(), small_options());
  const std::vector<std::string> keys = {"",     "a",   "ab",  std::string("ab\0x", 4), "abc", "abd",
                                         "ac",   "b",   "\xff", "\xff\xff",             std::string("\0", 1)};
  int i = 0;
  for (const auto& k : keys) db.put(k, i++);
  db.checkpoint();
  db.put("abz", 99);  // one in the buffer
  CHECK(keys_of(db.scan_prefix("ab")) ==
        std::vector<std::string>{"ab", std::string("ab\0x", 4), "abc", "abd", "abz"});
  CHECK(db.count_prefix("ab") == 5);
  CHECK(keys_of(db.scan_prefix(std::string("ab\0", 3))) == std::vector<std::string>{std::string("ab\0x", 4)});
  CHECK(keys_of(db.scan_prefix("\xff")) == std::vector<std::string>{"\xff", "\xff\xff"});
  CHECK(keys_of(db.scan_prefix(std::string("\0", 1))) == std::vector<std::string>{std::string("\0", 1)});
  CHECK(db.count_prefix("") == db.size());
  CHECK(db.count_prefix("zz") == 0);
  CHECK(keys_of(db.scan_prefix("zz")).empty());
}

TEST_CASE("scan_prefix and count_prefix over tuple and pair keys take leading elements") {
  TempDir dir("upd");
  using K = std::tuple<std::string, int, int>;
  Storage<K, int> db(dir.path(), small_options());
  for (const char* a : {"x", "xy", "y"})
    for (int b = -2; b < 3; ++b)
      for (int c = 0; c < 3; ++c) db.put(K{a, b, c}, b * 10 + c);
  std::vector<K> got;
  for (const auto& [k, v] : db.scan_prefix("x")) got.push_back(k);
  REQUIRE(got.size() == 15);  // "xy" is another first element, not a longer string
  for (const auto& k : got) CHECK(std::get<0>(k) == "x");
  got.clear();
  for (const auto& [k, v] : db.scan_prefix(std::tuple<std::string, int>("xy", -1))) got.push_back(k);
  CHECK(got == std::vector<K>{K{"xy", -1, 0}, K{"xy", -1, 1}, K{"xy", -1, 2}});
  CHECK(db.count_prefix(std::tuple<const char*, int, int>("y", 2, 2)) == 1);
  CHECK(db.count_prefix(std::string("q")) == 0);

  TempDir dir2("upd");
  Storage<std::pair<int, std::string>, int> pairs(dir2.path(), small_options());
  for (int a = 0; a < 4; ++a)
    for (const char* b : {"p", "q"}) pairs.put({a, b}, a);
  CHECK(pairs.count_prefix(2) == 2);
  for (const auto& [k, v] : pairs.scan_prefix(3)) CHECK(k.first == 3);
}

TEST_CASE("count(from, to) matches a model across buffer, tombstones and levels") {
  TempDir dir("upd");
  Storage<int, std::string> db(dir.path(), small_options());
  std::map<int, std::string> model;
  std::mt19937 rng(7);
  for (int i = 0; i < 6000; ++i) {
    const int k = static_cast<int>(rng() % 3000);
    if (rng() % 4 == 0) {
      db.discard(k);
      model.erase(k);
    } else {
      db.put(k, std::string(rng() % 50, 'v'));
      model[k] = "";
    }
  }
  for (int trial = 0; trial < 40; ++trial) {
    int a = static_cast<int>(rng() % 3200) - 100, b = static_cast<int>(rng() % 3200) - 100;
    if (a > b) std::swap(a, b);
    const auto expect = static_cast<std::size_t>(std::distance(model.lower_bound(a), model.lower_bound(b)));
    CHECK(db.count(a, b) == expect);
  }
  CHECK(db.count(5, 5) == 0);
  CHECK(db.count(10, 5) == 0);
}

TEST_CASE("erase_range and erase_prefix remove exactly the range, in several batches") {
  TempDir dir("upd");
  Storage<int, int> db(dir.path(), small_options());
  const int n = 5000;
  for (int i = 0; i < n; ++i) db.put(i, i);
  db.checkpoint();
  for (int i = 0; i < n; i += 2) db.put(i, -i);  // half of them also in the buffer
  const std::size_t erased = db.erase_range(100, 100 + 3 * static_cast<int>(Storage<int, int>::kEraseRangeBatch));
  CHECK(erased == 3 * Storage<int, int>::kEraseRangeBatch);
  CHECK(db.size() == static_cast<std::size_t>(n) - erased);
  CHECK(db.contains(99));
  CHECK_FALSE(db.contains(100));
  CHECK_FALSE(db.contains(99 + 3 * static_cast<int>(Storage<int, int>::kEraseRangeBatch)));
  CHECK(db.contains(100 + 3 * static_cast<int>(Storage<int, int>::kEraseRangeBatch)));
  CHECK(db.erase_range(100, 200) == 0);
  CHECK(db.erase_range(0, 0) == 0);
  db.close();
  Storage<int, int> again(dir.path(), small_options());
  CHECK(again.size() == static_cast<std::size_t>(n) - erased);
  CHECK(again.count(0, n) == again.size());

  TempDir dir2("upd");
  Storage<std::string, int> names(dir2.path(), small_options());
  for (const char* k : {"user/1", "user/2", "user/20", "userx", "team/1"}) names.put(k, 1);
  CHECK(names.erase_prefix("user/") == 3);
  CHECK(keys_of(names.scan()) == std::vector<std::string>{"team/1", "userx"});
}

TEST_CASE("insert, update, erase_range and discard against a std::map model, across reopen") {
  TempDir dir("upd");
  std::map<int, int> model;
  std::mt19937 rng(11);
  for (int round = 0; round < 3; ++round) {
    Storage<int, int> db(dir.path(), small_options());
    REQUIRE(contents(db) == model);
    for (int i = 0; i < 4000; ++i) {
      const int k = static_cast<int>(rng() % 1500);
      switch (rng() % 6) {
        case 0: {
          const bool stored = db.insert(k, i);
          CHECK(stored == (model.count(k) == 0));
          if (stored) model[k] = i;
          break;
        }
        case 1: {
          const bool wrote = db.update(k, [](int& v) { v += 1; });
          CHECK(wrote == (model.count(k) == 1));
          if (wrote) model[k] += 1;
          break;
        }
        case 2:
          db.update(k, [&](std::optional<int>& v) {
            if (v && *v % 2 == 0)
              v.reset();
            else
              v = k;
          });
          if (model.count(k) && model[k] % 2 == 0)
            model.erase(k);
          else
            model[k] = k;
          break;
        case 3:
          if (rng() % 20 == 0) {
            const int to = k + static_cast<int>(rng() % 100);
            CHECK(db.erase_range(k, to) ==
                  static_cast<std::size_t>(std::distance(model.lower_bound(k), model.lower_bound(to))));
            model.erase(model.lower_bound(k), model.lower_bound(to));
          }
          break;
        case 4:
          db.discard(k);
          model.erase(k);
          break;
        default:
          db.put(k, -i);
          model[k] = -i;
      }
    }
    CHECK(contents(db) == model);
    CHECK(db.size() == model.size());
  }
}

namespace {
Storage<std::string, int> open_counter_store(const std::filesystem::path& dir) {
  Storage<std::string, int> db(dir, small_options());
  db.insert("opened", 0);
  db.update("opened", [](int& n) { ++n; });
  return db;  // moved out (no copy elision is required for a named local)
}
}  // namespace

TEST_CASE("a Storage moves: from a factory, into a container, iterators survive, moved-from throws") {
  TempDir dir("upd");
  Storage<std::string, int> db = open_counter_store(dir.path() / "a");
  CHECK(db.get("opened") == 1);
  for (int i = 0; i < 100; ++i) db.put("k" + std::to_string(100 + i), i);
  auto range = db.scan_prefix("k1");
  auto it = range.begin();
  std::vector<Storage<std::string, int>> stores;
  stores.push_back(std::move(db));
  stores.push_back(open_counter_store(dir.path() / "b"));
  stores.emplace_back(dir.path() / "c", small_options());  // the vector grows: every store moves again
  // The iterator taken before the moves reads on, from the same store.
  std::size_t seen = 0;
  for (; it != range.end(); ++it) ++seen;
  CHECK(seen == 100);
  CHECK(stores[0].size() == 101);
  CHECK(stores[1].get("opened") == 1);
  stores[2].put("x", 1);
  CHECK_THROWS_AS(db.get("opened"), ValidationError);  // NOLINT(bugprone-use-after-move): the point
  CHECK_THROWS_AS(db.put("x", 1), ValidationError);
  // Move assignment closes the target's store first: it can be opened again.
  stores[1] = std::move(stores[2]);
  CHECK(stores[1].get("x") == 1);
  Storage<std::string, int> reopened(dir.path() / "b", small_options());
  CHECK(reopened.get("opened") == 1);
  db = std::move(reopened);  // a moved-from Storage may be assigned to
  CHECK(db.get("opened") == 1);
}

namespace {
template <class Range>
std::vector<std::pair<int, int>> pairs_of(const Range& r) {
  std::vector<std::pair<int, int>> out;
  for (const auto& [k, v] : r) out.emplace_back(k, v);
  return out;
}
template <class It>
std::vector<std::pair<int, int>> model_desc(It first, It last) {
  std::vector<std::pair<int, int>> out(first, last);
  std::reverse(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_CASE("reversed scans return the records of a range in descending order, across every layer") {
  TempDir dir("upd");
  std::map<int, int> model;
  std::mt19937 rng(23);
  Storage<int, int> db(dir.path(), small_options());
  CHECK(pairs_of(db.scan().reversed()).empty());
  for (int round = 0; round < 4; ++round) {
    // Records in several level-0 runs, compacted levels, the frozen and the
    // active buffer, with tombstones hiding older records at every layer.
    for (int i = 0; i < 3000; ++i) {
      const int k = static_cast<int>(rng() % 4000);
      if (rng() % 5 == 0) {
        db.discard(k);
        model.erase(k);
      } else {
        db.put(k, i);
        model[k] = i;
      }
    }
    if (round == 1) db.checkpoint();
    if (round == 2) db.compact();
    CHECK(pairs_of(db.scan().reversed()) == model_desc(model.begin(), model.end()));
    for (int t = 0; t < 30; ++t) {
      int a = static_cast<int>(rng() % 4200) - 100, b = static_cast<int>(rng() % 4200) - 100;
      if (a > b) std::swap(a, b);
      CHECK(pairs_of(db.scan(a, b).reversed()) == model_desc(model.lower_bound(a), model.lower_bound(b)));
      CHECK(pairs_of(db.scan(a).reversed()) == model_desc(model.lower_bound(a), model.end()));
    }
    // reversed() twice is forward again.
    CHECK(pairs_of(db.scan(10, 500).reversed().reversed()) ==
          std::vector<std::pair<int, int>>(model.lower_bound(10), model.lower_bound(500)));
  }
  db.close();
  Storage<int, int> again(dir.path(), small_options());
  CHECK(pairs_of(again.scan().reversed()) == model_desc(model.begin(), model.end()));
}

TEST_CASE("a reversed scan sees writes made during it below its position, never a key twice") {
  TempDir dir("upd");
  Storage<int, int> db(dir.path(), small_options());
  for (int i = 0; i < 4000; i += 2) db.put(i, i);
  db.checkpoint();
  std::vector<int> seen;
  int writes = 0;
  for (const auto& [k, v] : db.scan().reversed()) {
    if (!seen.empty()) REQUIRE(k < seen.back());
    seen.push_back(k);
    if (k % 100 == 0 && k > 0) {
      db.put(k - 1, -1);  // below the position: seen next
      db.put(k + 1, -1);  // above it: not seen
      db.discard(k - 2);  // below: never seen
      ++writes;
    }
  }
  CHECK(writes > 30);
  for (int k : seen) {
    CHECK((k % 2 == 0 || k % 100 == 99));
    CHECK((k % 100 != 98 || k > 3900));  // 3998 lies above every key that erased one
  }
  CHECK(std::count_if(seen.begin(), seen.end(), [](int k) { return k % 100 == 99; }) == writes);
}

TEST_CASE("reversed prefix scans over string keys") {
  TempDir dir("upd");
  Storage<std::string, int> db(dir.path(), small_options());
  for (int i = 0; i < 500; ++i) db.put("log/" + std::to_string(1000 + i), i);
  db.put("log0", -1);
  db.put("lof", -2);
  db.checkpoint();
  db.put("log/1500", 500);
  std::vector<std::string> last3;
  for (const auto& [k, v] : db.scan_prefix("log/").reversed()) {
    last3.push_back(k);
    if (last3.size() == 3) break;
  }
  CHECK(last3 == std::vector<std::string>{"log/1500", "log/1499", "log/1498"});
  CHECK(keys_of(db.scan_prefix("log/").reversed()).size() == 501);
}

TEST_CASE("a Batch commits puts and erases together; later operations on a key win") {
  TempDir dir("upd");
  Storage<int, std::string> db(dir.path(), small_options());
  db.put(1, "one");
  db.put(2, "two");
  db.checkpoint();
  auto batch = db.batch();
  CHECK(batch.empty());
  batch.put(3, "three").erase(1).put(4, "four").erase(4).put(2, "deux").erase(99);
  CHECK(batch.size() == 6);
  CHECK(db.get(1) == "one");  // nothing happens before commit()
  CHECK_FALSE(db.contains(3));
  batch.commit();
  CHECK(batch.empty());
  CHECK_FALSE(db.contains(1));
  CHECK(db.get(2) == "deux");
  CHECK(db.get(3) == "three");
  CHECK_FALSE(db.contains(4));  // put then erased in the same batch
  CHECK(db.size() == 2);
  batch.erase(2).put(4, "again");
  batch.commit();
  batch.commit();  // empty: nothing
  CHECK(db.size() == 2);
  // A bad operation throws where it is added; the batch keeps the good ones.
  batch.put(5, "five");
  CHECK_THROWS_AS(batch.put(6, std::string(kMaxValueBytes + 1, 'x')), ValidationError);
  CHECK(batch.size() == 1);
  batch.clear();
  batch.commit();
  CHECK_FALSE(db.contains(5));
  // The batch refers to the engine: it survives a move of the Storage.
  batch.put(7, "seven");
  Storage<int, std::string> moved = std::move(db);
  batch.commit();
  CHECK(moved.get(7) == "seven");
  moved.close();
  Storage<int, std::string> again(dir.path(), small_options());
  CHECK(again.get(3) == "three");
  CHECK(again.get(4) == "again");
  CHECK(again.get(7) == "seven");
  CHECK_FALSE(again.contains(2));
  CHECK(again.size() == 3);
}
