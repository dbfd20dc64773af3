// history_bench.cpp: what keeping history (Collection::keep_history) costs a
// Database collection, against the same collection without it, in the same
// run. For each mode (off, then History{.versions = V}; --rounds times,
// alternating) on a fresh store with default Options:
//   - fill: --num=N puts of random keys (uint64, 100-byte values, about half
//     of each incompressible);
//   - overwrite: --overwrites=M puts of random existing keys;
//   - get: --reads=R gets of random keys;
//   - with history: R get_at(key, a random sequence since the fill ended)
//     and R / 10 history(key) calls;
//   - the store's bytes on disk after a compact().
// Prints one line per mode and round, then the medians and on/off ratios.
//
//   history_bench [--num=N] [--overwrites=M] [--reads=R] [--versions=V] [--rounds=K] [--dir=PATH]
#include <stowage/stowage.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.hpp"

namespace fs = std::filesystem;
using namespace stowage_bench;

namespace {

struct Result {
  double fill = 0, overwrite = 0, get = 0, get_at = 0, history = 0;  // ops/s
  std::uint64_t bytes = 0;
};

Result run(const fs::path& dir, std::uint64_t n, std::uint64_t overwrites, std::uint64_t reads, std::uint32_t versions) {
  fs::remove_all(dir);
  Result r;
  stowage::Database db(dir);
  auto c = db.collection<std::uint64_t, std::string>("records");
  if (versions) c.keep_history({.versions = versions});
  std::uint64_t rng = 12345;
  Permutation order(n, 99);
  auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t k = order(i);
    c.put(k, half_random_value(k, 0));
  }
  r.fill = ops_rate(n, start);
  const std::uint64_t after_fill = db.stats().last_sequence;
  start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < overwrites; ++i) {
    const std::uint64_t k = uniform(rng, n);
    c.put(k, half_random_value(k, i + 1));
  }
  r.overwrite = ops_rate(overwrites, start);
  const std::uint64_t last = db.stats().last_sequence;
  std::uint64_t found = 0;
  start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < reads; ++i) found += c.get(uniform(rng, n)) ? 1 : 0;
  r.get = ops_rate(reads, start);
  if (found != reads) std::fprintf(stderr, "history_bench: %llu of %llu gets missed\n",
                                   static_cast<unsigned long long>(reads - found), static_cast<unsigned long long>(reads));
  if (versions) {
    std::uint64_t answered = 0, refused = 0;
    start = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < reads; ++i) {
      const std::uint64_t seq = after_fill + uniform(rng, last - after_fill + 1);
      try {
        answered += c.get_at(uniform(rng, n), seq) ? 1 : 0;
      } catch (const stowage::ValidationError&) {
        ++refused;  // a version the rule no longer keeps
      }
    }
    r.get_at = ops_rate(reads, start);
    std::printf("  get_at: %llu answered, %llu older than the %u versions kept\n",
                static_cast<unsigned long long>(answered), static_cast<unsigned long long>(refused), versions);
    std::uint64_t listed = 0;
    start = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < reads / 10; ++i) listed += c.history(uniform(rng, n)).size();
    r.history = ops_rate(reads / 10, start);
    std::printf("  history: %.2f versions per key listed\n",
                reads >= 10 ? static_cast<double>(listed) / static_cast<double>(reads / 10) : 0.0);
  }
  db.compact();
  r.bytes = directory_bytes(dir);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t n = 1000000, overwrites = 0, reads = 200000, versions = 4, rounds = 1;
  bool overwrites_set = false;
  fs::path dir = fs::temp_directory_path() / "stowage-history-bench";
  if (!parse_flags(argc, argv,
                   {size_flag("--num=", n, 1), size_flag("--overwrites=", overwrites, 0, UINT64_MAX, &overwrites_set),
                    size_flag("--reads=", reads), size_flag("--versions=", versions, 1, 1000000),
                    size_flag("--rounds=", rounds, 1), path_flag("--dir=", dir)},
                   "usage: history_bench [--num=N] [--overwrites=M] [--reads=R] [--versions=V] [--rounds=K] "
                   "[--dir=PATH]\n"))
    return 2;
  if (!overwrites_set) overwrites = n;
  std::map<bool, std::vector<Result>> results;
  for (std::uint64_t round = 0; round < rounds; ++round)
    for (bool on : {false, true}) {
      const Result r = run(dir, n, overwrites, reads, on ? static_cast<std::uint32_t>(versions) : 0);
      results[on].push_back(r);
      std::printf("round %llu, history %s: fill %.1fK/s, overwrite %.1fK/s, get %.1fK/s", static_cast<unsigned long long>(round + 1),
                  on ? "on " : "off", r.fill / 1e3, r.overwrite / 1e3, r.get / 1e3);
      if (on) std::printf(", get_at %.1fK/s, history %.1fK/s", r.get_at / 1e3, r.history / 1e3);
      std::printf(", %s on disk after compact\n", mib(r.bytes).c_str());
      std::fflush(stdout);
    }
  fs::remove_all(dir);
  auto med = [&](bool on, double Result::*field) {
    std::vector<double> v;
    for (const auto& r : results[on]) v.push_back(r.*field);
    return median(v);
  };
  std::printf("\nmedians (%llu records, %llu overwrites, %llu reads; history on: %llu versions):\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(overwrites),
              static_cast<unsigned long long>(reads), static_cast<unsigned long long>(versions));
  std::printf("| operation | history off | history on | on / off |\n|---|---:|---:|---:|\n");
  for (auto [name, field] : {std::pair{"fill (puts/s)", &Result::fill}, std::pair{"overwrite (puts/s)", &Result::overwrite},
                             std::pair{"get (gets/s)", &Result::get}}) {
    const double off = med(false, field), on = med(true, field);
    std::printf("| %s | %.1fK | %.1fK | %.2fx |\n", name, off / 1e3, on / 1e3, off > 0 ? on / off : 0.0);
  }
  std::printf("| get_at (reads/s) | - | %.1fK | - |\n| history(key) (calls/s) | - | %.1fK | - |\n",
              med(true, &Result::get_at) / 1e3, med(true, &Result::history) / 1e3);
  std::vector<double> off_b, on_b;
  for (const auto& r : results[false]) off_b.push_back(static_cast<double>(r.bytes));
  for (const auto& r : results[true]) on_b.push_back(static_cast<double>(r.bytes));
  const double ob = median(off_b), nb = median(on_b);
  std::printf("| bytes on disk after compact | %s | %s | %.2fx |\n", mib(static_cast<std::uint64_t>(ob)).c_str(),
              mib(static_cast<std::uint64_t>(nb)).c_str(), ob > 0 ? nb / ob : 0.0);
  return 0;
}
