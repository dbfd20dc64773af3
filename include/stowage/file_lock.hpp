// SPDX-License-Identifier: BSL-1.0
// file_lock.hpp: the cross-process guard of a store directory.
//
// Every open takes `<dir>/LOCK` with a Boost.Interprocess file_lock (an fcntl
// lock on POSIX): a writable open exclusively, a read_only open shared, so
// any number of read_only opens coexist and a writer excludes them all (and
// they exclude it). An open waits up to its timeout for a holder that
// conflicts; a timeout of 0 fails at once.
//
// fcntl locks belong to the process, are dropped when ANY descriptor of the
// file is closed, and do not exclude a second open inside the same process.
// So an in-process registry keeps one entry per held directory: it owns the
// process's one descriptor of LOCK (the boost file_lock) and counts its
// holders. Several shared holders share that entry (closing one leaves the
// lock held for the others; the last one releases it); an exclusive holder
// has it to itself. The LOCK file is only opened (and a probe descriptor only
// closed) while the registry shows this process holding nothing on it.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/sync/file_lock.hpp>

#include "error.hpp"
#include "file.hpp"

namespace stowage::detail {

/// Holds `<dir>/LOCK` for its lifetime, exclusively or shared.
class FileLock {
 public:
  /// How the LOCK is held.
  enum class Mode {
    exclusive,  ///< one holder and no other: a writable open
    shared,     ///< any number of shared holders and no exclusive one: read_only opens
  };

