// Tests of versioned migrations: the Migrator's path search, upgrades at
// open (typed and byte steps, skipping steps, dropping records), downgrades
// with migrate_to, backups, migration_status, failures that leave the store
// untouched, logging, and the format-1 and format-2 fixture stores of tests/data/.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <stowage/stowage.hpp>

#include "data/fixture_v1.hpp"
#include "data/fixture_v2.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;
namespace fs = std::filesystem;

namespace {

struct PersonV1 {
  static constexpr unsigned version = 1;
  std::string name;  // "First Last"
  int age = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & name & age;
  }
  friend bool operator==(const PersonV1&, const PersonV1&) = default;
};

struct PersonV2 {
  static constexpr unsigned version = 2;
  std::string first, last;
  int age = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & first & last & age;
  }
  friend bool operator==(const PersonV2&, const PersonV2&) = default;
};

struct PersonV3 {
  static constexpr unsigned version = 3;
  std::string first, last;
  int birth_year = 0;
  std::vector<std::string> tags;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & first & last & birth_year & tags;
  }
  friend bool operator==(const PersonV3&, const PersonV3&) = default;
};

using stowage_fixture::ReadingV1;

// A serializer with another id (the bytes are BinarySerializer's).
struct OtherSerializer {
  static constexpr std::string_view id() { return "other-1"; }
  template <class T>
  static void serialize(const T& v, std::string& out) {
    BinarySerializer::serialize(v, out);
  }
  template <class T>
  static T deserialize(std::string_view b) {
    return BinarySerializer::deserialize<T>(b);
  }
};

// Version 1, but not the type the store holds.
struct ImpostorV1 {  // version 1, but not the type the store holds
  static constexpr unsigned version = 1;
  int x = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & x;
  }
};

// PersonV1 changed without raising its version.
struct ChangedV1 {
  static constexpr unsigned version = 1;
  std::string name;
  double age = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & name & age;
  }
};

struct ReadingV2 {  // the fixture's next schema version
  static constexpr unsigned version = 2;
  std::string entity;
  double total = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & entity & total;
  }
};

PersonV2 v1_to_v2(const PersonV1& p) {
  auto space = p.name.find(' ');
  return {p.name.substr(0, space), space == std::string::npos ? "" : p.name.substr(space + 1), p.age};
}
PersonV3 v2_to_v3(const PersonV2& p) { return {p.first, p.last, 2026 - p.age, {"migrated"}}; }
PersonV2 v3_to_v2(const PersonV3& p) { return {p.first, p.last, 2026 - p.birth_year}; }

using Store1 = Storage<std::string, PersonV1>;
using Store2 = Storage<std::string, PersonV2>;
using Store3 = Storage<std::string, PersonV3>;

Options small_options() {
  Options o;
  o.cache_bytes = 256 << 10;
  o.block_bytes = 512;
  o.chunk_bytes = 4096;
  return o;
}

std::string key(int i) { return "person-" + std::to_string(1000 + i); }
PersonV1 person(int i) { return {"First" + std::to_string(i) + " Last" + std::to_string(i), 20 + i % 50}; }

/// A version-1 store of n people: most in chunks, the last 20 only in the WAL.
void make_v1_store(const fs::path& dir, int n) {
  Options o = small_options();
  o.checkpoint_on_close = false;
  Store1 db(dir, o);
  for (int i = 0; i < n - 20; ++i) db.put(key(i), person(i));
  db.checkpoint();
  for (int i = n - 20; i < n; ++i) db.put(key(i), person(i));
  db.erase(key(0));
  db.flush();
}

Migrator all_steps() {
  Migrator m;
  m.add<PersonV1, PersonV2>(v1_to_v2);
  m.add<PersonV2, PersonV3>(v2_to_v3);
  m.add<PersonV3, PersonV2>(v3_to_v2);
  return m;
}

/// Every regular file of a directory with its bytes.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != "LOCK")
      out[e.path().filename().string()] = stowage_test::read_all(e.path());
  return out;
}

