// Exception-injection sweeps, beside the I/O fault sweep (io_fault_test):
// failures that are not I/O errors must not lose acknowledged data either.
//
//   [alloc]  std::bad_alloc at the k-th allocation, for EVERY k, of each of
//            put (new key, overwrite), put_batch, erase, discard, checkpoint, open
//            with WAL replay, and a migration. The allocation counter is
//            thread-local (operator new is replaced in this file), so only
//            the calling thread's allocations are counted and failed.
//   [policy] a user policy throwing its own exception type (PolicyError,
//            not derived from std::exception) at its k-th call, for every k,
//            during a fixed workload (open with WAL replay, put_batch, put,
//            erase, reads, checkpoint, reads, put, close): a Serializer, a
//            Compression, an Eviction policy and a FileSystem.
//
// For every point:
//  - the process does not terminate (a noexcept path that throws would);
//  - the injected exception reaches the caller: a call during which the
//    fault fired throws (it may arrive wrapped, e.g. as a MigrationError);
//  - in the process, the store shows every acknowledged record, and the
//    call that threw either wholly or not at all (a batch is never
//    half-visible); a store that still takes writes after a throwing
//    write shows none of it, also after reopen (it must not be in the WAL);
//  - reopened (no fault), the store holds every acknowledged record, the
//    failed call all or nothing, and at least what the process showed.
//
// The tests are written against the public API only, so they hold for any
// engine under Storage. STOWAGE_EXCEPTION_STRIDE=k tries every k-th point
// (default 1). Stores live under /dev/shm when it is writable (as in
// io_fault_test), else the system temp directory.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <stowage/stowage.hpp>

#include "migration_util.hpp"
#include "test_util.hpp"

// ---- allocation injection ----------------------------------------------------

