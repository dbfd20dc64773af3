// snapshot_test.cpp: snapshots (snapshot.hpp; Engine::snapshot, find_at,
// size_at and Cursor at a snapshot; Collection::View): reads at a moment
// that later writes, flushes and compactions do not change.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <stowage/stowage.hpp>

#include "fault_fs.hpp"
#include "op_load.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::error_of;
using stowage_test::apply_op;
using stowage_test::busy_options;
using stowage_test::model_after;
using stowage_test::TempDir;

namespace {

using Store = Storage<std::uint64_t, std::uint64_t>;
using Model = std::map<std::uint64_t, std::uint64_t>;

template <class R>
Model collect(const R& range) {
  Model m;
  for (const auto& [k, v] : range) m[k] = v;
  return m;
}

// Every way a view reads, checked against the model of its moment.
template <class View>
void check_view(const View& view, const Model& want) {
  CHECK(collect(view.scan()) == want);
  Model back;
  for (const auto& [k, v] : view.scan().reversed()) back[k] = v;
  CHECK(back == want);
  CHECK(view.size() == want.size());
  CHECK(view.empty() == want.empty());
  CHECK(view.count(0, 750) == static_cast<std::size_t>(std::distance(want.begin(), want.lower_bound(750))));
  std::vector<std::uint64_t> keys;
  for (std::uint64_t k = 0; k < 1500; k += 7) keys.push_back(k);
  const auto got = view.get_batch(keys);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto it = want.find(keys[i]);
    INFO("key " << keys[i]);
    CHECK(got[i] == (it == want.end() ? std::nullopt : std::optional<std::uint64_t>(it->second)));
    CHECK(view.contains(keys[i]) == (it != want.end()));
  }
}

}  // namespace

TEST_CASE("a snapshot keeps reading what the store held when it was taken", "[snapshot]") {
  TempDir tmp("snapshot");
  Store db(tmp / "store");
  for (std::uint64_t k = 0; k < 100; ++k) db.put(k, k);
  auto snap = db.snapshot();
  CHECK(snap.sequence() == 100);
  Model then;
  for (std::uint64_t k = 0; k < 100; ++k) then[k] = k;

  // Overwrites (each twice: the second replaces a version no snapshot saw),
  // erases and new keys, all in the write buffer the snapshot reads.
  for (std::uint64_t k = 0; k < 100; k += 2) db.put(k, k + 1000);
  for (std::uint64_t k = 0; k < 100; k += 2) db.put(k, k + 2000);
  for (std::uint64_t k = 1; k < 100; k += 10) db.erase(k);
  db.put_batch(std::vector<std::pair<std::uint64_t, std::uint64_t>>{{500, 1}, {3, 7}});
  CHECK(db.get(0) == 2000u);
  CHECK(db.get(3) == 7u);
  CHECK(snap.get(0) == 0u);
  CHECK(snap.get(3) == 3u);
  CHECK(snap.get(1) == 1u);
  CHECK_FALSE(snap.get(500));
  check_view(snap, then);

  // The buffer it read is flushed, then compacted away: it reads the same.
  db.checkpoint();
  check_view(snap, then);
  db.compact();
  check_view(snap, then);

  // A second snapshot sees the writes; the first still does not.
  auto later = db.snapshot();
  Model now = collect(db.scan());
  CHECK(now.size() == db.size());
  db.put(0, 99);
  db.erase(2);
  check_view(later, now);
  check_view(snap, then);
  CHECK(db.get(0) == 99u);
}

TEST_CASE("a record erased, written again and erased keeps each snapshot's version", "[snapshot]") {
  TempDir tmp("snapshot");
  Store db(tmp / "store");
  db.put(7, 1);
  auto s1 = db.snapshot();
  db.erase(7);
  auto s2 = db.snapshot();
  db.put(7, 3);
  auto s3 = db.snapshot();
  db.put(7, 4);
  db.erase(7);
  CHECK(s1.get(7) == 1u);
  CHECK_FALSE(s2.get(7));
  CHECK(s3.get(7) == 3u);
  CHECK(s1.size() == 1);
  CHECK(s2.size() == 0);
  CHECK(s3.size() == 1);
  CHECK(db.size() == 0);
  CHECK(db.stats().snapshot_versions >= 3);
  db.checkpoint();  // the chained versions go with the buffer the snapshots pin
  CHECK(s1.get(7) == 1u);
  CHECK_FALSE(s2.get(7));
  CHECK(s3.get(7) == 3u);
  CHECK(collect(s3.scan()) == Model{{7, 3}});
  CHECK(collect(s2.scan()).empty());
}

