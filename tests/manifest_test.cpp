// Tests of MANIFEST encoding, atomic replacement and damage detection.
#include <catch2/catch.hpp>

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
  detail::KeyspaceState ks{"default", "str", "obj@3{i32,str}", 3, {}};
  for (std::uint64_t i = 0; i < 5; ++i) {
    detail::ChunkRef c;
    c.file = 10 + i;
    c.records = 100 + i;
    c.bytes = 4096 * (i + 1);
    c.max_seq = 1000 + i;
    c.first_key = "k" + std::to_string(i) + "a";
    c.last_key = "k" + std::to_string(i) + "z";
    ks.chunks.push_back(c);
  }
  m.keyspaces.push_back(ks);
  m.keyspaces.push_back(detail::KeyspaceState{"other", "i64", "f64", 0, {}});
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
