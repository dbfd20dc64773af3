// SPDX-License-Identifier: BSL-1.0
// content_store.hpp: ContentStore, a content-addressed store of typed values
// over one Storage: a value is named by the SHA-256 of its serialized bytes
// (Digest), stored once however often it is put, never changed, and verified
// against its name on every read. On top of it: single-flight computation
// (get_or_compute: an identical computation runs once, in this process and
// across processes, while the other callers wait for its result) and garbage
// collection from named roots. Needs OpenSSL's libcrypto through digest.hpp:
// link stowage::content.
//
// Records in the underlying Storage<std::string, std::string> (docs/format.md#content-store):
//   'c' + digest (32 raw bytes)  -> 8-byte little-endian store time (ms since the
//                                   Unix epoch) + the serialized value
//   'm' + key digest             -> the 32-byte digest of the computed result
//   'p' + root name              -> the 32-byte digest the root pins
//
// Sharing between processes. Every writable open of a store takes its LOCK
// file exclusively (file_lock.hpp), so two processes cannot hold one store
// open for writing at once. With Sharing::processes a ContentStore therefore holds the store only
// while it works: an operation opens it (waiting up to Options::lock_timeout
// for another process to hand it over), and it is closed again once
// ContentOptions::hold_for passes without an operation, or at once when
// another process asks for it, so a burst of operations opens it once.
// Computations in flight are coordinated through a small directory beside
// the store, `<dir>.ops/`:
//   LOCK          flock(2)ed around every change of a record below; the kernel
//                 drops it when its holder dies, so it never stays taken
//   want          touched by a process that found the store held by another;
//                 the holder closes the store when it sees a touch newer than
//                 its open
//   <hex>.op      the operation record of a running or failed computation:
//                 attempt id, owner (pid and host), start time, state, error.
//                 Its modification time is the owner's heartbeat, refreshed
//                 every lease / 4 by a thread of the owner. A record not
//                 refreshed for a whole lease is stale: its owner is taken to
//                 be dead, and the next caller takes the computation over.
// A computation's result is in the store before its record is removed, so a
// waiter that sees the record gone finds the result (or, if the owner died
// between the two, takes over after the lease and finds it stored).
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "digest.hpp"
#include "storage.hpp"

