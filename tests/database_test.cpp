// Tests of Database (database.hpp) and its Collection handles
// (collection.hpp): collections created on first use, listed, typed and
// checked, dropped and purged; batches across collections; the default
// collection shared with Storage; a Storage's store converted at a
// Database's first open; read_only opens; and the isolation of collections'
// keys, including long prefixes (ids of 240 and above) and keys that end in
// 0xFF bytes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <stowage/manifest.hpp>
#include <stowage/stowage.hpp>

#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;

namespace {

struct User {
  std::string name;
  std::string email;
  static constexpr unsigned version = 1;
  template <class A>
  void serialize(A& a, unsigned) {
    a & name & email;
  }
  bool operator==(const User&) const = default;
};

struct UserV2 {
  std::string name;
  static constexpr unsigned version = 2;
  template <class A>
  void serialize(A& a, unsigned) {
    a & name;
  }
};

Options small_options() {
  return Options{.cache_bytes = 256 << 10, .chunk_bytes = 8 << 10, .block_bytes = 512, .write_buffer_bytes = 32 << 10};
}

template <class C>
std::map<typename C::key_type, typename C::mapped_type> contents(const C& c) {
  std::map<typename C::key_type, typename C::mapped_type> out;
  for (const auto& [k, v] : c.scan()) out.emplace(k, v);
  return out;
}

detail::Manifest manifest_of(const std::filesystem::path& dir) {
  return detail::decode_manifest(stowage_test::read_all(dir / "MANIFEST"), dir / "MANIFEST");
}

}  // namespace

TEST_CASE("collections are created on first use, typed, listed and kept across reopen") {
  TempDir dir("db");
  {
    Database db(dir.path(), small_options());
    CHECK(db.collections().empty());
    auto users = db.collection<std::uint64_t, User>("users");
    auto emails = db.collection<std::string, std::uint64_t>("emails");
    CHECK(users.name() == "users");
    CHECK(db.collections() == std::vector<std::string>{"users", "emails"});
    for (std::uint64_t i = 0; i < 3000; ++i) {
      users.put(i, User{"u" + std::to_string(i), "e" + std::to_string(i)});
      emails.put("e" + std::to_string(i), i);
    }
    CHECK(users.size() == 3000);
    CHECK(emails.size() == 3000);
    CHECK(db.stats().records == 6000);
    CHECK(users.get(7)->email == "e7");
    CHECK(emails.get("e7") == 7u);
    CHECK_FALSE(emails.get("u7"));
  }
  const auto m = manifest_of(dir.path());
  CHECK(m.format_major == detail::kFormatMajor);
  CHECK(m.layout == detail::Layout::prefixed);
  REQUIRE(m.collections.size() == 2);
  CHECK(m.collections[0].name == "users");
  CHECK(m.collections[0].id == 1);
  CHECK(m.collections[0].key_order == KeyCodec<std::uint64_t>::name());
  CHECK(m.collections[0].schema_version == 1);
  CHECK(m.collections[1].serializer == std::string(BinarySerializer::id()));
  Database db(dir.path(), small_options());
  auto users = db.collection<std::uint64_t, User>("users");
  CHECK(users.size() == 3000);
  CHECK(users.get(2999)->name == "u2999");
  std::uint64_t expect = 0;
  bool ordered = true;
  for (const auto& [k, v] : users.scan()) ordered = ordered && k == expect++ && v.name == "u" + std::to_string(k);
  CHECK(ordered);
  CHECK(expect == 3000);
}

