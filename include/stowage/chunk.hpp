// SPDX-License-Identifier: BSL-1.0
// chunk.hpp: chunk files, the immutable sorted files of records (key, sequence
// number, kind, value) that hold the bulk of a store. Keys are encoded byte
// strings in memcmp order, strictly ascending within a chunk (one record per
// key). A record is a put or, from format 3 on, a tombstone (an erased key,
// with an empty value).
// Layout (every byte is specified in docs/format.md, "Chunk files"; format 3
// is written: format-2 data blocks whose sequence field holds seq << 1 | kind,
// and a tombstone count appended to the meta block; formats 2 (prefix-
// compressed blocks, puts only) and 1 (full keys, puts only) are still read):
//   header (16 B) | data blocks (framed) | meta block (framed) | footer (32 B)
//   frame = u8 compression id | u32 raw size | u32 stored size | u64 XXH3 | stored bytes
// Invariants a reader checks before trusting anything:
//  - the footer checksum covers the header and the footer's meta offset/size;
//  - every frame checksum (seeded per kind) is verified BEFORE decompressing;
//  - the blocks listed in the meta block tile the file exactly: header, blocks,
//    meta block and footer leave no byte unaccounted for;
//  - every length is checked against the file (or the decoded buffer) before
//    anything is allocated or read; raw sizes are bounded (<= 255 * stored + 64
//    and <= 1 GiB + 128 KiB); every failure is CorruptionError(file, offset, ...);
//  - a tombstone has an empty value; no sequence number exceeds the chunk's
//    maximum; the tombstone count is at most the record count.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bloom.hpp"
#include "compression.hpp"
#include "detail/coding.hpp"
#include "detail/prefix_search.hpp"
#include "error.hpp"
#include "file.hpp"

namespace stowage::detail {

/// A sequence bound that bounds nothing: every record is at or below it
/// (the reads of the live store, where a snapshot's reads pass its
/// sequence).
inline constexpr std::uint64_t kNoSeqBound = std::numeric_limits<std::uint64_t>::max();

/// Constants of the chunk file format.
namespace chunk_format {
/// First 8 bytes of every chunk file.
inline constexpr std::string_view kMagic = "STWCHUNK";
/// Last 8 bytes of every chunk file.
inline constexpr std::string_view kEndMagic = "STWCHEND";
/// Newest format version read and written (5: format 4 whose blocks may
/// also keep older versions of a key for live snapshots, see
/// kVersionsMajor); readers accept majors kOldestMajor..kMajor, any minor.
inline constexpr std::uint16_t kMajor = 5;
/// Format version written when no older version is kept (4: format-2 data
/// blocks whose sequence field holds seq << 2 | uncounted << 1 | kind, and a
/// tombstone count and an uncounted-record count in the meta block): what
/// the engine writes while no snapshot is live, so that a store nobody takes
/// snapshots of stays readable by the builds before format 5.
inline constexpr std::uint16_t kPlainMajor = 4;
/// Oldest major version whose chunks may keep, after a key's newest record
/// (its head), older records of the same key that a live snapshot can see
/// (its versions): same key, strictly smaller sequence numbers, newest
/// first, all in the head's data block, each counted with part 0 (see
/// docs/format.md, "Versions kept for snapshots"); the meta block ends with
/// the number of such records.
inline constexpr std::uint16_t kVersionsMajor = 5;
/// Oldest major version read (1: data blocks store every key in full; 2:
/// prefix-compressed data blocks with restart points; both hold puts only).
inline constexpr std::uint16_t kOldestMajor = 1;
/// Oldest major version whose records carry a kind (put or tombstone).
inline constexpr std::uint16_t kKindsMajor = 3;
/// Oldest major version whose records carry an uncounted flag (format 4: the
/// record is not yet part of the store's live record count; see
/// docs/format.md, "The live count").
inline constexpr std::uint16_t kCountedMajor = 4;
/// Largest sequence number a record the writer writes can hold (seq << 2 must
/// fit 64 bits; format 3 allowed 2^63 - 1, and is read with it).
inline constexpr std::uint64_t kMaxSeq = (std::uint64_t{1} << 62) - 1;
/// Format 4: the uncounted flag, bit 1 of a record's sequence field.
inline constexpr std::uint64_t kUncountedBit = 2;
/// How far a chunk of format `major` shifts the sequence number within a
/// record's sequence field: 0 (formats 1 and 2), 1 (3: the kind below it),
/// 2 (4: the kind and the uncounted flag).
constexpr unsigned seq_shift(std::uint16_t major) { return major >= kCountedMajor ? 2 : major >= kKindsMajor ? 1 : 0; }
/// Formats 3 and 4: the kind in the low bit of a record's sequence field.
inline constexpr std::uint64_t kKindPut = 0;
/// See kKindPut.
inline constexpr std::uint64_t kKindTombstone = 1;
/// Minor version written (minors only append fields to the meta block).
inline constexpr std::uint16_t kMinor = 0;
/// Format 2: record i of a data block is a restart point (its key stored in
/// full) iff i % kRestartInterval == 0. Fixed by the format.
inline constexpr std::size_t kRestartInterval = 16;
/// Size of the file header.
inline constexpr std::size_t kHeaderBytes = 16;
/// Size of a frame's header (id, raw size, stored size, checksum).
inline constexpr std::size_t kFrameHeadBytes = 17;
/// Size of the file footer.
inline constexpr std::size_t kFooterBytes = 32;
/// Checksum seed of data block frames ("STWCDATA").
inline constexpr std::uint64_t kDataSeed = 0x5354574344415441ULL;
/// Checksum seed of the meta block frame ("STWCMETA").
inline constexpr std::uint64_t kMetaSeed = 0x535457434d455441ULL;
/// Checksum seed of the footer ("STWCFOOT").
inline constexpr std::uint64_t kFooterSeed = 0x53545743464f4f54ULL;
/// Largest raw (decoded) size of any block, data or meta.
inline constexpr std::uint64_t kMaxRawBytes = (std::uint64_t{1} << 30) + (std::uint64_t{128} << 10);
/// Largest stored size of any block (never more than its raw size).
inline constexpr std::uint64_t kMaxFrameBytes = kMaxRawBytes + kFrameHeadBytes;
/// Largest raw/stored ratio a reader accepts: raw <= kMaxRatio * stored + kRatioSlack.
inline constexpr std::uint64_t kMaxRatio = 255;
/// See kMaxRatio.
inline constexpr std::uint64_t kRatioSlack = 64;
/// Smallest possible chunk file: header, an empty meta frame, footer.
inline constexpr std::uint64_t kMinFileBytes = kHeaderBytes + kFrameHeadBytes + kFooterBytes;
}  // namespace chunk_format

/// What a finished chunk holds (for the manifest).
struct ChunkInfo {
  /// Number of records (puts and tombstones).
  std::uint64_t records = 0;
  /// Number of tombstones among them (0 for formats 1 and 2).
  std::uint64_t tombstones = 0;
  /// Number of records flagged uncounted among them (0 before format 4).
  std::uint64_t uncounted = 0;
  /// Number of older versions among them (records after the first of their
  /// key; format 5 only).
  std::uint64_t versions = 0;
  /// Their bytes (keys, values and sequence fields, as raw_bytes() counts).
  std::uint64_t version_bytes = 0;
  /// Size of the file in bytes.
  std::uint64_t file_bytes = 0;
  /// Largest sequence number of any record (0 when empty).
  std::uint64_t max_seq = 0;
  /// Smallest sequence number of any record (0 when empty).
  std::uint64_t min_seq = 0;
  /// Smallest key (empty when the chunk is empty).
  std::string first_key;
  /// Largest key (empty when the chunk is empty).
  std::string last_key;
};

/// XXH3-64 with `seed` of (head || stored), where head is a frame's first 9 bytes.
inline std::uint64_t frame_checksum(std::string_view head, std::string_view stored, std::uint64_t seed) {
  XXH3_state_t state;
  XXH3_INITSTATE(&state);
  XXH3_64bits_reset_withSeed(&state, seed);
  XXH3_64bits_update(&state, head.data(), head.size());
  XXH3_64bits_update(&state, stored.data(), stored.size());
  return XXH3_64bits_digest(&state);
}

/// Decodes one frame (header + stored bytes, read from `file` at `offset`) into
/// its raw bytes: checks the stored size against the frame, verifies the
/// checksum (seeded `seed`), bounds the raw size, then decompresses by the
/// frame's id (0, 1 or Compression::id), into `raw` (resized to fit; its
/// capacity is reused). Every failure is a CorruptionError.
template <CompressionPolicy Compression>
void decode_frame_into(std::string_view frame, const std::filesystem::path& file, std::uint64_t offset,
                       std::uint64_t seed, const char* kind, std::string& raw) {
  namespace cf = chunk_format;
  auto fail = [&](std::uint64_t at, const std::string& what) -> void {
    throw CorruptionError(file, offset + at, std::string(kind) + ": " + what);
  };
  if (frame.size() < cf::kFrameHeadBytes)
    fail(0, "frame of " + std::to_string(frame.size()) + " bytes is shorter than its 17-byte header");
  const auto id = static_cast<std::uint8_t>(frame[0]);
  const std::uint64_t raw_size = decode_fixed32(frame.data() + 1);
  const std::uint64_t stored_size = decode_fixed32(frame.data() + 5);
  const std::uint64_t sum = decode_fixed64(frame.data() + 9);
  if (stored_size != frame.size() - cf::kFrameHeadBytes)
    fail(5, "stored size " + std::to_string(stored_size) + " disagrees with the frame's " +
                std::to_string(frame.size() - cf::kFrameHeadBytes) + " bytes");
  const std::string_view stored = frame.substr(cf::kFrameHeadBytes);
  if (frame_checksum(frame.substr(0, 9), stored, seed) != sum)
    fail(0, "checksum mismatch over the " + std::to_string(frame.size()) + "-byte frame");
  if (raw_size > cf::kMaxRawBytes || raw_size > cf::kMaxRatio * stored_size + cf::kRatioSlack)
    fail(1, "implausible raw size " + std::to_string(raw_size) + " for " + std::to_string(stored_size) +
                " stored bytes");
  if (!can_decompress<Compression>(id))
    fail(0, "unknown compression id " + std::to_string(id) + " (this reader knows 0, 1 and " +
                std::to_string(Compression::id) + ")");
  raw.resize(static_cast<std::size_t>(raw_size));
  try {
    decompress_by_id<Compression>(id, stored, raw.size(), raw.data());
  } catch (const CorruptionError& e) {
    throw CorruptionError(file, offset + cf::kFrameHeadBytes, std::string(kind) + ": " + e.what());
  }
}

/// decode_frame_into(), returning the raw bytes as a new string.
template <CompressionPolicy Compression>
std::string decode_frame(std::string_view frame, const std::filesystem::path& file, std::uint64_t offset,
                         std::uint64_t seed, const char* kind) {
  std::string raw;
  decode_frame_into<Compression>(frame, file, offset, seed, kind, raw);
  return raw;
}

/// The calling thread's scratch strings for reading a block: its frame as
/// read and its bytes decompressed. A cache miss reads into these instead of
/// fresh strings, so the only heap memory it leaves is the block it keeps:
/// short-lived buffers freed between long-lived cached blocks left holes of
/// their size that the next, larger blocks did not fit, and a heap at a full
/// cache's size grew by a fifth beyond what it held. release() after use
/// gives back a buffer grown past kKeepBytes by an unusually large block.
struct ReadScratch {
  /// Capacity kept between reads.
  static constexpr std::size_t kKeepBytes = 64 << 10;
  std::string frame;
  std::string raw;
  static ReadScratch& local() {
    thread_local ReadScratch scratch;
    return scratch;
  }
  void release() noexcept {
    if (frame.capacity() > kKeepBytes) std::string().swap(frame);
    if (raw.capacity() > kKeepBytes) std::string().swap(raw);
  }
  /// Calls release() when it leaves scope, however it leaves.
  struct Use {
    ReadScratch& scratch = local();
    Use() = default;
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    ~Use() { scratch.release(); }
  };
};

/// Decodes a varint already validated by Block::parse, advancing p.
inline std::uint64_t decode_trusted_varint(const char*& p) {
  std::uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const auto b = static_cast<unsigned char>(*p++);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
}

/// One data block in memory, whatever its on-disk encoding: the records
/// materialised back to back (varint key_len | key | varint seq field | varint
/// value_len | value), a u32 offset per record, a u32 record count (this is
/// exactly a format-1 block), then a search aid: the block's common key prefix
/// (the bytes every key of the block starts with) and, per record, the 8 key
/// bytes that follow it as a big-endian u64 (zero-padded). lower_bound binary-
/// searches that one contiguous array and compares full keys only on ties, so
/// a probe costs no dependent load. Format-2 blocks (prefix-compressed, see
/// docs/format.md) are decoded into this form once, when they are read, so
/// key(i) stays a contiguous string_view. The seq field is kept as stored: the
/// sequence number in formats 1 and 2, seq << 1 | kind in format 3 (a flag per
/// block says which; seq(i) and tombstone(i) decode it, key, value and
/// lower_bound never look at it). Validated completely at parse time,
/// immutable afterwards, and safe to share across threads read-only.
class Block {
 public:
  /// Validates and decodes `raw`, a decoded data block of a chunk of format
  /// `major` (1 to 5) read at file offset `offset`: at least one record,
  /// every offset, length and varint in bounds, keys strictly ascending (in
  /// formats 2 on, restart points and shared lengths exactly as the format
  /// says; from format 3, no tombstone with a value; in format 5 a key may
  /// repeat with a strictly smaller sequence number: an older version kept
  /// for snapshots). Else CorruptionError(file, offset, ...).
  static std::shared_ptr<const Block> parse(std::string raw, const std::filesystem::path& file, std::uint64_t offset,
                                            std::uint16_t major) {
    if (major == 1) return parse_v1(std::move(raw), file, offset);
    return parse(std::string_view(raw), file, offset, major);
  }
  /// parse() of bytes the block does not take over (formats 2 and 3 decode
  /// into a buffer of their own; format 1 copies them).
  static std::shared_ptr<const Block> parse(std::string_view raw, const std::filesystem::path& file,
                                            std::uint64_t offset, std::uint16_t major) {
    if (major == 1) return parse_v1(std::string(raw), file, offset);
    if (major >= 2 && major <= chunk_format::kMajor)
      return decode_v2(raw, file, offset, chunk_format::seq_shift(major), major >= chunk_format::kVersionsMajor);
    throw CorruptionError(file, offset, "data block: chunk format " + std::to_string(major) + " has no block decoder");
  }

