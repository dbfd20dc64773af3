// SPDX-License-Identifier: BSL-1.0
// file_lock.hpp: the cross-process guard of a store directory.
//
// Every open takes `<dir>/LOCK` exclusively with a Boost.Interprocess
// file_lock (an fcntl lock on POSIX). fcntl locks belong to the process and
// are dropped when ANY descriptor of the file is closed, and they do not
// exclude a second open inside the same process; so the LOCK file is opened
// once per process and store, and an in-process registry of held directories
// refuses a second Storage on the same directory.
#pragma once

#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/sync/file_lock.hpp>

#include "error.hpp"
#include "file.hpp"

namespace stowage::detail {

/// Holds `<dir>/LOCK` for its lifetime.
class FileLock {
 public:
  /// Takes the lock; waits up to `timeout` when `wait` is set, else fails at
  /// once. Throws LockError naming the path.
  FileLock(const std::filesystem::path& dir, bool wait, std::chrono::milliseconds timeout)
      : path_(dir / "LOCK") {
    try {
      key_ = std::filesystem::weakly_canonical(dir).string();
    } catch (const std::filesystem::filesystem_error&) {
      key_ = dir.string();
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!register_in_process(wait, deadline))
      throw LockError("stowage: " + path_.string() +
                      " is already held by another Storage in this process; close that one first");
    try {
      int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) throw_io("create", path_, errno);  // an I/O problem (permissions, read-only fs), not a held lock
      ::close(fd);  // nothing else holds the lock in this process yet, so closing drops nothing
      lock_ = boost::interprocess::file_lock(path_.c_str());
      bool ok = false;
      if (wait) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        auto abs = boost::posix_time::microsec_clock::universal_time() +
                   boost::posix_time::milliseconds(std::max<long long>(0, left.count()));
        ok = lock_.timed_lock(abs);
      } else {
        ok = lock_.try_lock();
      }
      if (!ok)
        throw LockError("stowage: " + path_.string() + " is held by another process" +
                        (wait ? " (waited " + std::to_string(timeout.count()) + " ms)" : "") +
                        "; close the other program or open with ProcessLock and a longer lock_timeout");
    } catch (const boost::interprocess::interprocess_exception& e) {
      unregister();
      throw LockError("stowage: cannot lock " + path_.string() + ": " + e.what());
    } catch (...) {
      unregister();
      throw;
    }
  }
  ~FileLock() {
    try {
      lock_.unlock();
    } catch (...) {
    }
    unregister();
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  static std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
  }
  static std::set<std::string>& registry() {
    static std::set<std::string> s;
    return s;
  }
  bool register_in_process(bool wait, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      {
        std::lock_guard g(registry_mutex());
        if (registry().insert(key_).second) return true;
      }
      if (!wait || std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling, as file_lock::timed_lock does
    }
  }
  void unregister() {
    std::lock_guard g(registry_mutex());
    registry().erase(key_);
  }

  std::filesystem::path path_;
  std::string key_;
  boost::interprocess::file_lock lock_;
};

}  // namespace stowage::detail
