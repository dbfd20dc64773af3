// cache_replay.cpp: replays block and object access traces through the real
// BlockCache<Policy> (one shard, every object the same charge) for each
// eviction policy, next to Belady's optimum with bypass (the ceiling: evict
// the entry whose next use is farthest, and do not cache a key whose next use
// is farther still) and LRU (the floor), and reports each policy's hits as a
// share of the optimum's and its misses against LRU's.
//
// Workloads: the public traces in ../shared/cache-traces/ (one folder per
// format: lirs, arc, cache2k, cloud_physics, corda, scarab; see the README
// there), read in place through `xz -dc` / `gzip -dc`, plus synthetic Zipf
// 0.99 and 0.7 over 100,000 keys, each with and without one-hit scan bursts.
// Cache sizes: 0.1%, 1% and 10% of each workload's unique keys (at least one
// entry).
//
// Output: a markdown table on stdout (or --markdown=FILE) and one CSV row per
// (workload, size, policy) with --csv=FILE, which replay_chart.py draws.
//
// usage: cache_replay [--traces=DIR] [--only=SUBSTR[,SUBSTR...]] [--max-requests=N]
//                     [--synthetic-requests=N] [--no-traces] [--no-synthetic]
//                     [--markdown=FILE] [--csv=FILE]
#include <stowage/cache.hpp>
#include <stowage/eviction.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <queue>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bench_util.hpp"

namespace fs = std::filesystem;
namespace sd = stowage::detail;

namespace {

#ifndef STOWAGE_REPO_DIR
#define STOWAGE_REPO_DIR "."
#endif

/// The policies replayed, in table order (LRU first: the floor).
using Policies = std::tuple<stowage::LruEviction, stowage::SieveEviction, stowage::S3FifoEviction,
                            stowage::StaticWTinyLfuEviction, stowage::WTinyLfuEviction,
                            stowage::ShadowTinyLfuEviction>;

constexpr double kSizes[] = {0.001, 0.01, 0.1};
constexpr std::size_t kCharge = 4096;  // every object weighs one 4 KiB block

struct Flags {
  fs::path traces = fs::path(STOWAGE_REPO_DIR) / ".." / "shared" / "cache-traces";
  std::vector<std::string> only;
  std::uint64_t max_requests = 0;  // 0: whole traces
  std::uint64_t synthetic_requests = 2000000;
  bool traces_on = true;
  bool synthetic_on = true;
  std::string markdown;
  std::string csv;
};

void usage() {
  std::fputs(
      "usage: cache_replay [options]\n"
      "  --traces=DIR               trace folder (default <repo>/../shared/cache-traces)\n"
      "  --only=S1,S2               only workloads whose name contains one of these\n"
      "  --max-requests=N           replay at most N requests of each trace (0: all)\n"
      "  --synthetic-requests=N     requests per synthetic workload (default 2000000)\n"
      "  --no-traces, --no-synthetic  leave a group out\n"
      "  --markdown=FILE            write the table there as well as to stdout\n"
      "  --csv=FILE                 one row per workload, size and policy (for replay_chart.py)\n",
      stderr);
}

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    const auto eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const std::string value(eq == std::string_view::npos ? "" : arg.substr(eq + 1));
    if (name == "--traces") {
      f.traces = value;
    } else if (name == "--only") {
      std::stringstream ss(value);
      for (std::string part; std::getline(ss, part, ',');)
        if (!part.empty()) f.only.push_back(part);
    } else if (name == "--max-requests") {
      f.max_requests = std::stoull(value);
    } else if (name == "--synthetic-requests") {
      f.synthetic_requests = std::stoull(value);
    } else if (name == "--no-traces") {
      f.traces_on = false;
    } else if (name == "--no-synthetic") {
      f.synthetic_on = false;
    } else if (name == "--markdown") {
      f.markdown = value;
    } else if (name == "--csv") {
      f.csv = value;
    } else {
      usage();
      std::exit(name == "--help" ? 0 : 2);
    }
  }
  return f;
}

bool selected(const Flags& f, const std::string& name) {
  if (f.only.empty()) return true;
  return std::any_of(f.only.begin(), f.only.end(), [&](const std::string& s) { return name.find(s) != std::string::npos; });
}

// ---- trace readers -------------------------------------------------------------------