  /// Takes the lock in `mode`, waiting up to `timeout` for another process,
  /// or another FileLock of this process, that holds it in a conflicting
  /// mode; a timeout of 0 (or less) fails at once. Throws LockError naming
  /// the path and, when known, whether a reader or a writer holds it; IoError
  /// when LOCK cannot be created.
  FileLock(const std::filesystem::path& dir, Mode mode, std::chrono::milliseconds timeout)
      : path_(dir / "LOCK"), mode_(mode) {
    try {
      key_ = std::filesystem::weakly_canonical(dir).string();
    } catch (const std::filesystem::filesystem_error&) {
      key_ = dir.string();
    }
    timeout = std::max(timeout, std::chrono::milliseconds(0));
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!join_in_process(deadline, timeout)) return;  // another shared holder of this process holds the lock
    std::unique_ptr<boost::interprocess::file_lock> lock;
    try {
      // This process holds nothing on LOCK now (our pending registry entry
      // keeps every other FileLock of it away), so closing drops nothing.
      int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) throw_io("create", path_, errno);  // an I/O problem (permissions, read-only fs), not a held lock
      ::close(fd);
      lock = std::make_unique<boost::interprocess::file_lock>(path_.c_str());
      bool ok = false;
      if (timeout.count() > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        auto abs = boost::posix_time::microsec_clock::universal_time() +
                   boost::posix_time::milliseconds(std::max<long long>(0, left.count()));
        ok = mode_ == Mode::shared ? lock->timed_lock_sharable(abs) : lock->timed_lock(abs);
      } else {
        ok = mode_ == Mode::shared ? lock->try_lock_sharable() : lock->try_lock();
      }
      if (!ok) {
        lock.reset();  // closes our descriptor: this process still holds nothing on LOCK
        throw LockError("stowage: " + path_.string() + " is held by " + other_process_holder() + waited(timeout) +
                        (mode_ == Mode::shared
                             ? "; a read_only open shares the store with other read_only opens only: close the "
                               "writing program or open with a longer lock_timeout"
                             : "; a writable open needs the store to itself: close the other program or open with "
                               "a longer lock_timeout"));
      }
    } catch (const boost::interprocess::interprocess_exception& e) {
      lock.reset();
      abandon();
      throw LockError("stowage: cannot lock " + path_.string() + ": " + e.what());
    } catch (...) {
      lock.reset();
      abandon();
      throw;
    }
    {
      std::lock_guard g(registry_mutex());
      Entry& entry = registry().at(key_);
      entry.lock = std::move(lock);
      entry.holders = 1;
      entry.pending = false;
    }
    registry_changed().notify_all();
  }

  /// Takes the lock exclusively, waiting up to `timeout` when `wait` is set
  /// and failing at once otherwise (the form the offline tools use).
  FileLock(const std::filesystem::path& dir, bool wait, std::chrono::milliseconds timeout)
      : FileLock(dir, Mode::exclusive, wait ? timeout : std::chrono::milliseconds(0)) {}

  /// Releases this hold; the process's lock goes with the last holder.
  ~FileLock() {
    {
      std::lock_guard g(registry_mutex());
      auto it = registry().find(key_);
      if (it != registry().end() && it->second.holders > 0 && --it->second.holders == 0) {
        try {
          if (it->second.mode == Mode::shared) it->second.lock->unlock_sharable();
          else it->second.lock->unlock();
        } catch (...) {
        }
        registry().erase(it);  // closes the process's descriptor of LOCK
      }
    }
    registry_changed().notify_all();
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  /// `<dir>/LOCK`.
  const std::filesystem::path& path() const { return path_; }
  /// How this FileLock holds it.
  Mode mode() const { return mode_; }

 private:
  // The process's hold on one directory's LOCK.
  struct Entry {
    Mode mode = Mode::exclusive;
    unsigned holders = 0;  // FileLocks sharing it (1 when exclusive); 0 while pending
    bool pending = true;   // its first holder is still taking the process's lock
    std::unique_ptr<boost::interprocess::file_lock> lock;  // the process's one descriptor of LOCK
  };

  static std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
  }
  static std::condition_variable& registry_changed() {
    static std::condition_variable cv;
    return cv;
  }
  static std::map<std::string, Entry>& registry() {
    static std::map<std::string, Entry> r;
    return r;
  }

  static std::string waited(std::chrono::milliseconds timeout) {
    return timeout.count() > 0 ? " (waited " + std::to_string(timeout.count()) + " ms)" : std::string();
  }

  // Waits until this process holds nothing on the directory that conflicts
  // with mode_. Returns true when this FileLock must take the process's lock
  // (a pending entry is registered for it), false when it joined the shared
  // holders of an entry that has it. Throws LockError at the deadline.
  bool join_in_process(std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds timeout) {
    std::unique_lock g(registry_mutex());
    auto& reg = registry();
    auto free = [&] {
      auto it = reg.find(key_);
      return it == reg.end() ||
             (mode_ == Mode::shared && it->second.mode == Mode::shared && !it->second.pending);
    };
    if (!registry_changed().wait_until(g, deadline, free)) {
      const Entry& e = reg.at(key_);
      std::string holder = e.mode == Mode::shared
                               ? (e.pending ? std::string("a reader being opened")
                                            : std::to_string(e.holders) + (e.holders == 1 ? " reader" : " readers")) +
                                     " (read_only Storage in this process)"
                               : std::string(e.pending ? "a writer being opened" : "a writer") +
                                     " (another Storage in this process)";
      throw LockError("stowage: " + path_.string() + " is already held by " + holder + waited(timeout) +
                      (mode_ == Mode::shared ? "; read_only opens share the store only with each other: close the "
                                               "writable one first"
                                             : "; a writable open needs the store to itself: close that one first"));
    }
    auto it = reg.find(key_);
    if (it == reg.end()) {
      reg.emplace(key_, Entry{mode_, 0, true, nullptr});
      return true;
    }
    ++it->second.holders;
    return false;
  }

  // Drops the pending entry of a FileLock that failed to take the lock.
  void abandon() {
    {
      std::lock_guard g(registry_mutex());
      registry().erase(key_);
    }
    registry_changed().notify_all();
  }

  // Who holds LOCK in another process, as far as fcntl(F_GETLK) tells. Called
  // only while this process holds nothing on LOCK (closing the probe
  // descriptor would drop the process's locks on the file).
  std::string other_process_holder() const {
    std::string fallback = mode_ == Mode::shared ? "a writer in another process" : "another process";
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fallback;
    struct flock probe {};
    probe.l_type = F_WRLCK;  // conflicts with every lock: reports any holder
    probe.l_whence = SEEK_SET;
    probe.l_start = 0;
    probe.l_len = 0;
    const int rc = ::fcntl(fd, F_GETLK, &probe);
    ::close(fd);
    if (rc != 0 || probe.l_type == F_UNLCK) return fallback;  // released meanwhile
    const std::string pid = " (pid " + std::to_string(probe.l_pid) + ")";
    return probe.l_type == F_RDLCK ? "a reader (a read_only open) in another process" + pid
                                   : "a writer in another process" + pid;
  }

  std::filesystem::path path_;
  std::string key_;
  Mode mode_;
};

}  // namespace stowage::detail