TEST_CASE("snapshots under a concurrent writer match the model of their sequence", "[snapshot]") {
  TempDir tmp("snapshot");
  Store db(tmp / "store", busy_options());
  constexpr std::uint64_t kOps = 30000;
  std::atomic<std::uint64_t> done{0};
  std::thread writer([&] {
    for (std::uint64_t k = 0; k < kOps; ++k) {
      apply_op(db, k);
      done.store(k + 1);
    }
  });
  std::vector<Store::View> taken;
  for (int i = 0; i < 4; ++i) {
    const std::uint64_t from = kOps * static_cast<std::uint64_t>(i) / 5;
    while (done.load() < from) std::this_thread::yield();
    taken.push_back(db.snapshot());
    // Reads of the snapshot while the writer goes on (freezing and flushing
    // the buffers it pins) see none of its writes.
    const auto& view = taken.back();
    INFO("snapshot at sequence " << view.sequence());
    check_view(view, model_after(view.sequence()));
  }
  writer.join();
  const Stats st = db.stats();
  CHECK(st.flushes > 4);  // the snapshots' buffers were flushed while they were held
  CHECK(st.snapshots == 4);
  for (const auto& view : taken) {
    INFO("snapshot at sequence " << view.sequence());
    check_view(view, model_after(view.sequence()));
  }
  db.compact();
  for (const auto& view : taken) check_view(view, model_after(view.sequence()));
  CHECK(db.stats().snapshot_pinned_bytes > 0);  // the files compact() replaced, kept for them
  taken.clear();
  CHECK(db.stats().snapshots == 0);
  CHECK(collect(db.scan()) == model_after(kOps));
  CHECK(db.size() == model_after(kOps).size());
}

TEST_CASE("a backup and a snapshot at the same sequence hold the same records", "[snapshot][backup]") {
  TempDir tmp("snapshot");
  Store db(tmp / "store", busy_options());
  constexpr std::uint64_t kOps = 20000;
  std::mutex pause;  // held by the test to take both at one sequence
  std::atomic<std::uint64_t> done{0};
  std::thread writer([&] {
    for (std::uint64_t k = 0; k < kOps; ++k) {
      std::lock_guard g(pause);
      apply_op(db, k);
      done.store(k + 1);
    }
  });
  while (done.load() < kOps / 3) std::this_thread::yield();
  std::optional<Store::View> snap;
  BackupReport report;
  {
    std::lock_guard g(pause);
    snap = db.snapshot();
    report = db.backup_to(tmp / "backup");
  }
  writer.join();  // flushes and compactions run on while the snapshot is held
  REQUIRE(report.sequence == snap->sequence());
  Store backup(report.path, Options{.read_only = true});
  const Model from_snapshot = collect(snap->scan());
  CHECK(collect(backup.scan()) == from_snapshot);
  CHECK(from_snapshot == model_after(report.sequence));
  CHECK(backup.size() == snap->size());
}

TEST_CASE("one Database snapshot reads every collection at one moment", "[snapshot][database]") {
  TempDir tmp("snapshot");
  Database db(tmp / "db");
  auto people = db.collection<std::string, std::uint32_t>("people");
  auto towns = db.collection<std::uint32_t, std::string>("towns");
  people.put("ada", 36);
  towns.put(1, "London");
  auto snap = db.snapshot();
  {
    auto batch = db.batch();
    batch.put(people, std::string("ada"), 37u);
    batch.put(towns, 1u, std::string("Paris"));
    batch.commit();
  }
  people.put("bob", 20);
  auto people_then = people.at(snap);
  auto towns_then = towns.at(snap);
  CHECK(people_then.get("ada") == 36u);
  CHECK(towns_then.get(1) == "London");
  CHECK_FALSE(people_then.contains("bob"));
  CHECK(people_then.size() == 1);
  CHECK(towns_then.size() == 1);
  CHECK(people.size() == 2);
  CHECK(people.get("ada") == 37u);
  CHECK(people_then.sequence() == snap.sequence());
  CHECK(db.stats().snapshots == 1);
}

