// SPDX-License-Identifier: BSL-1.0
// Tests of leveled storage: the picking (compaction.hpp) on hand-built
// Versions (version.hpp), and the engine's flushes and background
// compactions against a model (std::map) under random puts and erases,
// with reopens, a full compact(), concurrent readers and the files on disk.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <stowage/stowage.hpp>
#include <stowage/verify.hpp>

#include "fault_fs.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;

namespace {

detail::FilePtr file(std::uint64_t number, std::string first, std::string last, std::uint64_t bytes,
                     std::uint32_t level, std::uint64_t run = 0) {
  detail::ChunkRef r;
  r.file = number;
  r.records = 1;
  r.bytes = bytes;
  r.first_key = std::move(first);
  r.last_key = std::move(last);
  r.level = level;
  r.run = run;
  return std::make_shared<const detail::LiveFile>(r, nullptr);
}

using Store = Storage<std::string, std::string>;

// Small buffers, files and cache: many flushes and compactions from a few
// thousand records.
Options tiny() {
  return Options{.cache_bytes = 256 << 10, .chunk_bytes = 4 << 10, .block_bytes = 512, .write_buffer_bytes = 16 << 10};
}
// tiny() without background compaction: no merge makes new files behind a
// test's back (flushes still run).
Options tiny_quiet() {
  Options o = tiny();
  o.auto_compaction = false;
  return o;
}

std::string value_for(std::uint64_t k, std::uint64_t round) {
  return "v" + std::to_string(k) + "." + std::to_string(round) + std::string(k % 37, 'x');
}
std::string key_for(std::uint64_t k) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%06llu", static_cast<unsigned long long>(k));
  return buf;
}

void check_model(const Store& db, const std::map<std::string, std::string>& model) {
  REQUIRE(db.size() == model.size());
  auto it = model.begin();
  std::size_t n = 0;
  for (auto&& [k, v] : db.scan()) {
    REQUIRE(it != model.end());
    REQUIRE(k == it->first);
    REQUIRE(v == it->second);
    ++it;
    ++n;
  }
  REQUIRE(n == model.size());
  // Point reads of every key ever used (present and erased).
  for (std::uint64_t k = 0; k < 3000; k += 7) {
    auto got = db.get(key_for(k));
    auto want = model.find(key_for(k));
    if (want == model.end()) {
      REQUIRE_FALSE(got.has_value());
    } else {
      REQUIRE(got.has_value());
      REQUIRE(*got == want->second);
    }
  }
}

// The chunk files in dir, by number.
std::set<std::uint64_t> chunk_files(const std::filesystem::path& dir) {
  std::set<std::uint64_t> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (auto n = detail::parse_chunk_file_name(e.path().filename().string())) out.insert(*n);
  return out;
}
std::set<std::uint64_t> manifest_files(const std::filesystem::path& dir) {
  auto fs = default_file_system();
  auto m = detail::read_manifest(*fs, dir);
  std::set<std::uint64_t> out;
  for (const auto& ks : m.keyspaces)
    for (const auto& c : ks.chunks) out.insert(c.file);
  return out;
}

}  // namespace

TEST_CASE("level targets are set from the last level up", "[compaction]") {
  detail::Version v;
  auto t = detail::level_targets(v, 1000);
  CHECK(t.base == detail::kLastLevel);
  CHECK(t.bytes[detail::kLastLevel] == 1000);

  v.levels[detail::kLastLevel].add(file(1, "a", "z", 150000, detail::kLastLevel));
  t = detail::level_targets(v, 1000);
  // 150000, 15000, 1500: three levels in use, level 4 the base.
  CHECK(t.base == detail::kLastLevel - 2);
  CHECK(t.bytes[detail::kLastLevel - 1] == 15000);
  CHECK(t.bytes[detail::kLastLevel - 2] == 1500);
  CHECK(t.bytes[detail::kLastLevel - 3] == 0);
}

