// SPDX-License-Identifier: BSL-1.0
// backup.hpp: backups of a store as directories that open on their own, and
// what lists, removes and restores them.
//
// A backup directory holds what a store does: the chunk files its MANIFEST
// names (hard links where the file system allows: chunk files never change),
// the WAL segments from the MANIFEST's first needed one (copies: an open
// writes into its last segment), the MANIFEST, and a small text file,
// BACKUP, that says whose backup it is (see docs/format.md, "Backups"):
//
//   stowage-backup 1
//   kind online
//   store /abs/path/of/the/store
//   sequence 12345
//   created 20261206T173000Z
//
// A backup or a restore is built in `<target>.partial` and renamed to its
// name once every file in it is durable, so a crash never leaves a
// directory under the target's name that is not whole; the next attempt
// removes the partial one. The engine's backup_to() (engine.hpp) picks what
// goes in while writers run; this file writes it.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "backup_report.hpp"
#include "error.hpp"
#include "file.hpp"
#include "file_lock.hpp"
#include "manifest.hpp"
#include "store_files.hpp"
#include "wal.hpp"

namespace stowage {
namespace detail {

/// The name of a backup's descriptor file.
inline constexpr std::string_view kBackupFile = "BACKUP";
/// Most bytes a descriptor may hold.
inline constexpr std::uint64_t kBackupFileMaxBytes = 64 * 1024;

/// "20261123T180301Z": now, in UTC, for backup names.
inline std::string utc_stamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

/// The absolute, normal path of a store's directory: how a descriptor names it.
inline std::filesystem::path store_identity(const std::filesystem::path& dir) {
  std::error_code ec;
  auto p = std::filesystem::weakly_canonical(std::filesystem::absolute(dir), ec);
  if (ec) p = std::filesystem::absolute(dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "dir/" names dir
  return p;
}

/// What a backup's BACKUP file says.
struct BackupDescriptor {
  std::string kind;     ///< "online" or "migration"
  std::string store;    ///< store_identity() of the store it was taken of
  std::uint64_t sequence = 0;
  std::string created;  ///< utc_stamp() when it was taken
};

inline std::string encode_backup_descriptor(const BackupDescriptor& d) {
  return "stowage-backup 1\nkind " + d.kind + "\nstore " + d.store + "\nsequence " + std::to_string(d.sequence) +
         "\ncreated " + d.created + "\n";
}

/// Parses a descriptor's bytes (read from path); CorruptionError when they
/// are not one. Unknown lines are skipped (a later version may add some).
inline BackupDescriptor decode_backup_descriptor(std::string_view bytes, const std::filesystem::path& path) {
  BackupDescriptor d;
  bool first = true, has_kind = false, has_store = false;
  std::uint64_t at = 0;
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) throw CorruptionError(path, at, "backup descriptor: last line does not end");
    const std::string_view line = bytes.substr(0, nl);
    const auto sp = line.find(' ');
    const std::string_view key = line.substr(0, sp);
    const std::string_view value = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    if (first) {
      if (line != "stowage-backup 1") throw CorruptionError(path, 0, "not a stowage backup descriptor (version 1)");
      first = false;
    } else if (key == "kind") {
      if (value != "online" && value != "migration")
        throw CorruptionError(path, at, "backup descriptor: unknown kind");
      d.kind = std::string(value);
      has_kind = true;
    } else if (key == "store") {
      if (value.empty()) throw CorruptionError(path, at, "backup descriptor: empty store path");
      d.store = std::string(value);
      has_store = true;
    } else if (key == "sequence") {
      if (value.empty() || value.size() > 19) throw CorruptionError(path, at, "backup descriptor: bad sequence");
      std::uint64_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') throw CorruptionError(path, at, "backup descriptor: bad sequence");
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
      }
      d.sequence = n;
    } else if (key == "created") {
      if (value.size() != 16 || value[8] != 'T' || value[15] != 'Z')
        throw CorruptionError(path, at, "backup descriptor: bad time");
      d.created = std::string(value);
    }
    at += nl + 1;
    bytes.remove_prefix(nl + 1);
  }
  if (first || !has_kind || !has_store) throw CorruptionError(path, at, "backup descriptor: kind or store missing");
  return d;
}

/// Writes d as dir/BACKUP, durably (the caller syncs dir).
inline void write_backup_descriptor(FileSystem& fs, const std::filesystem::path& dir, const BackupDescriptor& d) {
  auto f = fs.create(dir / kBackupFile);
  f->append(encode_backup_descriptor(d));
  f->sync();
  f->close();
}

