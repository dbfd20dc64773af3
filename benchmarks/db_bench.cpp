// db_bench.cpp: a LevelDB-db_bench-style benchmark of stowage.
//
// Conventions follow LevelDB's db_bench: 16-byte keys (the record number,
// zero-padded decimal), 100-byte values of which about half compresses away
// (each value is 50 random printable bytes followed by a repeat of them),
// 1,000,000 records, and a comma list of workloads run in order on the same
// store, where every fill starts from an empty directory. Random workloads
// draw keys from a fixed-seed generator over [0, num), each workload with its
// own seed, so a readrandom after a fillrandom finds about 63% of its keys
// (1 - 1/e of the key space was written), as in db_bench.
//
// Every fill includes the final checkpoint() + flush() in its time, so the
// figure covers getting the data into its files, not only into the WAL.
//
// The engine sits behind a small interface (Engine, below) so that other
// stores (LevelDB, RocksDB, LMDB, SQLite) can be added behind --engine later;
// only stowage is implemented for now.
#include <stowage/stowage.hpp>

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "bench_util.hpp"

namespace fs = std::filesystem;
using namespace stowage_bench;

namespace {

// ---- the engine interface ----------------------------------------------------

/// What every engine is opened with (the flags that are not engine-specific).
struct EngineConfig {
  std::uint64_t cache_bytes = std::uint64_t{64} << 20;
  std::uint64_t chunk_bytes = 0;  ///< 0: the engine's default (stowage only)
  bool sync = false;              ///< --durability=sync: every write durable when it returns
};

/// One named counter an engine reports after a workload.
using Counter = std::pair<std::string, std::uint64_t>;

/// A key-value store under test. Keys and values are byte strings.
class Engine {
 public:
  virtual ~Engine() = default;
  /// Short name, as given to --engine.
  virtual std::string name() const = 0;
  /// One line describing the build/configuration (printed in the header).
  virtual std::string description() const = 0;
  /// Opens (creating if needed) the store in dir.
  virtual void open(const fs::path& dir, const EngineConfig& config) = 0;
  /// Stores one record.
  virtual void put(const std::string& key, const std::string& value) = 0;
  /// Looks a key up; fills *value and returns true when found.
  virtual bool get(const std::string& key, std::string* value) = 0;
  /// Stores records as one atomic batch.
  virtual void put_batch(const std::vector<std::pair<std::string, std::string>>& records) = 0;
  /// Calls fn for every record in ascending key order.
  virtual void scan(const std::function<void(std::string_view, std::string_view)>& fn) = 0;
  /// Makes everything written so far durable and moves it into the store's
  /// long-term files (stowage: checkpoint() + flush()).
  virtual void flush() = 0;
  /// Closes the store (idempotent).
  virtual void close() = 0;
  /// Removes the store in dir; refuses (throws) when dir holds something that
  /// does not look like this engine's store. No-op when dir does not exist.
  virtual void destroy(const fs::path& dir) = 0;
  /// Engine counters after a workload (may be empty).
  virtual std::vector<Counter> counters() = 0;
};

// ---- stowage -----------------------------------------------------------------

class StowageEngine final : public Engine {
  using Store = stowage::Storage<std::string, std::string>;

