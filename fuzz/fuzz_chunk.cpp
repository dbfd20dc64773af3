// fuzz_chunk: chunk files (ChunkTable::open, read_block, Block::parse).
//
// Input: one mode byte, then the bytes of a chunk file (or, in raw-block mode,
// of one decoded data block).
//   bit 0  reader policy: 0 = ChunkTable<NoCompression>, 1 = ChunkTable<Lz4Compression>
//   bit 2  raw-block mode: Block::parse the bytes directly (no framing, no checksums)
//   bit 3  in raw-block mode: decode as a format-1 block (full keys)
//   bit 4  in raw-block mode, bit 3 clear: decode as a format-3 block (kinds)
//   bit 5  in raw-block mode, bits 3 and 4 clear: decode as a format-4 block
//          (kinds and uncounted flags)
//          instead of format 2
// Outside raw-block mode every input is read twice: as given, and with every
// checksum recomputed (footer, meta frame, and each frame found by walking the
// data region from offset 16), so mutations get past the checksums and reach
// the frame, meta and block decoders.
//
// Expected outcome of bad bytes: stowage::CorruptionError. Anything else
// (another exception, a crash, a sanitizer report, a broken reader invariant)
// aborts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <stowage/chunk.hpp>
#include <stowage/compression.hpp>

#include "fuzz_util.hpp"