std::vector<fs::path> backups_of(const fs::path& dir) {
  std::vector<fs::path> out;
  const auto prefix = dir.filename().string() + ".backup-";
  for (auto& e : fs::directory_iterator(dir.parent_path()))
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
  return out;
}

struct LogLines {
  std::mutex mu;
  std::vector<std::string> lines;
  Logger logger() {
    return [this](LogLevel, std::string_view line) {
      std::lock_guard g(mu);
      lines.emplace_back(line);
    };
  }
  bool has(const std::string& part) {
    std::lock_guard g(mu);
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(part) != std::string::npos; });
  }
};

}  // namespace

TEST_CASE("Migrator finds the shortest path, also over steps that skip versions") {
  Migrator m;
  m.add(1, 2, [](std::string_view v) { return std::string(v); });
  m.add(2, 3, [](std::string_view v) { return std::string(v); });
  m.add(3, 4, [](std::string_view v) { return std::string(v); });
  m.add(4, 3, [](std::string_view v) { return std::string(v); });
  auto names = [](const std::vector<const MigrationStep*>& p) {
    std::string s;
    for (auto* st : p) s += st->name() + " ";
    return s;
  };
  CHECK(names(*m.path(1, 4)) == "1->2 2->3 3->4 ");
  CHECK(names(*m.path(4, 3)) == "4->3 ");
  CHECK(m.path(2, 2)->empty());
  CHECK_FALSE(m.path(4, 1).has_value());
  CHECK_FALSE(m.path(1, 9).has_value());
  m.add(1, 3, [](std::string_view v) { return std::string(v); });
  CHECK(names(*m.path(1, 4)) == "1->3 3->4 ");
  CHECK(m.describe() == "1->2, 2->3, 3->4, 4->3, 1->3");
  CHECK_THROWS_AS(m.add(1, 2, [](std::string_view v) { return std::string(v); }), ValidationError);
  CHECK_THROWS_AS(m.add(5, 5, [](std::string_view v) { return std::string(v); }), ValidationError);
  CHECK(Migrator().describe() == "none");
}

TEST_CASE("opening a version-1 store with a version-3 program runs 1->2->3 once, after a backup") {
  TempDir tmp("migrate");
  const auto dir = tmp / "people";
  make_v1_store(dir, 300);
  LogLines log;
  Options o = small_options();
  o.logger = log.logger();
  {
    Store3 db(dir, o, all_steps());
    REQUIRE(db.last_migration().has_value());
    const auto& r = *db.last_migration();
    CHECK(r.from_version == 1);
    CHECK(r.to_version == 3);
    CHECK(r.steps == std::vector<std::string>{"1->2", "2->3"});
    CHECK(r.records == 299);
    CHECK(r.dropped == 0);
    CHECK(db.size() == 299);
    CHECK_FALSE(db.contains(key(0)));
    for (int i = 1; i < 300; ++i) {
      auto p = db.get(key(i));
      REQUIRE(p);
      CHECK(*p == v2_to_v3(v1_to_v2(person(i))));
    }
    // The backup is a complete version-1 store beside it, never with LOCK.
    REQUIRE(fs::exists(r.backup));
    CHECK(r.backup.parent_path() == fs::absolute(dir).parent_path());
    CHECK_FALSE(fs::exists(r.backup / "LOCK"));
    CHECK(log.has("start"));
    CHECK(log.has("step 1->2"));
    CHECK(log.has("step 2->3"));
    CHECK(log.has("backup of the store taken at " + r.backup.string()));
    CHECK(log.has("done"));
    Store1 old(r.backup, small_options());
    CHECK(old.size() == 299);
    CHECK(*old.get(key(299)) == person(299));
  }
  // Once is enough: the next open runs nothing, and needs no Migrator.
  Store3 again(dir, small_options());
  CHECK_FALSE(again.last_migration().has_value());
  CHECK(again.size() == 299);
  CHECK(backups_of(dir).size() == 1);
  auto st = migration_status(dir, all_steps(), 3);
  CHECK(st.schema_version == 3);
  CHECK(st.up_to_date());
}