namespace stowage {

/// A computation run by get_or_compute in another process threw; the message
/// carries that exception's what(). (Waiters in the same process get the
/// original exception object instead.)
class ComputeError : public Error {
 public:
  using Error::Error;
};

/// A get_or_compute waited ContentOptions::wait_timeout for another caller's
/// computation of the same key without seeing it finish or its owner die.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

/// Who shares a ContentStore's directory.
enum class Sharing {
  /// Only this process: the store stays open, threads coordinate in memory.
  one_process,
  /// Several processes: each operation opens and closes the store, and
  /// computations are coordinated through `<dir>.ops/` (see the top of
  /// content_store.hpp). Every process must open the store this way.
  processes,
};

/// Where a get_or_compute key stands.
enum class ComputeStatus {
  /// Never computed, or its result was collected.
  none,
  /// A computation is in flight (in this process, or in another whose lease is live).
  running,
  /// The result is stored.
  complete,
  /// The last computation threw, and none has succeeded since.
  failed,
};

/// How a ContentStore is opened.
struct ContentOptions {
  /// Options of the underlying Storage (cache, durability, lock_timeout, logger, ...).
  Options store{};
  /// See Sharing.
  Sharing sharing = Sharing::one_process;
  /// Sharing::processes: a computation whose owner has not refreshed its
  /// heartbeat for this long is taken over by the next caller.
  std::chrono::milliseconds lease{10000};
  /// How long get_or_compute waits for another caller's computation before
  /// giving TimeoutError.
  std::chrono::milliseconds wait_timeout{60000};
  /// Sharing::processes: how long the store stays open after an operation
  /// when no other process asks for it (a burst of operations opens it once).
  std::chrono::milliseconds hold_for{20};
};

/// get_or_compute counters since the ContentStore was opened.
struct ContentStats {
  std::uint64_t hits = 0;          ///< calls answered from the store without computing or waiting
  std::uint64_t computations = 0;  ///< calls that ran their function
  std::uint64_t waits = 0;         ///< calls that waited for another caller's computation
  std::uint64_t takeovers = 0;     ///< computations taken over from a dead owner in another process
  std::uint64_t failures = 0;      ///< computations whose function threw
};

/// What a collection did.
struct GcReport {
  std::uint64_t reachable = 0;      ///< values reachable from the roots
  std::uint64_t removed = 0;        ///< values removed
  std::uint64_t removed_bytes = 0;  ///< serialized bytes of the removed values
  std::uint64_t kept_young = 0;     ///< unreachable values kept because younger than older_than
  std::uint64_t memos_removed = 0;  ///< get_or_compute results forgotten because their value was removed
};

/// What a collection removes.
struct GcOptions {
  /// Only values stored at least this long ago are removed (a grace period
  /// for values put but not yet pinned or referenced). With no roots at all,
  /// a collection is a removal by age.
  std::chrono::milliseconds older_than{0};
  /// Values removed per step; writers of this process wait for at most one step.
  std::size_t step = 256;
  /// Called after every step with the report so far (progress, logging, tests).
  std::function<void(const GcReport&)> on_step{};
};

namespace detail::content {

inline constexpr char kContent = 'c';
inline constexpr char kMemo = 'm';
inline constexpr char kPin = 'p';

inline std::string record_key(char kind, std::string_view rest) {
  std::string k(1, kind);
  k.append(rest);
  return k;
}

inline std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

inline std::string error_text(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

/// An operation record of `<dir>.ops/` (see the top of this header).
struct OpRecord {
  std::uint64_t attempt = 0;
  long pid = 0;
  std::string host;
  std::uint64_t start_ms = 0;
  bool failed = false;
  std::string error;
  std::chrono::system_clock::time_point heartbeat{};  // the file's modification time

  std::string describe() const {
    return "pid " + std::to_string(pid) + " on " + host + ", started at " + std::to_string(start_ms) +
           " ms since the epoch";
  }
};

/// The coordination directory of Sharing::processes. Every method that reads
/// or changes a record must run while a Guard from lock() is alive.
class OpsDir {
 public:
  explicit OpsDir(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec)
      throw IoError("stowage: cannot create the coordination directory " + dir_.string() + ": " + ec.message() +
                    " (check permissions; it sits beside the store)");
  }

  /// flock(2) on `<dir>.ops/LOCK`, on a descriptor of its own, so that it
  /// also excludes other threads of this process.
  class Guard {
   public:
    explicit Guard(const std::filesystem::path& file) {
      fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd_ < 0) throw IoError("stowage: cannot open " + file.string() + ": " + std::strerror(errno));
      while (::flock(fd_, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        const int e = errno;
        ::close(fd_);
        throw IoError("stowage: cannot lock " + file.string() + ": " + std::strerror(e));
      }
    }
    ~Guard() { ::close(fd_); }  // closing the descriptor releases the flock
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    int fd_ = -1;
  };

  Guard lock() const { return Guard(dir_ / "LOCK"); }

  std::filesystem::path record_path(const Digest& key) const { return dir_ / (key.hex() + ".op"); }

  /// The record of key, if there is one. An unreadable record comes back
  /// with attempt 0 and an old heartbeat, so it is treated as stale.
  std::optional<OpRecord> read(const Digest& key) const {
    const auto path = record_path(key);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return std::nullopt;
      throw IoError("stowage: cannot open " + path.string() + ": " + std::strerror(errno));
    }
    std::string text;
    char buf[1024];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      text.append(buf, static_cast<std::size_t>(n));
      if (text.size() > 65536) break;  // a record is a few lines; never read without bound
    }
    struct stat st {};
    const bool stated = ::fstat(fd, &st) == 0;
    ::close(fd);
    OpRecord r = parse(text);
    if (stated)
      r.heartbeat = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
    return r;
  }

  /// Writes (or replaces) key's record atomically: temp file, rename. Returns
  /// an open descriptor of it, whose modification time is the heartbeat.
  int write(const Digest& key, const OpRecord& r) const {
    const auto path = record_path(key);
    auto tmp = path;
    tmp += ".tmp";
    const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw IoError("stowage: cannot create " + tmp.string() + ": " + std::strerror(errno));
    std::string text = "stowage-op 1\nattempt " + std::to_string(r.attempt) + "\nowner " + std::to_string(r.pid) +
                       " " + r.host + "\nstart " + std::to_string(r.start_ms) + "\nstate " +
                       (r.failed ? "failed" : "running") + "\nerror " + one_line(r.error) + "\n";
    const char* p = text.data();
    std::size_t left = text.size();
    while (left > 0) {
      const ssize_t n = ::write(fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int e = errno;
        ::close(fd);
        throw IoError("stowage: cannot write " + tmp.string() + ": " + std::strerror(e) + " (is the disk full?)");
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int e = errno;
      ::close(fd);
      throw IoError("stowage: cannot rename " + tmp.string() + " to " + path.string() + ": " + std::strerror(e));
    }
    return fd;
  }

  void remove(const Digest& key) const { ::unlink(record_path(key).c_str()); }

  /// Asks the process holding the store to hand it over: touches `want`.
  void ask_for_store() const {
    const auto path = dir_ / "want";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;  // the holder then closes at hold_for; slower, not wrong
    ::futimens(fd, nullptr);
    ::close(fd);
  }

  /// Whether some process touched `want` after `since`.
  bool store_wanted_since(std::chrono::system_clock::time_point since) const {
    struct stat st {};
    if (::stat((dir_ / "want").c_str(), &st) != 0) return false;
    const auto touched = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
    return touched > since;
  }

 private:
  static std::string one_line(std::string s) {
    std::replace(s.begin(), s.end(), '\n', ' ');
    if (s.size() > 4000) s.resize(4000);
    return s;
  }

  static OpRecord parse(const std::string& text) {
    OpRecord r;
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) nl = text.size();
      const std::string_view line(text.data() + pos, nl - pos);
      pos = nl + 1;
      const auto sp = line.find(' ');
      if (sp == std::string_view::npos) continue;
      const std::string_view field = line.substr(0, sp), value = line.substr(sp + 1);
      if (field == "attempt") {
        r.attempt = to_u64(value);
      } else if (field == "owner") {
        const auto sp2 = value.find(' ');
        r.pid = static_cast<long>(to_u64(value.substr(0, sp2)));
        if (sp2 != std::string_view::npos) r.host = std::string(value.substr(sp2 + 1));
      } else if (field == "start") {
        r.start_ms = to_u64(value);
      } else if (field == "state") {
        r.failed = value == "failed";
      } else if (field == "error") {
        r.error = std::string(value);
      }
    }
    return r;
  }

  static std::uint64_t to_u64(std::string_view s) {
    std::uint64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9' || v > (~std::uint64_t{0} - 9) / 10) return 0;
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
  }

  std::filesystem::path dir_;
};

