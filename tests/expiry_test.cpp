// Tests of expiry (Collection::put(key, value, ttl), set_default_ttl;
// expiry.hpp, the write path in detail/index_ops.hpp, the engine's reads and
// merges): a record is gone at its time for every read, the default TTL,
// times kept across sessions and migrations, compaction reclaiming expired
// records, what is refused, the change feed and history handing values
// over without their times, hostile bytes, and power cuts.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <stowage/manifest.hpp>
#include <stowage/stowage.hpp>

#include "clock_util.hpp"
#include "fault_fs.hpp"
#include "migration_util.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::clocked_options;
using stowage_test::ManualClock;
using stowage_test::MigV1;
using stowage_test::MigV2;
using stowage_test::stored_records;
using stowage_test::TempDir;
using namespace std::chrono_literals;

namespace {

template <class C>
std::vector<std::uint64_t> keys_of(const C& c) {
  std::vector<std::uint64_t> out;
  for (const auto& [k, v] : c.scan()) out.push_back(k);
  return out;
}

// prefix followed by n and `pad` bytes 'p' (built by appending: g++ 12 at
// -O3 reports a false -Wrestrict on "literal" + std::to_string(...)).
std::string text(const char* prefix, std::uint64_t n, std::size_t pad = 0) {
  std::string out(prefix);
  out.append(std::to_string(n)).append(pad, 'p');
  return out;
}

}  // namespace

TEST_CASE("a put with a ttl is gone at its time for every read", "[expiry]") {
  TempDir tmp("expiry-reads");
  ManualClock clock;
  Database db(tmp / "db", clocked_options(clock));
  auto c = db.collection<std::uint64_t, std::string>("c");
  CHECK_FALSE(c.expires_records());
  c.put(1, "one", 10s);
  CHECK(c.expires_records());
  CHECK(c.default_ttl() == 0us);
  c.put(2, "two");  // no default TTL: never expires
  c.put(3, "three", 20s);
  c.put(4, "four", 10s);
  c.erase(4);

  CHECK(*c.get(1) == "one");
  CHECK(c.size() == 3);
  CHECK(keys_of(c) == std::vector<std::uint64_t>{1, 2, 3});
  auto early = db.snapshot();

  clock.advance(9s);
  CHECK(c.contains(1));
  clock.advance(1s);  // key 1's time has come
  CHECK_FALSE(c.get(1));
  CHECK_FALSE(c.contains(1));
  CHECK(c.size() == 2);
  CHECK(c.count(0, 10) == 2);
  CHECK(keys_of(c) == std::vector<std::uint64_t>{2, 3});
  std::vector<std::uint64_t> down;
  for (const auto& [k, v] : c.scan().reversed()) down.push_back(k);
  CHECK(down == std::vector<std::uint64_t>{3, 2});
  CHECK(c.get_batch(std::vector<std::uint64_t>{1, 2, 3}) ==
        std::vector<std::optional<std::string>>{std::nullopt, "two", "three"});
  // A snapshot taken before sees what it saw, less what has expired since.
  auto at = c.at(early);
  CHECK_FALSE(at.get(1));
  CHECK(*at.get(3) == "three");
  CHECK(at.size() == 2);

  // An expired record is absent to the writes that ask.
  CHECK_FALSE(c.erase(1));
  CHECK(c.insert(1, "again"));
  CHECK(*c.get(1) == "again");  // stored with the default TTL: none

  clock.advance(10s);  // key 3's time
  CHECK(keys_of(c) == std::vector<std::uint64_t>{1, 2});
  bool called = false;
  CHECK_FALSE(c.update(3, [&](std::string&) { called = true; }));
  CHECK_FALSE(called);
  CHECK(c.update(3, [](std::optional<std::string>& v) {
    CHECK_FALSE(v);
    v = "back";
  }));
  CHECK(*c.get(3) == "back");
  CHECK(c.size() == 3);
  CHECK_FALSE(c.empty());
}

