// test_util.hpp: helpers shared by the tests: a fresh temporary directory per
// test, and byte-level edits of files (flip, truncate, zero) for corruption tests.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <exception>
#include <fstream>
#include <functional>
#include <random>
#include <string>

#include <unistd.h>

namespace stowage_test {

/// A directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "t") {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("stowage-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// What fn throws (its what()), or "no exception": for CHECK_THAT on messages.
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no exception";
}

inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
inline void write_all(const std::filesystem::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}
inline void flip_byte(const std::filesystem::path& p, std::size_t offset, unsigned char mask = 0x5a) {
  auto s = read_all(p);
  s[offset] = static_cast<char>(s[offset] ^ mask);
  write_all(p, s);
}
inline void truncate_file(const std::filesystem::path& p, std::size_t size) { std::filesystem::resize_file(p, size); }

/// A fresh directory for a store that many runs reopen, removed when the
/// object dies: under $<env_var> when it is set, else /dev/shm when it is a
/// writable directory (the fault sweeps reopen stores thousands of times, and
/// each open fsyncs: on tmpfs that costs nothing), else the system temp
/// directory.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag, const char* env_var = nullptr) {
    static std::atomic<int> counter{0};
    path_ = base(env_var) / ("stowage-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  static std::filesystem::path base(const char* env_var) {
    if (env_var != nullptr)
      if (const char* d = std::getenv(env_var)) return d;
    std::error_code ec;
    if (std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK | X_OK) == 0) return "/dev/shm";
    return std::filesystem::temp_directory_path();
  }
  std::filesystem::path path_;
};

/// The files of a store directory whose names start with prefix / end with suffix.
inline std::vector<std::filesystem::path> files_matching(const std::filesystem::path& dir, const std::string& suffix) {
  std::vector<std::filesystem::path> out;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    auto name = e.path().filename().string();
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace stowage_test