 public:
  std::string name() const override { return "stowage"; }
  std::string description() const override {
    return "stowage::Storage<std::string, std::string> (BinarySerializer, Lz4Compression, LruEviction, ThreadLock)";
  }
  void open(const fs::path& dir, const EngineConfig& config) override {
    stowage::Options options;
    options.cache_bytes = static_cast<std::size_t>(config.cache_bytes);
    if (config.chunk_bytes != 0) options.chunk_bytes = static_cast<std::size_t>(config.chunk_bytes);
    options.durability = config.sync ? stowage::Durability::sync : stowage::Durability::none;
    db_ = std::make_unique<Store>(dir, std::move(options));
  }
  void put(const std::string& key, const std::string& value) override { db_->put(key, value); }
  bool get(const std::string& key, std::string* value) override {
    std::optional<std::string> v = db_->get(key);
    if (!v) return false;
    *value = std::move(*v);
    return true;
  }
  void put_batch(const std::vector<std::pair<std::string, std::string>>& records) override {
    db_->put_batch(records);
  }
  void scan(const std::function<void(std::string_view, std::string_view)>& fn) override {
    for (const auto& [k, v] : db_->scan()) fn(k, v);
  }
  void flush() override {
    db_->checkpoint();
    db_->flush();
  }
  void close() override {
    if (!db_) return;
    db_->close();
    db_.reset();
  }
  void destroy(const fs::path& dir) override {
    std::error_code ec;
    if (!fs::exists(dir, ec)) return;
    if (!fs::is_directory(dir, ec)) throw std::runtime_error(dir.string() + " exists and is not a directory");
    if (!fs::is_empty(dir, ec) && !fs::exists(dir / "MANIFEST", ec))
      throw std::runtime_error("refusing to wipe " + dir.string() +
                               ": it is not empty and holds no MANIFEST, so it does not look like a stowage store");
    fs::remove_all(dir);
  }
  std::vector<Counter> counters() override {
    stowage::Stats s = db_->stats();
    return {{"records", s.records},
            {"chunks", s.chunks},
            {"cache_bytes", s.cache_bytes},
            {"cache_capacity", s.cache_capacity},
            {"write_buffer_bytes", s.write_buffer_bytes},
            {"cache_hits", s.cache_hits},
            {"cache_misses", s.cache_misses},
            {"cache_evictions", s.cache_evictions},
            {"wal_bytes", s.wal_bytes},
            {"disk_bytes", s.disk_bytes},
            {"checkpoints", s.checkpoints},
            {"last_sequence", s.last_sequence}};
  }

 private:
  std::unique_ptr<Store> db_;
};

std::unique_ptr<Engine> make_engine(std::string_view name) {
  if (name == "stowage") return std::make_unique<StowageEngine>();
  return nullptr;
}
constexpr const char* kEngines = "stowage";

// ---- flags -------------------------------------------------------------------

struct Flags {
  std::string benchmarks = "fillseq,fillrandom,readrandom,readseq";
  std::string engine = "stowage";
  std::uint64_t num = 1000000;
  std::optional<std::uint64_t> reads;  // default: num
  std::uint64_t value_size = 100;
  double compression_ratio = 0.5;
  std::uint64_t batch_size = 1000;
  std::uint64_t seed = 301;
  EngineConfig config;
  std::string db;  // empty: a fresh directory under /tmp
  bool keep = false;
  bool use_existing_db = false;
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: db_bench [flags]\n"
               "  --benchmarks=LIST      comma list, run in order on the same store (default\n"
               "                         fillseq,fillrandom,readrandom,readseq). Known:\n"
               "                           fillseq     write num records in key order into an empty store\n"
               "                           fillrandom  write num records with random keys into an empty store\n"
               "                           fillbatch   fillseq through put_batch of --batch_size records\n"
               "                           overwrite   write num records with random keys into the current store\n"
               "                           readrandom  get --reads random keys (counts found/total)\n"
               "                           readseq     scan every record in key order\n"
               "  --num=N                records per workload (default 1000000)\n"
               "  --reads=N              gets for readrandom (default --num)\n"
               "  --value_size=N         value bytes (default 100)\n"
               "  --compression_ratio=F  fraction of each value that is random (default 0.5)\n"
               "  --batch_size=N         records per put_batch in fillbatch (default 1000)\n"
               "  --cache_bytes=N        the engine's memory budget; K/M/G suffixes (default 64M)\n"
               "  --chunk_bytes=N        stowage Options::chunk_bytes (default: the engine's, 256K)\n"
               "  --durability=none|sync (default none)\n"
               "  --engine=NAME          engine under test (available: %s)\n"
               "  --seed=N               base seed of the key and value generators (default 301)\n"
               "  --db=DIR               store directory (default: a fresh directory under /tmp,\n"
               "                         removed at the end unless --keep; a DIR given here is kept).\n"
               "                         Fills wipe it first: it must be empty or hold a store.\n"
               "  --use_existing_db      do not wipe --db before the first workload\n"
               "  --keep                 keep the default temporary directory\n"
               "  --help                 this text\n",
               kEngines);
}

