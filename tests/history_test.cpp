// Tests of per-key history (Collection::keep_history, history, get_at;
// history.hpp, the write path in detail/index_ops.hpp, the pruning in the
// engine's merge): versions listed newest first with the sequences the
// change feed and snapshots use, get_at against a model at every sequence,
// the count and age rules under a clock moved by hand, compaction reclaiming
// what the rules drop, the rule kept across sessions, history stopped, bare
// stores refused, hostile history bytes, and power cuts that never leave a
// record and its history disagreeing.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>
#include <atomic>

#include <stowage/manifest.hpp>
#include <stowage/stowage.hpp>

#include "clock_util.hpp"
#include "fault_fs.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::clocked_options;
using stowage_test::ManualClock;
using stowage_test::stored_records;
using stowage_test::TempDir;

namespace {

using Strings = Collection<std::uint64_t, std::string>;

std::uint64_t last_sequence(const Database<>& db) { return db.stats().last_sequence; }

}  // namespace

TEST_CASE("history lists a key's versions newest first, with the change feed's sequences", "[history]") {
  TempDir tmp("history-list");
  ManualClock clock;
  Database db(tmp / "db", clocked_options(clock));
  auto c = db.collection<std::uint64_t, std::string>("c");
  CHECK(c.history_kept() == History{});
  CHECK_THROWS_AS(c.history(1), ValidationError);  // no history kept
  c.keep_history({.versions = 10});
  CHECK(c.history_kept() == History{.versions = 10});
  CHECK(c.history(1).empty());
  const std::uint64_t start = last_sequence(db);
  CHECK(c.history_start() == start);  // an empty collection: no baseline

  c.put(1, "a");
  clock.advance(std::chrono::seconds(5));
  c.put(1, "b");
  c.erase(2);  // not stored: erase() commits nothing, so no version
  c.erase(1);
  clock.advance(std::chrono::seconds(5));
  c.insert(1, "c");
  c.update(1, [](std::string& v) { v += "!"; });
  auto b = db.batch();
  b.put(c, 1, "x").put(c, 1, "y").put(c, 2, "z");  // the last op of a key decides
  b.commit();

  std::vector<std::pair<std::uint64_t, std::optional<std::string>>> feed;
  c.changes_since(start, [&](const Change<std::uint64_t, std::string>& ch) {
    if (ch.key == 1) feed.emplace_back(ch.sequence, ch.value);
  });
  REQUIRE(feed.size() == 7);  // a, b, erase, c, c!, x, y

  const auto h = c.history(1);
  REQUIRE(h.size() == 6);
  CHECK(*h[0].value == "y");
  CHECK(h[0].sequence == feed[6].first);
  CHECK(*h[1].value == "c!");
  CHECK(h[1].sequence == feed[4].first);
  CHECK(*h[2].value == "c");
  CHECK(h[3].erased);
  CHECK_FALSE(h[3].value);
  CHECK(h[3].sequence == feed[2].first);
  CHECK(*h[4].value == "b");
  CHECK(*h[5].value == "a");
  CHECK(h[5].sequence == feed[0].first);
  for (std::size_t i = 1; i < h.size(); ++i) CHECK(h[i].sequence < h[i - 1].sequence);
  const auto t0 = std::chrono::sys_days(std::chrono::year(2026) / 1 / 1);
  CHECK(h[5].time == t0);
  CHECK(h[4].time == t0 + std::chrono::seconds(5));
  CHECK(h[0].time == t0 + std::chrono::seconds(10));
  const auto h2 = c.history(2);
  REQUIRE(h2.size() == 1);
  CHECK(*h2[0].value == "z");
  CHECK(c.history(3).empty());
  c.discard(3);  // committed without a lookup: listed as an erase, as the change feed lists it
  const auto h3 = c.history(3);
  REQUIRE(h3.size() == 1);
  CHECK(h3[0].erased);
  CHECK_FALSE(c.get_at(3, last_sequence(db)));
}

