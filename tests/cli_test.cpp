// Tests of the `stowage` command-line tool (tools/stowage/), running the
// built binary (STOWAGE_CLI) on stores this test writes with Storage: every
// subcommand on a sound store, on a store of several levels holding
// tombstones (every reading subcommand prints exactly the live records;
// compact leaves one level), on a store with a second keyspace, on a
// corrupted copy (verify names the flipped byte's file and block, repair
// saves every other record) and against a store another process holds
// (read-only subcommands work, writing ones exit 3 naming LOCK); exit
// statuses; no progress bar when stderr is not a terminal. A Database's
// store (the prefixed layout, three collections of different types): stats
// lists the collections, dump and load read and write one collection (its
// prefix stripped and added), a missing collection is an error naming the
// ones there are, verify passes (and finds a WAL key of no collection),
// repair keeps the layout and the collection table, compact keeps every
// record; secondary indexes are listed, and load marks its collection's
// indexes for a rebuild. dump with --to merges the WAL's records below it.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <sstream>

#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <stowage/stowage.hpp>

#include "level_util.hpp"
#include "offline.hpp"
#include "test_util.hpp"

using namespace stowage;
using nlohmann::json;
using stowage_test::TempDir;

namespace {

struct Reading {
  static constexpr unsigned version = 2;
  std::string sensor;
  double celsius = 0;
  std::vector<std::int32_t> tags;
  template <class A>
  void serialize(A& ar, unsigned) {
    ar & sensor & celsius & tags;
  }
  bool operator==(const Reading&) const = default;
};

using Db = Storage<std::uint64_t, Reading>;
const Options kSmall{.chunk_bytes = 16 << 10, .block_bytes = 1024};

Reading reading(std::uint64_t i) {
  return {"sensor-" + std::to_string(i % 17), static_cast<double>(i) / 4, {static_cast<std::int32_t>(i), -1}};
}

// n records compacted into the last level (several chunk files), then `tail`
// more in the WAL (and key 0 erased there).
void fill(const std::filesystem::path& dir, std::uint64_t n, std::uint64_t tail) {
  Options o = kSmall;
  o.checkpoint_on_close = false;
  Db db(dir, o);
  for (std::uint64_t i = 0; i < n; ++i) db.put(i, reading(i));
  db.compact();
  for (std::uint64_t i = 0; i < tail; ++i) db.put(n + i, reading(n + i));
  if (tail > 0) db.erase(0);
  db.flush();
}

using stowage_test::kLevels;
using stowage_test::split_last_level;

// A store of three levels holding tombstones: puts, overwrites and erases
// with background compaction and checkpoints, then a session without
// compaction whose erases and overwrites stay in level 0 above the older
// levels, a few more in the WAL, and half the last level moved to level 5.
// Returns the live records.
std::map<std::uint64_t, Reading> fill_levels(const std::filesystem::path& dir) {
  std::map<std::uint64_t, Reading> model;
  {
    Db db(dir, kLevels);
    for (std::uint64_t i = 0; i < 4000; ++i) {
      const std::uint64_t k = i * 7 % 2500;
      db.put(k, reading(i));
      model[k] = reading(i);
      if (i % 5 == 0) {
        db.erase(i * 13 % 2500);
        model.erase(i * 13 % 2500);
      }
      if (i % 900 == 0) db.checkpoint();
    }
  }
  {
    Options o = kLevels;
    o.auto_compaction = false;
    o.checkpoint_on_close = false;
    Db db(dir, o);
    for (std::uint64_t k = 0; k < 2500; k += 9) {
      if (k % 2 == 0) {
        db.erase(k);
        model.erase(k);
      } else {
        db.put(k, reading(k + 100000));
        model[k] = reading(k + 100000);
      }
    }
    db.checkpoint();
    for (std::uint64_t k = 1; k < 2500; k += 250) {  // the WAL: an erase and puts over every level
      db.put(k, reading(k + 200000));
      model[k] = reading(k + 200000);
    }
    db.erase(2);
    model.erase(2);
    db.flush();
    REQUIRE(db.size() == model.size());
  }
  split_last_level(dir);
  return model;
}

// A record as dump prints it.
json line_of(std::uint64_t key, const Reading& r) {
  return json{{"key", key}, {"value", json::array({r.sensor, r.celsius, r.tags})}};
}

// Every record with a key below 10,000 (all the tests write), by get():
// scan() here trips a false -Wmaybe-uninitialized of g++ 12 -O2 inside
// libstdc++'s std::optional<std::string>.
std::map<std::uint64_t, Reading> contents(const std::filesystem::path& dir) {
  std::map<std::uint64_t, Reading> out;
  Db db(dir, Options{.read_only = true});
  for (std::uint64_t k = 0; k < 10000; ++k)
    if (auto v = db.get(k)) out.emplace(k, std::move(*v));
  CHECK(out.size() == db.size());
  return out;
}

struct Run {
  int status = -1;
  std::string out, err;
};

// Runs the tool with `args` (already shell-quoted where needed), stdin from `input`.
Run run(const std::string& args, const std::string& input = "") {
  TempDir io("cli-io");
  stowage_test::write_all(io / "in", input);
  const std::string cmd = std::string(STOWAGE_CLI) + " " + args + " <" + (io / "in").string() + " >" +
                          (io / "out").string() + " 2>" + (io / "err").string();
  const int rc = std::system(cmd.c_str());
  Run r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = stowage_test::read_all(io / "out");
  r.err = stowage_test::read_all(io / "err");
  return r;
}

std::vector<json> lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(json::parse(l));
  return out;
}

// A byte inside the stored bytes of the second data block of the store's second chunk.
std::filesystem::path damage_a_block(const std::filesystem::path& dir) {
  const auto chunks = inspect(dir).keyspaces[0].chunks;
  REQUIRE(chunks.size() >= 3);
  stowage_test::flip_byte(chunks[1].file, 16 + 1100);
  return chunks[1].file;
}

// ---- a Database's store: several collections --------------------------------------

// The records of a Database's three collections: the default one (the same
// types as Db), 'a' (u64 -> string, the same keys as the default one's) and
// 'b' (string -> int).
struct Collections {
  std::map<std::uint64_t, Reading> def;
  std::map<std::uint64_t, std::string> a;
  std::map<std::string, int> b;
  bool operator==(const Collections&) const = default;
};

std::string b_key(std::uint64_t i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%05u", static_cast<unsigned>(i));
  return buf;
}

