// SPDX-License-Identifier: BSL-1.0
// file_lock.hpp: the cross-process guard of a store directory.
//
// A writable open holds the store exclusively, a read_only open shared, so any
// number of read_only opens coexist and a writer excludes them all (and they
// exclude it). An open waits up to its timeout for a holder that conflicts,
// polling with a short backoff; a timeout of 0 fails at once.
//
// Two kernel locks make up the hold, so that a read_only open writes nothing
// to the directory (it works on read-only media, and never creates LOCK):
//
//  - a flock(2) on a descriptor of the directory itself: LOCK_EX for a
//    writer, LOCK_SH for a reader. It needs no file, so it guards a store
//    whose LOCK does not exist (a fresh copy, or LOCK deleted).
//  - an fcntl(2) lock on `<dir>/LOCK`: a writer creates LOCK if missing,
//    opens it read-write and takes F_WRLCK; a reader takes F_RDLCK on a
//    read-only descriptor, and only when LOCK exists (it never creates it).
//    This is the lock earlier stowage versions take (and only it), so an
//    older writer or reader in another process is still excluded. One gap
//    is left: an older writer that creates LOCK while a reader holds a store
//    whose LOCK was missing does not see that reader.
//
// Each attempt takes both locks without waiting, or neither: a conflict
// releases what the attempt took before it backs off and tries again. On a
// network filesystem the directory's flock may be seen on one host only.
//
// fcntl locks belong to the process, are dropped when ANY descriptor of the
// file is closed, and do not exclude a second open inside the same process
// (flock locks, per open file description, would exclude it even between
// readers). So an in-process registry keeps one entry per held directory: it
// owns the process's one descriptor of the directory and of LOCK, and counts
// its holders. Several shared holders share that entry (closing one leaves
// the lock held for the others; the last one releases it); an exclusive
// holder has it to itself. LOCK is only opened (and a probe descriptor only
// closed) while the registry shows this process holding nothing on it. A
// child forked while the lock is held inherits the directory's descriptor
// but never releases the parent's flock through it.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "error.hpp"
#include "file.hpp"

namespace stowage::detail {

/// Holds a store directory (its flock and `<dir>/LOCK`) for its lifetime,
/// exclusively or shared.
class FileLock {
 public:
  /// How the store is held.
  enum class Mode {
    exclusive,  ///< one holder and no other: a writable open
    shared,     ///< any number of shared holders and no exclusive one: read_only opens
  };

  /// Takes the lock in `mode`, waiting up to `timeout` for another process,
  /// or another FileLock of this process, that holds it in a conflicting
  /// mode; a timeout of 0 (or less) fails at once. A shared hold writes
  /// nothing (LOCK is neither created nor opened for writing). Throws
  /// LockError naming the path and, when known, whether a reader or a writer
  /// holds it; IoError when the directory cannot be opened, or when an
  /// exclusive hold cannot create or open LOCK for writing.
  FileLock(const std::filesystem::path& dir, Mode mode, std::chrono::milliseconds timeout)
      : dir_(dir), path_(dir / "LOCK"), mode_(mode) {
    try {
      key_ = std::filesystem::weakly_canonical(dir).string();
    } catch (const std::filesystem::filesystem_error&) {
      key_ = dir.string();
    }
    timeout = std::max(timeout, std::chrono::milliseconds(0));
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!join_in_process(deadline, timeout)) return;  // another shared holder of this process holds the lock
    Hold hold;
    try {
      hold = take(deadline, timeout);
    } catch (...) {
      abandon();
      throw;
    }
    {
      std::lock_guard g(registry_mutex());
      Entry& entry = registry().at(key_);
      entry.hold = std::move(hold);
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
      if (it != registry().end() && it->second.holders > 0 && --it->second.holders == 0)
        registry().erase(it);  // releases both locks and closes the process's descriptors
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
  // The process's kernel locks on one directory: the flock on dir_fd, and the
  // fcntl lock on LOCK through lock_fd (-1 for a shared hold of a store
  // without LOCK). Released when it dies; the flock is unlocked explicitly
  // only by the process that took it (a forked child shares the open file
  // description, and its unlock would release the parent's lock).
  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& o) noexcept { *this = std::move(o); }
    Hold& operator=(Hold&& o) noexcept {
      if (this != &o) {
        release();
        dir_fd = std::exchange(o.dir_fd, -1);
        lock_fd = std::exchange(o.lock_fd, -1);
        owner = o.owner;
        flocked = std::exchange(o.flocked, false);
      }
      return *this;
    }
    ~Hold() { release(); }