TEST_CASE("a step that skips versions is preferred when it is shorter") {
  TempDir tmp("migrate");
  const auto dir = tmp / "people";
  make_v1_store(dir, 100);
  int via_two = 0;
  Migrator m;
  m.add<PersonV1, PersonV2>([&](PersonV1 p) {
    ++via_two;
    return v1_to_v2(p);
  });
  m.add<PersonV2, PersonV3>(v2_to_v3);
  m.add<PersonV1, PersonV3>([](PersonV1 p) {
    auto v3 = v2_to_v3(v1_to_v2(p));
    v3.tags = {"direct"};
    return v3;
  });
  Store3 db(dir, small_options(), m);
  CHECK(db.last_migration()->steps == std::vector<std::string>{"1->3"});
  CHECK(via_two == 0);
  CHECK(db.get(key(5))->tags == std::vector<std::string>{"direct"});
}

TEST_CASE("no path: MigrationError naming both versions and the steps there are; the store is untouched") {
  TempDir tmp("migrate");
  const auto dir = tmp / "people";
  make_v1_store(dir, 100);
  const auto before = snapshot(dir);
  Migrator only_one;
  only_one.add<PersonV1, PersonV2>(v1_to_v2);
  try {
    Store3 db(dir, small_options(), only_one);
    FAIL("opened without a path");
  } catch (const MigrationError& e) {
    const std::string what = e.what();
    CHECK(what.find("from value schema version 1 to 3") != std::string::npos);
    CHECK(what.find("registered: 1->2") != std::string::npos);
    CHECK(what.find(dir.string()) != std::string::npos);
  }
  CHECK_THROWS_WITH(Store3(dir, small_options()), Catch::Contains("no Migrator was given"));
  CHECK(snapshot(dir) == before);
  CHECK(backups_of(dir).empty());
  // A read_only open cannot migrate either, and changes nothing.
  Options ro = small_options();
  ro.read_only = true;
  CHECK_THROWS_WITH(Store3(dir, ro, all_steps()), Catch::Contains("read_only"));
  CHECK(snapshot(dir) == before);
  Store1 still(dir, small_options());
  CHECK(still.size() == 99);
}

TEST_CASE("a step that throws names the key and leaves the store as it was") {
  TempDir tmp("migrate");
  const auto dir = tmp / "people";
  make_v1_store(dir, 200);
  const auto before = snapshot(dir);
  LogLines log;
  Options o = small_options();
  o.logger = log.logger();
  Migrator m;
  m.add<PersonV1, PersonV2>([](PersonV1 p) {
    if (p.name == person(150).name) throw std::runtime_error("bad record");
    return v1_to_v2(p);
  });
  m.add<PersonV2, PersonV3>(v2_to_v3);
  CHECK_THROWS_WITH(Store3(dir, o, m), Catch::Contains("step 1->2 failed on key \"" + key(150) + "\"") &&
                                           Catch::Contains("bad record") && Catch::Contains("unchanged"));
  CHECK(log.has("migration failed"));
  CHECK(snapshot(dir) == before);  // not a byte changed, no file left behind
  CHECK(backups_of(dir).size() == 1);
  Store1 old(dir, small_options());
  CHECK(old.size() == 199);
  CHECK(*old.get(key(199)) == person(199));
}