// A Database's store: most records compacted into several chunk files, then
// puts and erases of every collection left in the WAL.
Collections fill_collections(const std::filesystem::path& dir) {
  Collections m;
  Options o = kSmall;
  o.checkpoint_on_close = false;
  Database<> db(dir, o);
  auto d = db.collection<std::uint64_t, Reading>("default");
  auto a = db.collection<std::uint64_t, std::string>("a");
  auto b = db.collection<std::string, int>("b");
  for (std::uint64_t i = 0; i < 3000; ++i) {
    a.put(i, "a-" + std::to_string(i));
    m.a[i] = "a-" + std::to_string(i);
  }
  for (std::uint64_t i = 0; i < 800; ++i) {
    b.put(b_key(i), static_cast<int>(i) * 3 - 100);
    m.b[b_key(i)] = static_cast<int>(i) * 3 - 100;
  }
  for (std::uint64_t i = 0; i < 200; ++i) {
    d.put(i * 2, reading(i));
    m.def[i * 2] = reading(i);
  }
  db.compact();
  for (std::uint64_t i = 3000; i < 3010; ++i) {  // the WAL
    a.put(i, "wal-" + std::to_string(i));
    m.a[i] = "wal-" + std::to_string(i);
  }
  a.erase(0);
  m.a.erase(0);
  db.batch().put(b, std::string("zz"), 7).erase(b, b_key(0)).put(d, std::uint64_t{1001}, reading(1001)).commit();
  m.b["zz"] = 7;
  m.b.erase(b_key(0));
  m.def[1001] = reading(1001);
  db.flush();
  return m;
}

// Every record of the three collections (keys below 10,000 / b_key(1000),
// and "zz"), by get(); each collection's size() must match.
Collections collection_contents(const std::filesystem::path& dir) {
  Collections out;
  Database<> db(dir, Options{.read_only = true});
  auto d = db.collection<std::uint64_t, Reading>("default");
  auto a = db.collection<std::uint64_t, std::string>("a");
  auto b = db.collection<std::string, int>("b");
  for (std::uint64_t k = 0; k < 10000; ++k) {
    if (auto v = d.get(k)) out.def.emplace(k, std::move(*v));
    if (auto v = a.get(k)) out.a.emplace(k, std::move(*v));
  }
  for (std::uint64_t i = 0; i < 1000; ++i)
    if (auto v = b.get(b_key(i))) out.b.emplace(b_key(i), *v);
  for (const std::string k : {"zz", "new"})
    if (auto v = b.get(k)) out.b.emplace(k, *v);
  CHECK(out.def.size() == d.size());
  CHECK(out.a.size() == a.size());
  CHECK(out.b.size() == b.size());
  return out;
}

std::vector<json> dump_lines(const Collections& m, const std::string& name) {
  std::vector<json> out;
  if (name == "default")
    for (const auto& [k, v] : m.def) out.push_back(line_of(k, v));
  if (name == "a")
    for (const auto& [k, v] : m.a) out.push_back(json{{"key", k}, {"value", v}});
  if (name == "b")
    for (const auto& [k, v] : m.b) out.push_back(json{{"key", k}, {"value", v}});
  return out;
}

}  // namespace

TEST_CASE("stowage stats and migrate --status: text and --json") {
  TempDir dir("cli");
  fill(dir.path(), 3000, 20);
  Run r = run("stats " + dir.path().string());
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("key order u64") && Catch::Contains("obj@2{str,f64,vec<i32>}") &&
                        Catch::Contains("records      3000 live in ") && Catch::Contains(" chunk files (1 level), ") &&
                        Catch::Contains("levels       L6 ") && Catch::Contains("21 operations in 1 segments") &&
                        Catch::Contains("live         3019 (3000 in chunks; the WAL puts 20 keys and "
                                        "erases 1, each looked up in the chunks: +19)") &&
                        Catch::Contains("lz4 (id 1), ratio"));
  CHECK(r.err.empty());
  r = run("stats --json " + dir.path().string());
  REQUIRE(r.status == 0);
  const json s = json::parse(r.out);
  CHECK(s["live_records"] == 3000);
  CHECK(s["chunk_records"] == 3000);
  CHECK(s["wal_operations"] == 21);
  CHECK(s["wal_keys_put"] == 20);
  CHECK(s["wal_keys_erased"] == 1);
  CHECK(s["live_records_with_wal"] == 3019);
  CHECK(s["last_sequence"] == 3021);
  CHECK(s["keyspaces"][0]["key_order"] == "u64");
  CHECK(s["keyspaces"][0]["live_records"] == 3000);
  CHECK(s["keyspaces"][0]["level_count"] == 1);
  REQUIRE(s["keyspaces"][0]["levels"].size() == 1);
  CHECK(s["keyspaces"][0]["levels"][0]["level"] == 6);
  CHECK(s["keyspaces"][0]["levels"][0]["files"] == s["keyspaces"][0]["chunk_files"]);
  CHECK(s["serializer"] == "binary-1");
  CHECK(s["compression_ratio"].get<double>() > 1.0);
  CHECK(s["disk_bytes"] == s["manifest_bytes"].get<std::uint64_t>() + s["chunk_bytes"].get<std::uint64_t>() +
                               s["wal_bytes"].get<std::uint64_t>());

  r = run("migrate --status " + dir.path().string());
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("format       5.0") && Catch::Contains("schema       version 2") &&
                        Catch::Contains("pending      none"));
  r = run("migrate --status --json " + dir.path().string());
  REQUIRE(r.status == 0);
  const json m = json::parse(r.out);
  CHECK(m["schema_version"] == 2);
  CHECK(m["up_to_date"] == true);
  CHECK(m["pending"].empty());
  // migrate without --status runs nothing: a usage error.
  CHECK(run("migrate " + dir.path().string()).status == 2);
}

TEST_CASE("stowage verify: 0 on a sound store, 1 naming the file and offset of a flipped byte") {
  TempDir dir("cli");
  fill(dir.path(), 3000, 5);
  Run r = run("verify " + dir.path().string());
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::EndsWith("ok\n") && Catch::Contains("3000 records (0 tombstones; 3000 live, as the MANIFEST counts)") &&
                        Catch::Contains(" chunk files in 1 level,") && Catch::Contains("6 operations"));
  CHECK(r.err.empty());  // no progress bar: stderr is not a terminal
  r = run("verify --json " + dir.path().string());
  CHECK(r.status == 0);
  CHECK(json::parse(r.out)["ok"] == true);

  const auto victim = damage_a_block(dir.path());
  r = run("verify " + dir.path().string());
  CHECK(r.status == 1);
  CHECK_THAT(r.out, Catch::Contains("problem: " + victim.string() + " at offset") && Catch::Contains("checksum") &&
                        Catch::Contains("1 problem(s)"));
  r = run("verify --json " + dir.path().string());
  CHECK(r.status == 1);
  const json v = json::parse(r.out);
  CHECK(v["ok"] == false);
  REQUIRE(v["problems"].size() == 1);
  CHECK(v["problems"][0]["file"] == victim.string());
  CHECK(v["problems"][0]["offset"].get<std::uint64_t>() <= 16 + 1100);
}

