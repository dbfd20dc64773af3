// Tests of chunk files: writing and reading 100k records (puts and
// tombstones) with each built-in compression, block parsing in all three
// formats, and that damaged or hostile files (every single flipped byte, every
// truncation, crafted lengths and orders with valid checksums, tombstones
// with values) are a CorruptionError, never a crash or silently wrong data.
#include <stowage/chunk.hpp>

#include <catch2/catch.hpp>
#include <lz4.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <unordered_set>

using stowage::CorruptionError;
using stowage::Lz4Compression;
using stowage::NoCompression;
using stowage::detail::Block;
using stowage::detail::ChunkTable;
using stowage::detail::ChunkWriter;
namespace cf = stowage::detail::chunk_format;
namespace sd = stowage::detail;

namespace {

// ---------------------------------------------------------------------------
// An in-memory file system, so corruption tests can rewrite a file thousands of
// times cheaply. Readers share the bytes, so a test can shrink a file after open.
class MemFileSystem final : public stowage::FileSystem {
 public:
  std::map<std::filesystem::path, std::shared_ptr<std::string>> files;

  std::unique_ptr<stowage::WritableFile> create(const std::filesystem::path& p) override {
    auto data = std::make_shared<std::string>();
    files[p] = data;
    return std::make_unique<Writable>(data);
  }
  std::unique_ptr<stowage::WritableFile> open_append(const std::filesystem::path& p) override {
    return std::make_unique<Writable>(get(p));
  }
  std::unique_ptr<stowage::RandomAccessFile> open_read(const std::filesystem::path& p) override {
    return std::make_unique<Readable>(get(p), p);
  }
  void rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    files[to] = get(from);
    files.erase(from);
  }
  void remove(const std::filesystem::path& p) override { files.erase(p); }
  void truncate(const std::filesystem::path& p, std::uint64_t size) override {
    get(p)->resize(static_cast<std::size_t>(size));
  }
  void sync_dir(const std::filesystem::path&) override {}
  void create_dirs(const std::filesystem::path&) override {}
  std::vector<std::string> list(const std::filesystem::path&) override {
    std::vector<std::string> names;
    for (auto& [p, d] : files) names.push_back(p.filename().string());
    return names;
  }
  bool exists(const std::filesystem::path& p) override { return files.count(p) != 0; }
  bool is_directory(const std::filesystem::path&) override { return false; }

  /// Replaces a file's bytes.
  void put(const std::filesystem::path& p, std::string bytes) { files[p] = std::make_shared<std::string>(std::move(bytes)); }
  /// A file's bytes.
  const std::string& bytes(const std::filesystem::path& p) { return *get(p); }

 private:
  struct Writable final : stowage::WritableFile {
    explicit Writable(std::shared_ptr<std::string> d) : data(std::move(d)) {}
    void append(std::string_view s) override {
      if (closed) throw stowage::IoError("closed");
      data->append(s);
    }
    void flush() override {}
    void sync() override {}
    void sync_flushed() override {}
    void close() override { closed = true; }
    std::uint64_t size() const override { return data->size(); }
    std::shared_ptr<std::string> data;
    bool closed = false;
  };
  struct Readable final : stowage::RandomAccessFile {
    Readable(std::shared_ptr<std::string> d, std::filesystem::path p)
        : data(std::move(d)), size_(data->size()), path_(std::move(p)) {}
    std::size_t read(std::uint64_t offset, std::size_t n, char* dst) const override {
      if (offset >= data->size()) return 0;
      const std::size_t got = std::min<std::size_t>(n, data->size() - static_cast<std::size_t>(offset));
      std::memcpy(dst, data->data() + offset, got);
      return got;
    }
    std::uint64_t size() const override { return size_; }
    const std::filesystem::path& path() const override { return path_; }
    std::shared_ptr<std::string> data;
    std::uint64_t size_;
    std::filesystem::path path_;
  };
  std::shared_ptr<std::string> get(const std::filesystem::path& p) {
    auto it = files.find(p);
    if (it == files.end()) throw stowage::IoError("no such file: " + p.string());
    return it->second;
  }
};

// A temporary directory on the real file system, removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
#ifdef STOWAGE_TEST_BINARY_DIR
    std::filesystem::path base = STOWAGE_TEST_BINARY_DIR;
#else
    std::filesystem::path base = std::filesystem::temp_directory_path();
#endif
    std::string name = "chunk_test_";
    name += std::to_string(::getpid());
    path = base / name;
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// User policies: ids >= 16.
struct Lz4Alias {  // LZ4 under a user id, to test dispatch on Compression::id
  static constexpr std::uint8_t id = 20;
  static constexpr std::string_view name = "lz4-alias";
  static void compress(std::string_view in, std::string& out) { Lz4Compression::compress(in, out); }
  static void decompress(std::string_view in, std::size_t raw_size, char* out) {
    Lz4Compression::decompress(in, raw_size, out);
  }
};
struct RunLength {  // compresses long runs far beyond 255:1
  static constexpr std::uint8_t id = 21;
  static constexpr std::string_view name = "rle";
  static void compress(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size();) {
      std::size_t j = i;
      while (j < in.size() && in[j] == in[i]) ++j;
      sd::put_varint(out, j - i);
      out.push_back(in[i]);
      i = j;
    }
  }
  static void decompress(std::string_view in, std::size_t raw_size, char* out) {
    sd::Reader r(in);
    std::size_t done = 0;
    while (!r.empty()) {
      const auto n = r.varint();
      const char c = static_cast<char>(r.u8());
      if (n > raw_size - done) throw CorruptionError("run too long");
      std::memset(out + done, c, static_cast<std::size_t>(n));
      done += static_cast<std::size_t>(n);
    }
    if (done != raw_size) throw CorruptionError("short");
  }
};

struct Rec {
  std::string key;
  std::uint64_t seq;
  std::string value;
  bool tomb = false;  // a tombstone (value empty); format 3 only
};

// The seq field a format-3 record stores.
std::uint64_t seq_field(const Rec& r) { return r.seq << 1 | (r.tomb ? 1 : 0); }
// Format 4's sequence field of a counted record: seq << 2 | uncounted << 1 | kind.
std::uint64_t seq_field4(const Rec& r) { return r.seq << 2 | (r.tomb ? 1 : 0); }

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string text_bytes(std::mt19937_64& rng, std::size_t n) {
  static const char* words[] = {"alpha ", "beta ", "gamma ", "delta ", "epsilon ", "user=", "id:", "42 "};
  std::string s;
  while (s.size() < n) s += words[rng() % 8];
  s.resize(n);
  return s;
}

// n records with distinct random binary keys (1..24 bytes, any byte value),
// sorted; values 0..300 bytes (half random, half text), a few of 100 KiB;
// about one in 8 a tombstone; one sequence number is the largest format 3 holds.
std::vector<Rec> make_records(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::unordered_set<std::string> seen;
  std::vector<Rec> recs;
  recs.reserve(n);
  while (recs.size() < n) {
    std::string key = random_bytes(rng, 1 + rng() % 24);
    if (!seen.insert(key).second) continue;
    recs.push_back({std::move(key), 0, {}});
  }
  std::sort(recs.begin(), recs.end(), [](const Rec& a, const Rec& b) { return a.key < b.key; });
  for (std::size_t i = 0; i < n; ++i) {
    auto& r = recs[i];
    r.seq = rng() >> 20;
    const std::size_t size = (i % 20011 == 17) ? 100 * 1024 : rng() % 301;
    r.value = (rng() & 1) ? random_bytes(rng, size) : text_bytes(rng, size);
    if (size != 100 * 1024 && rng() % 8 == 0) {
      r.tomb = true;
      r.value.clear();
    }
  }
  if (n > 10) recs[n / 2].seq = cf::kMaxSeq;
  return recs;
}

template <class C>
sd::ChunkInfo write_chunk(stowage::FileSystem& fs, const std::filesystem::path& p, const std::vector<Rec>& recs,
                          std::size_t block_bytes = 4096, std::uint16_t major = cf::kPlainMajor) {
  ChunkWriter<C> w(fs, p, block_bytes, major);
  for (auto& r : recs) w.add(r.key, r.seq, r.value, r.tomb);
  CHECK(w.records() == recs.size());
  return w.finish();
}

std::uint64_t count_tombstones(const std::vector<Rec>& recs) {
  return static_cast<std::uint64_t>(std::count_if(recs.begin(), recs.end(), [](const Rec& r) { return r.tomb; }));
}

struct Found {
  std::uint64_t seq;
  std::string value;
  bool tomb;
};

template <class C>
std::optional<Found> lookup(const ChunkTable<C>& t, std::string_view key) {
  const auto b = t.find_block(key);
  if (b == t.block_count()) return std::nullopt;
  const auto block = t.read_block(b);
  const auto i = block->lower_bound(key);
  if (i == block->size() || block->key(i) != key) return std::nullopt;
  return Found{block->seq(i), std::string(block->value(i)), block->tombstone(i)};
}

// Opens the chunk and reads every block; returns the records seen.
template <class C>
std::vector<Rec> read_all(stowage::FileSystem& fs, const std::filesystem::path& p) {
  auto t = ChunkTable<C>::open(fs, p);
  std::vector<Rec> out;
  for (std::size_t b = 0; b < t->block_count(); ++b) {
    auto block = t->read_block(b);
    for (std::size_t i = 0; i < block->size(); ++i)
      out.push_back({std::string(block->key(i)), block->seq(i), std::string(block->value(i)), block->tombstone(i)});
  }
  return out;
}

bool same_records(const std::vector<Rec>& a, const std::vector<Rec>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].key != b[i].key || a[i].seq != b[i].seq || a[i].value != b[i].value || a[i].tomb != b[i].tomb)
      return false;
  return true;
}

// The compression ids of a chunk's data block frames, walking the file as
// docs/format.md describes it.
std::vector<int> frame_ids(const std::string& file) {
  const std::uint64_t meta_offset = sd::decode_fixed64(file.data() + file.size() - 32);
  std::vector<int> ids;
  for (std::uint64_t off = 16; off < meta_offset;) {
    ids.push_back(static_cast<unsigned char>(file[off]));
    off += 17 + sd::decode_fixed32(file.data() + off + 5);
  }
  return ids;
}

// ---------------------------------------------------------------------------
// Hand-made files, built from docs/format.md (independently of ChunkWriter).

std::string craft_header(std::uint8_t id = 0, std::uint16_t major = 3, std::uint16_t minor = 0) {
  std::string h = "STWCHUNK";
  sd::put_fixed16(h, major);
  sd::put_fixed16(h, minor);
  h.push_back(static_cast<char>(id));
  h.append(3, '\0');
  return h;
}

std::string craft_frame(std::uint8_t id, std::uint32_t raw_size, std::string_view stored, std::uint64_t seed) {
  std::string head;
  head.push_back(static_cast<char>(id));
  sd::put_fixed32(head, raw_size);
  sd::put_fixed32(head, static_cast<std::uint32_t>(stored.size()));
  std::string f = head;
  sd::put_fixed64(f, sd::checksum(head + std::string(stored), seed));
  f.append(stored);
  return f;
}

// A raw format-1 data block over records (no ordering enforced).
std::string craft_block_v1(const std::vector<Rec>& recs) {
  std::string b;
  std::vector<std::uint32_t> offs;
  for (auto& r : recs) {
    offs.push_back(static_cast<std::uint32_t>(b.size()));
    sd::put_bytes(b, r.key);
    sd::put_varint(b, r.seq);
    sd::put_bytes(b, r.value);
  }
  for (auto o : offs) sd::put_fixed32(b, o);
  sd::put_fixed32(b, static_cast<std::uint32_t>(offs.size()));
  return b;
}

// A raw format-2 data block over records, encoded from docs/format.md: shared
// key length (the whole common prefix with the previous key, 0 at every 16th
// record), unshared length << 1 | "same value length as the previous record",
// seq, the value length unless flagged, the key suffix, the value; then the
// restart offsets and their count. No ordering enforced. With `kinds` (format
// 3) the seq field is seq << 1 | tombstone; without, records' tomb is ignored.
std::string craft_block_v2(const std::vector<Rec>& recs, bool kinds = false) {
  std::string b;
  std::vector<std::uint32_t> restarts;
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const Rec& r = recs[i];
    std::size_t shared = 0;
    const bool restart = i % 16 == 0;
    if (restart) {
      restarts.push_back(static_cast<std::uint32_t>(b.size()));
    } else {
      const std::string& prev = recs[i - 1].key;
      while (shared < prev.size() && shared < r.key.size() && prev[shared] == r.key[shared]) ++shared;
    }
    const bool same = !restart && r.value.size() == recs[i - 1].value.size();
    sd::put_varint(b, shared);
    sd::put_varint(b, ((r.key.size() - shared) << 1) | (same ? 1 : 0));
    sd::put_varint(b, kinds ? seq_field(r) : r.seq);
    if (!same) sd::put_varint(b, r.value.size());
    b += r.key.substr(shared);
    b += r.value;
  }
  for (auto o : restarts) sd::put_fixed32(b, o);
  sd::put_fixed32(b, static_cast<std::uint32_t>(restarts.size()));
  return b;
}

