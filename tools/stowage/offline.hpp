// SPDX-License-Identifier: BSL-1.0
// offline.hpp (the `stowage` tool): reading and rewriting a store without
// its C++ types, from what its MANIFEST records, on the library's own
// on-disk components (manifest.hpp, chunk.hpp, wal.hpp, file_lock.hpp).
//
//   StoreReader      a consistent read-only view of the 'default' keyspace:
//                    every chunk opened and the live WAL replayed into an
//                    overlay; scans merge the two in key order. Takes no lock:
//                    when a writer replaces MANIFEST while it opens, it opens
//                    again (open files stay readable after a writer deletes
//                    them). In salvage mode (repair) damaged chunks, blocks
//                    and WAL records are skipped and listed as lost ranges.
//   write_chunks     sorted records into new chunk files, as a checkpoint
//                    writes them (sequence 0, the store's compression).
//   compact_store    every record rewritten into new chunk files, the WAL
//                    folded in, one atomic MANIFEST swap, old files deleted.
//   append_records   records appended as WAL batches in a new segment, which
//                    the next open replays (what `load` does).
//   backup_store     hard links of the chunks and durable copies of MANIFEST
//                    and the live WAL, never LOCK.
//   repair_store     every record that still verifies, into a new store.
// Callers that write take the store's LOCK first (detail::FileLock), so they
// never write to a store another process holds.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <stowage/stowage.hpp>

namespace stowage::tool {

/// Records a repair could not save: where, why, and between which keys.
struct LostRange {
  std::filesystem::path file;         ///< the damaged file
  std::uint64_t offset = 0;           ///< where the damage starts in it
  std::string what;                   ///< "chunk", "block 3", "WAL records"
  std::string error;                  ///< the CorruptionError's message
  std::optional<std::string> first;   ///< encoded key: the first lost key, when known (a whole chunk)
  std::optional<std::string> last;    ///< encoded key: the last lost key, when known (a whole chunk)
  std::optional<std::string> after;   ///< else: lost keys are above this one (nullopt: from the start)
  std::optional<std::string> before;  ///< else: lost keys are below this one (nullopt: to the end)
  std::uint64_t records = 0;          ///< records known lost (0: not known)
};

/// Progress reporting: (bytes done, bytes in all).
using ProgressFn = std::function<void(std::uint64_t, std::uint64_t)>;

namespace offline_detail {

/// The largest chunk or WAL file number in dir (0 when none).
inline std::uint64_t max_file_number(FileSystem& fs, const std::filesystem::path& dir) {
  const auto l = detail::list_store(fs, dir);
  std::uint64_t n = 0;
  if (!l.chunks.empty()) n = std::max(n, l.chunks.back());
  if (!l.wal.empty()) n = std::max(n, l.wal.back());
  return n;
}

/// Refuses stores the tool cannot rewrite: other keyspaces than 'default'
/// (not written by today's Storage), format 1 (open it with a writable
/// Storage once), user compression policies.
inline void require_rewritable(const detail::Manifest& m, const std::filesystem::path& dir) {
  if (m.format_major != detail::kFormatMajor)
    throw MigrationError("stowage: " + dir.string() + " is in format " + std::to_string(m.format_major) +
                         "; open it once with a writable Storage (which migrates it) before rewriting it with the tool");
  for (const auto& ks : m.keyspaces)
    if (ks.name != detail::kDefaultKeyspace)
      throw ValidationError("stowage: " + dir.string() + " holds keyspace '" + ks.name +
                            "'; the tool rewrites only stores whose one keyspace is 'default'");
}

/// Calls fn(std::type_identity<Compression>{}) with the built-in policy of id.
template <class Fn>
decltype(auto) with_compression(std::uint8_t id, const std::filesystem::path& dir, Fn&& fn) {
  if (id == NoCompression::id) return fn(std::type_identity<NoCompression>{});
  if (id == Lz4Compression::id) return fn(std::type_identity<Lz4Compression>{});
  throw ValidationError("stowage: " + dir.string() + " was written with a user compression policy (id " +
                        std::to_string(id) + "); the tool reads and writes only lz4 and none");
}

}  // namespace offline_detail

/// A consistent read-only view of a store's 'default' keyspace (see the top
/// of this file).
class StoreReader {
 public:
  /// Opens the store at dir through fs. salvage: skip and list damage
  /// instead of throwing CorruptionError.
  StoreReader(FileSystem& fs, std::filesystem::path dir, bool salvage = false) : fs_(&fs), dir_(std::move(dir)) {
    std::string before = detail::read_manifest_bytes(fs, dir_);
    for (int pass = 0;; ++pass) {
      load(before, salvage);
      std::string after = detail::read_manifest_bytes(fs, dir_);
      if (after == before || pass >= 4) break;
      before = std::move(after);
    }
  }