TEST_CASE("a step on bytes can drop records; migrate_to runs a registered downgrade") {
  TempDir tmp("migrate");
  const auto dir = tmp / "people";
  make_v1_store(dir, 120);
  {
    Migrator m = all_steps();
    Store3 db(dir, small_options(), m);
    CHECK(db.size() == 119);
  }
  // The version-3 program rolls the store back to version 2 for an older release.
  auto st = Store3::migration_status(dir, all_steps());
  CHECK(st.schema_version == 3);
  CHECK(st.up_to_date());
  auto report = Store3::migrate_to(dir, 2, all_steps(), small_options());
  CHECK(report.steps == std::vector<std::string>{"3->2"});
  CHECK(report.records == 119);
  CHECK(migration_status(dir).schema_version == 2);
  {
    Store2 db(dir, small_options());  // the older program opens it without any Migrator
    CHECK(db.size() == 119);
    CHECK(*db.get(key(7)) == v1_to_v2(person(7)));
  }
  // Byte steps: 2 -> 4 drops every person whose key ends in 0, keeping bytes.
  Migrator bytes;
  bytes.add(2, 4, [](std::string_view v) -> std::optional<std::string> {
    auto p = BinarySerializer::deserialize<PersonV2>(v);
    if (p.first.back() == '0') return std::nullopt;
    return std::string(v);
  });
  auto dropped = Store3::migrate_to(dir, 4, bytes, small_options());
  CHECK(dropped.dropped == 11);  // 10, 20, ..., 110 (0 was erased)
  CHECK(dropped.records == 108);
  auto st4 = migration_status(dir);
  CHECK(st4.schema_version == 4);
  CHECK(st4.value_type.empty());  // a byte step does not know the new type
  CHECK(backups_of(dir).size() == 3);
}

TEST_CASE("migration_status reads versions and pending steps without the lock") {
  TempDir tmp("migrate");
  const auto dir = tmp / "people";
  make_v1_store(dir, 50);
  Store1 open_elsewhere(dir, small_options());  // holds LOCK
  auto st = migration_status(dir, all_steps(), 3);
  CHECK(st.format_version == detail::kFormatMajor);
  CHECK(st.schema_version == 1);
  CHECK(st.value_type == type_description<PersonV1>());
  CHECK(st.pending == std::vector<std::string>{"1->2", "2->3"});
  CHECK(st.path_found);
  CHECK_FALSE(st.up_to_date());
  auto none = migration_status(dir, {}, 3);
  CHECK_FALSE(none.path_found);
  CHECK(none.pending.empty());
  CHECK(migration_status(dir).up_to_date());
  CHECK_THROWS_AS(migration_status(tmp / "nothing"), ValidationError);
}

TEST_CASE("steps must fit the stored and wanted types and the store's serializer") {
  TempDir tmp("migrate");
  const auto dir = tmp / "people";
  make_v1_store(dir, 30);
  const auto before = snapshot(dir);
  Migrator wrong_serializer;
  wrong_serializer.add<PersonV1, PersonV3, OtherSerializer>([](PersonV1 p) { return v2_to_v3(v1_to_v2(p)); });
  CHECK_THROWS_WITH(Store3(dir, small_options(), wrong_serializer), Catch::Contains("serializer 'other-1'"));

  Migrator wrong_type;
  wrong_type.add<ImpostorV1, PersonV3>([](ImpostorV1) { return PersonV3{}; });
  CHECK_THROWS_WITH(Store3(dir, small_options(), wrong_type), Catch::Contains("reads values of type"));
  CHECK(snapshot(dir) == before);
  CHECK(backups_of(dir).empty());

  // A Value type that changed without raising its version is refused.
  CHECK_THROWS_WITH((Storage<std::string, ChangedV1>(dir, small_options())), Catch::Contains("raise its"));
}

TEST_CASE("backups go where Migrator::backup_to says") {
  TempDir tmp("migrate");
  const auto dir = tmp / "people";
  make_v1_store(dir, 40);
  Migrator m = all_steps();
  m.backup_to(tmp / "backups");
  fs::create_directories(tmp / "backups");
  Store2 db(dir, small_options(), m);
  const auto backup = db.last_migration()->backup;
  CHECK(backup.parent_path() == tmp / "backups");
  CHECK(backup.filename().string().find("people.backup-") == 0);
  CHECK(fs::exists(backup / "MANIFEST"));
}