TEST_CASE("get_at reads the value at every sequence, against a model", "[history]") {
  TempDir tmp("history-model");
  ManualClock clock;
  Database db(tmp / "db", clocked_options(clock));
  auto c = db.collection<std::uint64_t, std::string>("c");
  c.put(100, "before");  // stored before history began, never written again
  c.put(101, "old");     // stored before, then overwritten
  c.keep_history({.versions = 100000});
  const std::uint64_t start = c.history_start();
  CHECK(start < last_sequence(db));  // the baseline's commits came after it
  c.put(101, "new");

  std::mt19937_64 rng(42);
  std::map<std::uint64_t, std::map<std::uint64_t, std::string>> at;  // sequence -> the model then
  std::map<std::uint64_t, std::string> model{{100, "before"}, {101, "new"}};
  at[last_sequence(db)] = model;
  for (int i = 0; i < 1500; ++i) {
    const std::uint64_t k = rng() % 20;
    switch (rng() % 6) {
      case 0:
        c.erase(k);
        model.erase(k);
        break;
      case 1: {
        auto b = db.batch();
        const std::uint64_t k2 = (k + 1) % 20;
        b.put(c, k, std::string("b") + std::to_string(i)).erase(c, k2);
        b.commit();
        model[k] = std::string("b") + std::to_string(i);
        model.erase(k2);
        break;
      }
      case 2:
        if (i % 100 == 0) db.checkpoint();
        if (i % 300 == 0) db.compact();
        [[fallthrough]];
      default:
        c.put(k, std::string("v") + std::to_string(i));
        model[k] = std::string("v") + std::to_string(i);
    }
    at[last_sequence(db)] = model;
  }
  // At the end of every commit (a commit's ops take consecutive sequences,
  // its records' before their history entries), and after the last.
  std::size_t checked = 0;
  at[last_sequence(db) + 3] = model;
  for (const auto& [s, want] : at) {
    if (rng() % 3 != 0) continue;
    for (std::uint64_t k = 0; k < 20; ++k) {
      auto w = want.find(k);
      const auto got = c.get_at(k, s);
      INFO("key " << k << " at " << s);
      REQUIRE(got.has_value() == (w != want.end()));
      if (got) CHECK(*got == w->second);
    }
    CHECK(*c.get_at(100, s) == "before");  // untouched since history began: as it is now
    ++checked;
  }
  CHECK(checked > 400);
  // Before history began: not known. At its start: the baseline.
  CHECK_THROWS_AS(c.get_at(1, start - 1), ValidationError);
  CHECK(*c.get_at(101, start) == "old");
  CHECK(c.get_at(101, last_sequence(db)) == c.get(101));
  const auto h100 = c.history(100);
  REQUIRE(h100.size() == 1);
  CHECK(h100[0].sequence == start);
  CHECK(*h100[0].value == "before");
}

TEST_CASE("the count rule keeps the newest versions; compaction reclaims the rest", "[history]") {
  TempDir tmp("history-count");
  ManualClock clock;
  Database db(tmp / "db", clocked_options(clock));
  auto c = db.collection<std::uint64_t, std::string>("c");
  c.keep_history({.versions = 3});
  std::vector<std::uint64_t> seqs;  // of key 7's puts
  for (int round = 0; round < 100; ++round)
    for (std::uint64_t k = 0; k < 10; ++k) {
      std::string v = "r";  // appended (not "r" + ...: GCC 12 -O3 raises a false -Wrestrict)
      v += std::to_string(round);
      v.append(40, 'x');
      c.put(k, v);
      if (k == 7) seqs.push_back(last_sequence(db) - 1);  // the record's op comes before its entry
    }
  const auto h = c.history(7);
  REQUIRE(h.size() == 3);
  CHECK(h[0].sequence == seqs[99]);
  CHECK(h[2].sequence == seqs[97]);
  CHECK(h[2].value->substr(0, 3) == "r97");
  CHECK(c.get_at(7, seqs[97])->substr(0, 3) == "r97");
  CHECK(c.get_at(7, seqs[98] - 1)->substr(0, 3) == "r97");
  CHECK_THROWS_AS(c.get_at(7, seqs[97] - 1), ValidationError);  // the 4th newest: no longer kept
  CHECK_THROWS_AS(c.get_at(7, seqs[0]), ValidationError);

  db.compact();
  // 10 records and 3 entries a key are left of 10 + 100 * 20.
  CHECK(stored_records(db) <= 10 + 10 + 30);  // and at most one cut marker a key
  CHECK(c.history(7).size() == 3);
  CHECK_THROWS_AS(c.get_at(7, seqs[50]), ValidationError);  // dropped: a cut marker stands for them
  CHECK(c.size() == 10);

  // A smaller rule hides at once, before compaction.
  c.keep_history({.versions = 1});
  CHECK(c.history(7).size() == 1);
  CHECK_THROWS_AS(c.get_at(7, seqs[98]), ValidationError);
  CHECK(c.get_at(7, seqs[99])->substr(0, 3) == "r99");
}