TEST_CASE("the default TTL applies to every put that gives none", "[expiry]") {
  TempDir tmp("expiry-default");
  ManualClock clock;
  Database db(tmp / "db", clocked_options(clock));
  auto c = db.collection<std::uint64_t, std::string>("c");
  c.set_default_ttl(60s);
  CHECK(c.expires_records());
  CHECK(c.default_ttl() == 60s);
  c.put(1, "put");
  c.put_batch(std::vector<std::pair<std::uint64_t, std::string>>{{2, "batch"}, {3, "batch"}});
  CHECK(c.insert(4, "insert"));
  auto b = db.batch();
  b.put(c, 5, "db batch").put(c, 6, "db batch, long", 1h);
  b.commit();
  auto cb = c.batch();
  cb.put(7, "collection batch, long", 1h).put(8, "collection batch");
  cb.commit();
  c.put(9, "long", 1h);

  clock.advance(59s);
  CHECK(c.size() == 9);
  c.update(1, [](std::string& v) { v += " updated"; });  // an update is a put: a new default TTL
  clock.advance(2s);
  CHECK(keys_of(c) == std::vector<std::uint64_t>{1, 6, 7, 9});
  CHECK(*c.get(1) == "put updated");

  c.set_default_ttl(0s);  // from now on, puts without a ttl never expire; stored times stay
  CHECK(c.default_ttl() == 0us);
  CHECK(c.expires_records());
  c.put(10, "forever");
  clock.advance(24h * 365);
  CHECK(keys_of(c) == std::vector<std::uint64_t>{10});
}

TEST_CASE("expiry times are absolute: they hold across sessions and read_only opens", "[expiry]") {
  TempDir tmp("expiry-sessions");
  const auto dir = tmp / "db";
  ManualClock clock;
  {
    Database db(dir, clocked_options(clock));
    auto c = db.collection<std::uint64_t, std::string>("c");
    c.set_default_ttl(30s);
    for (std::uint64_t k = 0; k < 500; ++k) c.put(k, std::string(40, 'x'), k % 2 ? 100s : 200s);
    db.checkpoint();  // half in chunk files, half in the WAL
    for (std::uint64_t k = 500; k < 1000; ++k) c.put(k, std::string(40, 'y'), k % 2 ? 100s : 200s);
  }
  clock.advance(150s);  // the odd keys' time came while the store was closed
  {
    Database db(dir, clocked_options(clock));
    auto c = db.collection<std::uint64_t, std::string>("c");
    CHECK(c.default_ttl() == 30s);
    CHECK(c.size() == 500);
    for (std::uint64_t k = 0; k < 1000; k += 97) CHECK(c.contains(k) == (k % 2 == 0));
    c.put(2000, "default ttl");
  }
  Options ro = clocked_options(clock);
  ro.read_only = true;
  Database rodb(dir, ro);
  auto r = rodb.collection<std::uint64_t, std::string>("c");
  CHECK(r.size() == 501);
  clock.advance(31s);
  CHECK_FALSE(r.contains(2000));
  clock.advance(20s);
  CHECK(r.size() == 0);
  CHECK(r.empty());
}

TEST_CASE("compaction reclaims expired records", "[expiry]") {
  TempDir tmp("expiry-compact");
  ManualClock clock;
  Database db(tmp / "db", clocked_options(clock));
  auto c = db.collection<std::uint64_t, std::string>("c");
  auto other = db.collection<std::uint64_t, std::string>("other");
  c.set_default_ttl(0s);  // before its first put, which gives no ttl
  for (std::uint64_t k = 0; k < 3000; ++k) {
    if (k % 3 == 0)
      c.put(k, std::string(60, 'k'));
    else
      c.put(k, std::string(60, 'e'), 10s);
    other.put(k, "untouched");
  }
  db.compact();
  CHECK(stored_records(db) == 6000);  // nothing has expired yet
  clock.advance(11s);
  CHECK(c.size() == 1000);
  db.compact();
  CHECK(stored_records(db) == 1000 + 3000);  // the expired records are gone from the files
  CHECK(c.size() == 1000);
  CHECK(other.size() == 3000);
  for (std::uint64_t k = 0; k < 3000; k += 31) CHECK(c.contains(k) == (k % 3 == 0));
}

