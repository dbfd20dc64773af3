// SPDX-License-Identifier: BSL-1.0
// verify.hpp: looking into a store without opening it.
//
//   stowage::inspect(dir)  what the MANIFEST says (format, policies, key and
//                          value types, schema version, keyspaces, chunk
//                          files, WAL segments) and the files' sizes; reads
//                          MANIFEST and lists the directory, nothing more.
//   stowage::verify(dir)   reads every file the MANIFEST names: every chunk's
//                          header, footer, meta block and data blocks
//                          (checksums verified, blocks decoded, keys ascending
//                          within blocks, across blocks and across chunks, the
//                          block index and the MANIFEST's entry agreeing with
//                          what the blocks hold), and every live WAL segment
//                          (record checksums, batch decoding, sequences
//                          continuing from the MANIFEST's). Problems are
//                          collected with their file and offset, and checking
//                          goes on with the next block, chunk or segment.
//
// Neither takes the store's LOCK, opens it, or writes anything, so both work
// on a store another process has open for writing, without disturbing it (they
// never even open LOCK: closing any descriptor of it would drop the lock of a
// Storage open in the calling process). A writer may checkpoint meanwhile: a
// new MANIFEST replaces the one read and old files are deleted. verify reads
// MANIFEST again at the end and, when it changed, starts over (a few times),
// so a report describes one consistent state of the store. The live WAL's last
// segment may end in a record being written: a torn tail there is a note, not
// a problem (an open would cut it), as in any segment after a crash.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chunk.hpp"
#include "compression.hpp"
#include "error.hpp"
#include "file.hpp"
#include "manifest.hpp"
#include "storage.hpp"
#include "wal.hpp"

namespace stowage {

/// One chunk file as the MANIFEST names it.
struct ChunkFileInfo {
  std::uint64_t number = 0;        ///< file number: NNNNNN.chunk
  std::filesystem::path file;      ///< its path
  std::uint64_t records = 0;       ///< records, as the MANIFEST says
  std::uint64_t bytes = 0;         ///< file size, as the MANIFEST says
  std::uint64_t max_seq = 0;       ///< largest sequence number of its records
  std::string first_key;           ///< smallest encoded key
  std::string last_key;            ///< largest encoded key
  bool present = false;            ///< whether the file exists
};

/// One keyspace (typed collection) as the MANIFEST names it. Format 2 keeps
/// each keyspace's chunks as one sorted run of non-overlapping files (one
/// level); later formats add levels.
struct KeyspaceInfo {
  std::string name;                   ///< "default" for Storage's records
  std::string key_order;              ///< KeyCodec<Key>::name() of the writer
  std::string value_type;             ///< type_description<Value>() of the writer (empty: unknown)
  std::uint32_t schema_version = 0;   ///< value schema version of the records
  std::uint64_t records = 0;          ///< records in its chunks
  std::uint64_t bytes = 0;            ///< bytes of its chunk files
  std::vector<ChunkFileInfo> chunks;  ///< in key order
};

/// One WAL segment in the directory.
struct WalSegmentInfo {
  std::uint64_t number = 0;    ///< wal-NNNNNN.log
  std::filesystem::path file;  ///< its path
  std::uint64_t bytes = 0;     ///< file size (records and preallocated zeros)
  bool live = false;           ///< at or after the MANIFEST's wal_start: replayed at open
};

/// What inspect() found: the MANIFEST's contents and the files' sizes.
struct StoreInfo {
  std::filesystem::path dir;                ///< the store's directory
  unsigned format_major = 0;                ///< on-disk format (MANIFEST major version)
  unsigned format_minor = 0;                ///< MANIFEST minor version
  std::string serializer;                   ///< Serializer::id() of the writer
  std::string compression;                  ///< Compression::name of the writer
  unsigned compression_id = 0;              ///< Compression::id of the writer
  std::uint64_t last_seq = 0;               ///< last sequence number the chunks cover
  std::uint64_t next_file = 0;              ///< next file number the MANIFEST allows
  std::uint64_t wal_start = 0;              ///< first WAL segment still needed
  std::vector<KeyspaceInfo> keyspaces;      ///< in MANIFEST order
  std::vector<WalSegmentInfo> wal;          ///< every WAL segment in the directory, by number
  std::uint64_t manifest_bytes = 0;         ///< size of MANIFEST
  std::uint64_t chunk_bytes = 0;            ///< bytes of the chunk files the MANIFEST names
  std::uint64_t wal_bytes = 0;              ///< bytes of the live WAL segments
  std::uint64_t disk_bytes = 0;             ///< manifest + named chunks + live WAL
  std::uint64_t records = 0;                ///< records in chunks (the WAL is not read)
  std::vector<std::string> unnamed_files;   ///< chunk and WAL files nothing needs (left by a crash)
  std::vector<std::string> other_files;     ///< names stowage does not write (besides LOCK, MANIFEST.tmp)

