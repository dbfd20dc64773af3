// bench_util.hpp: small helpers shared by the benchmark programs: memory
// readings from /proc, a wall clock, a latency histogram, directory sizes,
// number formatting, and the key choosers (a fixed-seed permutation, YCSB's
// scrambled Zipfian).
// Linux only (it reads /proc/self/status).
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace stowage_bench {

/// A field of /proc/self/status in bytes ("VmHWM", "VmRSS"), or 0 when absent.
inline std::uint64_t proc_status_bytes(std::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 && line[field.size()] == ':') {
      std::uint64_t kib = 0;
      for (char c : line.substr(field.size() + 1))
        if (c >= '0' && c <= '9') kib = kib * 10 + static_cast<std::uint64_t>(c - '0');
      return kib * 1024;
    }
  }
  return 0;
}

/// Current resident set size.
inline std::uint64_t current_rss() { return proc_status_bytes("VmRSS"); }

/// Tracks the process's peak RSS across phases. VmHWM (the kernel's high-water
/// mark) can be reset by writing 5 to /proc/self/clear_refs, which gives a
/// per-phase peak; the process-wide peak is the maximum over phases. When the
/// reset is not allowed, phase peaks are process peaks so far.
class PeakRss {
 public:
  PeakRss() { overall_ = std::max(hwm(), current_rss()); }

  /// Starts a phase: remembers the peak so far and resets the high-water mark.
  void begin_phase() {
    overall_ = std::max(overall_, hwm());
    std::ofstream out("/proc/self/clear_refs");
    out << "5";
    out.flush();
    reset_works_ = static_cast<bool>(out);
  }
  /// Peak RSS since begin_phase() (the process peak when resets fail).
  std::uint64_t phase_peak() {
    std::uint64_t p = hwm();
    overall_ = std::max(overall_, p);
    return p;
  }
  /// Peak RSS of the whole process so far.
  std::uint64_t overall() {
    overall_ = std::max(overall_, hwm());
    return overall_;
  }
  /// Whether the per-phase reset worked (else phase peaks are cumulative).
  bool resets() const { return reset_works_; }

 private:
  static std::uint64_t hwm() {
    std::uint64_t v = proc_status_bytes("VmHWM");
    if (v == 0) {
      rusage ru{};
      if (::getrusage(RUSAGE_SELF, &ru) == 0) v = static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;  // KiB on Linux
    }
    return v;
  }
  std::uint64_t overall_ = 0;
  bool reset_works_ = false;
};

/// Seconds since construction (steady clock).
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// Operation latencies in nanoseconds, counted in log-linear buckets: every
/// value below 128 has its own bucket, and each power of two above is split
/// into 128 equal buckets, so a bucket is at most 1/128 (0.8%) of its values
/// wide. 7,424 buckets of 8 bytes (58 KiB) cover the whole uint64 range, are
/// allocated once at construction, and record() is a count-leading-zeros, two
/// shifts and an increment: no allocation, no branch on the data beyond one
/// compare. min, max, count and sum are kept exactly.
class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 7;
  static constexpr std::uint64_t kSub = std::uint64_t{1} << kSubBits;  ///< buckets per power of two
  static constexpr std::size_t kBuckets = (64 - kSubBits + 1) * kSub;

  LatencyHistogram() : counts_(kBuckets, 0) {}

  void clear() {
    std::fill(counts_.begin(), counts_.end(), 0);
    count_ = sum_ = max_ = 0;
    min_ = ~std::uint64_t{0};
  }
  void record(std::uint64_t ns) noexcept {
    ++counts_[index(ns)];
    ++count_;
    sum_ += ns;
    max_ = std::max(max_, ns);
    min_ = std::min(min_, ns);
  }
  void merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
  }

  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  std::uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }

  /// The q-quantile (0 < q <= 1) in nanoseconds: the upper end of the bucket
  /// holding the ceil(q * count)-th smallest value, clamped to [min, max]. So
  /// it never understates, and overstates by less than 0.8%. 0 when empty.
  std::uint64_t percentile(double q) const {
    if (count_ == 0) return 0;
    // (less a hair, so that 0.99 * 100 rounding up to 99.000...01 stays rank 99)
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_) - 1e-6));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::clamp(upper(i), min(), max_);
    }
    return max_;
  }

  /// The bucket of a value.
  static std::size_t index(std::uint64_t v) noexcept {
    if (v < kSub) return static_cast<std::size_t>(v);
    const unsigned shift = static_cast<unsigned>(std::bit_width(v)) - 1 - kSubBits;  // v >> shift is in [128, 256)
    return static_cast<std::size_t>((shift + 1) * kSub + ((v >> shift) - kSub));
  }
  /// The smallest and largest value of a bucket.
  static std::uint64_t lower(std::size_t i) noexcept {
    if (i < kSub) return i;
    const unsigned shift = static_cast<unsigned>(i / kSub) - 1;
    return (kSub + i % kSub) << shift;
  }
  static std::uint64_t upper(std::size_t i) noexcept {
    if (i < kSub) return i;
    const unsigned shift = static_cast<unsigned>(i / kSub) - 1;
    return lower(i) + ((std::uint64_t{1} << shift) - 1);
  }

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0, sum_ = 0, max_ = 0, min_ = ~std::uint64_t{0};
};

