// SPDX-License-Identifier: BSL-1.0
// lock.hpp: the Lock policies, which choose the in-process threading model.
// Whatever the policy, every open also takes the store's LOCK file
// exclusively (file_lock.hpp): a second process never shares a store.
//
//  - NoLock: one thread uses the store; no synchronisation between user
//    threads (the engine still synchronises with its own background flush
//    and compaction threads, with an internal mutex).
//  - ThreadLock: many readers or one writer (std::shared_mutex); opening a
//    store another process holds fails at once with LockError.
//  - ProcessLock: ThreadLock, and open waits up to Options::lock_timeout for
//    another process to release the store before giving LockError.
#pragma once

#include <concepts>
#include <shared_mutex>

namespace stowage {

/// No synchronisation between user threads: the store is used by one thread
/// at a time (the engine still guards what its background threads share).
struct NoLock {
  static constexpr bool waits_for_other_processes = false;
  static constexpr bool thread_safe = false;
  void lock() noexcept {}
  void unlock() noexcept {}
  void lock_shared() noexcept {}
  void unlock_shared() noexcept {}
};

/// Many readers or one writer, across threads of this process.
struct ThreadLock {
  static constexpr bool waits_for_other_processes = false;
  static constexpr bool thread_safe = true;
  void lock() { m_.lock(); }
  void unlock() { m_.unlock(); }
  void lock_shared() { m_.lock_shared(); }
  void unlock_shared() { m_.unlock_shared(); }

 private:
  std::shared_mutex m_;
};

/// ThreadLock, plus waiting up to Options::lock_timeout at open for another
/// process that holds the store.
struct ProcessLock : ThreadLock {
  static constexpr bool waits_for_other_processes = true;
};

}  // namespace stowage
