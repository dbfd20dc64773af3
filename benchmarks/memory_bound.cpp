// memory_bound.cpp: checks that a store's memory stays bounded by
// Options::cache_bytes however much data it holds.
//
// Writes --num records (default 1,000,000; 8-byte keys, 100-byte values about
// half compressible) into a Storage<std::uint64_t, std::string> opened with a
// small cache (default 4 MiB), closes it, reopens it, reads every key back
// (verifying each value), and scans the whole store (verifying order, count
// and values). After each phase it prints the time, the peak RSS of the
// phase and of the process, and stats().
//
// Prints PASS and exits 0 when the process's peak RSS stayed within
// cache_bytes + 32 MiB (the project's memory goal; the 32 MiB covers the
// binary, libc and the store's fixed overheads) and every record was read
// back; else prints FAIL and exits 1. Sanitizer builds (STOWAGE_SANITIZE)
// report the RSS limit without enforcing it.
//
// Key order: --order=sequential (default) or --order=random (a fixed-seed
// permutation of [0, num)). With a 4 MiB budget the write buffer holds about
// 5,000 records, and every checkpoint rewrites each chunk its records land
// in; in random order that is nearly every chunk, so random order costs
// O(num^2 / buffer) bytes of chunk writes and is much slower.
#include <stowage/stowage.hpp>

#include <stdlib.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
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

using Store = stowage::Storage<std::uint64_t, std::string>;

constexpr std::uint64_t kSlackBytes = std::uint64_t{32} << 20;  // the project's memory goal: cache_bytes + 32 MiB

// Sanitizer builds (STOWAGE_SANITIZE, which defines STOWAGE_SANITIZED) inflate
// RSS with shadow memory and quarantines: there the limit is reported, not enforced.
#ifdef STOWAGE_SANITIZED
constexpr bool kEnforceRssLimit = false;
#else
constexpr bool kEnforceRssLimit = true;
#endif

struct Flags {
  std::uint64_t num = 1000000;
  std::uint64_t cache_bytes = std::uint64_t{4} << 20;
  std::uint64_t value_size = 100;
  bool random = false;
  std::uint64_t seed = 42;
  std::string db;
  bool keep = false;
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: memory_bound [flags]\n"
               "  --num=N                   records (default 1000000)\n"
               "  --cache_bytes=N           Options::cache_bytes; K/M/G suffixes (default 4M)\n"
               "  --value_size=N            value bytes (default 100)\n"
               "  --order=sequential|random insertion (and read-back) order (default sequential)\n"
               "  --seed=N                  seed of the random order and the values (default 42)\n"
               "  --db=DIR                  store directory; must not exist or be empty (default: a fresh\n"
               "                            directory under /tmp, removed at the end unless --keep)\n"
               "  --keep                    keep the store directory\n"
               "  --help                    this text\n"
               "PASS when peak RSS <= cache_bytes + 32 MiB and every record reads back; else FAIL (exit 1).\n");
}

[[noreturn]] void bad_flag(const std::string& msg) {
  std::fprintf(stderr, "memory_bound: %s\n\n", msg.c_str());
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
    auto number = [&](bool allow_zero = false) {
      if (!has_value) bad_flag("flag " + std::string(name) + " needs a value (" + std::string(name) + "=...)");
      std::uint64_t v = 0;
      if (!parse_size(value, v) || (!allow_zero && v == 0))
        bad_flag("bad value for " + std::string(name) + ": '" + std::string(value) + "' (a positive integer)");
      return v;
    };
    if (name == "--help" || name == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (name == "--num") {
      f.num = number();
    } else if (name == "--cache_bytes") {
      f.cache_bytes = number();
    } else if (name == "--value_size") {
      f.value_size = number();
    } else if (name == "--seed") {
      f.seed = number(/*allow_zero=*/true);
    } else if (name == "--order") {
      if (value == "sequential") {
        f.random = false;
      } else if (value == "random") {
        f.random = true;
      } else {
        bad_flag("bad value for --order: '" + std::string(value) + "' (sequential or random)");
      }
    } else if (name == "--db") {
      if (!has_value || value.empty()) bad_flag("--db needs a directory");
      f.db = value;
    } else if (name == "--keep") {
      if (has_value) bad_flag("--keep takes no value");
      f.keep = true;
    } else {
      bad_flag("unknown flag '" + std::string(arg) + "'");
    }
  }
  return f;
}

/// The value stored under key: value_size bytes, the first half random
/// printable bytes derived from the key, the second half a repeat of them.
void value_for(std::uint64_t key, std::uint64_t seed, std::uint64_t size, std::string& out) {
  std::uint64_t state = key * 0x9E3779B97F4A7C15ULL ^ seed;
  std::uint64_t raw = size / 2 > 0 ? size / 2 : 1;
  out.resize(size);
  std::uint64_t bits = 0;
  int left = 0;
  for (std::uint64_t i = 0; i < raw && i < size; ++i) {
    if (left == 0) {
      bits = splitmix64(state);
      left = 8;
    }
    out[i] = static_cast<char>(' ' + (bits & 0xFF) % 95);
    bits >>= 8;
    --left;
  }
  for (std::uint64_t i = raw; i < size; ++i) out[i] = out[i % raw];
}

