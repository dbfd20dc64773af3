// End-to-end tests of Storage: the API contract, persistence, ordering,
// checkpoints, options, policy checks and user-written policies.
#include <catch2/catch.hpp>

#include <future>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>
#include <tuple>

#include <sys/wait.h>

#include <stowage/stowage.hpp>

#include "fault_fs.hpp"
#include "fifo_eviction.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;

namespace {

struct Person {
  std::string name;
  int age = 0;
  std::vector<std::string> tags;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & name & age & tags;
  }
  bool operator==(const Person&) const = default;
};

// Small chunks, blocks and buffers so a few thousand records exercise
// checkpoints, splits and many chunk files.
Options small_options() {
  return Options{.cache_bytes = 256 << 10, .chunk_bytes = 8 << 10, .block_bytes = 512, .write_buffer_bytes = 32 << 10};
}

std::string value_for(int i) { return "value-" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 37), 'x'); }

}  // namespace

TEST_CASE("put, get, contains, erase and reopen") {
  TempDir dir("storage");
  {
    Storage<std::string, Person> db(dir.path());
    db.put("ada", Person{"Ada", 36, {"math"}});
    db.put("bob", Person{"Bob", 41, {}});
    CHECK(db.get("ada") == Person{"Ada", 36, {"math"}});
    CHECK(db.contains("bob"));
    CHECK_FALSE(db.get("carol"));
    CHECK(db.erase("bob"));
    CHECK_FALSE(db.erase("bob"));
    CHECK_FALSE(db.contains("bob"));
    CHECK(db.size() == 1);
  }
  Storage<std::string, Person> db(dir.path());
  CHECK(db.get("ada") == Person{"Ada", 36, {"math"}});
  CHECK_FALSE(db.contains("bob"));
  CHECK(db.size() == 1);
}

TEST_CASE("many records through checkpoints, splits and reopen") {
  TempDir dir("storage");
  std::map<int, std::string> model;
  std::mt19937 rng(42);
  {
    Storage<int, std::string> db(dir.path(), small_options());
    for (int i = 0; i < 20000; ++i) {
      int k = static_cast<int>(rng() % 8000) - 4000;
      if (rng() % 5 == 0) {
        CHECK(db.erase(k) == (model.erase(k) == 1));
      } else {
        db.put(k, value_for(i));
        model[k] = value_for(i);
      }
    }
    CHECK(db.size() == model.size());
    auto st = db.stats();
    CHECK(st.chunks > 10);
    CHECK(st.checkpoints > 5);
    CHECK(st.records == model.size());
  }
  Storage<int, std::string> db(dir.path(), small_options());
  CHECK(db.size() == model.size());
  for (int k = -4000; k < 4000; ++k) {
    auto it = model.find(k);
    auto got = db.get(k);
    if (it == model.end()) {
      CHECK_FALSE(got);
    } else {
      REQUIRE(got);
      CHECK(*got == it->second);
    }
  }
  // Scan order is std::less<int>, negatives first.
  std::vector<std::pair<int, std::string>> scanned;
  for (const auto& [k, v] : db.scan()) scanned.emplace_back(k, v);
  CHECK(scanned == std::vector<std::pair<int, std::string>>(model.begin(), model.end()));
}

TEST_CASE("scan ranges: from, from-to, empty, over buffer and chunks") {
  TempDir dir("storage");
  Storage<int, int> db(dir.path(), small_options());
  for (int i = 0; i < 3000; i += 2) db.put(i, i * 10);
  db.checkpoint();
  for (int i = 1; i < 3000; i += 4) db.put(i, i * 10);  // in the write buffer
  db.erase(100);                                          // tombstone over a chunk record
  std::vector<int> keys;
  for (const auto& [k, v] : db.scan(95, 110)) {
    CHECK(v == k * 10);
    keys.push_back(k);
  }
  CHECK(keys == std::vector<int>{96, 97, 98, 101, 102, 104, 105, 106, 108, 109});
  keys.clear();
  for (const auto& kv : db.scan(2990)) keys.push_back(kv.first);
  CHECK(keys == std::vector<int>{2990, 2992, 2993, 2994, 2996, 2997, 2998});
  CHECK(db.scan(5000).begin() == db.scan(5000).end());
  CHECK(db.scan(10, 10).begin() == db.scan(10, 10).end());
  std::size_t n = 0;
  for (auto it = db.scan().begin(); it != db.scan().end(); ++it) ++n;
  CHECK(n == db.size());
}

TEST_CASE("writes inside a scan loop are allowed and the scan stays ordered") {
  TempDir dir("storage");
  Storage<int, int> db(dir.path(), small_options());
  for (int i = 0; i < 2000; ++i) db.put(i * 2, 0);
  db.checkpoint();
  int prev = -1;
  std::size_t seen = 0;
  for (const auto& [k, v] : db.scan()) {
    CHECK(k > prev);
    prev = k;
    ++seen;
    if (k % 2 == 0 && k < 3000) db.put(k + 1, 1);  // lands just after the current key
    if (k % 100 == 0) db.checkpoint();             // chunks replaced under the iterator
  }
  CHECK(seen == 2000 + 1500);
  CHECK(db.size() == 3500);
}

TEST_CASE("structured bindings over string keys ascend in std::less order") {
  TempDir dir("storage");
  Storage<std::string, int> db(dir.path());
  std::vector<std::string> keys = {"b", "a", "", "ab", std::string("a\0b", 3), "\xff", "B"};
  for (std::size_t i = 0; i < keys.size(); ++i) db.put(keys[i], static_cast<int>(i));
  std::sort(keys.begin(), keys.end());
  std::vector<std::string> got;
  for (auto const& [k, v] : db.scan()) got.push_back(k);
  CHECK(got == keys);
}

// ---- scans against a std::map model ------------------------------------------

namespace {

// Scans db over [from, to) (either may be absent) and checks every step
// against the model: each record must be the model's first key after the
// previous one (or at `from`), with its current value. After each record
// `step(key)` may write to db and model alike; it runs inside the loop, so
// the scan must see the writes that land after the current key. Returns the
// number of records seen.
template <class Db, class K, class V, class Step>
std::size_t check_scan(Db& db, std::map<K, V>& model, std::optional<K> from, std::optional<K> to, Step&& step) {
  std::size_t seen = 0;
  std::optional<K> prev;
  bool ok = true;
  auto run = [&](auto&& range) {
    for (const auto& [k, v] : range) {
      auto want = prev ? model.upper_bound(*prev) : (from ? model.lower_bound(*from) : model.begin());
      if (want == model.end() || (to && !(want->first < *to)) || !(want->first == k) || !(want->second == v)) {
        ok = false;
        break;
      }
      prev = k;
      ++seen;
      step(k);
    }
  };
  if (from && to)
    run(db.scan(*from, *to));
  else if (from)
    run(db.scan(*from));
  else
    run(db.scan());
  CHECK(ok);
  // Nothing was left out at the end either.
  auto rest = prev ? model.upper_bound(*prev) : (from ? model.lower_bound(*from) : model.begin());
  if (ok) CHECK((rest == model.end() || (to && !(rest->first < *to))));
  return seen;
}

// Tiny blocks (a handful of records each) so that batches end often.
Options tiny_block_options() {
  return Options{.cache_bytes = 256 << 10, .chunk_bytes = 4 << 10, .block_bytes = 256, .write_buffer_bytes = 16 << 10};
}

}  // namespace