  /// Number of records (at least 1).
  std::size_t size() const { return count_; }

  /// Key of record i (i < size()); valid while the block lives.
  std::string_view key(std::size_t i) const {
    const char* p = record(i);
    const auto n = decode_trusted_varint(p);
    return {p, static_cast<std::size_t>(n)};
  }

  /// Sequence number of record i (i < size()), whatever the block's format.
  std::uint64_t seq(std::size_t i) const { return seq_field(i) >> shift_; }

  /// True if record i (i < size()) is a tombstone (an erased key; its value
  /// is empty). Always false in format-1 and format-2 blocks.
  bool tombstone(std::size_t i) const {
    return shift_ != 0 && (seq_field(i) & 1) == chunk_format::kKindTombstone;
  }

  /// True if record i (i < size()) is not yet part of the store's live count
  /// (format 4; always false before it).
  bool uncounted(std::size_t i) const { return shift_ >= 2 && (seq_field(i) & chunk_format::kUncountedBit) != 0; }

  /// True if the block's records carry a kind (format 3 on).
  bool has_kinds() const { return shift_ != 0; }

  /// Value of record i (i < size()); valid while the block lives.
  std::string_view value(std::size_t i) const {
    const char* p = record(i);
    p += decode_trusted_varint(p);
    decode_trusted_varint(p);
    const auto n = decode_trusted_varint(p);
    return {p, static_cast<std::size_t>(n)};
  }