/// dir's descriptor; nullopt when dir has none. CorruptionError when it is damaged.
inline std::optional<BackupDescriptor> read_backup_descriptor(FileSystem& fs, const std::filesystem::path& dir) {
  const auto path = dir / kBackupFile;
  if (!fs.exists(path)) return std::nullopt;
  return decode_backup_descriptor(read_file(fs, path, kBackupFileMaxBytes), path);
}

/// Whether a and b are one file (hard links of each other).
inline bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

/// Whether the files a and b (both of `size` bytes) end in the same bytes:
/// how a chunk file of an earlier backup is recognised as the store's
/// (same name, same size, same footer, which holds the checksums of its
/// index and filter).
inline bool same_tail(FileSystem& fs, const std::filesystem::path& a, const std::filesystem::path& b,
                      std::uint64_t size) {
  try {
    auto fa = fs.open_read(a), fb = fs.open_read(b);
    if (fa->size() != size || fb->size() != size) return false;
    const std::uint64_t n = std::min<std::uint64_t>(size, 4096);
    std::string ba(static_cast<std::size_t>(n), '\0'), bb(static_cast<std::size_t>(n), '\0');
    return fa->read(size - n, ba.size(), ba.data()) == n && fb->read(size - n, bb.size(), bb.data()) == n && ba == bb;
  } catch (const Error&) {
    return false;
  }
}

/// Whether name is one a store or a backup directory holds.
inline bool store_file_name(std::string_view name) {
  return parse_chunk_file_name(name) || parse_wal_file_name(name) || name == "MANIFEST" || name == "MANIFEST.tmp" ||
         name == kBackupFile || name == "LOCK";
}

/// Builds a backup (or a restored store) in `<target>.partial`, then renames
/// it to target (see the top of backup.hpp). The destructor removes what an
/// unfinished one wrote.
class BackupStage {
 public:
  /// source: the store (or backup) the files come from. Throws
  /// ValidationError when target is source or inside it, or exists and is
  /// not an empty directory, or when `<target>.partial` holds anything but
  /// store files (a partial backup of an earlier crash is removed).
  /// share: link chunk files that an earlier backup of the same store in
  /// target's parent holds (same name, size and footer) from there, so that
  /// backups on another file system than the store share them.
  BackupStage(FileSystem& fs, const std::filesystem::path& source, const std::filesystem::path& target, bool share)
      : fs_(&fs), source_(store_identity(source)), target_(store_identity(target)) {
    const auto rel = target_.lexically_relative(source_);
    if (target_ == source_ || (!rel.empty() && *rel.begin() != ".."))
      throw ValidationError("stowage: a backup cannot go to " + target.string() + ", which is inside the store at " +
                            source.string());
    if (fs.exists(target_) && (!fs.is_directory(target_) || !fs.list(target_).empty()))
      throw ValidationError("stowage: " + target.string() +
                            " exists and is not an empty directory; backups and restores go to a new directory");
    partial_ = target_.parent_path() / (target_.filename().string() + ".partial");
    if (fs.exists(partial_)) remove_partial(true);
    fs.create_dirs(partial_);
    if (share) find_siblings();
  }
  BackupStage(const BackupStage&) = delete;
  BackupStage& operator=(const BackupStage&) = delete;
  ~BackupStage() {
    if (!done_) {
      try {
        remove_partial(false);
      } catch (...) {  // left for the next attempt
      }
    }
  }

  /// Adds the immutable file `from` (of `size` bytes) as name: a hard link
  /// to an earlier backup's copy or to from, or a copy.
  void add_immutable(const std::filesystem::path& from, const std::string& name, std::uint64_t size) {
    const auto to = partial_ / name;
    std::filesystem::path linked_to = from;
    for (const auto& s : siblings_) {
      const auto there = s / name;
      if (fs_->exists(there) && same_tail(*fs_, there, from, size)) {
        try {
          fs_->link(there, to);
          linked_to = there;
          break;
        } catch (const IoError&) {
        }
      }
    }
    if (linked_to == from) fs_->link(from, to);
    ++report_.files;
    report_.bytes += size;
    if (same_file(linked_to, to)) {
      ++report_.files_linked;
    } else {
      report_.bytes_written += size;
    }
  }