TEST_CASE("scans over many records, bounds and layers agree with a std::map model") {
  TempDir dir("storage");
  std::map<int, std::string> model;
  std::mt19937 rng(7);
  Storage<int, std::string> db(dir.path(), tiny_block_options());
  auto noop = [](int) {};
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 3000; ++i) {
      int k = static_cast<int>(rng() % 6000);
      if (rng() % 4 == 0) {
        db.erase(k);
        model.erase(k);
      } else {
        std::string v = value_for(static_cast<int>(rng() % 100000));
        db.put(k, v);
        model[k] = v;
      }
    }
    if (round % 2 == 0) db.checkpoint();  // odd rounds leave records in the write buffer, over chunks
    CHECK(check_scan<decltype(db), int, std::string>(db, model, std::nullopt, std::nullopt, noop) == model.size());
    for (int r = 0; r < 40; ++r) {
      int a = static_cast<int>(rng() % 6200) - 100, b = a + static_cast<int>(rng() % 700);
      check_scan<decltype(db), int, std::string>(db, model, a, b, noop);
      check_scan<decltype(db), int, std::string>(db, model, a, std::nullopt, noop);
    }
  }
  CHECK(db.stats().chunks > 20);
}

TEST_CASE("writes and erases inside a scan, around block boundaries, are seen as they happen") {
  TempDir dir("storage");
  std::map<int, std::string> model;
  Storage<int, std::string> db(dir.path(), tiny_block_options());
  for (int i = 0; i < 4000; i += 2) {
    db.put(i, value_for(i));
    model[i] = value_for(i);
  }
  db.checkpoint();
  for (int i = 1; i < 4000; i += 14) {  // some buffered records among the chunk records
    db.put(i, value_for(i));
    model[i] = value_for(i);
  }
  int steps = 0;
  auto both_put = [&](int k, const std::string& v) {
    db.put(k, v);
    model[k] = v;
  };
  auto both_erase = [&](int k) {
    db.erase(k);
    model.erase(k);
  };
  std::size_t seen = check_scan<decltype(db), int, std::string>(db, model, std::nullopt, std::nullopt, [&](int k) {
    ++steps;
    if (k % 6 == 0) both_erase(k + 2);                    // the next record, often in the same block
    if (k % 10 == 0) both_put(k + 1, "inserted");         // a new record right after the current one
    if (k % 14 == 4) both_put(k + 4, "overwritten");      // a later record changes its value
    if (k % 22 == 8) both_erase(k + 9);                   // an erase further on
    if (k % 400 == 0) db.checkpoint();                    // chunks replaced under the iterator
  });
  CHECK(seen == static_cast<std::size_t>(steps));
  CHECK(seen > 1500);
  CHECK(db.size() == model.size());
  // And bounded scans that start and end inside blocks, with writes inside.
  for (int from : {3, 17, 250, 1001}) {
    check_scan<decltype(db), int, std::string>(db, model, from, from + 301, [&](int k) {
      if (k % 3 == 0) both_put(k + 2, "again");
      if (k % 5 == 0) both_erase(k + 1);
    });
  }
  CHECK(db.size() == model.size());
}

TEST_CASE("a scan across many chunks after checkpoints, read cold with readahead") {
  TempDir dir("storage");
  std::map<std::string, std::string> model;
  {
    Storage<std::string, std::string> db(dir.path(), tiny_block_options());
    for (int i = 0; i < 6000; ++i) {
      std::string k = "key-" + std::to_string(i * 7919 % 6000);
      db.put(k, value_for(i));
      model[k] = value_for(i);
      if (i % 1500 == 1499) db.checkpoint();
    }
  }
  // Reopened: nothing is cached, so the scan reads every block itself
  // (many per read once it has streamed through a few).
  Storage<std::string, std::string> db(dir.path(), tiny_block_options());
  CHECK(db.stats().chunks > 50);
  auto noop = [](const std::string&) {};
  CHECK(check_scan<decltype(db), std::string, std::string>(db, model, std::nullopt, std::nullopt, noop) ==
        model.size());
  check_scan<decltype(db), std::string, std::string>(db, model, std::string("key-1234"), std::string("key-4"), noop);
  check_scan<decltype(db), std::string, std::string>(db, model, std::string("key-2"), std::nullopt, noop);
  // An empty range and a range before every key.
  CHECK(db.scan("key-3", "key-3").begin() == db.scan().end());
  CHECK(check_scan<decltype(db), std::string, std::string>(db, model, std::string("a"), std::string("b"), noop) == 0);
}

TEST_CASE("scan values reuse memory correctly: shorter, empty and absent values after longer ones") {
  TempDir dir("storage");
  using V = std::tuple<std::string, std::vector<int>, std::optional<std::string>, std::map<int, int>>;
  std::map<std::pair<std::string, int>, V> model;
  Storage<std::pair<std::string, int>, V> db(dir.path(), tiny_block_options());
  for (int i = 0; i < 500; ++i) {
    V v{std::string(static_cast<std::size_t>((i * 37) % 300), 'a'), std::vector<int>(static_cast<std::size_t>(i % 7), i),
        i % 3 == 0 ? std::nullopt : std::optional<std::string>(std::to_string(i)),
        i % 2 ? std::map<int, int>{{i, i}} : std::map<int, int>{}};
    std::pair<std::string, int> k{std::string(static_cast<std::size_t>(i % 5), 'k'), i};
    db.put(k, v);
    model[k] = v;
    if (i == 250) db.checkpoint();
  }
  auto noop = [](const std::pair<std::string, int>&) {};
  CHECK(check_scan<decltype(db), std::pair<std::string, int>, V>(db, model, std::nullopt, std::nullopt, noop) ==
        model.size());
  // User objects are decoded fresh each time: a record without tags after one with them.
  TempDir d2("storage");
  Storage<int, Person> people(d2.path(), tiny_block_options());
  for (int i = 0; i < 300; ++i) people.put(i, Person{std::string(static_cast<std::size_t>(i % 4), 'p'), i, i % 2 ? std::vector<std::string>{"x", "y"} : std::vector<std::string>{}});
  int n = 0;
  for (const auto& [k, p] : people.scan()) {
    CHECK(p == Person{std::string(static_cast<std::size_t>(k % 4), 'p'), k, k % 2 ? std::vector<std::string>{"x", "y"} : std::vector<std::string>{}});
    ++n;
  }
  CHECK(n == 300);
}

