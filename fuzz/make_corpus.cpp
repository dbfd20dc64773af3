// make_corpus: writes the seed corpus of stowage's fuzz targets with stowage's
// own writers (ChunkWriter, encode_manifest, WalWriter, BinarySerializer).
//   make_corpus [OUT_DIR]      (default: fuzz/corpus)
// Creates OUT_DIR/{chunk,manifest,wal,serializer}/ and writes one file per
// seed, with stable names; the output is deterministic, so rerunning it over
// the checked-in corpus changes nothing. Needs no fuzzer runtime: build it
// with any compiler, e.g.
//   g++ -std=c++20 -Iinclude fuzz/make_corpus.cpp -llz4 -o /tmp/make_corpus
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <stowage/chunk.hpp>
#include <stowage/compression.hpp>
#include <stowage/file.hpp>
#include <stowage/manifest.hpp>
#include <stowage/serializer.hpp>
#include <stowage/wal.hpp>

#include "serializer_types.hpp"

namespace fs = std::filesystem;
namespace sd = stowage::detail;

namespace {

std::size_t g_files = 0, g_bytes = 0;

void put(const fs::path& dir, const std::string& name, std::string_view bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("make_corpus: cannot write " + (dir / name).string());
  ++g_files;
  g_bytes += bytes.size();
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Rec {
  std::string key;
  std::uint64_t seq;
  std::string value;
  bool tomb = false;  // a tombstone (format 3 on; its value is empty)
  bool uncounted = false;  // not yet in the live count (format 4)
};

std::vector<Rec> records(int n, std::size_t value_bytes, bool compressible) {
  std::vector<Rec> out;
  for (int i = 0; i < n; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "key%05d", i * 7);
    std::string value;
    for (std::size_t j = 0; j < value_bytes; ++j)
      value.push_back(compressible ? static_cast<char>('a' + (j / 16) % 4)
                                   : static_cast<char>((i * 131 + j * 17 + (j * j) % 251) & 0xff));
    out.push_back({key, static_cast<std::uint64_t>(100 + i), value});
  }
  return out;
}

// Writes a chunk with ChunkWriter<C> (format `major`) through the POSIX file
// system and returns its bytes.
template <class C>
std::string chunk_bytes(const fs::path& tmp, const std::vector<Rec>& recs, std::size_t block_bytes,
                        std::uint16_t major = sd::chunk_format::kMajor) {
  const fs::path p = tmp / "seed.chunk";
  sd::ChunkWriter<C> w(*stowage::default_file_system(), p, block_bytes, major);
  for (const auto& r : recs) w.add(r.key, r.seq, r.value, r.tomb, r.uncounted);
  w.finish();
  return slurp(p);
}

// One decoded format-1 data block (full keys), as Block::parse(..., 1) expects.
std::string raw_block_v1(const std::vector<Rec>& recs) {
  std::string b;
  std::vector<std::uint32_t> offs;
  for (const auto& r : recs) {
    offs.push_back(static_cast<std::uint32_t>(b.size()));
    sd::put_bytes(b, r.key);
    sd::put_varint(b, r.seq);
    sd::put_bytes(b, r.value);
  }
  for (auto o : offs) sd::put_fixed32(b, o);
  sd::put_fixed32(b, static_cast<std::uint32_t>(offs.size()));
  return b;
}

// One decoded data block of format `major` (2 or 3), as ChunkWriter encodes
// it: the stored bytes of the first frame of an uncompressed chunk holding only recs.
std::string raw_block(const fs::path& tmp, const std::vector<Rec>& recs, std::uint16_t major) {
  const std::string file = chunk_bytes<stowage::NoCompression>(tmp, recs, std::size_t{1} << 20, major);
  return file.substr(16 + 17, sd::decode_fixed32(file.data() + 16 + 5));
}

// records(n, ...) with every third record (from the second) a tombstone.
std::vector<Rec> with_tombstones(std::vector<Rec> recs) {
  for (std::size_t i = 1; i < recs.size(); i += 3) {
    recs[i].tomb = true;
    recs[i].value.clear();
  }
  return recs;
}

// A whole format-1 chunk file (as stowage 0.1 wrote them, still read): one
// uncompressed data block per group of records, laid out by docs/format.md.
std::string chunk_v1(const std::vector<std::vector<Rec>>& blocks) {
  std::string header = "STWCHUNK";
  sd::put_fixed16(header, 1);
  sd::put_fixed16(header, 0);
  header.push_back('\0');
  header.append(3, '\0');
  auto frame = [](const std::string& raw, std::uint64_t seed) {
    std::string head(1, '\0');
    sd::put_fixed32(head, static_cast<std::uint32_t>(raw.size()));
    sd::put_fixed32(head, static_cast<std::uint32_t>(raw.size()));
    std::string f = head;
    sd::put_fixed64(f, sd::frame_checksum(head, raw, seed));
    return f + raw;
  };
  std::string data, index;
  sd::BloomFilterBuilder bloom;
  std::uint64_t records = 0, max_seq = 0;
  for (const auto& recs : blocks) {
    const std::string f = frame(raw_block_v1(recs), sd::chunk_format::kDataSeed);
    sd::put_fixed64(index, header.size() + data.size());
    sd::put_fixed32(index, static_cast<std::uint32_t>(f.size()));
    sd::put_bytes(index, recs.front().key);
    data += f;
    for (const auto& r : recs) {
      bloom.add(sd::bloom_hash(r.key));
      max_seq = std::max(max_seq, r.seq);
      ++records;
    }
  }
  std::string meta;
  sd::put_varint(meta, blocks.size());
  meta += index;
  sd::put_bytes(meta, blocks.back().back().key);
  sd::put_varint(meta, records);
  sd::put_varint(meta, max_seq);
  sd::put_bytes(meta, bloom.finish());
  std::string file = header + data;
  const std::uint64_t meta_offset = file.size();
  const std::string mf = frame(meta, sd::chunk_format::kMetaSeed);
  file += mf;
  std::string footer;
  sd::put_fixed64(footer, meta_offset);
  sd::put_fixed64(footer, mf.size());
  sd::put_fixed64(footer, sd::checksum(header + footer, sd::chunk_format::kFooterSeed));
  footer += "STWCHEND";
  return file + footer;
}

void chunk_corpus(const fs::path& out, const fs::path& tmp) {
  const fs::path dir = out / "chunk";
  // Mode byte: bit 0 = reader policy (1 = Lz4), bit 2 = raw Block::parse,
  // bit 3 = (raw) as a format-1 block, bit 4 = (raw) as a format-3 block,
  // bit 5 = (raw) as a format-4 block.
  // ChunkWriter writes format 4, and formats 3 and 2 when asked (the v3_ and v2_ seeds).
  auto both = [&](const std::string& name, const std::vector<Rec>& recs, std::size_t block_bytes,
                  std::uint16_t major = sd::chunk_format::kMajor) {
    put(dir, "none_" + name, std::string(1, '\0') + chunk_bytes<stowage::NoCompression>(tmp, recs, block_bytes, major));
    put(dir, "lz4_" + name, std::string(1, '\1') + chunk_bytes<stowage::Lz4Compression>(tmp, recs, block_bytes, major));
  };
  both("empty", {}, 4096);
  both("one_record", {{"k", 1, "v"}}, 4096);
  both("empty_key_value", {{"", 0, ""}, {"a", 2, ""}, {"b", 1, "x"}}, 4096);
  both("huge_seq", {{"a", sd::chunk_format::kMaxSeq, "max"}, {"b", std::uint64_t{1} << 61, "half"}}, 4096);
  {
    // Format 4's uncounted flags, on puts and tombstones, over several blocks.
    auto recs = with_tombstones(records(40, 24, false));
    for (std::size_t i = 0; i < recs.size(); i += 2) recs[i].uncounted = true;
    both("uncounted", recs, 200);
    both("one_uncounted_tombstone", {{"k", 7, "", true, true}}, 4096);
  }
  // Format-3 chunks (a kind per record, no flags), as stores written before
  // format 4 hold them.
  both("v3_tombstones", with_tombstones(records(40, 24, false)), 200, 3);
  both("v3_huge_seq", {{"a", (std::uint64_t{1} << 63) - 1, "max"}, {"b", 1, "", true}}, 4096, 3);
  both("tombstones", with_tombstones(records(40, 24, false)), 200);
  both("one_tombstone", {{"k", 7, "", true}}, 4096);
  both("small_one_block", records(12, 20, false), 4096);
  both("compressible_one_block", records(20, 64, true), 4096);
  both("multi_block", records(40, 24, false), 200);
  both("multi_block_compressible", records(48, 40, true), 512);
  both("block_per_record", records(6, 8, false), 1);
  put(dir, "none_lz4_reader", std::string(1, '\1') + chunk_bytes<stowage::NoCompression>(tmp, records(8, 16, true), 128));
  both("restart_points", records(40, 3, false), 4096);  // 3 restart points, shared prefixes
  // Format-1 chunks (full keys), as existing stores hold them.
  const auto old = records(30, 8, false);
  put(dir, "v1_none_multi_block",
      std::string(1, '\0') + chunk_v1({{old.begin(), old.begin() + 10}, {old.begin() + 10, old.end()}}));
  // Format-2 chunks (puts only, any 64-bit sequence number), as stores
  // written before format 3 hold them.
  both("v2_huge_seq", {{"a", ~std::uint64_t{0}, "max"}, {"b", std::uint64_t{1} << 63, "half"}}, 4096, 2);
  both("v2_multi_block", records(40, 24, false), 200, 2);
  both("v2_restart_points", records(40, 3, false), 4096, 2);
  // Raw blocks for Block::parse: format 2 ...
  put(dir, "raw_block_one", std::string(1, '\4') + raw_block(tmp, {{"k", 1, "v"}}, 2));
  put(dir, "raw_block_many", std::string(1, '\4') + raw_block(tmp, records(40, 6, false), 2));
  put(dir, "raw_block_empty_key", std::string(1, '\4') + raw_block(tmp, {{"", 300, ""}, {"\xff", 1, "z"}}, 2));
  // ... format 3 ...
  put(dir, "raw_block_v3_one", std::string(1, '\x14') + raw_block(tmp, {{"k", 1, "v"}}, 3));
  put(dir, "raw_block_v3_tombstones", std::string(1, '\x14') + raw_block(tmp, with_tombstones(records(40, 6, false)), 3));
  put(dir, "raw_block_v3_empty_key", std::string(1, '\x14') + raw_block(tmp, {{"", 300, "", true}, {"\xff", 1, "z"}}, 3));
  // ... format 4 ...
  {
    auto recs = with_tombstones(records(40, 6, false));
    for (std::size_t i = 0; i < recs.size(); i += 3) recs[i].uncounted = true;
    put(dir, "raw_block_v4_uncounted", std::string(1, '\x24') + raw_block(tmp, recs, 4));
  }
  // ... and format 1.
  put(dir, "raw_block_v1_one", std::string(1, '\x0c') + raw_block_v1({{"k", 1, "v"}}));
  put(dir, "raw_block_v1_many", std::string(1, '\x0c') + raw_block_v1(records(10, 6, false)));
}

sd::ChunkRef ref(std::uint64_t file, std::string first, std::string last, std::uint64_t records = 10) {
  sd::ChunkRef c;
  c.file = file;
  c.records = records;
  c.bytes = 4096 * file + 57;
  c.max_seq = 1000 + file;
  c.first_key = std::move(first);
  c.last_key = std::move(last);
  c.level = sd::kLastLevel;
  return c;
}

void manifest_corpus(const fs::path& out) {
  const fs::path dir = out / "manifest";
  sd::Manifest m;
  m.serializer = std::string(stowage::BinarySerializer::id());
  m.compression = "lz4";
  m.compression_id = 1;
  m.last_seq = 0;
  m.next_file = 1;
  m.wal_start = 1;
  put(dir, "no_keyspace", sd::encode_manifest(m));

  m.keyspaces.push_back({"default", "str", stowage::type_description<stowage_fuzz::Node>(), 3, 0, {}});
  m.last_seq = 17;
  m.next_file = 4;
  m.wal_start = 2;
  put(dir, "empty_keyspace", sd::encode_manifest(m));

  m.keyspaces[0].chunks.push_back(ref(3, "a", "m"));
  put(dir, "one_chunk", sd::encode_manifest(m));

  m.next_file = 300;
  m.last_seq = 123456789012345ull;
  m.keyspaces[0].chunks.push_back(ref(7, "n", "n", 1));
  m.keyspaces[0].chunks.push_back(ref(200, std::string("p\0q", 3), "zz"));
  sd::Manifest v1 = m;  // format 1: one set of types for every keyspace
  v1.format_major = 1;
  v1.keyspaces.push_back({"users", "str", v1.keyspaces[0].value_type, 3, 0, {ref(9, "", "\x01")}});
  put(dir, "format_1", sd::encode_manifest(v1));

  m.keyspaces.push_back({"users", "i64", "str", 0, 5, {ref(9, "", "\x01"), ref(10, "\x02", "\xff\xff", 1u << 20)}});
  m.keyspaces.push_back({"", "", "", 7, 0, {}});
  m.keyspaces.push_back({"events", "tup<str,u32>", "obj@2{f64}", 2, 99999, {ref(299, "2024-01-01", "2024-12-31", 99999)}});
  put(dir, "several_keyspaces", sd::encode_manifest(m));
  sd::Manifest v2 = m;  // format 2: one run per keyspace, no live count
  v2.format_major = 2;
  put(dir, "format_2", sd::encode_manifest(v2));

  // Format 3 levels: two level-0 runs (newest first, overlapping each
  // other), a level-4 run of two files, the last level.
  sd::Manifest lv = m;
  auto& ks = lv.keyspaces[0];
  ks.chunks.clear();
  auto at = [](sd::ChunkRef c, std::uint32_t level, std::uint64_t run) {
    c.level = level;
    c.run = run;
    return c;
  };
  ks.chunks.push_back(at(ref(250, "c", "x"), 0, 251));
  ks.chunks.push_back(at(ref(240, "a", "k"), 0, 240));
  ks.chunks.push_back(at(ref(241, "l", "z"), 0, 240));
  ks.chunks.push_back(at(ref(100, "b", "f"), 4, 0));
  ks.chunks.push_back(at(ref(101, "g", "g"), 4, 0));
  ks.chunks.push_back(ref(7, "a", "zz"));
  ks.live = 42;
  put(dir, "levels", sd::encode_manifest(lv));
  // Format 4: uncounted records per chunk, and a live count below zero.
  ks.chunks[0].uncounted = 3;
  ks.chunks[3].uncounted = ks.chunks[3].records;
  ks.live = -5;
  put(dir, "levels_uncounted", sd::encode_manifest(lv));
  sd::Manifest v3 = lv;  // format 3: no uncounted records, the live count unsigned
  v3.format_major = 3;
  for (auto& c : v3.keyspaces[0].chunks) c.uncounted = 0;
  v3.keyspaces[0].live = 42;
  put(dir, "format_3", sd::encode_manifest(v3));

  sd::Manifest newer = m;
  newer.format_minor = 7;
  put(dir, "minor_7", sd::encode_manifest(newer));
  newer.format_major = 5;
  put(dir, "major_5", sd::encode_manifest(newer));
}

void wal_corpus(const fs::path& out, const fs::path& tmp) {
  const fs::path dir = out / "wal";
  auto& pfs = *stowage::default_file_system();
  const fs::path seg = tmp / sd::wal_file_name(1);
  auto write = [&](const std::vector<sd::WalBatch>& batches, bool sync_each) {
    sd::WalWriter w(pfs, tmp, 1);
    for (const auto& b : batches) {
      w.append(b.finish());
      if (sync_each) w.sync();
    }
    w.seal();  // exactly the records, without the preallocated zeros
    w.close();
    return slurp(seg);
  };
  std::vector<sd::WalBatch> batches;
  sd::WalBatch b1(1);
  b1.put("alpha", "one");
  batches.push_back(b1);
  put(dir, "one_record", write(batches, false));

  sd::WalBatch b2(2);
  b2.erase("alpha");
  b2.put("beta", std::string(40, 'b'));
  b2.put("", "");
  batches.push_back(b2);
  sd::WalBatch b3(5);
  for (int i = 0; i < 8; ++i) {
    if (i % 3 == 2)
      b3.erase("k" + std::to_string(i));
    else
      b3.put("k" + std::to_string(i), std::string(static_cast<std::size_t>(i * 5), static_cast<char>('A' + i)));
  }
  batches.push_back(b3);
  batches.push_back(sd::WalBatch(13));  // an empty batch
  sd::WalBatch b4(~std::uint64_t{0} - 1);
  b4.put(std::string("\0\xff", 2), "max seq");
  batches.push_back(b4);

  const std::string several = write(batches, false);
  put(dir, "several_records", several);
  const std::string synced = write(batches, true);
  put(dir, "several_records_synced", synced);
  put(dir, "torn_tail", several.substr(0, several.size() - 5));
  const std::size_t first_record = sd::kWalHeaderBytes + sd::decode_fixed32(several.data());
  put(dir, "torn_header", several.substr(0, first_record + 10));
  put(dir, "zero_tail", several + std::string(64, '\0'));
  // A preallocated segment: records, then zeros to the end of the page (a
  // clean end); and one with a record after the zeros (never replayed).
  put(dir, "preallocated", synced + std::string(4096 - synced.size() % 4096, '\0'));
  put(dir, "record_after_zeros", synced + std::string(100, '\0') + synced.substr(0, first_record));
  // Damage inside bytes a later record declares durable: CorruptionError.
  std::string damaged = synced;
  damaged[sd::kWalHeaderBytes + 2] ^= 0x40;
  put(dir, "synced_damage", damaged);
  // Damage in the unsynced tail: cut, not an error.
  std::string tail_damage = several;
  tail_damage[tail_damage.size() - 3] ^= 0x01;
  put(dir, "unsynced_damage", tail_damage);
  put(dir, "empty", "");
  std::error_code ec;
  fs::remove(seg, ec);
}

template <class T>
void ser(const fs::path& dir, const std::string& name, char selector, const T& v) {
  std::string bytes(1, selector);
  stowage::BinarySerializer::serialize(v, bytes);
  put(dir, name, bytes);
}

// Big as written by version 0 of its type (only the version-0 fields).
struct BigV0 {
  std::string name;
  std::vector<std::pair<int, std::string>> pairs;
  std::map<std::string, std::optional<double>> opts;
  std::array<std::uint8_t, 4> tag{};
  stowage_fuzz::Node tree;
  std::tuple<bool, std::int64_t> flags{};
  std::variant<int, std::string> choice;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & name & pairs & opts & tag & tree & flags & choice;
  }
};