/// While alive, touches an operation record's descriptor every `every`, so
/// other processes see its owner alive; closes the descriptor at the end.
class Heartbeat {
 public:
  Heartbeat(int fd, std::chrono::milliseconds every)
      : fd_(fd), thread_([this, every] {
          std::unique_lock lock(mu_);
          while (!cv_.wait_for(lock, every, [this] { return stop_; })) ::futimens(fd_, nullptr);
        }) {}
  ~Heartbeat() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    ::close(fd_);
  }
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

 private:
  int fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace detail::content

/// A content-addressed store of Values: put() returns the Digest (SHA-256) of
/// the value's serialized bytes and stores those bytes once; get() verifies
/// them against the digest. get_or_compute() runs a computation once per key
/// across threads (and processes, with Sharing::processes); collect() removes
/// values no root reaches. The policies are those of Storage: Serializer
/// makes the bytes that are hashed; Compression, Eviction and Lock apply to
/// the underlying store. Thread-safe with every Lock policy but NoLock.
// Default template arguments: in stowage_fwd.hpp.
template <class Value, class Serializer, class Compression, class Eviction, class Lock>
class ContentStore {
  static_assert(SerializerFor<Serializer, Value>,
                "stowage: ContentStore's Serializer must provide static id(), serialize(const Value&, std::string&) "
                "and deserialize<Value>(std::string_view) for this Value");

  using Store = Storage<std::string, std::string, BinarySerializer, Compression, Eviction, Lock>;
  using Clock = std::chrono::steady_clock;

 public:
  /// Lists the digests a value refers to; collect() keeps everything reachable
  /// from a root through it.
  using References = std::function<std::vector<Digest>(const Value&)>;

  /// Opens (or creates) the content store in dir. With Sharing::one_process
  /// the store stays open (LockError when another process holds it); with
  /// Sharing::processes it is held only while this process works with it and
  /// `<dir>.ops/` is created beside it (see the top of this header).
  /// `references` is what collect() follows from the roots.
  explicit ContentStore(const std::filesystem::path& dir, ContentOptions options = {}, References references = {})
      : dir_(dir), opt_(std::move(options)), refs_(std::move(references)) {
    if (opt_.lease.count() <= 0 || opt_.wait_timeout.count() < 0)
      throw ValidationError("stowage: ContentOptions for " + dir.string() +
                            " need a positive lease and a non-negative wait_timeout");
    if (opt_.sharing == Sharing::one_process) {
      store_ = std::make_unique<Store>(dir_, opt_.store);
    } else {
      session_options_ = opt_.store;
      // Each close checkpoints, so the next open has no WAL to replay (measured
      // before holding was added: 3.6 ms per open + get + close, 4.9 ms without).
      session_options_.checkpoint_on_close = true;
      // Each open attempt fails at once when another process holds the
      // store, so that with_store can ask it to hand the store over; its own
      // loop waits up to the store's lock_timeout.
      session_options_.lock_timeout = std::chrono::milliseconds(0);
      ops_.emplace(std::filesystem::path(dir_.string() + ".ops"));
      holder_ = std::thread([this] { hold_loop(); });
      try {
        with_store([](Store&) { return true; });  // creates the store, or reports why it cannot be opened
      } catch (...) {
        stop_holding();
        throw;
      }
    }
  }

  /// Closes the store (errors are logged through Options::logger, not thrown).
  ~ContentStore() {
    try {
      close();
    } catch (const std::exception& e) {
      if (opt_.store.logger) opt_.store.logger(LogLevel::error, std::string("content store close failed: ") + e.what());
    }
  }
  ContentStore(const ContentStore&) = delete;
  ContentStore& operator=(const ContentStore&) = delete;

