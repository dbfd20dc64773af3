// SPDX-License-Identifier: BSL-1.0
// backup_report.hpp: what a backup or a restore did (BackupReport) and what
// backups() finds beside a store (BackupInfo): the results backup.hpp's
// functions and the backup_to() members of Storage and Database return.
// Apart from backup.hpp so that a file built with
// STOWAGE_SEPARATE_COMPILATION can name them without the file machinery.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace stowage {

/// What backup_to() or restore_from() did.
struct BackupReport {
  /// The directory written: the backup, or the restored store.
  std::filesystem::path path;
  /// Sequence number of the last commit the result holds: every commit up
  /// to it and none after (0 for a restore of a backup that does not say).
  std::uint64_t sequence = 0;
  /// Files in the result (chunk files, WAL segments, MANIFEST).
  std::uint64_t files = 0;
  /// Chunk files that became new names of existing files (hard links, to
  /// the store's or to an earlier backup's): they take no new space.
  std::uint64_t files_linked = 0;
  /// Bytes the result holds (linked files included).
  std::uint64_t bytes = 0;
  /// Bytes written: the files copied (WAL segments, MANIFEST, and the chunk
  /// files that could not be linked).
  std::uint64_t bytes_written = 0;
  /// Wall time.
  double seconds = 0;
};

/// A backup of a store, as backups() lists it.
struct BackupInfo {
  /// Its directory; restore_from(path, dir) makes a store of it, and
  /// remove_backup(path) deletes it.
  std::filesystem::path path;
  /// "online" (backup_to()) or "migration" (the backup a migration takes first).
  std::string kind;
  /// When it was taken, UTC: "20261206T173000Z".
  std::string created;
  /// The last commit it holds (0 when it does not say: migration backups).
  std::uint64_t sequence = 0;
  /// Bytes of its files (files it shares with the store or other backups
  /// through hard links counted in full).
  std::uint64_t bytes = 0;
};

}  // namespace stowage
