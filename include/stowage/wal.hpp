// SPDX-License-Identifier: BSL-1.0
// wal.hpp: the write-ahead log. Every commit (a put, an erase or an atomic
// batch) is appended as ONE record before it is acknowledged, so a batch is
// all or nothing across a crash.
//
// A WAL is a series of segment files `wal-NNNNNN.log`. Record framing (see
// docs/format.md#wal):
//
//   fixed32 payload length | u8 type | fixed32 log number (low 32 bits of the
//   segment number) | fixed64 durable length | fixed64 checksum | payload
//
// durable length = how many bytes of this segment were known to be fsynced
// when the record was appended. checksum = XXH3(payload, seed = XXH3(the 17
// header bytes before it, seed = log number)).
//
// Batch payload: fixed64 first sequence | varint op count | per op: u8 kind
// (1 put, 2 erase) | length-prefixed key | (put only) length-prefixed value.
// Op i has sequence first + i.
//
// Preallocation: zeros are written ahead of the records (WalWriter::grow),
// so syncing a record is an fdatasync into space that is already written
// and needs no file-size journaling. The records' durable lengths count
// record bytes only, never the zeros. No record has type 0, so replay
// stops where the zeros begin; zeros from there to the
// end of the file are a clean end (WalReplay::zero_bytes), not a cut. A
// segment that takes no more records is sealed (synced, its zeros cut off,
// synced again). A segment made ahead of a freeze is prepared (its first
// zeros synced: WalWriter::prepare) and from then on never has a record end
// at the file's end, so a prefix of it that a power cut leaves never looks
// sealed; only such a segment is sealed in the background after the next one
// starts (judge_wal_end tells a crash before that seal from damage). Any
// other segment is sealed before the next one takes a record.
//
// Recovery reads records in order and stops at the first bad one, at offset
// D. If only zeros follow, that is the end. Otherwise: bytes that were never
// fsynced may come back from a power cut torn, zeroed (or as the zeros they
// overwrote) or with pages out of order; bytes that were fsynced may not. So the
// rest of the segment is searched for valid records: if one of them says
// that more than D bytes were durable when it was written, synced data is
// damaged: a CorruptionError naming the file and offset. Otherwise the bad
// bytes lie in the unsynced tail: they are cut (with any records after them,
// which were never synced either) and the cut is reported. How a segment
// that later segments follow may end is judge_wal_end's to say.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "detail/coding.hpp"
#include "error.hpp"
#include "file.hpp"

namespace stowage::detail {

inline constexpr std::size_t kWalHeaderBytes = 25;
inline constexpr std::uint8_t kWalBatch = 1;
inline constexpr std::uint8_t kOpPut = 1;
inline constexpr std::uint8_t kOpErase = 2;
/// The largest payload one record may carry.
inline constexpr std::uint64_t kWalMaxPayload = 0xFFFFFFFFull;

inline std::string wal_file_name(std::uint64_t number) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "wal-%06llu.log", static_cast<unsigned long long>(number));
  return buf;
}