  /// First i with key(i) >= key; size() if there is none.
  std::size_t lower_bound(std::string_view key) const {
    // Every key starts with the common prefix: a probe that differs from it
    // within its length lies before or after all of them.
    const std::size_t m = std::min(key.size(), lcp_);
    if (m > 0) {
      const int c = std::memcmp(key.data(), buf_.data() + lcp_off_, m);
      if (c < 0) return 0;
      if (c > 0) return count_;
    }
    if (key.size() < lcp_) return 0;  // a proper prefix of the common prefix
    const std::uint64_t probe = prefix_of(key.substr(lcp_));
    const char* prefixes = buf_.data() + prefix_off_;
    // Branch-free lower bound of probe among the u64 prefixes.
    std::size_t base = 0, len = count_;
    while (len > 1) {
      const std::size_t half = len / 2;
      base = prefix_at(prefixes, base + half - 1) < probe ? base + half : base;
      len -= half;
    }
    std::size_t lo = base + (prefix_at(prefixes, base) < probe ? 1 : 0);
    // Prefixes below the probe's are keys below it and above are keys above;
    // equal prefixes (a key longer than 8 bytes past the common prefix, or
    // trailing zero bytes) need full comparisons.
    if (lo == count_ || prefix_at(prefixes, lo) != probe || !(this->key(lo) < key)) return lo;
    std::size_t hi = lo + 1;
    std::size_t step = 1;  // gallop to the end of the tie run, then bisect
    while (hi < count_ && prefix_at(prefixes, hi) == probe && this->key(hi) < key) {
      lo = hi;
      hi = std::min(count_, hi + step);
      step *= 2;
    }
    ++lo;  // key(lo - 1) < key; the answer lies in [lo, hi]
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (prefix_at(prefixes, mid) < probe || (prefix_at(prefixes, mid) == probe && this->key(mid) < key)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  /// Bytes of memory held (the decoded records, their offsets and the search
  /// prefixes), for cache budgets.
  std::size_t charge() const { return sizeof(*this) + buf_.capacity(); }

  /// What a data block holds of one key (see find_stored).
  enum class Holds { absent, put, tombstone };

  /// Looks `key` up in `raw`, a data block of format 2 or 3 as stored (after
  /// decompression), without decoding it: a binary search over the restart
  /// points, then a walk of at most kRestartInterval records. Only the bytes
  /// it reads are checked: lengths and varints in bounds, shared lengths
  /// within the previous key; damage there is a CorruptionError(file,
  /// offset, ...). The walk never rebuilds a key: it compares each record's
  /// suffix with `key` past the bytes the two keys are known to share, so
  /// `key_buf` (kept for callers' scratch) is left as it was. When `value`
  /// is given and the key holds a put, *value is set to its bytes within
  /// `raw`. With `versions` (format 5) the key's newest record is found
  /// when older ones of it follow (at the next restart point too). With a
  /// `bound` (a snapshot's read; `shift` is the format's seq_shift) the
  /// key's first record whose sequence is at or below it counts, absent
  /// when it has none here.
  static Holds find_stored(std::string_view raw, std::string_view key, bool kinds, const std::filesystem::path& file,
                           std::uint64_t offset, [[maybe_unused]] std::string& key_buf,
                           std::string_view* value = nullptr, bool versions = false,
                           std::uint64_t bound = kNoSeqBound, unsigned shift = 0) {
    constexpr std::size_t K = chunk_format::kRestartInterval;
    auto fail = [&](const char* at, const std::string& what) { stored_fail(raw, file, offset, at, what.c_str()); };
    if (raw.size() < 4) fail(raw.data(), "block of " + std::to_string(raw.size()) + " bytes has no restart count");
    const std::size_t restarts = decode_fixed32(raw.data() + raw.size() - 4);
    if (restarts == 0 || restarts > (raw.size() - 4) / 8)
      fail(raw.data(), "restart count " + std::to_string(restarts) + " does not fit a block of " +
                           std::to_string(raw.size()) + " bytes");
    const std::size_t restart_at = raw.size() - 4 - 4 * restarts;
    auto restart = [&](std::size_t j) {
      const std::size_t at = decode_fixed32(raw.data() + restart_at + 4 * j);
      if (at >= restart_at) fail(raw.data(), "restart point " + std::to_string(j) + " lies outside the records");
      return at;
    };
    // A varint at p (before end), p moved past it.
    auto varint = [&](const char*& p, const char* end, const char* what) -> std::uint64_t {
      if (p < end) [[likely]] {
        const auto b = static_cast<unsigned char>(*p);
        if (b < 0x80) {
          ++p;
          return b;
        }
      }
      std::uint64_t v = 0;
      for (int shift = 0; shift < 64; shift += 7) {
        if (p >= end) stored_fail(raw, file, offset, p, "truncated ", what);
        const auto b = static_cast<unsigned char>(*p++);
        if (shift == 63 && b > 1) stored_fail(raw, file, offset, p - 1, "overlong ", what);
        v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
      }
      stored_fail(raw, file, offset, p, "overlong ", what);
    };
    // One record at p (before end): its shared length, key suffix and value,
    // p moved past it. prev_len is the previous key's length (a record at a
    // restart point shares nothing and gives its value length).
    struct Head {
      std::size_t shared;
      std::string_view suffix;
      std::string_view value;
      std::uint64_t field;
      bool tombstone;
    };
    std::uint64_t value_len = 0;
    auto next = [&](const char*& p, const char* end, bool at_restart, std::size_t prev_len) {
      const char* const at = p;
      Head h;
      const std::uint64_t shared = varint(p, end, "shared key length");
      const std::uint64_t tagged = varint(p, end, "unshared key length");
      const std::uint64_t field = varint(p, end, "sequence field");
      if (at_restart ? shared != 0 || (tagged & 1) : shared > prev_len)
        stored_fail(raw, file, offset, at, "a record's shared key length does not match the key before it");
      if (!(tagged & 1)) value_len = varint(p, end, "value length");
      const std::uint64_t unshared = tagged >> 1;
      if (unshared > static_cast<std::uint64_t>(end - p))
        stored_fail(raw, file, offset, p, "unshared key length exceeds the block");
      h.suffix = std::string_view(p, static_cast<std::size_t>(unshared));
      p += unshared;
      if (value_len > static_cast<std::uint64_t>(end - p))
        stored_fail(raw, file, offset, p, "value length exceeds the block");
      h.value = std::string_view(p, static_cast<std::size_t>(value_len));
      p += value_len;
      h.shared = static_cast<std::size_t>(shared);
      h.field = field;
      h.tombstone = kinds && (field & 1) == chunk_format::kKindTombstone;
      return h;
    };
    const char* const records_end = raw.data() + restart_at;
    // A record of key was found (h, record idx of the interval from restart
    // point `interval`, q past it): its answer, or with a bound the first of
    // the key's records at or below it (its older versions follow it).
    auto found = [&](Head h, const char* q, std::size_t interval, std::size_t idx) -> Holds {
      for (;;) {
        if ((h.field >> shift) <= bound) {
          if (h.tombstone) return Holds::tombstone;
          if (value) *value = h.value;
          return Holds::put;
        }
        if (!versions || q >= records_end) return Holds::absent;  // none at or below the bound here
        if (++idx == K) {
          idx = 0;
          if (++interval >= restarts || q != raw.data() + restart(interval))
            fail(q, "a restart point is not where its record starts");
        }
        h = next(q, records_end, idx == 0, key.size());
        if (idx == 0 ? h.suffix != key : h.shared != key.size() || !h.suffix.empty()) return Holds::absent;
      }
    };
    // The key of the record at restart point j (stored whole).
    auto restart_key = [&](std::size_t j) {
      const char* p = raw.data() + restart(j);
      return next(p, records_end, true, 0).suffix;
    };
    // The last restart point whose key is <= key (< key with versions: a
    // restart point may hold an older record of key whose newest record is
    // in the interval before).
    std::size_t lo = 0, hi = restarts;  // restart lo's key <= key < restart hi's (hi == restarts: none above)
    if (key < restart_key(0)) return Holds::absent;
    while (hi - lo > 1) {
      const std::size_t mid = lo + (hi - lo) / 2;
      const std::string_view at_mid = restart_key(mid);
      if (key < at_mid || (versions && key == at_mid))
        hi = mid;
      else
        lo = mid;
    }
    const std::size_t begin = restart(lo);
    const std::size_t end = lo + 1 < restarts ? restart(lo + 1) : restart_at;
    if (end <= begin) fail(raw.data(), "restart points are not ascending");
    const char* p = raw.data() + begin;
    const char* const stop = raw.data() + end;
    // The walk: every record before the current one is below key, and the
    // previous key (prev_len bytes) has its first `common` bytes in common
    // with key. A record's key is the previous key's first `shared` bytes
    // and its suffix, so when shared > common it is below key like the
    // previous one (it agrees with it at byte `common`, where the previous
    // key is below key); otherwise its first `shared` bytes are key's and
    // only the suffix needs comparing.
    std::size_t prev_len = 0, common = 0;
    for (std::size_t i = 0; i < K && p < stop; ++i) {
      const Head h = next(p, stop, i == 0, prev_len);
      prev_len = h.shared + h.suffix.size();
      if (h.shared > common) continue;
      const std::string_view rest = key.substr(h.shared);
      const std::size_t n = std::min(rest.size(), h.suffix.size());
      std::size_t same = 0;
      while (same < n && rest[same] == h.suffix[same]) ++same;
      common = h.shared + same;
      if (same == n) {
        if (rest.size() == h.suffix.size()) return found(h, p, lo, i);
        if (rest.size() < h.suffix.size()) return Holds::absent;  // key is a prefix of this record's key
        continue;                                                // this key is a prefix of key
      }
      if (static_cast<unsigned char>(rest[same]) < static_cast<unsigned char>(h.suffix[same])) return Holds::absent;
    }
    // With versions, every record of the interval is below key: its newest
    // record may be the next restart point's.
    if (versions && hi < restarts) {
      const char* q = raw.data() + restart(hi);
      const Head h = next(q, records_end, true, 0);
      if (h.suffix == key) return found(h, q, hi, 0);
    }
    return Holds::absent;
  }

 private:
  // find_stored's errors: a CorruptionError naming the decoded byte `at` of
  // `raw` (as a Reader's do), with the message `what` (after `prefix`).
  [[noreturn]] [[gnu::cold]] [[gnu::noinline]] static void stored_fail(std::string_view raw,
                                                                       const std::filesystem::path& file,
                                                                       std::uint64_t offset, const char* at,
                                                                       const char* prefix, const char* what = "") {
    Reader r = Reader::decoded(raw, file, offset, "data block");
    r.bytes(static_cast<std::size_t>(at - raw.data()));
    r.fail(std::string(prefix) + what);
  }

  Block(std::string buf, std::size_t count, std::size_t index, unsigned shift)
      : buf_(std::move(buf)), count_(count), index_(index), shift_(shift) {}

  const char* record(std::size_t i) const {
    assert(i < count_);
    return buf_.data() + decode_fixed32(buf_.data() + index_ + 4 * i);
  }
  // The record's sequence field as stored (seq, or seq << 1 | kind).
  std::uint64_t seq_field(std::size_t i) const {
    const char* p = record(i);
    p += decode_trusted_varint(p);
    return decode_trusted_varint(p);
  }
  static char* put_varint_at(char* w, std::uint64_t v) {
    while (v >= 0x80) {
      *w++ = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    *w++ = static_cast<char>(v);
    return w;
  }
  static std::uint64_t prefix_at(const char* prefixes, std::size_t i) {
    std::uint64_t v;
    std::memcpy(&v, prefixes + 8 * i, 8);
    return v;
  }
  // The first 8 bytes of s as a big-endian number (zero-padded), so that
  // integer order is memcmp order of the padded bytes.
  static std::uint64_t prefix_of(std::string_view s) { return PrefixSearch::prefix_of(s); }

  // Bytes the search aid takes after `records_end` for `count` records whose
  // common prefix is at most `lcp_max` bytes.
  static std::size_t aid_bytes(std::size_t records_end, std::size_t lcp_max, std::size_t count) {
    return (records_end + lcp_max + 7) / 8 * 8 - records_end + 8 * count;
  }

  // Fills in the common prefix and the u64 prefixes after the first `end`
  // bytes of buf_ (the format-1 form), which has room for them.
  void build_search_aid(std::size_t end) {
    const std::string_view first = key(0), last = key(count_ - 1);
    std::size_t l = 0;
    while (l < first.size() && l < last.size() && first[l] == last[l]) ++l;
    lcp_ = l;
    lcp_off_ = end;
    prefix_off_ = (end + l + 7) / 8 * 8;
    assert(prefix_off_ + 8 * count_ <= buf_.size());
    std::memcpy(buf_.data() + lcp_off_, first.data(), l);
    for (std::size_t i = 0; i < count_; ++i) {
      const std::uint64_t v = prefix_of(key(i).substr(l));
      std::memcpy(buf_.data() + prefix_off_ + 8 * i, &v, 8);
    }
    buf_.resize(prefix_off_ + 8 * count_);
  }

  // Format 1: the block is already in the in-memory form; validate it and add
  // the search aid.
  static std::shared_ptr<const Block> parse_v1(std::string raw, const std::filesystem::path& file,
                                               std::uint64_t offset) {
    Reader trailer = Reader::decoded(raw, file, offset, "data block");
    if (raw.size() < 4) trailer.fail("block of " + std::to_string(raw.size()) + " bytes has no record count");
    const std::size_t count = decode_fixed32(raw.data() + raw.size() - 4);
    if (count == 0) trailer.fail("block holds no records");
    // Every record takes at least 3 bytes plus its 4-byte offset.
    if (count > (raw.size() - 4) / 7)
      trailer.fail("record count " + std::to_string(count) + " does not fit a block of " +
                   std::to_string(raw.size()) + " bytes");
    const std::size_t index = raw.size() - 4 - 4 * count;
    Reader r = Reader::decoded(std::string_view(raw).substr(0, index), file, offset, "data block");
    std::string_view prev;
    std::size_t first_len = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t at = decode_fixed32(raw.data() + index + 4 * i);
      if (at != r.position())
        r.fail("offset of record " + std::to_string(i) + " is " + std::to_string(at) + ", not where it starts");
      const auto key = r.length_prefixed("key");
      r.varint("sequence number");
      r.length_prefixed("value");
      if (i > 0 && !(prev < key)) r.fail("keys are not strictly ascending at record " + std::to_string(i));
      if (i == 0) first_len = key.size();
      prev = key;
    }
    if (!r.empty()) r.fail("bytes after the last record");
    const std::size_t end = raw.size();
    raw.resize(end + aid_bytes(end, first_len, count));
    std::shared_ptr<Block> b(new Block(std::move(raw), count, index, false));
    b->build_search_aid(end);
    return b;
  }

  // Formats 2 to 4: prefix-compressed records with a restart point every
  // kRestartInterval records (from format 3, `shift` > 0, the seq field's low
  // bit is the kind). Pass 1 checks every length and computes the decoded size
  // (bounded before anything is allocated); pass 2 decodes into the format-1
  // form, checking key order (with `versions`, format 5, a key may repeat
  // with a strictly smaller sequence number).
  static std::shared_ptr<const Block> decode_v2(std::string_view raw, const std::filesystem::path& file,
                                                std::uint64_t offset, unsigned shift, bool versions) {
    const bool kinds = shift != 0;
    constexpr std::size_t K = chunk_format::kRestartInterval;
    Reader trailer = Reader::decoded(raw, file, offset, "data block");
    if (raw.size() < 4) trailer.fail("block of " + std::to_string(raw.size()) + " bytes has no restart count");
    const std::size_t restarts = decode_fixed32(raw.data() + raw.size() - 4);
    if (restarts == 0) trailer.fail("block holds no records");
    // Every restart takes its 4-byte offset and a record of at least 4 bytes.
    if (restarts > (raw.size() - 4) / 8)
      trailer.fail("restart count " + std::to_string(restarts) + " does not fit a block of " +
                   std::to_string(raw.size()) + " bytes");
    const std::size_t restart_at = raw.size() - 4 - 4 * restarts;
    // Pass 1: lengths, restart points, and the size of the decoded form.
    Reader r = Reader::decoded(raw.substr(0, restart_at), file, offset, "data block");
    std::size_t count = 0, prev_len = 0, first_len = 0;
    std::uint64_t prev_value_len = 0;
    std::uint64_t decoded = 4;  // the record count
    while (!r.empty()) {
      auto n = [&] { return std::to_string(count); };
      if (count % K == 0) {
        const std::size_t j = count / K;
        if (j >= restarts) r.fail("record " + n() + " needs restart point " + std::to_string(j) + " of " +
                                  std::to_string(restarts));
        const std::size_t at = decode_fixed32(raw.data() + restart_at + 4 * j);
        if (at != r.position())
          r.fail("restart point " + std::to_string(j) + " is " + std::to_string(at) + ", not where record " + n() +
                 " starts");
      }
      const std::uint64_t shared = r.varint("shared key length");
      const std::uint64_t tagged = r.varint("unshared key length");
      const std::uint64_t unshared = tagged >> 1;
      const bool same_len = tagged & 1;
      const std::uint64_t field = r.varint(kinds ? "sequence and kind" : "sequence number");
      if (same_len && count % K == 0) r.fail("record " + n() + " at a restart point has no value length");
      const std::uint64_t value_len = same_len ? prev_value_len : r.varint("value length");
      if (!same_len && count % K != 0 && value_len == prev_value_len)
        r.fail("record " + n() + " repeats the previous value length instead of flagging it");
      if (count % K == 0 ? shared != 0 : shared > prev_len)
        r.fail("record " + n() + " shares " + std::to_string(shared) + " key bytes with a previous key of " +
               std::to_string(prev_len) + (count % K == 0 ? " at a restart point" : ""));
      if (unshared > r.remaining())
        r.fail("unshared key length " + std::to_string(unshared) + " of record " + n() + " exceeds the " +
               std::to_string(r.remaining()) + " bytes left");
      r.bytes(static_cast<std::size_t>(unshared), "key");
      if (value_len > r.remaining())
        r.fail("value length " + std::to_string(value_len) + " of record " + n() + " exceeds the " +
               std::to_string(r.remaining()) + " bytes left");
      r.bytes(static_cast<std::size_t>(value_len), "value");
      if (kinds && (field & 1) == chunk_format::kKindTombstone && value_len != 0)
        r.fail("record " + n() + " is a tombstone with a value of " + std::to_string(value_len) + " bytes");
      const std::uint64_t key_len = shared + unshared;  // both bounded by the block size
      decoded += varint_length(key_len) + key_len + varint_length(field) + varint_length(value_len) + value_len + 4;
      if (decoded > chunk_format::kMaxRawBytes)
        r.fail("records decode to more than " + std::to_string(chunk_format::kMaxRawBytes) + " bytes");
      if (count == 0) first_len = static_cast<std::size_t>(key_len);
      prev_len = static_cast<std::size_t>(key_len);
      prev_value_len = value_len;
      ++count;
    }
    if (count == 0 || (count - 1) / K + 1 != restarts)
      r.fail(std::to_string(count) + " records need " + std::to_string(count == 0 ? 0 : (count - 1) / K + 1) +
             " restart points, not " + std::to_string(restarts));
    // Pass 2: materialise the keys (the lengths are trusted now).
    const std::size_t end = static_cast<std::size_t>(decoded);
    const std::size_t index = end - 4 - 4 * count;
    std::string buf(end + aid_bytes(end, first_len, count), '\0');
    char* const out = buf.data();
    char* w = out;
    const char* p = raw.data();
    std::string_view prev;
    std::uint64_t prev_seq = 0;
    std::size_t value_len = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const auto shared = static_cast<std::size_t>(decode_trusted_varint(p));
      const std::uint64_t tagged = decode_trusted_varint(p);
      const auto unshared = static_cast<std::size_t>(tagged >> 1);
      const std::uint64_t field = decode_trusted_varint(p);
      if (!(tagged & 1)) value_len = static_cast<std::size_t>(decode_trusted_varint(p));
      const char* suffix = p;
      p += unshared;
      if (i > 0) {
        // Shared lengths are canonical: the whole common prefix with the
        // previous key (0 at restart points), so one byte decides the order.
        bool ascending;
        // An older version of the previous record's key (format 5).
        const bool same = i % K == 0 ? prev == std::string_view(suffix, unshared)
                                     : shared == prev.size() && unshared == 0;
        if (same) {
          ascending = versions && (field >> shift) < prev_seq;
        } else if (i % K == 0) {
          ascending = prev < std::string_view(suffix, unshared);
        } else if (shared < prev.size()) {
          if (unshared > 0 && suffix[0] == prev[shared])
            throw CorruptionError(file, offset, "data block: record " + std::to_string(i) + " shares " +
                                                    std::to_string(shared) +
                                                    " key bytes, fewer than it has in common with the previous key");
          ascending = unshared > 0 && static_cast<unsigned char>(suffix[0]) > static_cast<unsigned char>(prev[shared]);
        } else {
          ascending = unshared > 0;
        }
        if (!ascending)
          throw CorruptionError(file, offset,
                                same && versions
                                    ? "data block: a key repeats at record " + std::to_string(i) +
                                          " without a smaller sequence number"
                                    : "data block: keys are not strictly ascending at record " + std::to_string(i));
      }
      prev_seq = field >> shift;
      encode_fixed32(out + index + 4 * i, static_cast<std::uint32_t>(w - out));
      w = put_varint_at(w, shared + unshared);
      char* const key = w;
      if (shared > 0) std::memcpy(w, prev.data(), shared);
      w += shared;
      if (unshared > 0) std::memcpy(w, suffix, unshared);
      w += unshared;
      prev = std::string_view(key, shared + unshared);
      w = put_varint_at(w, field);
      w = put_varint_at(w, value_len);
      if (value_len > 0) std::memcpy(w, p, value_len);
      w += value_len;
      p += value_len;
    }
    assert(static_cast<std::size_t>(w - out) == index);
    encode_fixed32(out + index + 4 * count, static_cast<std::uint32_t>(count));
    std::shared_ptr<Block> b(new Block(std::move(buf), count, index, shift));
    b->build_search_aid(end);
    return b;
  }

  std::string buf_;       // format-1 form | common prefix | padding | u64 prefix per record
  std::size_t count_;
  std::size_t index_;     // where the u32 record offsets start
  std::size_t lcp_ = 0;   // length of the common prefix
  std::size_t lcp_off_ = 0, prefix_off_ = 0;
  unsigned shift_;  // chunk_format::seq_shift of the chunk's format
};

/// A data block of chunk format 2 or 3 as stored, not decoded: the form gets
/// keep in the block cache. A lookup searches it in place (Block::find_stored:
/// the restart points, then at most kRestartInterval records), so a cache miss
/// costs no decode, and the cache holds more blocks than decoded ones would
/// fit. It holds either the block's bytes after decompression, or (packed)
/// its compressed bytes as in the frame, decompressed by each lookup: for a
/// 4 KiB block of db_bench's records, 3.6 KB or 2.0 KB against 4.5 KB decoded,
/// while a lookup in a packed block pays about 0.5 us of LZ4 (a pread of a
/// block from the OS page cache costs about 2 us, a decode 1.4 us). The frame's
/// checksum was verified, and it was decompressed once, when it was read.
/// Immutable; safe to share across threads read-only. The bytes are checked
/// as they are read (lengths and varints in bounds), so damage that passed the
/// checksum is a CorruptionError naming the block's offset, never a read out
/// of bounds.
class StoredBlock {
 public:
  /// Decompresses `in` (compression id `id`) into exactly `raw_size` bytes at
  /// `out`; false for an id it does not know. Damage throws CorruptionError.
  using Unpack = bool (*)(std::uint8_t id, std::string_view in, std::size_t raw_size, char* out);