/// Nanoseconds between two steady_clock readings.
inline std::uint64_t nanos(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}

/// What one steady_clock::now() costs here, in nanoseconds (the median of a
/// few rounds of 20,000 reads); a timed operation pays two.
inline double clock_read_nanos() {
  using Clock = std::chrono::steady_clock;
  std::vector<double> rounds;
  for (int r = 0; r < 5; ++r) {
    const auto start = Clock::now();
    Clock::time_point last = start;
    for (int i = 0; i < 20000; ++i) last = Clock::now();
    rounds.push_back(static_cast<double>(nanos(start, last)) / 20000.0);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

/// Sum of the sizes of the regular files under dir (recursively).
inline std::uint64_t directory_bytes(const std::filesystem::path& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) {
      auto n = it->file_size(fec);
      if (!fec) total += n;
    }
  }
  return total;
}

/// Number of regular files directly in dir.
inline std::uint64_t directory_files(const std::filesystem::path& dir) {
  std::uint64_t n = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) ++n;
  }
  return n;
}

/// The upper median of v (the middle one of an odd count); 0 for none.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

/// Operations a second: ops done since start.
inline double ops_rate(std::uint64_t ops, std::chrono::steady_clock::time_point start) {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s > 0 ? static_cast<double>(ops) / s : 0.0;
}

/// Bytes as MiB with one decimal ("12.3 MiB").
inline std::string mib(std::uint64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

/// Parses a non-negative decimal integer with an optional K/M/G (binary)
/// suffix; false on anything else or on overflow.
inline bool parse_size(std::string_view text, std::uint64_t& out) {
  if (text.empty()) return false;
  std::uint64_t mult = 1;
  char last = text.back();
  if (last == 'k' || last == 'K') mult = std::uint64_t{1} << 10;
  if (last == 'm' || last == 'M') mult = std::uint64_t{1} << 20;
  if (last == 'g' || last == 'G') mult = std::uint64_t{1} << 30;
  if (mult != 1) text.remove_suffix(1);
  if (text.empty() || text.size() > 18) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > UINT64_MAX / mult) return false;
  out = v * mult;
  return true;
}

/// One "--name=VALUE" flag of a benchmark's command line: parse gets VALUE
/// and says whether it is good.
struct Flag {
  std::string_view prefix;                      ///< "--name="
  std::function<bool(std::string_view)> parse;  ///< false: a bad value
};

/// A Flag whose VALUE parse_size reads into out, good when it is within
/// [min, max]; given (when not null) is set once the flag is seen.
inline Flag size_flag(std::string_view prefix, std::uint64_t& out, std::uint64_t min = 0,
                      std::uint64_t max = UINT64_MAX, bool* given = nullptr) {
  return {prefix, [&out, min, max, given](std::string_view v) {
            if (given) *given = true;
            return parse_size(v, out) && out >= min && out <= max;
          }};
}

/// A Flag whose VALUE is a path, into out (any VALUE is good).
inline Flag path_flag(std::string_view prefix, std::filesystem::path& out) {
  return {prefix, [&out](std::string_view v) {
            out = std::string(v);
            return true;
          }};
}

/// Reads argv[1..argc) as flags: each argument goes to the first of flags
/// whose prefix it starts with. At the first that none takes, or whose
/// value is bad, prints usage to stderr and returns false.
inline bool parse_flags(int argc, char** argv, std::initializer_list<Flag> flags, const char* usage) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const Flag* taker = nullptr;
    for (const Flag& f : flags)
      if (a.substr(0, f.prefix.size()) == f.prefix) {
        taker = &f;
        break;
      }
    if (!taker || !taker->parse(a.substr(taker->prefix.size()))) {
      std::fputs(usage, stderr);
      return false;
    }
  }
  return true;
}

/// splitmix64: a tiny, fast, fixed-seed PRNG step (also a good 64-bit mixer).
inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// Uniform integer in [0, n) from a splitmix64 state (n > 0; the modulo bias
/// is negligible for the n a benchmark uses).
inline std::uint64_t uniform(std::uint64_t& state, std::uint64_t n) { return splitmix64(state) % n; }