/// The number in "<stem>NNNNNN.log" (up to 18 digits); nullopt for any other name.
inline std::optional<std::uint64_t> parse_log_file_name(std::string_view name, std::string_view stem) {
  if (name.size() < stem.size() + 5 || name.substr(0, stem.size()) != stem || name.substr(name.size() - 4) != ".log")
    return std::nullopt;
  std::uint64_t n = 0;
  auto digits = name.substr(stem.size(), name.size() - stem.size() - 4);
  if (digits.empty() || digits.size() > 18) return std::nullopt;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

/// Parses "wal-NNNNNN.log"; nullopt for any other name.
inline std::optional<std::uint64_t> parse_wal_file_name(std::string_view name) {
  return parse_log_file_name(name, "wal-");
}

/// "feed-000042.log": WAL segment 42, released by a flush and kept for the
/// change feed (Options::change_feed_bytes); its records are unchanged.
inline std::string feed_file_name(std::uint64_t number) { return "feed-" + wal_file_name(number).substr(4); }

/// Parses "feed-NNNNNN.log"; nullopt for any other name.
inline std::optional<std::uint64_t> parse_feed_file_name(std::string_view name) {
  return parse_log_file_name(name, "feed-");
}

/// A record's checksum: XXH3 of the payload, seeded with the XXH3 (seeded
/// with the log number) of the first 17 header bytes.
inline std::uint64_t record_checksum(std::string_view head17, std::string_view payload, std::uint32_t log_number) {
  return checksum(payload, checksum(head17, log_number));
}

/// Builds the payload of one batch record.
class WalBatch {
 public:
  explicit WalBatch(std::uint64_t first_seq = 0) { reset(first_seq); }
  void reset(std::uint64_t first_seq) {
    payload_.clear();
    put_fixed64(payload_, first_seq);
    count_ = 0;
    first_seq_ = first_seq;
  }
  /// Reserves room for `bytes` more bytes of ops (a caller that knows its
  /// keys and values saves the reallocations of a growing payload).
  void reserve(std::size_t bytes) { payload_.reserve(payload_.size() + bytes); }
  void put(std::string_view key, std::string_view value) {
    payload_.push_back(static_cast<char>(kOpPut));
    put_bytes(payload_, key);
    put_bytes(payload_, value);
    ++count_;
  }
  void erase(std::string_view key) {
    payload_.push_back(static_cast<char>(kOpErase));
    put_bytes(payload_, key);
    ++count_;
  }
  std::uint64_t count() const { return count_; }
  std::uint64_t first_seq() const { return first_seq_; }
  /// Bytes so far (the sequence and the ops; finish() adds the count).
  std::size_t size() const { return payload_.size(); }
  /// The record payload: sequence, count, ops.
  std::string finish() const {
    std::string out;
    out.reserve(payload_.size() + 10);
    out.append(payload_, 0, 8);
    put_varint(out, count_);
    out.append(payload_, 8, std::string::npos);
    return out;
  }

 private:
  std::string payload_;
  std::uint64_t count_ = 0;
  std::uint64_t first_seq_ = 0;
};

/// One decoded op of a batch record (views into the payload).
struct WalOp {
  std::uint8_t kind;
  std::uint64_t seq;
  std::string_view key;
  std::string_view value;
};

/// Decodes a batch payload, calling fn(const WalOp&) per op.
template <class Fn>
void decode_wal_batch(std::string_view payload, const std::filesystem::path& file, std::uint64_t offset, Fn&& fn) {
  Reader r(payload, &file, offset);
  std::uint64_t seq = r.u64("sequence");
  std::uint64_t count = r.varint("op count");
  if (count > payload.size()) r.fail("op count exceeds the record");
  if (seq == 0 || seq > ~std::uint64_t{0} - count) r.fail("sequence numbers out of range");
  for (std::uint64_t i = 0; i < count; ++i) {
    WalOp op{};
    op.kind = r.u8("op kind");
    op.seq = seq + i;
    op.key = r.length_prefixed("key");
    if (op.kind == kOpPut)
      op.value = r.length_prefixed("value");
    else if (op.kind != kOpErase)
      r.fail("unknown op kind " + std::to_string(op.kind));
    fn(op);
  }
  if (!r.empty()) r.fail("trailing bytes after the last op");
}

/// What replaying one segment found: valid_bytes + cut_bytes + zero_bytes
/// is the file's length.
struct WalReplay {
  std::uint64_t records = 0;     ///< valid records replayed
  std::uint64_t valid_bytes = 0; ///< length of the valid prefix: where appends continue
  std::uint64_t cut_bytes = 0;   ///< torn tail after it, up to its last non-zero byte
  std::uint64_t zero_bytes = 0;  ///< zeros ending the file (preallocated space; a clean end if cut_bytes == 0)
  std::uint64_t first_seq = 0;   ///< sequence of the first valid record (0: none)
  std::uint64_t durable_claim = 0;  ///< the largest durable length a valid record states (0: never synced)
  /// The segment ends exactly at its last record, as a sealed one does.
  bool sealed() const { return cut_bytes == 0 && zero_bytes == 0; }
};

/// Preallocation: a segment's file is kept ahead of its records with
/// written zeros, first kWalPreallocMin, then steps as large as the file
/// (doubling) up to kWalPreallocMax, so syncing a record is an fdatasync of
/// data alone: no new file length to journal, except once per step.
inline constexpr std::uint64_t kWalPreallocMin = std::uint64_t{64} << 10;
inline constexpr std::uint64_t kWalPreallocMax = std::uint64_t{1} << 20;

/// Appends records to one segment. append() is serialised by the caller;
/// sync() may run concurrently with append() (group commit).
///
/// Records go at the logical end (size()). Where the FileSystem writes in
/// place (WritableFile::write_at), the file is kept ahead of them with
/// written zeros (allocated()), which replay reads as a clean end, once the
/// segment has been synced (a segment never synced, as with
/// Durability::none, would only pay for writing the zeros); otherwise
/// records are plainly appended. Where the file can also be mapped
/// (WritableFile::map), records of up to 64 KiB are copied into the map,
/// with no system call, and the zeros are written ahead of them from the
/// first record on: a store may only land on bytes the file holds.
class WalWriter {
 public:
  /// Creates segment `number` in dir and makes its name durable.
  /// prealloc_max: the largest preallocation step (0: plain appends); map:
  /// write records through a map of the file where it can be mapped.
  WalWriter(FileSystem& fs, const std::filesystem::path& dir, std::uint64_t number,
            std::uint64_t prealloc_max = kWalPreallocMax, bool map = true)
      : fs_(&fs), number_(number), path_(dir / wal_file_name(number)), prealloc_max_(prealloc_max), map_ok_(map) {
    file_ = fs.create(path_);
    fs.sync_dir(dir);
    in_place_ = prealloc_max_ > 0;
  }
  /// Continues segment `number` in dir, which replay_wal() just read as
  /// `replayed`: records go on at replayed.valid_bytes, not at the file's
  /// end, over its zero tail; a torn tail is truncated away first, so none of
  /// its bytes can follow a new record. Syncs the file: the replayed records
  /// count as durable.
  WalWriter(FileSystem& fs, const std::filesystem::path& dir, std::uint64_t number, const WalReplay& replayed,
            std::uint64_t prealloc_max = kWalPreallocMax, bool map = true)
      : fs_(&fs), number_(number), path_(dir / wal_file_name(number)), prealloc_max_(prealloc_max), map_ok_(map) {
    const std::uint64_t end = replayed.valid_bytes;
    if (replayed.cut_bytes > 0) fs.truncate(path_, end);
    file_ = fs.open_write(path_);
    in_place_ = prealloc_max_ > 0 && file_->write_at(end, {});
    if (file_->size() > end && !in_place_) {  // cannot write in place: the zero tail goes too
      file_.reset();
      fs.truncate(path_, end);
      file_ = fs.open_write(path_);
    }
    allocated_ = std::max(file_->size(), end);
    logical_ = end;
    file_->sync();
    flushed_.store(end);
    durable_.store(end);
    synced_.store(true);
  }
  /// Preallocates the segment ahead of its records (written zeros, at least
  /// kWalPreallocMin past them) and syncs the file, so its length is durable
  /// before the next record: from then on the file always ends in bytes that
  /// are not a whole record until seal() cuts them, and a segment that a
  /// power cut caught before its seal never looks sealed (judge_wal_end).
  /// The engine prepares each segment it makes ahead of a freeze, on the
  /// flush thread, before any record; the segment an open starts is not
  /// prepared. Does nothing where the file cannot be written in place
  /// (prepared() stays false). Not concurrent with append().
  void prepare() {
    if (!in_place_ || broken_.load()) return;
    grow(logical_);
    if (!in_place_) return;
    file_->sync();
    synced_.store(true, std::memory_order_relaxed);
    prepared_ = true;
  }
  /// Whether prepare() ran and every record since went in place, ahead of
  /// durable zeros: then the segment can be left for a background seal.
  /// Otherwise (plain appends) it must be sealed before a later segment
  /// takes a record.
  bool prepared() const { return prepared_ && in_place_ && !broken_.load(); }

  /// Writes one record at the logical end and hands it to the OS (a process
  /// crash keeps it), first extending the preallocated zeros if it would not
  /// fit in them.
  void append(std::string_view payload, std::uint8_t type = kWalBatch) {
    if (payload.size() > kWalMaxPayload)
      throw ValidationError("stowage: a commit of " + std::to_string(payload.size()) +
                            " bytes exceeds the WAL record limit of 4 GiB; split the batch");
    char header[kWalHeaderBytes];
    encode_fixed32(header, static_cast<std::uint32_t>(payload.size()));
    header[4] = static_cast<char>(type);
    encode_fixed32(header + 5, static_cast<std::uint32_t>(number_));
    encode_fixed64(header + 9, durable_.load());
    encode_fixed64(header + 17,
                   record_checksum(std::string_view(header, 17), payload, static_cast<std::uint32_t>(number_)));
    const std::uint64_t end = logical_ + kWalHeaderBytes + payload.size();
    // A write that failed leaves the handle unfit for sync() (another thread
    // may be about to sync it: group commit, the background WAL sync).
    struct Broken {
      std::atomic<bool>& flag;
      bool done = false;
      ~Broken() {
        if (!done) flag.store(true);
      }
    } broken{broken_};
    // Mapped: preallocated at once (a store may only land on bytes the file
    // holds); else only once synced, where it spares the fsync a size change.
    const bool mapping = in_place_ && payload.size() <= kCombine && mapped(end);
    // A prepared segment keeps zeros after its last record at all times (a
    // record never ends exactly at the file's end), so a prefix of it that a
    // power cut leaves never looks like a sealed segment.
    if (in_place_ && (end > allocated_ || (prepared_ && end == allocated_)) &&
        (mapping || prepared_ || synced_.load(std::memory_order_relaxed)))
      grow(end);
    bool written = false;
    if (mapping && in_place_ && end <= allocated_) {
      // Two copies into the page cache, no system call; the OS has the
      // record as soon as they are done, as after write_at().
      char* at = map_->data() + logical_;
      std::memcpy(at, header, kWalHeaderBytes);
      if (!payload.empty()) std::memcpy(at + kWalHeaderBytes, payload.data(), payload.size());
      written = true;
      // The pages behind the records are not read again: every MiB they are
      // given back, so the segment does not count in resident memory.
      const std::uint64_t done = end / 4096 * 4096;
      if (done >= released_ + kReleaseStep) {
        map_->release(released_, done - released_);
        released_ = done;
      }
    } else if (in_place_) {
      if (payload.size() <= kCombine) {  // one write
        record_.assign(header, kWalHeaderBytes);
        record_.append(payload);
        written = file_->write_at(logical_, record_);
      } else {
        written = file_->write_at(logical_, std::string_view(header, kWalHeaderBytes)) &&
                  file_->write_at(logical_ + kWalHeaderBytes, payload);
      }
      in_place_ = written;  // false only before anything was written in place
    }
    if (!written) {
      file_->append(std::string_view(header, kWalHeaderBytes));
      file_->append(payload);
      file_->flush();
    }
    broken.done = true;
    logical_ = end;
    allocated_ = std::max(allocated_, end);
    flushed_.store(end);
  }
  /// Where the pages append() gave back end (it does so each MiB): bytes
  /// before it are in no page this process maps. Call under the append
  /// serialisation.
  std::uint64_t released() const { return released_; }
  /// Whether records are being written through a map (call under the
  /// append serialisation).
  bool mapping() const { return map_ != nullptr; }
  /// Writes the records before `end` (from released()) to the device, not
  /// yet durable (WritableFile::write_back), each byte once: a later sync()
  /// or seal() then has little left to write. Pages no longer mapped are
  /// written without a write-protect of each in the writer's page tables,
  /// where a sync of pages still mapped costs a TLB flush on every core the
  /// process runs on (an interrupt each, on a virtual machine) and a fault
  /// at the writer's next store to the page. Safe while another thread
  /// appends.
  void write_back(std::uint64_t end) {
    if (broken_.load() || end <= written_back_.load()) return;
    const std::uint64_t from = written_back_.exchange(end);
    if (end > from) file_->write_back(from, end - from);
  }
  /// Makes every record appended before the call durable. Safe to call while
  /// another thread appends (records appended meanwhile may or may not be
  /// covered).
  void sync() {
    refuse_if_broken();
    std::uint64_t target = flushed_.load();
    try {
      file_->sync_flushed();
    } catch (...) {
      broken_.store(true);  // a failed sync is final for the handle: never synced again (file.hpp)
      throw;
    }
    synced_.store(true, std::memory_order_relaxed);
    std::uint64_t cur = durable_.load();
    while (cur < target && !durable_.compare_exchange_weak(cur, target)) {
    }
  }
  /// For a segment that takes no more records (a later one starts, or the
  /// store closes): syncs it, then cuts the preallocated zeros off and syncs
  /// the new length, so the file holds exactly its records. Every segment but
  /// the last must (replay takes a zero tail there for damage). Does nothing
  /// to a segment that is synced and holds no zeros (e.g. one never written).
  void seal() {
    refuse_if_broken();  // its final sync below would sync a handle a write failed on
    // Unmapped first: nothing may store past the end about to be cut, and
    // the sync then finds no page mapped (see write_back()).
    map_.reset();
    if (durable_.load() < flushed_.load()) sync();
    if (allocated_ > logical_) {
      fs_->truncate(path_, logical_);
      allocated_ = logical_;
      try {
        file_->sync();
      } catch (...) {
        broken_.store(true);
        throw;
      }
    }
  }
  void close() {
    map_.reset();
    file_->close();
  }
  std::uint64_t number() const { return number_; }
  /// Bytes of records: the logical end (call under the caller's append
  /// serialisation).
  std::uint64_t size() const { return logical_; }
  /// The file's length: size() plus the preallocated zeros after it.
  std::uint64_t allocated() const { return allocated_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  static constexpr std::size_t kCombine = std::size_t{64} << 10;
  // A write failed on this handle: it is never synced again (an fsync error
  // or a failed write is final; see docs/format.md#wal).
  void refuse_if_broken() const {
    if (broken_.load())
      throw IoError("stowage: a write to " + path_.string() +
                    " failed; the WAL segment is not synced again (reopen the store to recover from the WAL)");
  }
  // Writes zeros from the file's end (or the new record's end, if further)
  // to the next step past `end`. The first write_at() may say the file
  // cannot be written in place: then records are appended instead.
  void grow(std::uint64_t end) {
    static const std::string zeros(static_cast<std::size_t>(kWalPreallocMax), '\0');
    const std::uint64_t step = std::max<std::uint64_t>(4096, std::min(std::max(allocated_, kWalPreallocMin), prealloc_max_));
    const std::uint64_t target = (std::max(end + 1, allocated_ + step) + 4095) / 4096 * 4096;  // past end
    for (std::uint64_t at = std::max(allocated_, end); at < target;) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(target - at, zeros.size()));
      if (!file_->write_at(at, std::string_view(zeros.data(), n))) {
        in_place_ = false;
        return;
      }
      at += n;
    }
    allocated_ = target;
  }

  // True if the map covers [0, end) (end within the allocated bytes),
  // mapping a larger window when it does not; false if the file cannot be
  // mapped (records are then written with write_at()).
  bool mapped(std::uint64_t end) {
    if (map_ && map_->size() >= end) return true;
    if (!map_ok_) return false;
    map_.reset();
    const std::uint64_t window = (end + kMapWindow - 1) / kMapWindow * kMapWindow;  // end > 0: a record
    map_ = file_->map(window);
    if (!map_) map_ok_ = false;
    return map_ != nullptr;
  }

  static constexpr std::uint64_t kMapWindow = std::uint64_t{64} << 20;
  static constexpr std::uint64_t kReleaseStep = std::uint64_t{1} << 20;
  FileSystem* fs_;
  std::uint64_t number_;
  std::filesystem::path path_;
  std::uint64_t prealloc_max_;
  std::unique_ptr<WritableFile> file_;
  std::unique_ptr<WritableMap> map_;  ///< the file mapped, when it can be (see mapped())
  bool map_ok_;                       ///< mapping wanted, and file_->map() has not refused
  std::uint64_t released_ = 0;        ///< bytes of the map before this given back (WritableMap::release)
  std::atomic<std::uint64_t> written_back_{0};  ///< write_back() asked for the bytes before this
  bool in_place_ = false;        ///< records go in place, ahead of them written zeros
  bool prepared_ = false;        ///< prepare() made the preallocated length durable
  std::uint64_t logical_ = 0;    ///< end of the last record (append serialisation)
  std::uint64_t allocated_ = 0;  ///< the file's length: records and zeros (append serialisation)
  std::string record_;           ///< header + payload of the record being written
  std::atomic<std::uint64_t> flushed_{0};  ///< bytes of records handed to the OS
  std::atomic<std::uint64_t> durable_{0};  ///< bytes of records known fsynced
  std::atomic<bool> broken_{false};        ///< a write or a sync failed: sync() and seal() refuse (see append)
  std::atomic<bool> synced_{false};        ///< sync() ran: preallocating pays from now on
};