  /// Scratch space a lookup reuses across calls: the key being rebuilt and a
  /// packed block's decompressed bytes.
  struct Scratch {
    /// The walk's current key.
    std::string key;
    /// A packed block's bytes after decompression.
    std::string raw;
  };

  /// Wraps `raw`, the decompressed bytes of the data block at file offset
  /// `offset` of a chunk of format 2 (kinds false) or later (kinds true);
  /// `versions`: format 5 (a key may repeat, see Block::find_stored).
  StoredBlock(std::string raw, std::uint64_t offset, bool kinds, bool versions = false)
      : bytes_(std::move(raw)), raw_size_(bytes_.size()), offset_(offset), kinds_(kinds), versions_(versions) {}

  /// Wraps `packed`, the block's bytes as compressed in its frame (with
  /// compression id `id`, which `unpack` knows), `raw_size` bytes decompressed.
  StoredBlock(std::string packed, std::uint8_t id, std::size_t raw_size, Unpack unpack, std::uint64_t offset,
              bool kinds, bool versions = false)
      : bytes_(std::move(packed)),
        raw_size_(raw_size),
        unpack_(unpack),
        offset_(offset),
        id_(id),
        kinds_(kinds),
        versions_(versions) {}

  /// What the block holds of `key`; on a put, *value (when given) is set to
  /// its bytes, valid while the block lives and, for a packed block, until
  /// `scratch` is used again. `file` names the chunk in errors.
  /// With a bound `at` (shift: the chunk format's seq_shift), the key's
  /// first record at or below it (see Block::find_stored).
  Block::Holds find(std::string_view key, const std::filesystem::path& file, Scratch& scratch,
                    std::string_view* value = nullptr, std::uint64_t at = kNoSeqBound,
                    unsigned shift = 0) const {
    if (unpack_ == nullptr)
      return Block::find_stored(bytes_, key, kinds_, file, offset_, scratch.key, value, versions_, at, shift);
    unpack_into(scratch.raw, file);
    return find_unpacked(key, file, scratch, value, at, shift);
  }
  /// find() of a packed block whose bytes scratch.raw already holds
  /// decompressed (as ChunkTable::read_stored leaves them when given
  /// scratch.raw): the search without the decompression.
  Block::Holds find_unpacked(std::string_view key, const std::filesystem::path& file, Scratch& scratch,
                             std::string_view* value = nullptr,
                             std::uint64_t at = kNoSeqBound, unsigned shift = 0) const {
    assert(unpack_ != nullptr && scratch.raw.size() == raw_size_);
    return Block::find_stored(scratch.raw, key, kinds_, file, offset_, scratch.key, value, versions_, at, shift);
  }