TEST_CASE("the age rule follows the clock; compaction reclaims old versions", "[history]") {
  TempDir tmp("history-age");
  ManualClock clock;
  Database db(tmp / "db", clocked_options(clock));
  auto c = db.collection<std::uint64_t, std::string>("c");
  c.keep_history({.keep_for = std::chrono::hours(1)});
  c.put(1, "a");
  const std::uint64_t s_a = last_sequence(db) - 1;
  clock.advance(std::chrono::minutes(40));
  c.put(1, "b");
  const std::uint64_t s_b = last_sequence(db) - 1;
  clock.advance(std::chrono::minutes(40));
  c.put(1, "c");
  // "a" is 80 minutes old: hidden; "b" 40: kept.
  auto h = c.history(1);
  REQUIRE(h.size() == 2);
  CHECK(*h[1].value == "b");
  CHECK(*c.get_at(1, s_b) == "b");
  CHECK_THROWS_AS(c.get_at(1, s_a), ValidationError);
  clock.advance(std::chrono::hours(5));
  h = c.history(1);
  REQUIRE(h.size() == 1);  // the newest is always kept
  CHECK(*h[0].value == "c");
  // Both limits: kept while among the 2 newest and younger than an hour.
  c.keep_history({.versions = 2, .keep_for = std::chrono::hours(1)});
  for (int i = 0; i < 4; ++i) c.put(2, std::string("v") + std::to_string(i));
  CHECK(c.history(2).size() == 2);
  clock.advance(std::chrono::hours(2));
  CHECK(c.history(2).size() == 1);
  db.checkpoint();
  const auto before = stored_records(db);
  db.compact();
  CHECK(stored_records(db) < before);
  CHECK(stored_records(db) <= 2 + 2 + 2);  // two records, one entry and one cut marker each
}

TEST_CASE("the rule is kept across sessions and writers need not declare it", "[history]") {
  TempDir tmp("history-reopen");
  ManualClock clock;
  std::uint64_t s1 = 0;
  {
    Database db(tmp / "db", clocked_options(clock));
    auto c = db.collection<std::uint64_t, std::string>("c");
    c.keep_history({.versions = 5, .keep_for = std::chrono::hours(24)});
    c.put(1, "one");
    s1 = last_sequence(db);
    c.put(1, "two");  // in the WAL at close (replayed), or flushed
  }
  {
    Database db(tmp / "db", clocked_options(clock));
    auto c = db.collection<std::uint64_t, std::string>("c");
    CHECK(c.history_kept() == History{.versions = 5, .keep_for = std::chrono::hours(24)});
    c.put(1, "three");  // no keep_history() in this session
    const auto h = c.history(1);
    REQUIRE(h.size() == 3);
    CHECK(*h[0].value == "three");
    CHECK(*c.get_at(1, s1) == "one");
    const auto m = detail::decode_manifest(stowage_test::read_all(tmp / "db" / "MANIFEST"), tmp / "db" / "MANIFEST");
    const auto* hs = m.history(m.collection("c")->id);
    REQUIRE(hs != nullptr);
    CHECK(hs->history_versions == 5);
    CHECK(hs->history_seconds == 24 * 3600);
    CHECK(db.collections() == std::vector<std::string>{"c"});  // the history is not a collection
  }
  {
    Options ro = clocked_options(clock);
    ro.read_only = true;
    Database db(tmp / "db", ro);
    auto c = db.collection<std::uint64_t, std::string>("c");
    CHECK(c.history(1).size() == 3);
    CHECK_THROWS_AS(c.keep_history({.versions = 1}), ValidationError);
  }
}