  /// The digest put(value) would return, without storing anything.
  static Digest digest_of(const Value& value) { return sha256(serialize(value)); }

  /// The digest of any input Serializer can write: a get_or_compute key
  /// naming the computation's input.
  template <class Input>
  static Digest key_of(const Input& input) {
    std::string bytes;
    Serializer::serialize(input, bytes);
    return sha256(bytes);
  }

  /// Stores value (unless the same bytes are stored already) and returns its digest.
  Digest put(const Value& value) {
    std::string bytes = serialize(value);
    const Digest d = sha256(bytes);
    std::shared_lock gc(gc_mu_);
    with_store([&](Store& s) {
      const std::string key = content_key(d);
      if (!s.contains(key)) s.put(key, content_record(bytes));
      return true;
    });
    note_fresh(d);
    return d;
  }

  /// put() for every value of the range, as one atomic commit; the digests in order.
  template <class Range>
  std::vector<Digest> put_batch(const Range& values) {
    std::vector<Digest> digests;
    std::vector<std::pair<std::string, std::string>> records;
    std::unordered_set<Digest> in_batch;
    for (const auto& v : values) {
      std::string bytes = serialize(v);
      digests.push_back(sha256(bytes));
      if (in_batch.insert(digests.back()).second)
        records.emplace_back(content_key(digests.back()), content_record(bytes));
    }
    std::shared_lock gc(gc_mu_);
    with_store([&](Store& s) {
      std::erase_if(records, [&](const auto& r) { return s.contains(r.first); });
      s.put_batch(records);
      return true;
    });
    for (const auto& d : in_batch) note_fresh(d);
    return digests;
  }

  /// The value stored under digest, or std::nullopt. CorruptionError when the
  /// stored bytes do not hash to digest.
  std::optional<Value> get(const Digest& digest) const {
    return with_store([&](Store& s) { return read_value(s, digest); });
  }

  /// Whether a value is stored under digest (not verified; get() verifies).
  bool contains(const Digest& digest) const {
    return with_store([&](Store& s) { return s.contains(content_key(digest)); });
  }

  /// Number of values stored (a scan of the content records).
  std::size_t count() const {
    return with_store([&](Store& s) {
      std::size_t n = 0;
      for ([[maybe_unused]] const auto& record : s.scan(std::string(1, detail::content::kContent),
                                                         std::string(1, detail::content::kContent + 1)))
        ++n;
      return n;
    });
  }

  /// The result of the computation named key: the stored one when there is
  /// one; else, if another caller (thread, or process with Sharing::processes)
  /// is computing it, that one's result once it is stored; else fn()'s result,
  /// stored as a value (put) and remembered under key. An exception from fn
  /// reaches every caller waiting for it (in other processes as ComputeError)
  /// and nothing is stored. TimeoutError after ContentOptions::wait_timeout.
  template <class Fn>
  Value get_or_compute(const Digest& key, Fn&& fn) {
    static_assert(std::is_convertible_v<std::invoke_result_t<Fn&>, Value>,
                  "stowage: get_or_compute's function must take no arguments and return the store's Value");
    if (auto v = lookup(key)) {
      ++hits_;
      return std::move(*v);
    }
    std::promise<Value> promise;
    std::shared_future<Value> future;
    bool leader = false;
    {
      std::lock_guard g(flights_mu_);
      auto it = flights_.find(key);
      if (it != flights_.end()) {
        future = it->second;
      } else {
        future = promise.get_future().share();
        flights_.emplace(key, future);
        leader = true;
      }
    }
    if (!leader) {
      ++waits_;
      log(LogLevel::info, "waiting for the computation of " + key.hex() + " in this process");
      if (future.wait_for(opt_.wait_timeout) != std::future_status::ready)
        throw TimeoutError("stowage: waited " + std::to_string(opt_.wait_timeout.count()) +
                           " ms for the computation of " + key.hex() + " in " + dir_.string() +
                           " by another thread; raise ContentOptions::wait_timeout or look at that computation");
      return future.get();
    }
    try {
      Value v = lead(key, fn);
      promise.set_value(v);
      end_flight(key, nullptr);
      return v;
    } catch (...) {
      const auto e = std::current_exception();
      promise.set_exception(e);
      end_flight(key, &e);
      throw;
    }
  }

  /// get_or_compute(sha256(key), fn): any string as the key.
  template <class Fn>
  Value get_or_compute(std::string_view key, Fn&& fn) {
    return get_or_compute(sha256(key), std::forward<Fn>(fn));
  }

