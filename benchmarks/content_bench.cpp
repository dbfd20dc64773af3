// content_bench: stowage::ContentStore against the SQLite result cache it
// replaces (a table keyed by the hex SHA-256 digest, WAL mode), on the
// workloads of issue 17:
//   put      --num values of ~100 bytes with 50% duplicates (each distinct
//            value put twice, in a shuffled order): throughput and bytes on
//            disk after close
//   compute  get_or_compute misses (--keys new keys, a trivial computation),
//            then --num hits on random keys among them; and the same hits
//            again with Sharing::processes (this process alone at work), and
//            --num / 200 (at most 1,000) hits in each of two processes at once
// Each engine runs in its own process (the program re-runs itself with
// --engine=...), and the table gives stowage / SQLite per workload.
//
// Both sides hash the same serialized bytes with the same SHA-256
// (OpenSSL EVP) and serialize with BinarySerializer. Durability per operation
// is the same on both: a process crash loses nothing that returned, a power
// cut may lose the writes since the last sync (stowage Durability::none: each
// put is written to its WAL; SQLite journal_mode=WAL, synchronous=NORMAL,
// one autocommit transaction per write, as the original cache did).
//
// --repeat=R runs the pair R times, alternating, and keeps each engine's best
// rate per workload (the machine this runs on is shared and noisy).
//
//   usage: content_bench [--num=N] [--keys=N] [--dir=PATH] [--repeat=R] [--engine=stowage|sqlite]
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <stowage/content_store.hpp>

#include "bench_util.hpp"

namespace fs = std::filesystem;
using namespace stowage_bench;

namespace {

struct Result {  // a small computed result: about 100 bytes serialized
  std::string text;
  std::uint64_t n = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & text & n;
  }
};

// The i-th distinct value: 90 bytes, half of them repetitive (compressible).
// (splitmix64, cheap next to what is measured; seeding a Mersenne twister per
// value cost more than a SQLite insert.)
Result value_of(std::uint64_t i) {
  std::uint64_t x = i * 0x9e3779b97f4a7c15ULL + 1;
  auto next = [&x] {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  std::string text(90, 'a');
  for (std::size_t j = 0; j < 45; ++j) text[j] = static_cast<char>('a' + next() % 26);
  return Result{std::move(text), i};
}

std::string bytes_of(const Result& r) {
  std::string out;
  stowage::BinarySerializer::serialize(r, out);
  return out;
}

struct Args {
  std::uint64_t num = 1000000;
  std::uint64_t keys = 100000;
  fs::path dir = fs::temp_directory_path() / "stowage-content-bench";
  std::string engine;
  std::uint64_t repeat = 1;
};

/// What one engine measured: workload -> (operations per second, bytes on disk).
struct Measured {
  std::map<std::string, double> rate;
  std::uint64_t put_disk_bytes = 0;
  std::uint64_t computations = 0;
};

/// A minimal SQLite cache, written as the original system did.
class SqliteCache {
 public:
  explicit SqliteCache(const fs::path& file) {
    if (sqlite3_open(file.c_str(), &db_) != SQLITE_OK) fail("open");
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    exec("CREATE TABLE IF NOT EXISTS cache(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID");
    get_ = prepare("SELECT value FROM cache WHERE key = ?1");
    put_ = prepare("INSERT OR IGNORE INTO cache(key, value) VALUES(?1, ?2)");
  }
  ~SqliteCache() {
    sqlite3_finalize(get_);
    sqlite3_finalize(put_);
    sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    sqlite3_close(db_);
  }
  std::optional<std::string> get(const std::string& key) {
    sqlite3_bind_text(get_, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    std::optional<std::string> out;
    if (sqlite3_step(get_) == SQLITE_ROW)
      out.emplace(static_cast<const char*>(sqlite3_column_blob(get_, 0)),
                  static_cast<std::size_t>(sqlite3_column_bytes(get_, 0)));
    sqlite3_reset(get_);
    return out;
  }
  void put(const std::string& key, const std::string& value) {
    sqlite3_bind_text(put_, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    sqlite3_bind_blob(put_, 2, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
    if (sqlite3_step(put_) != SQLITE_DONE) fail("insert");
    sqlite3_reset(put_);
  }

 private:
  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(sql);
  }
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) fail(sql);
    return s;
  }
  [[noreturn]] void fail(const char* what) {
    throw std::runtime_error(std::string("sqlite: ") + what + ": " + sqlite3_errmsg(db_));
  }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* get_ = nullptr;
  sqlite3_stmt* put_ = nullptr;
};

// The put order: every distinct value twice, shuffled (50% duplicates).
std::vector<std::uint64_t> put_order(std::uint64_t num) {
  std::vector<std::uint64_t> order(num);
  for (std::uint64_t i = 0; i < num; ++i) order[i] = i / 2;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
  return order;
}

std::vector<std::uint64_t> hit_order(const Args& a) {
  std::vector<std::uint64_t> order(a.num);
  std::mt19937_64 rng(7);
  for (auto& k : order) k = rng() % a.keys;
  return order;
}

stowage::Digest input_key(std::uint64_t i) { return stowage::sha256("input " + std::to_string(i)); }

Measured run_stowage(const Args& a) {
  Measured m;
  using Store = stowage::ContentStore<Result>;
  {
    const fs::path dir = a.dir / "stowage-put";
    fs::remove_all(dir);
    const auto order = put_order(a.num);
    {
      Store cs(dir);
      Stopwatch w;
      for (auto i : order) cs.put(value_of(i));
      m.rate["put"] = static_cast<double>(a.num) / w.seconds();
    }
    m.put_disk_bytes = directory_bytes(dir);
  }
  const fs::path dir = a.dir / "stowage-compute";
  fs::remove_all(dir);
  Store cs(dir);
  Stopwatch misses;
  for (std::uint64_t i = 0; i < a.keys; ++i) cs.get_or_compute(input_key(i), [&] { return value_of(i); });
  m.rate["miss"] = static_cast<double>(a.keys) / misses.seconds();
  const auto order = hit_order(a);
  std::uint64_t check = 0;
  Stopwatch hits;
  for (auto i : order) check += cs.get_or_compute(input_key(i), [&] { return value_of(i); }).n;
  m.rate["hit"] = static_cast<double>(a.num) / hits.seconds();
  m.computations = cs.stats().computations;
  cs.close();
  // The same hits with Sharing::processes: every call opens and closes the store.
  Store shared(dir, stowage::ContentOptions{.sharing = stowage::Sharing::processes});
  Stopwatch shared_hits;
  for (auto i : order) check += shared.get_or_compute(input_key(i), [&] { return value_of(i); }).n;
  m.rate["hit-processes"] = static_cast<double>(a.num) / shared_hits.seconds();
  shared.close();
  // Two processes calling at once: the store changes hands between them.
  const std::uint64_t each = std::max<std::uint64_t>(1, std::min<std::uint64_t>(a.num / 200, 1000));
  Stopwatch contended;
  std::vector<pid_t> children;
  for (int c = 0; c < 2; ++c) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      int code = 0;
      try {
        Store mine(dir, stowage::ContentOptions{.sharing = stowage::Sharing::processes});
        for (std::uint64_t j = 0; j < each; ++j) {
          const auto i = order[(2 * j + static_cast<std::uint64_t>(c)) % order.size()];
          if (mine.get_or_compute(input_key(i), [&] { return value_of(i); }).n != i) code = 3;
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "content_bench child: %s\n", e.what());
        code = 4;
      }
      ::_exit(code);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("a contending process failed");
  }
  m.rate["hit-2-processes"] = static_cast<double>(2 * each) / contended.seconds();
  m.computations += shared.stats().computations;
  if (check == 0 && a.keys > 1) std::fprintf(stderr, "(unexpected checksum)\n");
  return m;
}