namespace {

namespace cf = stowage::detail::chunk_format;
using stowage::detail::Block;
using stowage::detail::decode_fixed32;
using stowage::detail::decode_fixed64;
using stowage::detail::encode_fixed64;

constexpr const char* kTarget = "fuzz_chunk";
const std::filesystem::path kPath = "/fuzz/000001.chunk";

void require(bool ok, const char* what) {
  if (!ok) stowage_fuzz::finding(kTarget, what);
}

// lower_bound by a linear scan, to check Block's search against.
std::size_t linear_lower_bound(const Block& b, std::string_view key) {
  std::size_t i = 0;
  while (i < b.size() && b.key(i) < key) ++i;
  return i;
}

// Reads every record of a validated block and checks what Block promises.
void walk_block(const Block& b) {
  require(b.size() >= 1, "a parsed block holds no records");
  std::string_view prev;
  for (std::size_t r = 0; r < b.size(); ++r) {
    const std::string_view key = b.key(r);
    const std::uint64_t seq = b.seq(r);
    const std::string_view value = b.value(r);
    if (b.tombstone(r)) require(value.empty(), "a tombstone has a value after parse");
    if (!b.has_kinds()) {
      require(!b.tombstone(r), "a tombstone in a block without kinds");
      require(!b.uncounted(r), "an uncounted record in a block without kinds");
    }
    (void)seq;
    volatile char sink = 0;
    if (!key.empty()) sink = static_cast<char>(sink ^ key.front() ^ key.back());
    if (!value.empty()) sink = static_cast<char>(sink ^ value.front() ^ value.back());
    if (r > 0) require(prev < key, "Block keys are not strictly ascending after parse");
    require(b.lower_bound(key) == r, "Block::lower_bound(key(r)) != r");
    require(b.lower_bound(std::string(key) + '\0') == r + 1, "Block::lower_bound(key(r) + NUL) != r + 1");
    if (!key.empty() && r < 64) {
      std::string k(key.substr(0, key.size() - 1));
      require(b.lower_bound(k) == linear_lower_bound(b, k), "Block::lower_bound(key(r) minus a byte) is wrong");
      k = std::string(key);
      k.back() = static_cast<char>(k.back() - 1);
      require(b.lower_bound(k) == linear_lower_bound(b, k), "Block::lower_bound(key(r) decremented) is wrong");
    }
    prev = key;
  }
  require(b.lower_bound(std::string(b.key(b.size() - 1)) + std::string(1, '\0')) == b.size(),
          "Block::lower_bound past the last key is not size()");
  (void)b.lower_bound("");
  (void)b.lower_bound("\xff\xff\xff\xff");
  (void)b.charge();
}

template <class Compression>
void read_chunk(std::string_view file) {
  stowage_fuzz::OneFileSystem fs(kPath, file);
  std::shared_ptr<const stowage::detail::ChunkTable<Compression>> t;
  try {
    t = stowage::detail::ChunkTable<Compression>::open(fs, kPath);
  } catch (const stowage::CorruptionError&) {
    return;
  }
  require(t->file_bytes() == file.size(), "file_bytes() differs from the file size");
  (void)t->charge();
  require(t->tombstones() <= t->records(), "more tombstones than records");
  if (t->format_major() < cf::kKindsMajor) require(t->tombstones() == 0, "tombstones in a format-1 or -2 chunk");
  require(t->uncounted() <= t->records(), "more uncounted records than records");
  if (t->format_major() < cf::kCountedMajor) require(t->uncounted() == 0, "uncounted records before format 4");
  const std::size_t blocks = t->block_count();
  if (blocks == 0) {
    require(t->first_key().empty() && t->last_key().empty(), "an empty chunk reports keys");
    require(t->find_block("") == 0 && t->find_block("k") == 0, "find_block in an empty chunk");
    require(!t->may_contain("") && !t->may_contain("k"), "an empty chunk may contain a key");
    return;
  }
  // Probe keys: the bounds, and something before/after them.
  const std::string first(t->first_key()), last(t->last_key());
  require(!(last < first), "last_key precedes first_key");
  for (const std::string& k : {first, last, std::string(), last + '\0', std::string("\xff\xff")}) {
    (void)t->may_contain(k);
    const std::size_t fb = t->find_block(k);
    require(fb <= blocks, "find_block beyond block_count");
  }
  require(t->find_block(first) == 0, "find_block(first_key) != 0");
  std::string prev;
  bool have_prev = false;
  for (std::size_t i = 0; i < blocks; ++i) {
    std::shared_ptr<const Block> b;
    try {
      b = t->read_block(i);
    } catch (const stowage::CorruptionError&) {
      continue;  // a later block may still read: keep going
    }
    walk_block(*b);
    require(b->has_kinds() == (t->format_major() >= cf::kKindsMajor), "a block's kinds disagree with its chunk's format");
    require(b->key(0) >= first && b->key(b->size() - 1) <= last, "a block's keys lie outside the chunk's range");
    for (std::size_t r = 0; r < b->size(); ++r) {
      const std::string_view key = b->key(r);
      require(b->seq(r) <= t->max_seq(), "a record's sequence exceeds max_seq()");
      require(t->find_block(key) == i, "find_block(key) does not name the block holding it");
      if (have_prev && i > 0 && r == 0) require(std::string_view(prev) < key, "keys overlap across blocks");
    }
    prev.assign(b->key(b->size() - 1));
    have_prev = true;
  }
}

// Recomputes every checksum a chunk reader verifies, following the layout the
// bytes themselves declare. Returns false if nothing could be repaired.
bool repair_checksums(std::string& f) {
  if (f.size() < cf::kMinFileBytes) return false;
  const std::size_t body_end = f.size() - cf::kFooterBytes;
  const std::uint64_t meta_offset = decode_fixed64(f.data() + body_end);
  auto fix_frame = [&](std::size_t pos, std::uint64_t seed) -> std::size_t {
    if (pos < cf::kHeaderBytes || pos > body_end || body_end - pos < cf::kFrameHeadBytes) return 0;
    const std::uint64_t stored = decode_fixed32(f.data() + pos + 5);
    if (stored > body_end - pos - cf::kFrameHeadBytes) return 0;
    const std::string_view head(f.data() + pos, 9);
    const std::string_view body(f.data() + pos + cf::kFrameHeadBytes, static_cast<std::size_t>(stored));
    encode_fixed64(f.data() + pos + 9, stowage::detail::frame_checksum(head, body, seed));
    return cf::kFrameHeadBytes + static_cast<std::size_t>(stored);
  };
  for (std::size_t pos = cf::kHeaderBytes; pos < body_end;) {
    const std::size_t n = fix_frame(pos, pos == meta_offset ? cf::kMetaSeed : cf::kDataSeed);
    if (n == 0) break;
    pos += n;
  }
  if (meta_offset <= body_end) fix_frame(static_cast<std::size_t>(meta_offset), cf::kMetaSeed);
  const std::string covered = f.substr(0, cf::kHeaderBytes) + f.substr(body_end, 16);
  encode_fixed64(f.data() + body_end + 16, stowage::detail::checksum(covered, cf::kFooterSeed));
  return true;
}

template <class Compression>
void run(std::string_view file) {
  read_chunk<Compression>(file);
  std::string fixed(file);
  if (repair_checksums(fixed) && fixed != file) read_chunk<Compression>(fixed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (mode & 4) {
    std::shared_ptr<const Block> b;
    try {
      b = Block::parse(std::string(rest), kPath, 0, (mode & 8) ? 1 : (mode & 16) ? 3 : (mode & 32) ? 4 : 2);
    } catch (const stowage::CorruptionError&) {
      return 0;
    }
    walk_block(*b);
    return 0;
  }
  if (mode & 1)
    run<stowage::Lz4Compression>(rest);
  else
    run<stowage::NoCompression>(rest);
  return 0;
}