TEST_CASE("the format-1 fixture opens read_only as it is, and is upgraded by a writable open") {
  TempDir tmp("fixture");
  const auto dir = tmp / "format-v1";
  fs::copy(fs::path(STOWAGE_TEST_SOURCE_DIR) / "data" / "format-v1", dir);
  const auto before = snapshot(dir);
  auto st = migration_status(dir);
  CHECK(st.format_version == 1);
  CHECK(st.schema_version == 1);
  CHECK(st.pending == std::vector<std::string>{"format 1->2", "format 2->3", "format 3->4", "format 4->5"});
  const auto expected = stowage_fixture::fixture_expected();
  auto check = [&](auto& db) {
    CHECK(db.size() == expected.size());
    std::size_t n = 0;
    for (const auto& [k, v] : db.scan()) {
      auto it = expected.find(k);
      REQUIRE(it != expected.end());
      CHECK(v == it->second);
      ++n;
    }
    CHECK(n == expected.size());
  };
  {
    Options ro = small_options();
    ro.read_only = true;
    Storage<std::string, ReadingV1> db(dir, ro);
    check(db);
  }
  CHECK(snapshot(dir) == before);
  {
    Storage<std::string, ReadingV1> db(dir, small_options());
    REQUIRE(db.last_migration());
    CHECK(db.last_migration()->steps == std::vector<std::string>{"format 1->2", "format 2->3", "format 3->4", "format 4->5"});
    CHECK(db.last_migration()->from_format == 1);
    CHECK(db.last_migration()->to_format == detail::kFormatMajor);
    check(db);
  }
  CHECK(migration_status(dir).format_version == detail::kFormatMajor);
  Storage<std::string, ReadingV1> db(dir, small_options());
  check(db);
}

TEST_CASE("the format-1 fixture upgrades its format and its values in one open") {
  TempDir tmp("fixture");
  const auto dir = tmp / "format-v1";
  fs::copy(fs::path(STOWAGE_TEST_SOURCE_DIR) / "data" / "format-v1", dir);
  Migrator m;
  m.add<ReadingV1, ReadingV2>([](ReadingV1 r) { return ReadingV2{r.entity, r.mean * static_cast<double>(r.count)}; });
  CHECK(migration_status(dir, m, 2).pending == std::vector<std::string>{"format 1->2", "format 2->3", "format 3->4", "format 4->5", "1->2"});
  Storage<std::string, ReadingV2> db(dir, small_options(), m);
  CHECK(db.last_migration()->steps == std::vector<std::string>{"format 1->2", "format 2->3", "format 3->4", "format 4->5", "1->2"});
  const auto expected = stowage_fixture::fixture_expected();
  CHECK(db.size() == expected.size());
  for (const auto& [k, v] : expected) {
    auto r = db.get(k);
    REQUIRE(r);
    CHECK(r->entity == v.entity);
    CHECK(r->total == v.mean * static_cast<double>(v.count));
  }
}