[[noreturn]] void bad_flag(const std::string& msg) {
  std::fprintf(stderr, "db_bench: %s\n\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view name = arg, value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto need_value = [&] {
      if (!has_value) bad_flag("flag " + std::string(name) + " needs a value (" + std::string(name) + "=...)");
    };
    auto no_value = [&] {
      if (has_value) bad_flag("flag " + std::string(name) + " takes no value");
    };
    auto number = [&](bool allow_zero = false) {
      need_value();
      std::uint64_t v = 0;
      if (!parse_size(value, v) || (!allow_zero && v == 0))
        bad_flag("bad value for " + std::string(name) + ": '" + std::string(value) + "' (a positive integer)");
      return v;
    };
    if (name == "--help" || name == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (name == "--benchmarks") {
      need_value();
      f.benchmarks = value;
    } else if (name == "--engine") {
      need_value();
      f.engine = value;
    } else if (name == "--num") {
      f.num = number();
    } else if (name == "--reads") {
      f.reads = number();
    } else if (name == "--value_size") {
      f.value_size = number();
    } else if (name == "--compression_ratio") {
      need_value();
      char* end = nullptr;
      std::string text(value);
      double r = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !(r > 0.0 && r <= 1.0))
        bad_flag("bad value for --compression_ratio: '" + text + "' (a number in (0, 1])");
      f.compression_ratio = r;
    } else if (name == "--batch_size") {
      f.batch_size = number();
    } else if (name == "--seed") {
      f.seed = number(/*allow_zero=*/true);
    } else if (name == "--cache_bytes") {
      f.config.cache_bytes = number();
    } else if (name == "--chunk_bytes") {
      f.config.chunk_bytes = number();
    } else if (name == "--durability") {
      need_value();
      if (value == "none") {
        f.config.sync = false;
      } else if (value == "sync") {
        f.config.sync = true;
      } else {
        bad_flag("bad value for --durability: '" + std::string(value) + "' (none or sync)");
      }
    } else if (name == "--db") {
      need_value();
      if (value.empty()) bad_flag("--db needs a directory");
      f.db = value;
    } else if (name == "--keep") {
      no_value();
      f.keep = true;
    } else if (name == "--use_existing_db") {
      no_value();
      f.use_existing_db = true;
    } else {
      bad_flag("unknown flag '" + std::string(arg) + "'");
    }
  }
  return f;
}

std::vector<std::string> split_list(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

// ---- data ----------------------------------------------------------------------

/// The record number as a 16-byte zero-padded decimal key.
void make_key(std::uint64_t n, std::string& key) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llu", static_cast<unsigned long long>(n));
  key.assign(buf, 16);
}
constexpr std::uint64_t kKeySize = 16;

/// Values in the manner of db_bench's RandomGenerator: a pool of about 1 MiB
/// made of pieces of value_size bytes, each piece ratio * value_size random
/// printable bytes repeated to fill it; values are consecutive slices.
class ValueGenerator {
 public:
  ValueGenerator(std::uint64_t value_size, double ratio, std::uint64_t seed) : size_(value_size) {
    std::uint64_t state = seed;
    std::uint64_t target = std::max<std::uint64_t>(std::uint64_t{1} << 20, value_size * 2);
    std::string raw;
    while (pool_.size() < target) {
      std::uint64_t raw_len = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(static_cast<double>(size_) * ratio));
      raw.clear();
      for (std::uint64_t i = 0; i < raw_len; ++i) raw.push_back(static_cast<char>(' ' + uniform(state, 95)));
      for (std::uint64_t i = 0; i < size_; ++i) pool_.push_back(raw[i % raw_len]);
    }
  }
  void next(std::string& value) {
    if (pos_ + size_ > pool_.size()) pos_ = 0;
    value.assign(pool_.data() + pos_, size_);
    pos_ += size_;
  }

 private:
  std::uint64_t size_;
  std::string pool_;
  std::uint64_t pos_ = 0;
};

// ---- workloads -------------------------------------------------------------------

struct Result {
  std::string workload;
  std::uint64_t ops = 0;
  double seconds = 0;
  std::uint64_t bytes = 0;                // key + value bytes moved
  std::optional<std::uint64_t> found;     // reads
  std::optional<std::uint64_t> disk_bytes;  // fills (and overwrite): after the final checkpoint
  std::optional<std::uint64_t> disk_files;
  bool includes_flush = false;
  std::uint64_t phase_peak_rss = 0;
  std::uint64_t peak_rss = 0;
  std::uint64_t rss_after = 0;
  std::vector<Counter> counters;
};