void serializer_corpus(const fs::path& out) {
  using stowage_fuzz::Big;
  using stowage_fuzz::Node;
  const fs::path dir = out / "serializer";
  ser(dir, "big_default", 0, Big{});
  Big b;
  b.name = "stowage";
  b.pairs = {{1, "one"}, {-2, ""}, {1 << 30, std::string(20, 'x')}};
  b.opts = {{"pi", 3.14159}, {"none", std::nullopt}, {"neg_zero", -0.0}};
  b.tag = {1, 2, 3, 255};
  b.tree = Node{1, {Node{2, {}}, Node{3, {Node{4, {}}}}}};
  b.flags = {true, -1};
  b.choice = std::string("variant");
  b.ids = {-5, 0, 7, 1ll << 40};
  b.counts = {{"a", 1}, {"b", 65535}};
  b.samples = {0.5, -1e300, 1e-300};
  b.bits = {true, false, true};
  b.color = stowage_fuzz::Color::blue;
  b.inner = stowage_fuzz::Inner{{9, 8, 7, 6}, Node{5, {Node{6, {}}}}, {false, 42}};
  b.f = 1.5f;
  b.ld = 2.25L;
  ser(dir, "big_full", 0, b);
  BigV0 old;
  old.name = "old";
  old.pairs = {{7, "seven"}};
  old.opts = {{"x", 1.0}};
  old.choice = 12;
  ser(dir, "big_version0", 0, old);

  ser(dir, "node_leaf", 1, Node{});
  Node chain{0, {}};
  for (int i = 1; i < 40; ++i) chain = Node{i, {chain}};
  ser(dir, "node_chain_40", 1, chain);
  Node wide{0, {}};
  for (int i = 0; i < 30; ++i) wide.kids.push_back(Node{i, {Node{-i, {}}}});
  ser(dir, "node_wide", 1, wide);

  stowage_fuzz::Mixed mixed;
  std::get<0>(mixed) = {1, 2, 0xffffffffu};
  std::get<1>(mixed) = {"a", "bb", ""};
  std::get<2>(mixed) = {3, -4};
  std::get<3>(mixed) = {"left", "right"};
  std::get<4>(mixed) = {std::monostate{}, std::string("s"), Node{8, {Node{9, {}}}}};
  std::get<5>(mixed) = std::make_pair(std::int8_t{-8}, char16_t{0x263a});
  std::get<6>(mixed) = {{}, {1}, {2, 3, 4}};
  ser(dir, "mixed_full", 2, mixed);
  ser(dir, "mixed_default", 2, stowage_fuzz::Mixed{});
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path out = argc > 1 ? fs::path(argv[1]) : fs::path("fuzz/corpus");
  const fs::path tmp = fs::temp_directory_path() / ("stowage-make-corpus-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  try {
    chunk_corpus(out, tmp);
    manifest_corpus(out);
    wal_corpus(out, tmp);
    serializer_corpus(out);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    fs::remove_all(tmp);
    return 1;
  }
  fs::remove_all(tmp);
  std::cout << "make_corpus: wrote " << g_files << " files, " << g_bytes << " bytes under " << out.string() << "\n";
  return 0;
}