TEST_CASE("copied scan iterators continue on their own") {
  TempDir dir("storage");
  Storage<int, int> db(dir.path(), tiny_block_options());
  for (int i = 0; i < 1000; ++i) db.put(i, -i);
  db.checkpoint();
  auto range = db.scan(100);
  auto it = range.begin();
  for (int i = 0; i < 5; ++i) ++it;
  auto copy = it;           // mid-batch
  auto old = it++;          // post-increment returns the position before
  CHECK(old->first == 105);
  CHECK(it->first == 106);
  CHECK(copy == old);
  db.erase(106);
  db.erase(107);  // the copy sees the store as it is at its next step
  ++copy;
  CHECK(copy->first == 108);
  CHECK(copy->second == -108);
  ++it;  // `it` already returned 106; it goes on after it
  CHECK(it->first == 108);
  int count = 0;
  for (; copy != range.end(); ++copy) ++count;
  CHECK(count == 1000 - 108 - 0);
}

TEST_CASE("put_batch and get_batch") {
  TempDir dir("storage");
  Storage<int, std::string> db(dir.path());
  std::vector<std::pair<int, std::string>> batch;
  for (int i = 0; i < 1000; ++i) batch.emplace_back(i, value_for(i));
  db.put_batch(batch);
  std::map<int, std::string> as_map{{5000, "x"}, {5001, "y"}};
  db.put_batch(as_map);
  auto got = db.get_batch(std::vector<int>{0, 999, 1000, 5001});
  REQUIRE(got.size() == 4);
  CHECK(got[0] == value_for(0));
  CHECK(got[1] == value_for(999));
  CHECK_FALSE(got[2]);
  CHECK(got[3] == "y");
  CHECK(db.size() == 1002);
  db.put_batch(std::vector<std::pair<int, std::string>>{});  // empty: nothing happens
  CHECK(db.stats().last_sequence == 1002);
}

TEST_CASE("size is exact over overwrites and erases across checkpoints") {
  TempDir dir("storage");
  Storage<int, int> db(dir.path(), small_options());
  for (int i = 0; i < 1000; ++i) db.put(i, i);
  db.checkpoint();
  for (int i = 0; i < 1000; i += 2) db.put(i, -i);  // overwrite: no change
  CHECK(db.size() == 1000);
  for (int i = 0; i < 1000; i += 3) db.erase(i);
  for (int i = 1000; i < 1100; ++i) db.put(i, i);
  CHECK(db.size() == 1000 - 334 + 100);
  db.checkpoint();
  CHECK(db.size() == 1000 - 334 + 100);
  CHECK(db.stats().records == 766);
}

TEST_CASE("size() looks buffered keys up on disk with no lock a writer or reader needs") {
  // size() must learn which buffered keys the files already hold. It reads
  // the files for that with no lock held: a put and a get from other threads
  // complete while it is inside a file read (with the exclusive lock held
  // there, they could not, and the futures below would time out).
  TempDir dir("storage");
  {
    Storage<int, int> db(dir.path(), small_options());
    for (int i = 0; i < 3000; ++i) db.put(i, i);
    db.compact();
  }
  auto fs = stowage_test::FaultFileSystem::make(dir.path());
  Options o = small_options();
  o.file_system = fs;
  o.cache_bytes = 8 << 20;
  o.write_buffer_bytes = 4 << 20;  // no freeze, so no flush thread reads files meanwhile
  o.auto_compaction = false;
  Storage<int, int> db(dir.path(), o);
  for (int i = 0; i < 3000; i += 3) db.put(i, -i);  // present below: no change
  for (int i = 3000; i < 3100; ++i) db.put(i, i);   // new
  bool put_done = false, get_done = false;
  std::atomic<int> reads_seen{0};
  // Outside the hook: if they were blocked, the hook still returns (after
  // the timeouts) and the test fails instead of hanging.
  std::future<void> put;
  std::future<std::optional<int>> get;
  fs->set_hook(stowage_test::kOpRead, [&](unsigned, const std::filesystem::path& p) {
    if (p.extension() != ".chunk" || reads_seen++ > 0) return;  // the first chunk file size() opens
    put = std::async(std::launch::async, [&] { db.put(5000, 1); });
    get = std::async(std::launch::async, [&] { return db.get(2); });  // from the files
    put_done = put.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
    get_done = get.wait_for(std::chrono::seconds(30)) == std::future_status::ready && get.get() == 2;
  });
  const std::size_t n = db.size();
  fs->set_hook(0, nullptr);
  REQUIRE(reads_seen > 0);
  CHECK(put_done);
  CHECK(get_done);
  CHECK(n == 3101);  // the put from inside counts: it was written before size() counted
  CHECK(db.size() == 3101);
  CHECK(db.stats().records == 3101);
}

TEST_CASE("size() settles more unknown buffered keys than one batch, and stays exact") {
  // Overwrites, new keys and discards of present and absent keys, all in
  // one unflushed buffer: size() looks them up a batch at a time.
  TempDir dir("storage");
  {
    Storage<int, int> db(dir.path(), small_options());
    for (int i = 0; i < 30000; ++i) db.put(i, i);
    db.compact();
  }
  Options o = small_options();
  o.cache_bytes = 64 << 20;
  o.write_buffer_bytes = 32 << 20;  // no freeze: every key below stays unknown until size()
  o.auto_compaction = false;
  Storage<int, int> db(dir.path(), o);
  for (int i = 0; i < 30000; i += 2) db.put(i, -i);      // 15,000 present below
  for (int i = 30000; i < 45000; ++i) db.put(i, i);      // 15,000 new
  for (int i = 1; i < 6001; i += 2) db.discard(i);       // 3,000 present below
  for (int i = 100000; i < 102000; ++i) db.discard(i);  // 2,000 never stored
  CHECK(db.size() == 30000 + 15000 - 3000);
  CHECK(db.stats().checkpoints == 0);  // nothing was flushed: size() looked every key up
  for (int i = 45000; i < 46000; ++i) db.put(i, i);
  db.discard(0);
  CHECK(db.size() == 30000 + 15000 - 3000 + 1000 - 1);
  CHECK(db.stats().records == db.size());
}

TEST_CASE("stats report records, chunks, cache and disk") {
  TempDir dir("storage");
  Storage<int, std::string> db(dir.path(), small_options());
  for (int i = 0; i < 5000; ++i) db.put(i, value_for(i));
  db.checkpoint();
  for (int i = 0; i < 5000; i += 7) CHECK(db.get(i));
  for (int i = 0; i < 5000; i += 7) CHECK(db.get(i));
  auto s = db.stats();
  CHECK(s.records == 5000);
  CHECK(s.chunks > 1);
  CHECK(s.cache_hits > 0);
  CHECK(s.cache_misses > 0);
  CHECK(s.cache_bytes <= s.cache_capacity);
  CHECK(s.disk_bytes > 0);
  CHECK(s.last_sequence == 5000);
  CHECK(s.checkpoints >= 1);
}

TEST_CASE("the cache stays within its budget while reading a larger store") {
  TempDir dir("storage");
  Options o = small_options();
  Storage<int, std::string> db(dir.path(), o);
  for (int i = 0; i < 20000; ++i) db.put(i, std::string(100, static_cast<char>('a' + i % 26)));
  db.checkpoint();
  std::mt19937 rng(1);
  std::uint64_t worst = 0;
  for (int i = 0; i < 20000; ++i) {
    CHECK(db.get(static_cast<int>(rng() % 20000)));
    if (i % 1000 == 0) worst = std::max(worst, db.stats().cache_bytes + db.stats().write_buffer_bytes);
  }
  CHECK(db.stats().cache_evictions > 0);
  CHECK(worst <= o.cache_bytes);
}