TEST_CASE("stopping history erases its versions; dropping the collection drops them", "[history]") {
  TempDir tmp("history-stop");
  ManualClock clock;
  Database db(tmp / "db", clocked_options(clock));
  auto c = db.collection<std::uint64_t, std::string>("c");
  c.keep_history({.versions = 50});
  for (int i = 0; i < 200; ++i) c.put(static_cast<std::uint64_t>(i % 4), std::to_string(i));
  c.keep_history({});
  CHECK(c.history_kept() == History{});
  CHECK_THROWS_AS(c.history(1), ValidationError);
  c.put(1, "after");  // a plain write again
  db.compact();
  CHECK(stored_records(db) == 4);
  // Begun again: a new history, from now on, with the records as its baseline.
  c.keep_history({.versions = 2});
  REQUIRE(c.history(1).size() == 1);
  CHECK(*c.history(1)[0].value == "after");
  c.put(1, "again");
  CHECK(c.history(1).size() == 2);
  CHECK(db.drop_collection("c"));
  db.compact();
  CHECK(stored_records(db) == 0);
  const auto m = detail::decode_manifest(stowage_test::read_all(tmp / "db" / "MANIFEST"), tmp / "db" / "MANIFEST");
  for (const auto& e : m.collections) CHECK_FALSE(e.is_history());
}

TEST_CASE("concurrent writers (group commits) and readers see whole versions", "[history]") {
  TempDir tmp("history-threads");
  ManualClock clock;
  Options o = clocked_options(clock);
  o.durability = Durability::sync;  // writers share syncs: several stamped commits in one group
  Database db(tmp / "db", o);
  auto c = db.collection<std::uint64_t, std::string>("c");
  c.keep_history({.versions = 1000});
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!stop.load()) {
      for (std::uint64_t k = 0; k < 8; ++k) {
        const auto h = c.history(k);
        for (std::size_t i = 0; i < h.size(); ++i) {
          if (i > 0 && h[i].sequence >= h[i - 1].sequence) ++bad;
          if (!h[i].erased && (!h[i].value || h[i].value->rfind("w", 0) != 0)) ++bad;
        }
      }
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const std::uint64_t k = static_cast<std::uint64_t>((i * 3 + t) % 8);
        if (i % 17 == 0) {
          c.erase(k);
          continue;
        }
        std::string v = "w";  // appended (not "w" + ...: GCC 12 -O3 raises a false -Wrestrict)
        v += std::to_string(t);
        v += "-";
        v += std::to_string(i);
        c.put(k, v);
      }
    });
  for (auto& w : writers) w.join();
  stop = true;
  reader.join();
  CHECK(bad.load() == 0);
  std::size_t versions = 0;
  for (std::uint64_t k = 0; k < 8; ++k) {
    const auto h = c.history(k);
    REQUIRE_FALSE(h.empty());
    const auto now = c.get(k);
    CHECK(h[0].erased == !now.has_value());
    if (now) CHECK(*h[0].value == *now);
    versions += h.size();
    // Each version is what get_at reads at its own sequence.
    for (const auto& v : h) CHECK(c.get_at(k, v.sequence) == v.value);
  }
  CHECK(versions <= 3 * 300);  // every put, and every erase that found its key (Collection::erase commits nothing else)
  CHECK(versions >= 3 * 300 - 3 * 18);
}

TEST_CASE("history needs a Database's store and a sane rule", "[history]") {
  TempDir tmp("history-bare");
  ManualClock clock;
  {
    Storage<std::uint64_t, std::string> s(tmp / "bare", clocked_options(clock));
    CHECK_THROWS_AS(s.keep_history({.versions = 2}), ValidationError);
  }
  Database db(tmp / "db", clocked_options(clock));
  auto c = db.collection<std::uint64_t, std::string>("c");
  CHECK_THROWS_AS(c.keep_history({.keep_for = std::chrono::seconds(-1)}), ValidationError);
  CHECK_THROWS_AS(c.keep_history({.keep_for = std::chrono::hours(24 * 365 * 5000)}), ValidationError);
  CHECK(c.history_kept() == History{});
}