TEST_CASE("expiry begins on an empty collection of a Database, with sane ttls", "[expiry]") {
  TempDir tmp("expiry-refused");
  ManualClock clock;
  {
    Database db(tmp / "db", clocked_options(clock));
    auto full = db.collection<std::uint64_t, std::string>("full");
    full.put(1, "stored without a time");
    CHECK_THROWS_WITH(full.put(2, "x", 10s), Catch::Contains("holds records stored without an expiry time"));
    CHECK_THROWS_AS(full.set_default_ttl(10s), ValidationError);
    CHECK_FALSE(full.expires_records());
    CHECK(full.size() == 1);  // the refused put stored nothing
    full.erase(1);
    full.put(2, "x", 10s);  // empty again (its erase is a tombstone): allowed
    CHECK(full.expires_records());

    auto c = db.collection<std::uint64_t, std::string>("c");
    CHECK_THROWS_AS(c.put(1, "x", 0s), ValidationError);
    CHECK_THROWS_AS(c.put(1, "x", -5s), ValidationError);
    CHECK_THROWS_AS(c.set_default_ttl(-1s), ValidationError);
    CHECK_THROWS_AS(c.set_default_ttl(std::chrono::hours(24 * 365 * 3000)), ValidationError);
    CHECK_FALSE(c.expires_records());  // none of that began expiry
    CHECK_THROWS_AS(c.batch().put(1, "x", 0s), ValidationError);

    // Indexes and expiry do not mix yet, either way round.
    auto indexed = db.collection<std::uint64_t, std::string>("indexed");
    indexed.index("by_value", [](const std::string& v) { return v; });
    CHECK_THROWS_WITH(indexed.put(1, "x", 10s), Catch::Contains("has index 'by_value'"));
    c.set_default_ttl(5s);
    CHECK_THROWS_WITH(c.index("by_value", [](const std::string& v) { return v; }),
                      Catch::Contains("expires records"));
  }
  {  // A Storage's bare store keeps one collection: no expiry there.
    Storage<std::uint64_t, std::string> s(tmp / "bare");
    CHECK_THROWS_WITH(s.put(1, "x", 10s), Catch::Contains("Database"));
    CHECK_THROWS_AS(s.set_default_ttl(10s), ValidationError);
    s.put(1, "x");
    CHECK(*s.get(1) == "x");
  }
}

TEST_CASE("the change feed and ChangeReader hand values over without their times", "[expiry]") {
  TempDir tmp("expiry-feed");
  const auto dir = tmp / "db";
  ManualClock clock;
  Options o = clocked_options(clock);
  o.change_feed_bytes = 1 << 20;
  Database db(dir, o);
  auto c = db.collection<std::uint64_t, std::string>("c");
  c.put(1, "before expiry began");  // a value without a time, still in the feed
  c.erase(1);
  c.put(2, "with a time", 10s);
  c.set_default_ttl(0s);
  c.put(3, "never");
  db.flush();
  const auto t0 = clock.now();
  auto check = [&](const std::vector<Change<std::uint64_t, std::string>>& got) {
    REQUIRE(got.size() == 4);
    CHECK(*got[0].value == "before expiry began");
    CHECK(got[0].expires == std::chrono::system_clock::time_point{});
    CHECK(got[1].erased);
    CHECK(*got[2].value == "with a time");
    CHECK(got[2].expires == t0 + 10s);
    CHECK(*got[3].value == "never");
    CHECK(got[3].expires == std::chrono::system_clock::time_point{});
  };
  clock.advance(60s);  // the feed lists puts that have expired since
  std::vector<Change<std::uint64_t, std::string>> mine, theirs;
  c.changes_since(0, [&](const Change<std::uint64_t, std::string>& ch) { mine.push_back(ch); });
  check(mine);
  ChangeReader<std::uint64_t, std::string> reader(dir, "c");
  reader.changes_since(0, [&](const Change<std::uint64_t, std::string>& ch) { theirs.push_back(ch); });
  check(theirs);
}

namespace {

// The store's file system, calling a hook before the first listing of a
// directory (where a ChangeReader, having read the MANIFEST, looks for WAL
// segments).
class ListHook final : public stowage_test::ForwardingFileSystem {
 public:
  explicit ListHook(std::function<void()> hook) : hook_(std::move(hook)) {}
  std::vector<std::string> list(const std::filesystem::path& d) override {
    if (auto h = std::exchange(hook_, nullptr)) h();
    return base_->list(d);
  }

 private:
  std::function<void()> hook_;
};

}  // namespace

