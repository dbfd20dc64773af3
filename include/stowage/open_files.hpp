// SPDX-License-Identifier: BSL-1.0
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
// Thread-safe: the cache's one shard mutex, never held while opening a file.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include <sys/resource.h>

#include "cache.hpp"
#include "error.hpp"
#include "eviction.hpp"
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
  /// Files opened and kept (by get() on a miss, or handed over by put()).
  std::uint64_t opens = 0;
  /// Files open now (held by the cache).
  std::size_t open = 0;
  /// The most files the cache keeps open.
  std::size_t capacity = 0;
};

/// Keeps up to `capacity` files open, by file number, least recently used
/// closed first: a one-shard BlockCache (cache.hpp) with LRU eviction in
/// which every file is charged 1.
class OpenFileCache {
 public:
  /// A cache that keeps at most `capacity` files open (at least 1; zero is a
  /// ValidationError).
  explicit OpenFileCache(std::size_t capacity)
      : files_(capacity == 0 ? throw ValidationError("stowage: OpenFileCache needs a capacity of at least 1")
                             : capacity,
               1) {}

  OpenFileCache(const OpenFileCache&) = delete;
  OpenFileCache& operator=(const OpenFileCache&) = delete;

  /// The open file `number`; when it is not open, calls open() ->
  /// std::unique_ptr<RandomAccessFile> (without the lock held), keeps the
  /// result and closes the least recently used file beyond the capacity.
  /// Exceptions from open() propagate and nothing is kept.
  template <class Open>
  std::shared_ptr<const RandomAccessFile> get(std::uint64_t number, Open&& open) {
    return files_.template get_or_load<RandomAccessFile>(key(number), [&] {
      return std::pair<std::shared_ptr<const RandomAccessFile>, std::size_t>(open(), 1);
    });
  }

  /// Keeps `file` as the open file `number` (replacing any), as the most
  /// recently used; for a caller that opened it anyway.
  void put(std::uint64_t number, std::shared_ptr<const RandomAccessFile> file) {
    files_.insert(key(number), std::move(file), 1);
  }

  /// Closes file `number` if it is open (called when the chunk file is deleted).
  void erase(std::uint64_t number) { files_.erase_file(number); }

  /// The counters.
  OpenFileStats stats() const {
    const CacheStats c = files_.stats();
    return OpenFileStats{c.hits, c.inserts, c.entries, c.capacity};
  }

 private:
  static CacheKey key(std::uint64_t number) { return CacheKey{number, 0}; }
  BlockCache<LruEviction> files_;
};

}  // namespace stowage::detail
