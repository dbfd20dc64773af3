// SPDX-License-Identifier: BSL-1.0
// stowage: the command-line tool for looking into, checking, copying and
// repairing stowage stores, whatever their C++ types (it reads them from the
// MANIFEST). Argument parsing by CLI11.
//
//   stowage stats DIR                   live records, files per level, bytes, compression ratio, WAL, types,
//                                       policies, the layout and the collections
//   stowage verify DIR                  every checksum, block, key order and the live count, and (a Database's
//                                       store) that every WAL key is a collection's; exit 1 when anything is wrong
//   stowage dump DIR [--collection NAME] [--keyspace NAME] [--from K] [--to K] [--limit N]
//                                       JSON lines {"key": ..., "value": ...} of one collection
//   stowage load DIR [--collection NAME] [--input FILE]   JSON lines (stdin by default) appended to the WAL
//   stowage compact DIR                 the engine's compact(): every level merged into the last, the WAL folded in
//   stowage backup DIR DEST             a consistent copy taken under the store's LOCK
//   stowage migrate --status DIR        format and schema versions, pending migration steps
//   stowage repair DIR OUT              every record that verifies, of every keyspace and collection, into a new
//                                       store with the same layout and collection table; what was lost
//
// Collections: a Database's store keeps several typed collections in keyspace
// 'default', each key after its collection's prefix (the prefixed layout);
// dump and load read and write one of them (--collection, default 'default'),
// its prefix stripped and added, decoded with its own types. A Storage's
// store (the bare layout) holds 'default' only, keys without a prefix.
// --keyspace names a MANIFEST keyspace: 'default' holds every collection; any
// other is read as it is (dump only).
//
// Read-only subcommands (stats, verify, dump, migrate --status) take no lock
// and work on a store another process has open; --json prints JSON instead of
// text. Subcommands that write (load, compact, backup, repair) take the
// store's LOCK first and refuse a store another process holds.
//
// Exit status: 0 success (verify: the store is sound; repair: nothing lost);
// 1 verify found problems, or repair lost records; 2 bad usage; 3 another
// process holds the store (LockError); 4 the store is too damaged for the
// command (CorruptionError: run verify, then repair); 5 any other error
// (I/O, no store at DIR, a format or types the tool cannot handle).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "offline.hpp"
#include "record_json.hpp"

namespace {

using stowage::tool::Json;
namespace fs = std::filesystem;

enum Exit : int { kOk = 0, kFound = 1, kUsage = 2, kLocked = 3, kCorrupt = 4, kFailed = 5 };

/// "12.3 MiB".
std::string human(std::uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

/// A progress bar on stderr, drawn only when stderr is a terminal, at most
/// ten times a second, and erased when done.
class ProgressBar {
 public:
  ProgressBar(std::string label, bool wanted) : label_(std::move(label)), on_(wanted && ::isatty(2) == 1) {}
  ~ProgressBar() {
    if (drawn_) std::fprintf(stderr, "\r%*s\r", 72, "");
  }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  /// Updates the bar: done of total bytes.
  void operator()(std::uint64_t done, std::uint64_t total) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done < total) return;
    last_ = now;
    drawn_ = true;
    const double f = total == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    const int filled = static_cast<int>(f * 30);
    std::fprintf(stderr, "\r%s [%s%s] %3d%% %s / %s ", label_.c_str(), std::string(filled, '#').c_str(),
                 std::string(30 - filled, ' ').c_str(), static_cast<int>(f * 100), human(done).c_str(),
                 human(total).c_str());
    std::fflush(stderr);
  }
  /// As a ProgressFn.
  stowage::tool::ProgressFn fn() {
    return [this](std::uint64_t d, std::uint64_t t) { (*this)(d, t); };
  }

 private:
  std::string label_;
  bool on_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

stowage::tool::RecordJson codec_of(const stowage::detail::Manifest& m,
                                   std::string_view keyspace = stowage::detail::kDefaultKeyspace) {
  const auto* ks = m.keyspace(keyspace);
  if (!ks) return stowage::tool::RecordJson("", "", m.serializer);
  return stowage::tool::RecordJson(ks->key_order, ks->value_type, m.serializer);
}

/// The codec of one collection's keys (its prefix stripped) and values.
stowage::tool::RecordJson codec_of(const stowage::tool::CollectionView& c) {
  return stowage::tool::RecordJson(c.key_order, c.value_type, c.serializer);
}

/// "bare" or "prefixed".
const char* layout_name(stowage::detail::Layout l) {
  return l == stowage::detail::Layout::prefixed ? "prefixed" : "bare";
}

/// A key given on the command line: JSON text of the key ("42", "[1,\"a\"]"),
/// or any other text as a string; hex when the key order is not known.
std::string key_argument(const stowage::tool::RecordJson& codec, const std::string& text) {
  if (!codec.keys_as_json()) return stowage::tool::from_hex(text);
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) j = text;
  try {
    return codec.key_bytes(j);
  } catch (const stowage::ValidationError&) {
    if (j.is_string()) throw;
    return codec.key_bytes(Json(text));  // e.g. --from 42 for a string key
  }
}