TEST_CASE("chunk metadata stays cached while blocks stream through, with few files open") {
  TempDir dir("storage");
  Options o = small_options();
  o.cache_bytes = 1 << 20;  // the metadata (~160 KiB) fits well within three quarters of each shard
  o.max_open_files = 2;
  Storage<int, std::string> db(dir.path(), o);
  // Random letters, which LZ4 barely shrinks: the blocks do not all fit the
  // cache even packed (see Stats::block_form).
  std::mt19937 letters(7);
  for (int i = 0; i < 20000; ++i) {
    std::string v(100, ' ');
    for (auto& ch : v) ch = static_cast<char>('a' + letters() % 26);
    db.put(i, v);
  }
  // compact(), not checkpoint(): after a checkpoint a background compaction
  // may still install a new version between the two stats below, and the
  // metadata of its files would count twice.
  db.compact();
  REQUIRE(db.stats().chunks > 10);
  std::mt19937 rng(3);
  for (int i = 0; i < 20000; ++i) REQUIRE(db.get(static_cast<int>(rng() % 20000)));
  auto s = db.stats();
  CHECK(s.cache_evictions > 0);          // blocks came and went
  CHECK(s.metadata_bytes > 0);
  CHECK(s.metadata_bytes <= s.cache_bytes);
  CHECK(s.cache_bytes <= s.cache_capacity);
  CHECK(s.open_files <= 2);
  // Every chunk's metadata was loaded once and kept: a second round opens
  // files for blocks only, never re-reads metadata.
  auto misses_before = s.cache_misses;
  auto opens_before = s.file_opens;
  for (int i = 0; i < 20000; i += 97) REQUIRE(db.get(i));
  auto t = db.stats();
  CHECK(t.metadata_bytes == s.metadata_bytes);
  CHECK(t.cache_misses - misses_before <= t.file_opens - opens_before + (20000 / 97 + 1));
  CHECK(t.open_files <= 2);
  std::size_t n = 0;
  for (const auto& kv : db.scan()) n += kv.second.size() == 100;
  CHECK(n == 20000);
  CHECK(db.stats().open_files <= 2);
}

TEST_CASE("a chunk file that changes size after the store closed it is corruption") {
  TempDir dir("storage");
  Options o = small_options();
  o.max_open_files = 1;
  {
    Storage<int, std::string> db(dir.path(), o);
    for (int i = 0; i < 5000; ++i) db.put(i, value_for(i));
  }
  Storage<int, std::string> db(dir.path(), o);
  REQUIRE(db.get(0));  // the first chunk's metadata is cached, its file closed later
  REQUIRE(db.get(4999));
  std::filesystem::path first;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    if (e.path().extension() == ".chunk" && (first.empty() || e.path() < first)) first = e.path();
  REQUIRE(!first.empty());
  std::filesystem::resize_file(first, std::filesystem::file_size(first) + 1);
  bool threw = false;
  for (int i = 0; i < 5000 && !threw; i += 50) {
    try {
      (void)db.get(i);
    } catch (const CorruptionError& e) {
      threw = std::string(e.what()).find("changed size") != std::string::npos;
    }
  }
  CHECK(threw);
}


TEST_CASE("chunks keep sequence numbers above the last level and 0 at it; the data stays right across reopen") {
  TempDir dir("storage");
  Options o = small_options();
  o.checkpoint_on_close = false;
  {
    Storage<int, std::string> db(dir.path(), o);
    for (int i = 0; i < 3000; ++i) db.put(i, value_for(i));
    db.checkpoint();
    for (int i = 0; i < 3000; i += 3) db.put(i, value_for(i + 1));  // newer versions in newer files
    db.checkpoint();
    for (int i = 0; i < 3000; i += 5) db.put(i, "wal-" + std::to_string(i));  // left in the WAL
  }
  auto fs = default_file_system();
  // Every file's records: sequence 0 at the last level, their own above it.
  auto check_files = [&](bool all_last) {
    std::size_t files = 0, records = 0;
    auto m = detail::read_manifest(*fs, dir.path());
    for (const auto& c : m.keyspace(detail::kDefaultKeyspace)->chunks) {
      ++files;
      const bool last = c.level == detail::kLastLevel;
      if (all_last) CHECK(last);
      auto t = detail::ChunkTable<Lz4Compression>::open(*fs, dir / detail::chunk_file_name(c.file));
      std::uint64_t max_seq = 0;
      for (std::size_t b = 0; b < t->block_count(); ++b) {
        auto block = t->read_block(b);
        for (std::size_t r = 0; r < block->size(); ++r, ++records) {
          if (last) CHECK(block->seq(r) == 0);
          if (!last) CHECK(block->seq(r) > 0);
          max_seq = std::max<std::uint64_t>(max_seq, block->seq(r));
        }
      }
      CHECK(t->max_seq() == max_seq);
    }
    CHECK(files >= 1);
    return records;
  };
  CHECK(check_files(false) >= 3000);
  Storage<int, std::string> db(dir.path(), o);
  auto check_values = [&] {
    for (int i = 0; i < 3000; ++i) {
      std::string want = i % 5 == 0 ? "wal-" + std::to_string(i) : value_for(i % 3 == 0 ? i + 1 : i);
      REQUIRE(db.get(i) == want);
    }
  };
  check_values();
  db.compact();  // everything at the last level: sequence numbers 0, one record per key
  CHECK(check_files(true) == 3000);
  check_values();
}

TEST_CASE("a full scan does not push hot blocks out of the cache") {
  TempDir dir("storage");
  Options o = small_options();
  Storage<int, std::string> db(dir.path(), o);
  for (int i = 0; i < 20000; ++i) db.put(i, std::string(100, static_cast<char>('a' + i % 26)));
  db.checkpoint();
  for (int round = 0; round < 2; ++round)
    for (int i = 0; i < 200; ++i) CHECK(db.get(i));  // the hot set: a few blocks
  auto before = db.stats();
  std::size_t n = 0;
  for (const auto& kv : db.scan()) n += kv.second.size() > 0;
  CHECK(n == 20000);
  auto mid = db.stats();
  for (int i = 0; i < 200; ++i) CHECK(db.get(i));
  auto after = db.stats();
  CHECK(after.cache_misses == mid.cache_misses);  // every hot get still hits
  CHECK(after.cache_hits == mid.cache_hits + 400);  // chunk table + block per get
  CHECK(mid.cache_bytes <= before.cache_bytes + 64 * 1024);  // the scan kept (almost) nothing
}

TEST_CASE("read_only opens see the data and refuse writes") {
  TempDir dir("storage");
  {
    Storage<int, int> db(dir.path(), Options{.checkpoint_on_close = false});
    db.put(1, 10);
    db.flush();
  }  // WAL still holds the record
  Storage<int, int> ro(dir.path(), Options{.read_only = true});
  CHECK(ro.get(1) == 10);
  CHECK_THROWS_AS(ro.put(2, 20), ValidationError);
  CHECK_THROWS_AS(ro.checkpoint(), ValidationError);
}