TEST_CASE("opening a collection with other types is a MigrationError naming both") {
  TempDir dir("db");
  Database db(dir.path());
  db.collection<std::uint64_t, User>("users").put(1, User{"a", "b"});
  auto message = [&](auto open) -> std::string {
    try {
      open();
    } catch (const MigrationError& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string key = message([&] { db.collection<std::string, User>("users"); });
  CHECK_THAT(key, Catch::Contains("key type") && Catch::Contains("'u64'") && Catch::Contains("'str'") &&
                      Catch::Contains("collection 'users'"));
  const std::string value = message([&] { db.collection<std::uint64_t, std::string>("users"); });
  CHECK_THAT(value, Catch::Contains("schema version") || Catch::Contains("value type"));
  const std::string version = message([&] { db.collection<std::uint64_t, UserV2>("users"); });
  CHECK_THAT(version, Catch::Contains("schema version 1") && Catch::Contains("opened at 2"));
  // The collection is unchanged and still opens with its own types.
  CHECK(db.collection<std::uint64_t, User>("users").get(1)->name == "a");
}

TEST_CASE("collection names are checked; the default collection cannot be dropped") {
  TempDir dir("db");
  Database db(dir.path());
  CHECK_THROWS_AS((db.collection<int, int>("")), ValidationError);
  CHECK_THROWS_AS((db.collection<int, int>(std::string(256, 'n'))), ValidationError);
  CHECK_NOTHROW((db.collection<int, int>(std::string(255, 'n'))));
  CHECK_THROWS_AS(db.drop_collection("default"), ValidationError);
  CHECK_FALSE(db.drop_collection("never"));
}

TEST_CASE("a batch across collections commits as one; a bad element stores nothing") {
  TempDir dir("db");
  Database db(dir.path(), small_options());
  auto a = db.collection<int, std::string>("a");
  auto b = db.collection<std::string, int>("b");
  a.put(1, "old");
  b.put("gone", 1);
  db.batch().put(a, 1, std::string("new")).put(b, std::string("x"), 5).erase(b, std::string("gone")).commit();
  CHECK(a.get(1) == "new");
  CHECK(b.get("x") == 5);
  CHECK_FALSE(b.contains("gone"));

  auto batch = db.batch();
  batch.put(a, 2, std::string("two"));
  CHECK_THROWS_AS(batch.put(b, std::string(kMaxKeyBytes + 1, 'k'), 1), ValidationError);
  CHECK(batch.size() == 1);
  CHECK_FALSE(a.contains(2));  // nothing is stored before commit()
  batch.commit();
  CHECK(a.get(2) == "two");
  CHECK(batch.empty());

  TempDir other_dir("db2");
  Database other(other_dir.path());
  auto foreign = other.collection<int, std::string>("a");
  CHECK_THROWS_AS(db.batch().put(foreign, 1, std::string("x")), ValidationError);
}

TEST_CASE("collections do not see each other's keys, whatever their ids and key bytes") {
  TempDir dir("db");
  Database db(dir.path(), small_options());
  // Ids 1 to 300: one-byte prefixes up to 239, two-byte ones from 240 on.
  std::vector<Collection<std::string, int>> cs;
  for (int i = 0; i < 300; ++i) cs.push_back(db.collection<std::string, int>("c" + std::to_string(i)));
  const std::vector<std::string> keys = {"", std::string(1, '\0'), "a", std::string(3, '\xff'), "\xff" "a",
                                         std::string("z\xff", 2)};
  for (std::size_t i = 0; i < cs.size(); i += 1) {
    if (i % 3 == 0) continue;  // every third collection stays empty
    for (std::size_t j = 0; j < keys.size(); ++j) cs[i].put(keys[j], static_cast<int>(i * 10 + j));
  }
  db.checkpoint();
  for (std::size_t i : {0u, 1u, 2u, 238u, 239u, 240u, 241u, 255u, 256u, 299u}) {
    INFO("collection " << i);
    auto& c = cs[i];
    const bool filled = i % 3 != 0;
    CHECK(c.size() == (filled ? keys.size() : 0));
    CHECK(c.empty() == !filled);
    CHECK(c.count_prefix(std::string("\xff")) == (filled ? 2u : 0u));
    std::vector<std::string> forward, backward;
    for (const auto& [k, v] : c.scan()) {
      forward.push_back(k);
      CHECK(v / 10 == static_cast<int>(i));
    }
    for (const auto& [k, v] : c.scan().reversed()) backward.push_back(k);
    std::reverse(backward.begin(), backward.end());
    CHECK(forward == backward);
    if (filled) {
      auto sorted = keys;
      std::sort(sorted.begin(), sorted.end());
      CHECK(forward == sorted);
      CHECK(c.get("a") == static_cast<int>(i * 10 + 2));
    }
  }
  // Erasing a whole range of one collection leaves its neighbours alone.
  CHECK(cs[239].erase_prefix(std::string()) == keys.size());
  CHECK(cs[239].empty());
  CHECK(cs[238].size() == keys.size());
  CHECK(cs[241].size() == keys.size());
  CHECK(cs[1].erase_range("", "\xff") == 4);  // "", "\0", "a", "z\xff"
  CHECK(cs[1].size() == keys.size() - 4);
  CHECK(cs[2].size() == keys.size());
}

TEST_CASE("drop_collection removes its records and handles; the name can come back with other types") {
  TempDir dir("db");
  Options o = small_options();
  {
    Database db(dir.path(), o);
    auto keep = db.collection<int, int>("keep");
    auto drop = db.collection<int, std::string>("drop");
    for (int i = 0; i < 5000; ++i) {
      keep.put(i, i);
      drop.put(i, "v" + std::to_string(i));
    }
    auto copy = drop;
    CHECK(db.drop_collection("drop"));
    CHECK_FALSE(db.drop_collection("drop"));
    CHECK(db.collections() == std::vector<std::string>{"keep"});
    CHECK_THROWS_AS(drop.get(1), ValidationError);
    CHECK_THROWS_AS(copy.put(1, "x"), ValidationError);
    CHECK(db.stats().records == 5000);
    auto again = db.collection<std::string, std::string>("drop");
    CHECK(again.empty());
    again.put("k", "v");
    CHECK(keep.size() == 5000);
    CHECK(manifest_of(dir.path()).dropped.empty());
  }
  Database db(dir.path(), o);
  CHECK(db.collection<std::string, std::string>("drop").size() == 1);
  CHECK(db.collection<int, int>("keep").size() == 5000);
}

TEST_CASE("a drop a crash interrupted is finished by the next open") {
  TempDir dir("db");
  {
    Database db(dir.path(), small_options());
    auto x = db.collection<int, int>("x");
    auto y = db.collection<int, int>("y");
    for (int i = 0; i < 2000; ++i) {
      x.put(i, i);
      y.put(i, i);
    }
  }
  // What a crash right after the drop's MANIFEST write leaves: "x" listed as
  // dropped, its records still stored.
  auto m = manifest_of(dir.path());
  REQUIRE(m.collections.front().name == "x");
  m.dropped.push_back(m.collections.front().id);
  m.collections.erase(m.collections.begin());
  detail::write_manifest(*default_file_system(), dir.path(), m);
  {
    Database db(dir.path(), small_options());
    CHECK(db.collections() == std::vector<std::string>{"y"});
    CHECK(db.stats().records == 2000);  // x's records were purged
    CHECK(db.collection<int, int>("x").empty());
  }
  CHECK(manifest_of(dir.path()).dropped.empty());
}

TEST_CASE("a Storage and a Database share the default collection") {
  TempDir dir("db");
  {
    Database db(dir.path(), small_options());
    db.collection<int, int>("other").put(1, 100);
    CHECK(db.collections() == std::vector<std::string>{"other"});  // the default has no types yet
  }
  {
    Storage<std::string, int> s(dir.path(), small_options());  // gives the default collection its types
    CHECK(s.empty());
    for (int i = 0; i < 1000; ++i) s.put("k" + std::to_string(i), i);
    CHECK(s.size() == 1000);  // the other collection's record is not counted
    int n = 0;
    for (const auto& kv : s.scan()) n += kv.first.size() > 0;
    CHECK(n == 1000);
  }
  {
    Database db(dir.path(), small_options());
    CHECK(db.collections() == std::vector<std::string>{"default", "other"});
    auto d = db.collection<std::string, int>("default");
    CHECK(d.size() == 1000);
    CHECK(d.get("k7") == 7);
    CHECK_THROWS_AS((db.collection<int, int>("default")), MigrationError);
    db.batch().put(d, std::string("k7"), 70).erase(db.collection<int, int>("other"), 1).commit();
  }
  Storage<std::string, int> s(dir.path(), small_options());
  CHECK(s.get("k7") == 70);
}

TEST_CASE("a Database converts a Storage's store once, with a backup; the Storage still opens it") {
  TempDir root("db");
  const auto dir = root / "store";
  std::map<std::string, int> model;
  {
    Storage<std::string, int> s(dir, small_options());
    for (int i = 0; i < 4000; ++i) {
      s.put("k" + std::to_string(i % 3000), i);
      model["k" + std::to_string(i % 3000)] = i;
      if (i % 7 == 0) {
        s.erase("k" + std::to_string(i / 2));
        model.erase("k" + std::to_string(i / 2));
      }
    }
    s.checkpoint();
    for (int i = 0; i < 100; ++i) {  // these stay in the WAL
      s.put("w" + std::to_string(i), i);
      model["w" + std::to_string(i)] = i;
    }
  }
  REQUIRE(manifest_of(dir).layout == detail::Layout::bare);
  {
    Options ro = small_options();
    ro.read_only = true;
    Database db(dir, ro);  // read_only: read as it is, not converted
    CHECK(db.collection<std::string, int>("default").size() == model.size());
    CHECK_THROWS_AS((db.collection<int, int>("new")), ValidationError);
  }
  {
    Database db(dir, small_options());
    REQUIRE(db.last_migration());
    const auto& steps = db.last_migration()->steps;
    CHECK(std::find(steps.begin(), steps.end(), "layout bare->prefixed") != steps.end());
    CHECK(std::filesystem::exists(db.last_migration()->backup / "MANIFEST"));
    auto d = db.collection<std::string, int>("default");
    CHECK(contents(d) == model);
    CHECK(d.size() == model.size());
    auto extra = db.collection<int, int>("extra");
    extra.put(1, 1);
  }
  CHECK(manifest_of(dir).layout == detail::Layout::prefixed);
  {
    Database db(dir, small_options());
    CHECK_FALSE(db.last_migration());  // once only
  }
  Storage<std::string, int> s(dir, small_options());
  CHECK(contents(s) == model);
  CHECK(s.size() == model.size());
}

TEST_CASE("read_only Databases read collections and write nothing") {
  TempDir dir("db");
  {
    Database db(dir.path());
    db.collection<int, std::string>("a").put(1, "one");
  }
  Options ro;
  ro.read_only = true;
  Database r1(dir.path(), ro);
  Database r2(dir.path(), ro);  // readers share the store
  auto a = r1.collection<int, std::string>("a");
  CHECK(a.get(1) == "one");
  CHECK(r2.collection<int, std::string>("a").size() == 1);
  CHECK_THROWS_AS(a.put(2, "two"), ValidationError);
  CHECK_THROWS_AS((r1.collection<int, int>("b")), ValidationError);
  CHECK_THROWS_AS(r1.drop_collection("a"), ValidationError);
}

TEST_CASE("handles copy and move; a Database moves; a handle to nothing throws") {
  TempDir dir("db");
  auto open = [&] { return Database(dir.path()); };
  Database db = open();
  Collection<int, std::string> none;
  CHECK_THROWS_AS(none.get(1), ValidationError);
  auto a = db.collection<int, std::string>("a");
  Collection<int, std::string> b = a;
  b.put(1, "x");
  CHECK(a.get(1) == "x");
  Collection<int, std::string> c = std::move(b);
  CHECK(c.get(1) == "x");
  CHECK_THROWS_AS(b.get(1), ValidationError);  // NOLINT(bugprone-use-after-move): what the test checks
  std::vector<Collection<int, std::string>> kept{a, c};
  Database moved = std::move(db);
  kept[0].put(2, "y");
  CHECK(moved.collection<int, std::string>("a").size() == 2);
  CHECK(c.insert(3, "z"));
  CHECK_FALSE(c.insert(3, "w"));
  CHECK(c.update(3, [](std::string& v) { v += "!"; }));
  CHECK(a.get(3) == "z!");
  CHECK(c.count(0, 10) == 3);
  CHECK(c.erase_range(2, 3) == 1);
  CHECK(a.size() == 2);
}

TEST_CASE("next_id is unique and increasing across threads and reopens, and never reused after a crash") {
  TempDir dir("db");
  std::vector<std::uint64_t> all;
  std::uint64_t last = 0;
  {
    Database db(dir.path());
    auto users = db.collection<std::uint64_t, User>("users");
    auto other = db.collection<std::uint64_t, User>("other");
    CHECK(users.next_id() == 1);
    CHECK(other.next_id() == 1);  // each collection counts its own
    std::vector<std::vector<std::uint64_t>> got(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 3000; ++i) got[t].push_back(users.next_id());
      });
    for (auto& t : threads) t.join();
    for (const auto& g : got) {
      CHECK(std::is_sorted(g.begin(), g.end()));
      all.insert(all.end(), g.begin(), g.end());
    }
    std::sort(all.begin(), all.end());
    CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
    last = all.back();
  }
  {
    Database db(dir.path());
    const std::uint64_t next = db.collection<std::uint64_t, User>("users").next_id();
    CHECK(next > last);
    last = next;
  }
  // A crash: the manifest's reservation is all that survives of a session.
  const std::uint64_t reserved = manifest_of(dir.path()).collections.front().ids_reserved;
  CHECK(reserved > last);
  {
    Database db(dir.path());
    CHECK(db.collection<std::uint64_t, User>("users").next_id() >= reserved);
  }
  // A Storage's default collection has ids too.
  TempDir plain("db");
  {
    Storage<std::uint64_t, int> s(plain.path());
    CHECK(s.next_id() == 1);
    CHECK(s.next_id() == 2);
  }
  Storage<std::uint64_t, int> s(plain.path());
  CHECK(s.next_id() > 2);
}

