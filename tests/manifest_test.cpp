// Tests of MANIFEST encoding, atomic replacement and damage detection.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <vector>

#include <stowage/manifest.hpp>

#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;

namespace {
detail::Manifest sample() {
  detail::Manifest m;
  m.serializer = "binary-1";
  m.compression = "lz4";
  m.compression_id = 1;
  m.last_seq = 12345;
  m.next_file = 40;
  m.wal_start = 38;
  detail::KeyspaceState ks{"default", "str", "obj@3{i32,str}", 3, 0, {}};
  for (std::uint64_t i = 0; i < 5; ++i) {
    detail::ChunkRef c;
    c.file = 10 + i;
    c.records = 100 + i;
    c.bytes = 4096 * (i + 1);
    c.max_seq = 1000 + i;
    c.first_key = "k" + std::to_string(i) + "a";
    c.last_key = "k" + std::to_string(i) + "z";
    c.level = detail::kLastLevel;
    ks.chunks.push_back(c);
    ks.live += static_cast<std::int64_t>(c.records);
  }
  m.keyspaces.push_back(ks);
  m.keyspaces.push_back(detail::KeyspaceState{"other", "i64", "f64", 0, 0, {}});
  return m;
}
}  // namespace

TEST_CASE("manifest round trips through a file") {
  TempDir dir("manifest");
  auto m = sample();
  detail::write_manifest(*default_file_system(), dir.path(), m);
  CHECK_FALSE(std::filesystem::exists(dir / "MANIFEST.tmp"));
  auto back = detail::read_manifest(*default_file_system(), dir.path());
  CHECK(back.format_major == detail::kFormatMajor);
  CHECK(back.serializer == "binary-1");
  CHECK(back.compression == "lz4");
  CHECK(back.compression_id == 1);
  CHECK(back.keyspaces[0].key_order == "str");
  CHECK(back.keyspaces[0].value_type == "obj@3{i32,str}");
  CHECK(back.keyspaces[0].schema_version == 3);
  CHECK(back.keyspaces[1].key_order == "i64");
  CHECK(back.keyspaces[1].value_type == "f64");
  CHECK(back.keyspaces[1].schema_version == 0);
  CHECK(back.last_seq == 12345);
  CHECK(back.next_file == 40);
  CHECK(back.wal_start == 38);
  REQUIRE(back.keyspaces.size() == 2);
  CHECK(back.keyspaces[1].name == "other");
  REQUIRE(back.keyspaces[0].chunks.size() == 5);
  CHECK(back.keyspaces[0].chunks[4].file == 14);
  CHECK(back.keyspaces[0].chunks[4].last_key == "k4z");
}

TEST_CASE("every flipped byte and every truncation of a manifest is a CorruptionError") {
  auto bytes = detail::encode_manifest(sample());
  std::filesystem::path file = "MANIFEST";
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    // A flip in the major version makes it "newer": a MigrationError, also clear.
    bool clear = false;
    try {
      detail::decode_manifest(bad, file);
    } catch (const CorruptionError& e) {
      clear = std::string(e.what()).find("MANIFEST") != std::string::npos;
    } catch (const MigrationError&) {
      clear = i >= 8 && i < 10;
    }
    CHECK(clear);
  }
  for (std::size_t n = 0; n < bytes.size(); ++n) CHECK_THROWS_AS(detail::decode_manifest(bytes.substr(0, n), file), CorruptionError);
  CHECK_THROWS_AS(detail::decode_manifest(std::string(bytes.size(), '\0'), file), CorruptionError);
}

TEST_CASE("a manifest from a newer major format is refused with a clear error") {
  auto m = sample();
  m.format_major = detail::kFormatMajor + 1;
  auto bytes = detail::encode_manifest(m);
  CHECK_THROWS_WITH(detail::decode_manifest(bytes, "MANIFEST"), Catch::Contains("newer"));
}

TEST_CASE("overlapping chunk ranges are corruption") {
  auto m = sample();
  m.keyspaces[0].chunks[2].first_key = "k1b";  // overlaps chunk 1
  CHECK_THROWS_AS(detail::decode_manifest(detail::encode_manifest(m), "MANIFEST"), CorruptionError);
}