// A raw format-3 data block: format 2 with the kind in the seq field.
std::string craft_block_v3(const std::vector<Rec>& recs) { return craft_block_v2(recs, true); }

std::string craft_block(const std::vector<Rec>& recs, std::uint16_t major) {
  return major == 1 ? craft_block_v1(recs) : craft_block_v2(recs, major >= 3);
}

std::string craft_footer(const std::string& header, std::uint64_t meta_offset, std::uint64_t meta_size) {
  std::string f;
  sd::put_fixed64(f, meta_offset);
  sd::put_fixed64(f, meta_size);
  sd::put_fixed64(f, sd::checksum(header + f, cf::kFooterSeed));
  f += "STWCHEND";
  return f;
}

// header | data (already framed) | meta frame over meta_raw | footer.
std::string craft_file(const std::string& header, const std::string& data, const std::string& meta_raw,
                       std::uint8_t meta_id = 0, std::optional<std::uint32_t> meta_raw_size = std::nullopt) {
  std::string file = header + data;
  const std::uint64_t meta_offset = file.size();
  const std::string mf =
      craft_frame(meta_id, meta_raw_size.value_or(static_cast<std::uint32_t>(meta_raw.size())), meta_raw, cf::kMetaSeed);
  file += mf;
  file += craft_footer(header, meta_offset, mf.size());
  return file;
}

std::string bloom_over(const std::vector<std::string>& keys) {
  sd::BloomFilterBuilder b;
  for (auto& k : keys) b.add(sd::bloom_hash(k));
  return b.finish();
}

// A whole chunk from raw blocks (each stored with id `id`, stored = raw unless
// id is 1), computing the meta block fields from the blocks' records (and,
// in format 3, the tombstone count after the Bloom filter).
std::string craft_chunk(const std::vector<std::vector<Rec>>& blocks, std::uint8_t header_id = 0,
                        std::uint8_t block_id = 0, std::uint16_t major = 3) {
  const std::string header = craft_header(header_id, major);
  std::string data, index;
  std::vector<std::string> keys;
  std::uint64_t records = 0, max_seq = 0, tombstones = 0;
  for (auto& recs : blocks) {
    const std::string raw = craft_block(recs, major);
    std::string stored = raw;
    if (block_id == 1 || block_id == Lz4Alias::id) Lz4Compression::compress(raw, stored);
    const std::string frame = craft_frame(block_id, static_cast<std::uint32_t>(raw.size()), stored, cf::kDataSeed);
    sd::put_fixed64(index, header.size() + data.size());
    sd::put_fixed32(index, static_cast<std::uint32_t>(frame.size()));
    sd::put_bytes(index, recs.front().key);
    data += frame;
    for (auto& r : recs) {
      keys.push_back(r.key);
      max_seq = std::max(max_seq, r.seq);
      ++records;
      tombstones += r.tomb ? 1 : 0;
    }
  }
  std::string meta;
  sd::put_varint(meta, blocks.size());
  meta += index;
  sd::put_bytes(meta, blocks.empty() ? std::string() : blocks.back().back().key);
  sd::put_varint(meta, records);
  sd::put_varint(meta, max_seq);
  sd::put_bytes(meta, bloom_over(keys));
  if (major >= 3) sd::put_varint(meta, tombstones);
  return craft_file(header, data, meta);
}

template <class C = NoCompression>
void require_corruption(MemFileSystem& fs, const std::filesystem::path& p) {
  try {
    read_all<C>(fs, p);
    FAIL("no CorruptionError");
  } catch (const CorruptionError& e) {
    INFO(e.what());
    CHECK(e.file() == p);
    CHECK(e.offset() <= fs.bytes(p).size());
  }
}

// 60 records, every 7th (from the 6th) a tombstone.
std::vector<Rec> small_records() {
  std::mt19937_64 rng(11);
  std::vector<Rec> recs;
  for (int i = 0; i < 60; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "key-%03d", i);
    const std::size_t size = (i == 30) ? 700 : rng() % 60;
    recs.push_back({key, static_cast<std::uint64_t>(1000 + i), (i % 3) ? text_bytes(rng, size) : random_bytes(rng, size)});
    if (i % 7 == 5) {
      recs.back().value.clear();
      recs.back().tomb = true;
    }
  }
  return recs;
}

// Parses 20,000 random mutations of `raw` (1-3 bytes overwritten, a quarter
// also truncated) as a data block of format `major`; each must be a
// CorruptionError or a block that `check(block, mutated_bytes)` accepts.
// Returns how many parsed.
template <class Check>
std::size_t parse_mutations(const std::string& raw, std::uint64_t seed, std::uint16_t major, Check&& check) {
  std::mt19937_64 rng(seed);
  std::size_t accepted = 0;
  for (int n = 0; n < 20000; ++n) {
    std::string bad = raw;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) bad.resize(rng() % bad.size());
    try {
      const auto b = Block::parse(bad, "mutated.chunk", 0, major);
      ++accepted;
      check(*b, bad);
    } catch (const CorruptionError&) {
    }
  }
  return accepted;
}

}  // namespace

// ---------------------------------------------------------------------------

TEMPLATE_TEST_CASE("100k records round trip through a chunk", "[chunk]", NoCompression, Lz4Compression) {
  TempDir dir;
  auto& fs = *stowage::default_file_system();
  const auto path = dir.path / "big.chunk";
  const auto recs = make_records(100000, 1234);

  std::uint64_t raw = 0, max_seq = 0;
  for (auto& r : recs) {
    raw += sd::varint_length(r.key.size()) + r.key.size() + sd::varint_length(seq_field4(r)) +
           sd::varint_length(r.value.size()) + r.value.size();
    max_seq = std::max(max_seq, r.seq);
  }
  const std::uint64_t tombstones = count_tombstones(recs);
  REQUIRE(tombstones > 10000);
  REQUIRE(max_seq == cf::kMaxSeq);
  ChunkWriter<TestType> w(fs, path);
  for (auto& r : recs) w.add(r.key, r.seq, r.value, r.tomb);
  CHECK(w.raw_bytes() == raw);
  CHECK(w.records() == recs.size());
  CHECK(w.tombstones() == tombstones);
  const auto info = w.finish();
  CHECK(info.records == recs.size());
  CHECK(info.tombstones == tombstones);
  CHECK(info.max_seq == max_seq);
  CHECK(info.first_key == recs.front().key);
  CHECK(info.last_key == recs.back().key);
  CHECK(info.file_bytes == std::filesystem::file_size(path));

  const auto t = ChunkTable<TestType>::open(fs, path);
  CHECK(t->path() == path);
  CHECK(t->format_major() == cf::kPlainMajor);
  CHECK(t->records() == recs.size());
  CHECK(t->tombstones() == tombstones);
  CHECK(t->max_seq() == max_seq);
  CHECK(t->first_key() == recs.front().key);
  CHECK(t->last_key() == recs.back().key);
  CHECK(t->file_bytes() == info.file_bytes);
  CHECK(t->block_count() > 1000);
  CHECK(t->charge() > 0);

  SECTION("iterating all blocks yields every record in order") {
    std::size_t n = 0, mismatches = 0, big_alone = 0;
    for (std::size_t b = 0; b < t->block_count(); ++b) {
      const auto block = t->read_block(b);
      CHECK(block->charge() >= block->size() * 8);
      CHECK(block->has_kinds());
      for (std::size_t i = 0; i < block->size(); ++i, ++n) {
        if (n >= recs.size() || block->key(i) != recs[n].key || block->seq(i) != recs[n].seq ||
            block->value(i) != recs[n].value || block->tombstone(i) != recs[n].tomb)
          ++mismatches;
        if (recs[n].value.size() == 100 * 1024 && block->size() == 1) ++big_alone;
      }
    }
    CHECK(n == recs.size());
    CHECK(mismatches == 0);
    CHECK(big_alone == 5);  // records larger than a block get a block of their own
  }

  SECTION("every key is found, misses are not") {
    std::size_t wrong = 0, bloom_negatives = 0;
    for (auto& r : recs) {
      if (!t->may_contain(r.key)) ++bloom_negatives;
      auto f = lookup(*t, r.key);
      if (!f || f->seq != r.seq || f->value != r.value || f->tomb != r.tomb) ++wrong;
    }
    CHECK(bloom_negatives == 0);
    CHECK(wrong == 0);

    std::unordered_set<std::string> keys;
    for (auto& r : recs) keys.insert(r.key);
    std::size_t misses = 0, false_positives = 0, found_misses = 0;
    for (std::size_t i = 0; i < recs.size(); ++i) {
      std::string miss = recs[i].key + '\0';
      if (keys.count(miss)) continue;
      ++misses;
      if (t->may_contain(miss)) ++false_positives;
      if (i % 7 == 0 && lookup(*t, miss)) ++found_misses;
    }
    CHECK(found_misses == 0);
    INFO("false positives " << false_positives << " of " << misses);
    CHECK(static_cast<double>(false_positives) / static_cast<double>(misses) < 0.02);

    // Outside the key range.
    const std::string after = recs.back().key + "\xff";
    CHECK_FALSE(t->may_contain(after));
    CHECK_FALSE(lookup(*t, after));
    CHECK(t->find_block(after) == t->block_count() - 1);
    CHECK(t->find_block(recs.front().key) == 0);
    if (!recs.front().key.empty() && recs.front().key != std::string(1, '\0')) {
      CHECK(t->find_block("") == t->block_count());
      CHECK_FALSE(t->may_contain(""));
      CHECK_FALSE(lookup(*t, ""));
    }
  }

  SECTION("concurrent readers share one table") {
    std::vector<std::thread> threads;
    std::vector<std::size_t> counts(4, 0);
    for (std::size_t k = 0; k < counts.size(); ++k)
      threads.emplace_back([&, k] {
        for (std::size_t b = k % 2; b < t->block_count(); b += 2) counts[k] += t->read_block(b)->size();
      });
    for (auto& th : threads) th.join();
    CHECK(counts[0] + counts[1] == recs.size());
    CHECK(counts[2] + counts[3] == recs.size());
  }

  if constexpr (std::is_same_v<TestType, Lz4Compression>) {
    SECTION("lz4 stores compressible blocks compressed and the rest as is") {
      std::string bytes(static_cast<std::size_t>(info.file_bytes), '\0');
      stowage::default_file_system()->open_read(path)->read(0, bytes.size(), bytes.data());
      const auto ids = frame_ids(bytes);
      CHECK(ids.size() == t->block_count());
      CHECK(std::count(ids.begin(), ids.end(), 1) > 0);
      CHECK(std::count(ids.begin(), ids.end(), 0) >= 0);
      CHECK(std::count_if(ids.begin(), ids.end(), [](int id) { return id > 1; }) == 0);
      CHECK(info.file_bytes < raw);
    }
  }
}