    // Drops the flock (if this process took it) and closes both descriptors;
    // closing lock_fd drops the fcntl lock.
    void release() noexcept {
      if (lock_fd >= 0) ::close(std::exchange(lock_fd, -1));
      if (flocked && owner == ::getpid()) ::flock(dir_fd, LOCK_UN);
      flocked = false;
      if (dir_fd >= 0) ::close(std::exchange(dir_fd, -1));
    }

    int dir_fd = -1;
    int lock_fd = -1;
    pid_t owner = 0;
    bool flocked = false;
  };

  // The process's hold on one directory.
  struct Entry {
    Mode mode = Mode::exclusive;
    unsigned holders = 0;  // FileLocks sharing it (1 when exclusive); 0 while pending
    bool pending = true;   // its first holder is still taking the process's lock
    Hold hold;             // the process's descriptors and locks
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
      reg.emplace(key_, Entry{mode_, 0, true, Hold{}});
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

  // Takes the process's lock, trying again with a short backoff until the
  // deadline (once when the timeout is 0). Called only while this process
  // holds nothing on the directory (its pending registry entry keeps every
  // other FileLock of it away), so closing a descriptor of LOCK drops nothing.
  Hold take(std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds timeout) const {
    Hold hold;
    hold.dir_fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (hold.dir_fd < 0) throw_io("open", dir_, errno);  // an I/O problem (permissions, not a directory)
    hold.owner = ::getpid();
    std::chrono::milliseconds backoff{1};
    for (;;) {
      if (try_take(hold)) return hold;
      const auto now = std::chrono::steady_clock::now();
      if (timeout.count() == 0 || now >= deadline) break;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(backoff, deadline - now));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(20));
    }
    hold.release();  // this process holds nothing on the directory while it looks for the holder
    throw LockError("stowage: " + path_.string() + " is held by " + other_process_holder() + waited(timeout) +
                    (mode_ == Mode::shared
                         ? "; a read_only open shares the store with other read_only opens only: close the "
                           "writing program or open with a longer lock_timeout"
                         : "; a writable open needs the store to itself: close the other program or open with "
                           "a longer lock_timeout"));
  }

  // One attempt: both locks without waiting, or neither (false: a conflict).
  bool try_take(Hold& hold) const {
    if (!flock_now(hold.dir_fd, mode_ == Mode::shared ? LOCK_SH : LOCK_EX)) return false;
    hold.flocked = true;
    auto drop_flock = [&] {
      ::flock(hold.dir_fd, LOCK_UN);
      hold.flocked = false;
    };
    int fd = -1;
    if (mode_ == Mode::exclusive) {
      fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) {
        const int err = errno;
        drop_flock();
        throw_io("create", path_, err);  // an I/O problem (permissions, read-only fs), not a held lock
      }
    } else {
      fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        const int err = errno;
        if (err == ENOENT) return true;  // no LOCK: the directory's flock alone guards the store
        drop_flock();
        throw_io("open", path_, err);
      }
    }
    struct flock want {};
    want.l_type = mode_ == Mode::shared ? F_RDLCK : F_WRLCK;
    want.l_whence = SEEK_SET;
    want.l_start = 0;
    want.l_len = 0;
    int rc;
    while ((rc = ::fcntl(fd, F_SETLK, &want)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
      const int err = errno;
      ::close(fd);  // this process held nothing on LOCK: closing drops nothing
      drop_flock();
      if (err == EACCES || err == EAGAIN) return false;
      throw LockError("stowage: cannot lock " + path_.string() + ": " + std::strerror(err));
    }
    hold.lock_fd = fd;
    return true;
  }

  // flock(LOCK_NB): true when taken, false when another holder conflicts.
  bool flock_now(int fd, int how) const {
    while (::flock(fd, how | LOCK_NB) != 0) {
      const int err = errno;
      if (err == EWOULDBLOCK) return false;
      if (err != EINTR) throw LockError("stowage: cannot lock " + dir_.string() + ": " + std::strerror(err));
    }
    return true;
  }

  // Who holds the store in another process in a mode that conflicts with
  // mode_: the fcntl lock on LOCK as fcntl(F_GETLK) reports it, else the
  // directory's flock (its holder's pid as /proc/locks shows it, where there
  // is one). Called only while this process holds nothing on the directory
  // (closing the probe descriptor of LOCK would drop the process's locks on
  // the file).
  std::string other_process_holder() const {
    const std::string reader = "a reader (a read_only open) in another process";
    const std::string writer = "a writer in another process";
    auto with_pid = [](const std::string& who, long pid) {
      return pid > 0 ? who + " (pid " + std::to_string(pid) + ")" : who;
    };
    if (int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
      struct flock probe {};
      probe.l_type = mode_ == Mode::shared ? F_RDLCK : F_WRLCK;  // reports a holder that conflicts with mode_
      probe.l_whence = SEEK_SET;
      probe.l_start = 0;
      probe.l_len = 0;
      const int rc = ::fcntl(fd, F_GETLK, &probe);
      ::close(fd);
      if (rc == 0 && probe.l_type != F_UNLCK) return with_pid(probe.l_type == F_RDLCK ? reader : writer, probe.l_pid);
    }
    bool write = false;
    if (long pid = directory_flock_holder(write); pid != 0) return with_pid(write ? writer : reader, pid);
    if (mode_ == Mode::shared) return writer;  // only an exclusive flock conflicts with a shared one
    // Readers hold the directory shared: a probe takes it shared too when
    // only readers hold it (released at once).
    int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return "another process";
    const bool readers = ::flock(dfd, LOCK_SH | LOCK_NB) == 0;
    if (readers) ::flock(dfd, LOCK_UN);
    ::close(dfd);
    return readers ? reader : "another process";
  }

  // The pid of a process with a flock on the directory that conflicts with
  // mode_, from /proc/locks (Linux); `write` tells whether it is exclusive.
  // 0 when none is found (released meanwhile, or no /proc/locks).
  long directory_flock_holder(bool& write) const {
    struct stat st {};
    if (::stat(dir_.c_str(), &st) != 0) return 0;
    char id[64];
    std::snprintf(id, sizeof id, "%02x:%02x:%llu", static_cast<unsigned>(major(st.st_dev)),
                  static_cast<unsigned>(minor(st.st_dev)), static_cast<unsigned long long>(st.st_ino));
    std::ifstream in("/proc/locks");
    std::string line;
    while (std::getline(in, line)) {
      // "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF"; lines starting
      // "1: ->" are waiters, which hold nothing.
      std::istringstream fields(line);
      std::string n, kind, advisory, type, file;
      long pid = 0;
      if (!(fields >> n >> kind >> advisory >> type >> pid >> file)) continue;
      if (kind != "FLOCK" || file != id) continue;
      if (mode_ == Mode::shared && type != "WRITE") continue;
      write = type == "WRITE";
      return pid > 0 ? pid : -1;
    }
    return 0;
  }

  std::filesystem::path dir_;
  std::filesystem::path path_;
  std::string key_;
  Mode mode_;
};

}  // namespace stowage::detail
