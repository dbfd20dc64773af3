// collections_bench.cpp: what a Database's collections cost when they are
// not used. Creates a store with --collections=N named collections (default
// 1,000), each holding one record, and closes it; then, --rounds times
// (default 20), measures:
//   - reading and decoding its MANIFEST alone (detail::read_manifest);
//   - opening it as a Database and closing it again, touching no collection;
//   - opening it, then opening one collection and reading its record;
// Prints medians and the ratio open / manifest.
//
//   collections_bench [--collections=N] [--rounds=R] [--dir=PATH]
#include <stowage/manifest.hpp>
#include <stowage/stowage.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.hpp"

namespace fs = std::filesystem;
using namespace stowage_bench;

namespace {

template <class F>
double micros(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t n = 1000, rounds = 20;
  fs::path dir = fs::temp_directory_path() / "stowage-collections-bench";
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view flag) -> std::optional<std::string_view> {
      if (a.substr(0, flag.size()) == flag) return a.substr(flag.size());
      return std::nullopt;
    };
    if (auto v = value("--collections=")) {
      if (!parse_size(*v, n) || n == 0) return std::fprintf(stderr, "bad --collections\n"), 2;
    } else if (auto r = value("--rounds=")) {
      if (!parse_size(*r, rounds) || rounds == 0) return std::fprintf(stderr, "bad --rounds\n"), 2;
    } else if (auto d = value("--dir=")) {
      dir = std::string(*d);
    } else {
      std::fprintf(stderr, "usage: collections_bench [--collections=N] [--rounds=R] [--dir=PATH]\n");
      return 2;
    }
  }
  fs::remove_all(dir);
  {
    stowage::Database db(dir);
    for (std::uint64_t i = 0; i < n; ++i) db.collection<std::uint64_t, std::string>("c" + std::to_string(i)).put(i, "v");
  }
  std::vector<double> manifest, open, open_one;
  for (std::uint64_t r = 0; r < rounds; ++r) {
    manifest.push_back(micros([&] {
      const auto m = stowage::detail::read_manifest(*stowage::default_file_system(), dir);
      if (m.collections.size() != n) std::abort();
    }));
    open.push_back(micros([&] { stowage::Database db(dir); }));
    open_one.push_back(micros([&] {
      stowage::Database db(dir);
      auto c = db.collection<std::uint64_t, std::string>("c" + std::to_string(n / 2));
      if (c.get(n / 2) != "v") std::abort();
    }));
  }
  const std::uint64_t manifest_bytes = fs::file_size(dir / "MANIFEST");
  std::printf("collections_bench: %llu collections, MANIFEST %llu bytes, %llu rounds (medians)\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(manifest_bytes),
              static_cast<unsigned long long>(rounds));
  std::printf("  read + decode MANIFEST        %10.0f us\n", median(manifest));
  std::printf("  open + close, no collection   %10.0f us  (%.1fx the MANIFEST)\n", median(open),
              median(open) / median(manifest));
  std::printf("  open + one collection's get   %10.0f us\n", median(open_one));
  std::printf("{\"collections\": %llu, \"manifest_bytes\": %llu, \"manifest_us\": %.0f, \"open_us\": %.0f, "
              "\"open_one_us\": %.0f}\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(manifest_bytes), median(manifest),
              median(open), median(open_one));
  fs::remove_all(dir);
  return 0;
}