TEST_CASE("a ChangeReader reading while expiry begins hands the timed puts over without their times", "[expiry]") {
  TempDir tmp("expiry-feed-race");
  const auto dir = tmp / "db";
  ManualClock clock;
  Database db(dir, clocked_options(clock));
  auto c = db.collection<std::uint64_t, std::string>("c");
  c.put(1, "plain");
  c.erase(1);
  db.flush();
  // Between the reader's MANIFEST and its WAL reads, expiry begins and a
  // timed put lands in the WAL.
  auto fs = std::make_shared<ListHook>([&] {
    c.put(2, "timed", 10s);
    db.flush();
  });
  ChangeReader<std::uint64_t, std::string> reader(dir, "c", fs);
  std::vector<Change<std::uint64_t, std::string>> got;
  reader.changes_since(0, [&](const Change<std::uint64_t, std::string>& ch) { got.push_back(ch); });
  REQUIRE(got.size() == 3);
  CHECK(*got[0].value == "plain");
  CHECK(got[1].erased);
  CHECK(*got[2].value == "timed");
  CHECK(got[2].expires == clock.now() + 10s);
}

TEST_CASE("history keeps an expiring collection's values without their times", "[expiry][history]") {
  TempDir tmp("expiry-history");
  ManualClock clock;
  Database db(tmp / "db", clocked_options(clock));
  auto c = db.collection<std::uint64_t, std::string>("c");
  c.put(1, "first", 100s);
  c.keep_history({.versions = 5});  // its baseline holds "first"
  c.put(1, "second", 100s);
  const auto seq = db.stats().last_sequence;
  c.put(1, "third");
  const auto h = c.history(1);
  REQUIRE(h.size() == 3);
  CHECK(*h[0].value == "third");
  CHECK(*h[1].value == "second");
  CHECK(*h[2].value == "first");
  CHECK(*c.get_at(1, seq) == "second");
}

TEST_CASE("a migrated collection keeps its records' expiry times", "[expiry][migration]") {
  TempDir tmp("expiry-migrate");
  const auto dir = tmp / "db";
  ManualClock clock;
  {
    Database db(dir, clocked_options(clock));
    auto c = db.collection<std::uint64_t, MigV1>("items");
    c.set_default_ttl(50s);
    for (std::uint64_t k = 0; k < 600; ++k) c.put(k, MigV1{text("item", k)}, k < 200 ? 10s : 100s);
    c.put(1000, MigV1{"default"});
  }
  clock.advance(20s);  // the first 200 have expired: the migration drops them
  Migrator m;
  m.add<MigV1, MigV2>([](const MigV1& v) { return MigV2{v.text, static_cast<std::uint32_t>(v.text.size())}; });
  Database db(dir, clocked_options(clock));
  auto c = db.collection<std::uint64_t, MigV2>("items", m);
  REQUIRE(db.last_migration());
  CHECK(db.last_migration()->records == 401);
  CHECK(db.last_migration()->dropped == 200);
  CHECK(c.expires_records());
  CHECK(c.default_ttl() == 50s);
  CHECK(c.size() == 401);
  CHECK(c.get(300)->length == 7);
  clock.advance(31s);  // "default" (50 s) has expired; the rest live to 100 s
  CHECK_FALSE(c.contains(1000));
  CHECK(c.size() == 400);
  clock.advance(50s);
  CHECK(c.size() == 0);
}

TEST_CASE("concurrent writers and readers of an expiring collection", "[expiry][threads]") {
  TempDir tmp("expiry-threads");
  ManualClock clock;  // not moved while the threads run
  Options o = clocked_options(clock);
  o.durability = Durability::sync;
  Database db(tmp / "db", o);
  auto c = db.collection<std::uint64_t, std::string>("c");
  c.set_default_ttl(1h);
  std::atomic<bool> bad{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < 300; ++i) {
        const std::uint64_t k = static_cast<std::uint64_t>(t) * 1000 + i;
        if (i % 2)
          c.put(k, text("v", k), 10s);
        else
          c.put(k, text("v", k));
        const auto got = c.get(k);
        if (!got || *got != text("v", k)) bad = true;
      }
    });
  for (auto& th : threads) th.join();
  CHECK_FALSE(bad);
  CHECK(c.size() == 1200);
  clock.advance(11s);
  CHECK(c.size() == 600);
}