TEST_CASE("bad input at the API gives clear errors and leaves the store usable") {
  TempDir dir("storage");
  Storage<std::string, std::string> db(dir.path());
  CHECK_THROWS_AS(db.put(std::string(kMaxKeyBytes + 1, 'k'), "v"), ValidationError);
  db.put(std::string(kMaxKeyBytes - 8, 'k'), "v");  // near the limit: fine
  CHECK(db.size() == 1);
  Storage<double, int>* none = nullptr;
  (void)none;
  TempDir d2("storage");
  Storage<double, int> dbl(d2.path());
  CHECK_THROWS_AS(dbl.put(std::nan(""), 1), ValidationError);
  dbl.put(-0.0, 1);
  CHECK(dbl.get(0.0) == 1);

  CHECK_THROWS_AS((Storage<int, int>(dir.path(), Options{.cache_bytes = 1})), ValidationError);
  stowage_test::write_all(dir / "a-file", "x");
  CHECK_THROWS_WITH((Storage<int, int>(dir / "a-file")), Catch::Contains("not a directory"));
  CHECK_THROWS_AS((Storage<int, int>(dir / "missing", Options{.create_if_missing = false})), ValidationError);
}

TEST_CASE("operations after close throw; close is idempotent") {
  TempDir dir("storage");
  Storage<int, int> db(dir.path());
  db.put(1, 1);
  db.close();
  db.close();
  CHECK_THROWS_AS(db.get(1), ValidationError);
  CHECK_THROWS_AS(db.put(1, 1), ValidationError);
  Storage<int, int> again(dir.path());
  CHECK(again.get(1) == 1);
}

TEST_CASE("opening with another serializer, compression, key or value type is a clear error") {
  TempDir dir("storage");
  { Storage<int, std::string, BinarySerializer, Lz4Compression> db(dir.path()); db.put(1, "x"); }
  CHECK_THROWS_WITH((Storage<int, std::string, BinarySerializer, NoCompression>(dir.path())),
                    Catch::Contains("compression") && Catch::Contains("lz4"));
  CHECK_THROWS_WITH((Storage<std::string, std::string>(dir.path())), Catch::Contains("key type"));
  CHECK_THROWS_WITH((Storage<int, Person>(dir.path())), Catch::Contains("value type"));
  CHECK_THROWS_AS((Storage<int, int>(dir.path())), MigrationError);
  Storage<int, std::string, BinarySerializer, Lz4Compression> db(dir.path());
  CHECK(db.get(1) == "x");
}

