// SPDX-License-Identifier: BSL-1.0
// error.hpp: the exceptions stowage throws. Every failure is a stowage::Error;
// each message names the path involved and what the user can do about it.
// Missing keys are never errors: lookups return std::optional.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace stowage {

/// Base of every exception stowage throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A system call failed (open, read, write, fsync, rename, ...). After a failed
/// fsync the store refuses further writes; reopening recovers from the WAL.
class IoError : public Error {
 public:
  using Error::Error;
};

/// Bytes on disk are not what stowage wrote: bad magic, checksum mismatch,
/// impossible lengths, keys out of order. Names the file and the offset.
class CorruptionError : public Error {
 public:
  using Error::Error;
  /// The message ends with what the user can do: for the MANIFEST, restore
  /// a backup (it names every other file: no open or repair can do without
  /// it); for any other file, restore a backup or copy what still verifies
  /// into a new store with `stowage repair` (removing a damaged file does not
  /// help: a chunk the MANIFEST names must be there).
  CorruptionError(const std::filesystem::path& file, std::uint64_t offset, const std::string& what)
      : Error("stowage: corruption in " + file.string() + " at offset " + std::to_string(offset) + ": " + what +
              (file.filename() == "MANIFEST"
                   ? " (restore the store from a backup: the MANIFEST names every other file, and neither an "
                     "open nor `stowage repair` can do without it)"
                   : " (restore the store from a backup, or copy what still verifies into a new store with "
                     "`stowage repair DIR NEW_DIR`)")),
        file_(file),
        offset_(offset) {}
  /// The damaged file (empty when not known).
  const std::filesystem::path& file() const noexcept { return file_; }
  /// Byte offset of the damage inside file().
  std::uint64_t offset() const noexcept { return offset_; }

 private:
  std::filesystem::path file_;
  std::uint64_t offset_ = 0;
};

/// Another process (or another Storage in this process) holds the store's LOCK.
class LockError : public Error {
 public:
  using Error::Error;
};

/// The store was written by another format, schema or set of policies, and no
/// migration path leads from there to here.
class MigrationError : public Error {
 public:
  using Error::Error;
};

/// Bad input at the API: a key or value over the format's limits, bad options,
/// a write to a read-only store.
class ValidationError : public Error {
 public:
  using Error::Error;
};

/// A write that would give two records the same key of a unique index
/// (Collection::index with stowage::unique), or a unique index that cannot
/// be built because two records share a key; nothing was written.
class ConstraintError : public ValidationError {
 public:
  using ValidationError::ValidationError;
};

}  // namespace stowage