TEST_CASE("pick_compaction: level 0 by run count, levels by size, round robin", "[compaction]") {
  detail::Version v;
  std::array<std::string, detail::kLevels> after{};
  auto t = detail::level_targets(v, 1000);
  CHECK_FALSE(detail::pick_compaction(v, t, after).has_value());

  for (std::uint64_t r = 0; r + 1 < detail::kL0Trigger; ++r) {
    v.l0.emplace_back();
    v.l0.back().add(file(10 + r, "a", "m", 100, 0, 10 + r));
  }
  CHECK_FALSE(detail::pick_compaction(v, t, after).has_value());
  v.l0.emplace_back();
  v.l0.back().add(file(20, "b", "n", 100, 0, 20));
  auto p = detail::pick_compaction(v, t, after);
  REQUIRE(p.has_value());
  CHECK(p->level == 0);
  CHECK(p->output == t.base);

  // A level over its target, and the file after the last one compacted.
  detail::Version w;
  w.levels[detail::kLastLevel].add(file(1, "a", "z", 100000, detail::kLastLevel));
  auto& five = w.levels[detail::kLastLevel - 1];
  five.add(file(2, "a", "c", 8000, detail::kLastLevel - 1));
  five.add(file(3, "d", "f", 8000, detail::kLastLevel - 1));
  five.add(file(4, "g", "i", 8000, detail::kLastLevel - 1));
  t = detail::level_targets(w, 1000);
  p = detail::pick_compaction(w, t, after);
  REQUIRE(p.has_value());
  CHECK(p->level == detail::kLastLevel - 1);
  CHECK(p->output == detail::kLastLevel);
  CHECK(p->file == 0);
  after[detail::kLastLevel - 1] = "c";
  CHECK(detail::pick_compaction(w, t, after)->file == 1);
  after[detail::kLastLevel - 1] = "i";
  CHECK(detail::pick_compaction(w, t, after)->file == 0);  // wraps around

  // Files above the base level move down first; level 0 never goes below them.
  detail::Version u;
  u.levels[2].add(file(5, "a", "b", 10, 2));
  t = detail::level_targets(u, 1000);
  p = detail::pick_compaction(u, t, after);
  REQUIRE(p.has_value());
  CHECK(p->level == 2);
  for (std::uint64_t r = 0; r < detail::kL0Trigger * 3; ++r) {
    u.l0.emplace_back();
    u.l0.back().add(file(30 + r, "a", "m", 100, 0, 30 + r));
  }
  p = detail::pick_compaction(u, t, after);
  REQUIRE(p.has_value());
  if (p->level == 0) CHECK(p->output == 2);
}

TEST_CASE("the empty key is the smallest key, not a missing one, in level-0 ranges and round robin", "[compaction]") {
  // Level 0's range once began at the second run's first key when the
  // newest run began with the empty key: the merge then left out a
  // base-level file holding "", and the level's files overlapped (seen as
  // "chunk keys must be strictly ascending" in a later compaction).
  std::vector<detail::Run> l0(3);
  l0[0].add(file(12, "", "k", 100, 0, 12));
  l0[1].add(file(11, "c", "z", 100, 0, 11));
  l0[2].add(file(10, "b", "m", 100, 0, 10));
  auto [lo, hi] = detail::key_range(l0);
  CHECK(lo == "");
  CHECK(hi == "z");
  std::swap(l0[0], l0[1]);
  std::tie(lo, hi) = detail::key_range(l0);
  CHECK(lo == "");
  CHECK(hi == "z");

  // The round robin starts at a file that begins with the empty key.
  detail::Version w;
  w.levels[detail::kLastLevel].add(file(1, "", "z", 100000, detail::kLastLevel));
  auto& five = w.levels[detail::kLastLevel - 1];
  five.add(file(2, "", "c", 8000, detail::kLastLevel - 1));
  five.add(file(3, "d", "f", 8000, detail::kLastLevel - 1));
  const auto t = detail::level_targets(w, 1000);
  std::array<std::string, detail::kLevels> after{};
  auto p = detail::pick_compaction(w, t, after);
  REQUIRE(p.has_value());
  CHECK(p->level == detail::kLastLevel - 1);
  CHECK(p->file == 0);
}