namespace {
// 0: off; n > 0: the n-th allocation from now (on this thread) throws.
thread_local long t_countdown = 0;
thread_local long t_allocations = 0;  // allocations counted while armed
thread_local bool t_counting = false;
thread_local bool t_fired = false;

void* checked_alloc(std::size_t n, std::size_t align) {
  if (t_counting) {
    ++t_allocations;
    if (t_countdown > 0 && --t_countdown == 0) {
      t_fired = true;
      throw std::bad_alloc();
    }
  }
  if (n == 0) n = 1;
  void* p = align <= alignof(std::max_align_t) ? std::malloc(n) : std::aligned_alloc(align, (n + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return checked_alloc(n, 0); }
void* operator new[](std::size_t n) { return checked_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return checked_alloc(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return checked_alloc(n, static_cast<std::size_t>(a)); }
// The nothrow forms too, so that every form of new is paired with these
// deletes (a sanitizer's own new would not be).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return checked_alloc(n, 0);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return checked_alloc(n, 0);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return checked_alloc(n, static_cast<std::size_t>(a));
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return checked_alloc(n, static_cast<std::size_t>(a));
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace stowage;

namespace {

// ---- policies that throw -------------------------------------------------------

// What a user policy throws: deliberately not a std::exception.
struct PolicyError {
  long point;
};

// Counts policy calls; the fail_at-th one throws PolicyError (0: never).
std::atomic<long> g_policy_calls{0};
std::atomic<long> g_policy_fail_at{0};
std::atomic<bool> g_policy_fired{false};
std::atomic<bool> g_policy_paused{false};  // the checks' own calls neither count nor throw
void policy_call() {
  if (g_policy_paused.load()) return;
  const long n = ++g_policy_calls;
  if (n == g_policy_fail_at.load()) {
    g_policy_fired = true;
    throw PolicyError{n};
  }
}
// Pauses the policy faults while it lives.
struct PolicyPause {
  PolicyPause() { g_policy_paused = true; }
  ~PolicyPause() { g_policy_paused = false; }
  PolicyPause(const PolicyPause&) = delete;
  PolicyPause& operator=(const PolicyPause&) = delete;
};
void arm_policy(long fail_at) {
  g_policy_calls = 0;
  g_policy_fired = false;
  g_policy_fail_at = fail_at;
}

struct ThrowingSerializer {
  static constexpr std::string_view id() { return "binary-1"; }
  template <class T>
  static void serialize(const T& v, std::string& out) {
    policy_call();
    BinarySerializer::serialize(v, out);
  }
  template <class T>
  static T deserialize(std::string_view bytes) {
    policy_call();
    return BinarySerializer::deserialize<T>(bytes);
  }
};

struct ThrowingCompression {
  static constexpr std::uint8_t id = 200;
  static constexpr std::string_view name = "lz4-throwing";
  static void compress(std::string_view in, std::string& out) {
    policy_call();
    Lz4Compression::compress(in, out);
  }
  static void decompress(std::string_view in, std::size_t raw_size, char* out) {
    policy_call();
    Lz4Compression::decompress(in, raw_size, out);
  }
};

// LRU whose insert, touch and victim throw (erase must not throw: the
// EvictionPolicy concept says so).
struct ThrowingEviction {
  static constexpr std::string_view name = "lru-throwing";
  using hook = LruEviction::hook;
  template <class Entry>
  class queue {
   public:
    void insert(Entry& e) {
      policy_call();
      lru_.insert(e);
    }
    void touch(Entry& e) {
      policy_call();
      lru_.touch(e);
    }
    void erase(Entry& e) { lru_.erase(e); }
    Entry* victim() {
      policy_call();
      return lru_.victim();
    }

   private:
    LruEviction::queue<Entry> lru_;
  };
};

// The POSIX file system, every call of which (files' too) counts as a policy call.
class ThrowingFileSystem final : public FileSystem {
 public:
  ThrowingFileSystem() : base_(default_file_system()) {}

  std::unique_ptr<WritableFile> create(const std::filesystem::path& p) override {
    policy_call();
    return std::make_unique<Writable>(base_->create(p));
  }
  std::unique_ptr<WritableFile> open_append(const std::filesystem::path& p) override {
    policy_call();
    return std::make_unique<Writable>(base_->open_append(p));
  }
  std::unique_ptr<WritableFile> open_write(const std::filesystem::path& p) override {
    policy_call();
    return std::make_unique<Writable>(base_->open_write(p));
  }
  std::unique_ptr<RandomAccessFile> open_read(const std::filesystem::path& p) override {
    policy_call();
    return std::make_unique<Readable>(base_->open_read(p));
  }
  void rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    policy_call();
    base_->rename(from, to);
  }
  void remove(const std::filesystem::path& p) override {
    policy_call();
    base_->remove(p);
  }
  void truncate(const std::filesystem::path& p, std::uint64_t size) override {
    policy_call();
    base_->truncate(p, size);
  }
  void sync_dir(const std::filesystem::path& dir) override {
    policy_call();
    base_->sync_dir(dir);
  }
  void create_dirs(const std::filesystem::path& dir) override {
    policy_call();
    base_->create_dirs(dir);
  }
  std::vector<std::string> list(const std::filesystem::path& dir) override {
    policy_call();
    return base_->list(dir);
  }
  bool exists(const std::filesystem::path& p) override {
    policy_call();
    return base_->exists(p);
  }
  bool is_directory(const std::filesystem::path& p) override {
    policy_call();
    return base_->is_directory(p);
  }
  void link(const std::filesystem::path& from, const std::filesystem::path& to) override {
    policy_call();
    base_->link(from, to);
  }

 private:
  class Writable final : public WritableFile {
   public:
    explicit Writable(std::unique_ptr<WritableFile> f) : f_(std::move(f)) {}
    void append(std::string_view data) override {
      policy_call();
      f_->append(data);
    }
    void flush() override {
      policy_call();
      f_->flush();
    }
    void sync() override {
      policy_call();
      f_->sync();
    }
    void sync_flushed() override {
      policy_call();
      f_->sync_flushed();
    }
    void close() override {
      policy_call();
      f_->close();
    }
    std::uint64_t size() const override { return f_->size(); }
    bool write_at(std::uint64_t offset, std::string_view data) override {
      policy_call();
      return f_->write_at(offset, data);
    }

   private:
    std::unique_ptr<WritableFile> f_;
  };
  class Readable final : public RandomAccessFile {
   public:
    explicit Readable(std::unique_ptr<RandomAccessFile> f) : f_(std::move(f)) {}
    std::size_t read(std::uint64_t offset, std::size_t n, char* dst) const override {
      policy_call();
      return f_->read(offset, n, dst);
    }
    std::uint64_t size() const override { return f_->size(); }
    const std::filesystem::path& path() const override { return f_->path(); }

   private:
    std::unique_ptr<RandomAccessFile> f_;
  };
  std::shared_ptr<FileSystem> base_;
};

// ---- scratch stores and the model ----------------------------------------------

struct ScratchDir : stowage_test::ScratchDir {
  ScratchDir() : stowage_test::ScratchDir("exf") {}
};

long stride() {
  const char* s = std::getenv("STOWAGE_EXCEPTION_STRIDE");
  const long v = s ? std::atol(s) : 1;
  return v < 1 ? 1 : v;
}

Options small_options(std::shared_ptr<FileSystem> fs = nullptr) {
  Options o;
  o.cache_bytes = 256 << 10;
  o.chunk_bytes = 4 << 10;
  o.block_bytes = 512;
  o.write_buffer_bytes = 64 << 10;
  o.checkpoint_on_close = false;  // reopen replays the WAL: open's replay path is exercised every time
  // Compactions run where the workload calls compact(), on its thread: a
  // policy's k-th call is the same call in every run.
  o.auto_compaction = false;
  o.file_system = std::move(fs);
  return o;
}

std::string value_of(int key, int round) {
  std::string v = "v" + std::to_string(key) + "/" + std::to_string(round) + "/";
  v.append(static_cast<std::size_t>(key * 7 % 40), static_cast<char>('a' + (key + round) % 26));
  return v;
}

using Model = std::map<int, std::string>;
// An operation's effect: key -> new value (nullopt: erased).
using Effect = std::map<int, std::optional<std::string>>;

Model with(Model m, const Effect& e) {
  for (const auto& [k, v] : e) {
    if (v)
      m[k] = *v;
    else
      m.erase(k);
  }
  return m;
}

// The store's contents through a full scan, checked against get(), contains() and size().
template <class Store>
Model contents(const Store& db) {
  Model m;
  for (const auto& [k, v] : db.scan()) m.emplace(k, v);
  for (const auto& [k, v] : m) {
    auto got = db.get(k);
    if (!got || *got != v) FAIL("get(" << k << ") disagrees with the scan");
  }
  if (db.size() != m.size()) FAIL("size() " << db.size() << " but the scan returned " << m.size());
  return m;
}

// What a check found: which of the allowed states the store is in.
enum class Seen { before, after, neither };
Seen classify(const Model& got, const Model& before, const Model& after) {
  if (got == after) return Seen::after;
  if (got == before) return Seen::before;
  return Seen::neither;
}

// Initial store: 60 records in chunks (written by a checkpoint), then 30
// overwrites, 20 new keys and 8 erases only in the WAL.
template <class Store>
Model make_store(const std::filesystem::path& dir, Options o) {
  Model m;
  Store db(dir, o);
  std::vector<std::pair<int, std::string>> batch;
  for (int k = 0; k < 60; ++k) batch.emplace_back(k, value_of(k, 1));
  db.put_batch(batch);
  db.checkpoint();
  for (const auto& [k, v] : batch) m[k] = v;
  for (int k = 30; k < 80; ++k) {
    db.put(k, value_of(k, 2));
    m[k] = value_of(k, 2);
  }
  for (int k = 50; k < 58; ++k) {
    db.erase(k);
    m.erase(k);
  }
  db.close();
  return m;
}

void copy_store(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::remove_all(to);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
  std::filesystem::remove(to / "LOCK");
}

// ---- the allocation sweep --------------------------------------------------------

using Store = Storage<int, std::string>;

struct AllocResult {
  bool fired = false;
  bool threw = false;
  std::string what;
};

// Runs f with the k-th allocation of this thread failing (k = 0: none, just counting).
template <class F>
AllocResult run_with_alloc_fault(long k, F&& f, long* allocations = nullptr) {
  AllocResult r;
  t_fired = false;
  t_allocations = 0;
  t_countdown = k;
  t_counting = true;
  try {
    f();
  } catch (const std::bad_alloc&) {
    r.threw = true;
    r.what = "std::bad_alloc";
  } catch (const std::exception& e) {
    r.threw = true;
    r.what = e.what();
  }
  t_counting = false;
  t_countdown = 0;
  r.fired = t_fired;
  if (allocations) *allocations = t_allocations;
  return r;
}

// One write-call sweep: for every k, copy the template store, open it, run
// op(db) with the k-th allocation failing, then check the store in the
// process and after reopen. `effect` is what op does when it succeeds.
void sweep_write_call(const std::string& name, const std::function<void(Store&)>& op, const Effect& effect,
                      long& points, long& absorbed) {
  ScratchDir scratch;
  const auto tmpl = scratch / "template";
  const Model before = make_store<Store>(tmpl, small_options());
  const Model after = with(before, effect);
  long total = 0;
  {
    copy_store(tmpl, scratch / "count");
    Store db(scratch / "count", small_options());
    auto r = run_with_alloc_fault(0, [&] { op(db); }, &total);
    REQUIRE_FALSE(r.threw);
    REQUIRE(contents(db) == after);
  }
  INFO(name << ": " << total << " allocations");
  REQUIRE(total > 0);
  const auto dir = scratch / "store";
  // Until the call runs to its end before the k-th allocation (the count
  // above may differ a little from run to run).
  for (long k = 1; k <= 2 * total + 100; k += stride()) {
    INFO(name << ": allocation " << k << " of " << total << " fails");
    copy_store(tmpl, dir);
    std::optional<Seen> in_process;
    bool fired = false;
    {
      Store db(dir, small_options());
      AllocResult r = run_with_alloc_fault(k, [&] { op(db); });
      INFO("threw: " << r.threw << " (" << r.what << ")");
      fired = r.fired;
      const Model got = contents(db);
      in_process = classify(got, before, after);
      REQUIRE(*in_process != Seen::neither);
      // A call that absorbed the failure (a cache or an index that goes
      // without memory it could do without) must have done all of its work.
      if (!r.threw) {
        REQUIRE(got == after);
        if (fired) ++absorbed;
      }
      // A store that still takes writes must not hold the failed call in its WAL.
      bool writable = true;
      try {
        db.put(100000, "probe");
      } catch (const IoError&) {
        writable = false;
      }
      if (writable) {
        if (r.threw) REQUIRE(got == before);
        db.erase(100000);
      }
    }
    Store db(dir, small_options());
    Seen reopened = classify(contents(db), before, after);
    REQUIRE(reopened != Seen::neither);
    if (*in_process == Seen::after) REQUIRE(reopened == Seen::after);
    if (!fired) break;
    ++points;
  }
}

}  // namespace

TEST_CASE("bad_alloc at every allocation of a write call loses nothing and never half-applies", "[alloc]") {
  long points = 0, absorbed = 0;
  sweep_write_call("put (new key)", [](Store& db) { db.put(500, value_of(500, 3)); }, {{500, value_of(500, 3)}},
                   points, absorbed);
  sweep_write_call("put (overwrite)", [](Store& db) { db.put(35, value_of(35, 9) + "longer"); },
                   {{35, value_of(35, 9) + "longer"}}, points, absorbed);
  {
    std::vector<std::pair<int, std::string>> batch;
    Effect effect;
    for (int k = 0; k < 40; k += 2) {  // overwrites of chunk and buffered keys, then new keys
      batch.emplace_back(k, value_of(k, 4) + std::string(static_cast<std::size_t>(k), 'z'));
      effect[k] = batch.back().second;
    }
    for (int k = 200; k < 230; ++k) {
      batch.emplace_back(k, value_of(k, 4));
      effect[k] = batch.back().second;
    }
    sweep_write_call("put_batch", [batch](Store& db) { db.put_batch(batch); }, effect, points, absorbed);
  }
  static bool erased = false;
  sweep_write_call(
      "erase", [](Store& db) { erased = db.erase(40); }, {{40, std::nullopt}}, points, absorbed);
  REQUIRE(erased);
  sweep_write_call(
      "discard", [](Store& db) { db.discard(41); }, {{41, std::nullopt}}, points, absorbed);
  sweep_write_call("checkpoint", [](Store& db) { db.checkpoint(); }, {}, points, absorbed);
  WARN("write-call allocation points tried: " << points << " (" << absorbed << " absorbed, the call then complete)");
}

namespace {

// Sweeps an open: for every k, prepare(dir) lays the store out, open(dir)
// opens it with the k-th allocation failing (an open that survives checks
// what it serves, with counting off), then check(dir) reopens it without
// faults and checks it. Ends when an open runs through before the k-th.
void sweep_open(const ScratchDir& scratch, const std::function<void(const std::filesystem::path&)>& prepare,
                const std::function<void(const std::filesystem::path&)>& open,
                const std::function<void(const std::filesystem::path&)>& check) {
  long total = 0;
  for (int pass = 0; pass < 2; ++pass) {  // twice: the first open also makes what the process keeps (statics)
    prepare(scratch / "count");
    run_with_alloc_fault(0, [&] { open(scratch / "count"); }, &total);
  }
  REQUIRE(total > 100);
  const auto dir = scratch / "store";
  long points = 0;
  // Until the open runs to its end before the k-th allocation (the count
  // above may differ a little from run to run).
  for (long k = 1; k <= 2 * total + 100; k += stride()) {
    INFO("allocation " << k << " of " << total << " fails");
    prepare(dir);
    AllocResult r = run_with_alloc_fault(k, [&] { open(dir); });
    check(dir);
    if (!r.fired) break;
    ++points;
  }
  WARN("open allocation points tried: " << points);
}

}  // namespace

TEST_CASE("bad_alloc at every allocation of an open with WAL replay", "[alloc]") {
  ScratchDir scratch;
  const auto tmpl = scratch / "template";
  const Model model = make_store<Store>(tmpl, small_options());
  sweep_open(
      scratch, [&](const std::filesystem::path& dir) { copy_store(tmpl, dir); },
      [&](const std::filesystem::path& dir) {
        Store db(dir, small_options());
        t_counting = false;
        REQUIRE(contents(db) == model);
      },
      [&](const std::filesystem::path& dir) {
        Store db(dir, small_options());
        REQUIRE(contents(db) == model);
      });
}

TEST_CASE("bad_alloc at every allocation of a migration leaves the old version or the new one", "[alloc]") {
  using stowage_test::MigV1;
  using stowage_test::MigV2;
  ScratchDir scratch;
  const auto tmpl = scratch / "template";
  Options o = small_options();
  std::map<int, std::string> v1;
  {
    Storage<int, MigV1> db(tmpl, o);
    for (int k = 0; k < 40; ++k) db.put(k, MigV1{value_of(k, 1)});
    db.checkpoint();
    for (int k = 20; k < 50; ++k) db.put(k, MigV1{value_of(k, 2)});
    for (int k = 0; k < 50; ++k) v1[k] = k < 20 ? value_of(k, 1) : value_of(k, 2);
  }
  auto check_v2 = [&](const Storage<int, MigV2>& db) {
    std::size_t n = 0;
    for (const auto& [k, v] : db.scan()) {
      ++n;
      auto it = v1.find(k);
      REQUIRE(it != v1.end());
      MigV2 want = stowage_test::upgrade(MigV1{it->second});
      REQUIRE(v.text == want.text);
      REQUIRE(v.length == want.length);
    }
    REQUIRE(n == v1.size());
  };
  auto backups = [&](const std::filesystem::path& dir) { return dir.string() + "-backups"; };
  sweep_open(
      scratch,
      [&](const std::filesystem::path& dir) {
        copy_store(tmpl, dir);
        std::filesystem::remove_all(backups(dir));
      },
      [&](const std::filesystem::path& dir) {
        Storage<int, MigV2> db(dir, o, stowage_test::mig_steps(backups(dir)));
        t_counting = false;
        check_v2(db);
      },
      // Not migrated, or migrated whole: either way an open with the steps
      // ends at version 2 with every record.
      [&](const std::filesystem::path& dir) {
        Storage<int, MigV2> db(dir, o, stowage_test::mig_steps(backups(dir)));
        check_v2(db);
      });
}

// ---- the policy sweep ----------------------------------------------------------

namespace {

// The fixed workload on a copy of the template store, with the fail_at-th
// policy call throwing. Returns whether the fault fired. Checks as the file
// comment says.
template <class Store2>
bool policy_run(const std::filesystem::path& tmpl, const Model& initial, const std::filesystem::path& dir,
                const std::function<Options()>& options, long fail_at, long* calls = nullptr) {
  copy_store(tmpl, dir);
  Model model = initial;        // acknowledged
  Effect in_flight;             // the call that threw, if it was a write
  bool write_threw = false;
  bool fault_reached_caller = false;
  arm_policy(fail_at);
  std::optional<Seen> in_process;
  {
    std::unique_ptr<Store2> db;
    try {
      db = std::make_unique<Store2>(dir, options());
    } catch (const PolicyError&) {
      fault_reached_caller = true;
    }
    if (db) {
      // Each write: on a throw, stop writing (the store may be failed).
      auto write = [&](const Effect& effect, const std::function<void()>& call) {
        if (write_threw) return;
        try {
          call();
          model = with(model, effect);
        } catch (const PolicyError&) {
          fault_reached_caller = true;
          write_threw = true;
          in_flight = effect;
        }
      };
      auto read = [&] {
        try {
          Model got = contents(*db);
          if (!write_threw) REQUIRE(got == model);
        } catch (const PolicyError&) {
          fault_reached_caller = true;
        }
      };
      std::vector<std::pair<int, std::string>> batch;
      Effect batch_effect;
      for (int k = 100; k < 112; ++k) {
        batch.emplace_back(k, value_of(k, 5));
        batch_effect[k] = value_of(k, 5);
      }
      write(batch_effect, [&] { db->put_batch(batch); });
      write({{5, value_of(5, 6)}}, [&] { db->put(5, value_of(5, 6)); });
      write({{31, std::nullopt}}, [&] {
        const bool existed = db->erase(31);
        REQUIRE(existed);
      });
      read();
      write({}, [&] { db->checkpoint(); });
      read();
      write({}, [&] { db->compact(); });
      read();
      write({{120, value_of(120, 7)}}, [&] { db->put(120, value_of(120, 7)); });
      {
        // The state in the process, with faults paused.
        PolicyPause pause;
        in_process = classify(contents(*db), model, with(model, in_flight));
        REQUIRE(*in_process != Seen::neither);
        if (write_threw) {
          bool writable = true;
          try {
            db->put(100000, "probe");
            db->erase(100000);
          } catch (const IoError&) {
            writable = false;
          }
          // A store that still takes writes holds nothing of the failed call
          // (compact() changes no record: there before and after agree).
          if (writable) REQUIRE((*in_process == Seen::before || with(model, in_flight) == model));
        }
      }
      try {
        db->close();
      } catch (const PolicyError&) {
        fault_reached_caller = true;
      }
    }
  }
  const bool fired = g_policy_fired.load();
  if (calls) *calls = g_policy_calls.load();
  g_policy_fail_at = 0;
  if (fired) REQUIRE(fault_reached_caller);
  PolicyPause pause;
  Store2 db(dir, options());
  Seen reopened = classify(contents(db), model, with(model, in_flight));
  REQUIRE(reopened != Seen::neither);
  if (in_process == Seen::after) REQUIRE(reopened == Seen::after);
  return fired;
}

template <class Store2>
long policy_sweep(const std::string& name, const std::function<Options()>& options) {
  ScratchDir scratch;
  const auto tmpl = scratch / "template";
  arm_policy(0);
  const Model initial = make_store<Store2>(tmpl, options());
  long total = 0;
  REQUIRE_FALSE(policy_run<Store2>(tmpl, initial, scratch / "count", options, 0, &total));
  INFO(name << ": " << total << " policy calls");
  REQUIRE(total > 0);
  long points = 0;
  // Until the call runs to its end before the k-th allocation (the count
  // above may differ a little from run to run).
  for (long k = 1; k <= 2 * total + 100; k += stride()) {
    INFO(name << ": call " << k << " of " << total << " throws");
    if (!policy_run<Store2>(tmpl, initial, scratch / "store", options, k)) break;
    ++points;
  }
  return points;
}

}  // namespace

TEST_CASE("a Serializer throwing its own exception at every call", "[policy]") {
  long n = policy_sweep<Storage<int, std::string, ThrowingSerializer>>("serializer", [] { return small_options(); });
  WARN("serializer points: " << n);
}

TEST_CASE("a Compression throwing its own exception at every call", "[policy]") {
  long n = policy_sweep<Storage<int, std::string, BinarySerializer, ThrowingCompression>>(
      "compression", [] { return small_options(); });
  WARN("compression points: " << n);
}

TEST_CASE("an Eviction policy throwing its own exception at every call", "[policy]") {
  long n = policy_sweep<Storage<int, std::string, BinarySerializer, Lz4Compression, ThrowingEviction>>(
      "eviction", [] { return small_options(); });
  WARN("eviction points: " << n);
}

TEST_CASE("a FileSystem throwing its own exception at every call", "[policy]") {
  long n = policy_sweep<Store>("file system", [] { return small_options(std::make_shared<ThrowingFileSystem>()); });
  WARN("file system points: " << n);
}