namespace {
// Opens the fixture store tests/data/<name> (written by fixture_v2.hpp's
// operations in on-disk format `major`) read_only, then writable, and checks
// every record each time.
void check_v2_operations_fixture(const std::string& name, unsigned major, std::size_t min_chunk_files) {
  namespace fx = stowage_fixture_v2;
  using Store = Storage<std::string, fx::ItemV2>;
  TempDir tmp("fixture2");
  const auto dir = tmp / name;
  fs::copy(fs::path(STOWAGE_TEST_SOURCE_DIR) / "data" / name, dir);
  const auto before = snapshot(dir);
  std::size_t chunk_files = 0;
  for (const auto& [name, bytes] : before) chunk_files += name.size() > 6 && name.substr(name.size() - 6) == ".chunk";
  CHECK(chunk_files >= min_chunk_files);
  const auto expected = fx::expected();
  REQUIRE(expected.size() == 531);
  auto manifest_major = [&] {
    return detail::decode_manifest(stowage_test::read_all(dir / "MANIFEST"), dir / "MANIFEST").format_major;
  };
  CHECK(manifest_major() == major);
  auto check = [&](const Store& db) {
    CHECK(db.size() == expected.size());
    std::size_t wrong = 0;
    for (const auto& [k, v] : expected) {
      const auto got = db.get(k);
      if (!got || !(*got == v)) ++wrong;
    }
    CHECK(wrong == 0);
    // Erased in the chunks, erased in the WAL, put and erased in the WAL, never put.
    for (int i : {3 + 11 * 2, 4 + 13, 2, 6, 641, 650, fx::kNeverPut, fx::kNeverPut + 1}) {
      INFO(fx::key(i));
      CHECK(db.contains(fx::key(i)) == (expected.count(fx::key(i)) == 1));
    }
    CHECK_FALSE(db.contains(fx::key(fx::kNeverPut)));
    CHECK_FALSE(db.contains(fx::key(650)));
    std::size_t n = 0, unexpected = 0;
    for (const auto& [k, v] : db.scan()) {
      const auto it = expected.find(k);
      if (it == expected.end() || !(it->second == v)) ++unexpected;
      ++n;
    }
    CHECK(n == expected.size());
    CHECK(unexpected == 0);
  };
  {
    Options ro = small_options();
    ro.read_only = true;
    const Store db(dir, ro);
    check(db);
  }
  CHECK(snapshot(dir) == before);  // not a byte changed, the WAL replayed in memory only
  {
    const Store db(dir, small_options());
    CHECK(manifest_major() == detail::kFormatMajor);
    check(db);
  }
  CHECK(manifest_major() == detail::kFormatMajor);
  Store db(dir, small_options());
  check(db);
  // Records written now (uncounted where their presence below is unknown)
  // over the old counted chunks, through compactions: the count stays exact.
  auto model = expected;
  for (int i = 0; i < 3000; ++i) {
    const std::string k = fx::key(i % 900);
    if (i % 5 == 0) {
      db.discard(k);
      model.erase(k);
    } else {
      fx::ItemV2 v{"n" + std::to_string(i), i, 0.5, {}};
      db.put(k, v);
      model[k] = v;
    }
    if (i % 1000 == 999) CHECK(db.size() == model.size());
  }
  db.compact();
  CHECK(db.size() == model.size());
  CHECK(db.stats().uncounted_records == 0);  // all at the last level: nothing below any of them
}
}  // namespace

TEST_CASE("the format-2 fixture opens read_only as it is, and writable with every record, its WAL replayed") {
  check_v2_operations_fixture("format-v2", 2, 3);
}

TEST_CASE("the format-3 fixture (every chunk record counted) opens read_only as it is, and writable with every record") {
  check_v2_operations_fixture("format-v3", 3, 2);
}

TEST_CASE("the format-4 fixture (no layout or collection table) opens read_only as it is, and writable with every record") {
  check_v2_operations_fixture("format-v4", 4, 2);
}

// ---- changing the Serializer or the Compression ------------------------------