// ---- migrating a collection ---------------------------------------------------

namespace {

struct PersonV1 {
  static constexpr unsigned version = 1;
  std::string name;  // "First Last"
  int age = 0;
  template <class A>
  void serialize(A& a, unsigned) {
    a & name & age;
  }
  bool operator==(const PersonV1&) const = default;
};

struct PersonV2 {
  static constexpr unsigned version = 2;
  std::string first, last;
  int age = 0;
  template <class A>
  void serialize(A& a, unsigned) {
    a & first & last & age;
  }
  bool operator==(const PersonV2&) const = default;
};

// Built with append, not "lit" + std::to_string(): g++ 12 at -O3 reports a
// false -Wrestrict there.
PersonV1 person(int i) {
  return {std::string("First").append(std::to_string(i)).append(" Last").append(std::to_string(i % 7)), 20 + i % 50};
}
PersonV2 v1_to_v2(const PersonV1& p) {
  const auto space = p.name.find(' ');
  return {p.name.substr(0, space), p.name.substr(space + 1), p.age};
}

// "people" (PersonV1: 2,000 records, the last 100 only in the WAL, record
// 0 erased, an index on the name) and "tags" (untouched by the migration).
void make_people(const std::filesystem::path& dir) {
  Options o = small_options();
  o.checkpoint_on_close = false;
  Database db(dir, o);
  auto people = db.collection<std::uint64_t, PersonV1>("people");
  people.index("by_name", &PersonV1::name, stowage::unique);
  auto tags = db.collection<std::string, std::uint64_t>("tags");
  for (int i = 0; i < 1900; ++i) people.put(static_cast<std::uint64_t>(i), person(i));
  db.checkpoint();
  for (int i = 1900; i < 2000; ++i) people.put(static_cast<std::uint64_t>(i), person(i));
  people.erase(0);
  for (int i = 0; i < 50; ++i) tags.put(std::string("t").append(std::to_string(i)), static_cast<std::uint64_t>(i));
  db.flush();
}

std::string last_of(const PersonV2& p) { return p.last; }

}  // namespace