TEST_CASE("chunk writer rules", "[chunk]") {
  MemFileSystem fs;
  SECTION("keys must be strictly ascending") {
    ChunkWriter<NoCompression> w(fs, "c");
    w.add("b", 1, "x");
    CHECK_THROWS_AS(w.add("b", 2, "y"), std::logic_error);
    CHECK_THROWS_AS(w.add("a", 2, "y"), std::logic_error);
    CHECK_THROWS_AS(w.add("", 2, "y"), std::logic_error);
    w.add(std::string_view("b\0", 2), 2, "y");
    w.add("\xff", 3, "z");  // bytes compare unsigned (memcmp order)
    CHECK_THROWS_AS(w.add("\x7f", 4, ""), std::logic_error);
    CHECK(w.records() == 3);
    const auto info = w.finish();
    CHECK(info.records == 3);
    CHECK(info.max_seq == 3);
    CHECK(info.first_key == "b");
    CHECK(info.last_key == "\xff");
    CHECK_THROWS_AS(w.add("\xff\xff", 5, ""), std::logic_error);
    CHECK_THROWS_AS(w.finish(), std::logic_error);
    CHECK(same_records(read_all<NoCompression>(fs, "c"),
                       {{"b", 1, "x"}, {std::string("b\0", 2), 2, "y"}, {"\xff", 3, "z"}}));
  }
  SECTION("bad block sizes and formats") {
    CHECK_THROWS_AS(ChunkWriter<NoCompression>(fs, "c", 0), stowage::ValidationError);
    CHECK_THROWS_AS(ChunkWriter<NoCompression>(fs, "c", (std::size_t{256} << 20) + 1), stowage::ValidationError);
    for (std::uint16_t major : {0, 1, 6, 0xffff})
      CHECK_THROWS_AS(ChunkWriter<NoCompression>(fs, "c", 4096, major), stowage::ValidationError);
  }
  SECTION("tombstones: no value, sequence numbers below 2^63, format 3 only") {
    ChunkWriter<NoCompression> w(fs, "c");
    CHECK_THROWS_AS(w.add("a", 1, "x", true), std::logic_error);  // a tombstone with a value
    CHECK_THROWS_AS(w.add("a", cf::kMaxSeq + 1, "x"), std::logic_error);
    CHECK_THROWS_AS(w.add("a", ~std::uint64_t{0}, "", true), std::logic_error);
    CHECK(w.records() == 0);
    w.add("a", cf::kMaxSeq, "", true);
    w.add("b", 0, "", false);
    w.add("c", 0, "", true);
    w.add("d", 5, "v");
    CHECK(w.records() == 4);
    CHECK(w.tombstones() == 2);
    const auto info = w.finish();
    CHECK(info.records == 4);
    CHECK(info.tombstones == 2);
    CHECK(info.max_seq == cf::kMaxSeq);
    CHECK(same_records(read_all<NoCompression>(fs, "c"),
                       {{"a", cf::kMaxSeq, "", true}, {"b", 0, ""}, {"c", 0, "", true}, {"d", 5, "v"}}));
    const auto t = ChunkTable<NoCompression>::open(fs, "c");
    CHECK(t->tombstones() == 2);
    CHECK(t->records() == 4);

    ChunkWriter<NoCompression> v2(fs, "v2", 4096, 2);
    CHECK_THROWS_AS(v2.add("a", 1, "", true), std::logic_error);  // format 2 holds no tombstones
    v2.add("a", ~std::uint64_t{0}, "x");  // ... and any 64-bit sequence number
    CHECK(v2.tombstones() == 0);
    const auto info2 = v2.finish();
    CHECK(info2.tombstones == 0);
    CHECK(info2.max_seq == ~std::uint64_t{0});
    CHECK(sd::decode_fixed16(fs.bytes("v2").data() + 8) == 2);
    CHECK(same_records(read_all<NoCompression>(fs, "v2"), {{"a", ~std::uint64_t{0}, "x"}}));
  }
  SECTION("the header records the writer's compression") {
    write_chunk<Lz4Compression>(fs, "c", small_records());
    CHECK(fs.bytes("c").substr(0, 16) == craft_header(1, cf::kPlainMajor));
    write_chunk<NoCompression>(fs, "c", small_records());
    CHECK(fs.bytes("c").substr(0, 16) == craft_header(0, cf::kPlainMajor));
  }
  SECTION("an empty chunk") {
    const auto info = write_chunk<Lz4Compression>(fs, "c", {});
    CHECK(info.records == 0);
    CHECK(info.file_bytes == fs.bytes("c").size());
    const auto t = ChunkTable<Lz4Compression>::open(fs, "c");
    CHECK(t->block_count() == 0);
    CHECK(t->records() == 0);
    CHECK(t->find_block("a") == 0);
    CHECK_FALSE(t->may_contain(""));
    CHECK(t->first_key().empty());
    CHECK(t->last_key().empty());
    CHECK_THROWS_AS(t->read_block(0), std::out_of_range);
  }
  SECTION("block boundaries: closed at block_bytes; big records alone") {
    std::vector<Rec> recs;
    for (int i = 0; i < 200; ++i) {
      std::string key = "k";
      key += std::to_string(1000 + i);  // (not "k" + ...: GCC 12 -O3 raises a false -Wrestrict)
      recs.push_back({key, 1, std::string(i == 50 ? 5000 : 10, 'v')});
    }
    write_chunk<NoCompression>(fs, "c", recs, 512);
    const auto t = ChunkTable<NoCompression>::open(fs, "c");
    std::vector<std::shared_ptr<const Block>> bs;
    for (std::size_t b = 0; b < t->block_count(); ++b) bs.push_back(t->read_block(b));
    std::size_t total = 0, alone = 0;
    for (std::size_t b = 0; b < bs.size(); ++b) {
      total += bs[b]->size();
      std::size_t raw = 4;  // every record here: 1-byte varints except a 5000-byte value's 2-byte length
      for (std::size_t i = 0; i < bs[b]->size(); ++i)
        raw += 4 + 1 + bs[b]->key(i).size() + 1 + 1 + bs[b]->value(i).size() + (bs[b]->value(i).size() >= 128);
      if (bs[b]->value(0).size() == 5000) {
        CHECK(bs[b]->size() == 1);
        ++alone;
      } else if (b + 1 < bs.size() && bs[b + 1]->value(0).size() != 5000) {
        CHECK(raw >= 512);  // closed once it reached block_bytes ...
        CHECK(raw < 512 + 30);  // ... not later
      } else {
        CHECK(raw < 512);  // the last block, or one closed early for the big record
      }
    }
    CHECK(alone == 1);
    CHECK(total == recs.size());
  }
  SECTION("a user policy: its id in the header and blocks; other policies refuse the file") {
    write_chunk<Lz4Alias>(fs, "c", small_records());
    const auto ids = frame_ids(fs.bytes("c"));
    CHECK(std::count(ids.begin(), ids.end(), 20) > 0);
    CHECK(same_records(read_all<Lz4Alias>(fs, "c"), small_records()));
    require_corruption<Lz4Compression>(fs, "c");
    require_corruption<NoCompression>(fs, "c");
  }
  SECTION("blocks compressing beyond the reader's 255:1 bound are stored as is") {
    const std::vector<Rec> recs = {{"a", 1, std::string(1 << 20, '\0')}, {"b", 2, std::string(100, 'x')}};
    write_chunk<RunLength>(fs, "c", recs);
    const auto ids = frame_ids(fs.bytes("c"));
    REQUIRE(ids.size() == 2);
    CHECK(ids[0] == 0);
    CHECK(ids[1] == 21);
    CHECK(same_records(read_all<RunLength>(fs, "c"), recs));
  }
  SECTION("readers of any policy read none and lz4 blocks") {
    write_chunk<Lz4Compression>(fs, "c", small_records());
    CHECK(same_records(read_all<NoCompression>(fs, "c"), small_records()));
    CHECK(same_records(read_all<Lz4Alias>(fs, "c"), small_records()));
    write_chunk<NoCompression>(fs, "c", small_records());
    CHECK(same_records(read_all<Lz4Compression>(fs, "c"), small_records()));
  }
}

TEST_CASE("Block::parse of format 1 accepts valid blocks and rejects malformed ones", "[chunk]") {
  const std::vector<Rec> recs = {{"", 0, ""}, {"a", 1, "x"}, {"ab", 1ull << 63, std::string(200, 'v')}, {"b", 7, ""}};
  const std::string raw = craft_block_v1(recs);
  const std::filesystem::path file = "f";

  SECTION("valid") {
    const auto b = Block::parse(raw, file, 99, 1);
    REQUIRE(b->size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {
      CHECK(b->key(i) == recs[i].key);
      CHECK(b->seq(i) == recs[i].seq);
      CHECK(b->value(i) == recs[i].value);
    }
    CHECK(b->lower_bound("") == 0);
    CHECK(b->lower_bound("a") == 1);
    CHECK(b->lower_bound("aa") == 2);
    CHECK(b->lower_bound("ab") == 2);
    CHECK(b->lower_bound("abc") == 3);
    CHECK(b->lower_bound("b") == 3);
    CHECK(b->lower_bound("c") == 4);
    CHECK(b->charge() >= raw.size());
  }

  auto rejects = [&](const std::string& bad) {
    try {
      Block::parse(bad, file, 99, 1);
      FAIL("accepted");
    } catch (const CorruptionError& e) {
      INFO(e.what());
      CHECK(e.file() == file);
      CHECK(e.offset() == 99);
    }
  };
  SECTION("too short, empty, counts out of range") {
    rejects("");
    rejects("abc");
    rejects(std::string(4, '\0'));                 // zero records
    rejects(std::string("\x00\x00\x00\x00\xff\xff\xff\xff", 8));  // count too large
    std::string bad = raw;
    sd::encode_fixed32(bad.data() + bad.size() - 4, 5);
    rejects(bad);
    sd::encode_fixed32(bad.data() + bad.size() - 4, 3);
    rejects(bad);
  }
  SECTION("keys out of order or equal") {
    rejects(craft_block_v1({{"b", 1, ""}, {"a", 1, ""}}));
    rejects(craft_block_v1({{"a", 1, ""}, {"a", 2, ""}}));
    rejects(craft_block_v1({{"a", 1, ""}, {"c", 2, ""}, {"b", 3, ""}}));
    rejects(craft_block_v1({{"\x80", 1, ""}, {"\x7f", 2, ""}}));
  }
  SECTION("offsets that do not match the records") {
    std::string bad = raw;
    const std::size_t index = bad.size() - 4 - 16;
    sd::encode_fixed32(bad.data() + index + 4, 2);
    rejects(bad);
    bad = raw;
    sd::encode_fixed32(bad.data() + index, 1);
    rejects(bad);
    bad = raw;
    sd::encode_fixed32(bad.data() + index + 12, 0xffffffffu);
    rejects(bad);
  }
  SECTION("lengths past the records, trailing bytes, overlong varints") {
    std::string rec;
    sd::put_varint(rec, 1000);  // key length past the end
    rec += "k";
    std::string bad = rec;
    sd::put_fixed32(bad, 0);
    sd::put_fixed32(bad, 1);
    rejects(bad);
    std::string one = craft_block_v1({{"k", 1, "v"}});
    bad = one.substr(0, 5) + "!" + one.substr(5);  // a byte after the last record
    rejects(bad);
    bad = std::string("\x01k") + std::string(10, '\x80') + "\x01" + std::string("\x00", 1);
    sd::put_fixed32(bad, 0);
    sd::put_fixed32(bad, 1);
    rejects(bad);  // 11-byte sequence number
  }
  SECTION("random mutations: CorruptionError or a block whose accessors stay in bounds") {
    const std::size_t accepted = parse_mutations(raw, 5, 1, [](const Block& b, const std::string& bad) {
      std::size_t sum = 0;
      for (std::size_t i = 0; i < b.size(); ++i) sum += b.key(i).size() + b.value(i).size() + (b.seq(i) & 1);
      CHECK(sum <= bad.size() * 2);
      for (std::size_t i = 1; i < b.size(); ++i) CHECK(b.key(i - 1) < b.key(i));
    });
    CHECK(accepted < 20000);
  }
}

TEMPLATE_TEST_CASE("every flipped byte and every truncation is a CorruptionError", "[chunk][corruption]",
                   NoCompression, Lz4Compression) {
  MemFileSystem fs;
  const std::filesystem::path p = "store/000001.chunk";
  const auto recs = small_records();
  write_chunk<TestType>(fs, p, recs, 256);
  const std::string good = fs.bytes(p);
  {
    const auto t = ChunkTable<TestType>::open(fs, p);
    REQUIRE(t->block_count() >= 3);
    REQUIRE(same_records(read_all<TestType>(fs, p), recs));
    if constexpr (std::is_same_v<TestType, Lz4Compression>) {
      const auto ids = frame_ids(good);
      CHECK(std::count(ids.begin(), ids.end(), 1) > 0);  // some blocks compressed ...
      CHECK(std::count(ids.begin(), ids.end(), 0) > 0);  // ... and some not worth it
    }
  }

  auto outcome = [&](std::string bytes) -> int {  // 0 detected, 1 silently accepted, 2 misreported
    const std::size_t size = bytes.size();
    fs.put(p, std::move(bytes));
    try {
      read_all<TestType>(fs, p);
    } catch (const CorruptionError& e) {
      if (e.file() != p || e.offset() > size) return 2;
      return 0;
    }
    return 1;
  };

  SECTION("flips") {
    std::size_t undetected = 0, misreported = 0, first_bad = good.size();
    for (std::size_t i = 0; i < good.size(); ++i) {
      for (unsigned char mask : {0x01, 0x80, 0xff, 0x5a}) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ mask);
        const int r = outcome(std::move(bad));
        if (r == 1) ++undetected;
        if (r == 2) ++misreported;
        if (r != 0) first_bad = std::min(first_bad, i);
      }
    }
    INFO("first undetected flip at " << first_bad << " of " << good.size());
    CHECK(undetected == 0);
    CHECK(misreported == 0);
  }
  SECTION("truncations") {
    std::size_t undetected = 0;
    for (std::size_t n = 0; n < good.size(); ++n) undetected += outcome(good.substr(0, n)) != 0;
    CHECK(undetected == 0);
  }
  SECTION("appended bytes") {
    CHECK(outcome(good + "x") == 0);
    CHECK(outcome(good + good) == 0);
    CHECK(outcome(good + std::string(1000, '\0')) == 0);
  }
  SECTION("random multi-byte damage and garbage files") {
    std::mt19937_64 rng(77);
    std::size_t undetected = 0;
    for (int n = 0; n < 3000; ++n) {
      std::string bad = good;
      for (int f = 0; f < 8; ++f) bad[rng() % bad.size()] = static_cast<char>(rng());
      undetected += outcome(std::move(bad)) != 0;
      undetected += outcome(random_bytes(rng, rng() % 300)) != 0;
    }
    CHECK(undetected == 0);
  }
  SECTION("the file shrinks after open") {
    const auto t = ChunkTable<TestType>::open(fs, p);
    fs.truncate(p, 100);
    CHECK_THROWS_AS(t->read_block(t->block_count() - 1), CorruptionError);
  }
  fs.put(p, good);
  CHECK(same_records(read_all<TestType>(fs, p), recs));
}