TEST_CASE("an empty snapshot, one of another store and one after close are errors", "[snapshot]") {
  TempDir tmp("snapshot");
  Store a(tmp / "a");
  Store b(tmp / "b");
  a.put(1, 1);
  b.put(1, 2);
  const Snapshot none;
  CHECK_FALSE(static_cast<bool>(none));
  CHECK_THROWS_AS(a.at(none).get(1), ValidationError);
  CHECK(error_of([&] { (void)a.at(none).size(); }).find("empty Snapshot") != std::string::npos);
  auto of_b = b.snapshot();
  CHECK(static_cast<bool>(of_b.snapshot()));
  CHECK_THROWS_AS(a.at(of_b.snapshot()).get(1), ValidationError);
  CHECK(error_of([&] { (void)a.at(of_b.snapshot()).scan().begin(); }).find("another store") != std::string::npos);
  CHECK(b.at(of_b.snapshot()).get(1) == 2u);
  b.close();
  CHECK_THROWS_AS(of_b.get(1), ValidationError);
}

TEST_CASE("released snapshots release their buffers and files", "[snapshot]") {
  TempDir tmp("snapshot");
  Store db(tmp / "store", busy_options());
  for (std::uint64_t k = 0; k < 3000; ++k) db.put(k, k);
  db.checkpoint();
  std::uint64_t pinned = 0;
  {
    auto snap = db.snapshot();
    for (std::uint64_t k = 0; k < 3000; ++k) db.put(k, k + 1);
    db.checkpoint();
    db.compact();
    const Stats st = db.stats();
    CHECK(st.snapshots == 1);
    pinned = st.snapshot_pinned_bytes;
    CHECK(pinned > 0);
    CHECK(snap.get(5) == 5u);
  }
  const Stats st = db.stats();
  CHECK(st.snapshots == 0);
  CHECK(st.snapshot_pinned_bytes == 0);
  // The files the snapshot kept are gone from disk once it is released.
  db.put(1, 1);
  db.compact();
  std::uint64_t chunk_bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp / "store"))
    if (e.path().extension() == ".chunk") chunk_bytes += e.file_size();
  std::uint64_t in_levels = 0;
  for (const auto& level : db.stats().levels) in_levels += level.bytes;
  CHECK(chunk_bytes == in_levels);
}

TEST_CASE("a snapshot released after its store is gone leaves files the next open removes", "[snapshot]") {
  TempDir tmp("snapshot");
  const auto dir = tmp / "store";
  auto chunk_files = [&] {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) n += e.path().extension() == ".chunk" ? 1 : 0;
    return n;
  };
  std::optional<Store::View> view;
  {
    Store db(dir, busy_options());
    for (std::uint64_t k = 0; k < 3000; ++k) db.put(k, k);
    view = db.snapshot();
    for (std::uint64_t k = 0; k < 3000; ++k) db.put(k, k + 1);
    db.compact();
    CHECK(view->get(7) == 7u);
    CHECK(db.stats().snapshot_pinned_bytes > 0);
  }
  view.reset();  // after the store is destroyed: only released, never read
  Store db(dir, busy_options());
  CHECK(db.get(7) == 8u);
  db.compact();  // waits for the removal of the earlier session's leftovers, which the open starts
  CHECK(chunk_files() == db.stats().chunks);
}