TEST_CASE("stowage dump: JSON lines of decoded keys and values, with --from, --to and --limit") {
  TempDir dir("cli");
  fill(dir.path(), 1000, 10);
  Run r = run("dump " + dir.path().string());
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  const auto all = lines(r.out);
  REQUIRE(all.size() == 1009);  // key 0 erased in the WAL, 1000..1009 from the WAL
  CHECK(all[0] == json{{"key", 1}, {"value", json::array({"sensor-1", 0.25, json::array({1, -1})})}});
  CHECK(all.back()["key"] == 1009);
  for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1]["key"].get<std::uint64_t>() < all[i]["key"].get<std::uint64_t>());

  r = run("dump --from 500 --to 503 " + dir.path().string());
  REQUIRE(r.status == 0);
  const auto some = lines(r.out);
  REQUIRE(some.size() == 3);
  CHECK(some[0]["key"] == 500);
  CHECK(some[2]["key"] == 502);
  r = run("dump --from 995 --limit 7 --json " + dir.path().string());
  const auto tail = lines(r.out);
  REQUIRE(tail.size() == 7);
  CHECK(tail[5]["key"] == 1000);  // the WAL's records merge in order
  CHECK(run("dump --from not-a-number " + dir.path().string()).status == 5);
}

TEST_CASE("stowage load: dump's output back into a store, which then opens with every record") {
  TempDir src("cli"), dst("cli");
  fill(src.path(), 800, 30);
  { Db create(dst.path()); create.put(5000, reading(5000)); }
  const Run d = run("dump " + src.path().string());
  REQUIRE(d.status == 0);
  const Run l = run("load " + dst.path().string(), d.out + "{\"key\": 5000, \"erase\": true}\n");
  REQUIRE(l.status == 0);
  CHECK_THAT(l.out, Catch::Contains("loaded 830 records"));
  CHECK(contents(dst.path()) == contents(src.path()));
  CHECK(run("verify " + dst.path().string()).status == 0);
  // A bad line loads nothing and names the line.
  const Run bad = run("load " + dst.path().string(), "{\"key\": 1, \"value\": [\"a\", 1.0, []]}\n{\"key\": \"x\"}\n");
  CHECK(bad.status == 5);
  CHECK_THAT(bad.err, Catch::Contains("line 2") && Catch::Contains("nothing was loaded"));
  CHECK(contents(dst.path()) == contents(src.path()));
}

TEST_CASE("stowage compact and backup keep every record; the backup is a store of its own without LOCK") {
  TempDir dir("cli"), out("cli");
  fill(dir.path(), 2000, 50);
  {  // many small chunks after overwrites
    Options o = kSmall;
    Db db(dir.path(), o);
    for (std::uint64_t i = 0; i < 2000; i += 3) db.put(i, reading(i + 1));
  }
  const auto before = contents(dir.path());
  Run r = run("compact " + dir.path().string());
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("compacted 2050 records") && Catch::Contains(" -> ") &&
                        Catch::Contains(" files in 1 level, "));
  CHECK(contents(dir.path()) == before);
  const auto info = inspect(dir.path());
  CHECK(info.keyspaces[0].level_count() == 1);
  CHECK(info.keyspaces[0].levels[detail::kLastLevel].files == info.keyspaces[0].chunks.size());
  const json st = json::parse(run("stats --json " + dir.path().string()).out);
  CHECK(st["wal_operations"] == 0);  // the WAL is folded in
  CHECK(st["live_records"] == 2050);
  CHECK(run("verify " + dir.path().string()).status == 0);

  r = run("backup " + dir.path().string() + " " + (out / "copy").string());
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("backed up to"));
  CHECK(!std::filesystem::exists(out / "copy" / "LOCK"));
  CHECK(contents(out / "copy") == before);
  CHECK(run("backup " + dir.path().string() + " " + (out / "copy").string()).status == 5);  // exists
}

TEST_CASE("stowage repair: a corrupted copy gives up the damaged block's records and saves the rest") {
  TempDir dir("cli"), out("cli");
  fill(dir.path(), 3000, 10);
  const auto before = contents(dir.path());
  const auto victim = damage_a_block(dir.path());
  Run r = run("repair " + dir.path().string() + " " + (out / "fixed").string());
  REQUIRE(r.status == 1);
  CHECK_THAT(r.out, Catch::Contains("lost: " + victim.string() + ", block ") &&
                        Catch::Contains("keys after ") && Catch::Contains(" and before ") &&
                        Catch::Contains(" records)") && Catch::Contains("1 damaged range(s) lost"));
  CHECK(run("verify " + (out / "fixed").string()).status == 0);
  const auto saved = contents(out / "fixed");
  CHECK(saved.size() < before.size());
  CHECK(saved.size() + 100 > before.size());
  for (const auto& [k, v] : saved) CHECK(before.at(k) == v);
  // Every lost key lies in the reported range.
  const json rep = json::parse("[" + r.out.substr(r.out.find("keys after ") + 11, r.out.find(" and before ") - r.out.find("keys after ") - 11) + "]");
  for (const auto& [k, v] : before)
    if (!saved.count(k)) CHECK(k > rep[0].get<std::uint64_t>());
  // The damaged store itself is untouched (repair only reads it).
  CHECK(run("verify " + dir.path().string()).status == 1);
  CHECK(run("repair " + dir.path().string() + " " + (out / "fixed").string()).status == 5);  // not empty
}

TEST_CASE("damage names the way out that works: repair for a chunk, a backup for the MANIFEST") {
  TempDir dir("cli"), out("cli");
  fill(dir.path(), 3000, 10);
  {
    // A damaged chunk: compact fails, and its advice (repair) works.
    TempDir copy("cli");
    std::filesystem::copy(dir.path(), copy.path(), std::filesystem::copy_options::recursive);
    damage_a_block(copy.path());
    Run r = run("compact " + copy.path().string());
    CHECK(r.status == 4);
    CHECK_THAT(r.err, Catch::Contains("stowage repair " + copy.path().string() + " NEW_DIR") &&
                          !Catch::Contains("remove the damaged file"));
    CHECK(run("repair " + copy.path().string() + " " + (out / "fixed").string()).status == 1);  // saved, some lost
    CHECK(run("verify " + (out / "fixed").string()).status == 0);
  }
  // A damaged MANIFEST: no open or repair can read the store, and no message
  // sends the user to them.
  stowage_test::flip_byte(dir / "MANIFEST", 20);
  for (const std::string& cmd : {"compact " + dir.path().string(), "repair " + dir.path().string() + " " +
                                                                      (out / "again").string()}) {
    Run r = run(cmd);
    INFO(cmd);
    CHECK(r.status == 4);
    CHECK_THAT(r.err, Catch::Contains("MANIFEST") && Catch::Contains("restore the store from a backup") &&
                          !Catch::Contains("NEW_DIR") && !Catch::Contains("remove the damaged file"));
  }
}

