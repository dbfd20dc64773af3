// SPDX-License-Identifier: BSL-1.0
// migration.hpp: versioned upgrades (and downgrades) of a store.
//
// Two things change over a store's life, and both have a version on disk:
//  - the user's value schema: Value::version (value_version<Value>), recorded
//    per keyspace in the MANIFEST. A Migrator holds the registered steps
//    between versions; Storage finds the shortest path from the stored
//    version to the one it needs and runs it once, when it opens the store;
//  - stowage's own on-disk format (the MANIFEST's major version), upgraded by
//    the library's own steps (detail::format_steps) through the same path
//    search, at the same time.
//
// A migration never changes the live files: it writes new chunk files and
// makes them live with one atomic MANIFEST swap at the end. A step that
// throws, or a crash before the swap, leaves the store exactly as it was
// (the next open removes the unnamed files). Before anything is written, a
// backup of the store is taken beside it (hard links of the immutable chunk
// files, copies of MANIFEST and the WAL; never LOCK); it is a complete store
// that opens on its own.
#pragma once

#include <ctime>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "backup.hpp"
#include "error.hpp"
#include "file.hpp"
#include "manifest.hpp"
#include "migration_report.hpp"
#include "serializer.hpp"

namespace stowage {

/// One registered migration step: turns a value stored at schema version
/// `from` into one at version `to`.
struct MigrationStep {
  unsigned from = 0;
  unsigned to = 0;
  /// Serializer::id() of a typed step (Migrator::add<Old, New>); empty for a
  /// step on bytes.
  std::string serializer;
  /// describe_value<Serializer, Old>() and describe_value<Serializer, New>()
  /// of a typed step (the descriptions a store with that Serializer records);
  /// empty for a step on bytes.
  std::string from_type, to_type;
  /// Old encoded value → new encoded value, or std::nullopt to drop the record.
  std::function<std::optional<std::string>(std::string_view)> convert;

  /// "1->2".
  std::string name() const { return std::to_string(from) + "->" + std::to_string(to); }
};

/// A registered change of a store's Serializer (Migrator::change_serializer).
struct SerializerChange {
  std::string from, to;  ///< Serializer::id() of the store's serializer and of the new one
  unsigned version = 0;  ///< value_version<Value>: the schema version it runs at
  /// describe_value<From, Value>() and describe_value<To, Value>().
  std::string from_type, to_type;
  /// A value encoded by From -> the same value encoded by To.
  std::function<std::string(std::string_view)> convert;

  /// "binary-1 -> msgpack-1".
  std::string name() const { return from + " -> " + to; }
};

namespace detail {

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

/// The path with the fewest steps from version `from` to `to` over edges (any
/// type with `from` and `to` members); among equally short paths, the one
/// whose steps were registered first. Empty when from == to; nullopt when
/// there is none.
template <class Edge>
std::optional<std::vector<const Edge*>> shortest_path(const std::vector<Edge>& edges, unsigned from, unsigned to) {
  if (from == to) return std::vector<const Edge*>{};
  std::map<unsigned, const Edge*> reached_by{{from, nullptr}};
  std::deque<unsigned> queue{from};
  while (!queue.empty()) {
    const unsigned v = queue.front();
    queue.pop_front();
    for (const auto& e : edges) {
      if (e.from != v || reached_by.count(e.to) != 0) continue;
      reached_by[e.to] = &e;
      if (e.to == to) {
        std::vector<const Edge*> path;
        for (unsigned at = to; at != from; at = reached_by[at]->from) path.insert(path.begin(), reached_by[at]);
        return path;
      }
      queue.push_back(e.to);
    }
  }
  return std::nullopt;
}

}  // namespace detail

/// The registry of a value type's migration steps. Register every step a
/// store might need, old and new; Storage picks the shortest path:
///
///     stowage::Migrator migrations;
///     migrations.add<PersonV1, PersonV2>([](PersonV1 p) { return PersonV2{p.name, {}}; });
///     migrations.add<PersonV2, Person>([](PersonV2 p) { ... });
///     stowage::Storage<std::string, Person> db(dir, {}, migrations);
///
/// A typed step reads the old value with the store's Serializer and writes
/// the new one; the versions are Old::version and New::version. A step on
/// bytes, add(from, to, fn), gets and returns encoded values. A step may
/// return std::optional and std::nullopt to drop a record.
class Migrator {
 public:
  /// Registers a step on encoded values: `fn(std::string_view old)` returns
  /// the new encoding as something convertible to std::string, or a
  /// std::optional of it (std::nullopt drops the record).
  template <class Fn>
  Migrator& add(unsigned from, unsigned to, Fn fn) {
    static_assert(std::is_invocable_v<Fn&, std::string_view>,
                  "stowage: Migrator::add(from, to, fn) needs fn(std::string_view) returning std::string or "
                  "std::optional<std::string>");
    MigrationStep s;
    s.from = from;
    s.to = to;
    s.convert = [fn = std::move(fn)](std::string_view old) mutable -> std::optional<std::string> {
      using R = std::invoke_result_t<Fn&, std::string_view>;
      if constexpr (detail::is_optional<R>::value) {
        auto r = fn(old);
        if (!r) return std::nullopt;
        return std::string(std::move(*r));
      } else {
        return std::string(fn(old));
      }
    };
    return add_step(std::move(s));
  }