/// Reads a whole compressed file through `xz -dc` or `gzip -dc`.
std::string decompress(const fs::path& p) {
  const std::string tool = p.extension() == ".xz" ? "xz -dc " : p.extension() == ".gz" ? "gzip -dc " : "cat ";
  const std::string cmd = tool + "'" + p.string() + "'";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cache_replay: cannot run " + cmd);
  std::string out;
  char buf[1 << 16];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  if (::pclose(pipe) != 0) throw std::runtime_error("cache_replay: " + cmd + " failed");
  return out;
}

std::uint64_t big_endian(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | static_cast<unsigned char>(p[i]);
  return v;
}

/// The keys of one trace in request order, parsed by its folder's format.
std::vector<std::uint64_t> read_trace(const fs::path& p, const std::string& format, std::uint64_t max) {
  const std::string raw = decompress(p);
  std::vector<std::uint64_t> keys;
  auto full = [&] { return max != 0 && keys.size() >= max; };
  if (format == "lirs" || format == "arc") {
    std::istringstream in(raw);
    for (std::string line; !full() && std::getline(in, line);) {
      if (line.find('*') != std::string::npos) continue;  // LIRS checkpoint markers
      std::istringstream fields(line);
      std::uint64_t start = 0, count = 1;
      if (!(fields >> start)) continue;
      if (format == "arc" && !(fields >> count)) continue;
      for (std::uint64_t i = 0; i < count && !full(); ++i) keys.push_back(start + i);
    }
  } else if (format == "cache2k" || format == "cloud_physics" || format == "corda" || format == "scarab") {
    const int width = format == "corda" || format == "scarab" ? 8 : 4;
    for (std::size_t off = 0; off + width <= raw.size() && !full(); off += width)
      keys.push_back(big_endian(raw.data() + off, width));
  } else {
    throw std::runtime_error("cache_replay: unknown trace format " + format);
  }
  return keys;
}

// ---- synthetic workloads ----------------------------------------------------------------

/// Zipf(theta) over `items` keys by inverse CDF (a table of items doubles),
/// ranks scattered over the keys; with scans, every 100,000 requests a burst
/// of 20,000 keys never requested before (a one-hit scan).
std::vector<std::uint64_t> zipf_workload(std::uint64_t items, double theta, std::uint64_t requests, bool scans) {
  std::vector<double> cdf(items);
  double sum = 0;
  for (std::uint64_t i = 0; i < items; ++i) cdf[i] = sum += std::pow(static_cast<double>(i + 1), -theta);
  for (double& c : cdf) c /= sum;
  std::uint64_t rng = 42;
  std::uint64_t next_scan_key = std::uint64_t{1} << 40;
  std::vector<std::uint64_t> keys;
  keys.reserve(requests);
  while (keys.size() < requests) {
    const double u = stowage_bench::uniform01(rng);
    const auto rank = static_cast<std::uint64_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    std::uint64_t scramble = rank;
    keys.push_back(stowage_bench::splitmix64(scramble) % (std::uint64_t{1} << 39));
    if (scans && keys.size() % 100000 == 0)
      for (int i = 0; i < 20000 && keys.size() < requests; ++i) keys.push_back(next_scan_key++);
  }
  return keys;
}

// ---- the replays ----------------------------------------------------------------------------

/// A trace as dense ids with, per request, the index of the same key's next
/// request (or requests.size() when there is none).
struct Workload {
  std::string name;
  std::vector<std::uint32_t> ids;
  std::vector<std::uint64_t> next;
  std::uint64_t unique = 0;
};

Workload prepare(std::string name, const std::vector<std::uint64_t>& keys) {
  Workload w;
  w.name = std::move(name);
  w.ids.resize(keys.size());
  std::unordered_map<std::uint64_t, std::uint32_t> dense;
  dense.reserve(keys.size() / 4);
  for (std::size_t i = 0; i < keys.size(); ++i)
    w.ids[i] = dense.try_emplace(keys[i], static_cast<std::uint32_t>(dense.size())).first->second;
  w.unique = dense.size();
  w.next.assign(keys.size(), keys.size());
  std::vector<std::uint64_t> seen(w.unique, keys.size());
  for (std::size_t i = keys.size(); i-- > 0;) {
    w.next[i] = seen[w.ids[i]];
    seen[w.ids[i]] = i;
  }
  return w;
}