TEST_CASE("a second open of a held store gives LockError naming the path") {
  TempDir dir("storage");
  Storage<int, int> db(dir.path());
  const Options at_once{.lock_timeout = std::chrono::milliseconds(0)};  // fail at once instead of waiting for db
  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), at_once)), Catch::Contains((dir / "LOCK").string()));
  // Another process: it must fail too.
  pid_t pid = fork();
  if (pid == 0) {
    try {
      Storage<int, int> other(dir.path(), at_once);
      _exit(1);
    } catch (const LockError&) {
      _exit(0);
    } catch (...) {
      _exit(2);
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// ---- user-written policies -------------------------------------------------

namespace {

// A serializer that writes values as decimal text.
struct TextSerializer {
  static constexpr std::string_view id() { return "text-1"; }
  static void serialize(const long& v, std::string& out) { out += std::to_string(v); }
  template <class T>
  static T deserialize(std::string_view in) {
    return std::stol(std::string(in));
  }
};

// LZ4, then every bit flipped: a user policy with its own id whose output
// only it can read.
struct InvertedLz4 {
  static constexpr std::uint8_t id = 16;
  static constexpr std::string_view name = "inverted-lz4";
  static inline std::atomic<int> decompressions{0};
  static void compress(std::string_view in, std::string& out) {
    Lz4Compression::compress(in, out);
    for (auto& c : out) c = static_cast<char>(~c);
  }
  static void decompress(std::string_view in, std::size_t raw_size, char* out) {
    std::string flipped(in);
    for (auto& c : flipped) c = static_cast<char>(~c);
    Lz4Compression::decompress(flipped, raw_size, out);
    ++decompressions;
  }
};

using stowage_test::FifoEviction;

// One std::mutex for everything.
struct MutexLock {
  static constexpr bool waits_for_other_processes = false;
  void lock() { m.lock(); }
  void unlock() { m.unlock(); }
  void lock_shared() { m.lock(); }
  void unlock_shared() { m.unlock(); }
  std::mutex m;
};

// A thread-safe Lock that counts, per thread, the holds of each side.
struct CountingLock {
  static constexpr bool waits_for_other_processes = false;
  static constexpr bool thread_safe = true;
  static inline thread_local int exclusive = 0;
  static inline thread_local int shared = 0;
  void lock() {
    ++exclusive;
    m.lock();
  }
  void unlock() { m.unlock(); }
  void lock_shared() {
    ++shared;
    m.lock_shared();
  }
  void unlock_shared() { m.unlock_shared(); }
  std::shared_mutex m;
};

}  // namespace

TEST_CASE("size() and stats() take only the shared side of the Lock") {
  static_assert(LockPolicy<CountingLock>);
  TempDir dir("storage");
  Storage<int, std::string, BinarySerializer, NoCompression, LruEviction, CountingLock> db(dir.path(),
                                                                                          small_options());
  // Records in files, then buffered overwrites, new keys and erases whose
  // presence below the buffer is unknown until the count looks them up.
  for (int i = 0; i < 3000; ++i) db.put(i, value_for(i));
  db.checkpoint();
  for (int i = 0; i < 4000; i += 2) db.put(i, "again");
  for (int i = 1; i < 3000; i += 10) db.discard(i);
  for (int i = 5000; i < 5100; i += 3) db.discard(i);  // never stored
  const std::size_t expected = 3000 + 500 - 300;
  const int exclusive_before = CountingLock::exclusive, shared_before = CountingLock::shared;
  CHECK(db.size() == expected);
  CHECK(db.stats().records == expected);
  CHECK(CountingLock::exclusive == exclusive_before);
  CHECK(CountingLock::shared > shared_before);
  // The count looked the keys up once: the answers stay right after more
  // writes, which do take the exclusive side.
  db.put(100000, "new");
  db.discard(3);
  CHECK(CountingLock::exclusive > exclusive_before);
  CHECK(db.size() == expected);
}

TEST_CASE("opening with another serializer is a clear error") {
  TempDir dir("storage");
  { Storage<int, long> db(dir.path()); db.put(1, 2L); }
  CHECK_THROWS_WITH((Storage<int, long, TextSerializer>(dir.path())),
                    Catch::Contains("serializer") && Catch::Contains("binary-1") && Catch::Contains("text-1"));
}

TEST_CASE("user-written policies that satisfy the concepts work") {
  static_assert(SerializerFor<TextSerializer, long>);
  static_assert(CompressionPolicy<InvertedLz4>);
  static_assert(EvictionPolicy<FifoEviction>);
  static_assert(LockPolicy<MutexLock>);
  static_assert(!LockPolicy<int>);
  TempDir dir("storage");
  {
    Storage<int, long, TextSerializer, InvertedLz4, FifoEviction, MutexLock> db(dir.path(), small_options());
    for (int i = 0; i < 5000; ++i) db.put(i, 1000000000L + i * 3L);
    db.checkpoint();
    for (int i = 0; i < 5000; i += 11) CHECK(db.get(i) == 1000000000L + i * 3L);
  }
  Storage<int, long, TextSerializer, InvertedLz4, FifoEviction, MutexLock> db(dir.path(), small_options());
  CHECK(db.size() == 5000);
  long sum = 0;
  for (const auto& [k, v] : db.scan()) sum += v;
  CHECK(sum == 5000L * 1000000000L + 3L * 4999 * 5000 / 2);
  // Blocks really went through the user's compression.
  CHECK(InvertedLz4::decompressions > 0);
}

// ---- a user serializer for plain structs ------------------------------------

namespace {

// Plain structs: no serialize member, no ValueCodec.
struct PlainRecord {
  std::int32_t id = 0;
  std::string text;
  bool operator==(const PlainRecord&) const = default;
};
// The same fields under another name.
struct PlainRecordRenamed {
  std::int32_t id = 0;
  std::string text;
};
struct PlainPersonV1 {
  static constexpr unsigned version = 1;
  std::string name;
};
struct PlainPersonV2 {
  static constexpr unsigned version = 2;
  std::string first, last;
};

// Writes the plain structs above as text, fields separated by '|'; it knows
// nothing of serialize members.
struct PlainTextSerializer {
  static constexpr std::string_view id() { return "plain-text-1"; }
  template <class V>
  static void serialize(const V& v, std::string& out) {
    if constexpr (requires { v.id; })
      out += std::to_string(v.id) + "|" + v.text;
    else if constexpr (requires { v.last; })
      out += v.first + "|" + v.last;
    else
      out += v.name;
  }
  template <class V>
  static V deserialize(std::string_view in) {
    V v;
    const auto bar = in.find('|');
    if constexpr (requires { v.id; }) {
      v.id = std::stoi(std::string(in.substr(0, bar)));
      v.text = std::string(in.substr(bar + 1));
    } else if constexpr (requires { v.last; }) {
      v.first = std::string(in.substr(0, bar));
      v.last = std::string(in.substr(bar + 1));
    } else {
      v.name = std::string(in);
    }
    return v;
  }
};

// The same format, with the describe hook: records describe themselves by
// their fields, so both record structs are one type to the store.
struct DescribingTextSerializer : PlainTextSerializer {
  static constexpr std::string_view id() { return "plain-text-described-1"; }
  template <class V>
  static std::string describe() {
    if constexpr (requires(const V& v) { v.id; })
      return "text{id:i32|text}";
    else
      return "text{other}";
  }
};

}  // namespace

namespace stowage {
template <>
inline constexpr std::string_view value_type_name<PlainRecord> = "plain-record-v1";
template <>
inline constexpr std::string_view value_type_name<PlainRecordRenamed> = "plain-record-v2";
template <>
inline constexpr std::string_view value_type_name<PlainPersonV1> = "plain-person-v1";
template <>
inline constexpr std::string_view value_type_name<PlainPersonV2> = "plain-person-v2";
}  // namespace stowage

TEST_CASE("a user serializer stores plain structs named by value_type_name") {
  static_assert(SerializerFor<PlainTextSerializer, PlainRecord>);
  static_assert(!SerializerDescribes<PlainTextSerializer, PlainRecord>);
  TempDir dir("storage");
  {
    Storage<int, PlainRecord, PlainTextSerializer> db(dir.path(), small_options());
    for (int i = 0; i < 300; ++i) db.put(i, PlainRecord{i * 7, "text " + std::to_string(i)});
    db.checkpoint();
    CHECK(db.get(5) == PlainRecord{35, "text 5"});
  }
  CHECK(migration_status(dir.path()).value_type == "plain-text-1:plain-record-v1");
  {
    Storage<int, PlainRecord, PlainTextSerializer> db(dir.path(), small_options());
    CHECK(db.size() == 300);
    CHECK(db.get(299) == PlainRecord{299 * 7, "text 299"});
    std::int64_t sum = 0;
    for (const auto& [k, v] : db.scan()) sum += v.id;
    CHECK(sum == 7 * 299 * 300 / 2);
  }
  // Another name at the same schema version: the store refuses, naming both.
  CHECK_THROWS_AS((Storage<int, PlainRecordRenamed, PlainTextSerializer>(dir.path())), MigrationError);
  CHECK_THROWS_WITH((Storage<int, PlainRecordRenamed, PlainTextSerializer>(dir.path())),
                    Catch::Contains("value type") && Catch::Contains("'plain-text-1:plain-record-v1'") &&
                        Catch::Contains("'plain-text-1:plain-record-v2'"));
  Storage<int, PlainRecord, PlainTextSerializer> db(dir.path());
  CHECK(db.get(0) == PlainRecord{0, "text 0"});
}

TEST_CASE("a serializer's describe hook is the value type the store records") {
  static_assert(SerializerDescribes<DescribingTextSerializer, PlainRecord>);
  TempDir dir("storage");
  { Storage<int, PlainRecord, DescribingTextSerializer> db(dir.path()); db.put(1, PlainRecord{1, "one"}); }
  CHECK(migration_status(dir.path()).value_type == "text{id:i32|text}");
  {
    // The hook describes both structs alike (their value_type_names differ):
    // the store opens with either.
    Storage<int, PlainRecordRenamed, DescribingTextSerializer> db(dir.path());
    CHECK(db.get(1)->text == "one");
  }
  CHECK_THROWS_WITH((Storage<int, PlainPersonV1, DescribingTextSerializer>(dir.path())),
                    Catch::Contains("schema version"));
  // Without the hook, a describable Value keeps its structural description.
  TempDir other("storage");
  { Storage<int, long, TextSerializer> db(other.path()); db.put(1, 2L); }
  CHECK(migration_status(other.path()).value_type == type_description<long>());
}

TEST_CASE("typed migration steps between plain structs use the serializer's descriptions") {
  TempDir dir("storage");
  {
    Storage<int, PlainPersonV1, PlainTextSerializer> db(dir.path());
    db.put(1, PlainPersonV1{"Ada Lovelace"});
    db.put(2, PlainPersonV1{"Alan Turing"});
  }
  CHECK(migration_status(dir.path()).value_type == "plain-text-1:plain-person-v1");
  Migrator migrations;
  migrations.add<PlainPersonV1, PlainPersonV2, PlainTextSerializer>([](PlainPersonV1 p) {
    const auto sp = p.name.find(' ');
    return PlainPersonV2{p.name.substr(0, sp), p.name.substr(sp + 1)};
  });
  CHECK(migrations.steps().at(0).from_type == "plain-text-1:plain-person-v1");
  CHECK(migrations.steps().at(0).to_type == "plain-text-1:plain-person-v2");
  {
    Storage<int, PlainPersonV2, PlainTextSerializer> db(dir.path(), {}, migrations);
    CHECK(db.get(1)->last == "Lovelace");
    CHECK(db.get(2)->first == "Alan");
  }
  CHECK(migration_status(dir.path()).value_type == "plain-text-1:plain-person-v2");
}

TEST_CASE("NoLock and NoCompression store and reopen") {
  TempDir dir("storage");
  {
    Storage<std::uint64_t, std::string, BinarySerializer, NoCompression, LruEviction, NoLock> db(dir.path());
    for (std::uint64_t i = 0; i < 1000; ++i) db.put(i, std::to_string(i));
  }
  Storage<std::uint64_t, std::string, BinarySerializer, NoCompression, LruEviction, NoLock> db(dir.path());
  CHECK(db.get(999) == "999");
}

TEST_CASE("ThreadLock: readers, writers, scanners and checkpoints at once") {
  TempDir dir("storage");
  Storage<int, int> db(dir.path(), small_options());
#ifdef STOWAGE_SANITIZED
  constexpr int kPerThread = 1000;
#else
  constexpr int kPerThread = 5000;
#endif
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) db.put(t * 1000000 + i, i);
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < kPerThread; ++i) {
      auto v = db.get(i);
      if (v && *v != i) ++errors;
    }
  });
  threads.emplace_back([&] {
    for (int round = 0; round < 5; ++round) {
      int prev = std::numeric_limits<int>::min();
      for (const auto& [k, v] : db.scan()) {
        if (k <= prev || v != k % 1000000) ++errors;
        prev = k;
      }
      db.checkpoint();
    }
  });
  for (auto& th : threads) th.join();
  CHECK(errors == 0);
  CHECK(db.size() == 3 * kPerThread);
  for (int t = 0; t < 3; ++t) CHECK(db.get(t * 1000000 + kPerThread - 1) == kPerThread - 1);
}