  /// Where the computation named key stands.
  ComputeStatus status(const Digest& key) const {
    {
      std::lock_guard g(flights_mu_);
      if (flights_.count(key)) return ComputeStatus::running;
    }
    const bool stored = with_store([&](Store& s) {
      auto m = s.get(memo_key(key));
      return m && m->size() == Digest::size && s.contains(detail::content::record_key(detail::content::kContent, *m));
    });
    if (stored) return ComputeStatus::complete;
    if (ops_) {
      auto guard = ops_->lock();
      if (auto r = ops_->read(key)) {
        if (r->failed) return ComputeStatus::failed;
        if (!stale(*r)) return ComputeStatus::running;
      }
    }
    std::lock_guard g(flights_mu_);
    return failures_.count(key) ? ComputeStatus::failed : ComputeStatus::none;
  }

  /// get_or_compute counters since open.
  ContentStats stats() const {
    return ContentStats{hits_.load(), computations_.load(), waits_.load(), takeovers_.load(), failures_count_.load()};
  }

  /// Makes name a root that keeps digest (and what it references) from
  /// collection, replacing what name pinned before. ValidationError when no
  /// value is stored under digest.
  void pin(std::string_view name, const Digest& digest) {
    std::shared_lock gc(gc_mu_);
    with_store([&](Store& s) {
      if (!s.contains(content_key(digest)))
        throw ValidationError("stowage: cannot pin \"" + std::string(name) + "\" to " + digest.hex() + " in " +
                              dir_.string() + ": no value is stored under that digest (put it first)");
      s.put(detail::content::record_key(detail::content::kPin, name), std::string(digest.raw()));
      return true;
    });
    note_fresh(digest);
  }

  /// Removes the root name; returns whether it existed.
  bool unpin(std::string_view name) {
    return with_store([&](Store& s) { return s.erase(detail::content::record_key(detail::content::kPin, name)); });
  }

  /// The digest root name pins, if it exists.
  std::optional<Digest> pinned(std::string_view name) const {
    return with_store([&](Store& s) -> std::optional<Digest> {
      auto v = s.get(detail::content::record_key(detail::content::kPin, name));
      if (!v) return std::nullopt;
      return to_digest(*v, "root");
    });
  }

  /// Every root, by name.
  std::vector<std::pair<std::string, Digest>> pins() const {
    return with_store([&](Store& s) {
      std::vector<std::pair<std::string, Digest>> out;
      for (const auto& [k, v] : s.scan(std::string(1, detail::content::kPin), std::string(1, detail::content::kPin + 1)))
        out.emplace_back(k.substr(1), to_digest(v, "root"));
      return out;
    });
  }

  /// Marks every value reachable from the roots (through the References
  /// function) and removes the others stored at least options.older_than ago,
  /// with the get_or_compute results that named them. With Sharing::one_process
  /// readers go on throughout and writers of this process wait for at most
  /// one step; a value put or pinned during the collection is kept. With
  /// Sharing::processes the collection holds the store for its whole pass.
  /// A crash at any point loses nothing reachable (each removal is its own
  /// commit; nothing reachable is ever removed).
  GcReport collect(const GcOptions& options = {}) {
    std::lock_guard one(collect_mu_);
    if (ops_) return with_store([&](Store& s) { return collect_in(s, options, false); });
    {
      std::unique_lock gc(gc_mu_);
      std::lock_guard f(fresh_mu_);
      fresh_.clear();
      collecting_ = true;
    }
    struct Done {
      ContentStore* self;
      ~Done() {
        std::lock_guard f(self->fresh_mu_);
        self->collecting_ = false;
        self->fresh_.clear();
      }
    } done{this};
    return collect_in(*store_, options, true);
  }

  /// Makes every write that returned survive power loss (Sharing::processes:
  /// every operation already ends with a flush).
  void flush() {
    if (store_) store_->flush();
  }

  /// Closes the store (Sharing::processes: hands it back if held); later
  /// calls throw ValidationError. Idempotent.
  void close() {
    if (store_) store_->close();
    if (ops_) stop_holding();
  }

  /// The store's directory.
  const std::filesystem::path& path() const { return dir_; }

 private:
  static std::string serialize(const Value& v) {
    std::string out;
    Serializer::serialize(v, out);
    return out;
  }
  static std::string content_key(const Digest& d) { return detail::content::record_key(detail::content::kContent, d.raw()); }
  static std::string memo_key(const Digest& d) { return detail::content::record_key(detail::content::kMemo, d.raw()); }
  static std::string content_record(std::string_view bytes) {
    std::string r;
    r.reserve(8 + bytes.size());
    detail::put_fixed64(r, detail::content::now_ms());
    r.append(bytes);
    return r;
  }

  Digest to_digest(std::string_view raw, const char* what) const {
    if (raw.size() != Digest::size)
      throw CorruptionError(dir_, 0, std::string("a ") + what + " record holds " + std::to_string(raw.size()) +
                                         " bytes instead of a 32-byte digest");
    return Digest::from_bytes(raw);
  }