TEST_CASE("hostile history bytes are a CorruptionError", "[history]") {
  using detail::decode_history_entry;
  char stamp[8];
  detail::write_stamp(stamp, 10);
  const std::string_view s(stamp, 8);
  CHECK(decode_history_entry(s, detail::history_value(false, 99, "v"), nullptr).value == "v");
  CHECK(decode_history_entry(s, detail::history_value(true, 99, ""), nullptr).erased);
  CHECK(decode_history_entry(s, detail::history_cut_value(), nullptr).cut);
  CHECK(detail::read_stamp(stamp) == 10);
  CHECK_THROWS_AS(decode_history_entry(s.substr(0, 7), detail::history_value(false, 99, "v"), nullptr),
                  CorruptionError);
  CHECK_THROWS_AS(decode_history_entry(s, "", nullptr), CorruptionError);
  CHECK_THROWS_AS(decode_history_entry(s, std::string(1, '\x03'), nullptr), CorruptionError);  // unknown flags
  CHECK_THROWS_AS(decode_history_entry(s, std::string("\x01\x05v", 3), nullptr), CorruptionError);  // an erase with a value
  CHECK_THROWS_AS(decode_history_entry(s, std::string("\x02\x05v", 3), nullptr), CorruptionError);  // a cut with a value
  CHECK_THROWS_AS(decode_history_entry(s, std::string("\x00\xff\xff", 3), nullptr), CorruptionError);  // a cut-short time

  // The pruner: ranks a key's entries, a cut marker for the newest dropped, tombstones after it.
  detail::HistoryPruner pruner({{5, History{.versions = 2}}}, 1000);
  auto entry_key = [](std::string_view pk, std::uint64_t seq) {
    std::string k = detail::history_group(detail::collection_prefix(5), pk) + std::string(8, '\0');
    detail::write_stamp(k.data() + k.size() - 8, seq);
    return k;
  };
  using Fate = detail::HistoryPruner::Fate;
  const std::string v = detail::history_value(false, 1, "x");
  CHECK(pruner.fate(entry_key("a", 9), v) == Fate::keep);
  CHECK(pruner.fate(entry_key("a", 8), v) == Fate::keep);
  CHECK(pruner.fate(entry_key("a", 7), v) == Fate::cut);
  CHECK(pruner.fate(entry_key("a", 6), detail::history_cut_value()) == Fate::drop);
  CHECK(pruner.fate(entry_key("a", 5), v) == Fate::drop);
  CHECK(pruner.fate(entry_key("b", 3), v) == Fate::keep);  // a new key: ranks anew
  CHECK(pruner.fate(entry_key("b", 2), detail::history_cut_value()) == Fate::cut);  // a marker is never a version
  CHECK(pruner.fate(detail::collection_prefix(6) + "zz", v) == Fate::keep);  // another keyspace
  CHECK(pruner.fate(detail::collection_prefix(5) + std::string("\x05") + "ab", v) == Fate::keep);  // bytes it does not know

  // A MANIFEST with a history.
  TempDir tmp("history-hostile");
  ManualClock clock;
  Database db(tmp / "db", clocked_options(clock));
  auto c = db.collection<std::uint64_t, std::string>("c");
  c.keep_history({.versions = 3});
  c.put(1, "a");
  const auto m = detail::decode_manifest(stowage_test::read_all(tmp / "db" / "MANIFEST"), tmp / "db" / "MANIFEST");
  REQUIRE(m.history(m.collection("c")->id) != nullptr);

  // A MANIFEST whose history keeps nothing, or has an index's fields, is refused.
  detail::Manifest bad = m;
  for (auto& e : bad.collections)
    if (e.is_history()) e.history_versions = 0, e.history_seconds = 0;
  CHECK_THROWS_AS(detail::decode_manifest(detail::encode_manifest(bad), "MANIFEST"), CorruptionError);
  bad = m;
  for (auto& e : bad.collections)
    if (e.is_history()) e.key_order = "u64";
  CHECK_THROWS_AS(detail::decode_manifest(detail::encode_manifest(bad), "MANIFEST"), CorruptionError);
  bad = m;
  for (auto& e : bad.collections)
    if (e.is_history()) e.parent = 999;
  CHECK_THROWS_AS(detail::decode_manifest(detail::encode_manifest(bad), "MANIFEST"), CorruptionError);
  bad = m;
  for (auto& e : bad.collections)
    if (e.is_history()) {
      auto twin = e;
      twin.id = bad.next_collection_id++;
      bad.collections.push_back(twin);
      break;
    }
  CHECK_THROWS_AS(detail::decode_manifest(detail::encode_manifest(bad), "MANIFEST"), CorruptionError);
  CHECK_NOTHROW(detail::decode_manifest(detail::encode_manifest(m), "MANIFEST"));
}