namespace wal_detail {

/// Reads a file front to back through a window of at least kChunk bytes,
/// so a replay makes one read per MiB, not two per record.
class WindowReader {
 public:
  static constexpr std::size_t kChunk = std::size_t{1} << 20;
  WindowReader(const RandomAccessFile& f, std::uint64_t size) : f_(f), size_(size) {}
  /// The bytes [pos, pos + n), valid until the next call; nullptr if the
  /// file holds fewer. n is at most the file's size (the caller bounds it),
  /// so no hostile length allocates more than the file.
  const char* get(std::uint64_t pos, std::uint64_t n) {
    if (pos > size_ || n > size_ - pos) return nullptr;
    if (pos >= start_ && n <= buf_.size() && pos - start_ <= buf_.size() - n) return buf_.data() + (pos - start_);
    const auto want = static_cast<std::size_t>(std::max<std::uint64_t>(n, std::min<std::uint64_t>(kChunk, size_ - pos)));
    buf_.resize(want);
    buf_.resize(f_.read(pos, want, buf_.data()));
    start_ = pos;
    return buf_.size() >= n ? buf_.data() : nullptr;
  }

 private:
  const RandomAccessFile& f_;
  std::uint64_t size_;
  std::uint64_t start_ = 0;
  std::string buf_;
};

/// Checks for a valid record at pos; returns its total length (0 if none),
/// points payload at it in r's window and sets durable to the durable
/// length it records.
inline std::uint64_t valid_record_in(WindowReader& r, std::uint64_t pos, std::uint32_t log_number,
                                     std::string_view& payload, std::uint64_t& durable) {
  const char* header = r.get(pos, kWalHeaderBytes);
  if (header == nullptr) return 0;
  const std::uint32_t len = decode_fixed32(header);
  auto type = static_cast<std::uint8_t>(header[4]);
  if (type != kWalBatch || decode_fixed32(header + 5) != log_number) return 0;
  const char* record = r.get(pos, kWalHeaderBytes + std::uint64_t{len});  // the whole record in one window
  if (record == nullptr) return 0;
  payload = std::string_view(record + kWalHeaderBytes, len);
  if (record_checksum(std::string_view(record, 17), payload, log_number) != decode_fixed64(record + 17)) return 0;
  durable = decode_fixed64(record + 9);
  return kWalHeaderBytes + len;
}

}  // namespace wal_detail

