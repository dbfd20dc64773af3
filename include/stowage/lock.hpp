// SPDX-License-Identifier: BSL-1.0
// lock.hpp: the Lock policies, which choose the in-process threading model.
// Whatever the policy, every open also locks the store across processes
// (file_lock.hpp: a flock on its directory and an fcntl lock on its LOCK
// file, which a read_only open never creates): exclusively when writable,
// shared when read_only, so any number of read_only opens (in any processes)
// share a store and a writable one has it to itself. Every open waits up to Options::lock_timeout for a
// conflicting holder (another process, or another Storage of this process)
// before giving LockError; a lock_timeout of 0 fails at once.
//
//  - NoLock: one thread uses the store; no synchronisation between user
//    threads (the engine still synchronises with its own background flush
//    and compaction threads, with an internal mutex).
//  - ThreadLock: many readers or one writer (a std::shared_mutex whose
//    waiters poll it a few microseconds before they sleep).
//  - ProcessLock: ThreadLock under another name, kept for the code that
//    names it (it once was the only policy whose open waited).
#pragma once

#include <concepts>
#include <shared_mutex>

namespace stowage {

namespace detail {

/// A std::shared_mutex whose waiters poll it a few microseconds before they
/// sleep. The engine holds its lock briefly (a put exclusively, for one
/// insert into the write buffer; a get shared, for a probe of it), so a
/// waiter nearly always gets the lock while polling and the holder's unlock
/// wakes nobody. A woken waiter often takes the CPU of the thread that woke
/// it (the scheduler favours a thread that slept), and that thread, a
/// writer in the middle of a put, then waits a scheduler tick or two: with a
/// reader and the background threads busy on two cores, those waits were
/// most puts over 2 ms, and the polls took overwrite under a reading
/// snapshot from 130K-167K to 351K-398K puts/s (db_bench, 1M records).
class PollingSharedMutex {
 public:
  /// Takes the lock exclusively.
  void lock() {
    if (!poll([this] { return m_.try_lock(); })) m_.lock();
  }
  /// Takes the lock exclusively if it is free now.
  bool try_lock() { return m_.try_lock(); }
  /// Releases an exclusive hold.
  void unlock() { m_.unlock(); }
  /// Takes the lock shared.
  void lock_shared() {
    if (!poll([this] { return m_.try_lock_shared(); })) m_.lock_shared();
  }
  /// Takes the lock shared if no writer holds it now.
  bool try_lock_shared() { return m_.try_lock_shared(); }
  /// Releases a shared hold.
  void unlock_shared() { m_.unlock_shared(); }

 private:
  // A waiter's polls before it sleeps, with a CPU pause between two: a few
  // microseconds in all.
  static constexpr int kPolls = 128;
  template <class Try>
  static bool poll(Try&& try_take) {
    for (int i = 0; i < kPolls; ++i) {
      if (try_take()) return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      asm volatile("yield");
#endif
    }
    return false;
  }
  std::shared_mutex m_;
};

}  // namespace detail

/// No synchronisation between user threads: the store is used by one thread
/// at a time (the engine still guards what its background threads share).
struct NoLock {
  /// Informational only, kept because LockPolicy asks for it: whatever its
  /// value, every open waits up to Options::lock_timeout for the LOCK.
  static constexpr bool waits_for_other_processes = false;
  /// false: the lock synchronises nothing, so the engine uses a mutex of its
  /// own against its background threads.
  static constexpr bool thread_safe = false;
  /// Does nothing (a writer's lock).
  void lock() noexcept {}
  /// Does nothing.
  void unlock() noexcept {}
  /// Does nothing (a reader's lock).
  void lock_shared() noexcept {}
  /// Does nothing.
  void unlock_shared() noexcept {}
};

/// Many readers or one writer, across threads of this process. A waiter
/// polls the lock a few microseconds before it sleeps
/// (detail::PollingSharedMutex).
struct ThreadLock {
  /// Informational only, kept because LockPolicy asks for it: whatever its
  /// value, every open waits up to Options::lock_timeout for the LOCK.
  static constexpr bool waits_for_other_processes = false;
  /// true: the lock synchronises threads, and the engine uses it as is.
  static constexpr bool thread_safe = true;
  /// Takes the lock exclusively (a writer).
  void lock() { m_.lock(); }
  /// Releases an exclusive hold.
  void unlock() { m_.unlock(); }
  /// Takes the lock shared (a reader).
  void lock_shared() { m_.lock_shared(); }
  /// Releases a shared hold.
  void unlock_shared() { m_.unlock_shared(); }

 private:
  detail::PollingSharedMutex m_;
};

/// ThreadLock under another name. Opens with every policy wait up to
/// Options::lock_timeout for another process's LOCK; this one's true
/// waits_for_other_processes is a reminder of when only it did.
struct ProcessLock : ThreadLock {
  /// Informational only (see NoLock::waits_for_other_processes).
  static constexpr bool waits_for_other_processes = true;
};

}  // namespace stowage
