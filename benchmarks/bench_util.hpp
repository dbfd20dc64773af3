// bench_util.hpp: small helpers shared by the benchmark programs: memory
// readings from /proc, a wall clock, directory sizes and number formatting.
// Linux only (it reads /proc/self/status).
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

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

}  // namespace stowage_bench