TEST_CASE("a store of several levels with erased keys: dump, stats, verify, compact and repair see exactly the live records") {
  TempDir dir("cli"), out("cli");
  const auto model = fill_levels(dir.path());
  const auto info = inspect(dir.path());
  INFO(info.keyspaces[0].chunks.size() << " chunk files");
  REQUIRE(info.keyspaces[0].level_count() == 3);
  REQUIRE(info.keyspaces[0].levels[0].files > 0);
  REQUIRE(static_cast<std::int64_t>(info.keyspaces[0].records) > info.keyspaces[0].live);  // overwritten records and tombstones below

  // dump: every live record once, in key order, with its newest value.
  std::vector<json> want;
  for (const auto& [k, v] : model) want.push_back(line_of(k, v));
  Run r = run("dump " + dir.path().string());
  REQUIRE(r.status == 0);
  CHECK(lines(r.out) == want);
  // A range, and a single key (a point read) for live and erased keys.
  r = run("dump --from 300 --to 700 " + dir.path().string());
  REQUIRE(r.status == 0);
  std::vector<json> range;
  for (auto it = model.lower_bound(300); it != model.end() && it->first < 700; ++it) range.push_back(line_of(it->first, it->second));
  CHECK(lines(r.out) == range);
  std::size_t erased = 0, live = 0;
  for (std::uint64_t k = 0; k < 2500; k += 37) {
    r = run("dump --from " + std::to_string(k) + " --limit 1 " + dir.path().string());
    REQUIRE(r.status == 0);
    const auto got = lines(r.out);
    const auto it = model.lower_bound(k);
    if (it == model.end()) {
      CHECK(got.empty());
      continue;
    }
    REQUIRE(got.size() == 1);
    CHECK(got[0] == line_of(it->first, it->second));  // an erased key is skipped
    (it->first == k ? live : erased)++;
  }
  CHECK(live > 0);
  CHECK(erased > 0);

  // stats: the levels, and the exact live count the MANIFEST keeps.
  const json st = json::parse(run("stats --json " + dir.path().string()).out);
  const auto chunk_live = st["live_records"].get<std::uint64_t>();  // the WAL not included
  r = run("stats " + dir.path().string());
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("levels       L0 ") && Catch::Contains(" | L5 ") && Catch::Contains(" | L6 ") &&
                        Catch::Contains("records      " + std::to_string(chunk_live) + " live in "));
  CHECK(st["keyspaces"][0]["level_count"] == info.keyspaces[0].level_count());
  CHECK(st["keyspaces"][0]["levels"][0]["level"] == 0);
  CHECK(st["uncounted_records"] == info.uncounted);
  CHECK(st["live_records_with_wal"].get<std::uint64_t>() == model.size());

  // verify: tombstones read, and the live count checked by merging the runs.
  r = run("verify " + dir.path().string());
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains(std::to_string(chunk_live) + " live, as the MANIFEST counts"));
  const json v = json::parse(run("verify --json " + dir.path().string()).out);
  CHECK(v["ok"] == true);
  CHECK(v["live_checked"] == true);
  CHECK(v["chunk_tombstones"].get<std::uint64_t>() > 0);
  CHECK(v["live_records"] == chunk_live);  // merged from the runs, against the MANIFEST's count and the uncounted records

  // repair of the sound store: the same records, one run at the last level.
  r = run("repair " + dir.path().string() + " " + (out / "copy").string());
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains(std::to_string(model.size()) + " records saved") && Catch::Contains("0 damaged range"));
  const auto copy = inspect(out / "copy");
  CHECK(copy.format_major == detail::kFormatMajor);
  CHECK(copy.keyspaces[0].live == static_cast<std::int64_t>(model.size()));
  CHECK(copy.keyspaces[0].level_count() == 1);
  CHECK(copy.keyspaces[0].levels[detail::kLastLevel].files == copy.keyspaces[0].chunks.size());
  CHECK(run("verify " + (out / "copy").string()).status == 0);
  CHECK(lines(run("dump " + (out / "copy").string()).out) == want);
  CHECK(contents(out / "copy") == model);

  // compact: the engine merges every level into the last; nothing else changes.
  r = run("compact " + dir.path().string());
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("compacted " + std::to_string(model.size()) + " records") &&
                        Catch::Contains(" files in " + std::to_string(info.keyspaces[0].level_count()) + " levels, ") &&
                        Catch::Contains(" files in 1 level, "));
  const auto after = inspect(dir.path());
  CHECK(after.keyspaces[0].level_count() == 1);
  CHECK(after.keyspaces[0].live == static_cast<std::int64_t>(model.size()));
  CHECK(after.keyspaces[0].records == model.size());  // no tombstone or overwritten record is left
  CHECK(lines(run("dump " + dir.path().string()).out) == want);
  const json v2 = json::parse(run("verify --json " + dir.path().string()).out);
  CHECK(v2["ok"] == true);
  CHECK(v2["chunk_tombstones"] == 0);
  CHECK(v2["live_records"] == model.size());
  CHECK(contents(dir.path()) == model);
}

TEST_CASE("stowage repair on a store of several levels with a damaged level-0 file") {
  TempDir dir("cli"), out("cli");
  const auto model = fill_levels(dir.path());
  const auto chunks = inspect(dir.path()).keyspaces[0].chunks;
  // The level-0 file with the most data blocks; a byte of its second block.
  std::filesystem::path victim;
  std::size_t most = 0;
  for (const auto& c : chunks) {
    if (c.level != 0) continue;
    const auto t = detail::ChunkTable<Lz4Compression>::open(*default_file_system(), c.file);
    if (t->block_count() > most) most = t->block_count(), victim = c.file;
  }
  REQUIRE(most >= 2);
  stowage_test::flip_byte(victim, 16 + 600);
  CHECK(run("verify " + dir.path().string()).status == 1);
  CHECK(run("dump " + dir.path().string()).status == 4);  // damage stops a strict read
  Run r = run("repair " + dir.path().string() + " " + (out / "fixed").string());
  REQUIRE(r.status == 1);
  CHECK_THAT(r.out, Catch::Contains("lost: " + victim.string() + ", block ") && Catch::Contains("1 damaged range(s) lost"));
  CHECK(run("verify " + (out / "fixed").string()).status == 0);
  const auto saved = contents(out / "fixed");
  // Every key outside the damaged block's range keeps its newest value; keys
  // inside it may show an older record of a deeper level, or none.
  CHECK(saved.size() + 400 > model.size());
  std::size_t same = 0;
  for (const auto& [k, v] : model) same += saved.count(k) && saved.at(k) == v;
  CHECK(same + 200 > model.size());
  CHECK(inspect(out / "fixed").keyspaces[0].live == static_cast<std::int64_t>(saved.size()));
}