Measured run_sqlite(const Args& a) {
  Measured m;
  {
    const fs::path dir = a.dir / "sqlite-put";
    fs::remove_all(dir);
    fs::create_directories(dir);
    const auto order = put_order(a.num);
    {
      SqliteCache db(dir / "content.sqlite");
      Stopwatch w;
      for (auto i : order) {
        const std::string bytes = bytes_of(value_of(i));
        db.put(stowage::sha256(bytes).hex(), bytes);  // INSERT OR IGNORE: stored once
      }
      m.rate["put"] = static_cast<double>(a.num) / w.seconds();
    }
    m.put_disk_bytes = directory_bytes(dir);
  }
  const fs::path dir = a.dir / "sqlite-compute";
  fs::remove_all(dir);
  fs::create_directories(dir);
  SqliteCache db(dir / "cache.sqlite");
  auto get_or_compute = [&](std::uint64_t i) {
    const std::string key = input_key(i).hex();
    if (auto hit = db.get(key)) return stowage::BinarySerializer::deserialize<Result>(*hit);
    ++m.computations;
    Result r = value_of(i);
    db.put(key, bytes_of(r));
    return r;
  };
  Stopwatch misses;
  for (std::uint64_t i = 0; i < a.keys; ++i) get_or_compute(i);
  m.rate["miss"] = static_cast<double>(a.keys) / misses.seconds();
  const auto order = hit_order(a);
  std::uint64_t check = 0;
  Stopwatch hits;
  for (auto i : order) check += get_or_compute(i).n;
  m.rate["hit"] = static_cast<double>(a.num) / hits.seconds();
  if (check == 0 && a.keys > 1) std::fprintf(stderr, "(unexpected checksum)\n");
  return m;
}

// One engine, in this process: prints "workload rate" lines for the driver.
int run_engine(const Args& a) {
  const Measured m = a.engine == "stowage" ? run_stowage(a) : run_sqlite(a);
  for (const auto& [w, r] : m.rate) std::printf("%s %.0f\n", w.c_str(), r);
  std::printf("put_disk_bytes %llu\ncomputations %llu\n", static_cast<unsigned long long>(m.put_disk_bytes),
              static_cast<unsigned long long>(m.computations));
  return 0;
}