  /// A packed block's bytes decompressed into `out` (resized to
  /// raw_size()); packed() must be true. `file` names the chunk in errors.
  void unpack_into(std::string& out, const std::filesystem::path& file) const {
    assert(unpack_ != nullptr);
    out.resize(raw_size_);
    try {
      if (!unpack_(id_, bytes_, raw_size_, out.data()))
        throw CorruptionError("unknown compression id " + std::to_string(id_));
    } catch (const CorruptionError& e) {
      throw CorruptionError(file, offset_ + chunk_format::kFrameHeadBytes, std::string("data block: ") + e.what());
    }
  }

  /// The bytes held: the block decompressed, or (packed) as compressed in its frame.
  std::string_view bytes() const { return bytes_; }

  /// True if the block is kept compressed (each lookup decompresses it).
  bool packed() const { return unpack_ != nullptr; }

  /// The block's size after decompression.
  std::size_t raw_size() const { return raw_size_; }

  /// File offset of the block's frame.
  std::uint64_t offset() const { return offset_; }

  /// True if the block's records carry a kind (format 3 on).
  bool has_kinds() const { return kinds_; }

  /// Bytes of memory held, for cache budgets.
  std::size_t charge() const { return sizeof(*this) + bytes_.capacity(); }

 private:
  std::string bytes_;  // decompressed, or as compressed in the frame (packed)
  std::size_t raw_size_;
  Unpack unpack_ = nullptr;  // set when packed
  std::uint64_t offset_;
  std::uint8_t id_ = 0;
  bool kinds_;
  bool versions_;
};

/// Writes one chunk file (format 3 unless told otherwise). Records must come
/// in strictly ascending key order; each is a put or a tombstone. Data blocks
/// are prefix-compressed (each key stored as the length it shares with the
/// previous key and the rest), with a restart point every kRestartInterval
/// records. A block is closed once its decoded size (the format-1 form it
/// takes in memory: records with full keys + offsets + count) reaches
/// block_bytes; a record that alone would reach it gets a block of its own. A
/// block is stored uncompressed (id 0) unless compression saves at least 1/8
/// of it and keeps within the reader's 255:1 ratio bound.
template <CompressionPolicy Compression>
class ChunkWriter {
 public:
  /// Creates (truncates) the file at `path` through `fs` and writes the header.
  /// block_bytes must be in 1..256 MiB (ValidationError otherwise). `major`
  /// is the chunk format to write: kPlainMajor (4), kVersionsMajor (5: a
  /// key may repeat with older versions, see add()), or 3 or 2 (for tests
  /// that need an older file and for rollback steps; format 2 holds puts
  /// only, format 3 no uncounted flags); anything else is a ValidationError.
  ChunkWriter(FileSystem& fs, std::filesystem::path path, std::size_t block_bytes = 4096,
              std::uint16_t major = chunk_format::kPlainMajor)
      : path_(std::move(path)), block_bytes_(block_bytes), major_(major) {
    if (block_bytes == 0 || block_bytes > (std::size_t{256} << 20))
      throw ValidationError("stowage: chunk block size must be 1 byte..256 MiB, not " + std::to_string(block_bytes));
    if (major < 2 || major > chunk_format::kMajor)
      throw ValidationError("stowage: ChunkWriter writes chunk formats 2 to " + std::to_string(chunk_format::kMajor) +
                            ", not " + std::to_string(major));
    header_.append(chunk_format::kMagic);
    put_fixed16(header_, major_);
    put_fixed16(header_, chunk_format::kMinor);
    header_.push_back(static_cast<char>(Compression::id));
    header_.append(3, '\0');
    file_ = fs.create(path_);
    file_->append(header_);
  }
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  /// Appends a record: a put of `value`, or (tombstone = true) a tombstone,
  /// whose value must be empty; `uncounted` flags it as not yet part of the
  /// live count (format 4). In format 5 a key equal to the previous one
  /// with a smaller sequence number adds an older version of it (kept in
  /// the same data block: see fits()); it must not be uncounted. A key not
  /// strictly greater than the previous one (otherwise), a tombstone with a
  /// value, a tombstone in a format-2 chunk, an uncounted record before
  /// format 4, a sequence number above kMaxSeq (2^63 - 1 in format 3), and
  /// adding after finish() are each a std::logic_error; a record too large
  /// for any block (over 1 GiB + 128 KiB encoded), or an older version that
  /// does not fit its key's block, is a ValidationError.
  void add(std::string_view key, std::uint64_t seq, std::string_view value, bool tombstone = false,
           bool uncounted = false) {
    if (finished_) throw std::logic_error("stowage: ChunkWriter::add after finish for " + path_.string());
    const bool version = records_ > 0 && major_ >= chunk_format::kVersionsMajor && key == last_key_;
    if (version ? !(seq < last_seq_) || uncounted : records_ > 0 && !(std::string_view(last_key_) < key))
      throw std::logic_error(version ? "stowage: an older version of a key needs a smaller sequence number and is "
                                       "counted (" + path_.string() + ")"
                                     : "stowage: chunk keys must be strictly ascending (" + path_.string() + ")");
    const bool kinds = major_ >= chunk_format::kKindsMajor;
    if (tombstone && !kinds)
      throw std::logic_error("stowage: a format-2 chunk cannot hold a tombstone (" + path_.string() + ")");
    if (tombstone && !value.empty())
      throw std::logic_error("stowage: a tombstone has no value, but was given " + std::to_string(value.size()) +
                             " bytes (" + path_.string() + ")");
    const unsigned shift = chunk_format::seq_shift(major_);
    if (uncounted && shift < 2)
      throw std::logic_error("stowage: a format-" + std::to_string(major_) + " chunk cannot flag a record uncounted (" +
                             path_.string() + ")");
    if (shift > 0 && seq > (std::numeric_limits<std::uint64_t>::max() >> shift))
      throw std::logic_error("stowage: sequence number " + std::to_string(seq) + " exceeds the chunk limit of 2^" +
                             std::to_string(64 - shift) + " - 1 (" + path_.string() + ")");
    const std::uint64_t field =
        shift == 0 ? seq
                   : seq << shift | (uncounted ? chunk_format::kUncountedBit : 0) |
                         (tombstone ? chunk_format::kKindTombstone : chunk_format::kKindPut);
    const std::uint64_t rec = varint_length(key.size()) + key.size() + varint_length(field) +
                              varint_length(value.size()) + value.size();
    if (rec + 8 > chunk_format::kMaxRawBytes)
      throw ValidationError("stowage: record of " + std::to_string(rec) + " encoded bytes exceeds the chunk limit of " +
                            std::to_string(chunk_format::kMaxRawBytes - 8));
    if (version) {
      if (block_decoded() + rec + 4 > chunk_format::kMaxRawBytes)
        throw ValidationError("stowage: the versions of one key exceed a block of " +
                              std::to_string(chunk_format::kMaxRawBytes) + " bytes (" + path_.string() + ")");
    } else if (block_records_ > 0 && (rec + 8 >= block_bytes_ || block_decoded() >= block_bytes_ ||
                                      block_decoded() + rec + 4 > chunk_format::kMaxRawBytes)) {
      flush_block();  // a full block of format 5 is cut here, before a new key
    }
    std::size_t shared = 0;
    if (block_records_ == 0) {
      block_first_key_.assign(key);
    } else if (block_records_ % chunk_format::kRestartInterval != 0) {
      const std::size_t n = std::min(key.size(), last_key_.size());
      while (shared < n && key[shared] == last_key_[shared]) ++shared;
    }
    const bool restart = block_records_ % chunk_format::kRestartInterval == 0;
    if (restart) restarts_.push_back(static_cast<std::uint32_t>(block_.size()));
    const bool same_len = !restart && value.size() == prev_value_len_;
    put_varint(block_, shared);
    put_varint(block_, (std::uint64_t{key.size() - shared} << 1) | (same_len ? 1 : 0));
    put_varint(block_, field);
    if (!same_len) put_varint(block_, value.size());
    prev_value_len_ = value.size();
    block_.append(key.substr(shared));
    block_.append(value);
    ++block_records_;
    block_records_bytes_ += rec;
    if (records_ == 0) first_key_.assign(key);
    if (!version) last_key_.assign(key);
    last_seq_ = seq;
    ++records_;
    if (tombstone) ++tombstones_;
    if (uncounted) ++uncounted_;
    if (version) {
      ++versions_;
      version_bytes_ += rec;
    }
    raw_bytes_ += rec;
    max_seq_ = std::max(max_seq_, seq);
    min_seq_ = records_ == 1 ? seq : std::min(min_seq_, seq);
    if (!version) bloom_.add(bloom_hash(key));
    if (major_ < chunk_format::kVersionsMajor && block_decoded() >= block_bytes_) flush_block();
  }