namespace {

// BinarySerializer's bytes reversed: a serializer whose encoding really
// differs (each reads the other's bytes wrong or not at all).
struct ReversedSerializer {
  static constexpr std::string_view id() { return "reversed-1"; }
  template <class T>
  static std::string describe() {
    return "reversed:" + type_description<T>();
  }
  template <class T>
  static void serialize(const T& v, std::string& out) {
    std::string bytes;
    BinarySerializer::serialize(v, bytes);
    out.append(bytes.rbegin(), bytes.rend());
  }
  template <class T>
  static T deserialize(std::string_view b) {
    return BinarySerializer::deserialize<T>(std::string(b.rbegin(), b.rend()));
  }
};

// A user Compression with its own id (LZ4 with every byte flipped) that
// counts its calls: only it reads its blocks.
struct FlippedLz4 {
  static constexpr std::uint8_t id = 17;
  static constexpr std::string_view name = "flipped-lz4";
  static inline std::atomic<int> compressions{0};
  static void compress(std::string_view in, std::string& out) {
    Lz4Compression::compress(in, out);
    for (auto& c : out) c = static_cast<char>(~c);
    ++compressions;
  }
  static void decompress(std::string_view in, std::size_t raw_size, char* out) {
    std::string flipped(in);
    for (auto& c : flipped) c = static_cast<char>(~c);
    Lz4Compression::decompress(flipped, raw_size, out);
  }
};

// The message of the MigrationError fn throws ("" when it throws none).
template <class Fn>
std::string migration_message(Fn fn) {
  try {
    fn();
  } catch (const MigrationError& e) {
    return e.what();
  }
  return "";
}

template <class Store>
void check_people(Store& db, int n) {
  CHECK(db.size() == static_cast<std::size_t>(n - 1));
  CHECK_FALSE(db.contains(key(0)));
  for (int i = 1; i < n; ++i) {
    auto p = db.get(key(i));
    REQUIRE(p);
    CHECK(*p == person(i));
  }
}

}  // namespace

TEST_CASE("changing the Serializer is a migration: every value re-encoded after a backup") {
  TempDir tmp("migrate");
  const auto dir = tmp / "people";
  make_v1_store(dir, 300);  // BinarySerializer; the last records only in the WAL
  using Reversed1 = Storage<std::string, PersonV1, ReversedSerializer>;
  // Without the change registered: the error says how to migrate.
  CHECK_THAT(migration_message([&] { (void)Reversed1(dir, small_options()); }),
             Catch::Contains("binary-1") && Catch::Contains("reversed-1") && Catch::Contains("change_serializer"));
  CHECK(migration_status(dir, Migrator{}, 1).up_to_date());  // nothing changed
  // The Storage type's status knows its Serializer: the change is pending,
  // and without it registered no path leads there.
  const MigrationStatus refused = Reversed1::migration_status(dir);
  CHECK(refused.serializer == "binary-1");
  CHECK(refused.pending == std::vector<std::string>{"serializer binary-1 -> reversed-1"});
  CHECK_FALSE(refused.path_found);
  CHECK(Store1::migration_status(dir).up_to_date());
  Migrator m;
  m.change_serializer<PersonV1, BinarySerializer, ReversedSerializer>();
  const MigrationStatus planned = Reversed1::migration_status(dir, m);
  CHECK(planned.pending == std::vector<std::string>{"serializer binary-1 -> reversed-1"});
  CHECK(planned.path_found);
  {
    Reversed1 db(dir, small_options(), m);
    REQUIRE(db.last_migration().has_value());
    const auto& r = *db.last_migration();
    CHECK(r.steps == std::vector<std::string>{"serializer binary-1 -> reversed-1"});
    CHECK(r.records == 299);
    check_people(db, 300);
    db.put(key(0), person(0));
    // The backup is the store as it was: it opens with the old serializer.
    Store1 old(r.backup, small_options());
    CHECK(old.size() == 299);
    CHECK(*old.get(key(299)) == person(299));
  }
  // Every value is now in the new encoding: it reads back without the
  // Migrator, and the old serializer is the mismatch now.
  Reversed1 again(dir, small_options());
  CHECK_FALSE(again.last_migration().has_value());
  CHECK(again.size() == 300);
  for (const auto& [k, v] : again.scan()) CHECK(v == person(std::stoi(k.substr(7)) - 1000));
  again.close();
  CHECK_THROWS_AS(Store1(dir, small_options()), MigrationError);
}