  /// The serialized bytes of the content record of d, verified against d.
  std::optional<std::string> read_bytes(Store& s, const Digest& d) const {
    auto rec = s.get(content_key(d));
    if (!rec) return std::nullopt;
    if (rec->size() < 8)
      throw CorruptionError(dir_, 0, "the content record of " + d.hex() + " is " + std::to_string(rec->size()) +
                                         " bytes, shorter than its 8-byte header");
    rec->erase(0, 8);
    const Digest actual = sha256(*rec);
    if (actual != d)
      throw CorruptionError(dir_, 0, "the value stored as " + d.hex() + " hashes to " + actual.hex());
    return rec;
  }

  std::optional<Value> read_value(Store& s, const Digest& d) const {
    auto bytes = read_bytes(s, d);
    if (!bytes) return std::nullopt;
    return Serializer::template deserialize<Value>(*bytes);
  }

  /// The stored result of key, if it and its value are there.
  std::optional<Value> lookup(const Digest& key) const {
    return with_store([&](Store& s) -> std::optional<Value> {
      auto m = s.get(memo_key(key));
      if (!m) return std::nullopt;
      return read_value(s, to_digest(*m, "computation result"));
    });
  }

  /// Stores v as a value and as key's result, in one commit.
  void store_result(const Digest& key, const Value& v) {
    std::string bytes = serialize(v);
    const Digest d = sha256(bytes);
    std::shared_lock gc(gc_mu_);
    with_store([&](Store& s) {
      std::vector<std::pair<std::string, std::string>> records;
      if (!s.contains(content_key(d))) records.emplace_back(content_key(d), content_record(bytes));
      records.emplace_back(memo_key(key), std::string(d.raw()));
      s.put_batch(records);
      return true;
    });
    note_fresh(d);
  }

  template <class Fn>
  Value compute(const Digest& key, Fn& fn) {
    ++computations_;
    try {
      Value v = std::invoke(fn);
      store_result(key, v);
      return v;
    } catch (...) {
      ++failures_count_;
      throw;
    }
  }

  /// The leader of this process's callers for key: finds, waits for, or computes the result.
  template <class Fn>
  Value lead(const Digest& key, Fn& fn) {
    if (auto v = lookup(key)) {  // stored between the caller's first look and its flight
      ++hits_;
      return std::move(*v);
    }
    if (!ops_) return compute(key, fn);
    return lead_across_processes(key, fn);
  }

  enum class Step { own, wait, done, failed };

