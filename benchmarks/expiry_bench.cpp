// expiry_bench.cpp: what expiry (Collection::put(key, value, ttl),
// set_default_ttl) costs a Database collection, against the same collection
// without it, in the same run. For each mode (off, then on: a default TTL
// of a day, so every put carries an expiry time and none expires during
// the run; --rounds times, alternating) on a fresh store with default
// Options:
//   - fill: --num=N puts of random keys (uint64, 100-byte values, about half
//     of each incompressible);
//   - overwrite: --overwrites=M puts of random existing keys;
//   - get: --reads=R gets of random keys;
//   - scan: the whole collection, in key order;
//   - the store's bytes on disk after a compact();
//   - with expiry: the same store read a day later (a clock moved ahead):
//     a scan that finds every record expired, then compact() and the bytes
//     left.
// Prints one line per mode and round, then the medians and on/off ratios.
//
//   expiry_bench [--num=N] [--overwrites=M] [--reads=R] [--rounds=K] [--dir=PATH]
#include <stowage/stowage.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.hpp"

namespace fs = std::filesystem;
using namespace stowage_bench;

namespace {

struct Result {
  double fill = 0, overwrite = 0, get = 0, scan = 0;  // ops/s (scan: records/s)
  std::uint64_t bytes = 0;
  double expired_scan_ms = 0, expired_compact_s = 0;  // with expiry: a day later
  std::uint64_t expired_bytes = 0;
};

Result run(const fs::path& dir, std::uint64_t n, std::uint64_t overwrites, std::uint64_t reads, bool expiry) {
  fs::remove_all(dir);
  Result r;
  // The system clock, or (once moved) a day and a minute ahead of it.
  auto ahead = std::make_shared<std::atomic<bool>>(false);
  stowage::Options o;
  o.clock = [ahead] {
    const auto now = std::chrono::system_clock::now();
    return ahead->load() ? now + std::chrono::hours(24) + std::chrono::minutes(1) : now;
  };
  stowage::Database db(dir, o);
  auto c = db.collection<std::uint64_t, std::string>("records");
  if (expiry) c.set_default_ttl(std::chrono::hours(24));
  std::uint64_t rng = 12345;
  Permutation order(n, 99);
  auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t k = order(i);
    c.put(k, half_random_value(k, 0));
  }
  r.fill = ops_rate(n, start);
  start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < overwrites; ++i) {
    const std::uint64_t k = uniform(rng, n);
    c.put(k, half_random_value(k, i + 1));
  }
  r.overwrite = ops_rate(overwrites, start);
  std::uint64_t found = 0;
  start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < reads; ++i) found += c.get(uniform(rng, n)) ? 1 : 0;
  r.get = ops_rate(reads, start);
  if (found != reads)
    std::fprintf(stderr, "expiry_bench: %llu of %llu gets missed\n", static_cast<unsigned long long>(reads - found),
                 static_cast<unsigned long long>(reads));
  std::uint64_t scanned = 0, bytes = 0;
  start = std::chrono::steady_clock::now();
  for (const auto& [k, v] : c.scan()) {
    ++scanned;
    bytes += v.size();
  }
  r.scan = ops_rate(scanned, start);
  if (scanned != n || bytes != 100 * n)
    std::fprintf(stderr, "expiry_bench: the scan met %llu records, %llu value bytes\n",
                 static_cast<unsigned long long>(scanned), static_cast<unsigned long long>(bytes));
  db.compact();
  r.bytes = directory_bytes(dir);
  if (expiry) {
    ahead->store(true);  // a day later: every record has expired
    start = std::chrono::steady_clock::now();
    const bool none = c.empty();
    r.expired_scan_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!none) std::fprintf(stderr, "expiry_bench: records left a day later\n");
    start = std::chrono::steady_clock::now();
    db.compact();
    r.expired_compact_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.expired_bytes = directory_bytes(dir);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t n = 1000000, overwrites = 0, reads = 200000, rounds = 1;
  bool overwrites_set = false;
  fs::path dir = fs::temp_directory_path() / "stowage-expiry-bench";
  if (!parse_flags(argc, argv,
                   {size_flag("--num=", n, 1), size_flag("--overwrites=", overwrites, 0, UINT64_MAX, &overwrites_set),
                    size_flag("--reads=", reads), size_flag("--rounds=", rounds, 1), path_flag("--dir=", dir)},
                   "usage: expiry_bench [--num=N] [--overwrites=M] [--reads=R] [--rounds=K] [--dir=PATH]\n"))
    return 2;
  if (!overwrites_set) overwrites = n;
  std::map<bool, std::vector<Result>> results;
  for (std::uint64_t round = 0; round < rounds; ++round)
    for (bool on : {false, true}) {
      const Result r = run(dir, n, overwrites, reads, on);
      results[on].push_back(r);
      std::printf("round %llu, expiry %s: fill %.1fK/s, overwrite %.1fK/s, get %.1fK/s, scan %.1fK records/s, %s on "
                  "disk after compact",
                  static_cast<unsigned long long>(round + 1), on ? "on " : "off", r.fill / 1e3, r.overwrite / 1e3,
                  r.get / 1e3, r.scan / 1e3, mib(r.bytes).c_str());
      if (on)
        std::printf("; a day later: empty() in %.1f ms, compact %.2f s, %s left", r.expired_scan_ms,
                    r.expired_compact_s, mib(r.expired_bytes).c_str());
      std::printf("\n");
      std::fflush(stdout);
    }
  fs::remove_all(dir);
  auto med = [&](bool on, auto field) {
    std::vector<double> v;
    for (const auto& r : results[on]) v.push_back(static_cast<double>(r.*field));
    return median(v);
  };
  std::printf("\nmedians (%llu records, %llu overwrites, %llu reads; expiry on: a default TTL of a day):\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(overwrites),
              static_cast<unsigned long long>(reads));
  std::printf("| operation | expiry off | expiry on | on / off |\n|---|---:|---:|---:|\n");
  for (auto [name, field] : {std::pair{"fill (puts/s)", &Result::fill}, std::pair{"overwrite (puts/s)", &Result::overwrite},
                             std::pair{"get (gets/s)", &Result::get}, std::pair{"scan (records/s)", &Result::scan}}) {
    const double off = med(false, field), on = med(true, field);
    std::printf("| %s | %.1fK | %.1fK | %.2fx |\n", name, off / 1e3, on / 1e3, off > 0 ? on / off : 0.0);
  }
  const double ob = med(false, &Result::bytes), nb = med(true, &Result::bytes);
  std::printf("| bytes on disk after compact | %s | %s | %.2fx |\n", mib(static_cast<std::uint64_t>(ob)).c_str(),
              mib(static_cast<std::uint64_t>(nb)).c_str(), ob > 0 ? nb / ob : 0.0);
  std::printf("| a day later: empty() | - | %.1f ms | - |\n| a day later: compact() | - | %.2f s, %s left | - |\n",
              med(true, &Result::expired_scan_ms), med(true, &Result::expired_compact_s),
              mib(static_cast<std::uint64_t>(med(true, &Result::expired_bytes))).c_str());
  return 0;
}