/// Replays segment `number` from the open file f, calling fn(payload, offset)
/// for each valid record in order. See the file comment for how a bad record
/// is judged.
template <class Fn>
WalReplay replay_wal(const RandomAccessFile& file, std::uint64_t number, Fn&& fn) {
  const RandomAccessFile* f = &file;
  const auto log_number = static_cast<std::uint32_t>(number);
  WalReplay result;
  std::uint64_t pos = 0;
  const std::uint64_t size = f->size();
  std::uint64_t durable = 0;
  wal_detail::WindowReader reader(*f, size);
  std::string_view record;
  while (pos < size) {
    std::uint64_t n = wal_detail::valid_record_in(reader, pos, log_number, record, durable);
    if (n == 0) break;
    if (result.records == 0 && record.size() >= 8) result.first_seq = decode_fixed64(record.data());
    result.durable_claim = std::max(result.durable_claim, durable);
    fn(record, pos);
    ++result.records;
    pos += n;
  }
  result.valid_bytes = pos;
  if (pos == size) return result;
  // Where the non-zero bytes after the valid prefix end: zeros from pos to
  // the end of the file are preallocated space, a clean end.
  constexpr std::size_t kWindow = 1 << 20;
  std::string window;
  std::uint64_t nonzero_end = pos;
  for (std::uint64_t start = pos; start < size; start += kWindow) {
    window.resize(static_cast<std::size_t>(std::min<std::uint64_t>(kWindow, size - start)));
    window.resize(f->read(start, window.size(), window.data()));
    for (std::size_t i = window.size(); i-- > 0;)
      if (window[i] != 0) {
        nonzero_end = start + i + 1;
        break;
      }
  }
  result.zero_bytes = size - nonzero_end;
  if (nonzero_end == pos) return result;
  // Torn tail or damaged synced data? Look for any valid record after the
  // damage that says the damaged bytes were already durable. Only positions
  // whose type and log number match are checked in full, so a garbage tail
  // costs one pass.
  for (std::uint64_t start = pos + 1; start + kWalHeaderBytes <= size; start += kWindow) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kWindow + kWalHeaderBytes, size - start));
    window.resize(want);
    window.resize(f->read(start, want, window.data()));
    for (std::size_t i = 0; i + kWalHeaderBytes <= window.size() && i < kWindow; ++i) {
      if (static_cast<std::uint8_t>(window[i + 4]) != kWalBatch || decode_fixed32(window.data() + i + 5) != log_number)
        continue;
      if (wal_detail::valid_record_in(reader, start + i, log_number, record, durable) != 0 && durable > pos)
        throw CorruptionError(f->path(), pos,
                              "damaged WAL record inside bytes that were already synced (the valid record at offset " +
                                  std::to_string(start + i) + " says " + std::to_string(durable) +
                                  " bytes were durable): not a torn tail");
    }
  }
  result.cut_bytes = nonzero_end - pos;
  return result;
}