TEST_CASE("hand-made chunks follow docs/format.md", "[chunk][format]") {
  MemFileSystem fs;
  const std::filesystem::path p = "h.chunk";
  const std::vector<std::vector<Rec>> blocks = {{{"a", 1, "one"}, {"b", 2, "two"}}, {{"c", 9, "three"}}};
  const std::vector<Rec> all = {{"a", 1, "one"}, {"b", 2, "two"}, {"c", 9, "three"}};

  SECTION("uncompressed and lz4 hand-made files read back, in all three formats") {
    for (std::uint16_t major : {1, 2, 3}) {
      INFO("major " << major);
      fs.put(p, craft_chunk(blocks, 0, 0, major));
      CHECK(same_records(read_all<NoCompression>(fs, p), all));
      fs.put(p, craft_chunk(blocks, 1, 1, major));
      CHECK(same_records(read_all<NoCompression>(fs, p), all));
      const auto t = ChunkTable<NoCompression>::open(fs, p);
      CHECK(t->format_major() == major);
      CHECK(t->records() == 3);
      CHECK(t->tombstones() == 0);
      CHECK(t->max_seq() == 9);
      CHECK(t->first_key() == "a");
      CHECK(t->last_key() == "c");
      CHECK(t->find_block("bz") == 0);
      CHECK(t->find_block("c") == 1);
      CHECK(t->read_block(0)->has_kinds() == (major == 3));
    }
  }
  SECTION("format 3: tombstones in hand-made files") {
    const std::vector<std::vector<Rec>> mixed = {{{"a", 1, "one"}, {"b", 2, "", true}},
                                                 {{"c", cf::kMaxSeq, "", true}, {"d", 0, "four"}}};
    const std::vector<Rec> mixed_all = {mixed[0][0], mixed[0][1], mixed[1][0], mixed[1][1]};
    fs.put(p, craft_chunk(mixed, 1, 1));
    CHECK(same_records(read_all<Lz4Compression>(fs, p), mixed_all));
    const auto t = ChunkTable<NoCompression>::open(fs, p);
    CHECK(t->records() == 4);
    CHECK(t->tombstones() == 2);
    CHECK(t->max_seq() == cf::kMaxSeq);
    // The seq field holds seq << 1 | kind: 1 << 1 | 0 = 2 for "a", 2 << 1 | 1 = 5 for "b".
    const std::string raw = craft_block_v3(mixed[0]);
    CHECK(raw.substr(0, 13) == std::string("\x00\x02\x02\x03" "aone" "\x00\x02\x05\x00" "b", 13));
  }
  SECTION("the writer produces byte-identical files (format 3 on request)") {
    write_chunk<NoCompression>(fs, "w", all, 4096, 3);
    fs.put(p, craft_chunk({all}));
    CHECK(fs.bytes("w") == fs.bytes(p));
    // Restart points, shared prefixes, repeated and changing value lengths,
    // tombstones (after values of any length, and after each other).
    std::vector<Rec> many;
    for (int i = 0; i < 70; ++i) {
      char key[32];
      std::snprintf(key, sizeof key, "user:%08d:%s", i * 37, (i % 5 == 0) ? "x" : "");
      const bool tomb = i % 6 == 1 || i % 11 == 2;
      many.push_back({key, static_cast<std::uint64_t>(i * 1000), tomb ? "" : std::string((i % 7 == 3) ? 9 : 4, 'v'), tomb});
    }
    write_chunk<NoCompression>(fs, "w", many, 1 << 20, 3);
    fs.put(p, craft_chunk({many}));
    CHECK(fs.bytes("w") == fs.bytes(p));
    // Format 2 on request (puts only).
    for (auto& r : many) r.tomb = false;
    write_chunk<NoCompression>(fs, "w", many, 1 << 20, 2);
    fs.put(p, craft_chunk({many}, 0, 0, 2));
    CHECK(fs.bytes("w") == fs.bytes(p));
    CHECK(same_records(read_all<NoCompression>(fs, "w"), many));
  }
  SECTION("a newer minor version may append meta fields; a newer major is refused") {
    for (std::uint16_t major : {1, 2, 3}) {
    INFO("major " << major);
    const std::string header = craft_header(0, major, 3);
    std::string file = craft_chunk(blocks, 0, 0, major);
    // Rebuild with the new header and an extra meta field.
    const std::uint64_t meta_offset = sd::decode_fixed64(file.data() + file.size() - 32);
    const std::string data = file.substr(16, meta_offset - 16);
    const std::string meta_frame = file.substr(meta_offset, file.size() - 32 - meta_offset);
    const std::string meta = meta_frame.substr(17) + "future";
    fs.put(p, craft_file(header, data, meta));
    CHECK(same_records(read_all<NoCompression>(fs, p), all));
    fs.put(p, craft_file(craft_header(0, major, 0), data, meta));
    require_corruption(fs, p);  // trailing meta bytes in a x.0 file
    fs.put(p, craft_file(craft_header(0, major, 0), data, meta_frame.substr(17)));
    CHECK(same_records(read_all<NoCompression>(fs, p), all));
    // A file read as another major is corrupt: format-1 blocks do not decode
    // as format 2 or 3 and the reverse; formats 2 and 3 differ in the meta
    // block (the tombstone count).
    for (std::uint16_t other : {1, 2, 3}) {
      if (other == major) continue;
      INFO("read as major " << other);
      fs.put(p, craft_file(craft_header(0, other, 0), data, meta_frame.substr(17)));
      require_corruption(fs, p);
    }
    }
    const std::string v3 = craft_chunk(blocks);
    const std::uint64_t meta_offset = sd::decode_fixed64(v3.data() + v3.size() - 32);
    const std::string data = v3.substr(16, meta_offset - 16);
    const std::string meta = v3.substr(meta_offset + 17, v3.size() - 32 - meta_offset - 17);
    for (std::uint16_t major : {0, 6, 0xffff}) {
      fs.put(p, craft_file(craft_header(0, major, 0), data, meta));
      require_corruption(fs, p);
      try {
        ChunkTable<NoCompression>::open(fs, p);
      } catch (const CorruptionError& e) {
        CHECK(e.offset() == 8);
        CHECK(std::string(e.what()).find("not supported") != std::string::npos);
      }
    }
  }
  SECTION("keys not ascending inside a block, with valid checksums") {
    fs.put(p, craft_chunk({{{"a", 1, ""}, {"c", 1, ""}, {"b", 1, ""}}}));
    const auto t = ChunkTable<NoCompression>::open(fs, p);
    CHECK_THROWS_AS(t->read_block(0), CorruptionError);
    fs.put(p, craft_chunk({{{"b", 1, ""}, {"b", 1, ""}}}, 1, 1));
    require_corruption(fs, p);
  }
  SECTION("blocks disagreeing with the index, with valid checksums") {
    // Blocks overlap: the first block's last key is not below the next first key.
    fs.put(p, craft_chunk({{{"a", 1, ""}, {"d", 1, ""}}, {{"c", 1, ""}}}));
    require_corruption(fs, p);
    // Index first keys not ascending.
    fs.put(p, craft_chunk({{{"c", 1, ""}}, {{"a", 1, ""}}}));
    require_corruption(fs, p);
  }
  SECTION("unknown compression ids, with valid checksums") {
    fs.put(p, craft_chunk(blocks, 0, 7));  // block id 7
    require_corruption(fs, p);
    fs.put(p, craft_chunk(blocks, 0, Lz4Alias::id));  // readable only by Lz4Alias ...
    require_corruption<Lz4Compression>(fs, p);
    CHECK(same_records(read_all<Lz4Alias>(fs, p), all));  // ... which reads it
    fs.put(p, craft_chunk(blocks, 9, 0));  // header id 9
    require_corruption(fs, p);
  }
  SECTION("reserved header bytes must be zero even with a valid checksum") {
    std::string header = craft_header();
    header[14] = 1;
    std::string file = craft_chunk(blocks);
    const std::uint64_t meta_offset = sd::decode_fixed64(file.data() + file.size() - 32);
    const std::string meta_frame = file.substr(meta_offset, file.size() - 32 - meta_offset);
    fs.put(p, craft_file(header, file.substr(16, meta_offset - 16), meta_frame.substr(17)));
    require_corruption(fs, p);
  }
}

TEST_CASE("hostile lengths are rejected quickly without huge allocations", "[chunk][format]") {
  MemFileSystem fs;
  const std::filesystem::path p = "x.chunk";
  const std::string header = craft_header();
  const std::string bloom = bloom_over({"a"});
  const std::string block = craft_frame(0, 0, "", cf::kDataSeed);  // content irrelevant: meta fails first
  const auto start = std::chrono::steady_clock::now();

  auto meta_tail = [&](std::string last_key = "a", std::uint64_t records = 1, std::uint64_t tombstones = 0) {
    std::string m;
    sd::put_bytes(m, last_key);
    sd::put_varint(m, records);
    sd::put_varint(m, 1);
    sd::put_bytes(m, bloom);
    sd::put_varint(m, tombstones);
    return m;
  };
  auto one_block_index = [&](std::uint64_t offset, std::uint32_t framed, std::uint64_t key_len = 1) {
    std::string m;
    sd::put_varint(m, 1);
    sd::put_fixed64(m, offset);
    sd::put_fixed32(m, framed);
    sd::put_varint(m, key_len);
    m += "a";
    return m;
  };

  SECTION("block count") {
    std::string m;
    sd::put_varint(m, std::uint64_t{1} << 62);
    fs.put(p, craft_file(header, "", m + meta_tail()));
    require_corruption(fs, p);
    m.clear();
    sd::put_varint(m, ~std::uint64_t{0});
    fs.put(p, craft_file(header, "", m + meta_tail()));
    require_corruption(fs, p);
  }
  SECTION("block offset and size") {
    fs.put(p, craft_file(header, block, one_block_index(16, 0xffffffffu) + meta_tail()));
    require_corruption(fs, p);
    fs.put(p, craft_file(header, block, one_block_index(~std::uint64_t{0} - 5, 17) + meta_tail()));
    require_corruption(fs, p);
    fs.put(p, craft_file(header, block, one_block_index(16, 16) + meta_tail()));
    require_corruption(fs, p);
  }
  SECTION("key, last key and Bloom filter lengths") {
    fs.put(p, craft_file(header, block, one_block_index(16, 17, std::uint64_t{1} << 50) + meta_tail()));
    require_corruption(fs, p);
    std::string m = one_block_index(16, 17);
    sd::put_varint(m, std::uint64_t{1} << 40);  // last key length
    fs.put(p, craft_file(header, block, m));
    require_corruption(fs, p);
    m = one_block_index(16, 17);
    sd::put_bytes(m, "a");
    sd::put_varint(m, 1);
    sd::put_varint(m, 1);
    sd::put_varint(m, ~std::uint64_t{0} >> 1);  // Bloom filter length
    fs.put(p, craft_file(header, block, m));
    require_corruption(fs, p);
  }
  SECTION("raw sizes of frames") {
    // Meta frame declaring 4 GiB - 1 raw bytes (valid checksum).
    fs.put(p, craft_file(header, "", std::string(100, '\0'), 1, 0xffffffffu));
    require_corruption(fs, p);
    // Just over the 255:1 bound.
    fs.put(p, craft_file(header, "", std::string(100, '\0'), 1, 255 * 100 + 65));
    require_corruption(fs, p);
    // Data block declaring a huge raw size.
    const std::string big = craft_frame(1, 0xfffffff0u, std::string(64, 'z'), cf::kDataSeed);
    std::string m = one_block_index(16, static_cast<std::uint32_t>(big.size()));
    fs.put(p, craft_file(header, big, m + meta_tail()));
    const auto t = ChunkTable<NoCompression>::open(fs, p);
    CHECK_THROWS_AS(t->read_block(0), CorruptionError);
    // A data block whose record count claims 2^32 - 1 records.
    std::string raw = craft_block({{"a", 1, "v"}}, 3);
    sd::encode_fixed32(raw.data() + raw.size() - 4, 0xffffffffu);
    const std::string f = craft_frame(0, static_cast<std::uint32_t>(raw.size()), raw, cf::kDataSeed);
    fs.put(p, craft_file(header, f, one_block_index(16, static_cast<std::uint32_t>(f.size())) + meta_tail()));
    require_corruption(fs, p);
  }
  SECTION("footer offsets and sizes (valid footer checksum)") {
    std::string good = craft_chunk({{{"a", 1, ""}}});
    const std::uint64_t meta_offset = sd::decode_fixed64(good.data() + good.size() - 32);
    const std::uint64_t meta_size = sd::decode_fixed64(good.data() + good.size() - 24);
    auto with_footer = [&](std::uint64_t off, std::uint64_t size) {
      return good.substr(0, good.size() - 32) + craft_footer(header, off, size);
    };
    fs.put(p, with_footer(meta_offset, meta_size));
    CHECK_NOTHROW(read_all<NoCompression>(fs, p));
    fs.put(p, with_footer(meta_offset, std::uint64_t{1} << 63));
    require_corruption(fs, p);
    fs.put(p, with_footer(~std::uint64_t{0}, meta_size));
    require_corruption(fs, p);
    fs.put(p, with_footer(0, meta_offset + meta_size));
    require_corruption(fs, p);
    fs.put(p, with_footer(meta_offset + 1, meta_size - 1));
    require_corruption(fs, p);
  }
  SECTION("counts that contradict the blocks") {
    // More blocks than records.
    const std::string raw = craft_block({{"a", 1, ""}}, 3);
    const std::string f = craft_frame(0, static_cast<std::uint32_t>(raw.size()), raw, cf::kDataSeed);
    fs.put(p, craft_file(header, f, one_block_index(16, static_cast<std::uint32_t>(f.size())) + meta_tail("a", 0)));
    require_corruption(fs, p);
    // Last key before the last block's first key.
    fs.put(p, craft_file(header, f, one_block_index(16, static_cast<std::uint32_t>(f.size())) + meta_tail("")));
    require_corruption(fs, p);
    // Sequence number above the declared maximum (meta_tail declares 1).
    const std::string raw2 = craft_block({{"a", 2, ""}}, 3);
    const std::string f2 = craft_frame(0, static_cast<std::uint32_t>(raw2.size()), raw2, cf::kDataSeed);
    fs.put(p, craft_file(header, f2, one_block_index(16, static_cast<std::uint32_t>(f2.size())) + meta_tail()));
    require_corruption(fs, p);
    // ... and the same block with the maximum it names reads.
    const std::string raw1 = craft_block({{"a", 1, ""}}, 3);
    const std::string f1 = craft_frame(0, static_cast<std::uint32_t>(raw1.size()), raw1, cf::kDataSeed);
    fs.put(p, craft_file(header, f1, one_block_index(16, static_cast<std::uint32_t>(f1.size())) + meta_tail()));
    CHECK(same_records(read_all<NoCompression>(fs, p), {{"a", 1, ""}}));
    // More tombstones than records; a format-3 meta block without its
    // tombstone count; bytes after it in a 3.0 file (a 3.1 file may have them).
    fs.put(p, craft_file(header, f1, one_block_index(16, static_cast<std::uint32_t>(f1.size())) + meta_tail("a", 1, 2)));
    require_corruption(fs, p);
    std::string no_count = one_block_index(16, static_cast<std::uint32_t>(f1.size())) + meta_tail();
    no_count.pop_back();
    fs.put(p, craft_file(header, f1, no_count));
    require_corruption(fs, p);
    const std::string extra = one_block_index(16, static_cast<std::uint32_t>(f1.size())) + meta_tail() + "x";
    fs.put(p, craft_file(header, f1, extra));
    require_corruption(fs, p);
    fs.put(p, craft_file(craft_header(0, 3, 1), f1, extra));
    CHECK(same_records(read_all<NoCompression>(fs, p), {{"a", 1, ""}}));
    // An empty chunk that declares records.
    std::string m;
    sd::put_varint(m, 0);
    fs.put(p, craft_file(header, "", m + meta_tail("", 1)));
    require_corruption(fs, p);
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed < std::chrono::seconds(2));
}