/// Belady's MIN with bypass for `capacity` equal-sized entries: the cache is
/// a set of "next request" positions; a miss whose next request is farther
/// than every cached one (or never comes) is not cached.
std::uint64_t belady_hits(const Workload& w, std::uint64_t capacity) {
  const std::size_t n = w.ids.size();
  std::vector<bool> cached(n + 1, false);
  std::priority_queue<std::uint64_t> farthest;  // lazily deleted: skip positions no longer cached
  std::uint64_t size = 0, hits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t nx = w.next[i];
    if (cached[i]) {
      ++hits;
      cached[i] = false;
      --size;
    }
    if (nx == n) continue;  // never requested again: bypass (or drop)
    if (size == capacity) {
      while (!cached[farthest.top()]) farthest.pop();
      if (farthest.top() <= nx) continue;  // bypass
      cached[farthest.top()] = false;
      farthest.pop();
      --size;
    }
    cached[nx] = true;
    farthest.push(nx);
    ++size;
  }
  return hits;
}

/// Hits of BlockCache<Policy> (one shard, capacity entries of kCharge bytes):
/// lookup, and on a miss insert, as the store's get_or_load does.
template <class Policy>
std::uint64_t policy_hits(const Workload& w, std::uint64_t capacity) {
  sd::BlockCache<Policy> cache(capacity * kCharge, 1);
  const auto object = std::make_shared<const int>(0);
  for (std::uint32_t id : w.ids) {
    const sd::CacheKey k{1, id};
    if (cache.template lookup<int>(k) == nullptr) cache.insert(k, object, kCharge);
  }
  return cache.stats().hits;
}

struct Row {
  std::string workload;
  double size_share = 0;
  std::uint64_t capacity = 0;
  std::uint64_t requests = 0;
  std::uint64_t optimum = 0;
  std::vector<std::uint64_t> hits;  // per policy, in Policies order
};

template <std::size_t... I>
std::vector<std::string> policy_names(std::index_sequence<I...>) {
  return {std::string(std::tuple_element_t<I, Policies>::name)...};
}

template <std::size_t... I>
std::vector<std::uint64_t> replay_all(const Workload& w, std::uint64_t capacity, std::index_sequence<I...>) {
  return {policy_hits<std::tuple_element_t<I, Policies>>(w, capacity)...};
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

/// Hits as a percentage of the optimum's (100 when the optimum has none).
double share_of_optimum(std::uint64_t hits, std::uint64_t optimum) {
  return optimum == 0 ? 100.0 : 100.0 * static_cast<double>(hits) / static_cast<double>(optimum);
}

/// Misses relative to LRU's, in percent (positive: more misses than LRU).
double misses_vs_lru(const Row& r, std::size_t p) {
  const double lru = static_cast<double>(r.requests - r.hits[0]);
  const double mine = static_cast<double>(r.requests - r.hits[p]);
  return lru == 0 ? 0 : 100.0 * (mine - lru) / lru;
}

std::string report(const std::vector<Row>& rows, const std::vector<std::string>& names) {
  std::ostringstream md;
  md << "| workload | cache | optimum hit % |";
  for (const auto& n : names) md << ' ' << n << " |";
  md << "\n|---|---:|---:|";
  for (std::size_t p = 0; p < names.size(); ++p) md << "---:|";
  md << '\n';
  for (const Row& r : rows) {
    md << "| " << r.workload << " | " << fixed(r.size_share * 100, 1) << "% (" << r.capacity << ") | "
       << fixed(100.0 * static_cast<double>(r.optimum) / static_cast<double>(r.requests), 1) << " |";
    for (std::size_t p = 0; p < names.size(); ++p) md << ' ' << fixed(share_of_optimum(r.hits[p], r.optimum), 1) << " |";
    md << '\n';
  }
  md << "\nCells: hits as a % of the optimum's (Belady with bypass). " << rows.size() << " cases.\n\n";
  md << "| policy | median % of optimum | worst misses vs LRU | case |";
  md << "\n|---|---:|---:|---|\n";
  for (std::size_t p = 0; p < names.size(); ++p) {
    std::vector<double> shares;
    double worst = -1e9;
    std::string worst_case;
    for (const Row& r : rows) {
      shares.push_back(share_of_optimum(r.hits[p], r.optimum));
      const double d = misses_vs_lru(r, p);
      if (d > worst) {
        worst = d;
        worst_case = r.workload + " @ " + fixed(r.size_share * 100, 1) + "%";
      }
    }
    md << "| " << names[p] << " | " << fixed(median(shares), 1) << " | " << (worst >= 0 ? "+" : "") << fixed(worst, 1)
       << "% | " << worst_case << " |\n";
  }
  bool zipf = false;
  for (const Row& r : rows) zipf = zipf || r.workload == "zipf-0.99";
  if (zipf) {
    md << "\nZipf 0.99 (no scans), misses vs LRU:\n\n| policy |";
    for (double s : kSizes) md << ' ' << fixed(s * 100, 1) << "% |";
    md << "\n|---|";
    for (std::size_t i = 0; i < std::size(kSizes); ++i) md << "---:|";
    md << '\n';
    for (std::size_t p = 1; p < names.size(); ++p) {
      md << "| " << names[p] << " |";
      for (const Row& r : rows)
        if (r.workload == "zipf-0.99") md << ' ' << fixed(misses_vs_lru(r, p), 1) << "% |";
      md << '\n';
    }
  }
  return md.str();
}

}  // namespace