TEST_CASE("a collection migrates with collection(name, migrations); the old records stay as a backup collection") {
  TempDir dir("db");
  make_people(dir.path());
  Migrator m;
  m.add<PersonV1, PersonV2>(v1_to_v2);
  std::string backup;
  {
    Database db(dir.path(), small_options());
    auto people = db.collection<std::uint64_t, PersonV2>("people", m);
    REQUIRE(db.last_migration().has_value());
    const MigrationReport& r = *db.last_migration();
    CHECK(r.from_version == 1);
    CHECK(r.to_version == 2);
    CHECK(r.steps == std::vector<std::string>{"1->2"});
    CHECK(r.records == 1999);
    CHECK_THAT(r.backup_collection, Catch::StartsWith("people.backup-") && Catch::EndsWith("-v1"));
    backup = r.backup_collection;
    CHECK(db.collections() == std::vector<std::string>{backup, "tags", "people"});
    CHECK(people.size() == 1999);
    CHECK_FALSE(people.contains(0));
    for (int i = 1; i < 2000; ++i) CHECK(*people.get(static_cast<std::uint64_t>(i)) == v1_to_v2(person(i)));
    // The index went with the old definition; a new one is built when declared.
    auto by_last = people.index("by_last", last_of);
    std::size_t found = 0;
    for (const auto& [id, p] : by_last.find("Last3")) found += (p.last == "Last3" && id % 7 == 3) ? 1 : 0;
    CHECK(found == 286);
    CHECK(by_last.size() == 1999);
    // The backup opens with the old types; the other collection is untouched.
    auto old = db.collection<std::uint64_t, PersonV1>(backup);
    CHECK(old.size() == 1999);
    CHECK(*old.get(1999) == person(1999));
    CHECK(db.collection<std::string, std::uint64_t>("tags").size() == 50);
    CHECK(db.stats().records == 1999 + 1999 + 50 + 1999);  // people, its backup, tags, by_last
    people.put(5000, PersonV2{"New", "Person", 1});
  }
  // Once: the next open needs no Migrator, and the old version is the mismatch now.
  Database db(dir.path(), small_options());
  CHECK(db.collection<std::uint64_t, PersonV2>("people", m).size() == 2000);
  CHECK_FALSE(db.last_migration().has_value());
  CHECK_THROWS_AS((db.collection<std::uint64_t, PersonV1>("people")), MigrationError);
  CHECK(db.drop_collection(backup));
  CHECK(db.collections() == std::vector<std::string>{"tags", "people"});
}