namespace {

// The keys of recs, their neighbours and some strangers.
std::vector<std::string> probes_for(const std::vector<Rec>& recs, std::mt19937_64& rng) {
  std::vector<std::string> probes;
  for (const auto& r : recs) {
    probes.push_back(r.key);
    probes.push_back(r.key + '\0');
    probes.push_back(r.key + "\xff");
    if (!r.key.empty()) {
      probes.push_back(r.key.substr(0, r.key.size() - 1));
      std::string k = r.key;
      k.back() = static_cast<char>(k.back() - 1);
      probes.push_back(k);
      k = r.key;
      k[rng() % k.size()] = static_cast<char>(rng());
      probes.push_back(k);
    }
  }
  probes.push_back("");
  probes.push_back(std::string(40, '\xff'));
  probes.push_back(random_bytes(rng, 12));
  return probes;
}

// Checks every accessor of b against recs, and lower_bound against
// std::lower_bound for probes_for(recs).
void check_block(const Block& b, const std::vector<Rec>& recs, std::mt19937_64& rng) {
  REQUIRE(b.size() == recs.size());
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < recs.size(); ++i)
    if (b.key(i) != recs[i].key || b.seq(i) != recs[i].seq || b.value(i) != recs[i].value ||
        b.tombstone(i) != recs[i].tomb)
      ++wrong;
  CHECK(wrong == 0);
  std::size_t bad = 0;
  for (const auto& q : probes_for(recs, rng)) {
    const auto it = std::lower_bound(recs.begin(), recs.end(), q, [](const Rec& r, const std::string& k) { return r.key < k; });
    if (b.lower_bound(q) != static_cast<std::size_t>(it - recs.begin())) ++bad;
  }
  CHECK(bad == 0);
}

// Checks Block::find_stored over `raw` (recs as a format-2 or format-3
// block) against recs for probes_for(recs).
void check_stored(const std::string& raw, bool kinds, const std::vector<Rec>& recs, std::mt19937_64& rng) {
  std::string key_buf;
  std::size_t bad = 0;
  for (const auto& q : probes_for(recs, rng)) {
    const auto it = std::find_if(recs.begin(), recs.end(), [&](const Rec& r) { return r.key == q; });
    const Block::Holds want =
        it == recs.end() ? Block::Holds::absent : it->tomb ? Block::Holds::tombstone : Block::Holds::put;
    if (Block::find_stored(raw, q, kinds, "f", 0, key_buf) != want) ++bad;
  }
  CHECK(bad == 0);
}

std::vector<Rec> sorted_unique(std::vector<Rec> recs) {
  std::sort(recs.begin(), recs.end(), [](const Rec& a, const Rec& b) { return a.key < b.key; });
  recs.erase(std::unique(recs.begin(), recs.end(), [](const Rec& a, const Rec& b) { return a.key == b.key; }),
             recs.end());
  return recs;
}

}  // namespace

TEST_CASE("format-2 blocks round trip; lower_bound agrees with std::lower_bound", "[chunk][format]") {
  const std::filesystem::path file = "f";
  std::mt19937_64 rng(2024);
  SECTION("sizes around the restart interval") {
    for (std::size_t n : {1, 2, 15, 16, 17, 31, 32, 33, 48, 100, 257}) {
      INFO("records " << n);
      std::vector<Rec> recs;
      for (std::size_t i = 0; i < n; ++i) {
        char key[32];
        std::snprintf(key, sizeof key, "%016zu", i * 3 + 1000);
        recs.push_back({key, i * 7919, std::string(i % 3 == 0 ? 100 : 20, static_cast<char>('a' + i % 26))});
      }
      const std::string raw = craft_block_v2(recs);
      CHECK(sd::decode_fixed32(raw.data() + raw.size() - 4) == (n + 15) / 16);
      const auto b = Block::parse(raw, file, 0, 2);
      check_block(*b, recs, rng);
      check_stored(raw, false, recs, rng);
      // As format 1, the same records give the same block.
      const auto v1 = Block::parse(craft_block_v1(recs), file, 0, 1);
      check_block(*v1, recs, rng);
      CHECK(b->charge() >= raw.size());
      // As format 3, and with every third record a tombstone.
      check_block(*Block::parse(craft_block_v3(recs), file, 0, 3), recs, rng);
      std::vector<Rec> mixed = recs;
      for (std::size_t i = 0; i < n; i += 3) {
        mixed[i].tomb = true;
        mixed[i].value.clear();
      }
      const auto b3 = Block::parse(craft_block_v3(mixed), file, 0, 3);
      CHECK(b3->has_kinds());
      CHECK_FALSE(b->has_kinds());
      check_block(*b3, mixed, rng);
      check_stored(craft_block_v3(mixed), true, mixed, rng);
    }
  }
  SECTION("one record, empty keys and values") {
    check_block(*Block::parse(craft_block_v2({{"", 0, ""}}), file, 0, 2), {{"", 0, ""}}, rng);
    const std::vector<Rec> recs = {{"", 1, ""}, {std::string(1, '\0'), 2, ""}, {std::string(2, '\0'), ~0ull, "x"}};
    check_block(*Block::parse(craft_block_v2(recs), file, 0, 2), recs, rng);
    check_block(*Block::parse(craft_block_v3({{"", 0, "", true}}), file, 0, 3), {{"", 0, "", true}}, rng);
    const std::vector<Rec> recs3 = {
        {"", 1, ""}, {std::string(1, '\0'), cf::kMaxSeq, "", true}, {std::string(2, '\0'), cf::kMaxSeq, "x"}};
    check_block(*Block::parse(craft_block_v3(recs3), file, 0, 3), recs3, rng);
  }
  SECTION("huge keys sharing long prefixes, keys differing only past 8 bytes and in trailing zeros") {
    std::vector<Rec> recs;
    const std::string base(70000, 'k');
    for (int i = 0; i < 40; ++i) recs.push_back({base + std::to_string(1000 + i), static_cast<std::uint64_t>(i), "v"});
    recs.push_back({base + "2", 99, std::string(5000, 'w')});
    const std::string raw = craft_block_v2(recs);
    CHECK(raw.size() < 3 * 70000 + 6000);  // three restart keys stored in full, the rest shared
    check_block(*Block::parse(raw, file, 0, 2), recs, rng);
    check_stored(raw, false, recs, rng);
    // Ties in the 8-byte search prefixes: everything differs only after them.
    std::vector<Rec> ties;
    for (int i = 0; i < 300; ++i)
      ties.push_back({std::string("a") + std::string(12, 'z') + std::to_string(100000 + i * 13), 1, ""});
    ties.push_back({std::string("a") + std::string(12, 'z'), 1, ""});
    ties.push_back({std::string("a") + std::string(12, 'z') + std::string(3, '\0'), 1, ""});
    ties.push_back({"b", 1, ""});
    ties = sorted_unique(ties);
    check_block(*Block::parse(craft_block_v2(ties), file, 0, 2), ties, rng);
    check_stored(craft_block_v2(ties), false, ties, rng);
  }
  SECTION("random binary keys") {
    for (int round = 0; round < 50; ++round) {
      std::vector<Rec> recs;
      const std::string common = random_bytes(rng, rng() % 12);
      const std::size_t n = 1 + rng() % 120;
      for (std::size_t i = 0; i < n; ++i) {
        std::string k = common + random_bytes(rng, rng() % 4);
        if (rng() % 3 == 0) k += std::string(rng() % 10, (rng() & 1) ? '\0' : '\xff');
        recs.push_back({k, rng() >> (rng() % 64), random_bytes(rng, rng() % 3 == 0 ? 0 : rng() % 40)});
      }
      recs = sorted_unique(recs);
      check_block(*Block::parse(craft_block_v2(recs), file, 7, 2), recs, rng);
      for (auto& r : recs) {
        r.seq >>= 1;
        r.tomb = r.value.empty() && (rng() & 1);
      }
      check_block(*Block::parse(craft_block_v3(recs), file, 7, 3), recs, rng);
      check_stored(craft_block_v3(recs), true, recs, rng);
    }
  }
}

TEST_CASE("Block::find_stored survives every flipped byte and truncation of a block", "[chunk][format]") {
  // It checks only what it reads (the frame's checksum guards the rest), so
  // damage may also go unnoticed; what it must never do is read out of
  // bounds, loop, or throw anything but CorruptionError.
  std::vector<Rec> recs;
  for (int i = 0; i < 50; ++i)
    recs.push_back({"key" + std::to_string(1000 + i * 7), static_cast<std::uint64_t>(i), i % 5 == 2 ? "" : "value",
                    i % 5 == 2});
  const std::string raw = craft_block_v3(recs);
  std::mt19937_64 rng(11);
  const auto probes = probes_for(recs, rng);
  std::string key_buf;
  std::size_t corruption = 0, answers = 0;
  auto run = [&](const std::string& bad) {
    for (std::size_t q = 0; q < probes.size(); q += 7) {
      try {
        Block::find_stored(bad, probes[q], true, "f", 5, key_buf);
        ++answers;
      } catch (const CorruptionError& e) {
        CHECK(e.offset() == 5);
        ++corruption;
      }
    }
  };
  for (std::size_t i = 0; i < raw.size(); ++i) {
    std::string bad = raw;
    bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
    run(bad);
    bad[i] = static_cast<char>(0xff);
    run(bad);
    run(raw.substr(0, i));
  }
  CHECK(corruption > 0);
  CHECK(answers > 0);
}

