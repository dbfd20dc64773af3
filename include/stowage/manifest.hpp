// SPDX-License-Identifier: BSL-1.0
// manifest.hpp: the one file that names a store's live state. `MANIFEST`
// holds the format version, the policies that shape the bytes (serializer,
// compression), the last committed sequence, the next file number, the first
// live WAL segment and, per keyspace, its key order, a description of its
// Value type, its schema version and its chunk files.
//
// Format 3 adds, per keyspace, its live record count, and per chunk its
// level and (at level 0) its run: chunks of one run, and of one level below
// 0, do not overlap; level 0 holds runs newest first (the highest run
// number); format 1 and 2 chunks are read as one run at the last level.
// Format 5 adds the store's layout (bare keys, or keys that start with their
// collection's prefix) and its table of named collections.
//
// It is replaced only by: write MANIFEST.tmp, fsync it, rename over MANIFEST,
// fsync the directory. Layout (docs/format.md#manifest):
//
//   magic "STWMANIF" | u16 major | u16 minor | u32 zero | fixed64 body length
//   | body | fixed64 XXH3-64 of (everything before it)
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/coding.hpp"
#include "error.hpp"
#include "expiry.hpp"
#include "file.hpp"
#include "index.hpp"

namespace stowage::detail {

inline constexpr char kManifestMagic[] = "STWMANIF";
/// The format this program writes. Format 1 (stowage 0.1) kept the key order,
/// value type and schema version once for the whole store; format 2 keeps
/// them per keyspace; format 3 keeps levels of chunks (which may hold
/// tombstones) and a live record count per keyspace; format 4 lets chunk
/// records be uncounted (not yet in that count, see docs/format.md, "The live
/// count"): the count is signed, and each chunk says how many of its records
/// are uncounted; format 5 adds the layout and the collection table
/// (Database). Older formats are read and upgraded by migration.hpp.
inline constexpr std::uint16_t kFormatMajor = 5;
inline constexpr std::uint16_t kFormatMinor = 0;
/// The oldest format this program reads.
inline constexpr std::uint16_t kOldestFormatMajor = 1;
/// The name of every history entry of the collection table.
inline constexpr std::string_view kHistoryName = "history";
/// The name of every expiry entry of the collection table.
inline constexpr std::string_view kExpiryName = "expiry";
/// Longest History::keep_for a MANIFEST holds (about 3,000 years), in seconds.
inline constexpr std::uint64_t kMaxHistorySeconds = std::uint64_t{1} << 36;
/// The keyspace a Storage keeps its records in.
inline constexpr std::string_view kDefaultKeyspace = "default";
/// Levels of chunk files: 0 (runs that may overlap, one per flush) to
/// kLevels - 1, the last level.
inline constexpr std::uint32_t kLevels = 7;
/// The last level: where format 1 and 2 chunks (no tombstones) belong.
inline constexpr std::uint32_t kLastLevel = kLevels - 1;
/// A manifest larger than this is not believed.
inline constexpr std::uint64_t kManifestMaxBytes = std::uint64_t{1} << 30;

/// One keyspace (a typed collection): its types and its chunks.
struct KeyspaceState {
  std::string name;
  std::string key_order;             ///< KeyCodec<Key>::name()
  std::string value_type;            ///< describe_value<Serializer, Value>(); empty when unknown
  std::uint32_t schema_version = 0;  ///< value_version<Value> the records are written at
  /// What its chunks' counted records add to the live record count (format
  /// 4: may be below zero while records it hides are uncounted; format 3:
  /// the live records; before: the sum of records).
  std::int64_t live = 0;
  std::vector<ChunkRef> chunks;      ///< ordered by level, then (level 0) run newest first, then first key
};

/// How a store's keys are laid out (format 5; older formats are bare).
enum class Layout : std::uint8_t {
  /// Every key is a record of the default collection, as its KeyCodec
  /// encodes it (what Storage creates: no byte added).
  bare = 0,
  /// Every key starts with its collection's prefix
  /// (detail::collection_prefix(id)); the default collection is id 0.
  prefixed = 1,
};

/// Most named collections a manifest may list.
inline constexpr std::uint64_t kMaxCollections = std::uint64_t{1} << 24;

/// What an entry of the collection table is.
enum class CollectionKind : std::uint8_t {
  table = 0,         ///< a named collection of records
  unique_index = 1,  ///< a secondary index, one record per index key
  multi_index = 2,   ///< a secondary index, any number of records per index key
  history = 3,       ///< the earlier versions of a collection's records (history.hpp)
  expiry = 4,        ///< a collection's values carry expiry times (expiry.hpp); holds no keys
};

/// A named collection of a Database, or a secondary index of a collection
/// (format 5, prefixed layout): its keys start with collection_prefix(id).
struct CollectionState {
  std::string name;                  ///< unique among tables; an index's, among its parent's indexes
  std::uint32_t id = 0;              ///< at least 1 (0 is the default collection); never reused
  std::string key_order;             ///< KeyCodec<Key>::name() (an index: of its index key)
  std::string serializer;            ///< Serializer::id() (an index: empty)
  std::string value_type;            ///< describe_value<Serializer, Value>() (an index: empty)
  std::uint32_t schema_version = 0;  ///< value_version<Value> (an index: 0)
  CollectionKind kind = CollectionKind::table;
  std::uint32_t parent = 0;          ///< an index: the id of the collection it indexes (0: the default)
  std::uint32_t index_version = 0;   ///< an index: the definition version its user gave
  /// An index: its entries agree with its collection. False while it is
  /// built, and once a session wrote to its collection without it declared
  /// (it is rebuilt when next declared).
  bool ready = true;
  std::uint64_t ids_reserved = 0;    ///< a table: next_id() handed out only ids below this
  std::uint32_t history_versions = 0;  ///< a history: History::versions
  std::uint64_t history_seconds = 0;   ///< a history: History::keep_for, in seconds
  std::uint64_t history_start = 0;     ///< a history: the store's last sequence when it began
  std::uint64_t expiry_ttl = 0;        ///< an expiry: the default time to live, in microseconds (0: none)
  std::uint64_t expiry_start = 0;      ///< an expiry: the store's last sequence when it began
  /// A secondary index (unique or not).
  bool is_index() const { return kind == CollectionKind::unique_index || kind == CollectionKind::multi_index; }
  /// A named collection of records.
  bool is_table() const { return kind == CollectionKind::table; }
  /// A collection's history.
  bool is_history() const { return kind == CollectionKind::history; }
  /// A collection's expiry.
  bool is_expiry() const { return kind == CollectionKind::expiry; }
  /// An index or the history of collection id (dropped and migrated with it).
  bool serves(std::uint32_t id) const { return !is_table() && parent == id; }
};

/// Decoded contents of MANIFEST.
struct Manifest {
  std::uint16_t format_major = kFormatMajor;
  std::uint16_t format_minor = kFormatMinor;
  std::string serializer;       ///< Serializer::id()
  std::string compression;      ///< Compression::name
  std::uint8_t compression_id = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t next_file = 1;
  std::uint64_t wal_start = 1;  ///< first WAL segment still needed
  std::vector<KeyspaceState> keyspaces;
  Layout layout = Layout::bare;              ///< format 5; older formats are bare
  std::uint32_t next_collection_id = 1;      ///< the id the next named collection takes
  std::vector<CollectionState> collections;  ///< named collections, by id
  /// Ids of dropped collections whose records may still be stored (the drop
  /// purges them, then removes the id from here; an open finishes a purge a
  /// crash interrupted).
  std::vector<std::uint32_t> dropped;
  /// next_id() of the default collection handed out only ids below this.
  std::uint64_t default_ids_reserved = 0;