// Runs this program for one engine in a child process and parses its lines.
std::map<std::string, double> run_child(const Args& a, const std::string& engine) {
  std::string cmd = fs::read_symlink("/proc/self/exe").string() + " --engine=" + engine +
                    " --num=" + std::to_string(a.num) + " --keys=" + std::to_string(a.keys) + " --dir=" + a.dir.string();
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run " + cmd);
  std::map<std::string, double> out;
  char name[64];
  double v = 0;
  while (std::fscanf(p, "%63s %lf", name, &v) == 2) out[name] = v;
  if (::pclose(p) != 0) throw std::runtime_error(engine + " run failed");
  return out;
}

std::string rate(double r) {
  char buf[32];
  if (r >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM/s", r / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.1fK/s", r / 1e3);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view s = argv[i];
    auto value = [&](std::string_view flag) -> std::optional<std::string_view> {
      if (s.substr(0, flag.size()) == flag) return s.substr(flag.size());
      return std::nullopt;
    };
    if (auto v = value("--num=")) {
      if (!parse_size(*v, a.num) || a.num == 0) return std::fprintf(stderr, "bad --num\n"), 2;
    } else if (auto k = value("--keys=")) {
      if (!parse_size(*k, a.keys) || a.keys == 0) return std::fprintf(stderr, "bad --keys\n"), 2;
    } else if (auto d = value("--dir=")) {
      a.dir = std::string(*d);
    } else if (auto r = value("--repeat=")) {
      if (!parse_size(*r, a.repeat) || a.repeat == 0) return std::fprintf(stderr, "bad --repeat\n"), 2;
    } else if (auto e = value("--engine=")) {
      a.engine = std::string(*e);
      if (a.engine != "stowage" && a.engine != "sqlite") return std::fprintf(stderr, "bad --engine\n"), 2;
    } else {
      std::fprintf(stderr,
                   "usage: content_bench [--num=N] [--keys=N] [--dir=PATH] [--repeat=R] [--engine=stowage|sqlite]\n");
      return 2;
    }
  }
  try {
    fs::create_directories(a.dir);
    if (!a.engine.empty()) return run_engine(a);
    std::map<std::string, double> st, sq;
    auto keep_best = [](std::map<std::string, double>& best, const std::map<std::string, double>& run) {
      for (const auto& [k, v] : run) best[k] = k == "put_disk_bytes" || k == "computations" ? v : std::max(best[k], v);
    };
    for (std::uint64_t r = 0; r < a.repeat; ++r) {
      keep_best(st, run_child(a, "stowage"));
      keep_best(sq, run_child(a, "sqlite"));
    }
    std::printf("content_bench: %llu puts (50%% duplicates), %llu get_or_compute misses, %llu hits; SQLite %s; "
                "best of %llu\n",
                static_cast<unsigned long long>(a.num), static_cast<unsigned long long>(a.keys),
                static_cast<unsigned long long>(a.num), sqlite3_libversion(), static_cast<unsigned long long>(a.repeat));
    std::printf("| workload | stowage | sqlite | stowage / sqlite | goal |\n|---|---:|---:|---:|---|\n");
    for (const char* w : {"put", "hit", "miss"}) {
      const double ratio = st.at(w) / sq.at(w);
      const bool goal = std::string_view(w) != "miss";
      std::printf("| %s | %s | %s | %.2fx | %s |\n", w, rate(st.at(w)).c_str(), rate(sq.at(w)).c_str(), ratio,
                  goal ? (ratio >= 3 ? ">= 3x: met" : ">= 3x: **missed**") : "-");
    }
    const double shared = st.at("hit-processes");
    std::printf("| hit, Sharing::processes (one process at work) | %s | %s | %.2fx | - |\n", rate(shared).c_str(),
                rate(sq.at("hit")).c_str(), shared / sq.at("hit"));
    const double two = st.at("hit-2-processes");
    std::printf("| hit, Sharing::processes (two processes at once) | %s | %s | %.3fx | - |\n", rate(two).c_str(),
                rate(sq.at("hit")).c_str(), two / sq.at("hit"));
    const double sdisk = st.at("put_disk_bytes"), qdisk = sq.at("put_disk_bytes");
    std::printf("| bytes on disk after the puts | %s | %s | %.2fx | - |\n", mib(static_cast<std::uint64_t>(sdisk)).c_str(),
                mib(static_cast<std::uint64_t>(qdisk)).c_str(), sdisk / qdisk);
    if (st.at("computations") != static_cast<double>(a.keys) || sq.at("computations") != static_cast<double>(a.keys)) {
      std::fprintf(stderr, "content_bench: a computation ran more than once per key\n");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "content_bench: %s\n", e.what());
    return 1;
  }
}