TEST_CASE("hostile expiry bytes are a CorruptionError", "[expiry][corruption]") {
  CHECK_THROWS_AS(detail::split_expiry("", nullptr), CorruptionError);
  CHECK_THROWS_AS(detail::split_expiry(std::string(11, '\xff'), nullptr), CorruptionError);
  std::string far;
  detail::put_varint(far, detail::kMaxExpiryMicros + 1);
  CHECK_THROWS_AS(detail::split_expiry(far, nullptr), CorruptionError);
  const std::string stored = detail::with_expiry(12345, "value");  // split_expiry views it
  const auto ok = detail::split_expiry(stored, nullptr);
  CHECK(ok.expires == 12345);
  CHECK(ok.value == "value");
  CHECK(detail::expiry_time(100, 0) == 0);
  CHECK(detail::expiry_time(detail::kMaxExpiryMicros - 5, 100) == detail::kMaxExpiryMicros);

  // A MANIFEST whose expiry entry has fields of a collection, or a ttl out
  // of range, does not decode.
  detail::Manifest m;
  m.layout = detail::Layout::prefixed;
  m.next_collection_id = 3;
  detail::CollectionState t;
  t.name = "c";
  t.id = 1;
  m.collections.push_back(t);
  detail::CollectionState e;
  e.name = std::string(detail::kExpiryName);
  e.id = 2;
  e.kind = detail::CollectionKind::expiry;
  e.parent = 1;
  e.expiry_ttl = 5000000;
  m.collections.push_back(e);
  const std::string good = detail::encode_manifest(m);
  CHECK(detail::decode_manifest(good, "MANIFEST").expiry(1)->expiry_ttl == 5000000);
  m.collections.back().serializer = "binary";
  CHECK_THROWS_AS(detail::decode_manifest(detail::encode_manifest(m), "MANIFEST"), CorruptionError);
  m.collections.back().serializer.clear();
  m.collections.back().expiry_ttl = detail::kMaxExpiryMicros + 1;
  CHECK_THROWS_AS(detail::decode_manifest(detail::encode_manifest(m), "MANIFEST"), CorruptionError);
  // Every cut of the good MANIFEST fails cleanly too.
  for (std::size_t n = 0; n < good.size(); ++n)
    CHECK_THROWS_AS(detail::decode_manifest(good.substr(0, n), "MANIFEST"), CorruptionError);
}

TEST_CASE("a power cut never leaves an expiring collection unreadable", "[expiry][power]") {
  int cut = 0;
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    TempDir tmp("expiry-power");
    const auto dir = tmp / "db";
    ManualClock clock;
    std::mt19937_64 rng(seed * 7919);
    auto write = [&](Database<>& db) {
      auto c = db.collection<std::uint64_t, std::string>("c");
      c.set_default_ttl(0s);
      for (int i = 0; i < 400; ++i) {
        const std::uint64_t k = rng() % 40;
        // "t...": a put with a ttl; "n...": one without (never expires).
        if (rng() % 2)
          c.put(k, text("t", static_cast<std::uint64_t>(i), rng() % 100), std::chrono::seconds(1 + rng() % 50));
        else
          c.put(k, text("n", static_cast<std::uint64_t>(i), rng() % 100));
        if (rng() % 9 == 0) c.erase(rng() % 40);
        if (i % 97 == 0) db.checkpoint();
        if (i % 50 == 0) clock.advance(1s);
      }
    };
    if (stowage_test::power_cut_during(dir, clocked_options(clock), seed, 20 + rng() % 500, write)) ++cut;
    INFO("seed " << seed);
    Database db(dir, clocked_options(clock));
    auto c = db.collection<std::uint64_t, std::string>("c");
    for (const auto& [k, v] : c.scan()) CHECK((v[0] == 't' || v[0] == 'n'));
    clock.advance(60s);  // every ttl has run out: what is left never expires
    for (const auto& [k, v] : c.scan()) CHECK(v[0] == 'n');
    db.compact();
    for (const auto& [k, v] : c.scan()) CHECK(v[0] == 'n');
    c.put(1, "t-after", 5s);  // and it goes on
    CHECK(*c.get(1) == "t-after");
  }
  CHECK(cut > 6);
}