  /// Whether an older version of the last key added, `bytes` of value long,
  /// still fits its data block (format 5; see add()).
  bool fits(std::size_t bytes) const {
    const std::uint64_t rec = varint_length(last_key_.size()) + last_key_.size() + 10 + varint_length(bytes) + bytes;
    return records_ > 0 && block_decoded() + rec + 4 <= chunk_format::kMaxRawBytes;
  }

  /// Record bytes added so far, counted as in a format-1 block (varint
  /// lengths, full keys, sequence fields (seq << 1 | kind in format 3) and
  /// values; not prefix compression or block framing): the caller splits
  /// chunks on this.
  std::uint64_t raw_bytes() const { return raw_bytes_; }

  /// Records added so far (puts and tombstones).
  std::uint64_t records() const { return records_; }

  /// Tombstones added so far.
  std::uint64_t tombstones() const { return tombstones_; }

  /// Older versions added so far (format 5).
  std::uint64_t versions() const { return versions_; }

  /// Writes the last data block, the meta block and the footer, sync()s and
  /// closes the file. Calling it twice is a std::logic_error.
  ChunkInfo finish() {
    if (finished_) throw std::logic_error("stowage: ChunkWriter::finish called twice for " + path_.string());
    finished_ = true;
    if (block_records_ > 0) flush_block();
    std::string meta;
    put_varint(meta, block_count_);
    meta.append(index_);
    put_bytes(meta, last_key_);
    put_varint(meta, records_);
    put_varint(meta, max_seq_);
    put_bytes(meta, bloom_.finish());
    if (major_ >= chunk_format::kKindsMajor) put_varint(meta, tombstones_);
    if (major_ >= chunk_format::kCountedMajor) put_varint(meta, uncounted_);
    if (major_ >= chunk_format::kVersionsMajor) put_varint(meta, versions_);
    if (meta.size() > chunk_format::kMaxRawBytes)
      throw ValidationError("stowage: chunk " + path_.string() + " has too many blocks or records for one meta block (" +
                            std::to_string(meta.size()) + " bytes); write smaller chunks");
    const std::uint64_t meta_offset = file_->size();
    const std::uint64_t meta_size = write_frame(meta, chunk_format::kMetaSeed);
    std::string footer;
    put_fixed64(footer, meta_offset);
    put_fixed64(footer, meta_size);
    put_fixed64(footer, checksum(header_ + footer, chunk_format::kFooterSeed));
    footer.append(chunk_format::kEndMagic);
    file_->append(footer);
    file_->sync();
    file_->close();
    ChunkInfo info;
    info.records = records_;
    info.tombstones = tombstones_;
    info.uncounted = uncounted_;
    info.versions = versions_;
    info.version_bytes = version_bytes_;
    info.file_bytes = file_->size();
    info.max_seq = max_seq_;
    info.min_seq = min_seq_;
    info.first_key = first_key_;
    info.last_key = last_key_;
    return info;
  }

 private:
  // Size of the open block once decoded (in memory): records with full keys,
  // a u32 offset per record, the u32 count.
  std::uint64_t block_decoded() const { return block_records_bytes_ + 4 * block_records_ + 4; }

  // Appends one frame holding `raw` (compressed when worth it); returns its framed size.
  std::uint64_t write_frame(std::string_view raw, std::uint64_t seed) {
    std::uint8_t id = NoCompression::id;
    std::string_view stored = raw;
    if constexpr (Compression::id != NoCompression::id) {
      Compression::compress(raw, scratch_);
      const std::uint64_t c = scratch_.size(), n = raw.size();
      if (c * 8 <= n * 7 && n <= chunk_format::kMaxRatio * c + chunk_format::kRatioSlack) {
        id = Compression::id;
        stored = scratch_;
      }
    }
    std::string head;
    head.push_back(static_cast<char>(id));
    put_fixed32(head, static_cast<std::uint32_t>(raw.size()));
    put_fixed32(head, static_cast<std::uint32_t>(stored.size()));
    put_fixed64(head, frame_checksum(head, stored, seed));
    file_->append(head);
    file_->append(stored);
    return head.size() + stored.size();
  }

  void flush_block() {
    for (std::uint32_t off : restarts_) put_fixed32(block_, off);
    put_fixed32(block_, static_cast<std::uint32_t>(restarts_.size()));
    const std::uint64_t offset = file_->size();
    const std::uint64_t framed = write_frame(block_, chunk_format::kDataSeed);
    put_fixed64(index_, offset);
    put_fixed32(index_, static_cast<std::uint32_t>(framed));
    put_bytes(index_, block_first_key_);
    ++block_count_;
    block_.clear();
    restarts_.clear();
    block_records_ = 0;
    block_records_bytes_ = 0;
  }

  std::filesystem::path path_;
  std::size_t block_bytes_;
  std::uint16_t major_;  // chunk format written: 2 to 5
  std::unique_ptr<WritableFile> file_;
  std::string header_;
  std::string block_;                    // encoded records of the open block
  std::vector<std::uint32_t> restarts_;  // offsets in block_ of its restart points
  std::uint64_t block_records_ = 0;      // records in the open block
  std::uint64_t block_records_bytes_ = 0;  // their size in the decoded (format-1) form
  std::size_t prev_value_len_ = 0;         // value length of the previous record
  std::string block_first_key_;
  std::string index_;  // encoded index entries of the blocks written
  std::uint64_t block_count_ = 0;
  std::string first_key_, last_key_;
  std::uint64_t records_ = 0, tombstones_ = 0, uncounted_ = 0, raw_bytes_ = 0, max_seq_ = 0;
  std::uint64_t versions_ = 0, version_bytes_ = 0, last_seq_ = 0, min_seq_ = 0;
  BloomFilterBuilder bloom_;
  std::string scratch_;
  bool finished_ = false;
};

/// An open chunk: the block index and the Bloom filter, verified at open,
/// and the file handle it was opened with (which an owner that keeps many
/// tables may take away with take_file() and lend back per read_block()).
/// Immutable once shared; reads are thread-safe (positional reads only).
template <CompressionPolicy Compression>
class ChunkTable {
 public:
  /// Opens `path` through `fs`, reads and verifies the header, footer and meta
  /// block. Damage is a CorruptionError(path, offset, ...); I/O failures are IoError.
  static std::shared_ptr<ChunkTable> open(FileSystem& fs, const std::filesystem::path& path) {
    namespace cf = chunk_format;
    std::shared_ptr<ChunkTable> t(new ChunkTable(fs.open_read(path), path));
    const std::uint64_t size = t->file_->size();
    t->file_bytes_ = size;
    auto fail = [&](std::uint64_t at, const std::string& what) -> void { throw CorruptionError(path, at, what); };
    if (size < cf::kMinFileBytes)
      fail(0, "chunk file of " + std::to_string(size) + " bytes is shorter than the smallest chunk (" +
                  std::to_string(cf::kMinFileBytes) + " bytes)");
    std::string header = t->read_exact(0, cf::kHeaderBytes, "header");
    std::string footer = t->read_exact(size - cf::kFooterBytes, cf::kFooterBytes, "footer");
    if (std::string_view(header).substr(0, 8) != cf::kMagic) fail(0, "not a chunk file (bad header magic)");
    if (std::string_view(footer).substr(24, 8) != cf::kEndMagic)
      fail(size - 8, "bad footer magic (the file is truncated or was not finished)");
    const std::uint64_t meta_offset = decode_fixed64(footer.data());
    const std::uint64_t meta_size = decode_fixed64(footer.data() + 8);
    if (checksum(header + footer.substr(0, 16), cf::kFooterSeed) != decode_fixed64(footer.data() + 16))
      fail(size - 16, "footer checksum mismatch (covers the header and the meta offset and size)");
    const std::uint16_t major = decode_fixed16(header.data() + 8);
    const std::uint16_t minor = decode_fixed16(header.data() + 10);
    if (major < cf::kOldestMajor || major > cf::kMajor)
      fail(8, "chunk format " + std::to_string(major) + "." + std::to_string(minor) +
                  " is not supported (this build reads " + std::to_string(cf::kOldestMajor) + ".x to " +
                  std::to_string(cf::kMajor) + ".x; a newer stowage wrote it?)");
    t->major_ = major;
    const auto writer_id = static_cast<std::uint8_t>(header[12]);
    if (!can_decompress<Compression>(writer_id))
      fail(12, "written with compression id " + std::to_string(writer_id) + ", which this store's policy (" +
                   std::string(Compression::name) + ") cannot read");
    if (header[13] != 0 || header[14] != 0 || header[15] != 0) fail(13, "reserved header bytes are not zero");
    const std::uint64_t body_end = size - cf::kFooterBytes;
    if (meta_offset < cf::kHeaderBytes || meta_offset > body_end || meta_size != body_end - meta_offset)
      fail(size - cf::kFooterBytes, "meta block at " + std::to_string(meta_offset) + " of " +
                                        std::to_string(meta_size) + " bytes does not end where the footer starts");
    if (meta_size < cf::kFrameHeadBytes || meta_size > cf::kMaxFrameBytes)
      fail(size - cf::kFooterBytes, "implausible meta block size " + std::to_string(meta_size));
    const std::string frame = t->read_exact(meta_offset, static_cast<std::size_t>(meta_size), "meta block");
    const std::string meta = decode_frame<Compression>(frame, path, meta_offset, cf::kMetaSeed, "meta block");
    t->parse_meta(meta, meta_offset, major, minor);
    return t;
  }