/// A key for a message: its JSON, or hex.
std::string show_key(const stowage::tool::RecordJson& codec, std::string_view key) {
  if (auto j = codec.key(key)) return j->dump();
  return "hex:" + stowage::tool::to_hex(key);
}

/// The collection an encoded key of keyspace `keyspace` belongs to, in a
/// store of the prefixed layout; nullopt otherwise (or when it is no
/// collection's).
std::optional<std::string> collection_name_of(const stowage::detail::Manifest& m, const std::string& keyspace,
                                              std::string_view key) {
  if (keyspace != stowage::detail::kDefaultKeyspace || m.layout != stowage::detail::Layout::prefixed)
    return std::nullopt;
  const auto c = stowage::tool::collection_of_key(m, key);
  if (!c) return std::nullopt;
  return c->first.name;
}

/// An encoded key of keyspace `keyspace` for a message: decoded with its
/// collection's types, its prefix stripped; with_collection: in the prefixed
/// layout, followed by " (collection 'a')".
std::string show_store_key(const stowage::detail::Manifest& m, const std::string& keyspace, std::string_view key,
                           bool with_collection) {
  if (keyspace != stowage::detail::kDefaultKeyspace) return show_key(codec_of(m, keyspace), key);
  const auto c = stowage::tool::collection_of_key(m, key);
  if (!c) return "hex:" + stowage::tool::to_hex(key) + " (" + stowage::tool::owner_of_key(m, key) + ")";
  const std::string shown = show_key(codec_of(c->first), key.substr(c->second));
  if (!with_collection || m.layout != stowage::detail::Layout::prefixed) return shown;
  return shown + " (collection '" + c->first.name + "')";
}

void print_json(const Json& j) { std::cout << j.dump(2) << "\n"; }

// ---- subcommands ---------------------------------------------------------------