  /// The keyspace called name, or nullptr.
  const KeyspaceInfo* keyspace(std::string_view name) const {
    for (const auto& ks : keyspaces)
      if (ks.name == name) return &ks;
    return nullptr;
  }
};

/// One thing wrong with a store: the file, the byte offset and what.
struct StoreProblem {
  std::filesystem::path file;  ///< the damaged (or missing) file
  std::uint64_t offset = 0;    ///< byte offset of the damage in it (0 when the whole file is concerned)
  std::string what;            ///< description, with what to do
};

/// What verify() checked of one file.
struct VerifiedFile {
  std::filesystem::path file;  ///< its path
  std::string kind;            ///< "manifest", "chunk" or "wal"
  std::uint64_t bytes = 0;     ///< bytes read
  std::uint64_t records = 0;   ///< records (chunk) or operations (WAL) decoded
  std::uint64_t blocks = 0;    ///< data blocks (chunk) or records (WAL) verified
  bool ok = true;              ///< no problem found in it
};

/// What verify() found.
struct VerifyReport {
  StoreInfo info;                      ///< inspect()'s view of the state that was verified
  std::vector<VerifiedFile> files;     ///< every file read, MANIFEST first
  std::uint64_t chunk_records = 0;     ///< records decoded from chunk blocks
  std::uint64_t wal_operations = 0;    ///< puts and erases decoded from the WAL
  std::uint64_t bytes = 0;             ///< bytes read and checked
  std::vector<StoreProblem> problems;  ///< everything wrong; empty when the store is sound
  std::vector<std::string> notes;      ///< harmless findings (a torn WAL tail, leftover files)
  unsigned passes = 1;                 ///< >1 when a writer changed the store during a pass
  /// True when no problem was found.
  bool ok() const { return problems.empty(); }
};

/// Options of verify() and inspect().
struct VerifyOptions {
  /// The file layer (nullptr: the POSIX one).
  std::shared_ptr<FileSystem> file_system;
  /// Called now and then with (bytes checked, bytes to check) for a progress display.
  std::function<void(std::uint64_t, std::uint64_t)> progress;
  /// How many times verify starts over when a writer replaces MANIFEST meanwhile.
  unsigned max_passes = 5;
};

namespace detail {

/// The directory's chunk and WAL files by number, and the other names.
struct StoreListing {
  std::vector<std::uint64_t> chunks;
  std::vector<std::uint64_t> wal;
  std::vector<std::string> other;
};

/// Lists dir through fs, sorting chunk and WAL files by number.
inline StoreListing list_store(FileSystem& fs, const std::filesystem::path& dir) {
  StoreListing l;
  for (const auto& n : fs.list(dir)) {
    if (auto w = parse_wal_file_name(n))
      l.wal.push_back(*w);
    else if (auto c = parse_chunk_file_name(n))
      l.chunks.push_back(*c);
    else if (n != "MANIFEST" && n != "LOCK" && n != "MANIFEST.tmp")
      l.other.push_back(n);
  }
  std::sort(l.chunks.begin(), l.chunks.end());
  std::sort(l.wal.begin(), l.wal.end());
  return l;
}

/// The size of p, or nullopt when it cannot be opened.
inline std::optional<std::uint64_t> file_size_if_any(FileSystem& fs, const std::filesystem::path& p) {
  try {
    return fs.open_read(p)->size();
  } catch (const IoError&) {
    return std::nullopt;
  }
}

/// StoreInfo from a decoded manifest and a listing of the directory.
inline StoreInfo describe_store(FileSystem& fs, const std::filesystem::path& dir, const Manifest& m,
                                std::uint64_t manifest_bytes, const StoreListing& listing) {
  StoreInfo info;
  info.dir = dir;
  info.format_major = m.format_major;
  info.format_minor = m.format_minor;
  info.serializer = m.serializer;
  info.compression = m.compression;
  info.compression_id = m.compression_id;
  info.last_seq = m.last_seq;
  info.next_file = m.next_file;
  info.wal_start = m.wal_start;
  info.manifest_bytes = manifest_bytes;
  std::vector<std::uint64_t> named;
  for (const auto& ks : m.keyspaces) {
    KeyspaceInfo k;
    k.name = ks.name;
    k.key_order = ks.key_order;
    k.value_type = ks.value_type;
    k.schema_version = ks.schema_version;
    for (const auto& c : ks.chunks) {
      ChunkFileInfo f;
      f.number = c.file;
      f.file = dir / chunk_file_name(c.file);
      f.records = c.records;
      f.bytes = c.bytes;
      f.max_seq = c.max_seq;
      f.first_key = c.first_key;
      f.last_key = c.last_key;
      f.present = std::binary_search(listing.chunks.begin(), listing.chunks.end(), c.file);
      k.records += c.records;
      k.bytes += c.bytes;
      named.push_back(c.file);
      k.chunks.push_back(std::move(f));
    }
    info.records += k.records;
    info.chunk_bytes += k.bytes;
    info.keyspaces.push_back(std::move(k));
  }
  std::sort(named.begin(), named.end());
  for (auto c : listing.chunks)
    if (!std::binary_search(named.begin(), named.end(), c)) info.unnamed_files.push_back(chunk_file_name(c));
  for (auto n : listing.wal) {
    WalSegmentInfo w;
    w.number = n;
    w.file = dir / wal_file_name(n);
    w.bytes = file_size_if_any(fs, w.file).value_or(0);
    w.live = n >= m.wal_start;
    if (w.live)
      info.wal_bytes += w.bytes;
    else
      info.unnamed_files.push_back(wal_file_name(n));
    info.wal.push_back(std::move(w));
  }
  info.other_files = listing.other;
  info.disk_bytes = info.manifest_bytes + info.chunk_bytes + info.wal_bytes;
  return info;
}

/// Reads MANIFEST's bytes; ValidationError when dir holds no store.
inline std::string read_manifest_bytes(FileSystem& fs, const std::filesystem::path& dir) {
  if (!fs.is_directory(dir)) throw ValidationError("stowage: no store at " + dir.string() + " (not a directory); check the path");
  if (!manifest_exists(fs, dir))
    throw ValidationError("stowage: no store at " + dir.string() + " (no MANIFEST); check the path");
  return read_file(fs, dir / "MANIFEST", kManifestMaxBytes);
}

/// Reads every data block of an open chunk in order, calling on_block(i,
/// block) for each one that verifies and on_bad(i, error) for each one that
/// does not (then goes on with the next).
template <class Table, class OnBlock, class OnBad>
void for_each_block(const Table& table, OnBlock&& on_block, OnBad&& on_bad) {
  for (std::size_t i = 0; i < table.block_count(); ++i) {
    std::shared_ptr<const Block> block;
    try {
      block = table.read_block(i);
    } catch (const CorruptionError& e) {
      on_bad(i, e);
      continue;
    }
    on_block(i, *block);
  }
}

/// Verifies one pass over the state `manifest_bytes` describes.
template <CompressionPolicy Compression>
VerifyReport verify_pass(FileSystem& fs, const std::filesystem::path& dir, const std::string& manifest_bytes,
                         const VerifyOptions& opt) {
  VerifyReport rep;
  const auto manifest_path = dir / "MANIFEST";
  VerifiedFile mf{manifest_path, "manifest", manifest_bytes.size(), 0, 1, true};
  Manifest m;
  try {
    m = decode_manifest(manifest_bytes, manifest_path);
  } catch (const CorruptionError& e) {
    mf.ok = false;
    rep.files.push_back(mf);
    rep.problems.push_back({e.file(), e.offset(), e.what()});
    rep.notes.push_back("MANIFEST is damaged, so no other file can be checked against it");
    return rep;
  }
  rep.files.push_back(mf);
  rep.bytes += manifest_bytes.size();
  const StoreListing listing = list_store(fs, dir);
  rep.info = describe_store(fs, dir, m, manifest_bytes.size(), listing);
  const std::uint64_t total = rep.info.disk_bytes;
  auto progress = [&] {
    if (opt.progress) opt.progress(rep.bytes, total);
  };
  auto problem = [&](const std::filesystem::path& file, std::uint64_t offset, const std::string& what) {
    rep.problems.push_back({file, offset, what});
  };

  const bool readable = can_decompress<Compression>(m.compression_id);
  if (!readable)
    problem(manifest_path, 0,
            "stowage: the store was written with compression '" + m.compression + "' (id " +
                std::to_string(m.compression_id) + "), which verify<" + std::string(Compression::name) +
                "> cannot decode: call stowage::verify<ThatPolicy>(dir) to check its chunks");
  for (const auto& ks : rep.info.keyspaces) {
    for (const auto& c : ks.chunks) {
      VerifiedFile vf{c.file, "chunk", 0, 0, 0, true};
      auto bad = [&](std::uint64_t offset, const std::string& what) {
        vf.ok = false;
        problem(c.file, offset, what);
      };
      if (!c.present) {
        bad(0, "stowage: chunk file named by the MANIFEST (keyspace '" + ks.name +
                   "') is missing; restore it from a backup, or run `stowage repair` to save the rest");
      } else if (readable) {
        try {
          auto table = ChunkTable<Compression>::open(fs, c.file);
          // The MANIFEST's entry must describe this very file.
          auto differs = [&](const char* what) {
            bad(0, std::string("stowage: the chunk's ") + what +
                       " differs from the MANIFEST's entry (a swapped, copied or truncated chunk file)");
          };
          if (table->file_bytes() != c.bytes) differs("size");
          if (table->records() != c.records) differs("record count");
          if (table->first_key() != c.first_key) differs("first key");
          if (table->last_key() != c.last_key) differs("last key");
          if (table->max_seq() != c.max_seq) differs("maximum sequence number");
          vf.bytes = table->file_bytes();
          std::uint64_t in_blocks = 0;
          for_each_block(
              *table,
              [&](std::size_t, const Block& b) {
                ++vf.blocks;
                in_blocks += b.size();
              },
              [&](std::size_t, const CorruptionError& e) { bad(e.offset(), e.what()); });
          vf.records = in_blocks;
          if (vf.ok && in_blocks != table->records())
            bad(0, "stowage: the chunk's blocks hold " + std::to_string(in_blocks) + " records but its meta block says " +
                       std::to_string(table->records()));
        } catch (const CorruptionError& e) {
          bad(e.offset(), e.what());
        } catch (const IoError& e) {
          bad(0, e.what());
        }
      }
      rep.chunk_records += vf.records;
      rep.bytes += c.bytes;
      rep.files.push_back(std::move(vf));
      progress();
    }
  }

  // The live WAL segments, in order: sequences continue from the MANIFEST's.
  std::vector<const WalSegmentInfo*> live;
  for (const auto& w : rep.info.wal)
    if (w.live) live.push_back(&w);
  std::uint64_t next_seq = m.last_seq + 1;
  for (std::size_t i = 0; i < live.size(); ++i) {
    const auto& w = *live[i];
    const bool last = i + 1 == live.size();
    VerifiedFile vf{w.file, "wal", w.bytes, 0, 0, true};
    auto bad = [&](std::uint64_t offset, const std::string& what) {
      vf.ok = false;
      problem(w.file, offset, what);
    };
    try {
      const auto r = replay_wal(fs, w.file, w.number, [&](std::string_view payload, std::uint64_t offset) {
        ++vf.blocks;
        bool reported = false;
        decode_wal_batch(payload, w.file, offset, [&](const WalOp& op) {
          ++vf.records;
          if (op.seq != next_seq && !reported) {
            bad(offset, "stowage: WAL record has sequence " + std::to_string(op.seq) + " where " +
                            std::to_string(next_seq) +
                            " was expected (records before it are missing: an earlier WAL segment was truncated "
                            "or removed)");
            reported = true;
          }
          next_seq = op.seq + 1;
          if (op.key.size() > kMaxKeyBytes || op.value.size() > kMaxValueBytes)
            bad(offset, "stowage: WAL record holds a key or value over the format's limits");
        });
      });
      if (r.cut_bytes > 0) {
        if (last)
          rep.notes.push_back(w.file.string() + ": a torn tail of " + std::to_string(r.cut_bytes) + " bytes at offset " +
                              std::to_string(r.valid_bytes) +
                              " (a record being written, or unsynced bytes a crash left; an open cuts it)");
        else
          bad(r.valid_bytes, "stowage: damaged record inside a WAL segment that later segments follow; records from "
                             "here on are lost (run `stowage repair` to save the rest)");
      } else if (!last && r.zero_bytes > 0) {
        bad(r.valid_bytes, "stowage: zeros after the last record of a WAL segment that later segments follow "
                           "(records are missing)");
      }
    } catch (const CorruptionError& e) {
      bad(e.offset(), e.what());
    } catch (const IoError& e) {
      bad(0, e.what());
    }
    rep.wal_operations += vf.records;
    rep.bytes += w.bytes;
    rep.files.push_back(std::move(vf));
    progress();
  }
  for (const auto& n : rep.info.unnamed_files)
    rep.notes.push_back(n + " is not needed by the MANIFEST (left by an interrupted checkpoint or crash; the next "
                            "writable open deletes it)");
  for (const auto& n : rep.info.other_files) rep.notes.push_back(n + " is not a stowage file");
  return rep;
}

}  // namespace detail

/// What the MANIFEST of the store at dir says, and the sizes of its files,
/// without opening the store (no LOCK, no WAL replay, nothing written).
/// ValidationError when dir holds no store; CorruptionError when MANIFEST
/// is damaged; MigrationError when it is newer than this program.
inline StoreInfo inspect(const std::filesystem::path& dir, const VerifyOptions& opt = {}) {
  auto fs = opt.file_system ? opt.file_system : default_file_system();
  const std::string bytes = detail::read_manifest_bytes(*fs, dir);
  const auto m = detail::decode_manifest(bytes, dir / "MANIFEST");
  return detail::describe_store(*fs, dir, m, bytes.size(), detail::list_store(*fs, dir));
}

/// Checks every byte of the store at dir that the MANIFEST names (see the top
/// of this header) and returns what it found; never changes the store, never
/// takes its LOCK, and works while another process writes to it. Damage is
/// reported in VerifyReport::problems, not thrown; only a missing store
/// (ValidationError) or a MANIFEST from a newer stowage (MigrationError) throw.
/// Compression: the policy of a store written with a user compression
/// policy (the built-in ones are always understood).
template <CompressionPolicy Compression = Lz4Compression>
VerifyReport verify(const std::filesystem::path& dir, const VerifyOptions& opt = {}) {
  auto fs = opt.file_system ? opt.file_system : default_file_system();
  std::string before = detail::read_manifest_bytes(*fs, dir);
  VerifyReport rep;
  for (unsigned pass = 1;; ++pass) {
    rep = detail::verify_pass<Compression>(*fs, dir, before, opt);
    rep.passes = pass;
    std::string after;
    try {
      after = detail::read_manifest_bytes(*fs, dir);
    } catch (const Error&) {
      after.clear();  // MANIFEST vanished meanwhile: report what the pass found
    }
    if (after == before || after.empty()) break;
    if (pass >= std::max(1u, opt.max_passes)) {
      rep.notes.push_back("the store changed during each of " + std::to_string(pass) +
                          " passes (a busy writer); this report is of the last one, and may name files the writer "
                          "replaced meanwhile");
      break;
    }
    before = std::move(after);
  }
  return rep;
}

}  // namespace stowage