TEST_CASE("a manifest the reader would refuse is never written") {
  TempDir dir("manifest");
  auto good = sample();
  detail::write_manifest(*default_file_system(), dir.path(), good);
  auto m = sample();
  m.keyspaces[0].chunks[2].first_key = "k1b";  // overlaps chunk 1
  CHECK_THROWS_WITH(detail::write_manifest(*default_file_system(), dir.path(), m),
                    Catch::Contains("chunk files 11 and 12") && Catch::Contains("overlap"));
  m = sample();
  std::swap(m.keyspaces[0].chunks[0], m.keyspaces[0].chunks[3]);  // out of order
  CHECK_THROWS_AS(detail::write_manifest(*default_file_system(), dir.path(), m), std::logic_error);
  // The good manifest stays.
  auto back = detail::read_manifest(*default_file_system(), dir.path());
  REQUIRE(back.keyspaces[0].chunks.size() == 5);
  CHECK(back.keyspaces[0].chunks[2].first_key == "k2a");
}

TEST_CASE("format 3 keeps each chunk's level and run, and the live count") {
  auto m = sample();
  auto& chunks = m.keyspaces[0].chunks;
  // Two level-0 runs (newest first; they overlap each other), a level-3 file.
  chunks[0].level = 0;
  chunks[0].run = 30;
  chunks[1].level = 0;
  chunks[1].run = 20;
  chunks[1].first_key = "k0b";  // overlaps the newer run: allowed
  chunks[2].level = 3;
  m.keyspaces[0].live = 77;
  auto back = detail::decode_manifest(detail::encode_manifest(m), "MANIFEST");
  const auto& b = back.keyspaces[0];
  CHECK(b.live == 77);
  REQUIRE(b.chunks.size() == 5);
  CHECK(b.chunks[0].level == 0);
  CHECK(b.chunks[0].run == 30);
  CHECK(b.chunks[1].run == 20);
  CHECK(b.chunks[2].level == 3);
  CHECK(b.chunks[3].level == detail::kLastLevel);

  auto bad = m;
  bad.keyspaces[0].chunks[2].level = 0;  // level 0 after level 0's runs... but run 0 sorts last: fine
  bad.keyspaces[0].chunks[2].run = 40;   // a newer run listed after older ones: out of order
  CHECK_THROWS_AS(detail::decode_manifest(detail::encode_manifest(bad), "MANIFEST"), CorruptionError);
  bad = m;
  bad.keyspaces[0].chunks[2].run = 5;  // below level 0, a run number is corruption
  CHECK_THROWS_AS(detail::decode_manifest(detail::encode_manifest(bad), "MANIFEST"), CorruptionError);
  bad = m;
  bad.keyspaces[0].chunks[2].level = detail::kLevels;  // no such level
  CHECK_THROWS_AS(detail::decode_manifest(detail::encode_manifest(bad), "MANIFEST"), CorruptionError);
}

TEST_CASE("a format-2 manifest decodes with every chunk at the last level, all live") {
  auto m = sample();
  m.format_major = 2;
  auto back = detail::decode_manifest(detail::encode_manifest(m), "MANIFEST");
  CHECK(back.format_major == 2);
  std::uint64_t records = 0;
  for (const auto& c : back.keyspaces[0].chunks) {
    CHECK(c.level == detail::kLastLevel);
    CHECK(c.run == 0);
    records += c.records;
  }
  CHECK(back.keyspaces[0].live == static_cast<std::int64_t>(records));
  // Format 2 cannot hold levels.
  m.keyspaces[0].chunks[0].level = 0;
  CHECK_THROWS(detail::encode_manifest(m));
}

TEST_CASE("an oversized manifest file is refused before it is read") {
  TempDir dir("manifest");
  stowage_test::write_all(dir / "MANIFEST", "STWMANIF");
  std::filesystem::resize_file(dir / "MANIFEST", detail::kManifestMaxBytes + 1);
  CHECK_THROWS_AS(detail::read_manifest(*default_file_system(), dir.path()), CorruptionError);
}