TEST_CASE("a serializer change runs before the schema steps, and must be registered at the stored version") {
  TempDir tmp("migrate");
  const auto dir = tmp / "people";
  make_v1_store(dir, 120);
  {
    // Registered for version-2 values, but the store holds version 1.
    Migrator wrong;
    wrong.change_serializer<PersonV2, BinarySerializer, ReversedSerializer>();
    wrong.add<PersonV1, PersonV2, ReversedSerializer>(v1_to_v2);
    const auto before = snapshot(dir);
    CHECK_THAT(migration_message(
                   [&] { (void)(Storage<std::string, PersonV2, ReversedSerializer>(dir, small_options(), wrong)); }),
               Catch::Contains("schema version 2") && Catch::Contains("values are at version 1"));
    CHECK(snapshot(dir) == before);
    CHECK(backups_of(dir).empty());
  }
  Migrator m;
  m.change_serializer<PersonV1, BinarySerializer, ReversedSerializer>();
  m.add<PersonV1, PersonV2, ReversedSerializer>(v1_to_v2);
  Storage<std::string, PersonV2, ReversedSerializer> db(dir, small_options(), m);
  REQUIRE(db.last_migration().has_value());
  CHECK(db.last_migration()->steps == std::vector<std::string>{"serializer binary-1 -> reversed-1", "1->2"});
  CHECK(db.size() == 119);
  for (int i = 1; i < 120; ++i) CHECK(*db.get(key(i)) == v1_to_v2(person(i)));
}

TEST_CASE("changing the Compression is a migration, from any policy that the new one reads") {
  TempDir tmp("migrate");
  const auto dir = tmp / "people";
  make_v1_store(dir, 400);  // Lz4Compression, the default
  using Flipped = Storage<std::string, PersonV1, BinarySerializer, FlippedLz4>;
  CHECK_THAT(migration_message([&] { (void)Flipped(dir, small_options()); }),
             Catch::Contains("compression") && Catch::Contains("lz4") && Catch::Contains("flipped-lz4") &&
                 Catch::Contains("change_compression"));
  Migrator m;
  m.change_compression();
  // The Storage type's status knows its Compression.
  CHECK(Flipped::migration_status(dir).compression == "lz4");
  CHECK(Flipped::migration_status(dir).pending == std::vector<std::string>{"compression lz4 -> flipped-lz4"});
  CHECK_FALSE(Flipped::migration_status(dir).path_found);
  CHECK(Flipped::migration_status(dir, m).path_found);
  CHECK(Store1::migration_status(dir).up_to_date());
  const int before = FlippedLz4::compressions.load();
  {
    Flipped db(dir, small_options(), m);
    REQUIRE(db.last_migration().has_value());
    CHECK(db.last_migration()->steps == std::vector<std::string>{"compression lz4 -> flipped-lz4"});
    CHECK(FlippedLz4::compressions.load() > before);  // the new blocks went through it
    check_people(db, 400);
  }
  {
    Flipped db(dir, small_options());
    CHECK_FALSE(db.last_migration().has_value());
    check_people(db, 400);
  }
  // Lz4Compression cannot read flipped-lz4's blocks: a clear error, and the
  // store is left as it was.
  const auto kept = snapshot(dir);
  CHECK_THAT(migration_message([&] { (void)Store1(dir, small_options(), m); }),
             Catch::Contains("cannot read the old blocks"));
  CHECK(snapshot(dir) == kept);
  // An uncompressed store becomes an LZ4 one; a read_only open does not
  // migrate.
  const auto plain = tmp / "plain";
  {
    Storage<std::string, PersonV1, BinarySerializer, NoCompression> db(plain, small_options());
    for (int i = 1; i < 50; ++i) db.put(key(i), person(i));
  }
  {
    Options ro = small_options();
    ro.read_only = true;
    CHECK_THAT(migration_message([&] { (void)(Storage<std::string, PersonV1>(plain, ro, m)); }),
               Catch::Contains("read_only"));
  }
  Storage<std::string, PersonV1> lz4(plain, small_options(), m);
  REQUIRE(lz4.last_migration().has_value());
  CHECK(lz4.last_migration()->steps == std::vector<std::string>{"compression none -> lz4"});
  CHECK(lz4.size() == 49);
  CHECK(*lz4.get(key(49)) == person(49));
}