TEST_CASE("a collection migration that cannot run, or fails, changes nothing") {
  TempDir dir("db");
  make_people(dir.path());
  const auto before = manifest_of(dir.path()).collections.size();
  {
    Database db(dir.path(), small_options());
    // No step registered.
    CHECK_THROWS_WITH((db.collection<std::uint64_t, PersonV2>("people", Migrator{})),
                      Catch::Contains("collection 'people'") && Catch::Contains("no chain"));
    // A step that throws on one record: the error names its key (1234, in hex).
    Migrator failing;
    failing.add<PersonV1, PersonV2>([](const PersonV1& p) {
      if (p.name == person(1234).name) throw std::runtime_error("cannot split");
      return v1_to_v2(p);
    });
    CHECK_THROWS_WITH((db.collection<std::uint64_t, PersonV2>("people", failing)),
                      Catch::Contains("04d2") && Catch::Contains("cannot split") && Catch::Contains("unchanged"));
    CHECK(db.collections() == std::vector<std::string>{"people", "tags"});
    CHECK(db.stats().records == 1999 + 1999 + 50);  // people, by_name, tags: the copies were purged
    auto people = db.collection<std::uint64_t, PersonV1>("people");
    CHECK(*people.get(1234) == person(1234));
    // A handle taken with the old types: migrate before that.
    Migrator m;
    m.add<PersonV1, PersonV2>(v1_to_v2);
    CHECK_THROWS_AS((db.collection<std::uint64_t, PersonV2>("people", m)), ValidationError);
  }
  CHECK(manifest_of(dir.path()).collections.size() == before);
  CHECK(manifest_of(dir.path()).dropped.empty());
}