/// Replays segment `number` at `path` (see the overload above).
template <class Fn>
WalReplay replay_wal(FileSystem& fs, const std::filesystem::path& path, std::uint64_t number, Fn&& fn) {
  const auto f = fs.open_read(path);
  return replay_wal(*f, number, std::forward<Fn>(fn));
}

/// How a segment that later segments follow ends (judge_wal_end).
enum class WalEnd {
  sealed,    ///< at its last record: replay goes on into the next segment
  unsealed,  ///< in zeros, its records whole (a crash came before its seal): go on
  cut,       ///< early, in bytes never synced: the log ends here, after this
             ///< segment's valid records; later segments hold only records
             ///< that were never synced and follow lost ones (drop them)
};

/// Judges the end of a segment that later segments follow, from its replay r,
/// the sequence its records end before (next_seq) and the replays of the
/// later segments, in order (their records not applied). A frozen segment is
/// sealed (synced, its zeros cut off) in the background, before any later
/// segment is synced; a crash between a freeze and that seal leaves it ending
/// in zeros (after a kill -9, with every record there) or, after a power cut,
/// torn or short. Its records are whole when the next segment that holds
/// records starts at next_seq. Otherwise its end is lost: a cut when no later
/// record says bytes of its segment were synced, else a CorruptionError
/// (synced data is damaged).
inline WalEnd judge_wal_end(const std::filesystem::path& path, const WalReplay& r, std::uint64_t next_seq,
                            const std::vector<WalReplay>& later) {
  if (r.sealed()) return WalEnd::sealed;
  bool synced_after = false;
  const WalReplay* next = nullptr;
  for (const auto& l : later) {
    synced_after = synced_after || l.durable_claim > 0;
    if (!next && l.records > 0) next = &l;
  }
  if (r.cut_bytes == 0 && next && next->first_seq == next_seq) return WalEnd::unsealed;
  if (synced_after)
    throw CorruptionError(path, r.valid_bytes,
                          std::string(r.cut_bytes > 0 ? "damaged record" : "records missing") +
                              " at the end of a WAL segment that a later, synced segment follows (a segment is "
                              "sealed before the next one is synced): not a torn tail");
  // No later segment holds a record: this one ends the log, as the last does.
  return next || r.cut_bytes > 0 ? WalEnd::cut : WalEnd::unsealed;
}

}  // namespace stowage::detail