/// "1 level", "3 levels".
std::string count_of(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

/// "L0 2 runs, 3 files, 1.2 MiB | L6 4 files, 9.0 MiB": the levels that hold files.
std::string levels_line(const stowage::KeyspaceInfo& ks) {
  std::string out;
  for (const auto& l : ks.levels) {
    if (l.files == 0) continue;
    if (!out.empty()) out += " | ";
    out += "L" + std::to_string(l.level) + " ";
    if (l.level == 0) out += count_of(l.runs, "run", "runs") + ", ";
    out += count_of(l.files, "file", "files") + ", " + human(l.bytes);
  }
  return out.empty() ? "none (no chunk files)" : out;
}

int cmd_stats(const fs::path& dir, bool json) {
  const stowage::StoreInfo info = stowage::inspect(dir);
  auto defaults = stowage::default_file_system();
  // The layout and the collections (StoreInfo does not carry them). Read
  // after inspect(): a collection a writer creates meanwhile may show here
  // only; the layout changes only in a writable open's migration.
  const stowage::detail::Manifest manifest = stowage::detail::read_manifest(*defaults, dir);
  const bool prefixed = manifest.layout == stowage::detail::Layout::prefixed;
  const auto collections = stowage::tool::collections_of(manifest);
  const auto indexes = stowage::tool::indexes_of(manifest);
  // The WAL (it holds 'default' records only, of every collection), replayed to count what it adds.
  std::uint64_t wal_ops = 0, wal_puts = 0, wal_erases = 0, last_seq = info.last_seq;
  std::int64_t wal_delta = 0, uncounted_part = 0;
  if (info.keyspace(stowage::detail::kDefaultKeyspace)) {
    stowage::tool::StoreReader reader(*defaults, dir);
    wal_ops = reader.wal_operations();
    wal_puts = reader.wal_puts();
    wal_erases = reader.wal_erases();
    wal_delta = reader.wal_live_delta();
    uncounted_part = reader.uncounted_part();
    last_seq = reader.last_seq();
  }
  stowage::tool::BlockBytes blocks;
  for (const auto& ks : info.keyspaces)
    for (const auto& c : ks.chunks) {
      const auto b = stowage::tool::chunk_block_bytes(*defaults, c.file);
      blocks.raw += b.raw;
      blocks.stored += b.stored;
      blocks.blocks += b.blocks;
    }
  const double ratio = blocks.stored == 0 ? 1.0 : static_cast<double>(blocks.raw) / static_cast<double>(blocks.stored);
  std::size_t live_wal = 0;
  for (const auto& w : info.wal) live_wal += w.live ? 1 : 0;
  // Live records in the chunks, exactly: the MANIFEST's count and what the
  // uncounted records add ('default' only: the keyspace Storage writes).
  const std::uint64_t live_chunks = static_cast<std::uint64_t>(std::max<std::int64_t>(info.live + uncounted_part, 0));
  // Once the WAL is replayed: plus each key the WAL puts that the chunks do
  // not hold, minus each key it erases that they do (each looked up in the runs).
  const std::uint64_t live_total =
      static_cast<std::uint64_t>(std::max<std::int64_t>(info.live + uncounted_part + wal_delta, 0));
  auto ks_live = [&](const stowage::KeyspaceInfo& ks) {
    const std::int64_t part = ks.name == stowage::detail::kDefaultKeyspace ? uncounted_part : 0;
    return static_cast<std::uint64_t>(std::max<std::int64_t>(ks.live + part, 0));
  };
  if (json) {
    Json ks_list = Json::array();
    for (const auto& ks : info.keyspaces) {
      Json levels = Json::array();
      for (const auto& l : ks.levels)
        if (l.files > 0)
          levels.push_back({{"level", l.level}, {"runs", l.runs}, {"files", l.files}, {"bytes", l.bytes},
                            {"records", l.records}});
      ks_list.push_back({{"name", ks.name},
                         {"key_order", ks.key_order},
                         {"value_type", ks.value_type},
                         {"schema_version", ks.schema_version},
                         {"live_records", ks_live(ks)},
                         {"uncounted_records", ks.uncounted},
                         {"chunk_records", ks.records},
                         {"chunk_files", ks.chunks.size()},
                         {"level_count", ks.level_count()},
                         {"levels", levels},
                         {"bytes", ks.bytes}});
    }
    Json coll_list = Json::array();
    for (const auto& c : collections)
      coll_list.push_back({{"name", c.name},
                           {"id", c.id},
                           {"prefix_hex", stowage::tool::to_hex(c.prefix)},
                           {"key_order", c.key_order},
                           {"serializer", c.serializer},
                           {"value_type", c.value_type},
                           {"schema_version", c.schema_version}});
    Json index_list = Json::array();
    for (const auto& i : indexes)
      index_list.push_back({{"name", i.name},
                            {"id", i.id},
                            {"prefix_hex", stowage::tool::to_hex(stowage::detail::collection_prefix(i.id))},
                            {"collection", i.collection},
                            {"key_order", i.key_order},
                            {"unique", i.unique},
                            {"version", i.version},
                            {"ready", i.ready}});
    print_json({{"dir", dir.string()},
                {"format", std::to_string(info.format_major) + "." + std::to_string(info.format_minor)},
                {"layout", layout_name(manifest.layout)},
                {"collections", coll_list},
                {"indexes", index_list},
                {"next_collection_id", manifest.next_collection_id},
                {"dropped_collection_ids", manifest.dropped},
                {"serializer", info.serializer},
                {"compression", info.compression},
                {"compression_id", info.compression_id},
                {"live_records", live_chunks},
                {"uncounted_records", info.uncounted},
                {"chunk_records", info.records},
                {"wal_operations", wal_ops},
                {"wal_keys_put", wal_puts},
                {"wal_keys_erased", wal_erases},
                {"live_records_with_wal", live_total},
                {"wal_segments", live_wal},
                {"wal_bytes", info.wal_bytes},
                {"chunk_bytes", info.chunk_bytes},
                {"manifest_bytes", info.manifest_bytes},
                {"disk_bytes", info.disk_bytes},
                {"data_blocks", blocks.blocks},
                {"block_bytes_decoded", blocks.raw},
                {"block_bytes_stored", blocks.stored},
                {"compression_ratio", std::round(ratio * 100) / 100},
                {"last_sequence", last_seq},
                {"keyspaces", ks_list},
                {"unneeded_files", info.unnamed_files}});
    return kOk;
  }
  std::printf("store        %s\n", dir.c_str());
  std::printf("format       %u.%u\n", info.format_major, info.format_minor);
  std::printf("serializer   %s\n", info.serializer.empty() ? "(none yet: the default collection has no types)"
                                                        : info.serializer.c_str());
  std::printf("compression  %s (id %u), ratio %.2f (%s of blocks stored in %s)\n", info.compression.c_str(),
              info.compression_id, ratio, human(blocks.raw).c_str(), human(blocks.stored).c_str());
  if (prefixed)
    std::printf("layout       prefixed (a Database's: %s in keyspace 'default', each key after its "
                "collection's prefix)\n",
                count_of(collections.size(), "collection", "collections").c_str());
  else
    std::printf("layout       bare (a Storage's: one collection, 'default', keys without a prefix)\n");
  if (prefixed) {
    for (const auto& c : collections) {
      if (c.key_order.empty()) {
        std::printf("collection   %s (id %u): no types yet (no Storage or collection(\"%s\") has opened it)\n",
                    c.name.c_str(), c.id, c.name.c_str());
        continue;
      }
      std::printf("collection   %s (id %u): key order %s, value type %s, serializer %s, schema version %u\n",
                  c.name.c_str(), c.id, c.key_order.c_str(), c.value_type.empty() ? "(unknown)" : c.value_type.c_str(),
                  c.serializer.c_str(), c.schema_version);
    }
    for (const auto& i : indexes)
      std::printf("index        %s of %s (id %u): key order %s, %s, version %u%s\n", i.name.c_str(),
                  i.collection.c_str(), i.id, i.key_order.c_str(), i.unique ? "unique" : "not unique", i.version,
                  i.ready ? "" : ", not ready (built or rebuilt when next declared)");
    for (const auto& h : manifest.collections) {
      if (!h.is_history()) continue;
      const auto* parent = h.parent == 0 ? nullptr : manifest.by_id(h.parent);
      std::string rule;
      if (h.history_versions != 0) rule = std::to_string(h.history_versions) + " versions a key";
      if (h.history_seconds != 0)
        rule += (rule.empty() ? "" : ", ") + std::string("none older than ") + std::to_string(h.history_seconds) + " s";
      std::printf("history      of %s (id %u): keeps %s, from sequence %llu on\n",
                  parent ? parent->name.c_str() : "default", h.id, rule.c_str(),
                  static_cast<unsigned long long>(h.history_start));
    }
    for (const auto& e : manifest.collections) {
      if (!e.is_expiry()) continue;
      const auto* parent = e.parent == 0 ? nullptr : manifest.by_id(e.parent);
      const std::string ttl = e.expiry_ttl == 0 ? std::string("none (only puts with a ttl expire)")
                                                : std::to_string(e.expiry_ttl / 1000000) + " s";
      std::printf("expiry       of %s (id %u): default time to live %s, from sequence %llu on\n",
                  parent ? parent->name.c_str() : "default", e.id, ttl.c_str(),
                  static_cast<unsigned long long>(e.expiry_start));
    }
    if (!manifest.dropped.empty()) {
      std::string ids;
      for (auto id : manifest.dropped) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
      std::printf("dropped      collection id(s) %s: records not purged yet (the next writable open erases them)\n",
                  ids.c_str());
    }
  }
  for (const auto& ks : info.keyspaces) {
    if (prefixed && ks.name == stowage::detail::kDefaultKeyspace)
      std::printf("keyspace     %s: the records of every collection (records per collection: `stowage dump "
                  "--collection NAME`)\n", ks.name.c_str());
    else
      std::printf("keyspace     %s: key order %s, value type %s, schema version %u\n", ks.name.c_str(),
                  ks.key_order.empty() ? "(none yet)" : ks.key_order.c_str(),
                  ks.value_type.empty() ? "(unknown)" : ks.value_type.c_str(), ks.schema_version);
    std::printf("records      %llu live in %s (%s), %s\n", static_cast<unsigned long long>(ks_live(ks)),
                count_of(ks.chunks.size(), "chunk file", "chunk files").c_str(),
                count_of(ks.level_count(), "level", "levels").c_str(), human(ks.bytes).c_str());
    std::printf("levels       %s\n", levels_line(ks).c_str());
  }
  std::printf("wal          %llu operations in %zu segments, %s\n", static_cast<unsigned long long>(wal_ops), live_wal,
              human(info.wal_bytes).c_str());
  if (wal_puts == 0 && wal_erases == 0)
    std::printf("live         %llu (in chunks; the WAL changes no key)\n", static_cast<unsigned long long>(live_total));
  else
    std::printf("live         %llu (%llu in chunks; the WAL puts %llu keys and erases %llu, "
                "each looked up in the chunks: %+lld)\n",
                static_cast<unsigned long long>(live_total), static_cast<unsigned long long>(live_chunks),
                static_cast<unsigned long long>(wal_puts), static_cast<unsigned long long>(wal_erases),
                static_cast<long long>(wal_delta));
  std::printf("on disk      %s (MANIFEST %s)\n", human(info.disk_bytes).c_str(), human(info.manifest_bytes).c_str());
  std::printf("last seq     %llu\n", static_cast<unsigned long long>(last_seq));
  for (const auto& n : info.unnamed_files) std::printf("unneeded     %s (the next writable open deletes it)\n", n.c_str());
  return kOk;
}

int cmd_verify(const fs::path& dir, bool json, bool progress) {
  ProgressBar bar("verify", progress);
  stowage::VerifyOptions opt;
  opt.progress = bar.fn();
  stowage::VerifyReport rep = stowage::verify(dir, opt);
  // stowage::verify reads keys as bytes; in a Database's store an open also
  // refuses a WAL key of no collection, so that is checked here.
  std::string layout = "bare";
  try {
    auto fsys = stowage::default_file_system();
    for (auto& p : stowage::tool::wal_keys_of_no_collection(*fsys, dir)) rep.problems.push_back(std::move(p));
    layout = layout_name(stowage::detail::read_manifest(*fsys, dir).layout);
  } catch (const stowage::Error&) {
    // An unreadable MANIFEST: verify has listed it.
  }
  std::size_t chunks = 0, wal = 0;
  for (const auto& f : rep.files) {
    chunks += f.kind == "chunk";
    wal += f.kind == "wal";
  }
  unsigned levels = 0;  // levels holding files, in any keyspace
  for (unsigned l = 0; l < stowage::detail::kLevels; ++l) {
    bool any = false;
    for (const auto& ks : rep.info.keyspaces) any = any || (l < ks.levels.size() && ks.levels[l].files > 0);
    levels += any ? 1 : 0;
  }
  if (json) {
    Json problems = Json::array();
    for (const auto& p : rep.problems) problems.push_back({{"file", p.file.string()}, {"offset", p.offset}, {"what", p.what}});
    Json files = Json::array();
    for (const auto& f : rep.files)
      files.push_back({{"file", f.file.string()}, {"kind", f.kind}, {"bytes", f.bytes}, {"records", f.records},
                       {"blocks", f.blocks}, {"ok", f.ok}});
    print_json({{"dir", dir.string()}, {"ok", rep.ok()}, {"layout", layout}, {"chunk_records", rep.chunk_records},
                {"chunk_tombstones", rep.chunk_tombstones}, {"live_records", rep.live_records},
                {"live_checked", rep.live_checked}, {"levels", levels},
                {"wal_operations", rep.wal_operations}, {"bytes", rep.bytes}, {"passes", rep.passes},
                {"files", files}, {"problems", problems}, {"notes", rep.notes}});
  } else {
    for (const auto& p : rep.problems)
      std::printf("problem: %s at offset %llu: %s\n", p.file.c_str(), static_cast<unsigned long long>(p.offset),
                  p.what.c_str());
    for (const auto& n : rep.notes) std::printf("note: %s\n", n.c_str());
    const std::string live = rep.live_checked ? std::to_string(rep.live_records) + " live, as the MANIFEST counts"
                                              : std::string("live count not checked");
    std::printf("%s: %s in %s, %llu records (%llu tombstones; %s); %zu WAL segments, %llu operations; %s checked: %s\n",
                dir.c_str(), count_of(chunks, "chunk file", "chunk files").c_str(),
                count_of(levels, "level", "levels").c_str(), static_cast<unsigned long long>(rep.chunk_records),
                static_cast<unsigned long long>(rep.chunk_tombstones), live.c_str(), wal,
                static_cast<unsigned long long>(rep.wal_operations), human(rep.bytes).c_str(),
                rep.ok() ? "ok" : (std::to_string(rep.problems.size()) + " problem(s)").c_str());
  }
  return rep.ok() ? kOk : kFound;
}

/// What dump reads: collection `collection` of keyspace 'default' (its key
/// range, its prefix stripped, its types), or all of another keyspace.
struct DumpTarget {
  stowage::tool::RecordJson codec;
  std::string prefix;                 ///< stripped from every key read, added to --from and --to
  std::optional<std::string> lo, hi;  ///< the range read (nullopt: unbounded)
};

DumpTarget dump_target(const stowage::detail::Manifest& m, const fs::path& dir, const std::string& keyspace,
                       const std::string& collection) {
  if (keyspace != stowage::detail::kDefaultKeyspace) {
    if (collection != stowage::detail::kDefaultKeyspace)
      throw stowage::ValidationError("stowage: collections live in keyspace 'default'; --collection '" + collection +
                                     "' cannot be read from keyspace '" + keyspace + "'");
    return {codec_of(m, keyspace), "", std::nullopt, std::nullopt};
  }
  const auto c = stowage::tool::require_collection(m, dir, collection);
  return {codec_of(c), c.prefix, c.range_begin(), c.range_end()};
}

int cmd_dump(const fs::path& dir, const std::string& keyspace, const std::string& collection, const std::string& from,
             const std::string& to, std::uint64_t limit, bool progress) {
  auto fsys = stowage::default_file_system();
  stowage::tool::StoreReader reader(*fsys, dir, keyspace);
  DumpTarget t = dump_target(reader.manifest(), dir, keyspace, collection);
  const auto& codec = t.codec;
  if (!from.empty()) t.lo = t.prefix + key_argument(codec, from);
  if (!to.empty()) t.hi = t.prefix + key_argument(codec, to);
  // A collection that expires records: its values carry their times, and
  // the expired ones are left out (judged by this machine's clock).
  const auto parsed = stowage::detail::parse_collection_prefix(t.prefix);
  const bool timed = keyspace == stowage::detail::kDefaultKeyspace && parsed &&
                     reader.manifest().layout == stowage::detail::Layout::prefixed &&
                     reader.manifest().expiry(parsed->id) != nullptr;
  const std::uint64_t now = stowage::detail::history_micros(std::chrono::system_clock::now());
  ProgressBar bar("dump", progress);
  std::uint64_t n = 0;
  reader.scan(t.lo, t.hi, [&](std::string_view k, std::string_view v) {
    if (limit != 0 && n >= limit) return false;
    stowage::detail::Expiring e{0, v};
    if (timed) {
      e = stowage::detail::split_expiry(v, nullptr);
      if (stowage::detail::expired_at(e.expires, now)) return true;
    }
    auto record = codec.record(k.substr(t.prefix.size()), e.value);  // every key in the range has the prefix
    if (e.expires != 0) record["expires_us"] = e.expires;
    std::cout << record.dump() << '\n';
    ++n;
    return true;
  }, bar.fn());
  std::cout.flush();
  return kOk;
}

int cmd_load(const fs::path& dir, const std::string& keyspace, const std::string& collection,
             const std::string& input) {
  auto fsys = stowage::default_file_system();
  if (keyspace != stowage::detail::kDefaultKeyspace)
    throw stowage::ValidationError("stowage: load writes through the WAL, which holds records of keyspace 'default' "
                                   "only (the one Storage opens), so it cannot load keyspace '" + keyspace +
                                   "'; nothing was loaded");
  stowage::detail::FileLock lock(dir, false, std::chrono::milliseconds(0));
  const auto manifest = stowage::detail::read_manifest(*fsys, dir);
  const auto target = stowage::tool::require_collection(manifest, dir, collection);
  // Records written past the engine would make no versions: the history
  // would then answer get_at wrongly for them. Refused.
  if (manifest.history(target.id))
    throw stowage::ValidationError("stowage: collection '" + target.name + "' of " + dir.string() +
                                   " keeps history (Collection::keep_history), which load cannot write; load it "
                                   "through your program (put_batch), or stop its history first");
  // Its values carry expiry times (expiry.hpp), which load does not write.
  if (manifest.expiry(target.id))
    throw stowage::ValidationError("stowage: collection '" + target.name + "' of " + dir.string() +
                                   " expires records (Collection::set_default_ttl), which load cannot write; load it "
                                   "through your program (put_batch)");
  const auto codec = codec_of(target);
  std::ifstream file;
  if (!input.empty() && input != "-") {
    file.open(input);
    if (!file) throw stowage::IoError("stowage: cannot read " + input);
  }
  std::istream& in = input.empty() || input == "-" ? std::cin : file;
  std::vector<std::pair<std::string, std::optional<std::string>>> ops;
  std::string line;
  for (std::uint64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const Json j = Json::parse(line);
      if (!j.is_object()) throw stowage::ValidationError("stowage: not a JSON object");
      if (target.key_order.empty() && !j.contains("key_hex"))
        throw stowage::ValidationError("stowage: collection '" + target.name +
                                       "' has no types yet (no program has opened it with types): give its keys as "
                                       "key_hex and its values as value_hex");
      std::string key = target.prefix + codec.record_key(j);
      if (j.contains("erase") && j["erase"] == true)
        ops.emplace_back(std::move(key), std::nullopt);
      else
        ops.emplace_back(std::move(key), codec.record_value(j));
    } catch (const std::exception& e) {
      throw stowage::ValidationError("stowage: line " + std::to_string(number) + " of " +
                                     (input.empty() ? std::string("stdin") : input) + ": " + e.what() +
                                     "; nothing was loaded");
    }
  }
  if (ops.empty()) {
    std::printf("%s: nothing to load\n", dir.c_str());
    return kOk;
  }
  // Secondary indexes of the collection do not see these records: marked
  // for a rebuild first (nothing in a store without indexes).
  const std::size_t stale = stowage::tool::mark_indexes_stale(*fsys, dir, target.id);
  if (stale > 0)
    std::printf("%s: %s of collection '%s' marked not ready: each is rebuilt from the collection when your program "
                "next declares it\n",
                dir.c_str(), count_of(stale, "secondary index", "secondary indexes").c_str(), target.name.c_str());
  const auto [first, last] = stowage::tool::append_records(*fsys, dir, ops);
  const std::string into = target.prefix.empty() ? std::string() : " of collection '" + target.name + "'";
  std::printf("%s: loaded %zu records%s (sequences %llu..%llu) into the WAL; the next open replays them\n", dir.c_str(),
              ops.size(), into.c_str(), static_cast<unsigned long long>(first), static_cast<unsigned long long>(last));
  return kOk;
}