// ---- error paths and housekeeping (issue: failures that are not I/O errors) ----

namespace {
std::uint64_t wal_file_bytes(const std::filesystem::path& dir) {
  std::uint64_t total = 0;
  for (const auto& p : stowage_test::files_matching(dir, ".log")) total += std::filesystem::file_size(p);
  return total;
}
}  // namespace

TEST_CASE("a writable open keeps the chunk files of every keyspace the manifest names") {
  TempDir dir;
  Options o = small_options();
  {
    Storage<int, std::string> db(dir.path(), o);
    for (int i = 0; i < 200; ++i) db.put(i, value_for(i));
  }
  // A second keyspace (as collections will make), holding a copy of a chunk.
  auto m = detail::read_manifest(*default_file_system(), dir.path());
  REQUIRE(m.keyspaces.size() == 1);
  REQUIRE_FALSE(m.keyspaces[0].chunks.empty());
  detail::KeyspaceState other = m.keyspaces[0];
  other.name = "other";
  other.chunks.resize(1);
  const std::uint64_t file = m.next_file + 5;
  std::filesystem::copy_file(dir / detail::chunk_file_name(m.keyspaces[0].chunks[0].file),
                             dir / detail::chunk_file_name(file));
  other.chunks[0].file = file;
  m.keyspaces.push_back(other);
  m.next_file = file + 1;
  detail::write_manifest(*default_file_system(), dir.path(), m);
  for (int session = 0; session < 3; ++session) {
    Storage<int, std::string> db(dir.path(), o);
    for (int i = 0; i < 300; ++i) db.put(i, value_for(i + session));
    REQUIRE(db.size() == 300);
  }
  REQUIRE(std::filesystem::exists(dir / detail::chunk_file_name(file)));
  auto after = detail::read_manifest(*default_file_system(), dir.path());
  const auto* ks = after.keyspace("other");
  REQUIRE(ks != nullptr);
  REQUIRE(ks->chunks.size() == 1);
  REQUIRE(ks->chunks[0].file == file);
}

TEST_CASE("open/close cycles and WAL-only sessions keep the WAL small") {
  TempDir dir;
  SECTION("200 open/get/close cycles leave at most two WAL segments") {
    { Storage<int, std::string>(dir.path()).put(1, "one"); }
    for (int i = 0; i < 200; ++i) {
      Storage<int, std::string> db(dir.path());
      REQUIRE(db.get(1) == "one");
    }
    REQUIRE(stowage_test::files_matching(dir.path(), ".log").size() <= 2);
  }
  SECTION("50 sessions of overwrites without checkpoint_on_close stay within a few wal_bytes") {
    Options o;
    o.checkpoint_on_close = false;
    o.wal_bytes = 1 << 20;
    std::uint64_t largest = 0;
    for (int session = 0; session < 50; ++session) {
      Storage<int, std::string> db(dir.path(), o);
      for (int i = 0; i < 2000; ++i) db.put(i, std::string(240, static_cast<char>('a' + session % 26)));
      REQUIRE(db.get(7) == std::string(240, static_cast<char>('a' + session % 26)));
      largest = std::max(largest, db.stats().wal_bytes);
    }
    INFO("largest live WAL seen by stats(): " << largest);
    REQUIRE(largest <= 3 * o.wal_bytes);
    REQUIRE(wal_file_bytes(dir.path()) <= 3 * o.wal_bytes);
  }
  SECTION("many small sessions without checkpoint_on_close do not pile up segments") {
    Options o;
    o.checkpoint_on_close = false;
    for (int session = 0; session < 40; ++session) {
      Storage<int, std::string> db(dir.path(), o);
      db.put(session, "v");
      REQUIRE(db.size() == static_cast<std::size_t>(session + 1));
    }
    REQUIRE(stowage_test::files_matching(dir.path(), ".log").size() <= kMaxWalSegments + 1);
    Storage<int, std::string> db(dir.path(), o);
    REQUIRE(db.size() == 40);
  }
}

TEST_CASE("with Durability::sync a write is visible only after its fdatasync") {
  TempDir dir;
  auto fs = stowage_test::FaultFileSystem::make(dir.path());
  Options o;
  o.durability = Durability::sync;
  o.file_system = fs;
  Storage<int, std::string> db(dir.path(), o);
  db.put(1, "old");
  std::vector<std::optional<std::string>> seen;  // what get(1) returned inside each WAL sync
  fs->set_hook(stowage_test::kOpSync, [&](unsigned, const std::filesystem::path& p) {
    if (p.filename().string().rfind("wal-", 0) == 0) seen.push_back(db.get(1));
  });
  db.put(1, "new");
  fs->set_hook(0, nullptr);
  REQUIRE_FALSE(seen.empty());
  for (const auto& v : seen) REQUIRE(v == "old");
  REQUIRE(db.get(1) == "new");

  // A failed sync: the write never becomes visible, the store refuses writes.
  fs->fail_at(stowage_test::kOpSync, 1, false);
  REQUIRE_THROWS_AS(db.put(2, "lost"), IoError);
  REQUIRE_FALSE(db.get(2).has_value());
  REQUIRE_THROWS_AS(db.put(3, "refused"), IoError);
}