  /// Adds the first `bytes` bytes of `in` as name (a durable copy).
  void add_copy(const RandomAccessFile& in, const std::string& name, std::uint64_t bytes) {
    auto out = fs_->create(partial_ / name);
    std::string buf;
    for (std::uint64_t off = 0; off < bytes;) {
      buf.resize(static_cast<std::size_t>(std::min<std::uint64_t>(bytes - off, std::uint64_t{1} << 20)));
      const std::size_t n = in.read(off, buf.size(), buf.data());
      if (n == 0)
        throw IoError("stowage: " + in.path().string() + " ended at " + std::to_string(off) + " bytes while " +
                      std::to_string(bytes) + " were being copied to a backup");
      out->append(std::string_view(buf.data(), n));
      off += n;
    }
    out->sync();
    out->close();
    ++report_.files;
    report_.bytes += bytes;
    report_.bytes_written += bytes;
  }

  /// Writes m as the MANIFEST, or copies the file manifest_from when m is
  /// null; then the descriptor (when given); makes it all durable and
  /// renames the directory to target. Returns the report (seconds unset).
  BackupReport finish(const Manifest* m, const std::filesystem::path& manifest_from, const BackupDescriptor* d) {
    if (m) {
      const std::uint64_t n = write_manifest(*fs_, partial_, *m);
      ++report_.files;
      report_.bytes += n;
      report_.bytes_written += n;
    } else {
      auto in = fs_->open_read(manifest_from);
      add_copy(*in, "MANIFEST", in->size());  // counts it
    }
    if (d) write_backup_descriptor(*fs_, partial_, *d);
    fs_->sync_dir(partial_);
    fs_->rename(partial_, target_);
    fs_->sync_dir(target_.parent_path());
    done_ = true;
    report_.path = target_;
    return report_;
  }

 private:
  void remove_partial(bool check) {
    auto names = fs_->list(partial_);
    if (check)
      for (const auto& n : names)
        if (!store_file_name(n))
          throw ValidationError("stowage: " + partial_.string() + " (left by an interrupted backup or restore) holds " +
                                n + ", which no backup writes; remove it before backing up to " + target_.string());
    for (const auto& n : names) fs_->remove(partial_ / n);
    std::error_code ec;
    std::filesystem::remove(partial_, ec);
  }

  // Earlier backups of the same store in target's parent, newest first.
  void find_siblings() {
    const auto parent = target_.parent_path();
    std::vector<std::pair<std::string, std::filesystem::path>> found;
    try {
      for (const auto& n : fs_->list(parent)) {
        const auto p = parent / n;
        if (p == partial_ || p == target_ || !fs_->is_directory(p)) continue;
        try {
          auto d = read_backup_descriptor(*fs_, p);
          if (d && d->store == source_.string()) found.emplace_back(d->created, p);
        } catch (const Error&) {  // not a backup of ours: nothing to share
        }
      }
    } catch (const Error&) {
      return;
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (auto& f : found) siblings_.push_back(std::move(f.second));
  }

  FileSystem* fs_;
  std::filesystem::path source_, target_, partial_;
  std::vector<std::filesystem::path> siblings_;
  BackupReport report_;
  bool done_ = false;
};

/// The migration backups of a store named store_name that predate
/// descriptors: `<store_name>.backup-<UTC time>-...` holding a MANIFEST.
inline std::optional<std::string> legacy_backup_time(FileSystem& fs, const std::filesystem::path& dir,
                                                     const std::string& store_name) {
  const std::string name = dir.filename().string();
  const std::string prefix = store_name + ".backup-";
  if (name.size() < prefix.size() + 16 || name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  if (!fs.exists(dir / "MANIFEST")) return std::nullopt;
  return name.substr(prefix.size(), 16);
}

}  // namespace detail

/// The backups of the store in `store` found in `root` (default: the
/// store's parent directory, where migrations put theirs): online backups
/// (Storage::backup_to, Database::backup_to) and migration backups, oldest
/// first (by time taken, to the second, then by sequence). A directory whose BACKUP file is damaged or names another store
/// is not listed. Takes no lock and writes nothing.
inline std::vector<BackupInfo> backups(const std::filesystem::path& store,
                                       const std::optional<std::filesystem::path>& root = std::nullopt,
                                       std::shared_ptr<FileSystem> file_system = nullptr) {
  auto fs = file_system ? file_system : default_file_system();
  const auto id = detail::store_identity(store);
  const auto where = root ? *root : id.parent_path();
  std::vector<BackupInfo> out;
  for (const auto& n : fs->list(where)) {
    const auto p = where / n;
    if (p == id || !fs->is_directory(p)) continue;
    BackupInfo info;
    try {
      if (auto d = detail::read_backup_descriptor(*fs, p)) {
        if (d->store != id.string()) continue;
        info.kind = d->kind;
        info.created = d->created;
        info.sequence = d->sequence;
      } else if (auto t = detail::legacy_backup_time(*fs, p, id.filename().string())) {
        info.kind = "migration";
        info.created = *t;
      } else {
        continue;
      }
      for (const auto& f : fs->list(p)) {
        if (!detail::store_file_name(f)) continue;
        info.bytes += fs->open_read(p / f)->size();
      }
    } catch (const Error&) {
      continue;
    }
    info.path = p;
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](const BackupInfo& a, const BackupInfo& b) {
    if (a.created != b.created) return a.created < b.created;  // to the second
    return a.sequence != b.sequence ? a.sequence < b.sequence : a.path < b.path;
  });
  return out;
}