TEST_CASE("a store with a second keyspace: dump and repair read it, compact keeps it, load refuses it") {
  TempDir dir("cli"), out("cli");
  fill(dir.path(), 1500, 10);
  // A second keyspace (as collections will make), holding a copy of the first chunk.
  auto fs = default_file_system();
  auto m = detail::read_manifest(*fs, dir.path());
  REQUIRE(m.keyspaces.size() == 1);
  detail::KeyspaceState other = m.keyspaces[0];
  other.name = "other";
  other.chunks.resize(1);
  const std::uint64_t file = m.next_file + 5;
  std::filesystem::copy_file(dir / detail::chunk_file_name(m.keyspaces[0].chunks[0].file), dir / detail::chunk_file_name(file));
  other.chunks[0].file = file;
  other.live = other.chunks[0].records;
  m.keyspaces.push_back(other);
  m.next_file = file + 1;
  detail::write_manifest(*fs, dir.path(), m);
  const std::uint64_t other_records = other.live;

  Run r = run("dump --keyspace other " + dir.path().string());
  REQUIRE(r.status == 0);
  const auto got = lines(r.out);
  REQUIRE(got.size() == other_records);
  CHECK(got.front() == line_of(0, reading(0)));  // the WAL's erase of key 0 is 'default''s, not 'other''s
  r = run("dump --keyspace nothing " + dir.path().string());
  CHECK(r.status == 5);
  CHECK_THAT(r.err, Catch::Contains("no keyspace 'nothing'") && Catch::Contains("'default', 'other'"));
  r = run("stats " + dir.path().string());
  CHECK_THAT(r.out, Catch::Contains("keyspace     other: key order u64") &&
                        Catch::Contains("records      " + std::to_string(other_records) + " live in 1 chunk file (1 level)"));
  CHECK(run("verify " + dir.path().string()).status == 0);

  // load writes 'default' (the WAL holds no other keyspace), refusing any other.
  r = run("load --keyspace other " + dir.path().string(), "{\"key\": 1, \"value\": [\"a\", 1.0, []]}\n");
  CHECK(r.status == 5);
  CHECK_THAT(r.err, Catch::Contains("keyspace 'default' only") && Catch::Contains("nothing was loaded"));
  r = run("load " + dir.path().string(), "{\"key\": 9000, \"value\": [\"a\", 1.0, []]}\n");
  CHECK(r.status == 0);
  CHECK(contents(dir.path()).count(9000) == 1);

  // repair copies both keyspaces.
  r = run("repair " + dir.path().string() + " " + (out / "fixed").string());
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("(2 keyspaces)"));
  const auto fixed = inspect(out / "fixed");
  REQUIRE(fixed.keyspaces.size() == 2);
  CHECK(fixed.keyspaces[1].name == "other");
  CHECK(fixed.keyspaces[1].live == static_cast<std::int64_t>(other_records));
  CHECK(run("verify " + (out / "fixed").string()).status == 0);
  CHECK(run("dump --keyspace other " + (out / "fixed").string()).out == run("dump --keyspace other " + dir.path().string()).out);
  CHECK(contents(out / "fixed") == contents(dir.path()));

  // compact compacts 'default' and says it leaves 'other' as it is.
  const auto before = contents(dir.path());
  r = run("compact " + dir.path().string());
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("keyspace 'other' left as it is"));
  CHECK(std::filesystem::exists(dir / detail::chunk_file_name(file)));
  CHECK(inspect(dir.path()).keyspace("other")->chunks.size() == 1);
  CHECK(contents(dir.path()) == before);
  CHECK(run("dump --keyspace other " + dir.path().string()).out == run("dump --keyspace other " + (out / "fixed").string()).out);
  CHECK(run("verify " + dir.path().string()).status == 0);
}

TEST_CASE("a store another process holds: read-only subcommands work, writing ones exit 3 naming LOCK") {
  TempDir dir("cli"), out("cli");
  fill(dir.path(), 1000, 5);
  int ready[2], release[2];
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(release) == 0);
  pid_t child = fork();
  if (child == 0) {
    int rc = 0;
    try {
      Db db(dir.path(), kSmall);
      db.put(7777, reading(7777));
      db.flush();
      char c = 'r';
      if (write(ready[1], &c, 1) != 1) rc = 3;
      if (read(release[0], &c, 1) != 1) rc = 4;
    } catch (...) {
      rc = 2;
    }
    _exit(rc);
  }
  char c;
  REQUIRE(read(ready[0], &c, 1) == 1);
  CHECK(run("stats " + dir.path().string()).status == 0);
  CHECK(run("verify " + dir.path().string()).status == 0);
  CHECK(run("migrate --status " + dir.path().string()).status == 0);
  const Run d = run("dump --from 7777 " + dir.path().string());
  CHECK(d.status == 0);
  CHECK_THAT(d.out, Catch::StartsWith("{\"key\":7777,"));
  for (const std::string& cmd : {std::string("compact ") + dir.path().string(),
                                 "backup " + dir.path().string() + " " + (out / "b").string(),
                                 "repair " + dir.path().string() + " " + (out / "r").string(),
                                 "load " + dir.path().string()}) {
    INFO(cmd);
    const Run r = run(cmd, "{\"key\": 1, \"value\": [\"a\", 1.0, []]}\n");
    CHECK(r.status == 3);
    CHECK_THAT(r.err, Catch::Contains((dir / "LOCK").string()) && Catch::Contains("another process") &&
                          Catch::Contains("never writes to a store another process holds"));
  }
  CHECK(!std::filesystem::exists(out / "b"));
  CHECK(!std::filesystem::exists(out / "r"));
  REQUIRE(write(release[1], "x", 1) == 1);
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  for (int fd : {ready[0], ready[1], release[0], release[1]}) close(fd);
  const auto after = contents(dir.path());
  CHECK(after.size() == 1005);
  CHECK(after.count(7777) == 1);
}

TEST_CASE("stowage exit statuses: bad usage 2, no store 5, a damaged MANIFEST 4") {
  TempDir dir("cli");
  CHECK(run("").status == 2);
  CHECK(run("frobnicate " + dir.path().string()).status == 2);
  CHECK(run("stats").status == 2);
  const Run help = run("--help");
  CHECK(help.status == 0);
  CHECK_THAT(help.out, Catch::Contains("verify") && Catch::Contains("3 the store is held by another process"));
  const Run none = run("stats " + (dir / "nothing").string());
  CHECK(none.status == 5);
  CHECK_THAT(none.err, Catch::Contains("no store"));
  fill(dir.path(), 100, 0);
  stowage_test::flip_byte(dir / "MANIFEST", 30);
  const Run bad = run("dump " + dir.path().string());
  CHECK(bad.status == 4);
  CHECK_THAT(bad.err, Catch::Contains("MANIFEST") && Catch::Contains("stowage verify"));
  CHECK(run("verify " + dir.path().string()).status == 1);
}

TEST_CASE("a progress bar on stderr when it is a terminal, none otherwise") {
  if (std::system("command -v script >/dev/null 2>&1") != 0) {
    WARN("no `script` (util-linux) to run the tool on a terminal: skipped");
    return;
  }
  TempDir dir("cli"), io("cli-io");
  fill(dir.path(), 2000, 0);
  // script(1) runs the tool on a pseudo-terminal: stdout and stderr both land in io/tty.
  const std::string cmd = "script -qec '" + std::string(STOWAGE_CLI) + " verify " + dir.path().string() +
                          "' /dev/null >" + (io / "tty").string() + " 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::string tty = stowage_test::read_all(io / "tty");
  CHECK_THAT(tty, Catch::Contains("verify [") && Catch::Contains("100%") && Catch::Contains("ok"));
  const Run piped = run("verify " + dir.path().string());
  CHECK(piped.err.empty());
  CHECK(piped.out.find('[') == std::string::npos);
  CHECK(run("verify --no-progress " + dir.path().string()).status == 0);
}

