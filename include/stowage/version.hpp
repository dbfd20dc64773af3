// SPDX-License-Identifier: BSL-1.0
// version.hpp: the set of chunk files a store reads, as an immutable value.
//
// A Version holds the files of one moment: level 0's runs, newest first (one
// run per flush of the write buffer; runs may overlap each other), and one
// run per level 1..kLevels-1 (a level's files never overlap; deeper levels
// hold older records). A flush or a compaction builds a new Version and
// installs it in place of the old one; readers, cursors and background work
// hold a shared_ptr to the one they started on, so a file they read is never
// deleted under them: a file dropped by an installed Version is marked
// obsolete, and when the last Version naming it dies, its number goes to a
// FileBin, whose owner deletes it (the manifest that dropped it is durable by
// then: a Version is installed only after its manifest is written).
//
// Not synchronised beyond that: a Version never changes once shared.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "index.hpp"
#include "manifest.hpp"

namespace stowage::detail {

/// Numbers of chunk files waiting to be deleted (see the top of version.hpp).
class FileBin {
 public:
  /// Queues file; never throws (without memory for it the file stays on disk
  /// until the next open removes it, as a leftover no manifest names).
  void push(std::uint64_t file) noexcept {
    try {
      std::lock_guard g(mu_);
      files_.push_back(file);
    } catch (...) {
    }
  }
  /// Takes every queued file number.
  std::vector<std::uint64_t> take() {
    std::lock_guard g(mu_);
    return std::exchange(files_, {});
  }

 private:
  std::mutex mu_;
  std::vector<std::uint64_t> files_;
};

/// One chunk file named by one or more Versions.
class LiveFile {
 public:
  LiveFile(ChunkRef ref, std::shared_ptr<FileBin> bin) : ref_(std::move(ref)), bin_(std::move(bin)) {}
  LiveFile(const LiveFile&) = delete;
  LiveFile& operator=(const LiveFile&) = delete;
  /// Queues the file for deletion when it was marked obsolete.
  ~LiveFile() {
    if (obsolete_.load() && bin_) bin_->push(ref_.file);
  }
  /// What the manifest records of the file.
  const ChunkRef& ref() const { return ref_; }
  /// Marks the file as dropped by an installed Version: it is deleted once
  /// no Version names it.
  void mark_obsolete() const { obsolete_.store(true); }
  /// True once set_resolved() recorded what the file's uncounted records add
  /// to the live count (resolved_sum()).
  bool resolved() const { return resolved_.load(std::memory_order_acquire); }
  /// What the file's uncounted records add to the live count (each put 1,
  /// less 1 for each that hides a live record below it); valid once
  /// resolved(). It holds for as long as the file lives: compactions below
  /// it keep which keys are live there, and a compaction of the file itself
  /// replaces it.
  std::int64_t resolved_sum() const { return resolved_sum_.load(std::memory_order_relaxed); }
  /// Records resolved_sum(); threads that race compute the same sum.
  void set_resolved(std::int64_t sum) const {
    resolved_sum_.store(sum, std::memory_order_relaxed);
    resolved_.store(true, std::memory_order_release);
  }

 private:
  ChunkRef ref_;
  std::shared_ptr<FileBin> bin_;
  mutable std::atomic<bool> obsolete_{false};
  mutable std::atomic<bool> resolved_{false};
  mutable std::atomic<std::int64_t> resolved_sum_{0};
};

/// A shared chunk file.
using FilePtr = std::shared_ptr<const LiveFile>;

/// Files in key order whose ranges do not overlap.
struct Run {
  std::vector<FilePtr> files;
  std::uint64_t bytes = 0;    ///< sum of file sizes
  std::uint64_t records = 0;  ///< sum of records (puts and tombstones)