  /// The named collection (not index) called name, or nullptr.
  const CollectionState* collection(std::string_view name) const {
    for (const auto& c : collections)
      if (c.is_table() && c.name == name) return &c;
    return nullptr;
  }
  /// The history of collection parent, or nullptr.
  const CollectionState* history(std::uint32_t parent) const {
    for (const auto& c : collections)
      if (c.is_history() && c.parent == parent) return &c;
    return nullptr;
  }
  /// The expiry of collection parent, or nullptr.
  const CollectionState* expiry(std::uint32_t parent) const {
    for (const auto& c : collections)
      if (c.is_expiry() && c.parent == parent) return &c;
    return nullptr;
  }
  /// The index called name of collection parent, or nullptr.
  const CollectionState* index(std::uint32_t parent, std::string_view name) const {
    for (const auto& c : collections)
      if (c.is_index() && c.parent == parent && c.name == name) return &c;
    return nullptr;
  }
  /// The entry with id, or nullptr.
  const CollectionState* by_id(std::uint32_t id) const {
    for (const auto& c : collections)
      if (c.id == id) return &c;
    return nullptr;
  }
  CollectionState* by_id(std::uint32_t id) {
    return const_cast<CollectionState*>(static_cast<const Manifest&>(*this).by_id(id));
  }