TEST_CASE("backup shares the store with read_only holders; writing subcommands still exit 3") {
  TempDir dir("cli"), out("cli");
  fill(dir.path(), 300, 5);
  int ready[2], release[2];
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(release) == 0);
  pid_t child = fork();
  if (child == 0) {
    int rc = 0;
    try {
      Options o = kSmall;
      o.read_only = true;
      Db db(dir.path(), o);
      char c = 'r';
      if (!db.contains(1)) rc = 5;
      if (write(ready[1], &c, 1) != 1) rc = 3;
      if (read(release[0], &c, 1) != 1) rc = 4;
    } catch (...) {
      rc = 2;
    }
    _exit(rc);
  }
  char c;
  REQUIRE(read(ready[0], &c, 1) == 1);
  const Run b = run("backup " + dir.path().string() + " " + (out / "b").string());
  CHECK(b.status == 0);
  CHECK(contents(out / "b").size() == contents(dir.path()).size());
  const Run r = run("compact " + dir.path().string());
  CHECK(r.status == 3);
  CHECK_THAT(r.err, Catch::Contains("reader"));
  REQUIRE(write(release[1], "x", 1) == 1);
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  for (int fd : {ready[0], ready[1], release[0], release[1]}) close(fd);
}

TEST_CASE("a Database's store: stats lists the collections, dump prints one collection's records, verify passes") {
  TempDir dir("cli");
  const Collections model = fill_collections(dir.path());
  const std::string d = " " + dir.path().string();

  Run r = run("stats" + d);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("layout       prefixed (a Database's: 3 collections in keyspace 'default'") &&
                        Catch::Contains("collection   default (id 0): key order u64, value type obj@2{str,f64,vec<i32>}, "
                                        "serializer binary-1, schema version 2") &&
                        Catch::Contains("collection   a (id 1): key order u64, value type str, serializer binary-1, "
                                        "schema version 0") &&
                        Catch::Contains("collection   b (id 2): key order str, value type i32, serializer binary-1, "
                                        "schema version 0") &&
                        Catch::Contains("keyspace     default: the records of every collection"));
  CHECK(r.err.empty());
  const json st = json::parse(run("stats --json" + d).out);
  CHECK(st["layout"] == "prefixed");
  CHECK(st["next_collection_id"] == 3);
  CHECK(st["dropped_collection_ids"].empty());
  REQUIRE(st["collections"].size() == 3);
  CHECK(st["collections"][0] == json{{"name", "default"}, {"id", 0}, {"prefix_hex", "00"}, {"key_order", "u64"},
                                     {"serializer", "binary-1"}, {"value_type", "obj@2{str,f64,vec<i32>}"},
                                     {"schema_version", 2}});
  CHECK(st["collections"][1]["name"] == "a");
  CHECK(st["collections"][1]["prefix_hex"] == "01");
  CHECK(st["collections"][1]["value_type"] == "str");
  CHECK(st["collections"][2]["name"] == "b");
  CHECK(st["collections"][2]["key_order"] == "str");
  CHECK(st["collections"][2]["value_type"] == "i32");
  // The live count is the whole store's: every collection's records.
  CHECK(st["live_records_with_wal"] == model.def.size() + model.a.size() + model.b.size());

  // dump: exactly one collection's records, in its key order, prefix stripped.
  for (const std::string name : {"default", "a", "b"}) {
    INFO(name);
    r = run("dump --collection " + name + d);
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    CHECK(lines(r.out) == dump_lines(model, name));
  }
  CHECK(run("dump" + d).out == run("dump --collection default" + d).out);  // 'default' by default
  r = run("dump --collection a --from 100 --to 105" + d);
  REQUIRE(r.status == 0);
  CHECK(lines(r.out) == std::vector<json>{json{{"key", 100}, {"value", "a-100"}}, json{{"key", 101}, {"value", "a-101"}},
                                          json{{"key", 102}, {"value", "a-102"}}, json{{"key", 103}, {"value", "a-103"}},
                                          json{{"key", 104}, {"value", "a-104"}}});
  r = run("dump --collection a --from 2998" + d);  // to the end of 'a': the WAL merged in, nothing of 'b' after it
  REQUIRE(r.status == 0);
  const auto tail = lines(r.out);
  REQUIRE(tail.size() == 12);
  CHECK(tail.back() == json{{"key", 3009}, {"value", "wal-3009"}});
  r = run("dump --collection b --from '\"k00500\"' --limit 2" + d);
  REQUIRE(r.status == 0);
  CHECK(lines(r.out) == std::vector<json>{json{{"key", "k00500"}, {"value", 1400}}, json{{"key", "k00501"}, {"value", 1403}}});
  r = run("dump --collection b --from '\"z\"'" + d);  // the last collection's last key, from the WAL
  CHECK(lines(r.out) == std::vector<json>{json{{"key", "zz"}, {"value", 7}}});

  // A collection that does not exist: an error naming the ones that do.
  for (const std::string& cmd : {"dump --collection nope" + d, "load --collection nope" + d}) {
    INFO(cmd);
    r = run(cmd, "{\"key\": 1, \"value\": \"x\"}\n");
    CHECK(r.status == 5);
    CHECK_THAT(r.err, Catch::Contains("holds no collection 'nope' (it holds 'default', 'a', 'b')"));
    CHECK(r.out.empty());
  }
  r = run("dump --collection a --keyspace default2" + d);
  CHECK(r.status == 5);
  CHECK_THAT(r.err, Catch::Contains("no keyspace 'default2'"));

  // verify: sound; prefixed keys are no problem.
  r = run("verify" + d);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::EndsWith("ok\n"));
  const json v = json::parse(run("verify --json" + d).out);
  CHECK(v["ok"] == true);
  CHECK(v["layout"] == "prefixed");
  CHECK(v["live_checked"] == true);
  CHECK(run("migrate --status" + d).status == 0);
  CHECK(collection_contents(dir.path()) == model);  // the tool changed nothing
}

