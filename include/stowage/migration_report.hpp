// SPDX-License-Identifier: BSL-1.0
// migration_report.hpp: what a migration did (MigrationReport) and what one
// would do (MigrationStatus): the results migration.hpp's functions and
// Storage's migration members return. Apart from migration.hpp so that a
// file built with STOWAGE_SEPARATE_COMPILATION can use Storage without the
// migration machinery.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace stowage {

/// What a migration did (Storage::last_migration(), Storage::migrate_to()).
struct MigrationReport {
  unsigned from_format = 0;   ///< on-disk format major version before
  unsigned to_format = 0;     ///< ... and after
  unsigned from_version = 0;  ///< value schema version before
  unsigned to_version = 0;    ///< ... and after
  /// The steps run, in order: "format 1->2", "1->2", "2->3".
  std::vector<std::string> steps;
  std::uint64_t records = 0;  ///< records converted
  std::uint64_t dropped = 0;  ///< records a step dropped
  /// The backup taken first (a complete store; empty when nothing ran, or
  /// for a Database collection's migration, which keeps backup_collection).
  std::filesystem::path backup;
  /// A Database collection's migration: the collection that keeps the old
  /// records (`<name>.backup-<UTC time>-v<from>`), which opens with the old
  /// types; drop it to reclaim the space. Empty otherwise.
  std::string backup_collection;
  double seconds = 0;  ///< wall time, backup included
};

/// A store's versions and what opening it would run (migration_status()).
struct MigrationStatus {
  unsigned format_version = 0;          ///< on-disk format major version
  unsigned format_minor = 0;            ///< on-disk format minor version
  unsigned current_format_version = 0;  ///< the format this program writes
  unsigned schema_version = 0;          ///< value schema version on disk
  std::string value_type;               ///< the stored value type's description (may be empty)
  std::string compression;              ///< the Compression::name the store's blocks are written with
  std::string serializer;               ///< the Serializer::id() of its default collection ("" when untyped)
  std::optional<unsigned> target_version;  ///< the version asked for, if any
  /// The steps an open (or migrate_to) would run, in order: "format 1->2",
  /// "compression none -> lz4" and "serializer binary-1 -> msgpack-1" (from
  /// Storage::migration_status, which knows the policies), "1->2".
  std::vector<std::string> pending;
  /// False when a target version was given and no registered steps reach
  /// it, or (Storage::migration_status) when the Compression or Serializer
  /// differs and the Migrator does not allow the change: opening fails then.
  bool path_found = true;

  /// Nothing to run and nothing missing.
  bool up_to_date() const { return pending.empty() && path_found; }
};

}  // namespace stowage