TEST_CASE("concurrent synced writers share fdatasyncs and all land") {
  TempDir dir;
  Options o;
  o.durability = Durability::sync;
  {
    Storage<int, std::string> db(dir.path(), o);
    std::vector<std::thread> threads;
    std::atomic<int> errors{0};
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        try {
          for (int i = 0; i < 200; ++i) {
            db.put(t * 1000 + i, value_for(i));
            if (i % 10 == 0) db.erase(t * 1000 + i);
          }
        } catch (...) {
          ++errors;
        }
      });
    for (auto& th : threads) th.join();
    REQUIRE(errors == 0);
    REQUIRE(db.size() == 4 * 180);
  }
  Storage<int, std::string> db(dir.path(), o);
  REQUIRE(db.size() == 4 * 180);
  REQUIRE(db.get(2005) == value_for(5));
  REQUIRE_FALSE(db.get(2010).has_value());
}

TEST_CASE("a logger that calls stats() on the first I/O error does not deadlock") {
  TempDir dir;
  auto fs = stowage_test::FaultFileSystem::make(dir.path());
  Storage<int, std::string>* store = nullptr;
  std::vector<std::uint64_t> records_seen;
  Options o = small_options();
  o.file_system = fs;
  o.logger = [&](LogLevel level, std::string_view) {
    if (level == LogLevel::error && store != nullptr) records_seen.push_back(store->stats().records);
  };
  Storage<int, std::string> db(dir.path(), o);
  store = &db;
  db.put(1, "one");
  fs->fail_at(stowage_test::kOpAppend | stowage_test::kOpFlush, 1, false);
  REQUIRE_THROWS_AS(db.put(2, "two"), IoError);
  REQUIRE(records_seen.size() == 1);
  REQUIRE(records_seen[0] == 1);
  fs->fail_at(stowage_test::kOpSync, 1, false);
  REQUIRE_THROWS_AS(db.checkpoint(), IoError);
  store = nullptr;
}

TEST_CASE("a small cache keeps chunk metadata larger than a sixteenth of it") {
  TempDir dir;
  Options o;
  o.cache_bytes = 1 << 20;
  o.chunk_bytes = 4 << 20;
  Storage<int, std::string> db(dir.path(), o);
  std::vector<std::pair<int, std::string>> batch;
  for (int i = 0; i < 30000; ++i) batch.emplace_back(i, value_for(i));
  db.put_batch(batch);
  db.checkpoint();
  REQUIRE(db.stats().chunks == 1);
  for (int i = 0; i < 200; ++i) REQUIRE(db.get(i * 97 % 30000) == value_for(i * 97 % 30000));
  auto s = db.stats();
  INFO("metadata_bytes " << s.metadata_bytes << ", cache capacity " << s.cache_capacity);
  REQUIRE(s.metadata_bytes > s.cache_capacity / 16);
}

TEST_CASE("discard removes without a lookup and size() stays exact") {
  TempDir dir;
  Storage<int, std::string> db(dir.path(), small_options());
  for (int i = 0; i < 2000; ++i) db.put(i, value_for(i));
  db.checkpoint();
  for (int i = 0; i < 2000; i += 3) db.discard(i);  // in chunks
  db.discard(100000);                                // absent
  for (int i = 2000; i < 2100; ++i) db.put(i, value_for(i));
  for (int i = 2000; i < 2100; i += 2) db.discard(i);  // in the buffer
  std::size_t want = 2000 - 667 + 50;
  REQUIRE(db.size() == want);
  REQUIRE_FALSE(db.contains(3));
  REQUIRE(db.get(4) == value_for(4));
  db.checkpoint();
  REQUIRE(db.size() == want);
  db.close();
  Storage<int, std::string> again(dir.path(), small_options());
  REQUIRE(again.size() == want);
  REQUIRE_FALSE(again.contains(2000));
  REQUIRE(again.contains(2001));
}

TEST_CASE("size() stays exact through flushes that count many overwrites, with and without the WAL map") {
  // Each flush's buffer touches most blocks of the store below it: the
  // count reads them ahead, many per read, and searches them as stored.
  for (bool mmap : {true, false}) {
    CAPTURE(mmap);
    TempDir dir;
    Options o = small_options();
    o.wal_mmap = mmap;
    std::set<int> model;
    std::mt19937 rng(mmap ? 11 : 12);
    {
      Storage<int, std::string> db(dir.path(), o);
      for (int i = 0; i < 4000; ++i) {
        const int k = static_cast<int>(rng() % 6000);
        if (rng() % 8 == 0) {
          db.discard(k);
          model.erase(k);
        } else {
          db.put(k, value_for(k));
          model.insert(k);
        }
        if (i % 997 == 0) REQUIRE(db.size() == model.size());
      }
      REQUIRE(db.size() == model.size());
      REQUIRE(db.stats().flushes > 3);
    }
    Storage<int, std::string> again(dir.path(), o);
    REQUIRE(again.size() == model.size());
    for (int k = 0; k < 6000; k += 7) REQUIRE(again.contains(k) == (model.count(k) == 1));
  }
}

TEST_CASE("erase answers right while other threads write the same keys") {
  TempDir dir;
  Storage<int, std::string> db(dir.path(), small_options());
  // Each key is put once and erased once, by different threads; exactly one
  // erase per key reports it, unless the erase ran first (then none does
  // and the key stays).
  constexpr int kKeys = 3000;
  std::atomic<int> reported{0};
  std::thread writer([&] {
    for (int i = 0; i < kKeys; ++i) db.put(i, value_for(i));
  });
  std::thread eraser([&] {
    for (int i = 0; i < kKeys; ++i)
      if (db.erase(i)) ++reported;
  });
  writer.join();
  eraser.join();
  REQUIRE(db.size() == static_cast<std::size_t>(kKeys - reported.load()));
  int present = 0;
  for (int i = 0; i < kKeys; ++i) present += db.contains(i) ? 1 : 0;
  REQUIRE(present == kKeys - reported.load());
}

TEST_CASE("stats count bytes put and chunk bytes written") {
  TempDir dir;
  // No background compaction: it could replace the files between stats()
  // and the listing below.
  Options o = small_options();
  o.auto_compaction = false;
  Storage<int, std::string> db(dir.path(), o);
  REQUIRE(db.stats().write_amplification == 0);
  std::uint64_t put = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string v = value_for(i);
    db.put(i, v);
    put += encode_key(i).size() + v.size() + 1;  // BinarySerializer: a 1-byte length before a short string
  }
  db.checkpoint();
  auto s = db.stats();
  REQUIRE(s.bytes_put == put);
  std::uint64_t chunk_files = 0;
  for (const auto& p : stowage_test::files_matching(dir.path(), ".chunk")) chunk_files += std::filesystem::file_size(p);
  REQUIRE(chunk_files > 0);
  REQUIRE(s.chunk_bytes_written >= chunk_files);  // every live chunk, plus those replaced since
  REQUIRE(s.write_amplification > 0);
  REQUIRE(s.write_amplification == Approx(static_cast<double>(s.chunk_bytes_written) / static_cast<double>(s.bytes_put)));
}