class Benchmark {
 public:
  Benchmark(Flags flags, std::unique_ptr<Engine> engine, fs::path dir)
      : f_(std::move(flags)),
        engine_(std::move(engine)),
        dir_(std::move(dir)),
        values_(f_.value_size, f_.compression_ratio, f_.seed) {}

  void start() {
    if (!f_.use_existing_db) engine_->destroy(dir_);
    engine_->open(dir_, f_.config);
  }
  void finish() { engine_->close(); }

  /// Runs one workload; nullopt for an unknown name.
  std::optional<Result> run(const std::string& name, std::uint64_t index) {
    Result r;
    r.workload = name;
    std::uint64_t seed = f_.seed + 1000 * (index + 1);
    if (name == "fillseq" || name == "fillrandom" || name == "fillbatch") {
      fresh();
      rss_.begin_phase();
      Stopwatch sw;
      if (name == "fillbatch") {
        fill_batch(r);
      } else {
        fill(r, name == "fillrandom", seed);
      }
      engine_->flush();
      r.seconds = sw.seconds();
      r.includes_flush = true;
    } else if (name == "overwrite") {
      rss_.begin_phase();
      Stopwatch sw;
      fill(r, true, seed);
      engine_->flush();
      r.seconds = sw.seconds();
      r.includes_flush = true;
    } else if (name == "readrandom") {
      rss_.begin_phase();
      Stopwatch sw;
      read_random(r, seed);
      r.seconds = sw.seconds();
    } else if (name == "readseq") {
      rss_.begin_phase();
      Stopwatch sw;
      read_seq(r);
      r.seconds = sw.seconds();
    } else {
      return std::nullopt;
    }
    r.phase_peak_rss = rss_.phase_peak();
    r.peak_rss = rss_.overall();
    r.rss_after = current_rss();
    if (r.includes_flush) {
      r.disk_bytes = directory_bytes(dir_);
      r.disk_files = directory_files(dir_);
    }
    r.counters = engine_->counters();
    return r;
  }

  PeakRss& rss() { return rss_; }

 private:
  void fresh() {
    engine_->close();
    engine_->destroy(dir_);
    engine_->open(dir_, f_.config);
  }

  void fill(Result& r, bool random, std::uint64_t seed) {
    std::string key, value;
    std::uint64_t state = seed;
    for (std::uint64_t i = 0; i < f_.num; ++i) {
      make_key(random ? uniform(state, f_.num) : i, key);
      values_.next(value);
      engine_->put(key, value);
    }
    r.ops = f_.num;
    r.bytes = f_.num * (kKeySize + f_.value_size);
  }

  void fill_batch(Result& r) {
    std::vector<std::pair<std::string, std::string>> batch;
    batch.reserve(static_cast<std::size_t>(f_.batch_size));
    std::string key, value;
    for (std::uint64_t i = 0; i < f_.num;) {
      batch.clear();
      for (std::uint64_t j = 0; j < f_.batch_size && i < f_.num; ++j, ++i) {
        make_key(i, key);
        values_.next(value);
        batch.emplace_back(key, value);
      }
      engine_->put_batch(batch);
    }
    r.ops = f_.num;
    r.bytes = f_.num * (kKeySize + f_.value_size);
  }

  void read_random(Result& r, std::uint64_t seed) {
    std::uint64_t reads = f_.reads.value_or(f_.num);
    std::string key, value;
    std::uint64_t state = seed, found = 0, bytes = 0;
    for (std::uint64_t i = 0; i < reads; ++i) {
      make_key(uniform(state, f_.num), key);
      if (engine_->get(key, &value)) {
        ++found;
        bytes += key.size() + value.size();
      }
    }
    r.ops = reads;
    r.found = found;
    r.bytes = bytes;
  }

  void read_seq(Result& r) {
    std::uint64_t n = 0, bytes = 0;
    engine_->scan([&](std::string_view k, std::string_view v) {
      ++n;
      bytes += k.size() + v.size();
    });
    r.ops = n;
    r.found = n;
    r.bytes = bytes;
  }

  Flags f_;
  std::unique_ptr<Engine> engine_;
  fs::path dir_;
  ValueGenerator values_;
  PeakRss rss_;
};

// ---- output ------------------------------------------------------------------------