TEST_CASE("Block::parse of format 2 rejects malformed blocks", "[chunk][format]") {
  const std::filesystem::path file = "f";
  std::vector<Rec> recs;
  for (int i = 0; i < 40; ++i) recs.push_back({"key" + std::to_string(100 + i), static_cast<std::uint64_t>(i), "val"});
  const std::string raw = craft_block_v2(recs);
  auto rejects = [&](const std::string& bad) {
    try {
      Block::parse(bad, file, 99, 2);
      FAIL("accepted");
    } catch (const CorruptionError& e) {
      INFO(e.what());
      CHECK(e.file() == file);
      CHECK(e.offset() == 99);
    }
  };
  // One hand-encoded record: shared, unshared << 1 | same, seq, [value length], suffix, value.
  auto rec = [](std::uint64_t shared, std::uint64_t tagged, std::uint64_t seq, std::optional<std::uint64_t> vlen,
                std::string_view suffix, std::string_view value) {
    std::string r;
    sd::put_varint(r, shared);
    sd::put_varint(r, tagged);
    sd::put_varint(r, seq);
    if (vlen) sd::put_varint(r, *vlen);
    return r + std::string(suffix) + std::string(value);
  };
  auto block = [](const std::vector<std::string>& records, std::vector<std::uint32_t> restarts = {0}) {
    std::string b;
    for (auto& r : records) b += r;
    for (auto o : restarts) sd::put_fixed32(b, o);
    sd::put_fixed32(b, static_cast<std::uint32_t>(restarts.size()));
    return b;
  };
  CHECK_NOTHROW(Block::parse(block({rec(0, 2, 1, 1, "a", "v"), rec(1, 3, 1, std::nullopt, "b", "w")}), file, 0, 2));
  CHECK_NOTHROW(Block::parse(raw, file, 0, 2));
  SECTION("counts") {
    rejects("");
    rejects("abc");
    rejects(std::string(4, '\0'));
    rejects(std::string("\x00\x00\x00\x00\xff\xff\xff\xff", 8));
    std::string bad = raw;
    sd::encode_fixed32(bad.data() + bad.size() - 4, 4);  // 40 records need 3 restarts
    rejects(bad);
    sd::encode_fixed32(bad.data() + bad.size() - 4, 2);
    rejects(bad);
    rejects(block({rec(0, 2, 1, 1, "a", "v")}, {0, 0}));  // a restart without records
  }
  SECTION("restart points") {
    std::string bad = raw;
    const std::size_t at = bad.size() - 4 - 12;
    sd::encode_fixed32(bad.data() + at + 4, sd::decode_fixed32(bad.data() + at + 4) + 1);
    rejects(bad);
    bad = raw;
    sd::encode_fixed32(bad.data() + at, 1);
    rejects(bad);
    rejects(block({rec(1, 2, 1, 1, "a", "v")}));  // the first record shares bytes
    rejects(block({rec(0, 3, 1, std::nullopt, "a", "")}));  // ... or has no value length
    std::vector<std::string> seventeen;
    seventeen.push_back(rec(0, 2, 1, 0, "a", ""));
    for (int i = 1; i < 17; ++i) seventeen.push_back(rec(0, 3, 1, std::nullopt, std::string(1, static_cast<char>('a' + i)), ""));
    CHECK_NOTHROW(Block::parse(block({seventeen.begin(), seventeen.begin() + 16}, {0}), file, 0, 2));
    rejects(block(seventeen, {0}));  // record 16 needs a second restart point
  }
  SECTION("shared lengths") {
    rejects(block({rec(0, 2, 1, 0, "a", ""), rec(2, 3, 1, std::nullopt, "b", "")}));    // more than the previous key has
    rejects(block({rec(0, 4, 1, 0, "ab", ""), rec(0, 5, 1, std::nullopt, "ac", "")}));  // not the whole common prefix
    rejects(block({rec(0, 4, 1, 0, "ab", ""), rec(1, 3, 1, std::nullopt, "b", "")}));   // ... (equal key)
    rejects(block({rec(0, 4, 1, 1, "ab", "x"), rec(1, 2, 1, 1, "c", "y")}));     // value length not flagged
    CHECK_NOTHROW(Block::parse(block({rec(0, 2, 1, 1, "a", "v"), rec(0, 3, 1, std::nullopt, "b", "w")}), file, 0, 2));
  }
  SECTION("order") {
    rejects(block({rec(0, 4, 1, 0, "ab", ""), rec(1, 3, 1, std::nullopt, "a", "")}));  // 'a' < 'b'
    rejects(block({rec(0, 4, 1, 0, "ab", ""), rec(2, 1, 1, std::nullopt, "", "")}));   // equal
    rejects(block({rec(0, 4, 1, 0, "ab", ""), rec(1, 1, 1, std::nullopt, "", "")}));   // a proper prefix
    CHECK_NOTHROW(Block::parse(block({rec(0, 4, 1, 0, "ab", ""), rec(1, 3, 1, std::nullopt, "c", "")}), file, 0, 2));
    std::vector<Rec> at_restart;
    for (int i = 0; i < 17; ++i) at_restart.push_back({std::string(1, static_cast<char>('b' + i)), 1, ""});
    at_restart[16].key = "a";  // out of order exactly at the second restart point
    rejects(craft_block_v2(at_restart));
  }
  SECTION("lengths past the end, trailing bytes, overlong varints") {
    rejects(block({rec(0, 2000, 1, 1, "a", "v")}));
    rejects(block({rec(0, 2, 1, 1000, "a", "v")}));
    rejects(block({rec(0, 2, 1, 1, "a", "v") + "!"}));
    rejects(block({std::string("\x00\x02", 2) + std::string(10, '\x80') + "\x01" + std::string("\x01av", 3)}));
    rejects(block({rec(0, ~std::uint64_t{0}, 1, 1, "a", "v")}));
    rejects(block({rec(0, 2, 1, ~std::uint64_t{0}, "a", "v")}));
  }
  SECTION("random mutations: CorruptionError or a block whose accessors stay in bounds") {
    const std::size_t accepted = parse_mutations(raw, 9, 2, [](const Block& b, const std::string& bad) {
      std::size_t sum = 0;
      for (std::size_t i = 0; i < b.size(); ++i) {
        sum += b.value(i).size() + (b.seq(i) & 1);
        CHECK(b.lower_bound(b.key(i)) == i);
      }
      CHECK(sum <= bad.size());
      for (std::size_t i = 1; i < b.size(); ++i) CHECK(b.key(i - 1) < b.key(i));
    });
    CHECK(accepted < 20000);
  }
  SECTION("an unknown major") {
    rejects(raw.substr(0, 0));
    CHECK_THROWS_AS(Block::parse(raw, file, 0, 0), CorruptionError);
    CHECK_THROWS_AS(Block::parse(raw, file, 0, 4), CorruptionError);
  }
}

TEST_CASE("Block::parse of format 3: kinds in the seq field; a tombstone with a value is corrupt", "[chunk][format]") {
  const std::filesystem::path file = "f";
  auto rejects = [&](const std::string& bad) {
    try {
      Block::parse(bad, file, 99, 3);
      FAIL("accepted");
    } catch (const CorruptionError& e) {
      INFO(e.what());
      CHECK(e.file() == file);
      CHECK(e.offset() == 99);
    }
  };
  std::vector<Rec> recs;
  for (int i = 0; i < 40; ++i) {
    recs.push_back({"key" + std::to_string(100 + i), static_cast<std::uint64_t>(i), i % 4 == 1 ? "" : "val", i % 4 == 1});
  }
  const std::string raw = craft_block_v3(recs);
  std::mt19937_64 rng(3);
  check_block(*Block::parse(raw, file, 0, 3), recs, rng);
  SECTION("a tombstone with a value, its length stored or flagged as the previous one's") {
    // Records 0 and 1 of the block: "key100" put of "val", "key101" tombstone.
    std::vector<Rec> bad = recs;
    bad[1].value = "x";
    rejects(craft_block_v3(bad));  // value length stored (1, differs from 3)
    bad[1].value = "val";
    rejects(craft_block_v3(bad));  // value length flagged: same as the previous record's
    bad = {{"a", 0, std::string(1000, 'v'), true}};
    rejects(craft_block_v3(bad));
    // A tombstone at a restart point and past it.
    bad = recs;
    bad[16].tomb = true;
    rejects(craft_block_v3(bad));
    bad = recs;
    bad[39].tomb = true;
    rejects(craft_block_v3(bad));
  }
  SECTION("the kind bit is read only in format 3") {
    // The same bytes as format 2: every seq field is a plain sequence number, no tombstones.
    const auto b2 = Block::parse(raw, file, 0, 2);
    for (std::size_t i = 0; i < b2->size(); ++i) {
      CHECK_FALSE(b2->tombstone(i));
      CHECK(b2->seq(i) == seq_field(recs[i]));
    }
    // A format-2 block whose odd sequence numbers meet values is corrupt as format 3.
    rejects(craft_block_v2({{"a", 1, "v"}}));
    CHECK(Block::parse(craft_block_v2({{"a", 1, ""}}), file, 0, 3)->tombstone(0));
  }
  SECTION("the largest seq field, and overlong ones") {
    const auto b = Block::parse(craft_block_v3({{"a", cf::kMaxSeq, "", true}, {"b", cf::kMaxSeq, "v"}}), file, 0, 3);
    CHECK(b->seq(0) == cf::kMaxSeq);
    CHECK(b->tombstone(0));
    CHECK(b->seq(1) == cf::kMaxSeq);
    CHECK_FALSE(b->tombstone(1));
    std::string over;
    sd::put_varint(over, 0);
    sd::put_varint(over, 2);
    over += std::string(9, '\xff') + "\x02";  // a 10-byte varint above 2^64 - 1
    sd::put_varint(over, 0);
    over += "a";
    sd::put_fixed32(over, 0);
    sd::put_fixed32(over, 1);
    rejects(over);
  }
  SECTION("random mutations: CorruptionError or a block whose accessors stay in bounds") {
    const std::size_t accepted = parse_mutations(raw, 13, 3, [](const Block& b, const std::string& bad) {
      std::size_t sum = 0;
      for (std::size_t i = 0; i < b.size(); ++i) {
        sum += b.value(i).size() + (b.seq(i) & 1);
        CHECK(b.seq(i) <= cf::kMaxSeq);
        if (b.tombstone(i)) CHECK(b.value(i).empty());
        CHECK(b.lower_bound(b.key(i)) == i);
      }
      CHECK(sum <= bad.size());
      for (std::size_t i = 1; i < b.size(); ++i) CHECK(b.key(i - 1) < b.key(i));
    });
    CHECK(accepted < 20000);
  }
}

TEST_CASE("the writer writes format 4 with prefix-compressed keys; format-1 to format-3 files still read",
          "[chunk][format]") {
  MemFileSystem fs;
  std::vector<Rec> recs;
  for (int i = 0; i < 5000; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "%016d", i * 3);
    recs.push_back({key, static_cast<std::uint64_t>(i + 1), std::string(100, static_cast<char>('a' + i % 26))});
  }
  write_chunk<NoCompression>(fs, "v4", recs);
  const std::string v4 = fs.bytes("v4");
  CHECK(sd::decode_fixed16(v4.data() + 8) == 4);
  write_chunk<NoCompression>(fs, "v3", recs, 4096, 3);
  const std::string v3 = fs.bytes("v3");
  CHECK(sd::decode_fixed16(v3.data() + 8) == 3);
  write_chunk<NoCompression>(fs, "v2", recs, 4096, 2);
  const std::string v2 = fs.bytes("v2");
  CHECK(sd::decode_fixed16(v2.data() + 8) == 2);
  fs.put("v1", craft_chunk({recs}, 0, 0, 1));
  const std::string v1 = fs.bytes("v1");
  INFO("format 3 " << v3.size() << " bytes, format 2 " << v2.size() << ", format 1 " << v1.size());
  CHECK(v2.size() * 100 < v1.size() * 90);  // 16 of 120 bytes per record are mostly shared
  // seq << 1 takes a second byte only for seq 64..127 here (64 records), and
  // the meta block gains the tombstone count.
  CHECK(v3.size() <= v2.size() + 64 + 32);
  // seq << 2 takes a second byte from seq 32 (32 more records) and a third
  // from 4096 (905 records); the meta block gains the uncounted count.
  CHECK(v4.size() <= v3.size() + 32 + 905 + 8);
  CHECK(same_records(read_all<NoCompression>(fs, "v4"), recs));
  CHECK(same_records(read_all<NoCompression>(fs, "v3"), recs));
  CHECK(same_records(read_all<NoCompression>(fs, "v2"), recs));
  CHECK(same_records(read_all<NoCompression>(fs, "v1"), recs));
  CHECK(ChunkTable<NoCompression>::open(fs, "v2")->format_major() == 2);
  CHECK(ChunkTable<NoCompression>::open(fs, "v1")->format_major() == 1);
  // Blocks close on their decoded size, as in format 1: the same cache charge per block.
  const auto t = ChunkTable<NoCompression>::open(fs, "v3");
  for (std::size_t b = 0; b + 1 < t->block_count(); ++b) {
    const auto block = t->read_block(b);
    CHECK(block->size() >= 33);  // 33 or 34 records of 123-124 decoded bytes reach 4096
    CHECK(block->size() <= 34);
  }
}

TEST_CASE("the format-1 and format-2 fixtures' chunk files read", "[chunk][format]") {
  auto& fs = *stowage::default_file_system();
  for (const int major : {1, 2}) {
    INFO("format-v" << major);
    const auto dir = std::filesystem::path(STOWAGE_TEST_SOURCE_DIR) / "data" / ("format-v" + std::to_string(major));
    std::size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.path().extension() != ".chunk") continue;
      ++files;
      std::string bytes(static_cast<std::size_t>(std::filesystem::file_size(e.path())), '\0');
      fs.open_read(e.path())->read(0, bytes.size(), bytes.data());
      CHECK(sd::decode_fixed16(bytes.data() + 8) == major);
      const auto t = ChunkTable<Lz4Compression>::open(fs, e.path());
      CHECK(t->format_major() == major);
      CHECK(t->tombstones() == 0);
      std::size_t n = 0;
      std::string prev;
      for (std::size_t b = 0; b < t->block_count(); ++b) {
        const auto block = t->read_block(b);
        CHECK_FALSE(block->has_kinds());
        for (std::size_t i = 0; i < block->size(); ++i, ++n) {
          if (n > 0) CHECK(prev < block->key(i));
          CHECK(block->lower_bound(block->key(i)) == i);
          CHECK_FALSE(block->tombstone(i));
          prev.assign(block->key(i));
        }
      }
      CHECK(n == t->records());
    }
    CHECK(files >= (major == 1 ? 1 : 3));
  }
}