  /// The keyspace called name, or nullptr.
  const KeyspaceState* keyspace(std::string_view name) const {
    for (const auto& ks : keyspaces)
      if (ks.name == name) return &ks;
    return nullptr;
  }
  KeyspaceState* keyspace(std::string_view name) {
    return const_cast<KeyspaceState*>(static_cast<const Manifest&>(*this).keyspace(name));
  }
};

inline void put_chunk_ref(std::string& body, const ChunkRef& c) {
  put_varint(body, c.file);
  put_varint(body, c.records);
  put_varint(body, c.bytes);
  put_varint(body, c.max_seq);
  put_bytes(body, c.first_key);
  put_bytes(body, c.last_key);
}

/// Orders chunks as a manifest lists them: by level, level-0 runs newest
/// first, then by first key.
inline bool manifest_order(const ChunkRef& a, const ChunkRef& b) {
  if (a.level != b.level) return a.level < b.level;
  if (a.run != b.run) return a.run > b.run;
  return a.first_key < b.first_key;
}

/// What is wrong with chunk c listed right after prev (nullptr: nothing): the
/// order rules the reader enforces (decode_manifest) and the writer checks
/// before it writes (check_manifest_order).
inline const char* chunk_order_fault(const ChunkRef& prev, const ChunkRef& c) {
  if (manifest_order(c, prev)) return "chunks are out of order";
  if (prev.level == c.level && prev.run == c.run && !(prev.last_key < c.first_key))
    return "chunks of one run overlap or are out of order";
  return nullptr;
}

/// Encodes m in the format m.format_major names (2, or 1 for tests and
/// fixtures; format 1 can hold only keyspaces that share one key order, value
/// type and schema version).
inline std::string encode_manifest(const Manifest& m) {
  std::string body;
  if (m.format_major == 1) {
    const KeyspaceState none;
    const KeyspaceState& first = m.keyspaces.empty() ? none : m.keyspaces.front();
    for (const auto& ks : m.keyspaces)
      if (ks.key_order != first.key_order || ks.value_type != first.value_type ||
          ks.schema_version != first.schema_version)
        throw Error("stowage: format 1 cannot hold keyspaces of different types");
    put_fixed32(body, first.schema_version);
    put_bytes(body, m.serializer);
    put_bytes(body, m.compression);
    body.push_back(static_cast<char>(m.compression_id));
    put_bytes(body, first.key_order);
    put_bytes(body, first.value_type);
  } else {
    put_bytes(body, m.serializer);
    put_bytes(body, m.compression);
    body.push_back(static_cast<char>(m.compression_id));
  }
  put_fixed64(body, m.last_seq);
  put_fixed64(body, m.next_file);
  put_fixed64(body, m.wal_start);
  put_varint(body, m.keyspaces.size());
  for (const auto& ks : m.keyspaces) {
    put_bytes(body, ks.name);
    if (m.format_major != 1) {
      put_bytes(body, ks.key_order);
      put_bytes(body, ks.value_type);
      put_fixed32(body, ks.schema_version);
    }
    if (m.format_major >= 4)
      put_varint(body, ks.live < 0 ? (static_cast<std::uint64_t>(-(ks.live + 1)) << 1) | 1
                                   : static_cast<std::uint64_t>(ks.live) << 1);
    else if (m.format_major == 3)
      put_varint(body, static_cast<std::uint64_t>(std::max<std::int64_t>(ks.live, 0)));
    put_varint(body, ks.chunks.size());
    for (const auto& c : ks.chunks) {
      if (m.format_major < 3 && c.level != kLastLevel)
        throw Error("stowage: format " + std::to_string(m.format_major) + " holds only one level of chunks");
      put_chunk_ref(body, c);
      if (m.format_major >= 3) {
        put_varint(body, c.level);
        put_varint(body, c.run);
      }
      if (m.format_major >= 4) put_varint(body, c.uncounted);
    }
  }
  if (m.format_major >= 5) {
    body.push_back(static_cast<char>(m.layout));
    put_varint(body, m.next_collection_id);
    put_varint(body, m.collections.size());
    for (const auto& c : m.collections) {
      put_bytes(body, c.name);
      put_varint(body, c.id);
      put_bytes(body, c.key_order);
      put_bytes(body, c.serializer);
      put_bytes(body, c.value_type);
      put_fixed32(body, c.schema_version);
      body.push_back(static_cast<char>(c.kind));
      put_varint(body, c.parent);
      put_varint(body, c.index_version);
      body.push_back(c.ready ? 1 : 0);
      put_varint(body, c.ids_reserved);
      if (c.is_history()) {
        put_varint(body, c.history_versions);
        put_varint(body, c.history_seconds);
        put_varint(body, c.history_start);
      }
      if (c.is_expiry()) {
        put_varint(body, c.expiry_ttl);
        put_varint(body, c.expiry_start);
      }
    }
    put_varint(body, m.dropped.size());
    for (auto id : m.dropped) put_varint(body, id);
    put_varint(body, m.default_ids_reserved);
  } else if (m.layout != Layout::bare || !m.collections.empty() || !m.dropped.empty()) {
    throw Error("stowage: format " + std::to_string(m.format_major) + " cannot hold collections");
  }
  std::string out(kManifestMagic, 8);
  put_fixed16(out, m.format_major);
  put_fixed16(out, m.format_minor);
  put_fixed32(out, 0);
  put_fixed64(out, body.size());
  out += body;
  put_fixed64(out, checksum(out, 0x4d414e49));
  return out;
}

// Format 5's tail: the layout, the collection table and the dropped ids.
inline void decode_collections(Reader& r, Manifest& m) {
  const std::uint8_t layout = r.u8("layout");
  if (layout > 1) r.fail("layout " + std::to_string(layout) + " does not exist");
  m.layout = static_cast<Layout>(layout);
  const std::uint64_t next = r.varint("next collection id");
  if (next == 0 || next > kMaxCollections) r.fail("next collection id " + std::to_string(next) + " is implausible");
  m.next_collection_id = static_cast<std::uint32_t>(next);
  const std::uint64_t n = r.varint("collection count");
  if (n > r.remaining() / 8 || n >= next) r.fail("collection count exceeds the manifest");
  if (n > 0 && m.layout == Layout::bare) r.fail("a bare store lists collections");
  std::set<std::pair<std::uint64_t, std::string>> names;  // (namespace, name): see below
  std::set<std::uint32_t> ids, tables{0};
  for (std::uint64_t i = 0; i < n; ++i) {
    CollectionState c;
    c.name = std::string(r.length_prefixed("collection name"));
    if (c.name.empty() || c.name.size() > 255 || c.name == kDefaultKeyspace)
      r.fail("a collection is named '" + c.name + "'");
    const std::uint64_t id = r.varint("collection id");
    if (id == 0 || id >= next) r.fail("collection '" + c.name + "' has id " + std::to_string(id) + ", out of range");
    c.id = static_cast<std::uint32_t>(id);
    if (!ids.insert(c.id).second) r.fail("collection id " + std::to_string(id) + " is listed twice");
    if (i > 0 && c.id < m.collections.back().id) r.fail("collections are out of id order");
    c.key_order = std::string(r.length_prefixed("collection key order"));
    c.serializer = std::string(r.length_prefixed("collection serializer"));
    c.value_type = std::string(r.length_prefixed("collection value type"));
    c.schema_version = r.u32("collection schema version");
    const std::uint8_t kind = r.u8("collection kind");
    if (kind > 4) r.fail("collection kind " + std::to_string(kind) + " does not exist");
    c.kind = static_cast<CollectionKind>(kind);
    const std::uint64_t parent = r.varint("index parent");
    const std::uint64_t version = r.varint("index version");
    if (version > std::numeric_limits<std::uint32_t>::max()) r.fail("index version " + std::to_string(version) + " is too large");
    c.index_version = static_cast<std::uint32_t>(version);
    const std::uint8_t ready = r.u8("index ready");
    if (ready > 1) r.fail("index ready flag " + std::to_string(ready) + " is not 0 or 1");
    c.ready = ready == 1;
    c.ids_reserved = r.varint("ids reserved");
    if (c.is_history()) {
      const std::uint64_t versions = r.varint("history versions");
      if (versions > std::numeric_limits<std::uint32_t>::max()) r.fail("history versions " + std::to_string(versions) + " is too large");
      c.history_versions = static_cast<std::uint32_t>(versions);
      c.history_seconds = r.varint("history seconds");
      if (c.history_seconds > kMaxHistorySeconds) r.fail("history age " + std::to_string(c.history_seconds) + " s is too large");
      c.history_start = r.varint("history start");
      if (c.history_versions == 0 && c.history_seconds == 0) r.fail("a history keeps nothing");
      if (c.name != kHistoryName || c.index_version != 0 || !c.ready || c.ids_reserved != 0 || !c.key_order.empty() ||
          !c.serializer.empty() || !c.value_type.empty() || c.schema_version != 0)
        r.fail("history '" + c.name + "' has fields of a collection or an index");
    }
    if (c.is_expiry()) {
      c.expiry_ttl = r.varint("expiry ttl");
      if (c.expiry_ttl > kMaxExpiryMicros) r.fail("expiry ttl " + std::to_string(c.expiry_ttl) + " us is too large");
      c.expiry_start = r.varint("expiry start");
      if (c.name != kExpiryName || c.index_version != 0 || !c.ready || c.ids_reserved != 0 || !c.key_order.empty() ||
          !c.serializer.empty() || !c.value_type.empty() || c.schema_version != 0)
        r.fail("expiry '" + c.name + "' has fields of a collection or an index");
    }
    if (!c.is_table()) {
      // An index or a history follows the collection it serves (created before it).
      if (parent > std::numeric_limits<std::uint32_t>::max() || !tables.count(static_cast<std::uint32_t>(parent)))
        r.fail("index '" + c.name + "' indexes collection id " + std::to_string(parent) + ", which is not listed");
      c.parent = static_cast<std::uint32_t>(parent);
      if (c.ids_reserved != 0) r.fail("index '" + c.name + "' reserves ids");
    } else {
      if (parent != 0 || c.index_version != 0 || !c.ready) r.fail("collection '" + c.name + "' has index fields");
      tables.insert(c.id);
    }
    // Tables share one namespace, each collection's indexes another, and a
    // collection has at most one history.
    const std::uint64_t space = c.is_table() ? 0 : c.is_index() ? c.parent + std::uint64_t{1} : c.parent + (std::uint64_t{1} << 32);
    if (!names.insert({space, c.name}).second)
      r.fail("collection or index '" + c.name + "' is listed twice");
    m.collections.push_back(std::move(c));
  }
  const std::uint64_t d = r.varint("dropped collection count");
  if (d > r.remaining() || d >= next) r.fail("dropped collection count exceeds the manifest");
  for (std::uint64_t i = 0; i < d; ++i) {
    const std::uint64_t id = r.varint("dropped collection id");
    if (id == 0 || id >= next || !ids.insert(static_cast<std::uint32_t>(id)).second)
      r.fail("dropped collection id " + std::to_string(id) + " is out of range or listed twice");
    m.dropped.push_back(static_cast<std::uint32_t>(id));
  }
  m.default_ids_reserved = r.varint("default collection ids reserved");
}

inline Manifest decode_manifest(std::string_view bytes, const std::filesystem::path& file) {
  Reader h(bytes, &file, 0);
  if (h.remaining() < 32) h.fail("file too short for a manifest");
  if (h.bytes(8, "magic") != std::string_view(kManifestMagic, 8)) h.fail("not a stowage MANIFEST (bad magic)");
  Manifest m;
  m.format_major = h.u16();
  m.format_minor = h.u16();
  // The envelope (magic, versions, length, trailing checksum) is the same in
  // every format version: check it before believing the version.
  const std::uint64_t len = decode_fixed64(bytes.data() + 16);
  if (len != bytes.size() - 32) h.fail("body length does not match the file size");
  if (decode_fixed64(bytes.data() + bytes.size() - 8) != checksum(bytes.substr(0, bytes.size() - 8), 0x4d414e49))
    h.fail("manifest checksum mismatch");
  if (m.format_major < kOldestFormatMajor) h.fail("format major version " + std::to_string(m.format_major) + " does not exist");
  if (m.format_major > kFormatMajor)
    throw MigrationError("stowage: " + file.string() + " has format version " + std::to_string(m.format_major) +
                         "." + std::to_string(m.format_minor) + ", newer than this program's " +
                         std::to_string(kFormatMajor) + "." + std::to_string(kFormatMinor) +
                         "; open it with a newer stowage");
  if (h.u32("reserved") != 0) h.fail("reserved header bytes are not zero");
  Reader r(bytes.substr(24, static_cast<std::size_t>(len)), &file, 24);
  const bool v1 = m.format_major == 1;
  KeyspaceState types;  // format 1: the one set of types every keyspace shares
  if (v1) {
    types.schema_version = r.u32("schema version");
    m.serializer = std::string(r.length_prefixed("serializer id"));
    m.compression = std::string(r.length_prefixed("compression name"));
    m.compression_id = r.u8("compression id");
    types.key_order = std::string(r.length_prefixed("key order"));
    types.value_type = std::string(r.length_prefixed("value type"));
  } else {
    m.serializer = std::string(r.length_prefixed("serializer id"));
    m.compression = std::string(r.length_prefixed("compression name"));
    m.compression_id = r.u8("compression id");
  }
  m.last_seq = r.u64("last sequence");
  m.next_file = r.u64("next file number");
  m.wal_start = r.u64("wal start");
  std::uint64_t nks = r.varint("keyspace count");
  if (nks > r.remaining()) r.fail("keyspace count exceeds the manifest");
  std::set<std::string> names;
  for (std::uint64_t i = 0; i < nks; ++i) {
    KeyspaceState ks;
    ks.name = std::string(r.length_prefixed("keyspace name"));
    if (!names.insert(ks.name).second) r.fail("keyspace '" + ks.name + "' is listed twice");
    if (v1) {
      ks.key_order = types.key_order;
      ks.value_type = types.value_type;
      ks.schema_version = types.schema_version;
    } else {
      ks.key_order = std::string(r.length_prefixed("key order"));
      ks.value_type = std::string(r.length_prefixed("value type"));
      ks.schema_version = r.u32("schema version");
    }
    const bool v3 = m.format_major >= 3;
    if (m.format_major >= 4) {
      const std::uint64_t z = r.varint("live record count");  // zigzag
      ks.live = (z & 1) ? -static_cast<std::int64_t>(z >> 1) - 1 : static_cast<std::int64_t>(z >> 1);
    } else if (v3) {
      const std::uint64_t live = r.varint("live record count");
      if (live > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        r.fail("live record count " + std::to_string(live) + " is implausible");
      ks.live = static_cast<std::int64_t>(live);
    }
    std::uint64_t n = r.varint("chunk count");
    if (n > r.remaining() / 6) r.fail("chunk count exceeds the manifest");
    ks.chunks.reserve(static_cast<std::size_t>(n));
    std::uint64_t records = 0;
    for (std::uint64_t j = 0; j < n; ++j) {
      ChunkRef c;
      c.file = r.varint("chunk file");
      c.records = r.varint("chunk records");
      c.bytes = r.varint("chunk bytes");
      c.max_seq = r.varint("chunk max sequence");
      c.first_key = std::string(r.length_prefixed("chunk first key"));
      c.last_key = std::string(r.length_prefixed("chunk last key"));
      if (v3) {
        const std::uint64_t level = r.varint("chunk level");
        if (level >= kLevels) r.fail("chunk level " + std::to_string(level) + " does not exist");
        c.level = static_cast<std::uint32_t>(level);
        c.run = r.varint("chunk run");
        if (c.level != 0 && c.run != 0) r.fail("a chunk below level 0 names a run");
      } else {
        c.level = kLastLevel;
      }
      if (m.format_major >= 4) c.uncounted = r.varint("chunk uncounted records");
      if (c.file >= m.next_file) r.fail("chunk file number beyond next file number");
      if (c.records == 0 || c.last_key < c.first_key) r.fail("chunk range is empty or inverted");
      if (c.uncounted > c.records) r.fail("a chunk has more uncounted records than records");
      if (j > 0) {
        if (const char* fault = chunk_order_fault(ks.chunks.back(), c)) r.fail(fault);
      }
      records += c.records;
      ks.chunks.push_back(std::move(c));
    }
    if (!v3) ks.live = static_cast<std::int64_t>(std::min<std::uint64_t>(records, std::numeric_limits<std::int64_t>::max()));
    m.keyspaces.push_back(std::move(ks));
  }
  if (m.format_major >= 5) decode_collections(r, m);
  if (!r.empty()) r.fail("trailing bytes in the manifest body");
  return m;
}

inline bool manifest_exists(FileSystem& fs, const std::filesystem::path& dir) { return fs.exists(dir / "MANIFEST"); }

inline Manifest read_manifest(FileSystem& fs, const std::filesystem::path& dir) {
  auto path = dir / "MANIFEST";
  return decode_manifest(read_file(fs, path, kManifestMaxBytes), path);
}

/// Checks m's chunk lists against the reader's order rules (decode_manifest):
/// a manifest the next open would refuse as corrupt is a bug in its writer,
/// a std::logic_error here, and must not replace a good one.
inline void check_manifest_order(const Manifest& m) {
  for (const auto& ks : m.keyspaces)
    for (std::size_t j = 1; j < ks.chunks.size(); ++j) {
      if (const char* fault = chunk_order_fault(ks.chunks[j - 1], ks.chunks[j]))
        throw std::logic_error("stowage: internal error: chunk files " + std::to_string(ks.chunks[j - 1].file) +
                               " and " + std::to_string(ks.chunks[j].file) + ": " + fault);
    }
}

/// Writes m as dir/MANIFEST, atomically (a temporary file, synced, renamed
/// over the old one) and durably; returns its size in bytes. Refuses
/// (check_manifest_order) a manifest whose chunks are out of order.
inline std::uint64_t write_manifest(FileSystem& fs, const std::filesystem::path& dir, const Manifest& m) {
  check_manifest_order(m);
  auto tmp = dir / "MANIFEST.tmp";
  const std::string bytes = encode_manifest(m);
  {
    auto f = fs.create(tmp);
    f->append(bytes);
    f->sync();
    f->close();
  }
  fs.rename(tmp, dir / "MANIFEST");
  fs.sync_dir(dir);
  return bytes.size();
}

}  // namespace stowage::detail