TEST_CASE("Run lookups: find, seek and overlapping", "[compaction]") {
  detail::Run r;
  r.add(file(1, "b", "d", 10, 1));
  r.add(file(2, "f", "h", 10, 1));
  CHECK(r.find("a") == nullptr);
  CHECK(r.find("b")->ref().file == 1);
  CHECK(r.find("e") == nullptr);
  CHECK(r.find("h")->ref().file == 2);
  CHECK(r.find("i") == nullptr);
  CHECK(r.seek("e") == 1);
  CHECK(r.overlapping("c", "e") == std::pair<std::size_t, std::size_t>(0, 1));
  CHECK(r.overlapping("a", "z") == std::pair<std::size_t, std::size_t>(0, 2));
  CHECK(r.overlapping("i", "z").first == r.overlapping("i", "z").second);
}

TEST_CASE("random puts and erases through many flushes and compactions match a model", "[compaction]") {
  TempDir dir("compaction");
  std::map<std::string, std::string> model;
  std::mt19937_64 rng(42);
  for (int session = 0; session < 3; ++session) {
    Store db(dir.path(), tiny());
    for (std::uint64_t i = 0; i < 12000; ++i) {
      const std::uint64_t k = rng() % 3000;
      if (rng() % 4 == 0) {
        db.erase(key_for(k));
        model.erase(key_for(k));
      } else {
        db.put(key_for(k), value_for(k, i));
        model[key_for(k)] = value_for(k, i);
      }
      if (i % 4000 == 3999) check_model(db, model);
    }
    auto st = db.stats();
    CHECK(st.flushes > 5);
    CHECK(st.count_micros > 0);  // size() in check_model looked uncounted records up
    CHECK(st.compactions > 0);
    CHECK(st.records == model.size());
    REQUIRE(st.levels.size() == detail::kLevels);
    std::uint64_t files = 0;
    for (const auto& l : st.levels) files += l.files;
    CHECK(files == st.chunks);
    check_model(db, model);
  }
  Store db(dir.path(), tiny());
  check_model(db, model);
  db.compact();
  auto st = db.stats();
  for (std::uint32_t l = 0; l < detail::kLastLevel; ++l) CHECK(st.levels[l].files == 0);
  // The last level holds exactly the live records: no tombstone, no older version.
  CHECK(st.levels[detail::kLastLevel].records == model.size());
  check_model(db, model);
  db.close();
  // A close may leave what its last compactions made obsolete; the next open
  // removes it, and with no background compaction to make new files, a
  // compact() then leaves exactly the files the manifest names.
  Store again(dir.path(), tiny_quiet());
  again.compact();
  CHECK(chunk_files(dir.path()) == manifest_files(dir.path()));
  check_model(again, model);
}

TEST_CASE("one merge of many overlapping level-0 runs keeps the newest record of each key", "[compaction]") {
  // Each count of runs gives the merge's tournament another shape (powers
  // of two and not); the runs cover shifted key ranges, so their readers
  // run out at different times, and a key is put and erased in many runs.
  for (int runs : {1, 2, 3, 5, 7, 8, 13, 24}) {
    CAPTURE(runs);
    TempDir dir("compaction-runs");
    Options o = tiny_quiet();
    o.cache_bytes = 8 << 20;
    o.write_buffer_bytes = 4 << 20;  // one run per checkpoint()
    std::map<std::string, std::string> model;
    std::mt19937_64 rng(static_cast<std::uint64_t>(runs));
    Store db(dir.path(), o);
    for (int r = 0; r < runs; ++r) {
      const std::uint64_t from = static_cast<std::uint64_t>(r) * 97 % 500;
      for (int i = 0; i < 400; ++i) {
        const std::uint64_t k = from + rng() % 500;
        if (rng() % 4 == 0) {
          db.erase(key_for(k));
          model.erase(key_for(k));
        } else {
          db.put(key_for(k), value_for(k, static_cast<std::uint64_t>(r)));
          model[key_for(k)] = value_for(k, static_cast<std::uint64_t>(r));
        }
      }
      db.checkpoint();
    }
    CHECK(db.stats().levels[0].files == static_cast<std::uint64_t>(runs));
    check_model(db, model);
    db.compact();
    const auto st = db.stats();
    CHECK(st.levels[0].files == 0);
    // Exactly the live records: no tombstone, no older version.
    CHECK(st.levels[detail::kLastLevel].records == model.size());
    check_model(db, model);
  }
}