/// Deletes the backup in dir (one backups() lists). Throws ValidationError
/// when dir is not a backup (no BACKUP file, and not named as a migration
/// backup is), CorruptionError when its BACKUP file is damaged, LockError
/// when a process has it open as a store.
inline void remove_backup(const std::filesystem::path& dir, std::shared_ptr<FileSystem> file_system = nullptr) {
  auto fs = file_system ? file_system : default_file_system();
  if (!fs->is_directory(dir)) throw ValidationError("stowage: no backup at " + dir.string() + " (not a directory)");
  const auto name = detail::store_identity(dir).filename().string();
  const auto cut = name.find(".backup-");
  if (!detail::read_backup_descriptor(*fs, dir) &&
      (cut == std::string::npos || !detail::legacy_backup_time(*fs, dir, name.substr(0, cut))))
    throw ValidationError("stowage: " + dir.string() + " is not a backup (it has no BACKUP file); nothing removed");
  for (const auto& n : fs->list(dir))
    if (fs->is_directory(dir / n))
      throw ValidationError("stowage: " + dir.string() + " holds a directory, " + n +
                            ", which no backup has; nothing removed");
  {
    detail::FileLock lock(dir, detail::FileLock::Mode::exclusive, std::chrono::milliseconds(0));
    for (const auto& n : fs->list(dir))
      if (n != "LOCK") fs->remove(dir / n);
    fs->remove(dir / "LOCK");
  }
  std::error_code ec;
  std::filesystem::remove(dir, ec);
  if (ec) throw IoError("stowage: removing the directory " + dir.string() + " failed: " + ec.message());
}

/// Makes a store in dir from the backup in `backup` (a directory
/// backup_to() or a migration wrote): the chunk files are hard-linked where
/// possible (they never change), the WAL segments and MANIFEST copied, so
/// the new store and the backup stay independent. Refuses (ValidationError)
/// a dir that exists and is not empty, and a backup that is not a store;
/// CorruptionError when the backup's MANIFEST is damaged or a file it names
/// is missing; LockError when a process has the backup open for writing.
/// Built in `<dir>.partial` and renamed: a crash leaves no half store at dir.
inline BackupReport restore_from(const std::filesystem::path& backup, const std::filesystem::path& dir,
                                 std::shared_ptr<FileSystem> file_system = nullptr) {
  const auto started = std::chrono::steady_clock::now();
  auto fs = file_system ? file_system : default_file_system();
  if (!detail::manifest_exists(*fs, backup))
    throw ValidationError("stowage: no backup to restore at " + backup.string() + " (no MANIFEST)");
  detail::FileLock lock(backup, detail::FileLock::Mode::shared, std::chrono::milliseconds(0));
  const detail::Manifest m = detail::read_manifest(*fs, backup);
  std::uint64_t sequence = 0;
  try {
    if (auto d = detail::read_backup_descriptor(*fs, backup)) sequence = d->sequence;
  } catch (const CorruptionError&) {  // the store itself is whole: restore it, without the sequence
  }
  detail::BackupStage stage(*fs, backup, dir, false);
  for (const auto& ks : m.keyspaces)
    for (const auto& c : ks.chunks) {
      const auto name = detail::chunk_file_name(c.file);
      if (!fs->exists(backup / name))
        throw CorruptionError(backup / name, 0, "missing: the backup's MANIFEST names it");
      stage.add_immutable(backup / name, name, c.bytes);
    }
  std::vector<std::uint64_t> wal;
  for (const auto& n : fs->list(backup))
    if (auto w = detail::parse_wal_file_name(n); w && *w >= m.wal_start) wal.push_back(*w);
  std::sort(wal.begin(), wal.end());
  for (auto w : wal) {
    auto in = fs->open_read(backup / detail::wal_file_name(w));
    stage.add_copy(*in, detail::wal_file_name(w), in->size());
  }
  BackupReport r = stage.finish(nullptr, backup / "MANIFEST", nullptr);
  r.sequence = sequence;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return r;
}

}  // namespace stowage