  void add(FilePtr f) {
    bytes += f->ref().bytes;
    records += f->ref().records;
    files.push_back(std::move(f));
  }
  bool empty() const { return files.empty(); }
  /// Index of the first file whose last key is >= key (files.size() if none).
  std::size_t seek(std::string_view key) const {
    auto it = std::lower_bound(files.begin(), files.end(), key,
                               [](const FilePtr& f, std::string_view k) { return std::string_view(f->ref().last_key) < k; });
    return static_cast<std::size_t>(it - files.begin());
  }
  /// The file whose range holds key, or nullptr.
  const LiveFile* find(std::string_view key) const {
    const std::size_t i = seek(key);
    if (i == files.size() || key < std::string_view(files[i]->ref().first_key)) return nullptr;
    return files[i].get();
  }
  /// Indexes [first, last) of the files overlapping [lo, hi].
  std::pair<std::size_t, std::size_t> overlapping(std::string_view lo, std::string_view hi) const {
    std::size_t first = seek(lo), last = first;
    while (last < files.size() && !(hi < std::string_view(files[last]->ref().first_key))) ++last;
    return {first, last};
  }
  /// Smallest and largest key (the run must not be empty).
  std::string_view first_key() const { return files.front()->ref().first_key; }
  std::string_view last_key() const { return files.back()->ref().last_key; }
};

/// The smallest first key and the largest last key of runs (none may be
/// empty; runs must not be empty). The empty key is a key like any other:
/// it is the smallest, not a "none yet".
inline std::pair<std::string_view, std::string_view> key_range(const std::vector<Run>& runs) {
  std::string_view lo = runs.front().first_key(), hi = runs.front().last_key();
  for (const auto& r : runs) {
    if (r.first_key() < lo) lo = r.first_key();
    if (hi < r.last_key()) hi = r.last_key();
  }
  return {lo, hi};
}

/// The files of a store at one moment (see the top of version.hpp).
struct Version {
  std::vector<Run> l0;              ///< level 0's runs, newest first
  std::array<Run, kLevels> levels;  ///< levels[1..]: one run per level (levels[0] unused)

  /// Every run, newest first: what a read searches, in order.
  template <class Fn>
  void for_each_run(Fn&& fn) const {
    for (const auto& r : l0)
      if (!r.empty()) fn(r, 0u);
    for (std::uint32_t l = 1; l < kLevels; ++l)
      if (!levels[l].empty()) fn(levels[l], l);
  }
  /// Every non-empty run, newest first (as for_each_run visits them).
  std::vector<const Run*> runs() const {
    std::vector<const Run*> out;
    for_each_run([&](const Run& r, std::uint32_t) { out.push_back(&r); });
    return out;
  }
  std::size_t files() const {
    std::size_t n = 0;
    for_each_run([&](const Run& r, std::uint32_t) { n += r.files.size(); });
    return n;
  }
  std::uint64_t bytes() const {
    std::uint64_t n = 0;
    for_each_run([&](const Run& r, std::uint32_t) { n += r.bytes; });
    return n;
  }
  /// What its files' uncounted records add to the live count
  /// (LiveFile::resolved_sum summed), or nullopt while a file that holds
  /// some is not resolved yet.
  std::optional<std::int64_t> resolved_part() const {
    std::int64_t sum = 0;
    bool all = true;
    for_each_run([&](const Run& r, std::uint32_t) {
      for (const auto& f : r.files) {
        if (f->ref().uncounted == 0) continue;
        if (!f->resolved()) all = false;
        sum += f->resolved_sum();
      }
    });
    if (!all) return std::nullopt;
    return sum;
  }
  /// Records of its files not yet in the live count.
  std::uint64_t uncounted() const {
    std::uint64_t n = 0;
    for_each_run([&](const Run& r, std::uint32_t) {
      for (const auto& f : r.files) n += f->ref().uncounted;
    });
    return n;
  }
  /// Every file's ChunkRef, in manifest order.
  std::vector<ChunkRef> refs() const {
    std::vector<ChunkRef> out;
    out.reserve(files());
    for_each_run([&](const Run& r, std::uint32_t) {
      for (const auto& f : r.files) out.push_back(f->ref());
    });
    return out;
  }
  /// Builds the version a manifest's chunk list describes (in manifest order).
  static Version from_refs(const std::vector<ChunkRef>& refs, const std::shared_ptr<FileBin>& bin) {
    Version v;
    for (const auto& c : refs) {
      auto f = std::make_shared<const LiveFile>(c, bin);
      if (c.level == 0) {
        if (v.l0.empty() || v.l0.back().files.back()->ref().run != c.run) v.l0.emplace_back();
        v.l0.back().add(std::move(f));
      } else {
        v.levels[c.level].add(std::move(f));
      }
    }
    return v;
  }
};

}  // namespace stowage::detail