TEST_CASE("files a closed store left behind go after the next open; compact() leaves only what the manifest names",
          "[compaction]") {
  TempDir dir("compaction-leftovers");
  std::map<std::string, std::string> model;
  {
    Store db(dir.path(), tiny());
    std::mt19937_64 rng(11);
    for (std::uint64_t i = 0; i < 12000; ++i) {
      const std::uint64_t k = rng() % 3000;
      db.put(key_for(k), value_for(k, i));
      model[key_for(k)] = value_for(k, i);
    }
    REQUIRE(db.stats().compactions > 0);
  }  // close() removes nothing: what its last compactions made obsolete may stay
  // Plant what a crash or a close could leave: a chunk file and a WAL
  // segment that the manifest does not need.
  auto fs = default_file_system();
  const auto m = detail::read_manifest(*fs, dir.path());
  REQUIRE(m.wal_start > 1);
  const auto named = manifest_files(dir.path());
  REQUIRE(!named.empty());
  // Past every number in use: the manifest's next file number may lag the
  // files a stopped compaction left.
  std::uint64_t stray_chunk = m.next_file;
  for (auto f : chunk_files(dir.path())) stray_chunk = std::max(stray_chunk, f);
  stray_chunk += 5;
  std::filesystem::copy_file(dir.path() / detail::chunk_file_name(*named.begin()),
                             dir.path() / detail::chunk_file_name(stray_chunk));
  const auto stray_wal = dir.path() / detail::wal_file_name(m.wal_start - 1);
  std::ofstream(stray_wal, std::ios::binary) << std::string(4096, '\0');
  {
    Store db(dir.path(), tiny_quiet());  // no background merge makes new files while the directory is compared
    check_model(db, model);  // no named file was taken for a leftover
    // New files get numbers past every leftover's.
    db.put(key_for(1), "after");
    model[key_for(1)] = "after";
    db.checkpoint();
    for (auto f : manifest_files(dir.path())) CHECK(f != stray_chunk);
    db.compact();
    CHECK(chunk_files(dir.path()) == manifest_files(dir.path()));
    CHECK_FALSE(std::filesystem::exists(stray_wal));
    check_model(db, model);
  }
  Store db(dir.path(), tiny());
  check_model(db, model);
}

#if defined(__linux__)
TEST_CASE("the background threads are named and joined at close", "[compaction]") {
  // Names of this process's threads, from /proc.
  auto names = [] {
    std::multiset<std::string> out;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      if (std::getline(comm, name)) out.insert(name);  // else the thread ended meanwhile
    }
    return out;
  };
  TempDir dir("compaction-threads");
  {
    Store db(dir.path(), tiny());
    for (std::uint64_t i = 0; i < 12000; ++i) db.put(key_for(i % 3000), value_for(i % 3000, i));
    // Only the background threads flush and compact here, so both have
    // passed their start.
    REQUIRE(db.stats().compactions > 0);
    // A flush seals the WAL on a helper thread ("stowage-seal", which bears
    // the flush thread's name for the moment before it names itself) and
    // joins it before it ends: after a checkpoint no flush runs and no
    // write starts one.
    db.checkpoint();
    const auto running = names();
    CHECK(running.count("stowage-flush") == 1);
    CHECK(running.count("stowage-seal") == 0);
    CHECK(running.count("stowage-compact") == 1);
    db.close();
    const auto closed = names();
    CHECK(closed.count("stowage-flush") == 0);
    CHECK(closed.count("stowage-seal") == 0);
    CHECK(closed.count("stowage-compact") == 0);
  }
  Store db(dir.path(), tiny_quiet());
  db.put(key_for(1), "one");
  db.checkpoint();  // the flush thread flushed: it has started
  const auto running = names();
  CHECK(running.count("stowage-flush") == 1);
  CHECK(running.count("stowage-compact") == 0);  // no compaction thread without auto_compaction
}
#endif