TEST_CASE("a Database's store: repair keeps the layout and collections, load writes into one collection, compact "
          "keeps every record") {
  TempDir dir("cli"), out("cli");
  Collections model = fill_collections(dir.path());
  const std::string d = " " + dir.path().string();
  const auto fixed = out / "fixed";

  Run r = run("repair" + d + " " + fixed.string());
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains(std::to_string(model.def.size() + model.a.size() + model.b.size()) +
                                    " records saved") &&
                        Catch::Contains("(1 keyspace; prefixed layout, 3 collections: 'default', 'a', 'b')") &&
                        Catch::Contains("0 damaged range(s) lost"));
  auto fs = default_file_system();
  const auto before = detail::read_manifest(*fs, dir.path());
  const auto after = detail::read_manifest(*fs, fixed);
  CHECK(after.layout == detail::Layout::prefixed);
  CHECK(after.next_collection_id == before.next_collection_id);
  REQUIRE(after.collections.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(after.collections[i].name == before.collections[i].name);
    CHECK(after.collections[i].id == before.collections[i].id);
    CHECK(after.collections[i].key_order == before.collections[i].key_order);
    CHECK(after.collections[i].serializer == before.collections[i].serializer);
    CHECK(after.collections[i].value_type == before.collections[i].value_type);
    CHECK(after.collections[i].schema_version == before.collections[i].schema_version);
  }
  CHECK(after.keyspaces[0].key_order == before.keyspaces[0].key_order);
  CHECK(after.serializer == before.serializer);
  CHECK(run("verify " + fixed.string()).status == 0);
  for (const std::string name : {"default", "a", "b"})
    CHECK(run("dump --collection " + name + " " + fixed.string()).out == run("dump --collection " + name + d).out);
  CHECK(collection_contents(fixed) == model);
  {
    // A writable Database opens it as the same store: the same collections, in order.
    Database<> db(fixed);
    CHECK(db.collections() == std::vector<std::string>{"default", "a", "b"});
    CHECK(db.collection<std::string, int>("b").get("zz") == 7);
  }

  // load: into one collection (the prefix added), the others untouched.
  r = run("load --collection a" + d, "{\"key\": 5000, \"value\": \"loaded\"}\n{\"key\": 1, \"erase\": true}\n");
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("loaded 2 records of collection 'a'"));
  r = run("load --collection b" + d, "{\"key\": \"new\", \"value\": -5}\n");
  REQUIRE(r.status == 0);
  r = run("load" + d, "{\"key\": 5000, \"value\": [\"d\", 2.5, [1]]}\n");  // the default collection
  REQUIRE(r.status == 0);
  model.a[5000] = "loaded";
  model.a.erase(1);
  model.b["new"] = -5;
  model.def[5000] = Reading{"d", 2.5, {1}};
  CHECK(lines(run("dump --collection a --from 4999" + d).out) == std::vector<json>{json{{"key", 5000}, {"value", "loaded"}}});
  CHECK(run("verify" + d).status == 0);
  CHECK(collection_contents(dir.path()) == model);
  // A line that does not fit the collection's types loads nothing.
  r = run("load --collection b" + d, "{\"key\": \"ok\", \"value\": 1}\n{\"key\": 12, \"value\": 1}\n");
  CHECK(r.status == 5);
  CHECK_THAT(r.err, Catch::Contains("line 2") && Catch::Contains("nothing was loaded"));
  {
    // A writable open replays the loaded records (each key a collection's).
    Database<> db(dir.path());
    CHECK(db.collection<std::uint64_t, std::string>("a").get(5000) == "loaded");
    CHECK(!db.collection<std::uint64_t, std::string>("a").contains(1));
    CHECK(db.collection<std::uint64_t, Reading>("default").get(5000) == Reading{"d", 2.5, {1}});
  }
  CHECK(collection_contents(dir.path()) == model);

  // compact: every collection's records kept.
  r = run("compact" + d);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("compacted " + std::to_string(model.def.size() + model.a.size() + model.b.size()) +
                                    " records"));
  CHECK(collection_contents(dir.path()) == model);
  CHECK(run("verify" + d).status == 0);
  for (const std::string name : {"default", "a", "b"}) CHECK(lines(run("dump --collection " + name + d).out) == dump_lines(model, name));
}

TEST_CASE("load refuses a collection that keeps history; the tool lists no history as a collection") {
  TempDir dir("cli");
  {
    Database<> db(dir.path());
    auto a = db.collection<std::uint64_t, std::string>("a");
    a.keep_history({.versions = 3});
    a.put(1, "one");
    db.collection<std::uint64_t, std::string>("b").put(2, "two");
  }
  const std::string d = " " + dir.path().string();
  Run r = run("load --collection a" + d, "{\"key\": 5000, \"value\": \"loaded\"}\n");
  CHECK(r.status != 0);
  CHECK_THAT(r.err, Catch::Contains("keeps history"));
  r = run("load --collection b" + d, "{\"key\": 5000, \"value\": \"loaded\"}\n");
  CHECK(r.status == 0);
  r = run("stats" + d);
  CHECK_THAT(r.out, Catch::Contains("3 collections") && Catch::Contains("collection   a (id 1)") &&
                        Catch::Contains("collection   b (id 3)"));
  CHECK_THAT(r.out, Catch::Contains("history      of a (id 2): keeps 3 versions a key, from sequence"));
  CHECK(run("verify" + d).status == 0);
  Database<> db(dir.path());
  auto a = db.collection<std::uint64_t, std::string>("a");
  CHECK(!a.get(5000));
  CHECK(a.history(1).size() == 1);
  CHECK(db.collection<std::uint64_t, std::string>("b").get(5000) == "loaded");
}

TEST_CASE("an expiring collection: dump leaves expired records out and strips the times, load refuses it") {
  TempDir dir("cli");
  const auto now = std::chrono::system_clock::now();
  {
    Options o;
    o.clock = [now] { return now - std::chrono::hours(2); };  // an hour-long ttl has run out by now
    Database<> db(dir.path(), o);
    auto a = db.collection<std::uint64_t, std::string>("a");
    a.set_default_ttl(std::chrono::hours(1));
    a.put(1, "expired");
    a.put(2, "lives", std::chrono::hours(24));
    db.collection<std::uint64_t, std::string>("b").put(3, "three");
  }
  const std::string d = " " + dir.path().string();
  Run r = run("load --collection a" + d, "{\"key\": 5000, \"value\": \"loaded\"}\n");
  CHECK(r.status != 0);
  CHECK_THAT(r.err, Catch::Contains("expires records"));
  r = run("stats" + d);
  CHECK_THAT(r.out, Catch::Contains("3 collections") && Catch::Contains("collection   a (id 1)") &&
                        Catch::Contains("collection   b (id 3)"));  // default, a, b
  CHECK_THAT(r.out, Catch::Contains("expiry       of a (id 2): default time to live 3600 s, from sequence"));
  r = run("dump --collection a" + d);
  REQUIRE(r.status == 0);
  const auto got = lines(r.out);
  REQUIRE(got.size() == 1);
  CHECK(got[0]["key"] == 2);
  CHECK(got[0]["value"] == "lives");
  const auto expires = std::chrono::duration_cast<std::chrono::microseconds>(
      (now + std::chrono::hours(22)).time_since_epoch());  // put 2 h before now, for 24 h
  CHECK(got[0]["expires_us"] == expires.count());
  CHECK(run("verify" + d).status == 0);
  r = run("compact" + d);
  CHECK(r.status == 0);
  Database<> db(dir.path());
  auto a = db.collection<std::uint64_t, std::string>("a");
  CHECK_FALSE(a.get(1));
  CHECK(*a.get(2) == "lives");
  CHECK(a.size() == 1);
}

