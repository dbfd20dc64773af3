// open_files.hpp: a bounded cache of open chunk files (file descriptors).
//
// Chunk metadata (block index, Bloom filter) stays in the block cache for as
// long as the cache keeps it, which for a large store may be thousands of
// chunks; holding a descriptor for each would run into the process's limit
// on open files (1024 by default on many systems). So the metadata holds no
// descriptor: reading a block borrows one from this cache, which keeps at
// most `capacity` files open and closes the least recently used beyond that.
//
// A borrowed file is a std::shared_ptr: a reader keeps using it even if the
// cache closes its own reference meanwhile (the descriptor closes when the
// last user lets go). File numbers are never reused, so erase() after a chunk
// file is deleted is enough to keep stale descriptors from being handed out.
//
// Thread-safe: one mutex, never held while opening a file.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

#include <sys/resource.h>

#include "error.hpp"
#include "file.hpp"

namespace stowage::detail {

/// How many files a store keeps open: `wanted`, or for 0 half the process's
/// soft RLIMIT_NOFILE, clamped to [64, 8192] (1024 if the limit is unknown).
inline std::size_t open_file_limit(std::size_t wanted) {
  if (wanted != 0) return wanted;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1024;
  return std::clamp<std::size_t>(static_cast<std::size_t>(limit.rlim_cur / 2), 64, 8192);
}

/// Counters of an OpenFileCache.
struct OpenFileStats {
  /// Borrows served by an open file.
  std::uint64_t hits = 0;
  /// Borrows that had to open the file.
  std::uint64_t opens = 0;
  /// Files open now (held by the cache).
  std::size_t open = 0;
  /// The most files the cache keeps open.
  std::size_t capacity = 0;
};

/// Keeps up to `capacity` files open, by file number, least recently used
/// closed first.
class OpenFileCache {
 public:
  /// A cache that keeps at most `capacity` files open (at least 1; zero is a
  /// ValidationError).
  explicit OpenFileCache(std::size_t capacity)
      : capacity_(capacity == 0 ? throw ValidationError("stowage: OpenFileCache needs a capacity of at least 1")
                                : capacity) {}

  OpenFileCache(const OpenFileCache&) = delete;
  OpenFileCache& operator=(const OpenFileCache&) = delete;

  /// The open file `number`; when it is not open, calls open() ->
  /// std::unique_ptr<RandomAccessFile> (without the lock held), keeps the
  /// result and closes the least recently used file beyond the capacity.
  /// Exceptions from open() propagate and nothing is kept.
  template <class Open>
  std::shared_ptr<RandomAccessFile> get(std::uint64_t number, Open&& open) {
    {
      std::lock_guard lock(mutex_);
      if (auto it = map_.find(number); it != map_.end()) {
        ++hits_;
        lru_.splice(lru_.begin(), lru_, it->second);
        return it->second->second;
      }
    }
    std::shared_ptr<RandomAccessFile> file(open());
    put(number, file);
    return file;
  }

  /// Keeps `file` as the open file `number` (replacing any), as the most
  /// recently used; for a caller that opened it anyway.
  void put(std::uint64_t number, std::shared_ptr<RandomAccessFile> file) {
    std::shared_ptr<RandomAccessFile> closed;  // closed after the lock is released
    std::lock_guard lock(mutex_);
    ++opens_;
    if (auto it = map_.find(number); it != map_.end()) {
      closed = std::move(it->second->second);
      it->second->second = std::move(file);
      lru_.splice(lru_.begin(), lru_, it->second);
      return;
    }
    lru_.emplace_front(number, std::move(file));
    try {
      map_.emplace(number, lru_.begin());
    } catch (...) {
      lru_.pop_front();
      throw;
    }
    if (lru_.size() > capacity_) {
      closed = std::move(lru_.back().second);
      map_.erase(lru_.back().first);
      lru_.pop_back();
    }
  }

  /// Closes file `number` if it is open (called when the chunk file is deleted).
  void erase(std::uint64_t number) {
    std::shared_ptr<RandomAccessFile> closed;
    std::lock_guard lock(mutex_);
    auto it = map_.find(number);
    if (it == map_.end()) return;
    closed = std::move(it->second->second);
    lru_.erase(it->second);
    map_.erase(it);
  }

  /// The counters.
  OpenFileStats stats() const {
    std::lock_guard lock(mutex_);
    return OpenFileStats{hits_, opens_, lru_.size(), capacity_};
  }

 private:
  using Lru = std::list<std::pair<std::uint64_t, std::shared_ptr<RandomAccessFile>>>;
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  Lru lru_;  // most recently used first
  std::unordered_map<std::uint64_t, Lru::iterator> map_;
  std::uint64_t hits_ = 0, opens_ = 0;
};

}  // namespace stowage::detail