TEMPLATE_TEST_CASE("block runs read consecutive blocks at once and verify each like read_block", "[chunk]",
                   NoCompression, Lz4Compression) {
  MemFileSystem fs;
  const std::filesystem::path p = "store/000002.chunk";
  const auto recs = small_records();
  write_chunk<TestType>(fs, p, recs, 256);
  const std::string good = fs.bytes(p);
  const auto t = ChunkTable<TestType>::open(fs, p);
  REQUIRE(t->block_count() >= 3);
  for (std::size_t budget : {std::size_t{0}, std::size_t{300}, std::size_t{2000}, std::size_t{1} << 20}) {
    std::vector<Rec> out;
    std::size_t runs = 0;
    for (std::size_t b = 0; b < t->block_count();) {
      const auto run = t->read_block_run(b, budget);
      ++runs;
      REQUIRE(run.first == b);
      REQUIRE(run.count >= 1);
      CHECK((run.count == 1 || run.bytes.size() <= budget));
      for (std::size_t i = b; i < b + run.count; ++i) {
        const auto block = t->block_in_run(run, i);
        for (std::size_t r = 0; r < block->size(); ++r)
          out.push_back({std::string(block->key(r)), block->seq(r), std::string(block->value(r)), block->tombstone(r)});
      }
      CHECK_THROWS_AS(t->block_in_run(run, b + run.count), std::out_of_range);
      if (b > 0) CHECK_THROWS_AS(t->block_in_run(run, b - 1), std::out_of_range);
      // The stored form of each block of the run is what read_stored_block reads.
      const auto file = fs.open_read(p);
      for (std::size_t i = b; i < b + run.count; ++i) CHECK(t->stored_in_run(run, i) == t->read_stored_block(i, *file));
      CHECK_THROWS_AS(t->stored_in_run(run, b + run.count), std::out_of_range);
      if (b > 0) CHECK_THROWS_AS(t->stored_in_run(run, b - 1), std::out_of_range);
      b += run.count;
    }
    CHECK(same_records(out, recs));
    if (budget == 0) CHECK(runs == t->block_count());
    if (budget == (std::size_t{1} << 20)) CHECK(runs == 1);
  }
  CHECK_THROWS_AS(t->read_block_run(t->block_count(), 4096), std::out_of_range);

  // Damage inside the second block: only that block fails, with the error read_block gives.
  std::string read_block_error;
  std::size_t damaged_block = 1;
  {
    std::string bad = good;
    const std::size_t at = good.size() / 4;
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    fs.put(p, bad);
    const auto t2 = ChunkTable<TestType>::open(fs, p);
    for (damaged_block = 0; damaged_block < t2->block_count(); ++damaged_block) {
      try {
        t2->read_block(damaged_block);
      } catch (const CorruptionError& e) {
        read_block_error = e.what();
        break;
      }
    }
    REQUIRE(damaged_block < t2->block_count());
    const auto run = t2->read_block_run(0, std::size_t{1} << 20);
    for (std::size_t i = 0; i < run.count; ++i) {
      if (i == damaged_block) {
        CHECK_THROWS_WITH(t2->block_in_run(run, i), read_block_error);
        CHECK_THROWS_AS(t2->stored_in_run(run, i), CorruptionError);
      } else {
        CHECK(t2->block_in_run(run, i)->size() > 0);
        CHECK_FALSE(t2->stored_in_run(run, i).empty());
      }
    }
  }
  fs.put(p, good);
}

TEMPLATE_TEST_CASE("read_stored keeps a block packed or decompressed, and find agrees with read_block", "[chunk]",
                   NoCompression, Lz4Compression) {
  MemFileSystem fs;
  const std::filesystem::path p = "store/000003.chunk";
  const auto recs = small_records();
  write_chunk<TestType>(fs, p, recs, 256);
  const auto t = ChunkTable<TestType>::open(fs, p);
  const auto file = fs.open_read(p);
  REQUIRE(t->block_count() >= 3);
  std::size_t packed = 0, found = 0, erased = 0;
  sd::StoredBlock::Scratch scratch;
  for (std::size_t b = 0; b < t->block_count(); ++b) {
    std::size_t raw = 0;
    const auto block = t->read_block(b, *file, &raw);
    const auto plain = t->read_stored(b, *file, false);
    const auto small = t->read_stored(b, *file, true);
    CHECK_FALSE(plain->packed());
    CHECK(plain->bytes() == t->read_stored_block(b, *file));
    CHECK(plain->raw_size() == raw);
    CHECK(small->raw_size() == raw);
    CHECK(small->offset() == t->block_offset(b));
    CHECK(small->has_kinds() == block->has_kinds());
    if (small->packed()) {
      ++packed;
      CHECK(small->charge() < plain->charge());  // kept only when compression shrank it
    }
    for (const auto* s : {plain.get(), small.get()}) {
      for (std::size_t r = 0; r < block->size(); ++r) {
        std::string_view value = "unset";
        const auto holds = s->find(block->key(r), p, scratch, &value);
        if (block->tombstone(r)) {
          CHECK(holds == Block::Holds::tombstone);
          ++erased;
        } else {
          REQUIRE(holds == Block::Holds::put);
          CHECK(value == block->value(r));
          ++found;
        }
        // Keys between and around the block's hold nothing.
        CHECK(s->find(std::string(block->key(r)) + '\0', p, scratch) == Block::Holds::absent);
      }
      CHECK(s->find("", p, scratch) == Block::Holds::absent);
    }
  }
  CHECK(found + erased == 2 * recs.size());
  CHECK(erased > 0);
  // Only a compressing policy packs, and it packs the compressible blocks.
  if constexpr (std::is_same_v<TestType, NoCompression>)
    CHECK(packed == 0);
  else
    CHECK(packed > 0);
}

TEMPLATE_TEST_CASE("blocks read through the thread's scratch buffers own their bytes; a large block's scratch is given back; decode_stored agrees",
                   "[chunk]", NoCompression, Lz4Compression) {
  MemFileSystem fs;
  const std::filesystem::path p = "store/000004.chunk";
  auto recs = small_records();
  // One block far larger than the scratch capacity kept between reads.
  std::mt19937_64 rng(5);
  recs[40].value = text_bytes(rng, 3 * sd::ReadScratch::kKeepBytes);
  recs[40].tomb = false;
  write_chunk<TestType>(fs, p, recs, 256);
  const auto t = ChunkTable<TestType>::open(fs, p);
  const auto file = fs.open_read(p);
  REQUIRE(t->block_count() >= 3);
  // Every block read in each form, all kept alive at once: no later read may
  // change an earlier block (each read reuses the same scratch).
  std::vector<std::shared_ptr<const Block>> decoded;
  std::vector<std::shared_ptr<const sd::StoredBlock>> stored, packed;
  for (std::size_t b = 0; b < t->block_count(); ++b) {
    decoded.push_back(t->read_block(b, *file));
    stored.push_back(t->read_stored(b, *file, false));
    packed.push_back(t->read_stored(b, *file, true));
    // Reading the large block grew the scratch; it was given back.
    CHECK(sd::ReadScratch::local().frame.capacity() <= sd::ReadScratch::kKeepBytes);
    CHECK(sd::ReadScratch::local().raw.capacity() <= sd::ReadScratch::kKeepBytes);
  }
  typename ChunkTable<TestType>::BlockRun run = t->read_block_run(0, 1 << 20, *file);
  std::vector<std::shared_ptr<const Block>> from_run;
  for (std::size_t b = 0; b < run.count; ++b) from_run.push_back(t->block_in_run(run, b));
  CHECK(sd::ReadScratch::local().raw.capacity() <= sd::ReadScratch::kKeepBytes);
  sd::StoredBlock::Scratch scratch;
  std::size_t r = 0;
  bool saw_large = false;
  for (std::size_t b = 0; b < t->block_count(); ++b) {
    REQUIRE(decoded[b]->size() > 0);
    CHECK(stored[b]->bytes() == t->read_stored_block(b, *file));
    // Decoded from either stored form, a block is the one read_block decodes.
    for (const auto& form : {stored[b], packed[b]}) {
      const auto again = t->decode_stored(b, *form);
      REQUIRE(again->size() == decoded[b]->size());
      for (std::size_t i = 0; i < again->size(); ++i) {
        CHECK(again->key(i) == decoded[b]->key(i));
        CHECK(again->value(i) == decoded[b]->value(i));
        CHECK(again->tombstone(i) == decoded[b]->tombstone(i));
        CHECK(again->seq(i) == decoded[b]->seq(i));
      }
    }
    for (std::size_t i = 0; i < decoded[b]->size(); ++i, ++r) {
      REQUIRE(r < recs.size());
      CHECK(decoded[b]->key(i) == recs[r].key);
      CHECK(decoded[b]->value(i) == recs[r].value);
      saw_large = saw_large || decoded[b]->value(i).size() == recs[40].value.size();
      if (b < from_run.size()) CHECK(from_run[b]->value(i) == recs[r].value);
      for (const auto& s : {stored[b], packed[b]}) {
        std::string_view value;
        const auto holds = s->find(recs[r].key, p, scratch, &value);
        CHECK(holds == (recs[r].tomb ? Block::Holds::tombstone : Block::Holds::put));
        if (!recs[r].tomb) CHECK(value == recs[r].value);
      }
    }
  }
  CHECK(r == recs.size());
  CHECK(saw_large);
}

TEST_CASE("a packed block whose bytes do not decompress is a CorruptionError naming its frame", "[chunk]") {
  const std::string raw = craft_block_v2({{"a", 1, "x"}, {"b", 2, "y"}});
  sd::StoredBlock::Scratch scratch;
  // Valid LZ4 of the block finds its records.
  std::string packed(static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(raw.size()))), '\0');
  packed.resize(static_cast<std::size_t>(
      LZ4_compress_default(raw.data(), packed.data(), static_cast<int>(raw.size()), static_cast<int>(packed.size()))));
  const sd::StoredBlock good(packed, Lz4Compression::id, raw.size(), &sd::decompress_by_id<Lz4Compression>, 4096, false);
  std::string_view value;
  CHECK(good.find("b", "f", scratch, &value) == Block::Holds::put);
  CHECK(value == "y");
  // Damaged bytes, a wrong raw size and an unknown id all fail cleanly.
  std::string bad = packed;
  bad.pop_back();
  for (const auto& b : {sd::StoredBlock(bad, Lz4Compression::id, raw.size(), &sd::decompress_by_id<Lz4Compression>,
                                        4096, false),
                        sd::StoredBlock(packed, Lz4Compression::id, raw.size() + 1,
                                        &sd::decompress_by_id<Lz4Compression>, 4096, false),
                        sd::StoredBlock(packed, 77, raw.size(), &sd::decompress_by_id<Lz4Compression>, 4096, false)}) {
    try {
      b.find("b", "f", scratch);
      FAIL("no CorruptionError");
    } catch (const CorruptionError& e) {
      CHECK(e.file() == "f");
      CHECK(e.offset() == 4096 + sd::chunk_format::kFrameHeadBytes);
    }
  }
}

