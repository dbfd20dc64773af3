// fuzz_util.hpp: helpers shared by stowage's libFuzzer targets: a read-only
// in-memory FileSystem holding one file, and the abort-on-finding policy.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <stowage/error.hpp>
#include <stowage/file.hpp>

namespace stowage_fuzz {

/// Reports a finding and aborts, so libFuzzer saves the input as a crash.
[[noreturn]] inline void finding(const char* target, const std::string& what) {
  std::fprintf(stderr, "\n== stowage fuzz finding (%s): %s\n", target, what.c_str());
  std::fflush(stderr);
  std::abort();
}

/// A RandomAccessFile over bytes owned elsewhere.
class MemRandomAccessFile final : public stowage::RandomAccessFile {
 public:
  MemRandomAccessFile(std::string_view bytes, std::filesystem::path p) : bytes_(bytes), path_(std::move(p)) {}
  std::size_t read(std::uint64_t offset, std::size_t n, char* dst) const override {
    if (offset >= bytes_.size()) return 0;
    const std::size_t k = std::min<std::size_t>(n, bytes_.size() - static_cast<std::size_t>(offset));
    if (k != 0) std::memcpy(dst, bytes_.data() + offset, k);
    return k;
  }
  std::uint64_t size() const override { return bytes_.size(); }
  const std::filesystem::path& path() const override { return path_; }

 private:
  std::string_view bytes_;
  std::filesystem::path path_;
};

/// A FileSystem that holds exactly one read-only file; everything but
/// open_read/exists/list/is_directory throws std::logic_error (a reader that
/// calls them is a finding: it must not write while reading).
class OneFileSystem final : public stowage::FileSystem {
 public:
  OneFileSystem(std::filesystem::path p, std::string_view bytes) : path_(std::move(p)), bytes_(bytes) {}
  std::unique_ptr<stowage::WritableFile> create(const std::filesystem::path&) override { no("create"); }
  std::unique_ptr<stowage::WritableFile> open_append(const std::filesystem::path&) override { no("open_append"); }
  std::unique_ptr<stowage::RandomAccessFile> open_read(const std::filesystem::path& p) override {
    if (p != path_) throw stowage::IoError("fuzz fs: no file " + p.string());
    return std::make_unique<MemRandomAccessFile>(bytes_, path_);
  }
  void rename(const std::filesystem::path&, const std::filesystem::path&) override { no("rename"); }
  void remove(const std::filesystem::path&) override { no("remove"); }
  void truncate(const std::filesystem::path&, std::uint64_t) override { no("truncate"); }
  void sync_dir(const std::filesystem::path&) override { no("sync_dir"); }
  void create_dirs(const std::filesystem::path&) override { no("create_dirs"); }
  std::vector<std::string> list(const std::filesystem::path&) override { return {path_.filename().string()}; }
  bool exists(const std::filesystem::path& p) override { return p == path_; }
  bool is_directory(const std::filesystem::path&) override { return false; }

 private:
  [[noreturn]] static void no(const char* op) {
    throw std::logic_error(std::string("fuzz fs: ") + op + " called by a read path");
  }
  std::filesystem::path path_;
  std::string_view bytes_;
};

}  // namespace stowage_fuzz