namespace {
// The chunk files in dir: their count by format major (the header's bytes 8
// and 9), and their bytes.
struct ChunkFiles {
  std::map<unsigned, std::size_t> by_major;
  std::uint64_t bytes = 0;
  std::uint64_t versions = 0;  // older versions kept (format 5)
};
ChunkFiles chunk_files_in(const std::filesystem::path& dir) {
  ChunkFiles out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".chunk") continue;
    std::ifstream in(e.path(), std::ios::binary);
    char head[10] = {};
    in.read(head, sizeof head);
    ++out.by_major[static_cast<unsigned char>(head[8]) | static_cast<unsigned>(static_cast<unsigned char>(head[9])) << 8];
    out.bytes += e.file_size();
    out.versions += detail::ChunkTable<Lz4Compression>::open(*default_file_system(), e.path())->versions();
  }
  return out;
}
std::uint64_t level_bytes(const Stats& st) {
  std::uint64_t n = 0;
  for (const auto& level : st.levels) n += level.bytes;
  return n;
}
}  // namespace

TEST_CASE("compactions keep exactly the versions live snapshots see, and pin no chunk file", "[snapshot]") {
  TempDir tmp("snapshot");
  const auto dir = tmp / "store";
  Store db(dir, busy_options());
  constexpr std::uint64_t kKeys = 3000;
  Model m0, m1;
  for (std::uint64_t k = 0; k < kKeys; ++k) db.put(k, k), m0[k] = k;
  db.checkpoint();  // every first version in a chunk file
  std::optional<Store::View> s1 = db.snapshot();
  for (std::uint64_t k = 0; k < kKeys; ++k) db.put(k, k + 10000), m1[k] = k + 10000;
  db.checkpoint();
  (void)db.size();  // counted: s2 knows the count of its files
  std::optional<Store::View> s2 = db.snapshot();
  // Even keys get a third version, every fifth key is erased.
  std::uint64_t changed = 0;
  for (std::uint64_t k = 0; k < kKeys; ++k) {
    if (k % 2 == 0) db.put(k, k + 20000);
    if (k % 5 == 0) db.erase(k);
    changed += (k % 2 == 0 || k % 5 == 0) ? 1 : 0;
  }
  const Model now = collect(db.scan());
  db.compact();
  // s1 sees every key's first version, s2 its second: the changed keys
  // keep both behind their newest record, the others the first.
  Stats st = db.stats();
  CHECK(st.snapshots == 2);
  CHECK(st.snapshot_versions == kKeys + changed);
  CHECK(st.snapshot_pinned_bytes > 0);
  check_view(*s1, m0);
  check_view(*s2, m1);
  check_view(db, now);
  ChunkFiles files = chunk_files_in(dir);
  CHECK(files.by_major[5] > 0);
  CHECK(files.versions == kKeys + changed);
  CHECK(files.bytes == level_bytes(st));  // no file is kept on disk for the snapshots
  // Released, s1's versions go at the next compaction; s2's stay.
  s1.reset();
  db.compact();
  st = db.stats();
  CHECK(st.snapshot_versions == changed);
  check_view(*s2, m1);
  check_view(db, now);
  s2.reset();
  db.compact();
  st = db.stats();
  CHECK(st.snapshot_versions == 0);
  CHECK(st.snapshot_pinned_bytes == 0);
  files = chunk_files_in(dir);
  CHECK(files.versions == 0);
  CHECK(files.by_major.count(5) == 0);  // compact() rewrote every file, with no snapshot: format 4
  CHECK(files.bytes == level_bytes(st));
  check_view(db, now);
  CHECK(verify(dir).ok());
}

TEST_CASE("chunk files that keep versions read right after a reopen, and lose them at the next compaction",
          "[snapshot]") {
  TempDir tmp("snapshot");
  const auto dir = tmp / "store";
  Model then, now;
  {
    Store db(dir, busy_options());
    for (std::uint64_t k = 0; k < 2000; ++k) db.put(k, k), then[k] = k;
    db.checkpoint();
    auto snap = db.snapshot();
    for (std::uint64_t k = 0; k < 2000; k += 3) db.put(k, k + 1);
    for (std::uint64_t k = 1; k < 2000; k += 7) db.erase(k);
    db.compact();
    now = collect(db.scan());
    check_view(snap, then);
    CHECK(chunk_files_in(dir).versions > 0);
  }
  CHECK(verify(dir).ok());
  Store db(dir, busy_options());
  check_view(db, now);
  std::optional<Store::View> snap = db.snapshot();
  const Model before = now;
  check_view(*snap, now);
  db.put(5, 5);
  now[5] = 5;
  db.compact();  // a snapshot lives: it keeps what it sees, no more
  check_view(*snap, before);
  snap.reset();
  db.compact();
  check_view(db, now);
  CHECK(chunk_files_in(dir).versions == 0);
}