int cmd_compact(const fs::path& dir, bool progress) {
  // The engine takes the store's LOCK itself (LockError when another process holds it).
  ProgressBar bar("compact", progress);
  const auto r = stowage::tool::compact_store(dir, bar.fn());
  std::printf("%s: compacted %llu records: %llu files in %s, %s -> %llu files in %s, %s\n", dir.c_str(),
              static_cast<unsigned long long>(r.records), static_cast<unsigned long long>(r.files_before),
              count_of(r.levels_before, "level", "levels").c_str(), human(r.bytes_before).c_str(),
              static_cast<unsigned long long>(r.files_after), count_of(r.levels_after, "level", "levels").c_str(),
              human(r.bytes_after).c_str());
  for (const auto& k : r.kept)
    std::printf("%s: keyspace '%s' left as it is (the engine compacts only 'default', the keyspace Storage opens)\n",
                dir.c_str(), k.c_str());
  return kOk;
}

int cmd_backup(const fs::path& dir, const fs::path& dest) {
  auto fsys = stowage::default_file_system();
  // Shared, as a read_only open takes it: it only reads, so read_only
  // programs may hold the store meanwhile; a writer may not.
  stowage::detail::FileLock lock(dir, stowage::detail::FileLock::Mode::shared, std::chrono::milliseconds(0));
  const auto r = stowage::tool::backup_store(*fsys, dir, dest);
  std::printf("%s: backed up to %s: %llu chunk files (hard links), %llu WAL segments and MANIFEST, %s\n", dir.c_str(),
              dest.c_str(), static_cast<unsigned long long>(r.chunks), static_cast<unsigned long long>(r.wal_segments),
              human(r.bytes).c_str());
  return kOk;
}