  /// False if the chunk certainly holds no record with this key (outside the
  /// key range, or rejected by the Bloom filter).
  bool may_contain(std::string_view key) const { return may_contain(key, bloom_hash(key)); }
  /// As may_contain(key), with the key's bloom_hash already computed (one
  /// hash for every chunk a lookup tries).
  bool may_contain(std::string_view key, std::uint64_t hash) const {
    if (index_.empty() || key < first_key() || last_key() < key) return false;
    return bloom_.may_contain(hash);
  }

  /// Number of data blocks.
  std::size_t block_count() const { return index_.size(); }

  /// The last block whose first key is <= key; block_count() if key precedes
  /// the first key (or the chunk is empty).
  std::size_t find_block(std::string_view key) const {
    const std::size_t above = search_.upper_bound(key, [this](std::size_t i) { return entry_key(index_[i]); });
    return above == 0 ? index_.size() : above - 1;
  }

  /// Reads, verifies and decodes data block i (< block_count(), else
  /// std::out_of_range): checksum verified before decompressing, the block
  /// parsed, and its first and last keys and sequence numbers checked against
  /// the index. Damage is a CorruptionError naming the block's offset.
  std::shared_ptr<const Block> read_block(std::size_t i) const {
    if (!file_) throw std::logic_error("stowage: ChunkTable::read_block(i) after take_file(); pass the file");
    return read_block(i, *file_);
  }
  /// read_block(i), reading through `file` (the same chunk file, opened again).
  /// When `raw_size` is given, *raw_size is set to the block's size after
  /// decompression (before decoding).
  std::shared_ptr<const Block> read_block(std::size_t i, const RandomAccessFile& file,
                                          std::size_t* raw_size = nullptr) const {
    const IndexEntry& e = entry(i);
    const ReadScratch::Use use;
    read_exact_into(file, e.offset, e.framed, "data block", use.scratch.frame);
    auto block = decode_block(i, use.scratch.frame);
    if (raw_size) *raw_size = decode_fixed32(use.scratch.frame.data() + 1);  // the frame was verified
    return block;
  }

  /// Data block i read through `file` and verified (checksum, then
  /// decompressed) but not decoded: its bytes as stored, for
  /// Block::find_stored. Formats 2 to 4 (format 1: read_block()).
  std::string read_stored_block(std::size_t i, const RandomAccessFile& file) const {
    const IndexEntry& e = entry(i);
    return stored_block(e, read_exact(file, e.offset, e.framed, "data block"));
  }
  /// Data block i read through `file` and verified as read_stored_block(i)
  /// does, for the block cache: packed (its compressed bytes kept, see
  /// StoredBlock) when `pack` is true and the frame is compressed, else
  /// decompressed. Formats 2 to 4 (format 1 throws std::logic_error: use
  /// read_block()).
  ///
  /// When `raw` is given and the block comes back packed, *raw holds its
  /// decompressed bytes afterwards (the decompression that verified it), so
  /// a caller that searches it right away need not decompress it again.
  std::shared_ptr<const StoredBlock> read_stored(std::size_t i, const RandomAccessFile& file, bool pack,
                                                 std::string* raw = nullptr) const {
    if (major_ < 2) throw std::logic_error("stowage: a format-1 chunk's blocks have no stored form to search");
    const IndexEntry& e = entry(i);
    const ReadScratch::Use use;
    ReadScratch& scratch = use.scratch;
    read_exact_into(file, e.offset, e.framed, "data block", scratch.frame);
    const bool kinds = major_ >= chunk_format::kKindsMajor, versions = major_ >= chunk_format::kVersionsMajor;
    // The id only picks the form; both paths verify the whole frame.
    const auto id = static_cast<std::uint8_t>(scratch.frame[0]);
    if (!pack || id == NoCompression::id)  // the block keeps its decompressed bytes
      return std::make_shared<const StoredBlock>(stored_block(e, scratch.frame), e.offset, kinds, versions);
    // Verifies the checksum and that the frame decompresses; the block keeps
    // the compressed bytes.
    std::string& out = raw != nullptr ? *raw : scratch.raw;
    decode_frame_into<Compression>(scratch.frame, path_, e.offset, chunk_format::kDataSeed, "data block", out);
    return std::make_shared<const StoredBlock>(
        std::string(std::string_view(scratch.frame).substr(chunk_format::kFrameHeadBytes)), id, out.size(),
        &decompress_by_id<Compression>, e.offset, kinds, versions);
  }
  /// Data block i decoded from `stored`, the block as read_stored(i, ...)
  /// returned it (packed or not), and checked as read_block(i) checks it.
  std::shared_ptr<const Block> decode_stored(std::size_t i, const StoredBlock& stored) const {
    if (!stored.packed()) return decode_raw(i, stored.bytes());
    const ReadScratch::Use use;
    stored.unpack_into(use.scratch.raw, path_);
    return decode_raw(i, use.scratch.raw);
  }
  /// Size of data block i's frame in the file (i < block_count()).
  std::uint64_t block_framed(std::size_t i) const { return entry(i).framed; }
  /// File offset of data block i's frame (i < block_count()).
  std::uint64_t block_offset(std::size_t i) const { return entry(i).offset; }

  /// Frames of consecutive data blocks [first, first + count) read with one
  /// read (see read_block_run), each decoded only when asked for (block_in_run).
  struct BlockRun {
    /// Index of the first block held.
    std::size_t first = 0;
    /// Number of blocks held (0: none).
    std::size_t count = 0;
    /// Their frames, back to back, as read from the file.
    std::string bytes;
    /// True if block i is among them.
    bool holds(std::size_t i) const { return i >= first && i - first < count; }
  };

  /// Reads the frames of data block `first` (< block_count(), else
  /// std::out_of_range) and of the blocks after it while the total stays
  /// within max_bytes (at least block `first`), with one read: scans read
  /// ahead this way instead of one read per block. Nothing is verified yet.
  BlockRun read_block_run(std::size_t first, std::size_t max_bytes) const {
    if (!file_) throw std::logic_error("stowage: ChunkTable::read_block_run after take_file(); pass the file");
    return read_block_run(first, max_bytes, *file_);
  }
  /// read_block_run(first, max_bytes), reading through `file` (the same chunk
  /// file, opened again).
  BlockRun read_block_run(std::size_t first, std::size_t max_bytes, const RandomAccessFile& file) const {
    std::size_t end = first + 1;
    std::uint64_t bytes = entry(first).framed;
    while (end < index_.size() && bytes + index_[end].framed <= max_bytes) bytes += index_[end++].framed;
    BlockRun run;
    run.first = first;
    run.count = end - first;
    run.bytes = read_exact(file, index_[first].offset, static_cast<std::size_t>(bytes), "data blocks");
    return run;
  }

  /// Block i of `run` (first <= i < first + count, else std::out_of_range),
  /// verified and decoded exactly as read_block(i) does.
  std::shared_ptr<const Block> block_in_run(const BlockRun& run, std::size_t i) const {
    const ReadScratch::Use use;  // decode_block() decompresses into it
    return decode_block(i, frame_in_run(run, i));
  }
  /// Block i of `run` verified as read_stored_block(i) does (checksum,
  /// decompression), not decoded: for Block::find_stored.
  std::string stored_in_run(const BlockRun& run, std::size_t i) const {
    const std::string_view frame = frame_in_run(run, i);  // checks i first
    return stored_block(index_[i], frame);
  }