TEST_CASE("a format-1 manifest decodes with its one set of types in every keyspace") {
  auto m = sample();
  m.keyspaces[1] = m.keyspaces[0];
  m.keyspaces[1].name = "other";
  m.keyspaces[1].chunks.clear();
  m.format_major = 1;
  auto bytes = detail::encode_manifest(m);
  auto back = detail::decode_manifest(bytes, "MANIFEST");
  CHECK(back.format_major == 1);
  REQUIRE(back.keyspaces.size() == 2);
  for (const auto& ks : back.keyspaces) {
    CHECK(ks.key_order == "str");
    CHECK(ks.value_type == "obj@3{i32,str}");
    CHECK(ks.schema_version == 3);
  }
  CHECK(back.keyspaces[0].chunks.size() == 5);
  // Format 1 cannot say that keyspaces differ.
  CHECK_THROWS_AS(detail::encode_manifest([&] {
                    auto d = sample();
                    d.format_major = 1;
                    return d;
                  }()),
                  Error);
  // Every damaged byte of a format-1 manifest is caught as well.
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x04);
    bool clear = false;
    try {
      detail::decode_manifest(bad, "MANIFEST");
    } catch (const CorruptionError&) {
      clear = true;
    } catch (const MigrationError&) {
      clear = i >= 8 && i < 10;
    }
    CHECK(clear);
  }
}

TEST_CASE("a keyspace listed twice is corruption") {
  auto m = sample();
  m.keyspaces[1].name = "default";
  CHECK_THROWS_WITH(detail::decode_manifest(detail::encode_manifest(m), "MANIFEST"), Catch::Contains("twice"));
}

TEST_CASE("format 4 keeps each chunk's uncounted records and a live count below zero; format 3 has neither") {
  auto m = sample();
  REQUIRE(m.format_major >= 4);
  auto& chunks = m.keyspaces[0].chunks;
  chunks[0].uncounted = chunks[0].records;
  chunks[2].uncounted = 1;
  for (std::int64_t live : {std::int64_t{-1}, std::int64_t{-123456789012}, std::int64_t{0}, std::int64_t{5},
                            std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()}) {
    INFO("live " << live);
    m.keyspaces[0].live = live;
    const auto back = detail::decode_manifest(detail::encode_manifest(m), "MANIFEST");
    CHECK(back.keyspaces[0].live == live);
    CHECK(back.keyspaces[0].chunks[0].uncounted == chunks[0].records);
    CHECK(back.keyspaces[0].chunks[1].uncounted == 0);
    CHECK(back.keyspaces[0].chunks[2].uncounted == 1);
  }
  // More uncounted records than records is corruption.
  chunks[1].uncounted = chunks[1].records + 1;
  m.keyspaces[0].live = 3;
  CHECK_THROWS_AS(detail::decode_manifest(detail::encode_manifest(m), "MANIFEST"), CorruptionError);
  // Format 3 stores neither: its chunks are all counted and its count is exact.
  chunks[1].uncounted = 0;
  m.format_major = 3;
  const auto v3 = detail::decode_manifest(detail::encode_manifest(m), "MANIFEST");
  CHECK(v3.format_major == 3);
  CHECK(v3.keyspaces[0].live == 3);
  for (const auto& c : v3.keyspaces[0].chunks) CHECK(c.uncounted == 0);
}

TEST_CASE("format 5 keeps the layout, the collection table and the dropped ids") {
  auto m = sample();
  m.layout = detail::Layout::prefixed;
  m.next_collection_id = 300;
  m.collections.push_back(detail::CollectionState{"users", 1, "u64", "binary-1", "obj@1{str,str}", 1});
  m.collections.push_back(detail::CollectionState{"edges", 299, "tuple(u64,u64)", "msgpack", "", 0});
  m.dropped = {7, 250};
  const auto back = detail::decode_manifest(detail::encode_manifest(m), "MANIFEST");
  CHECK(back.format_major == 5);
  CHECK(back.layout == detail::Layout::prefixed);
  CHECK(back.next_collection_id == 300);
  REQUIRE(back.collections.size() == 2);
  CHECK(back.collections[0].name == "users");
  CHECK(back.collections[0].value_type == "obj@1{str,str}");
  CHECK(back.collections[0].schema_version == 1);
  CHECK(back.collections[1].id == 299);
  CHECK(back.collections[1].key_order == "tuple(u64,u64)");
  CHECK(back.collections[1].serializer == "msgpack");
  CHECK(back.dropped == std::vector<std::uint32_t>{7, 250});
  REQUIRE(back.collection("edges"));
  CHECK(back.collection("edges")->id == 299);
  CHECK_FALSE(back.collection("nodes"));

  // A format 4 manifest cannot hold them.
  m.format_major = 4;
  CHECK_THROWS_AS(detail::encode_manifest(m), Error);
  // A bare store with the fields at their defaults reads back bare.
  const auto bare = detail::decode_manifest(detail::encode_manifest(sample()), "MANIFEST");
  CHECK(bare.layout == detail::Layout::bare);
  CHECK(bare.collections.empty());
}