  template <class Fn>
  Value lead_across_processes(const Digest& key, Fn& fn) {
    using namespace detail::content;
    const auto deadline = Clock::now() + opt_.wait_timeout;
    auto pause = std::chrono::milliseconds(1);
    const auto max_pause = std::clamp(opt_.lease / 8, std::chrono::milliseconds(1), std::chrono::milliseconds(25));
    bool waiting = false;            // whether this caller waits for another's computation ...
    std::uint64_t waited = 0;        // ... and which attempt of it
    OpRecord seen;
    bool counted_wait = false;
    for (;;) {
      Step step;
      int fd = -1;
      OpRecord mine;
      {
        auto guard = ops_->lock();
        auto r = ops_->read(key);
        if (!r) {
          step = waiting ? Step::done : Step::own;
        } else if (r->failed) {
          step = (waiting && waited == r->attempt) ? Step::failed : Step::own;
        } else if (stale(*r)) {
          step = Step::own;
          ++takeovers_;
          log(LogLevel::warning, "taking over the computation of " + key.hex() + " from " + r->describe() +
                                     ": no heartbeat for " + std::to_string(opt_.lease.count()) + " ms");
        } else {
          step = Step::wait;
        }
        if (r) seen = *r;
        if (step == Step::own) {
          mine = OpRecord{new_attempt(), static_cast<long>(::getpid()), host_name(), now_ms(), false, {}, {}};
          fd = ops_->write(key, mine);
        }
      }
      switch (step) {
        case Step::own: {
          detail::content::Heartbeat heartbeat(fd, std::max(opt_.lease / 4, std::chrono::milliseconds(1)));
          try {
            std::optional<Value> v = lookup(key);  // finished by another process just before we claimed it?
            if (!v) v = compute(key, fn);
            release(key, mine, nullptr);
            return std::move(*v);
          } catch (...) {
            const auto e = std::current_exception();
            release(key, mine, &e);
            throw;
          }
        }
        case Step::done:
          if (auto v = lookup(key)) return std::move(*v);
          waiting = false;  // the owner left without a result: compute it ourselves
          continue;
        case Step::failed:
          throw ComputeError("stowage: the computation of " + key.hex() + " for " + dir_.string() +
                             " failed in another process (" + seen.describe() + "): " + seen.error);
        case Step::wait:
          if (!counted_wait) {
            counted_wait = true;
            ++waits_;
            log(LogLevel::info, "waiting for the computation of " + key.hex() + " by " + seen.describe());
          }
          waiting = true;
          waited = seen.attempt;
          if (Clock::now() >= deadline)
            throw TimeoutError("stowage: waited " + std::to_string(opt_.wait_timeout.count()) +
                               " ms for the computation of " + key.hex() + " in " + dir_.string() + " by " +
                               seen.describe() + ", which is still alive (its heartbeat is fresh); raise "
                               "ContentOptions::wait_timeout, or stop that process to have it taken over");
          std::this_thread::sleep_for(std::min(pause, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                          deadline - Clock::now()) + std::chrono::milliseconds(1)));
          pause = std::min(pause * 2, max_pause);
          continue;
      }
    }
  }

  /// Ends this process's ownership of key's record: removes it, or marks it
  /// failed with the exception's message; leaves a record that another
  /// process took over alone.
  void release(const Digest& key, detail::content::OpRecord mine, const std::exception_ptr* error) {
    auto guard = ops_->lock();
    auto r = ops_->read(key);
    if (!r || r->attempt != mine.attempt) return;
    if (!error) {
      ops_->remove(key);
      return;
    }
    mine.failed = true;
    mine.error = detail::content::error_text(*error);
    ::close(ops_->write(key, mine));
  }

  bool stale(const detail::content::OpRecord& r) const {
    return std::chrono::system_clock::now() - r.heartbeat > opt_.lease;
  }

  static std::uint64_t new_attempt() {
    static thread_local std::mt19937_64 rng(std::random_device{}() ^ (static_cast<std::uint64_t>(::getpid()) << 32) ^
                                            detail::content::now_ms());
    std::uint64_t a = 0;
    while (a == 0) a = rng();
    return a;
  }

  static std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
    return buf;
  }

  void end_flight(const Digest& key, const std::exception_ptr* error) {
    std::lock_guard g(flights_mu_);
    flights_.erase(key);
    if (error)
      failures_[key] = detail::content::error_text(*error);
    else
      failures_.erase(key);
  }

  // Called by writers while they hold gc_mu_ shared, so a collection step sees it.
  void note_fresh(const Digest& d) {
    std::lock_guard f(fresh_mu_);
    if (collecting_) fresh_.push_back(d);
  }

  void log(LogLevel level, const std::string& msg) const {
    if (opt_.store.logger) opt_.store.logger(level, "content store " + dir_.string() + ": " + msg);
  }

  /// Marks everything reachable from the digests on stack.
  void mark(Store& s, std::vector<Digest>& stack, std::unordered_set<Digest>& marked) const {
    while (!stack.empty()) {
      const Digest d = stack.back();
      stack.pop_back();
      if (!marked.insert(d).second || !refs_) continue;
      auto v = read_value(s, d);
      if (!v) continue;  // a root naming a value that is gone: nothing below it to keep
      for (const Digest& child : refs_(*v)) stack.push_back(child);
    }
  }

  GcReport collect_in(Store& s, const GcOptions& o, bool concurrent) {
    using namespace detail::content;
    GcReport report;
    std::unordered_set<Digest> marked;
    std::vector<Digest> stack;
    for (const auto& [k, v] : s.scan(std::string(1, kPin), std::string(1, kPin + 1))) stack.push_back(to_digest(v, "root"));
    mark(s, stack, marked);
    // Candidates: unmarked values old enough. The scan runs beside writers.
    const std::uint64_t cutoff = now_ms() - std::min<std::uint64_t>(now_ms(), static_cast<std::uint64_t>(o.older_than.count()));
    std::vector<std::pair<Digest, std::uint64_t>> candidates;
    for (const auto& [k, v] : s.scan(std::string(1, kContent), std::string(1, kContent + 1))) {
      const Digest d = to_digest(std::string_view(k).substr(1), "content key");
      if (marked.count(d)) {
        ++report.reachable;
      } else if (v.size() >= 8 && detail::decode_fixed64(v.data()) > cutoff) {
        ++report.kept_young;
      } else {
        candidates.emplace_back(d, v.size() >= 8 ? v.size() - 8 : 0);
      }
    }
    std::unordered_set<Digest> removed;
    const std::size_t step = std::max<std::size_t>(o.step, 1);
    for (std::size_t i = 0; i < candidates.size(); i += step) {
      {
        std::unique_lock<std::shared_mutex> gc(gc_mu_, std::defer_lock);
        if (concurrent) {
          gc.lock();
          std::lock_guard f(fresh_mu_);
          stack.insert(stack.end(), fresh_.begin(), fresh_.end());
          fresh_.clear();
        }
        mark(s, stack, marked);  // what writers stored or pinned since the mark began, and below it
        for (std::size_t j = i; j < std::min(candidates.size(), i + step); ++j) {
          const auto& [d, bytes] = candidates[j];
          if (marked.count(d)) continue;
          if (s.erase(content_key(d))) {
            ++report.removed;
            report.removed_bytes += bytes;
            removed.insert(d);
          }
        }
      }
      if (o.on_step) o.on_step(report);
    }
    // Results of get_or_compute whose value is gone.
    std::vector<std::string> stale_memos;
    for (const auto& [k, v] : s.scan(std::string(1, kMemo), std::string(1, kMemo + 1)))
      if (v.size() == Digest::size && removed.count(Digest::from_bytes(v))) stale_memos.push_back(k);
    for (const auto& k : stale_memos) {
      std::unique_lock<std::shared_mutex> gc(gc_mu_, std::defer_lock);
      if (concurrent) gc.lock();
      auto v = s.get(k);
      if (v && v->size() == Digest::size && !s.contains(record_key(kContent, *v)) && s.erase(k)) ++report.memos_removed;
    }
    return report;
  }

  /// Runs f on the open store: the one kept open (Sharing::one_process), or
  /// the one this object holds for a while (Sharing::processes), opening it
  /// first when it is not held.
  template <class F>
  auto with_store(F&& f) const {
    if (store_) return f(*store_);
    std::unique_lock session(session_mu_);
    if (stopping_) throw ValidationError("stowage: the content store " + dir_.string() + " is closed");
    if (!held_) {
      held_ = open_session();
      held_since_ = std::chrono::system_clock::now();
      hold_cv_.notify_all();
    }
    try {
      auto result = f(*held_);
      last_use_ = Clock::now();
      return result;
    } catch (...) {
      release_held();  // after an I/O error the store refuses writes: open it afresh next time
      throw;
    }
  }

  /// Opens the store, asking its holder to hand it over and retrying until
  /// Options::lock_timeout. Called with session_mu_ held.
  std::unique_ptr<Store> open_session() const {
    const auto deadline = Clock::now() + opt_.store.lock_timeout;
    auto pause = std::chrono::milliseconds(1);
    for (;;) {
      try {
        return std::make_unique<Store>(dir_, session_options_);
      } catch (const LockError& e) {
        if (Clock::now() + pause > deadline)
          throw LockError(std::string(e.what()) + " (the content store waited " +
                          std::to_string(opt_.store.lock_timeout.count()) +
                          " ms for another process to hand the store over; raise Options::lock_timeout, and open "
                          "every process's ContentStore with Sharing::processes)");
        ops_->ask_for_store();
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(5));
      }
    }
  }

  /// Closes the held store. Called with session_mu_ held.
  void release_held() const {
    if (!held_) return;
    try {
      held_->close();
    } catch (const std::exception& e) {
      log(LogLevel::error, std::string("closing the store failed: ") + e.what());
    }
    held_.reset();
  }

  /// The holder thread (Sharing::processes): while the store is held, closes
  /// it once hold_for passed without an operation or another process asked
  /// for it (checked every millisecond); sleeps while it is not held.
  void hold_loop() {
    std::unique_lock session(session_mu_);
    while (!stopping_) {
      if (!held_) {
        hold_cv_.wait(session, [this] { return stopping_ || held_ != nullptr; });
        continue;
      }
      hold_cv_.wait_for(session, std::chrono::milliseconds(1), [this] { return stopping_; });
      if (held_ && (Clock::now() - last_use_ >= opt_.hold_for || ops_->store_wanted_since(held_since_)))
        release_held();
    }
    release_held();
  }

  void stop_holding() {
    {
      std::lock_guard session(session_mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    hold_cv_.notify_all();
    if (holder_.joinable()) holder_.join();
  }

  std::filesystem::path dir_;
  ContentOptions opt_;
  References refs_;
  Options session_options_{};
  std::unique_ptr<Store> store_;                  // Sharing::one_process: the open store
  std::optional<detail::content::OpsDir> ops_;   // Sharing::processes: `<dir>.ops/`
  // Sharing::processes: the store while held, and the thread that hands it back.
  mutable std::mutex session_mu_;                 // guards the members below; one operation at a time
  mutable std::unique_ptr<Store> held_;
  mutable std::chrono::system_clock::time_point held_since_{};
  mutable Clock::time_point last_use_{};
  mutable std::condition_variable hold_cv_;
  bool stopping_ = false;
  std::thread holder_;

  mutable std::mutex flights_mu_;
  std::unordered_map<Digest, std::shared_future<Value>> flights_;  // computations in flight here
  std::unordered_map<Digest, std::string> failures_;              // last failure per key, until a success

  // Collection: writers hold gc_mu_ shared; a collection step holds it
  // exclusively. While collecting_, writers list what they stored in fresh_.
  std::shared_mutex gc_mu_;
  std::mutex collect_mu_;
  std::mutex fresh_mu_;
  bool collecting_ = false;
  std::vector<Digest> fresh_;

  mutable std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> computations_{0}, waits_{0}, takeovers_{0}, failures_count_{0};
};

}  // namespace stowage