void print_stats(const Store& db) {
  stowage::Stats s = db.stats();
  std::printf("    stats: records=%llu chunks=%llu cache_bytes=%llu cache_capacity=%llu write_buffer_bytes=%llu\n"
              "           cache_hits=%llu cache_misses=%llu cache_evictions=%llu wal_bytes=%llu disk_bytes=%llu\n"
              "           checkpoints=%llu last_sequence=%llu\n",
              static_cast<unsigned long long>(s.records), static_cast<unsigned long long>(s.chunks),
              static_cast<unsigned long long>(s.cache_bytes), static_cast<unsigned long long>(s.cache_capacity),
              static_cast<unsigned long long>(s.write_buffer_bytes), static_cast<unsigned long long>(s.cache_hits),
              static_cast<unsigned long long>(s.cache_misses), static_cast<unsigned long long>(s.cache_evictions),
              static_cast<unsigned long long>(s.wal_bytes), static_cast<unsigned long long>(s.disk_bytes),
              static_cast<unsigned long long>(s.checkpoints), static_cast<unsigned long long>(s.last_sequence));
}

struct Phase {
  std::string name;
  double seconds = 0;
  std::uint64_t ops = 0;
  std::uint64_t phase_peak = 0;
  std::uint64_t overall_peak = 0;
  std::uint64_t rss_after = 0;
};

class Reporter {
 public:
  void begin() {
    rss_.begin_phase();
    sw_ = Stopwatch();
  }
  Phase end(const std::string& name, std::uint64_t ops) {
    Phase p;
    p.name = name;
    p.seconds = sw_.seconds();
    p.ops = ops;
    p.phase_peak = rss_.phase_peak();
    p.overall_peak = rss_.overall();
    p.rss_after = current_rss();
    std::printf("%-8s %8.2f s", name.c_str(), p.seconds);
    if (ops > 0 && p.seconds > 0)
      std::printf("  %10.0f ops/s  %8.3f micros/op", static_cast<double>(ops) / p.seconds,
                  p.seconds * 1e6 / static_cast<double>(ops));
    std::printf("  | phase peak RSS %s, RSS after %s, process peak %s\n", mib(p.phase_peak).c_str(),
                mib(p.rss_after).c_str(), mib(p.overall_peak).c_str());
    std::fflush(stdout);
    phases_.push_back(p);
    return p;
  }
  PeakRss& rss() { return rss_; }
  const std::vector<Phase>& phases() const { return phases_; }

 private:
  PeakRss rss_;
  Stopwatch sw_;
  std::vector<Phase> phases_;
};

fs::path make_temp_dir() {
  std::error_code ec;
  fs::path base = fs::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string pattern = (base / "stowage_memory_bound-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  return fs::path(buf.data());
}

}  // namespace