TEST_CASE("a hostile collection table is a CorruptionError") {
  auto good = sample();
  good.layout = detail::Layout::prefixed;
  good.next_collection_id = 10;
  good.collections.push_back(detail::CollectionState{"a", 1, "u64", "b", "", 0});
  good.collections.push_back(detail::CollectionState{"b", 2, "u64", "b", "", 0});
  REQUIRE_NOTHROW(detail::decode_manifest(detail::encode_manifest(good), "MANIFEST"));
  auto refused = [](detail::Manifest m, const char* what) {
    INFO(what);
    CHECK_THROWS_AS(detail::decode_manifest(detail::encode_manifest(m), "MANIFEST"), CorruptionError);
  };
  auto m = good;
  m.collections[0].id = 0;
  refused(m, "id 0 is the default collection's");
  m = good;
  m.collections[1].id = 10;
  refused(m, "an id not below the next id");
  m = good;
  m.collections[1].id = 1;
  refused(m, "an id listed twice");
  m = good;
  m.collections[1].name = "a";
  refused(m, "a name listed twice");
  m = good;
  m.collections[1].name = "default";
  refused(m, "the default collection's name");
  m = good;
  m.collections[1].name = "";
  refused(m, "an empty name");
  m = good;
  std::swap(m.collections[0], m.collections[1]);
  refused(m, "out of id order");
  m = good;
  m.layout = detail::Layout::bare;
  refused(m, "a bare store with collections");
  m = good;
  m.layout = static_cast<detail::Layout>(2);
  refused(m, "no such layout");
  m = good;
  m.next_collection_id = 0;
  refused(m, "next id 0");
  m = good;
  m.dropped = {2};
  refused(m, "a dropped id that is also a collection's");
  m = good;
  m.dropped = {5, 5};
  refused(m, "a dropped id listed twice");
  m = good;
  m.dropped = {11};
  refused(m, "a dropped id not below the next id");

  // Indexes: each follows the collection it indexes; names are unique per collection.
  auto with_index = good;
  detail::CollectionState ix{"by_x", 3, "str", "", "", 0};
  ix.kind = detail::CollectionKind::unique_index;
  ix.parent = 1;
  ix.index_version = 4;
  ix.ready = false;
  with_index.collections.push_back(ix);
  ix.id = 4;
  ix.parent = 0;  // the default collection's index of the same name
  ix.kind = detail::CollectionKind::multi_index;
  with_index.collections.push_back(ix);
  const auto back = detail::decode_manifest(detail::encode_manifest(with_index), "MANIFEST");
  REQUIRE(back.index(1, "by_x"));
  CHECK(back.index(1, "by_x")->index_version == 4);
  CHECK_FALSE(back.index(1, "by_x")->ready);
  CHECK(back.index(0, "by_x")->kind == detail::CollectionKind::multi_index);
  CHECK_FALSE(back.collection("by_x"));
  m = with_index;
  m.collections[2].kind = static_cast<detail::CollectionKind>(3);
  refused(m, "no such kind");
  m = with_index;
  m.collections[2].parent = 7;
  refused(m, "an index of a collection not listed");
  m = with_index;
  m.collections[2].parent = 2;
  m.collections[3].parent = 2;
  refused(m, "one index name twice in a collection");
  m = with_index;
  m.collections[2].ids_reserved = 5;
  refused(m, "an index reserving ids");
  m = with_index;
  m.collections[0].index_version = 1;
  refused(m, "a collection with index fields");
  m = with_index;
  std::swap(m.collections[1], m.collections[2]);
  m.collections[1].parent = 2;  // indexes a collection listed after it
  refused(m, "an index before its collection");
}