/// A uniform double in [0, 1) from a splitmix64 state (53 random bits).
inline double uniform01(std::uint64_t& state) {
  return static_cast<double>(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

/// A bijection of [0, n) computed on the fly (no table, so it costs no
/// memory): an invertible mix on the smallest power-of-two domain holding n,
/// walked until it lands below n.
/// A 100-byte value for key at round, about half of it incompressible (as
/// db_bench's): 50 random letters, then "key/round" padded with 'v'.
inline std::string half_random_value(std::uint64_t key, std::uint64_t round) {
  std::string v(100, 'v');
  std::uint64_t state = key * 0x9e3779b97f4a7c15ULL + round;
  for (std::size_t i = 0; i < 50; ++i) v[i] = static_cast<char>('a' + splitmix64(state) % 26);
  const std::string id = std::to_string(key) + "/" + std::to_string(round);
  v.replace(50, std::min<std::size_t>(id.size(), 50), id, 0, 50);
  return v;
}

class Permutation {
 public:
  Permutation(std::uint64_t n, std::uint64_t seed) : n_(n) {
    while (bits_ < 64 && (std::uint64_t{1} << bits_) < n) ++bits_;
    mask_ = bits_ >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits_) - 1;
    shift_ = bits_ / 2 > 0 ? bits_ / 2 : 1;
    std::uint64_t state = seed;
    for (auto& k : keys_) k = splitmix64(state);
  }
  std::uint64_t operator()(std::uint64_t i) const {
    std::uint64_t x = i;
    do {
      for (std::uint64_t k : keys_) {
        x = (x + k) & mask_;
        x = (x * (k | 1)) & mask_;  // odd multiplier: invertible modulo 2^bits
        x ^= x >> shift_;           // invertible (the high bits are kept)
      }
    } while (x >= n_);
    return x;
  }

 private:
  std::uint64_t n_;
  unsigned bits_ = 1;
  std::uint64_t mask_ = 1;
  unsigned shift_ = 1;
  std::uint64_t keys_[4] = {};
};

/// 64-bit FNV-1a over the eight bytes of v, least significant byte first, with
/// the sign bit cleared (YCSB scrambles Zipfian draws with this hash).
inline std::uint64_t fnv1a64(std::uint64_t v) {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (int i = 0; i < 8; ++i) {
    h ^= v & 0xFF;
    h *= 0x100000001B3ULL;
    v >>= 8;
  }
  return h & 0x7FFFFFFFFFFFFFFFULL;
}

/// sum_{i=1..n} i^-theta (the generalised harmonic number). Exact for the first
/// million terms; beyond that the Euler-Maclaurin tail (integral, half the end
/// terms, first derivative correction), which is far more accurate than the
/// generator needs.
inline double zeta(std::uint64_t n, double theta) {
  const std::uint64_t exact = std::min<std::uint64_t>(n, 1000000);
  double sum = 0;
  for (std::uint64_t i = exact; i >= 1; --i) sum += std::pow(static_cast<double>(i), -theta);
  if (n == exact) return sum;
  const double a = static_cast<double>(exact), b = static_cast<double>(n);
  auto f = [&](double x) { return std::pow(x, -theta); };
  auto d = [&](double x) { return -theta * std::pow(x, -theta - 1); };
  sum += (std::pow(b, 1 - theta) - std::pow(a, 1 - theta)) / (1 - theta);  // integral of x^-theta over [a, b]
  sum += (f(b) - f(a)) / 2;
  sum += (d(b) - d(a)) / 12;
  return sum;
}

/// YCSB's "scrambled Zipfian" request distribution over [0, items): a Zipfian
/// draw (constant theta = 0.99) over a huge fixed domain of 10^10 ranks,
/// hashed with FNV-1a and reduced modulo items. Popular ranks are so scattered
/// over the key space, while the popularity skew stays Zipfian. The Zipfian
/// draw is the rejection-free method of Gray et al., "Quickly generating
/// billion-record synthetic databases" (SIGMOD 1994), which YCSB follows.
class ScrambledZipfian {
 public:
  static constexpr double kTheta = 0.99;
  static constexpr std::uint64_t kDomain = 10000000000ULL;

  explicit ScrambledZipfian(std::uint64_t items) : items_(items) {
    const double n = static_cast<double>(kDomain);
    zetan_ = zeta(kDomain, kTheta);
    const double zeta2 = zeta(2, kTheta);
    alpha_ = 1.0 / (1.0 - kTheta);
    eta_ = (1.0 - std::pow(2.0 / n, 1.0 - kTheta)) / (1.0 - zeta2 / zetan_);
    half_pow_theta_ = std::pow(0.5, kTheta);
  }
  /// The next item in [0, items).
  std::uint64_t next(std::uint64_t& state) const {
    const double u = uniform01(state);
    const double uz = u * zetan_;
    std::uint64_t rank;
    if (uz < 1.0) {
      rank = 0;
    } else if (uz < 1.0 + half_pow_theta_) {
      rank = 1;
    } else {
      rank = static_cast<std::uint64_t>(static_cast<double>(kDomain) * std::pow(eta_ * u - eta_ + 1.0, alpha_));
    }
    return fnv1a64(rank) % items_;
  }
  /// The normalisation constant zeta(10^10, 0.99) (YCSB quotes 26.469...).
  double zetan() const { return zetan_; }

 private:
  std::uint64_t items_;
  double zetan_ = 0, alpha_ = 0, eta_ = 0, half_pow_theta_ = 0;
};

}  // namespace stowage_bench