int cmd_migrate_status(const fs::path& dir, bool json) {
  const stowage::MigrationStatus st = stowage::migration_status(dir);
  if (json) {
    print_json({{"dir", dir.string()}, {"format_version", st.format_version}, {"format_minor", st.format_minor},
                {"current_format_version", st.current_format_version}, {"schema_version", st.schema_version},
                {"value_type", st.value_type}, {"pending", st.pending}, {"up_to_date", st.up_to_date()}});
    return kOk;
  }
  std::printf("format       %u.%u (this program writes %u)\n", st.format_version, st.format_minor,
              st.current_format_version);
  std::printf("schema       version %u, value type %s\n", st.schema_version,
              st.value_type.empty() ? "(unknown)" : st.value_type.c_str());
  std::string pending;
  for (const auto& p : st.pending) pending += (pending.empty() ? "" : ", ") + p;
  std::printf("pending      %s\n", pending.empty() ? "none (value schema steps run when the program opens it)"
                                                   : (pending + " (run when a writable Storage opens it)").c_str());
  return kOk;
}

int cmd_repair(const fs::path& dir, const fs::path& out, bool progress) {
  auto fsys = stowage::default_file_system();
  stowage::detail::FileLock lock(dir, false, std::chrono::milliseconds(0));
  ProgressBar bar("repair", progress);
  const auto r = stowage::tool::repair_store(*fsys, dir, out, bar.fn());
  const auto manifest = stowage::detail::read_manifest(*fsys, out);
  for (const auto& l : r.lost) {
    // In the prefixed layout: "keys of collection 'a' ..." when both ends
    // are known and of one collection, else each key says its collection.
    const auto& lo = l.first && l.last ? l.first : l.after;
    const auto& hi = l.first && l.last ? l.last : l.before;
    std::optional<std::string> one;
    if (lo && hi) {
      one = collection_name_of(manifest, l.keyspace, *lo);
      if (one != collection_name_of(manifest, l.keyspace, *hi)) one.reset();
    }
    auto show = [&](const std::string& key) { return show_store_key(manifest, l.keyspace, key, !one); };
    std::string range = one ? "keys of collection '" + *one + "' " : std::string("keys ");
    if (l.first && l.last)
      range += show(*l.first) + " .. " + show(*l.last);
    else
      range += "after " + (l.after ? show(*l.after) : std::string("the start")) + " and before " +
               (l.before ? show(*l.before) : std::string("the end"));
    if (l.keyspace != stowage::detail::kDefaultKeyspace) range += " of keyspace '" + l.keyspace + "'";
    std::printf("lost: %s, %s at offset %llu: %s (%s)\n", l.file.c_str(), l.what.c_str(),
                static_cast<unsigned long long>(l.offset), range.c_str(),
                l.records ? (std::to_string(l.records) + " records").c_str() : "records not known");
  }
  std::string what = count_of(manifest.keyspaces.size(), "keyspace", "keyspaces");
  if (manifest.layout == stowage::detail::Layout::prefixed)
    what += "; prefixed layout, " +
            count_of(stowage::tool::collections_of(manifest).size(), "collection", "collections") + ": " +
            stowage::tool::collection_names(manifest);
  if (r.stale_indexes > 0)
    std::printf("note: %s marked not ready in %s (records were lost): each is rebuilt from its collection when "
                "your program next declares it\n",
                count_of(r.stale_indexes, "secondary index", "secondary indexes").c_str(), out.c_str());
  std::printf("%s: %llu records saved into %s (%s); %zu damaged range(s) lost\n", dir.c_str(),
              static_cast<unsigned long long>(r.records), out.c_str(), what.c_str(), r.lost.size());
  return r.lost.empty() ? kOk : kFound;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"stowage: look into, check, copy and repair stowage stores (exit status: 0 ok, 1 problems found, "
               "2 bad usage, 3 the store is held by another process, 4 the store is too damaged, 5 other errors)"};
  app.require_subcommand(1);
  fs::path dir, dest;
  bool json = false, no_progress = false, status = false;
  std::string from, to, input, keyspace(stowage::detail::kDefaultKeyspace),
      collection(stowage::detail::kDefaultKeyspace);
  std::uint64_t limit = 0;
  auto add_dir = [&](CLI::App* sub) { sub->add_option("DIR", dir, "the store's directory")->required(); };
  auto add_json = [&](CLI::App* sub) { sub->add_flag("--json", json, "print JSON instead of text"); };
  auto add_progress = [&](CLI::App* sub) {
    sub->add_flag("--no-progress", no_progress, "no progress bar (there is none unless stderr is a terminal)");
  };

  auto* stats = app.add_subcommand("stats", "live records, files and bytes per level, compression ratio, WAL, types, policies, "
                                         "the layout and the collections");
  add_dir(stats);
  add_json(stats);
  auto* verify = app.add_subcommand("verify", "check every checksum, block, key order and the live count (and, in a "
                                          "Database's store, that every WAL key is a collection's); exit 1 when "
                                          "anything is wrong");
  add_dir(verify);
  add_json(verify);
  add_progress(verify);
  auto* dump = app.add_subcommand("dump", "print the records of one collection as JSON lines {\"key\": ..., \"value\": ...}");
  add_dir(dump);
  add_json(dump);
  add_progress(dump);
  dump->add_option("--collection", collection,
                   "the collection to print (default: 'default'); in a Database's store (prefixed layout) only its "
                   "records, keys without their collection prefix, decoded with its own types");
  dump->add_option("--keyspace", keyspace,
                   "the MANIFEST keyspace to read (default: 'default', which holds every collection; the WAL is "
                   "merged into 'default' only; another keyspace is printed whole, without collections)");
  dump->add_option("--from", from, "first key of the collection, without its prefix (JSON, e.g. 42 or '\"abc\"'; hex when the key order is not known)");
  dump->add_option("--to", to, "stop before this key");
  dump->add_option("--limit", limit, "at most this many records");
  auto* load = app.add_subcommand("load", "append JSON-lines records (stowage dump's format) of one collection to the store's WAL");
  add_dir(load);
  load->add_option("--input", input, "read this file instead of stdin");
  load->add_option("--collection", collection,
                   "the collection to load into, which must exist (default: 'default'); in a Database's store each "
                   "key is written after the collection's prefix");
  load->add_option("--keyspace", keyspace, "the keyspace to load into: only 'default' (the WAL holds no other)");
  auto* compact = app.add_subcommand("compact", "merge every level into the last one with the engine, folding the WAL in");
  add_dir(compact);
  add_progress(compact);
  auto* backup = app.add_subcommand("backup", "a consistent copy of the store, taken under its LOCK");
  add_dir(backup);
  backup->add_option("DEST", dest, "a new directory for the copy")->required();
  auto* migrate = app.add_subcommand("migrate", "migration state (migrations themselves run when the program opens the store)");
  migrate->add_flag("--status", status, "print the format and schema versions and pending steps")->required();
  add_dir(migrate);
  add_json(migrate);
  auto* repair = app.add_subcommand("repair", "copy every record that verifies, of every keyspace and collection, into a new store "
                                          "(same layout and collections); list what was lost");
  add_dir(repair);
  repair->add_option("OUT", dest, "a new directory for the repaired store")->required();
  add_progress(repair);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kUsage;
  }
  const bool progress = !no_progress;
  // A StoreReader keeps every chunk file of a keyspace open (a consistent
  // view while a writer deletes files): allow as many as the hard limit.
  if (rlimit lim{}; ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  try {
    if (*stats) return cmd_stats(dir, json);
    if (*verify) return cmd_verify(dir, json, progress);
    if (*dump) return cmd_dump(dir, keyspace, collection, from, to, limit, progress);
    if (*load) return cmd_load(dir, keyspace, collection, input);
    if (*compact) return cmd_compact(dir, progress);
    if (*backup) return cmd_backup(dir, dest);
    if (*migrate) return cmd_migrate_status(dir, json);
    if (*repair) return cmd_repair(dir, dest, progress);
  } catch (const stowage::LockError& e) {
    std::fprintf(stderr, "%s\n(this subcommand writes, and the tool never writes to a store another process holds: "
                         "run it once that process has closed the store; stats, verify, dump and migrate --status "
                         "work meanwhile)\n",
                 e.what());
    return kLocked;
  } catch (const stowage::CorruptionError& e) {
    // Repair reads the MANIFEST too: for its damage, only the listing helps.
    if (e.file().filename() == "MANIFEST")
      std::fprintf(stderr, "%s\n(run `stowage verify %s` to list the damage)\n", e.what(), dir.c_str());
    else
      std::fprintf(stderr,
                   "%s\n(run `stowage verify %s` to list the damage, `stowage repair %s NEW_DIR` to save the rest)\n",
                   e.what(), dir.c_str(), dir.c_str());
    return kCorrupt;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return kFailed;
  }
  return kUsage;
}