#if defined(__linux__)
// The store's file system, holding chunk file creation by thread: the flush
// thread's first chunk file waits until open_flush(); the compaction
// thread's first waits until the flush thread is held there. So a
// compaction is under way (past its first record) while a flush is held.
class FlushGate final : public stowage_test::ForwardingFileSystem {
 public:
  std::unique_ptr<WritableFile> create(const std::filesystem::path& p) override {
    if (detail::parse_chunk_file_name(p.filename().string())) {
      char name[16] = {};
      ::pthread_getname_np(::pthread_self(), name, sizeof name);
      const std::string_view thread(name);
      std::unique_lock g(mu_);
      // The deadlines only keep a broken build from hanging the suite.
      if (thread == "stowage-flush" && !flush_open_) {
        flush_held_ = true;
        cv_.notify_all();
        cv_.wait_for(g, std::chrono::seconds(120), [&] { return flush_open_; });
      } else if (thread == "stowage-compact") {
        cv_.wait_for(g, std::chrono::seconds(120), [&] { return flush_held_ || flush_open_; });
      }
    }
    return base_->create(p);
  }
  bool flush_held() {
    std::lock_guard g(mu_);
    return flush_held_;
  }
  void open_flush() {
    {
      std::lock_guard g(mu_);
      flush_open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool flush_held_ = false;
  bool flush_open_ = false;
};

TEST_CASE("the background compaction pauses while a flush runs on fewer than three cores", "[compaction]") {
  STATIC_REQUIRE_FALSE(detail::compaction_yields_to_flush(0));  // unknown: no pause
  STATIC_REQUIRE(detail::compaction_yields_to_flush(1));
  STATIC_REQUIRE(detail::compaction_yields_to_flush(2));
  STATIC_REQUIRE_FALSE(detail::compaction_yields_to_flush(3));
  STATIC_REQUIRE_FALSE(detail::compaction_yields_to_flush(64));

  TempDir dir("compaction-yield");
  // Large enough buffers that each level-0 run holds thousands of records
  // (a merge checks for a flush every 1,024).
  Options o = tiny_quiet();
  o.cache_bytes = 16 << 20;
  o.write_buffer_bytes = 4 << 20;
  std::map<std::string, std::string> model;
  std::mt19937_64 rng(7);
  {
    Store db(dir.path(), o);
    for (int run = 0; run < 5; ++run) {
      for (int i = 0; i < 2000; ++i) {
        const std::uint64_t k = rng() % 3000;
        model[key_for(k)] = value_for(k, static_cast<std::uint64_t>(run));
        db.put(key_for(k), model[key_for(k)]);
      }
      db.checkpoint();  // one level-0 run each
    }
    REQUIRE(db.stats().levels[0].runs >= detail::kL0Trigger);
  }
  auto gate = std::make_shared<FlushGate>();
  o.auto_compaction = true;
  // A freeze at 512 KiB; past it, with the flush held, puts wait 4 ms
  // slices before the writer would stop (at 768 KiB): seconds for the
  // flush thread to reach the gate.
  o.write_buffer_bytes = 1 << 20;
  o.file_system = gate;
  Store db(dir.path(), o);  // the compaction thread starts on the level-0 runs and waits at the gate
  for (std::uint64_t i = 0; !gate->flush_held(); ++i) {
    REQUIRE(i < 100000);  // a freeze comes after 512 KiB of records
    const std::uint64_t k = 3000 + i;
    model[key_for(k)] = value_for(k, 9);
    db.put(key_for(k), model[key_for(k)]);
  }
  // The flush is held; the compaction goes on past its first record.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  const bool yields = detail::compaction_yields_to_flush(std::thread::hardware_concurrency());
  if (yields) {
    // It pauses at its next check and stays paused while the flush is held.
    while (db.stats().compaction_pauses == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    REQUIRE(db.stats().compaction_pauses == 1);
    CHECK(db.stats().compactions == 0);
  } else {
    // Enough cores: it runs to its end beside the held flush.
    while (db.stats().compactions == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    REQUIRE(db.stats().compactions >= 1);
    CHECK(db.stats().compaction_pauses == 0);
  }
  gate->open_flush();
  db.checkpoint();
  const Stats s = db.stats();
  CHECK(s.flushes >= 1);
  if (!yields) CHECK(s.compaction_pauses == 0);
  if (s.compaction_pauses == 0) CHECK(s.compaction_paused_micros == 0);
  check_model(db, model);
  db.compact();
  check_model(db, model);
}

#endif

TEST_CASE("erasing everything leaves an empty last level after compact", "[compaction]") {
  TempDir dir("compaction-empty");
  Store db(dir.path(), tiny());
  for (std::uint64_t k = 0; k < 3000; ++k) db.put(key_for(k), value_for(k, 0));
  db.checkpoint();
  for (std::uint64_t k = 0; k < 3000; ++k) db.discard(key_for(k));
  db.checkpoint();
  CHECK(db.size() == 0);
  db.compact();
  CHECK(db.size() == 0);
  CHECK(db.stats().chunks == 0);
  std::size_t n = 0;
  for (auto&& kv : db.scan()) {
    (void)kv;
    ++n;
  }
  CHECK(n == 0);
}

TEST_CASE("readers and scans run while background compactions replace files", "[compaction]") {
  TempDir dir("compaction-readers");
  Store db(dir.path(), tiny());
  // Keys k0..k1999 always hold a value that ends in their own number: a
  // reader checks each record it sees, whichever version it reads.
  for (std::uint64_t k = 0; k < 2000; ++k) db.put(key_for(k), "0:" + key_for(k));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> checked{0};
  std::atomic<bool> bad{false};
  auto reader = [&](bool scan) {
    std::mt19937_64 rng(scan ? 1 : 2);
    while (!stop.load()) {
      if (scan) {
        std::size_t n = 0;
        for (auto&& [k, v] : db.scan()) {
          if (v.substr(v.find(':') + 1) != k) bad = true;
          ++n;
        }
        if (n != 2000) bad = true;
      } else {
        auto k = key_for(rng() % 2000);
        auto v = db.get(k);
        if (!v || v->substr(v->find(':') + 1) != k) bad = true;
      }
      ++checked;
    }
  };
  std::thread a(reader, true), b(reader, false);
  for (std::uint64_t round = 1; round <= 15; ++round)
    for (std::uint64_t k = 0; k < 2000; ++k) db.put(key_for(k), std::to_string(round) + ":" + key_for(k));
  // Let the readers see the last state too, then stop them.
  const auto seen = checked.load();
  while (checked.load() < seen + 4) std::this_thread::yield();
  stop = true;
  a.join();
  b.join();
  CHECK_FALSE(bad.load());
  CHECK(db.stats().compactions > 0);
  CHECK(db.size() == 2000);
}

TEST_CASE("a format-4 manifest records levels, runs and the live count", "[compaction]") {
  TempDir dir("compaction-manifest");
  {
    Store db(dir.path(), tiny());
    for (std::uint64_t k = 0; k < 2000; ++k) db.put(key_for(k), value_for(k, 0));
    for (std::uint64_t k = 0; k < 2000; k += 2) db.erase(key_for(k));
  }
  auto fs = default_file_system();
  auto m = detail::read_manifest(*fs, dir.path());
  CHECK(m.format_major == detail::kFormatMajor);
  const auto* ks = m.keyspace(detail::kDefaultKeyspace);
  REQUIRE(ks != nullptr);
  CHECK(ks->live == 1000);
  bool l0 = false;
  for (const auto& c : ks->chunks) {
    CHECK(c.level < detail::kLevels);
    if (c.level == 0) {
      l0 = true;
      CHECK(c.run > 0);
    } else {
      CHECK(c.run == 0);
    }
  }
  (void)l0;
  // Round trip through the encoder.
  auto again = detail::decode_manifest(detail::encode_manifest(m), dir.path() / "MANIFEST");
  REQUIRE(again.keyspaces[0].chunks.size() == ks->chunks.size());
  for (std::size_t i = 0; i < ks->chunks.size(); ++i) {
    CHECK(again.keyspaces[0].chunks[i].level == ks->chunks[i].level);
    CHECK(again.keyspaces[0].chunks[i].run == ks->chunks[i].run);
  }
  Store db(dir.path(), tiny());
  CHECK(db.size() == 1000);
}

// ---- the live count (docs/format.md, "The live count") -----------------------

TEST_CASE("a flush writes keys of unknown presence uncounted; size() looks them up once per file", "[compaction][count]") {
  TempDir dir("count");
  Options opt = tiny();
  opt.cache_bytes = 4 << 20;
  opt.write_buffer_bytes = 1 << 20;  // one flush per checkpoint() here
  {
    Store db(dir.path(), opt);
    for (std::uint64_t k = 0; k < 3000; ++k) db.put(key_for(k), value_for(k, 0));
    db.checkpoint();
    for (std::uint64_t k = 0; k < 3000; k += 3) db.put(key_for(k), value_for(k, 1));  // overwrites, unknown below
    for (std::uint64_t k = 3000; k < 3500; ++k) db.put(key_for(k), value_for(k, 1));   // new keys
    db.checkpoint();
    auto st = db.stats();  // stats() counts as size() does
    CHECK(st.records == 3500);
    CHECK(st.uncounted_records == 3000 + 1000 + 500);  // no compaction ran: two level-0 files
    const auto micros = st.count_micros;
    CHECK(micros > 0);
    CHECK(db.size() == 3500);
    CHECK(db.stats().count_micros == micros);  // each file's part is kept, nothing looked up again
    // An erase looks its key up: its tombstone is counted and takes 1 off the
    // MANIFEST's count, while the put it hides is still uncounted there.
    CHECK(db.erase(key_for(1)));
    CHECK_FALSE(db.erase(key_for(99999)));  // nothing below: no record at all
    db.checkpoint();
    CHECK(db.size() == 3499);
    CHECK_FALSE(db.empty());
  }
  auto fs = default_file_system();
  auto m = detail::read_manifest(*fs, dir.path());
  const auto* ks = m.keyspace(detail::kDefaultKeyspace);
  REQUIRE(ks != nullptr);
  CHECK(ks->live == -1);  // below zero: the uncounted puts add 3500
  std::uint64_t uncounted = 0;
  for (const auto& c : ks->chunks) uncounted += c.uncounted;
  CHECK(uncounted == 4500);
  const auto rep = verify(dir.path());  // merges the runs: live keys = MANIFEST + uncounted parts
  CHECK(rep.ok());
  CHECK(rep.live_checked);
  CHECK(rep.live_records == 3499);
  {
    Store db(dir.path(), opt);
    CHECK(db.size() == 3499);  // looked up again after the open (the parts are kept in memory only)
    db.compact();              // everything at the last level: nothing below, all counted
    const auto st = db.stats();
    CHECK(st.uncounted_records == 0);
    CHECK(st.records == 3499);
  }
  m = detail::read_manifest(*fs, dir.path());
  CHECK(m.keyspace(detail::kDefaultKeyspace)->live == 3499);
}

TEST_CASE("compactions keep the live count exact while records move from uncounted to counted", "[compaction][count]") {
  TempDir dir("count-model");
  std::map<std::string, std::string> model;
  std::mt19937_64 rng(7);
  std::uint64_t compactions = 0;
  for (int session = 0; session < 2; ++session) {
    Store db(dir.path(), tiny());
    for (std::uint64_t i = 0; i < 20000; ++i) {
      const std::uint64_t k = rng() % 5000;
      switch (rng() % 8) {
        case 0:  // looked up: counted
          CHECK(db.erase(key_for(k)) == (model.erase(key_for(k)) == 1));
          break;
        case 1:  // not looked up: uncounted
          db.discard(key_for(k));
          model.erase(key_for(k));
          break;
        default:
          db.put(key_for(k), value_for(k, i));
          model[key_for(k)] = value_for(k, i);
      }
      // Rarely: most flushes and compactions run with nothing resolved.
      if (i % 7000 == 6999) REQUIRE(db.size() == model.size());
    }
    const auto st = db.stats();
    CHECK(st.records == model.size());
    CHECK(st.compactions > 5);
    compactions += st.compactions;
  }
  CHECK(compactions > 10);
  const auto rep = verify(dir.path());  // the close flushed the write buffer: the chunks hold everything
  CHECK(rep.ok());
  CHECK(rep.live_checked);
  CHECK(rep.live_records == model.size());
  Store db(dir.path(), tiny());
  CHECK(db.size() == model.size());
  CHECK(db.empty() == model.empty());
  db.compact();
  CHECK(db.stats().uncounted_records == 0);
  CHECK(db.size() == model.size());
}