TEST_CASE("format 4 flags uncounted records; the meta block counts them", "[chunk][format]") {
  MemFileSystem fs;
  {
    ChunkWriter<NoCompression> w(fs, "u", 64);  // small blocks: the flags span several
    for (int i = 0; i < 200; ++i) {
      char key[16];
      std::snprintf(key, sizeof key, "k%05d", i);
      const bool tomb = i % 3 == 0;
      w.add(key, static_cast<std::uint64_t>(1000 + i), tomb ? "" : "v", tomb, /*uncounted=*/i % 4 == 1 || i % 7 == 0);
    }
    const auto info = w.finish();
    std::uint64_t expect = 0;
    for (int i = 0; i < 200; ++i) expect += (i % 4 == 1 || i % 7 == 0) ? 1 : 0;
    CHECK(info.uncounted == expect);
  }
  const auto t = ChunkTable<NoCompression>::open(fs, "u");
  REQUIRE(t->format_major() == 4);
  CHECK(t->block_count() > 5);
  std::uint64_t uncounted = 0;
  int i = 0;
  for (std::size_t b = 0; b < t->block_count(); ++b) {
    const auto block = t->read_block(b);
    for (std::size_t r = 0; r < block->size(); ++r, ++i) {
      INFO("record " << i);
      CHECK(block->seq(r) == static_cast<std::uint64_t>(1000 + i));
      CHECK(block->tombstone(r) == (i % 3 == 0));
      CHECK(block->uncounted(r) == (i % 4 == 1 || i % 7 == 0));
      if (block->uncounted(r)) ++uncounted;
      std::string scratch;
      const auto holds = Block::find_stored(t->read_stored_block(b, *fs.open_read("u")), block->key(r), true, "u",
                                            0, scratch);
      CHECK(holds == (i % 3 == 0 ? Block::Holds::tombstone : Block::Holds::put));
    }
  }
  CHECK(i == 200);
  CHECK(t->uncounted() == uncounted);
  // Format 3 has no room for the flag; the meta count may not exceed the records.
  ChunkWriter<NoCompression> v3(fs, "v3", 4096, 3);
  CHECK_THROWS_AS(v3.add("a", 1, "x", false, true), std::logic_error);
  ChunkWriter<NoCompression> big(fs, "big");
  CHECK_THROWS_AS(big.add("a", cf::kMaxSeq + 1, "x"), std::logic_error);
  big.add("a", cf::kMaxSeq, "x", false, true);
  big.finish();
  CHECK(ChunkTable<NoCompression>::open(fs, "big")->read_block(0)->seq(0) == cf::kMaxSeq);
  // Format-3 blocks carry no flag.
  const auto b3 = Block::parse(craft_block_v3({{"a", 6, "v"}}), "x", 0, 3);
  CHECK(b3->seq(0) == 6);
  CHECK_FALSE(b3->uncounted(0));
  // A meta block that counts more uncounted records than records is corrupt.
  const std::string file = fs.bytes("u");
  const std::uint64_t meta_offset = sd::decode_fixed64(file.data() + file.size() - 32);
  const std::string data = file.substr(16, meta_offset - 16);
  std::string meta = file.substr(meta_offset + 17, file.size() - 32 - meta_offset - 17);
  REQUIRE(static_cast<unsigned char>(meta.back()) == uncounted);  // the last field, one byte
  fs.put("bad", craft_file(craft_header(0, 4, 0), data, meta));
  CHECK(ChunkTable<NoCompression>::open(fs, "bad")->uncounted() == uncounted);
  meta.back() = '\xc9';
  meta.push_back('\x01');  // 201 of 200 records
  fs.put("bad", craft_file(craft_header(0, 4, 0), data, meta));
  require_corruption(fs, "bad");
}

namespace {
// Key i of the format-5 fixture: its newest record (seq 10000 + 10 i, a
// tombstone when i % 5 == 3) then i % 4 older versions (seq one less each,
// the second of them a tombstone).
std::vector<Rec> versioned_records(int keys) {
  std::vector<Rec> recs;
  for (int i = 0; i < keys; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "k%05d", i);
    const auto head = static_cast<std::uint64_t>(10000 + 10 * i);
    const bool tomb = i % 5 == 3;
    recs.push_back({key, head, tomb ? "" : "new" + std::to_string(i), tomb});
    for (int v = 1; v <= i % 4; ++v)
      recs.push_back({key, head - static_cast<std::uint64_t>(v), v == 2 ? "" : "old" + std::to_string(v), v == 2});
  }
  return recs;
}
}  // namespace

TEST_CASE("format 5 keeps older versions of a key after its newest record, in its block", "[chunk][format]") {
  MemFileSystem fs;
  const std::vector<Rec> recs = versioned_records(300);
  std::uint64_t versions = 0;
  for (std::size_t i = 1; i < recs.size(); ++i) versions += recs[i].key == recs[i - 1].key ? 1 : 0;
  for (std::size_t block_bytes : {std::size_t{64}, std::size_t{4096}}) {
    INFO("block bytes " << block_bytes);
    const auto info = write_chunk<Lz4Compression>(fs, "v5", recs, block_bytes, cf::kVersionsMajor);
    CHECK(info.versions == versions);
    CHECK(info.records == recs.size());
    const auto t = ChunkTable<Lz4Compression>::open(fs, "v5");
    CHECK(t->format_major() == 5);
    CHECK(t->may_repeat());
    CHECK(t->versions() == versions);
    CHECK(same_records(read_all<Lz4Compression>(fs, "v5"), recs));
    if (block_bytes == 64) CHECK(t->block_count() > 50);
    // No key's records span two blocks: each block starts with a newest record.
    std::string last;
    for (std::size_t b = 0; b < t->block_count(); ++b) {
      const auto block = t->read_block(b);
      CHECK(block->key(0) != last);
      last = std::string(block->key(block->size() - 1));
    }
    // Every lookup form finds the newest record of its key.
    const auto file = fs.open_read("v5");
    sd::StoredBlock::Scratch scratch;
    for (std::size_t i = 0; i < recs.size(); ++i) {
      if (i > 0 && recs[i].key == recs[i - 1].key) continue;
      INFO("key " << recs[i].key);
      const auto found = lookup(*t, recs[i].key);
      REQUIRE(found);
      CHECK(found->seq == recs[i].seq);
      CHECK(found->tomb == recs[i].tomb);
      const std::size_t b = t->find_block(recs[i].key);
      for (bool pack : {false, true}) {
        std::string_view value;
        const auto stored = t->read_stored(b, *file, pack);  // value views it
        const auto holds = stored->find(recs[i].key, t->path(), scratch, &value);
        CHECK(holds == (recs[i].tomb ? Block::Holds::tombstone : Block::Holds::put));
        if (!recs[i].tomb) CHECK(value == recs[i].value);
      }
    }
  }
  SECTION("a restart point holding an older version: find_stored finds the newest before it") {
    // Records 0 to 14 are single keys; key "m" is record 15 (newest, a put)
    // and 16 (older, a tombstone, at the second restart point) and 17.
    std::vector<Rec> rs;
    for (int i = 0; i < 15; ++i) rs.push_back({"a" + std::to_string(10 + i), 100, "x"});
    rs.push_back({"m", 90, "newest"});
    rs.push_back({"m", 80, "", true});
    rs.push_back({"m", 70, "oldest"});
    rs.push_back({"z", 60, "y"});
    write_chunk<NoCompression>(fs, "r", rs, 4096, cf::kVersionsMajor);
    const auto t = ChunkTable<NoCompression>::open(fs, "r");
    REQUIRE(t->block_count() == 1);
    const std::string raw = t->read_stored_block(0, *fs.open_read("r"));
    std::string key_buf;
    std::string_view value;
    CHECK(Block::find_stored(raw, "m", true, "r", 0, key_buf, &value, true) == Block::Holds::put);
    CHECK(value == "newest");
    CHECK(Block::find_stored(raw, "z", true, "r", 0, key_buf, &value, true) == Block::Holds::put);
    CHECK(value == "y");
    CHECK(Block::find_stored(raw, "n", true, "r", 0, key_buf, nullptr, true) == Block::Holds::absent);
    CHECK(Block::find_stored(raw, "a10", true, "r", 0, key_buf, nullptr, true) == Block::Holds::put);
    // Read as a format without versions, the restart point's record wins:
    // what the flag is for.
    CHECK(Block::find_stored(raw, "m", true, "r", 0, key_buf, nullptr, false) == Block::Holds::tombstone);
    const auto block = Block::parse(raw, "r", 0, cf::kVersionsMajor);
    CHECK(block->lower_bound("m") == 15);
    CHECK(block->seq(16) == 80);
    // The same bytes as a format-4 block repeat a key: corrupt.
    CHECK_THROWS_AS(Block::parse(raw, "r", 0, cf::kPlainMajor), CorruptionError);
    // find_stored checks what it reads; it never reads out of bounds.
    std::size_t corruption = 0;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      std::string bad = raw;
      bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
      for (const std::string& b : {bad, raw.substr(0, i)}) {
        for (const char* q : {"m", "a12", "z", "n"}) {
          try {
            Block::find_stored(b, q, true, "r", 7, key_buf, &value, true);
          } catch (const CorruptionError& e) {
            CHECK(e.offset() == 7);
            ++corruption;
          }
        }
      }
    }
    CHECK(corruption > 0);
  }
  SECTION("a bound finds each key's first record at or below it, across restart points") {
    // Key "v" has 20 records (seq 100 down to 81, value "s<seq>", seq 90 a
    // tombstone) from record 10 on: they cross the restart point at 16.
    std::vector<Rec> rs;
    for (int i = 0; i < 10; ++i) rs.push_back({"a" + std::to_string(10 + i), 500, "x"});
    for (std::uint64_t q = 100; q > 80; --q) rs.push_back({"v", q, q == 90 ? "" : "s" + std::to_string(q), q == 90});
    rs.push_back({"w", 50, "y"});
    write_chunk<NoCompression>(fs, "b", rs, 4096, cf::kVersionsMajor);
    const auto t = ChunkTable<NoCompression>::open(fs, "b");
    REQUIRE(t->block_count() == 1);
    const std::string raw = t->read_stored_block(0, *fs.open_read("b"));
    std::string key_buf;
    for (std::uint64_t b = 70; b <= 110; ++b) {
      INFO("bound " << b);
      std::string_view value;
      const auto holds = Block::find_stored(raw, "v", true, "b", 0, key_buf, &value, true, b, 2);
      const auto block = t->read_block(0);
      std::size_t i = block->lower_bound("v");
      while (i < block->size() && block->key(i) == "v" && block->seq(i) > b) ++i;
      if (b < 81) {
        CHECK(holds == Block::Holds::absent);
        CHECK(block->key(i) == "w");
      } else if (std::min<std::uint64_t>(b, 100) == 90) {
        CHECK(holds == Block::Holds::tombstone);
        CHECK(block->tombstone(i));
      } else {
        REQUIRE(holds == Block::Holds::put);
        CHECK(value == "s" + std::to_string(std::min<std::uint64_t>(b, 100)));
        CHECK(block->value(i) == value);
      }
      CHECK((Block::find_stored(raw, "w", true, "b", 0, key_buf, nullptr, true, b, 2) == Block::Holds::put) == (b >= 50));
      CHECK(Block::find_stored(raw, "a12", true, "b", 0, key_buf, nullptr, true, b, 2) == Block::Holds::absent);
    }
    // Without versions a bound below the only record finds nothing.
    std::vector<Rec> plain = {{"k", 10, "x"}};
    write_chunk<NoCompression>(fs, "p", plain);
    const std::string praw = ChunkTable<NoCompression>::open(fs, "p")->read_stored_block(0, *fs.open_read("p"));
    CHECK(Block::find_stored(praw, "k", true, "p", 0, key_buf, nullptr, false, 9, 2) == Block::Holds::absent);
    CHECK(Block::find_stored(praw, "k", true, "p", 0, key_buf, nullptr, false, 10, 2) == Block::Holds::put);
  }
  SECTION("the writer's rules for older versions") {
    ChunkWriter<NoCompression> w(fs, "w", 4096, cf::kVersionsMajor);
    w.add("a", 10, "x");
    CHECK_THROWS_AS(w.add("a", 10, "y"), std::logic_error);       // not older
    CHECK_THROWS_AS(w.add("a", 11, "y"), std::logic_error);       // newer
    CHECK_THROWS_AS(w.add("a", 9, "y", false, true), std::logic_error);  // uncounted
    CHECK(w.fits(100));
    w.add("a", 9, "y");
    CHECK(w.versions() == 1);
    w.add("b", 20, "z");
    CHECK_THROWS_AS(w.add("a", 5, "w"), std::logic_error);  // not after its key
    w.finish();
    ChunkWriter<NoCompression> v4(fs, "w4");
    v4.add("a", 10, "x");
    CHECK_THROWS_AS(v4.add("a", 9, "y"), std::logic_error);  // format 4 keeps no versions
  }
  SECTION("hostile bytes: a repeated key without a smaller sequence, counts out of range, read as format 4") {
    std::vector<Rec> rs = {{"a", 10, "x"}, {"a", 9, "y"}, {"b", 3, "z"}};
    write_chunk<NoCompression>(fs, "h", rs, 4096, cf::kVersionsMajor);
    const std::string file = fs.bytes("h");
    const std::uint64_t meta_offset = sd::decode_fixed64(file.data() + file.size() - 32);
    const std::string data = file.substr(16, meta_offset - 16);
    std::string meta = file.substr(meta_offset + 17, file.size() - 32 - meta_offset - 17);
    REQUIRE(meta.back() == '\x01');  // the older version count, the last field
    fs.put("h2", craft_file(craft_header(0, 5, 0), data, meta));
    CHECK(same_records(read_all<NoCompression>(fs, "h2"), rs));
    // As format 4: the version count is a byte too many in a x.0 meta block.
    fs.put("h2", craft_file(craft_header(0, 4, 0), data, meta));
    require_corruption(fs, "h2");
    // A count of versions not below the records.
    meta.back() = '\x03';
    fs.put("h2", craft_file(craft_header(0, 5, 0), data, meta));
    require_corruption(fs, "h2");
    // A block whose repeated key does not go down in sequence (the
    // sequence fields of the two records of "a", seq << 2: 40 and 36,
    // swapped; the block decoder's own check, behind the frame checksum).
    std::string raw = ChunkTable<NoCompression>::open(fs, "h")->read_stored_block(0, *fs.open_read("h"));
    const auto r40 = raw.find('\x28'), r36 = raw.find('\x24');
    REQUIRE(r40 < r36);
    raw[r40] = '\x24';
    raw[r36] = '\x28';
    try {
      Block::parse(raw, "h", 0, cf::kVersionsMajor);
      FAIL("a repeated key with a larger sequence number decoded");
    } catch (const CorruptionError& e) {
      CHECK(std::string(e.what()).find("repeats") != std::string::npos);
    }
  }
}