TEST_CASE("a Database's store with a damaged block: repair names the lost keys with their collection") {
  TempDir dir("cli"), out("cli");
  const Collections model = fill_collections(dir.path());
  const auto victim = damage_a_block(dir.path());
  CHECK(run("verify " + dir.path().string()).status == 1);
  Run r = run("repair " + dir.path().string() + " " + (out / "fixed").string());
  REQUIRE(r.status == 1);
  CHECK_THAT(r.out, Catch::Contains("lost: " + victim.string() + ", block ") &&
                        (Catch::Contains(": keys of collection '") || Catch::Contains(" (collection '")) &&
                        Catch::Contains("1 damaged range(s) lost"));
  CHECK(run("verify " + (out / "fixed").string()).status == 0);
  const Collections saved = collection_contents(out / "fixed");
  const std::size_t all = model.def.size() + model.a.size() + model.b.size();
  const std::size_t kept = saved.def.size() + saved.a.size() + saved.b.size();
  CHECK(kept < all);
  CHECK(kept + 100 > all);
  for (const auto& [k, v] : saved.a) CHECK(model.a.at(k) == v);
  for (const auto& [k, v] : saved.b) CHECK(model.b.at(k) == v);
  for (const auto& [k, v] : saved.def) CHECK(model.def.at(k) == v);
}

TEST_CASE("collections of a Storage's (bare) store, and a WAL key of no collection") {
  TempDir dir("cli");
  fill(dir.path(), 500, 5);
  const std::string d = " " + dir.path().string();
  Run r = run("stats" + d);
  CHECK_THAT(r.out, Catch::Contains("layout       bare (a Storage's: one collection, 'default', keys without a prefix)"));
  const json st = json::parse(run("stats --json" + d).out);
  CHECK(st["layout"] == "bare");
  REQUIRE(st["collections"].size() == 1);
  CHECK(st["collections"][0]["prefix_hex"] == "");
  CHECK(run("dump --collection default" + d).out == run("dump" + d).out);
  {
    // A WAL record after the last chunk key below --to, and a chunk key past it.
    Options o = kSmall;
    o.checkpoint_on_close = false;
    Db db(dir.path(), o);
    db.put(10000, reading(10000));
    db.compact();
    db.put(700, reading(700));
  }
  r = run("dump --from 499 --to 800" + d);
  REQUIRE(r.status == 0);
  const auto got = lines(r.out);
  REQUIRE(got.size() == 7);  // 499..504 from the chunks, 700 from the WAL
  CHECK(got.back() == line_of(700, reading(700)));
  for (const std::string& cmd : {"dump --collection a" + d, "load --collection a" + d}) {
    INFO(cmd);
    r = run(cmd, "{\"key\": 1, \"value\": [\"a\", 1.0, []]}\n");
    CHECK(r.status == 5);
    CHECK_THAT(r.err, Catch::Contains("holds no collection 'a': it keeps one collection, 'default'"));
  }

  // A Database's store whose WAL holds a key of no collection (id 9; ids end
  // before 3): an open refuses it, verify says so, load never writes one.
  TempDir multi("cli");
  fill_collections(multi.path());
  auto fs = default_file_system();
  const std::vector<std::pair<std::string, std::optional<std::string>>> bad{{std::string("\x09key", 4), "v"}};
  CHECK_THROWS_AS(tool::append_records(*fs, multi.path(), bad), ValidationError);
  {
    tool::StoreReader reader(*fs, multi.path());
    const std::uint64_t number = reader.manifest().next_file + 100;
    detail::WalWriter w(*fs, multi.path(), number, 0);
    detail::WalBatch batch(reader.last_seq() + 1);
    batch.put(bad[0].first, "v");
    w.append(batch.finish());
    w.sync();
    w.seal();
    w.close();
  }
  CHECK_THROWS_AS(Database<>(multi.path(), Options{.read_only = true}), CorruptionError);
  r = run("verify " + multi.path().string());
  CHECK(r.status == 1);
  CHECK_THAT(r.out, Catch::Contains("WAL record holds a key of no collection (it starts with bytes 096b6579, the "
                                    "prefix of collection id 9, but ids end before 3)"));
}

TEST_CASE("a Database's store with secondary indexes: stats lists them, load marks its collection's for a rebuild") {
  TempDir dir("cli"), out("cli");
  const auto by_value_of = [](const std::string& v) { return v; };
  const auto by_int_of = [](const int& v) { return v; };
  {
    Database<> db(dir.path());
    auto a = db.collection<std::uint64_t, std::string>("a");
    auto b = db.collection<std::string, int>("b");
    auto by_value = a.index("by_value", by_value_of, unique);
    auto by_int = b.index("by_int", by_int_of);
    for (std::uint64_t i = 0; i < 50; ++i) {
      a.put(i, "v" + std::to_string(i));
      b.put(b_key(i), static_cast<int>(i % 5));
    }
  }
  const std::string d = " " + dir.path().string();
  Run r = run("stats" + d);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("layout       prefixed (a Database's: 3 collections in keyspace 'default'") &&
                        Catch::Contains("index        by_value of a (id 3): key order str, unique, version 0\n") &&
                        Catch::Contains("index        by_int of b (id 4): key order i32, not unique, version 0\n"));
  json st = json::parse(run("stats --json" + d).out);
  CHECK(st["collections"].size() == 3);
  REQUIRE(st["indexes"].size() == 2);
  CHECK(st["indexes"][0] == json{{"name", "by_value"}, {"id", 3}, {"prefix_hex", "03"}, {"collection", "a"},
                                 {"key_order", "str"}, {"unique", true}, {"version", 0}, {"ready", true}});
  CHECK(st["indexes"][1]["collection"] == "b");
  CHECK(st["indexes"][1]["unique"] == false);
  // An index is not a collection dump prints; the collections print only their records.
  r = run("dump --collection by_value" + d);
  CHECK(r.status == 5);
  CHECK_THAT(r.err, Catch::Contains("(it holds 'default', 'a', 'b')"));
  CHECK(lines(run("dump --collection a" + d).out).size() == 50);
  CHECK(lines(run("dump --collection b" + d).out).size() == 50);
  CHECK(run("verify" + d).status == 0);
  // repair with nothing lost keeps the indexes ready.
  REQUIRE(run("repair" + d + " " + (out / "fixed").string()).status == 0);
  CHECK(json::parse(run("stats --json " + (out / "fixed").string()).out)["indexes"] == st["indexes"]);

  // load writes past the engine that keeps the indexes: it marks the
  // collection's indexes not ready first, and the next declaration rebuilds them.
  r = run("load --collection a" + d, "{\"key\": 100, \"value\": \"loaded\"}\n{\"key\": 7, \"erase\": true}\n");
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("1 secondary index of collection 'a' marked not ready"));
  st = json::parse(run("stats --json" + d).out);
  CHECK(st["indexes"][0]["ready"] == false);
  CHECK(st["indexes"][1]["ready"] == true);  // b's: untouched
  {
    Database<> db(dir.path());
    auto a = db.collection<std::uint64_t, std::string>("a");
    auto by_value = a.index("by_value", by_value_of, unique);
    const auto hit = by_value.find("loaded");
    REQUIRE(hit);
    CHECK(hit->first == 100);
    CHECK(!by_value.find("v7"));
    CHECK(by_value.find("v8"));
  }
  CHECK(json::parse(run("stats --json" + d).out)["indexes"][0]["ready"] == true);
  CHECK(run("verify" + d).status == 0);
}