int main(int argc, char** argv) {
  Flags f = parse_flags(argc, argv);
  const std::uint64_t baseline_rss = current_rss();
  const std::uint64_t baseline_hwm = proc_status_bytes("VmHWM");
  const std::uint64_t limit = f.cache_bytes + kSlackBytes;

  fs::path temp_root, dir;
  bool ok = true;
  int status = 0;
  try {
    if (f.db.empty()) {
      temp_root = make_temp_dir();
      dir = temp_root / "db";
    } else {
      dir = f.db;
      std::error_code ec;
      if (fs::exists(dir, ec) && !fs::is_empty(dir, ec))
        throw std::runtime_error("--db=" + f.db + " exists and is not empty; give a new or empty directory");
    }
    std::printf("memory_bound: %llu records, Storage<std::uint64_t, std::string>, %llu-byte values, order %s\n",
                static_cast<unsigned long long>(f.num), static_cast<unsigned long long>(f.value_size),
                f.random ? "random (fixed-seed permutation)" : "sequential");
    std::printf("cache_bytes %s (%llu); limit cache_bytes + 32 MiB = %s\n", mib(f.cache_bytes).c_str(),
                static_cast<unsigned long long>(f.cache_bytes), mib(limit).c_str());
    std::printf("directory %s\n", dir.string().c_str());
    std::printf("baseline RSS %s (VmRSS at start), VmHWM at start %s\n", mib(baseline_rss).c_str(),
                mib(baseline_hwm).c_str());
    std::fflush(stdout);

    stowage::Options options;
    options.cache_bytes = static_cast<std::size_t>(f.cache_bytes);
    Permutation perm(f.num, f.seed);
    auto key_at = [&](std::uint64_t i) { return f.random ? perm(i) : i; };
    Reporter rep;
    std::string value, expected;

    // 1. load: every record, then checkpoint + flush (included in the time).
    {
      rep.begin();
      Store db(dir, options);
      Stopwatch load_clock;
      const std::uint64_t step = f.num >= 10 ? f.num / 10 : 1;
      for (std::uint64_t i = 0; i < f.num; ++i) {
        std::uint64_t k = key_at(i);
        value_for(k, f.seed, f.value_size, value);
        db.put(k, value);
        if ((i + 1) % step == 0 && i + 1 < f.num) {
          // Progress, so a slow load shows where its time goes.
          stowage::Stats s = db.stats();
          std::printf("    load %3llu%%: %8.2f s, %llu chunks, %llu checkpoints, RSS %s\n",
                      static_cast<unsigned long long>((i + 1) * 100 / f.num), load_clock.seconds(),
                      static_cast<unsigned long long>(s.chunks), static_cast<unsigned long long>(s.checkpoints),
                      mib(current_rss()).c_str());
          std::fflush(stdout);
        }
      }
      db.checkpoint();
      db.flush();
      rep.end("load", f.num);
      print_stats(db);
      rep.begin();
      db.close();
      rep.end("close", 0);
    }
    std::printf("    disk: %s in %llu files\n", mib(directory_bytes(dir)).c_str(),
                static_cast<unsigned long long>(directory_files(dir)));

    // 2. reopen, read every key back (in insertion order), scan everything.
    rep.begin();
    Store db(dir, options);
    rep.end("reopen", 0);
    print_stats(db);

    rep.begin();
    std::uint64_t found = 0, missing = 0, wrong = 0;
    for (std::uint64_t i = 0; i < f.num; ++i) {
      std::uint64_t k = key_at(i);
      std::optional<std::string> got = db.get(k);
      if (!got) {
        if (missing++ < 5) std::printf("    missing key %llu\n", static_cast<unsigned long long>(k));
        continue;
      }
      value_for(k, f.seed, f.value_size, expected);
      if (*got != expected) {
        if (wrong++ < 5) std::printf("    wrong value under key %llu\n", static_cast<unsigned long long>(k));
        continue;
      }
      ++found;
    }
    rep.end("read", f.num);
    std::printf("    read back %llu of %llu (missing %llu, wrong %llu)\n", static_cast<unsigned long long>(found),
                static_cast<unsigned long long>(f.num), static_cast<unsigned long long>(missing),
                static_cast<unsigned long long>(wrong));
    print_stats(db);
    if (found != f.num) ok = false;

    rep.begin();
    std::uint64_t scanned = 0, scan_bad = 0;
    for (const auto& [k, v] : db.scan()) {
      // Keys 0..num-1 each once, ascending: the n-th record has key n.
      value_for(k, f.seed, f.value_size, expected);
      if (k != scanned || v != expected) {
        if (scan_bad++ < 5)
          std::printf("    scan: record %llu has key %llu%s\n", static_cast<unsigned long long>(scanned),
                      static_cast<unsigned long long>(k), v != expected ? " and a wrong value" : "");
      }
      ++scanned;
    }
    rep.end("scan", scanned);
    std::printf("    scanned %llu records (%llu out of place or wrong)\n", static_cast<unsigned long long>(scanned),
                static_cast<unsigned long long>(scan_bad));
    print_stats(db);
    if (scanned != f.num || scan_bad != 0) ok = false;
    std::uint64_t records = db.stats().records;
    if (records != f.num) {
      std::printf("    stats().records = %llu, expected %llu\n", static_cast<unsigned long long>(records),
                  static_cast<unsigned long long>(f.num));
      ok = false;
    }

    rep.begin();
    db.close();
    rep.end("close", 0);

    std::uint64_t peak = rep.rss().overall();
    std::printf("\nphase     seconds   peak RSS (phase)\n");
    for (const auto& p : rep.phases())
      std::printf("%-8s %8.2f   %s\n", p.name.c_str(), p.seconds, mib(p.phase_peak).c_str());
    if (!rep.rss().resets())
      std::printf("(/proc/self/clear_refs not writable: phase peaks are process peaks so far)\n");
    std::printf("order %s; baseline RSS %s; process peak RSS %s (%llu bytes); limit %s (%llu bytes); "
                "peak above baseline %s\n",
                f.random ? "random" : "sequential", mib(baseline_rss).c_str(), mib(peak).c_str(),
                static_cast<unsigned long long>(peak), mib(limit).c_str(), static_cast<unsigned long long>(limit),
                mib(peak > baseline_rss ? peak - baseline_rss : 0).c_str());
    if (peak > limit) {
      if (kEnforceRssLimit) {
        std::printf("peak RSS exceeds cache_bytes + 32 MiB\n");
        ok = false;
      } else {
        std::printf("peak RSS exceeds cache_bytes + 32 MiB (not enforced: sanitizer build)\n");
      }
    }
    std::printf("%s\n", ok ? "PASS" : "FAIL");
    status = ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "memory_bound: error: %s\n", e.what());
    std::printf("FAIL\n");
    status = 1;
  }
  if (!temp_root.empty()) {
    std::error_code ec;
    if (f.keep) {
      std::fprintf(stderr, "memory_bound: kept %s\n", dir.string().c_str());
    } else {
      fs::remove_all(temp_root, ec);
    }
  }
  return status;
}