TEST_CASE("snapshots taken and released at random under writes, flushes and compactions read their moment",
          "[snapshot]") {
  TempDir tmp("snapshot");
  Store db(tmp / "store", busy_options());
  std::mt19937_64 rng(20261207);
  Model model;
  std::list<std::pair<Store::View, Model>> held;
  for (int round = 0; round < 40; ++round) {
    INFO("round " << round);
    for (int i = 0; i < 400; ++i) {
      const std::uint64_t k = rng() % 1500;
      if (rng() % 4 == 0) {
        db.erase(k);
        model.erase(k);
      } else {
        const std::uint64_t v = rng();
        db.put(k, v);
        model[k] = v;
      }
    }
    switch (rng() % 4) {
      case 0: db.checkpoint(); break;
      case 1: db.compact(); break;
      default: break;  // the background's flushes and compactions
    }
    if (rng() % 2 == 0 || held.empty()) held.emplace_back(db.snapshot(), model);
    if (held.size() > 3 || rng() % 4 == 0) held.erase(std::next(held.begin(), static_cast<std::ptrdiff_t>(rng() % held.size())));
    for (const auto& [view, want] : held) check_view(view, want);
    const Stats st = db.stats();
    CHECK(st.snapshots == held.size());
  }
  check_view(db, model);
  held.clear();
  db.compact();
  check_view(db, model);
}

TEST_CASE("a power cut while compactions keep versions for a snapshot loses no synced write", "[snapshot][power]") {
  int cut = 0, versions_written = 0;
  for (std::uint64_t seed = 1; seed <= 16; ++seed) {
    INFO("seed " << seed);
    TempDir tmp("snapshot-power");
    const auto dir = tmp / "db";
    constexpr std::uint64_t kKeys = 600;
    {
      Database<> db(dir, busy_options());
      auto c = db.collection<std::uint64_t, std::uint64_t>("c");
      for (std::uint64_t k = 0; k < kKeys; ++k) c.put(k, k);
      db.checkpoint();
    }
    std::mt19937_64 rng(seed * 7919);
    std::uint64_t acked = 0;  // keys 0..acked-1 were written again (in order)
    auto write = [&](Database<>& db) {
      auto c = db.collection<std::uint64_t, std::uint64_t>("c");
      const Snapshot snap = db.snapshot();
      for (std::uint64_t k = 0; k < kKeys; ++k) {
        c.put(k, k + 1000);
        acked = k + 1;
        if (k % 150 == 149) db.compact();  // keeps each first version for snap
      }
      const auto then = c.at(snap);
      for (std::uint64_t k = 0; k < kKeys; k += 37) CHECK(then.get(k) == k);
      if (db.stats().snapshot_versions > 0) ++versions_written;
    };
    if (stowage_test::power_cut_during(dir, busy_options(), seed, 30 + rng() % 8000, write)) ++cut;
    Database<> db(dir, busy_options());
    auto c = db.collection<std::uint64_t, std::uint64_t>("c");
    for (std::uint64_t k = 0; k < kKeys; ++k) {
      INFO("key " << k);
      const auto v = c.get(k);
      REQUIRE(v);
      CHECK((*v == k || *v == k + 1000));
      if (seed % 2 == 1 && k < acked) CHECK(*v == k + 1000);  // synced writes survive
    }
    db.compact();
    CHECK(collect(c.scan()).size() == kKeys);
    CHECK(verify(dir).ok());
  }
  CHECK(cut > 4);
  CHECK(versions_written > 0);
  INFO("cut " << cut << ", versions written " << versions_written);
  CHECK(cut + versions_written == 16);
}