  /// Registers a typed step from Old (at Old::version) to New (at
  /// New::version): `fn(Old)` returns a New, or a std::optional<New>
  /// (std::nullopt drops the record). Serializer must be the store's.
  template <class Old, class New, class Serializer = BinarySerializer, class Fn>
  Migrator& add(Fn fn) {
    static_assert(value_version<Old> != value_version<New>,
                  "stowage: Migrator::add<Old, New> needs Old and New to declare different "
                  "`static constexpr unsigned version` values");
    static_assert(std::is_invocable_v<Fn&, Old&&>, "stowage: Migrator::add<Old, New>(fn) needs fn callable with an Old");
    using R = std::invoke_result_t<Fn&, Old&&>;
    if constexpr (detail::is_optional<R>::value)
      static_assert(std::is_convertible_v<typename R::value_type, New>,
                    "stowage: Migrator::add<Old, New>(fn): fn must return New or std::optional<New>");
    else
      static_assert(std::is_convertible_v<R, New>,
                    "stowage: Migrator::add<Old, New>(fn): fn must return New or std::optional<New>");
    MigrationStep s;
    s.from = value_version<Old>;
    s.to = value_version<New>;
    s.serializer = std::string(Serializer::id());
    s.from_type = describe_value<Serializer, Old>();
    s.to_type = describe_value<Serializer, New>();
    s.convert = [fn = std::move(fn)](std::string_view old) mutable -> std::optional<std::string> {
      Old value = Serializer::template deserialize<Old>(old);
      std::string out;
      if constexpr (detail::is_optional<R>::value) {
        auto r = fn(std::move(value));
        if (!r) return std::nullopt;
        const New converted = std::move(*r);
        Serializer::serialize(converted, out);
      } else {
        const New converted = fn(std::move(value));
        Serializer::serialize(converted, out);
      }
      return out;
    };
    return add_step(std::move(s));
  }

  /// Lets an open change the store's Serializer from From to To (the
  /// Storage's): every record is decoded with From as a Value and encoded
  /// again with To, with the usual backup first, before any schema step
  /// runs. So Value is the values' type at the store's schema version (the
  /// open checks that its version and description match what the MANIFEST
  /// records), and the steps registered for later versions use To:
  ///
  ///     migrations.change_serializer<Person, stowage::BinarySerializer, stowage::MsgpackSerializer>();
  ///     stowage::Storage<std::string, Person, stowage::MsgpackSerializer> db(dir, {}, migrations);
  template <class Value, class From, class To = BinarySerializer>
  Migrator& change_serializer() {
    static_assert(SerializerFor<From, Value> && SerializerFor<To, Value>,
                  "stowage: Migrator::change_serializer<Value, From, To> needs From and To to be serializers of "
                  "Value (see SerializerFor)");
    SerializerChange c;
    c.from = std::string(From::id());
    c.to = std::string(To::id());
    if (c.from == c.to)
      throw ValidationError("stowage: Migrator::change_serializer from '" + c.from + "' to itself");
    for (const auto& e : serializer_changes_)
      if (e.from == c.from && e.to == c.to)
        throw ValidationError("stowage: the serializer change '" + c.from + "' -> '" + c.to + "' is registered twice");
    c.version = value_version<Value>;
    c.from_type = describe_value<From, Value>();
    c.to_type = describe_value<To, Value>();
    c.convert = [](std::string_view old) {
      const Value value = From::template deserialize<Value>(old);
      std::string out;
      To::serialize(value, out);
      return out;
    };
    serializer_changes_.push_back(std::move(c));
    return *this;
  }
  /// The registered change from serializer id `from` to `to`, or nullptr.
  const SerializerChange* serializer_change(std::string_view from, std::string_view to) const {
    for (const auto& c : serializer_changes_)
      if (c.from == from && c.to == to) return &c;
    return nullptr;
  }