TEST_CASE("a power cut while the baseline is written leaves no history behind", "[history][power]") {
  using stowage_test::FaultFileSystem;
  for (unsigned mask : {stowage_test::kOpSync, stowage_test::kOpAppend, stowage_test::kOpRename}) {
    TempDir tmp("history-baseline");
    const auto dir = tmp / "db";
    ManualClock clock;
    {
      Database db(dir, clocked_options(clock));
      auto c = db.collection<std::uint64_t, std::string>("c");
      for (std::uint64_t k = 0; k < 3000; ++k) c.put(k, std::string(50, 'r'));
    }
    auto fs = FaultFileSystem::make(dir);
    bool failed = false;
    try {
      Options o = clocked_options(clock);
      o.file_system = fs;
      Database db(dir, o);
      auto c = db.collection<std::uint64_t, std::string>("c");
      fs->fail_at(mask, 3, true);
      c.keep_history({.versions = 2});
    } catch (const IoError&) {
      failed = true;
    }
    INFO("mask " << mask);
    CHECK(failed);
    fs->simulate_power_loss(stowage_test::TailMode::drop, mask);
    {
      Database db(dir, clocked_options(clock));
      auto c = db.collection<std::uint64_t, std::string>("c");
      CHECK(c.history_kept() == History{});
      CHECK(c.size() == 3000);
      const auto m = detail::decode_manifest(stowage_test::read_all(dir / "MANIFEST"), dir / "MANIFEST");
      for (const auto& e : m.collections) CHECK_FALSE(e.is_history());
      CHECK(m.dropped.empty());  // the open purged what the baseline wrote
      db.compact();
      CHECK(stored_records(db) == 3000);
      c.keep_history({.versions = 2});  // and it can begin again
      CHECK(c.history(7).size() == 1);
    }
  }
}

TEST_CASE("a power cut never leaves a record and its history disagreeing", "[history][power]") {
  int cut = 0;
  for (std::uint64_t seed = 1; seed <= 16; ++seed) {
    TempDir tmp("history-power");
    const auto dir = tmp / "db";
    ManualClock clock;
    {  // the history begins durably before the cuts
      Database db(dir, clocked_options(clock));
      db.collection<std::uint64_t, std::string>("c").keep_history({.versions = 4});
    }
    std::mt19937_64 rng(seed * 104729);
    auto write = [&](Database<>& db) {
      auto c = db.collection<std::uint64_t, std::string>("c");
      for (int i = 0; i < 400; ++i) {
        const std::uint64_t k = rng() % 12;
        if (rng() % 5 == 0) {
          c.erase(k);
        } else if (rng() % 7 == 0) {
          auto b = db.batch();
          b.put(c, k, std::string("b") + std::to_string(i)).put(c, (k + 5) % 12, std::string("b") + std::to_string(i));
          b.commit();
        } else {
          c.put(k, std::string("v") + std::to_string(i) + std::string(rng() % 200, 'p'));
        }
        if (i % 97 == 0) db.checkpoint();
      }
    };
    if (stowage_test::power_cut_during(dir, clocked_options(clock), seed, 20 + rng() % 600, write)) ++cut;
    INFO("seed " << seed);
    Database db(dir, clocked_options(clock));
    auto c = db.collection<std::uint64_t, std::string>("c");
    for (std::uint64_t k = 0; k < 12; ++k) {
      const auto now = c.get(k);
      const auto h = c.history(k);
      INFO("key " << k);
      if (h.empty()) {
        CHECK_FALSE(now);  // every key was absent when history began
        continue;
      }
      CHECK(h[0].erased == !now.has_value());
      if (now) CHECK(*h[0].value == *now);
      CHECK(c.get_at(k, db.stats().last_sequence) == now);
    }
    // And it goes on: the recovered store writes versions again.
    c.put(3, "after");
    CHECK(*c.history(3)[0].value == "after");
  }
  CHECK(cut > 8);
}