  /// The MANIFEST this view was opened from.
  const detail::Manifest& manifest() const { return manifest_; }
  /// The 'default' keyspace's types, or nullptr when the MANIFEST has none.
  const detail::KeyspaceState* keyspace() const { return manifest_.keyspace(detail::kDefaultKeyspace); }
  /// The sequence number of the last operation, the WAL's included.
  std::uint64_t last_seq() const { return last_seq_; }
  /// Puts and erases replayed from the WAL.
  std::uint64_t wal_operations() const { return wal_ops_; }
  /// Bytes of the chunks a full scan reads.
  std::uint64_t chunk_bytes() const { return chunk_bytes_; }
  /// What salvage mode skipped (filled while opening, and by scan()).
  const std::vector<LostRange>& lost() const { return lost_; }
  /// The last live WAL segment's number and what replaying it found, if any.
  const std::optional<std::pair<std::uint64_t, detail::WalReplay>>& last_segment() const { return last_segment_; }

  /// Calls fn(key, value) -> bool for every live record with from <= key < to
  /// (encoded keys; nullopt: unbounded) in key order, until fn returns false.
  void scan(const std::optional<std::string>& from, const std::optional<std::string>& to,
            const std::function<bool(std::string_view, std::string_view)>& fn, const ProgressFn& progress = {}) {
    auto ov = from ? overlay_.lower_bound(*from) : overlay_.begin();
    bool stop = false;
    std::uint64_t done = 0;
    auto past_end = [&](std::string_view k) { return to && !(k < std::string_view(*to)); };
    // Emits overlay records below `bound` (all when bound is null).
    auto drain = [&](const std::string_view* bound) {
      while (!stop && ov != overlay_.end() && (!bound || std::string_view(ov->first) < *bound)) {
        if (past_end(ov->first)) {
          stop = true;
          return;
        }
        if (ov->second) stop = !fn(ov->first, *ov->second);
        ++ov;
      }
    };
    std::vector<std::size_t> open_losses;  // lost blocks waiting for the next key read (their upper bound)
    std::optional<std::string> last_key;
    auto note_key = [&](std::string_view k) {
      for (auto i : open_losses) lost_[i].before = std::string(k);
      open_losses.clear();
      last_key = std::string(k);
    };
    for (const auto& c : chunks_) {
      if (stop) break;
      if (from && c.ref.last_key < *from) continue;
      if (to && !(c.ref.first_key < *to)) break;
      if (!c.table) continue;  // salvage: the whole chunk was listed as lost at open
      std::size_t b = from ? c.table->find_block(*from) : 0;
      if (b >= c.table->block_count()) b = 0;
      std::uint64_t read = 0;
      std::vector<std::size_t> chunk_losses;
      for (; b < c.table->block_count() && !stop; ++b) {
        std::shared_ptr<const detail::Block> block;
        try {
          block = c.table->read_block(b);
        } catch (const CorruptionError& e) {
          if (!salvage_) throw;
          lost_.push_back({c.table->path(), e.offset(), "block " + std::to_string(b), e.what(), {}, {}, last_key, {}, 0});
          open_losses.push_back(lost_.size() - 1);
          chunk_losses.push_back(lost_.size() - 1);
          continue;
        }
        read += block->size();
        for (std::size_t i = from ? block->lower_bound(*from) : 0; i < block->size() && !stop; ++i) {
          const std::string_view key = block->key(i);
          if (past_end(key)) {
            stop = true;
            break;
          }
          note_key(key);
          drain(&key);
          if (stop) break;
          if (ov != overlay_.end() && ov->first == key) {
            if (ov->second) stop = !fn(key, *ov->second);
            ++ov;
          } else {
            stop = !fn(key, block->value(i));
          }
        }
      }
      if (chunk_losses.size() == 1 && !from && !stop) lost_[chunk_losses[0]].records = c.ref.records - read;
      done += c.ref.bytes;
      if (progress) progress(done, chunk_bytes_);
    }
    if (!stop) drain(nullptr);
  }