 private:
  // The frame of block i within run (std::out_of_range if it holds none).
  std::string_view frame_in_run(const BlockRun& run, std::size_t i) const {
    if (!run.holds(i) || run.first + run.count > index_.size())
      throw std::out_of_range("stowage: block " + std::to_string(i) + " is not in the run read from " + path_.string());
    const std::uint64_t at = index_[i].offset - index_[run.first].offset;
    return std::string_view(run.bytes).substr(static_cast<std::size_t>(at), index_[i].framed);
  }
  // Verifies and decodes the frame of data block i: checksum before
  // decompressing, then the block's keys and sequence numbers against the index.
  std::shared_ptr<const Block> decode_block(std::size_t i, std::string_view frame) const {
    const IndexEntry& e = index_[i];
    // Decompressed into the thread's scratch (which the frame is never in):
    // the block decodes into a buffer of its own.
    std::string& raw = ReadScratch::local().raw;
    decode_frame_into<Compression>(frame, path_, e.offset, chunk_format::kDataSeed, "data block", raw);
    return decode_raw(i, raw);
  }
  // Block i decoded from its bytes after decompression, and checked against
  // the chunk's index, last key and sequence bound.
  std::shared_ptr<const Block> decode_raw(std::size_t i, std::string_view raw) const {
    const IndexEntry& e = index_[i];
    auto block = Block::parse(raw, path_, e.offset, major_);
    auto fail = [&](const std::string& what) -> void { throw CorruptionError(path_, e.offset, "data block: " + what); };
    if (block->key(0) != entry_key(e)) fail("first key differs from the chunk's index");
    const std::string_view last = block->key(block->size() - 1);
    if (i + 1 < index_.size() ? !(last < entry_key(index_[i + 1])) : last != last_key())
      fail("last key overlaps the next block or differs from the chunk's last key");
    for (std::size_t r = 0; r < block->size(); ++r)
      if (block->seq(r) > max_seq_) fail("sequence number above the chunk's maximum");
    return block;
  }

 public:
  /// Smallest key (empty for an empty chunk).
  std::string_view first_key() const { return index_.empty() ? std::string_view{} : entry_key(index_.front()); }
  /// Largest key (empty for an empty chunk).
  std::string_view last_key() const { return std::string_view(keys_).substr(last_key_off_); }
  /// Number of records (puts and tombstones).
  std::uint64_t records() const { return records_; }
  /// Number of tombstones among them (0 in a format-1 or format-2 chunk).
  std::uint64_t tombstones() const { return tombstones_; }
  /// Number of records flagged uncounted (0 before format 4).
  std::uint64_t uncounted() const { return uncounted_; }
  /// The chunk's format major version (1 to 5).
  std::uint16_t format_major() const { return major_; }
  /// Number of older versions kept for snapshots (format 5; else 0).
  std::uint64_t versions() const { return versions_; }
  /// True if a key may have several records (format 5): its newest first.
  bool may_repeat() const { return major_ >= chunk_format::kVersionsMajor; }
  /// Largest sequence number of any record.
  std::uint64_t max_seq() const { return max_seq_; }
  /// Size of the file.
  std::uint64_t file_bytes() const { return file_bytes_; }
  /// Bytes of memory held (index, keys, Bloom filter), for cache budgets.
  std::size_t charge() const {
    return sizeof(*this) + keys_.capacity() + index_.capacity() * sizeof(IndexEntry) + bloom_.charge() +
           search_.charge() + path_.native().capacity();
  }
  /// The file's path.
  const std::filesystem::path& path() const { return path_; }
  /// Hands over the file handle the table was opened with (nullptr once
  /// taken); afterwards only read_block(i, file) can read blocks.
  std::unique_ptr<RandomAccessFile> take_file() { return std::move(file_); }

 private:
  struct IndexEntry {
    std::uint64_t offset;   // of the block's frame in the file
    std::size_t framed;     // frame size (header + stored bytes)
    std::size_t key_off;    // first key, in keys_
    std::size_t key_len;
  };

  // Index entry i; std::out_of_range when there is no block i.
  const IndexEntry& entry(std::size_t i) const {
    if (i >= index_.size())
      throw std::out_of_range("stowage: block " + std::to_string(i) + " of " + std::to_string(index_.size()) +
                              " in " + path_.string());
    return index_[i];
  }
  // The bytes of the data block whose index entry is e, from its frame:
  // checksum verified, then decompressed.
  std::string stored_block(const IndexEntry& e, std::string_view frame) const {
    return decode_frame<Compression>(frame, path_, e.offset, chunk_format::kDataSeed, "data block");
  }

  ChunkTable(std::unique_ptr<RandomAccessFile> file, std::filesystem::path path)
      : file_(std::move(file)), path_(std::move(path)) {}

  std::string_view entry_key(const IndexEntry& e) const { return std::string_view(keys_).substr(e.key_off, e.key_len); }

  // Reads exactly n bytes at offset (already checked to lie within the file
  // size seen at open); a short read means the file shrank.
  std::string read_exact(std::uint64_t offset, std::size_t n, const char* what) const {
    return read_exact(*file_, offset, n, what);
  }
  std::string read_exact(const RandomAccessFile& file, std::uint64_t offset, std::size_t n, const char* what) const {
    std::string buf;
    read_exact_into(file, offset, n, what, buf);
    return buf;
  }
  // read_exact() into buf (resized to n; its capacity is reused).
  void read_exact_into(const RandomAccessFile& file, std::uint64_t offset, std::size_t n, const char* what,
                       std::string& buf) const {
    buf.resize(n);
    if (file.read(offset, n, buf.data()) != n)
      throw CorruptionError(path_, offset, std::string("short read of ") + what + " (the file shrank after open)");
  }

  void parse_meta(std::string_view meta, std::uint64_t meta_offset, std::uint16_t major, std::uint16_t minor) {
    namespace cf = chunk_format;
    Reader r = Reader::decoded(meta, path_, meta_offset, "meta block");
    const std::uint64_t blocks = r.varint("block count");
    // Each index entry takes at least 13 bytes (offset, size, key length).
    if (blocks > r.remaining() / 13)
      r.fail("block count " + std::to_string(blocks) + " cannot fit in " + std::to_string(r.remaining()) + " bytes");
    index_.reserve(static_cast<std::size_t>(blocks));
    keys_.reserve(meta.size());
    std::uint64_t expect = cf::kHeaderBytes;
    for (std::uint64_t i = 0; i < blocks; ++i) {
      IndexEntry e{};
      e.offset = r.u64("block offset");
      const std::uint64_t framed = r.u32("block size");
      const auto key = r.length_prefixed("block first key");
      if (e.offset != expect)
        r.fail("block " + std::to_string(i) + " at " + std::to_string(e.offset) + " does not start where the previous ends (" +
               std::to_string(expect) + ")");
      if (framed < cf::kFrameHeadBytes || framed > cf::kMaxFrameBytes || framed > meta_offset - e.offset)
        r.fail("block " + std::to_string(i) + " size " + std::to_string(framed) + " is impossible");
      if (!index_.empty() && !(entry_key(index_.back()) < key))
        r.fail("block first keys are not strictly ascending at block " + std::to_string(i));
      e.framed = static_cast<std::size_t>(framed);
      e.key_off = keys_.size();
      e.key_len = key.size();
      keys_.append(key);
      index_.push_back(e);
      expect += framed;
    }
    if (expect != meta_offset)
      r.fail("data blocks end at " + std::to_string(expect) + ", not at the meta block (" + std::to_string(meta_offset) +
             ")");
    const auto last = r.length_prefixed("last key");
    last_key_off_ = keys_.size();
    keys_.append(last);
    records_ = r.varint("record count");
    max_seq_ = r.varint("max sequence number");
    const auto bloom = r.length_prefixed("Bloom filter");
    if (major >= cf::kKindsMajor) {
      tombstones_ = r.varint("tombstone count");
      if (tombstones_ > records_)
        r.fail("tombstone count " + std::to_string(tombstones_) + " exceeds the record count " +
               std::to_string(records_));
    }
    if (major >= cf::kCountedMajor) {
      uncounted_ = r.varint("uncounted record count");
      if (uncounted_ > records_)
        r.fail("uncounted record count " + std::to_string(uncounted_) + " exceeds the record count " +
               std::to_string(records_));
    }
    if (major >= cf::kVersionsMajor) {
      versions_ = r.varint("older version count");
      if (versions_ >= records_ && versions_ > 0)
        r.fail("older version count " + std::to_string(versions_) + " is not below the record count " +
               std::to_string(records_));
    }
    if (minor <= cf::kMinor && !r.empty())
      r.fail(major >= cf::kVersionsMajor ? "bytes after the older version count"
             : major >= cf::kCountedMajor ? "bytes after the uncounted record count"
             : major >= cf::kKindsMajor ? "bytes after the tombstone count"
                                        : "bytes after the Bloom filter");
    if (index_.empty()) {
      if (records_ != 0 || !last.empty() || max_seq_ != 0) r.fail("an empty chunk declares records or keys");
    } else {
      if (last < entry_key(index_.back())) r.fail("last key precedes the last block's first key");
      if (records_ < index_.size()) r.fail("fewer records than blocks");
    }
    bloom_ = BloomFilter(std::string(bloom), path_, meta_offset);
    search_.build(index_.size(), [this](std::size_t i) { return entry_key(index_[i]); });
  }

  std::unique_ptr<RandomAccessFile> file_;
  std::filesystem::path path_;
  std::uint64_t file_bytes_ = 0, records_ = 0, tombstones_ = 0, uncounted_ = 0, max_seq_ = 0, versions_ = 0;
  std::uint16_t major_ = chunk_format::kMajor;  // selects the data block decoder
  std::string keys_;  // first key of every block, then the last key
  std::size_t last_key_off_ = 0;
  std::vector<IndexEntry> index_;
  PrefixSearch search_;  // over the blocks' first keys, for find_block
  BloomFilter bloom_;
};

}  // namespace stowage::detail
