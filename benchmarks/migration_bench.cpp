// migration_bench.cpp: time and peak memory of a value-schema migration.
//
// Builds a store of --num records (default 1,000,000; 8-byte keys, values of
// a 100-byte, about half compressible payload and a counter) at schema
// version 1, closes it, then opens it with a version-2 program and a
// Migrator step 1 -> 2 and a small cache (--cache_bytes, default 8 MiB). The
// migration streams every chunk through the step into new chunk files, so
// its memory must stay within cache_bytes + 32 MiB however large the store.
// Prints the build and migration times, the migration phase's peak RSS, the
// disk sizes, and a JSON line; verifies a sample of records and the count.
// Exits 1 (FAIL) when a record is wrong or the peak exceeds the bound.
//
//   migration_bench [--num=N] [--cache_bytes=SIZE] [--dir=PATH]
#include <stowage/stowage.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench_util.hpp"

namespace fs = std::filesystem;
using namespace stowage_bench;

namespace {

struct RecordV1 {
  static constexpr unsigned version = 1;
  std::string payload;
  std::uint32_t count = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & payload & count;
  }
};

struct RecordV2 {
  static constexpr unsigned version = 2;
  std::string payload;
  std::uint64_t count = 0;
  double score = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & payload & count & score;
  }
};

std::string payload(std::uint64_t i) {
  std::uint64_t state = i * 0x9E3779B97F4A7C15ull + 1;
  std::string half(50, ' ');
  for (auto& c : half) c = static_cast<char>(' ' + splitmix64(state) % 95);
  return half + half;
}

RecordV2 upgrade(RecordV1 r) {
  return {std::move(r.payload), r.count, static_cast<double>(r.count) / 7.0};
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t num = 1000000, cache = std::uint64_t{8} << 20;
  fs::path dir = fs::temp_directory_path() / "stowage-migration-bench";
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view flag) -> std::optional<std::string_view> {
      if (a.substr(0, flag.size()) == flag) return a.substr(flag.size());
      return std::nullopt;
    };
    if (auto v = value("--num=")) {
      if (!parse_size(*v, num) || num == 0) return std::fprintf(stderr, "bad --num\n"), 2;
    } else if (auto c = value("--cache_bytes=")) {
      if (!parse_size(*c, cache)) return std::fprintf(stderr, "bad --cache_bytes\n"), 2;
    } else if (auto d = value("--dir=")) {
      dir = std::string(*d);
    } else {
      std::fprintf(stderr, "usage: migration_bench [--num=N] [--cache_bytes=SIZE] [--dir=PATH]\n");
      return 2;
    }
  }
  try {
    fs::remove_all(dir);
    const fs::path store = dir / "store";
    PeakRss peak;
    peak.begin_phase();
    Stopwatch build;
    {
      stowage::Storage<std::uint64_t, RecordV1> db(store, {.cache_bytes = std::size_t{64} << 20});
      std::vector<std::pair<std::uint64_t, RecordV1>> batch;
      for (std::uint64_t i = 0; i < num; ++i) {
        batch.emplace_back(i, RecordV1{payload(i), static_cast<std::uint32_t>(i)});
        if (batch.size() == 1000 || i + 1 == num) {
          db.put_batch(batch);
          batch.clear();
        }
      }
    }
    const double build_s = build.seconds();
    const std::uint64_t before_bytes = directory_bytes(store);

    stowage::Migrator migrations;
    migrations.add<RecordV1, RecordV2>(upgrade);
    migrations.backup_to(dir);
    peak.begin_phase();
    Stopwatch migrate;
    stowage::Storage<std::uint64_t, RecordV2> db(store, {.cache_bytes = static_cast<std::size_t>(cache)}, migrations);
    const double migrate_s = migrate.seconds();
    const std::uint64_t migrate_peak = peak.phase_peak();
    const auto& report = db.last_migration();
    bool ok = report && report->records == num && db.size() == num;
    for (std::uint64_t i = 0; ok && i < num; i += std::max<std::uint64_t>(1, num / 1000)) {
      auto r = db.get(i);
      ok = r && r->payload == payload(i) && r->count == i && r->score == static_cast<double>(i) / 7.0;
    }
    const std::uint64_t after_bytes = directory_bytes(store);
    const std::uint64_t bound = cache + (std::uint64_t{32} << 20);
    std::printf("build: %llu records at version 1 in %.2f s (%s on disk)\n", static_cast<unsigned long long>(num),
                build_s, mib(before_bytes).c_str());
    std::printf("migrate 1 -> 2: %.2f s (%.0f records/s), peak RSS of the phase %s (bound %s = cache_bytes %s + 32 MiB%s), "
                "%s on disk after\n",
                migrate_s, static_cast<double>(num) / migrate_s, mib(migrate_peak).c_str(), mib(bound).c_str(),
                mib(cache).c_str(), peak.resets() ? "" : "; process peak: the phase reset failed",
                mib(after_bytes).c_str());
    std::printf("{\"bench\":\"migration\",\"num\":%llu,\"cache_bytes\":%llu,\"build_s\":%.3f,\"migrate_s\":%.3f,"
                "\"peak_rss\":%llu,\"bytes_before\":%llu,\"bytes_after\":%llu,\"ok\":%s}\n",
                static_cast<unsigned long long>(num), static_cast<unsigned long long>(cache), build_s, migrate_s,
                static_cast<unsigned long long>(migrate_peak), static_cast<unsigned long long>(before_bytes),
                static_cast<unsigned long long>(after_bytes), ok ? "true" : "false");
#ifndef STOWAGE_SANITIZED
    ok = ok && migrate_peak <= bound;
#endif
    std::printf("%s\n", ok ? "PASS" : "FAIL");
    db.close();
    fs::remove_all(dir);
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "migration_bench: %s\n", e.what());
    return 1;
  }
}