 private:
  struct Chunk {
    detail::ChunkRef ref;
    std::shared_ptr<detail::ChunkTable<Lz4Compression>> table;  // null: lost (salvage)
    std::size_t lost = 0;                                       // its entry in lost_ when table is null
  };

  void load(const std::string& manifest_bytes, bool salvage) {
    salvage_ = salvage;
    chunks_.clear();
    overlay_.clear();
    lost_.clear();
    wal_ops_ = 0;
    chunk_bytes_ = 0;
    last_segment_.reset();
    manifest_ = detail::decode_manifest(manifest_bytes, dir_ / "MANIFEST");
    const auto* ks = keyspace();
    if (!ks) throw CorruptionError(dir_ / "MANIFEST", 0, "MANIFEST names no 'default' keyspace");
    offline_detail::with_compression(manifest_.compression_id, dir_, [](auto) { return 0; });
    for (const auto& ref : ks->chunks) {
      Chunk c{ref, nullptr, 0};
      const auto path = dir_ / detail::chunk_file_name(ref.file);
      try {
        c.table = detail::ChunkTable<Lz4Compression>::open(*fs_, path);
        if (c.table->records() != ref.records || c.table->first_key() != ref.first_key ||
            c.table->last_key() != ref.last_key)
          throw CorruptionError(path, 0, "the chunk differs from the MANIFEST's entry for it");
      } catch (const Error& e) {
        if (!salvage) throw;
        c.table.reset();
        const auto* ce = dynamic_cast<const CorruptionError*>(&e);
        lost_.push_back({path, ce ? ce->offset() : 0, "chunk", e.what(), ref.first_key, ref.last_key, {}, {}, ref.records});
        c.lost = lost_.size() - 1;
      }
      chunk_bytes_ += ref.bytes;
      chunks_.push_back(std::move(c));
    }
    // The live WAL, in order, into the overlay.
    last_seq_ = manifest_.last_seq;
    std::vector<std::uint64_t> live;
    for (auto n : detail::list_store(*fs_, dir_).wal)
      if (n >= manifest_.wal_start) live.push_back(n);
    for (std::size_t i = 0; i < live.size(); ++i) {
      const std::uint64_t n = live[i];
      const auto path = dir_ / detail::wal_file_name(n);
      try {
        auto r = detail::replay_wal(*fs_, path, n, [&](std::string_view payload, std::uint64_t offset) {
          detail::decode_wal_batch(payload, path, offset, [&](const detail::WalOp& op) {
            ++wal_ops_;
            last_seq_ = std::max(last_seq_, op.seq);
            if (op.kind == detail::kOpErase)
              overlay_.insert_or_assign(std::string(op.key), std::nullopt);
            else
              overlay_.insert_or_assign(std::string(op.key), std::string(op.value));
          });
        });
        // Damage in a segment that later ones follow is never a torn tail.
        if (r.cut_bytes > 0 && i + 1 < live.size())
          throw CorruptionError(path, r.valid_bytes, "damaged record inside a WAL segment that later segments follow");
        last_segment_ = std::pair{n, r};
      } catch (const CorruptionError& e) {
        if (!salvage) throw;
        lost_.push_back({path, e.offset(), "WAL records", e.what(), {}, {}, {}, {}, 0});
        last_segment_.reset();
      }
    }
  }