double ops_per_sec(const Result& r) { return r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0.0; }
double micros_per_op(const Result& r) {
  return r.ops > 0 ? r.seconds * 1e6 / static_cast<double>(r.ops) : 0.0;
}
double mb_per_sec(const Result& r) {
  return r.seconds > 0 ? static_cast<double>(r.bytes) / (1024.0 * 1024.0) / r.seconds : 0.0;
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void print_progress_line(const Result& r) {
  std::printf("%-11s : %10.3f micros/op; %7.1f MB/s; %10.0f ops/s", r.workload.c_str(), micros_per_op(r),
              mb_per_sec(r), ops_per_sec(r));
  if (r.found) std::printf(" (%llu of %llu found)", static_cast<unsigned long long>(*r.found),
                           static_cast<unsigned long long>(r.ops));
  if (r.disk_bytes) std::printf(" disk %s", mib(*r.disk_bytes).c_str());
  std::printf("; peak RSS %s\n", mib(r.peak_rss).c_str());
  std::printf("              stats:");
  for (const auto& [name, value] : r.counters) std::printf(" %s=%llu", name.c_str(), static_cast<unsigned long long>(value));
  std::printf("\n");
  std::fflush(stdout);
}

void print_table(const std::vector<Result>& results) {
  std::printf("\n%-11s %9s %8s %12s %11s %8s %10s %14s %10s %10s\n", "workload", "ops", "seconds", "ops/s", "micros/op",
              "MB/s", "disk", "found/total", "phase RSS", "peak RSS");
  for (const auto& r : results) {
    std::string found = "-";
    if (r.found) found = std::to_string(*r.found) + "/" + std::to_string(r.ops);
    std::string disk = r.disk_bytes ? mib(*r.disk_bytes) : "-";
    std::printf("%-11s %9llu %8.2f %12.0f %11.3f %8.1f %10s %14s %10s %10s\n", r.workload.c_str(),
                static_cast<unsigned long long>(r.ops), r.seconds, ops_per_sec(r), micros_per_op(r), mb_per_sec(r),
                disk.c_str(), found.c_str(), mib(r.phase_peak_rss).c_str(), mib(r.peak_rss).c_str());
  }
  std::printf("(fills include the final checkpoint+flush in their time; disk = sum of the file sizes in the\n"
              " directory after it; phase RSS = peak RSS during the workload, peak RSS = process peak so far;\n"
              " MB = 2^20 bytes of key+value)\n\n");
}

void print_json(const Flags& f, const std::string& engine, const Result& r) {
  std::printf("{\"engine\":\"%s\",\"workload\":\"%s\",\"num\":%llu,\"ops\":%llu,\"seconds\":%.6f,"
              "\"ops_per_sec\":%.1f,\"micros_per_op\":%.4f,\"mb_per_sec\":%.2f",
              json_escape(engine).c_str(), json_escape(r.workload).c_str(), static_cast<unsigned long long>(f.num),
              static_cast<unsigned long long>(r.ops), r.seconds, ops_per_sec(r), micros_per_op(r), mb_per_sec(r));
  if (r.found) std::printf(",\"found\":%llu,\"total\":%llu", static_cast<unsigned long long>(*r.found),
                           static_cast<unsigned long long>(r.ops));
  if (r.disk_bytes) std::printf(",\"disk_bytes\":%llu", static_cast<unsigned long long>(*r.disk_bytes));
  if (r.disk_files) std::printf(",\"disk_files\":%llu", static_cast<unsigned long long>(*r.disk_files));
  std::printf(",\"includes_final_flush\":%s,\"peak_rss_bytes\":%llu,\"phase_peak_rss_bytes\":%llu,"
              "\"key_size\":%llu,\"value_size\":%llu,\"cache_bytes\":%llu,\"durability\":\"%s\",\"engine_stats\":{",
              r.includes_flush ? "true" : "false", static_cast<unsigned long long>(r.peak_rss),
              static_cast<unsigned long long>(r.phase_peak_rss), static_cast<unsigned long long>(kKeySize),
              static_cast<unsigned long long>(f.value_size), static_cast<unsigned long long>(f.config.cache_bytes),
              f.config.sync ? "sync" : "none");
  bool first = true;
  for (const auto& [name, value] : r.counters) {
    std::printf("%s\"%s\":%llu", first ? "" : ",", json_escape(name).c_str(), static_cast<unsigned long long>(value));
    first = false;
  }
  std::printf("}}\n");
}

fs::path make_temp_dir() {
  std::error_code ec;
  fs::path base = fs::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string pattern = (base / "stowage_db_bench-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  return fs::path(buf.data());
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = parse_flags(argc, argv);
  std::vector<std::string> workloads = split_list(flags.benchmarks);
  if (workloads.empty()) bad_flag("--benchmarks is empty");
  for (const auto& w : workloads) {
    if (w != "fillseq" && w != "fillrandom" && w != "fillbatch" && w != "overwrite" && w != "readrandom" &&
        w != "readseq")
      bad_flag("unknown benchmark '" + w + "'");
  }
  std::unique_ptr<Engine> engine = make_engine(flags.engine);
  if (!engine) bad_flag("unknown engine '" + flags.engine + "' (available: " + kEngines + ")");

  std::uint64_t baseline_rss = current_rss();
  fs::path temp_root;
  fs::path dir;
  int status = 0;
  try {
    if (flags.db.empty()) {
      // The store goes in a subdirectory of the fresh temporary directory.
      temp_root = make_temp_dir();
      dir = temp_root / "db";
    } else {
      dir = flags.db;
    }
    std::string engine_name = engine->name();
    std::printf("db_bench (%s)\n", engine_name.c_str());
    std::printf("Engine:      %s\n", engine->description().c_str());
    std::printf("Keys:        %llu bytes each\n", static_cast<unsigned long long>(kKeySize));
    std::printf("Values:      %llu bytes each (%llu bytes after compression at ratio %.2f)\n",
                static_cast<unsigned long long>(flags.value_size),
                static_cast<unsigned long long>(static_cast<double>(flags.value_size) * flags.compression_ratio + 0.5),
                flags.compression_ratio);
    std::printf("Entries:     %llu\n", static_cast<unsigned long long>(flags.num));
    std::printf("RawSize:     %.1f MB (estimated)\n",
                static_cast<double>((kKeySize + flags.value_size) * flags.num) / 1048576.0);
    std::printf("FileSize:    %.1f MB (estimated)\n",
                (static_cast<double>(kKeySize) + static_cast<double>(flags.value_size) * flags.compression_ratio) *
                    static_cast<double>(flags.num) / 1048576.0);
    std::printf("Cache:       %s (cache_bytes)%s\n", mib(flags.config.cache_bytes).c_str(),
                flags.config.chunk_bytes ? (", chunk_bytes " + std::to_string(flags.config.chunk_bytes)).c_str() : "");
    std::printf("Durability:  %s\n", flags.config.sync ? "sync (every write fdatasynced)" : "none");
    std::printf("Directory:   %s%s\n", dir.string().c_str(),
                flags.db.empty() ? (flags.keep ? " (temporary, kept)" : " (temporary, removed at the end)") : "");
    std::printf("Baseline RSS: %s\n", mib(baseline_rss).c_str());
    std::printf("Fills include the final checkpoint()+flush() in their time.\n");
    std::printf("------------------------------------------------\n");
    std::fflush(stdout);

    Benchmark bench(flags, std::move(engine), dir);
    bench.start();
    std::vector<Result> results;
    for (std::size_t i = 0; i < workloads.size(); ++i) {
      auto r = bench.run(workloads[i], i);
      if (!r) bad_flag("unknown benchmark '" + workloads[i] + "'");
      print_progress_line(*r);
      results.push_back(std::move(*r));
    }
    bench.finish();
    if (!bench.rss().resets())
      std::printf("note: /proc/self/clear_refs is not writable here, so phase RSS is the process peak so far\n");
    print_table(results);
    for (const auto& r : results) print_json(flags, engine_name, r);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "db_bench: error: %s\n", e.what());
    status = 1;
  }
  if (!temp_root.empty()) {
    std::error_code ec;
    if (flags.keep) {
      std::fprintf(stderr, "db_bench: kept %s\n", dir.string().c_str());
    } else {
      fs::remove_all(temp_root, ec);
      if (ec) std::fprintf(stderr, "db_bench: could not remove %s: %s\n", temp_root.string().c_str(), ec.message().c_str());
    }
  }
  return status;
}