  /// Lets an open change the store's Compression to the Storage's: every
  /// record is rewritten into new chunk files compressed by it, with the
  /// usual backup first. The Storage's policy must read the old blocks:
  /// every policy reads NoCompression's and Lz4Compression's, and its own
  /// id's (a store written with another user policy is converted by a
  /// program whose policy decompresses both ids).
  Migrator& change_compression() {
    change_compression_ = true;
    return *this;
  }
  /// Whether change_compression() was called.
  bool changes_compression() const { return change_compression_; }

  /// Puts backups in this directory instead of beside the store.
  Migrator& backup_to(std::filesystem::path dir) {
    backup_root_ = std::move(dir);
    return *this;
  }
  /// Where backups go (std::nullopt: the store's parent directory).
  const std::optional<std::filesystem::path>& backup_root() const { return backup_root_; }

  /// The registered steps, in registration order.
  const std::vector<MigrationStep>& steps() const { return steps_; }
  bool empty() const { return steps_.empty(); }

  /// The shortest chain of steps from `from` to `to` (empty when equal), or
  /// std::nullopt when the registered steps do not connect them.
  std::optional<std::vector<const MigrationStep*>> path(unsigned from, unsigned to) const {
    return detail::shortest_path(steps_, from, to);
  }

  /// "1->2, 2->3" (or "none"), for messages.
  std::string describe() const {
    std::string out;
    for (const auto& s : steps_) out += (out.empty() ? "" : ", ") + s.name();
    return out.empty() ? "none" : out;
  }

 private:
  Migrator& add_step(MigrationStep s) {
    if (s.from == s.to)
      throw ValidationError("stowage: a migration step from version " + std::to_string(s.from) + " to itself");
    for (const auto& e : steps_)
      if (e.from == s.from && e.to == s.to)
        throw ValidationError("stowage: the migration step " + s.name() + " is registered twice");
    steps_.push_back(std::move(s));
    return *this;
  }