int main(int argc, char** argv) {
  const Flags f = parse_flags(argc, argv);
  std::vector<std::pair<std::string, std::vector<std::uint64_t>>> inputs;
  constexpr auto policies = std::make_index_sequence<std::tuple_size_v<Policies>>{};
  const auto names = policy_names(policies);

  std::vector<Row> rows;
  std::ofstream csv;
  if (!f.csv.empty()) {
    csv.open(f.csv);
    csv << "workload,size_share,capacity,requests,policy,hits,optimum_hits,lru_hits\n";
  }
  auto run = [&](const std::string& name, const std::vector<std::uint64_t>& keys) {
    const Workload w = prepare(name, keys);
    for (double share : kSizes) {
      Row r;
      r.workload = name;
      r.size_share = share;
      r.capacity = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::llround(share * static_cast<double>(w.unique))));
      r.requests = w.ids.size();
      r.optimum = belady_hits(w, r.capacity);
      r.hits = replay_all(w, r.capacity, policies);
      if (csv.is_open())
        for (std::size_t p = 0; p < names.size(); ++p)
          csv << r.workload << ',' << r.size_share << ',' << r.capacity << ',' << r.requests << ',' << names[p] << ','
              << r.hits[p] << ',' << r.optimum << ',' << r.hits[0] << '\n';
      std::fprintf(stderr, "%-28s %5.1f%% %9llu entries: optimum %5.1f%% hits", name.c_str(), share * 100,
                   static_cast<unsigned long long>(r.capacity),
                   100.0 * static_cast<double>(r.optimum) / static_cast<double>(r.requests));
      for (std::size_t p = 0; p < names.size(); ++p)
        std::fprintf(stderr, "  %s %.1f", names[p].c_str(), share_of_optimum(r.hits[p], r.optimum));
      std::fputc('\n', stderr);
      rows.push_back(std::move(r));
    }
  };

  if (f.traces_on) {
    if (!fs::is_directory(f.traces)) {
      std::fprintf(stderr, "cache_replay: no trace folder %s (use --traces=DIR); replaying synthetic workloads only\n",
                   f.traces.string().c_str());
    } else {
      std::vector<fs::path> files;
      for (const auto& format_dir : fs::directory_iterator(f.traces))
        if (format_dir.is_directory())
          for (const auto& file : fs::directory_iterator(format_dir.path()))
            if (file.path().extension() == ".xz" || file.path().extension() == ".gz") files.push_back(file.path());
      std::sort(files.begin(), files.end());
      for (const fs::path& p : files) {
        const std::string format = p.parent_path().filename().string();
        std::string name = format + "/" + p.filename().string();
        name = name.substr(0, name.find('.'));
        if (!selected(f, name)) continue;
        run(name, read_trace(p, format, f.max_requests));
      }
    }
  }
  if (f.synthetic_on) {
    for (double theta : {0.99, 0.7})
      for (bool scans : {false, true}) {
        const std::string name = "zipf-" + fixed(theta, 2) + (scans ? "+scans" : "");
        if (!selected(f, name)) continue;
        run(name, zipf_workload(100000, theta, f.synthetic_requests, scans));
      }
  }
  if (rows.empty()) {
    std::fputs("cache_replay: nothing replayed\n", stderr);
    return 1;
  }
  const std::string md = report(rows, names);
  std::cout << md;
  if (!f.markdown.empty()) std::ofstream(f.markdown) << md;
  return 0;
}