  FileSystem* fs_;
  std::filesystem::path dir_;
  bool salvage_ = false;
  detail::Manifest manifest_;
  std::vector<Chunk> chunks_;
  std::map<std::string, std::optional<std::string>, std::less<>> overlay_;  // WAL: nullopt = erased
  std::vector<LostRange> lost_;
  std::uint64_t last_seq_ = 0, wal_ops_ = 0, chunk_bytes_ = 0;
  std::optional<std::pair<std::uint64_t, detail::WalReplay>> last_segment_;
};

/// Decoded and stored bytes of a chunk's data blocks, from their frame
/// headers alone (no block is read or verified): for a compression ratio.
struct BlockBytes {
  std::uint64_t raw = 0;     ///< bytes of the blocks once decoded
  std::uint64_t stored = 0;  ///< bytes of their frames in the file
  std::uint64_t blocks = 0;  ///< data blocks
};

/// Walks the frame headers of the chunk at path, from the first data block to
/// the meta block the footer names. CorruptionError when they do not tile.
inline BlockBytes chunk_block_bytes(FileSystem& fs, const std::filesystem::path& path) {
  namespace cf = detail::chunk_format;
  auto f = fs.open_read(path);
  const std::uint64_t size = f->size();
  if (size < cf::kMinFileBytes) throw CorruptionError(path, 0, "too short for a chunk file");
  char footer[cf::kFooterBytes];
  if (f->read(size - cf::kFooterBytes, sizeof footer, footer) != sizeof footer)
    throw CorruptionError(path, size - cf::kFooterBytes, "short read of the footer");
  const std::uint64_t meta = detail::decode_fixed64(footer);
  if (meta < cf::kHeaderBytes || meta > size - cf::kFooterBytes) throw CorruptionError(path, size - 32, "bad meta offset");
  BlockBytes out;
  for (std::uint64_t at = cf::kHeaderBytes; at < meta;) {
    char head[cf::kFrameHeadBytes];
    if (meta - at < sizeof head || f->read(at, sizeof head, head) != sizeof head)
      throw CorruptionError(path, at, "data block frame runs past the meta block");
    const std::uint64_t stored = detail::decode_fixed32(head + 5);
    out.raw += detail::decode_fixed32(head + 1);
    out.stored += cf::kFrameHeadBytes + stored;
    ++out.blocks;
    at += cf::kFrameHeadBytes + stored;
    if (at > meta) throw CorruptionError(path, at, "data block frame runs past the meta block");
  }
  return out;
}

/// Chunk files written by write_chunks: their MANIFEST entries.
struct WrittenChunks {
  std::vector<detail::ChunkRef> chunks;  ///< in key order
  std::uint64_t next_file = 0;           ///< the number after the last file written
  std::uint64_t records = 0;             ///< records written
  std::uint64_t bytes = 0;               ///< bytes of the files
};

/// Writes the records `source(emit)` emits (emit(key, value), keys strictly
/// ascending) into chunk files numbered from first_file in dir, with the
/// store's compression (by id), cut at chunk_bytes of records, sequence 0
/// as a checkpoint writes them; each file is synced (the caller syncs dir).
inline WrittenChunks write_chunks(FileSystem& fs, const std::filesystem::path& dir, std::uint8_t compression_id,
                                  std::uint64_t first_file,
                                  const std::function<void(const std::function<void(std::string_view, std::string_view)>&)>& source,
                                  std::uint64_t chunk_bytes = std::uint64_t{256} << 10, std::size_t block_bytes = 4096) {
  return offline_detail::with_compression(compression_id, dir, [&]<class C>(std::type_identity<C>) {
    WrittenChunks out;
    out.next_file = first_file;
    std::unique_ptr<detail::ChunkWriter<C>> w;
    std::uint64_t number = 0;
    auto finish = [&] {
      const detail::ChunkInfo info = w->finish();
      out.chunks.push_back({number, info.records, info.file_bytes, info.max_seq, info.first_key, info.last_key});
      out.records += info.records;
      out.bytes += info.file_bytes;
      w.reset();
    };
    source([&](std::string_view key, std::string_view value) {
      if (!w) {
        number = out.next_file++;
        w = std::make_unique<detail::ChunkWriter<C>>(fs, dir / detail::chunk_file_name(number), block_bytes);
      }
      w->add(key, 0, value);
      if (w->raw_bytes() >= chunk_bytes) finish();
    });
    if (w) finish();
    return out;
  });
}

/// What compact_store did.
struct CompactResult {
  std::uint64_t records = 0;                      ///< live records kept
  std::uint64_t bytes_before = 0, bytes_after = 0;  ///< chunk + WAL + MANIFEST bytes
  std::uint64_t files_before = 0, files_after = 0;  ///< chunk + WAL files
};

/// Rewrites every live record of the store at dir (whose LOCK the caller
/// holds) into new chunk files, folds the WAL in, swaps MANIFEST atomically
/// and deletes the old chunk files and WAL segments.
inline CompactResult compact_store(FileSystem& fs, const std::filesystem::path& dir, const ProgressFn& progress = {}) {
  StoreReader reader(fs, dir);
  detail::Manifest m = reader.manifest();
  offline_detail::require_rewritable(m, dir);
  const StoreInfo before = inspect(dir);
  CompactResult res;
  res.bytes_before = before.disk_bytes;
  res.files_before = before.keyspaces[0].chunks.size() + before.wal.size();
  const std::uint64_t first = std::max(m.next_file, offline_detail::max_file_number(fs, dir) + 1);
  const auto written = write_chunks(fs, dir, m.compression_id, first, [&](const auto& emit) {
    reader.scan({}, {}, [&](std::string_view k, std::string_view v) {
      emit(k, v);
      return true;
    }, progress);
  });
  fs.sync_dir(dir);  // the new chunks' names are durable before MANIFEST names them
  const detail::Manifest old = m;
  m.keyspace(detail::kDefaultKeyspace)->chunks = written.chunks;
  m.last_seq = reader.last_seq();
  m.next_file = written.next_file;
  m.wal_start = written.next_file;  // past every segment: the WAL is in the chunks now
  detail::write_manifest(fs, dir, m);
  for (const auto& c : old.keyspace(detail::kDefaultKeyspace)->chunks) fs.remove(dir / detail::chunk_file_name(c.file));
  for (auto n : detail::list_store(fs, dir).wal)
    if (n < m.wal_start) fs.remove(dir / detail::wal_file_name(n));
  fs.sync_dir(dir);
  const StoreInfo after = inspect(dir);
  res.records = written.records;
  res.bytes_after = after.disk_bytes;
  res.files_after = after.keyspaces[0].chunks.size() + after.wal.size();
  return res;
}

/// Appends (key, value-or-erase) operations to the store at dir (whose LOCK
/// the caller holds) as WAL batches of at most batch_ops operations in one
/// new segment, synced; the next open replays them. The previous last
/// segment's zero or torn tail is cut first, as an open would, since a
/// segment now follows it. Returns the first and last sequence numbers used.
inline std::pair<std::uint64_t, std::uint64_t> append_records(
    FileSystem& fs, const std::filesystem::path& dir,
    const std::vector<std::pair<std::string, std::optional<std::string>>>& ops, std::size_t batch_ops = 1000) {
  StoreReader reader(fs, dir);
  offline_detail::require_rewritable(reader.manifest(), dir);
  for (const auto& [k, v] : ops)
    if (k.size() > kMaxKeyBytes || (v && v->size() > kMaxValueBytes))
      throw ValidationError("stowage: a key over 64 KiB or a value over 1 GiB encoded cannot be stored");
  if (const auto& last = reader.last_segment()) {
    const auto& [n, r] = *last;
    if (r.cut_bytes > 0 || r.zero_bytes > 0) {
      const auto path = dir / detail::wal_file_name(n);
      fs.truncate(path, r.valid_bytes);
      fs.open_append(path)->sync();
    }
  }
  const std::uint64_t number = std::max(reader.manifest().next_file, offline_detail::max_file_number(fs, dir) + 1);
  detail::WalWriter w(fs, dir, number, 0);
  std::uint64_t seq = reader.last_seq() + 1;
  const std::uint64_t first = seq;
  for (std::size_t i = 0; i < ops.size();) {
    detail::WalBatch batch(seq);
    for (std::size_t end = std::min(ops.size(), i + batch_ops); i < end; ++i) {
      if (ops[i].second)
        batch.put(ops[i].first, *ops[i].second);
      else
        batch.erase(ops[i].first);
    }
    seq += batch.count();
    w.append(batch.finish());
  }
  w.sync();
  w.seal();
  w.close();
  return {first, seq - 1};
}

/// What backup_store copied.
struct BackupResult {
  std::uint64_t chunks = 0, wal_segments = 0, bytes = 0;  ///< files and bytes in the backup
};

/// Copies the store at dir (whose LOCK the caller holds, so nothing changes
/// meanwhile) to the new directory dest: hard links of the chunk files (they
/// are immutable; copies across file systems), durable copies of MANIFEST
/// and the live WAL segments, never LOCK; dest is synced. dest must not exist.
inline BackupResult backup_store(FileSystem& fs, const std::filesystem::path& dir, const std::filesystem::path& dest) {
  if (fs.exists(dest))
    throw ValidationError("stowage: backup destination " + dest.string() + " exists; name a new directory");
  const StoreInfo info = inspect(dir);
  fs.create_dirs(dest);
  BackupResult res;
  for (const auto& ks : info.keyspaces)
    for (const auto& c : ks.chunks) {
      fs.link(c.file, dest / c.file.filename());
      ++res.chunks;
      res.bytes += c.bytes;
    }
  for (const auto& w : info.wal)
    if (w.live) {
      copy_file(fs, w.file, dest / w.file.filename());
      ++res.wal_segments;
      res.bytes += w.bytes;
    }
  copy_file(fs, dir / "MANIFEST", dest / "MANIFEST");
  res.bytes += info.manifest_bytes;
  fs.sync_dir(dest);
  return res;
}

/// What repair_store saved and lost.
struct RepairResult {
  std::uint64_t records = 0;    ///< records written to the new store
  std::vector<LostRange> lost;  ///< what could not be saved
};

/// Writes every record of the store at dir that still verifies (chunks
/// block by block, the WAL up to its first bad record) into a new store at
/// out, with the same MANIFEST types; lists what was lost. dir is only read.
inline RepairResult repair_store(FileSystem& fs, const std::filesystem::path& dir, const std::filesystem::path& out,
                                 const ProgressFn& progress = {}) {
  if (fs.exists(out) && !(fs.is_directory(out) && fs.list(out).empty()))
    throw ValidationError("stowage: repair output " + out.string() + " exists and is not empty; name a new directory");
  StoreReader reader(fs, dir, /*salvage=*/true);
  detail::Manifest m = reader.manifest();
  offline_detail::require_rewritable(m, dir);
  fs.create_dirs(out);
  const auto written = write_chunks(fs, out, m.compression_id, 1, [&](const auto& emit) {
    reader.scan({}, {}, [&](std::string_view k, std::string_view v) {
      emit(k, v);
      return true;
    }, progress);
  });
  fs.sync_dir(out);
  m.keyspace(detail::kDefaultKeyspace)->chunks = written.chunks;
  m.last_seq = reader.last_seq();
  m.next_file = written.next_file;
  m.wal_start = written.next_file;
  detail::write_manifest(fs, out, m);
  return {written.records, reader.lost()};
}

}  // namespace stowage::tool