TEST_CASE("a crash during a collection migration leaves the collection as it was") {
  TempDir dir("db");
  make_people(dir.path());
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Dies like kill -9 (no destructors, no flush) after 1,500 conversions:
    // some batches of copies are in the WAL, the swap has not happened.
    int converted = 0;
    Migrator dying;
    dying.add<PersonV1, PersonV2>([&](const PersonV1& p) {
      if (++converted == 1500) _exit(0);
      return v1_to_v2(p);
    });
    try {
      Database db(dir.path(), small_options());
      db.collection<std::uint64_t, PersonV2>("people", dying);
    } catch (...) {
    }
    _exit(3);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  Database db(dir.path(), small_options());
  CHECK(db.collections() == std::vector<std::string>{"people", "tags"});
  auto people = db.collection<std::uint64_t, PersonV1>("people");
  CHECK(people.size() == 1999);
  CHECK(*people.get(1999) == person(1999));
  CHECK(db.stats().records == 1999 + 1999 + 50);  // the copies were purged at open
  CHECK(manifest_of(dir.path()).dropped.empty());
}

TEST_CASE("a Database changes its Compression with Migrator::change_compression(), indexes and all") {
  TempDir tmp("db");
  const auto dir = tmp / "db";
  std::map<std::uint64_t, User> want;
  {
    Database<NoCompression> db(dir, small_options());
    auto users = db.collection<std::uint64_t, User>("users");
    users.index("by_email", &User::email, stowage::unique);
    auto notes = db.collection<std::string, std::string>("notes");
    for (std::uint64_t i = 1; i <= 600; ++i) {
      User u{"user " + std::to_string(i), std::to_string(i) + "@example.com"};
      users.put(i, u);
      want[i] = u;
    }
    notes.put("a", std::string(300, 'x'));  // compresses well
  }
  CHECK(manifest_of(dir).compression == "none");
  // Without the Migrator: a clear error naming the way, and nothing changed.
  const std::string refused = stowage_test::error_of([&] { Database<Lz4Compression> db(dir, small_options()); });
  CHECK_THAT(refused, Catch::Contains("compression") && Catch::Contains("'none'") &&
                          Catch::Contains("change_compression") && Catch::Contains("Database"));
  CHECK(manifest_of(dir).compression == "none");
  Migrator m;
  m.change_compression();
  {
    Database<Lz4Compression> db(dir, small_options(), m);
    REQUIRE(db.last_migration().has_value());
    CHECK(db.last_migration()->steps == std::vector<std::string>{"compression none -> lz4"});
    CHECK(db.backups().size() == 1);  // the migration's backup
    auto users = db.collection<std::uint64_t, User>("users");
    auto by_email = users.index("by_email", &User::email, stowage::unique);
    CHECK(contents(users) == want);
    const auto found = by_email.find("42@example.com");
    REQUIRE(found.has_value());
    CHECK(found->second == want[42]);
    CHECK(db.collection<std::string, std::string>("notes").get("a") == std::string(300, 'x'));
  }
  CHECK(manifest_of(dir).compression == "lz4");
  Database<Lz4Compression> again(dir, small_options());  // no migration left
  CHECK_FALSE(again.last_migration().has_value());
  CHECK(contents(again.collection<std::uint64_t, User>("users")) == want);
}