  std::vector<MigrationStep> steps_;
  std::vector<SerializerChange> serializer_changes_;
  bool change_compression_ = false;
  std::optional<std::filesystem::path> backup_root_;
};

namespace detail {

/// One step of stowage's own on-disk format, applied to a decoded manifest
/// (chunk files of every format are read as they are; the WAL format has not changed since format 1).
struct FormatStep {
  unsigned from = 0;
  unsigned to = 0;
  const char* what = "";
  void (*apply)(Manifest&) = nullptr;
  std::string name() const { return "format " + std::to_string(from) + "->" + std::to_string(to); }
};

/// The schema version in a value type description ("obj@3{...}" → 3).
inline std::uint32_t schema_from_description(std::string_view d) {
  if (d.substr(0, 4) != "obj@") return 0;
  std::uint64_t v = 0;
  for (std::size_t i = 4; i < d.size() && d[i] >= '0' && d[i] <= '9' && v <= 0xffffffffu; ++i)
    v = v * 10 + static_cast<unsigned>(d[i] - '0');
  return v > 0xffffffffu ? 0 : static_cast<std::uint32_t>(v);
}

/// Every format step this program knows.
inline const std::vector<FormatStep>& format_steps() {
  static const std::vector<FormatStep> steps = {
      {1, 2, "key order, value type and schema version kept per keyspace",
       [](Manifest& m) {
         // Format 1 wrote 0 as the schema version; the version is the one in
         // the value type's description.
         for (auto& ks : m.keyspaces)
           if (ks.schema_version == 0) ks.schema_version = schema_from_description(ks.value_type);
         m.format_major = 2;
         m.format_minor = 0;
       }},
      {2, 3, "chunks kept in levels, with tombstones and a live record count (the chunks stay as they are, at the last level)",
       [](Manifest& m) {
         // Decoding already put format 1 and 2 chunks at the last level and
         // counted their records as live: only the version changes.
         m.format_major = 3;
         m.format_minor = 0;
       }},
      {3, 4, "chunk records may be uncounted, resolved when size() asks or when compaction meets an older record "
             "(the chunks stay as they are: every record in them is counted)",
       [](Manifest& m) {
         m.format_major = 4;
         m.format_minor = 0;
       }},
      {4, 5, "a layout and a collection table (the store stays bare: its keys and chunks stay as they are)",
       [](Manifest& m) {
         m.format_major = 5;
         m.format_minor = 0;
       }},
  };
  return steps;
}

/// The format steps from m's format to this program's.
inline std::vector<const FormatStep*> format_path(const Manifest& m, const std::filesystem::path& dir) {
  auto path = shortest_path(format_steps(), m.format_major, kFormatMajor);
  if (!path)
    throw MigrationError("stowage: the store at " + dir.string() + " has on-disk format " +
                         std::to_string(m.format_major) + ", which this program cannot upgrade to format " +
                         std::to_string(kFormatMajor));
  return *path;
}

/// Takes a backup of the store in dir as a new directory under root (the
/// store's parent when root is empty), named `<store>.backup-<UTC time>-<tag>`:
/// hard links for the immutable files in `link_names`, durable copies of
/// `copy_names`. Returns its path. Never touches dir.
inline std::filesystem::path take_backup(FileSystem& fs, const std::filesystem::path& dir,
                                         const std::vector<std::string>& link_names,
                                         const std::vector<std::string>& copy_names,
                                         const std::optional<std::filesystem::path>& root, const std::string& tag) {
  auto store = std::filesystem::absolute(dir).lexically_normal();
  if (!store.has_filename()) store = store.parent_path();  // "dir/" names dir
  const std::string store_name = store.filename().string();
  const std::filesystem::path parent = root ? *root : store.parent_path();
  const std::string base = store_name + ".backup-" + utc_stamp() + "-" + tag;
  std::filesystem::path backup = parent / base;
  for (int n = 2; fs.exists(backup); ++n) backup = parent / (base + "-" + std::to_string(n));
  fs.create_dirs(backup);
  for (const auto& name : link_names) fs.link(dir / name, backup / name);
  for (const auto& name : copy_names) copy_file(fs, dir / name, backup / name);
  write_backup_descriptor(fs, backup, BackupDescriptor{"migration", store_identity(dir).string(), 0, utc_stamp()});
  fs.sync_dir(backup);
  fs.sync_dir(parent);
  return backup;
}

}  // namespace detail

namespace detail {
/// stowage::migration_status, and with `compression` and `serializer` (the
/// opener's Compression::name and Serializer::id(); empty: not known) the
/// steps changing them, as an open would plan them.
inline MigrationStatus migration_status(const std::filesystem::path& dir, const Migrator& migrations,
                                        std::optional<unsigned> target_version,
                                        std::shared_ptr<FileSystem> file_system, std::string_view compression,
                                        std::string_view serializer) {
  auto fs = file_system ? file_system : default_file_system();
  if (!detail::manifest_exists(*fs, dir)) throw ValidationError("stowage: no store at " + dir.string() + " (no MANIFEST)");
  detail::Manifest m = detail::read_manifest(*fs, dir);
  MigrationStatus st;
  st.format_version = m.format_major;
  st.format_minor = m.format_minor;
  st.current_format_version = detail::kFormatMajor;
  for (const auto* f : detail::format_path(m, dir)) {
    f->apply(m);
    st.pending.push_back(f->name());
  }
  st.compression = m.compression;
  if (const auto* ks = m.keyspace(detail::kDefaultKeyspace)) {
    st.schema_version = ks->schema_version;
    st.value_type = ks->value_type;
    if (!ks->key_order.empty()) st.serializer = m.serializer;
  }
  if (!compression.empty() && st.compression != compression) {
    st.pending.push_back("compression " + st.compression + " -> " + std::string(compression));
    if (!migrations.changes_compression()) st.path_found = false;
  }
  if (!serializer.empty() && !st.serializer.empty() && st.serializer != serializer) {
    const SerializerChange* c = migrations.serializer_change(st.serializer, serializer);
    st.pending.push_back("serializer " + (c ? c->name() : st.serializer + " -> " + std::string(serializer)));
    if (c == nullptr) st.path_found = false;
  }
  st.target_version = target_version;
  if (target_version) {
    if (auto path = migrations.path(st.schema_version, *target_version)) {
      for (const auto* s : *path) st.pending.push_back(s->name());
    } else {
      st.path_found = false;
    }
  }
  return st;
}
}  // namespace detail

/// A store's on-disk format and value schema version, and the steps an open
/// would run to reach `target_version` (when given) with `migrations`. Reads
/// only MANIFEST: it takes no lock and changes nothing, so it works beside a
/// process that has the store open. Throws ValidationError when dir holds no
/// store, CorruptionError when its MANIFEST is damaged.
inline MigrationStatus migration_status(const std::filesystem::path& dir, const Migrator& migrations = {},
                                        std::optional<unsigned> target_version = std::nullopt,
                                        std::shared_ptr<FileSystem> file_system = nullptr) {
  return detail::migration_status(dir, migrations, target_version, std::move(file_system), {}, {});
}

}  // namespace stowage
