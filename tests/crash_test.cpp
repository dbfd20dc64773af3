// Crash tests with real processes: a forked child writes to a store and
// reports every operation that RETURNED to the parent through a pipe; the
// parent kills it with SIGKILL, reopens the store and checks it against a
// reference model. Where the kill lands varies by round:
//
//  - after a random number of acknowledgements (the child runs on: the kill
//    lands wherever it is, mostly inside a put, erase or batch, while its
//    background threads flush and compact and a reader thread scans, so
//    iterators pin Versions whose files compactions replace);
//  - exactly before the n-th file-system step that orders data on disk
//    (create, sync, rename, remove, truncate, directory sync, close: inside
//    checkpoints, chunk splits, manifest installs, WAL rollover, recovery):
//    the child runs on a pass-through FaultFileSystem whose hook reports each
//    such step and waits for the parent's go-ahead, and the parent kills it
//    instead of answering;
//  - while the child is opening the store (recovery of the previous kill);
//  - during a migration (its own test case): a child opens a version-1 store
//    with a version-2 program and is killed exactly before its n-th
//    file-system step (backup, new chunks, MANIFEST swap, cleanup); the
//    store must then hold all of version 1 or all of version 2.
//
// The store is one Storage, or (its own test case, [collections]) a Database
// with two collections, "a" and "b", written with the same op stream: model
// key k is key k of "a" below kKeys / 2 and key k - kKeys / 2 of "b" above
// (so both hold the same ints, under their own prefixes), and a batch whose
// keys fall in both is one Database::Batch, one commit across collections.
// The [indexes] case runs that Database with a unique and a non-unique
// secondary index on each collection (IndexedTarget), some of them rebuilt
// as the child opens; a write the unique index refuses is acked "refused",
// as the parent predicts from its model, and after each kill every index
// must agree with its collection.
//
// The checks:
//
//  - it opens (as what it was written as);
//  - its contents are the model after every acknowledged write, or after
//    every acknowledged write plus the one in flight (a batch is one write:
//    all or nothing, across collections too) — so acknowledged puts are
//    there with their values, acknowledged erases are absent, and nothing
//    else appears;
//  - size() equals the records a scan yields, the scan ascends strictly, and
//    get() of every key agrees with the scan (per collection).
//
// The next round's child appends to the same store, so recovery of recovered
// stores is exercised too. Kill -9 keeps the page cache, so Durability::none
// must lose nothing that was acknowledged either. Both durability modes run.
//
// The op stream of a round is a pure function of (round seed, op index), so
// the parent knows every op without the child describing it; acks carry the
// index and what erase() / get() returned, which the parent checks too.
// STOWAGE_CRASH_ROUNDS=N sets the number of rounds per durability mode
// (default 14 with Durability::none, 11 with Durability::sync; the
// collections case 8 and 6, the indexes case 6 and 5) for soak runs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stowage/manifest.hpp>
#include <stowage/stowage.hpp>

#include "fault_fs.hpp"
#include "migration_util.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::ModelOp;
using stowage_test::ModelState;
using stowage_test::TempDir;

namespace {

using Store = Storage<int, std::string>;

constexpr int kKeys = 2000;

Options crash_options(Durability d, bool small_wal) {
  Options o;
  o.cache_bytes = 256 << 10;
  o.chunk_bytes = 8 << 10;
  o.durability = d;
  o.block_bytes = 512;
  o.write_buffer_bytes = 32 << 10;
  if (small_wal) o.wal_bytes = 48 << 10;  // the WAL limit triggers checkpoints too
  return o;
}

std::string value_for(int key, std::uint64_t nonce) {
  std::string v = "k" + std::to_string(key) + "/n" + std::to_string(nonce) + "/";
  v.append(static_cast<std::size_t>((nonce * 131 + static_cast<std::uint64_t>(key)) % 180),
           static_cast<char>('a' + nonce % 26));
  return v;
}

std::int64_t value_hash(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return static_cast<std::int64_t>(h >> 1);  // never negative
}

// Op i of a round: a write (ModelOp) or a get.
struct CrashOp {
  bool is_get = false;
  int get_key = 0;
  ModelOp write;
};

CrashOp op_at(std::uint64_t seed, std::uint64_t i) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + i);
  CrashOp op;
  const std::uint64_t nonce = (seed << 32) | i;
  const auto r = rng() % 100;
  auto key = [&] { return static_cast<int>(rng() % kKeys); };
  if (r < 8) {
    op.is_get = true;
    op.get_key = key();
  } else if (r < 68) {
    op.write.kind = ModelOp::put;
    op.write.key = key();
    op.write.value = value_for(op.write.key, nonce);
  } else if (r < 86) {
    op.write.kind = ModelOp::erase;
    op.write.key = key();
  } else {
    op.write.kind = ModelOp::batch;
    op.write.batch_id = nonce;
    const int n = 10 + static_cast<int>(rng() % 41);
    // One batch in ten is big (one WAL record over the 64 KiB write buffer of
    // the POSIX file, so it reaches the OS in two writes; larger than the
    // whole write buffer, so a checkpoint follows at once).
    const std::size_t pad = rng() % 10 == 0 ? 2000 : 0;
    // Half the batches write a run of neighbouring keys (they then often span
    // a chunk boundary), half scatter.
    const bool run = rng() % 2 == 0;
    int k = key();
    for (int j = 0; j < n; ++j) {
      const int kk = run ? (k + j) % kKeys : key();
      op.write.pairs.emplace_back(kk, value_for(kk, nonce) + "#batch" + std::string(pad, 'B'));
    }
    // A third of them also erase keys in the same commit (Storage::Batch).
    if (rng() % 3 == 0)
      for (int j = 1 + static_cast<int>(rng() % 4); j > 0; --j) op.write.erases.push_back(key());
  }
  return op;
}

// ---- the stores a child writes and the parent checks -----------------------

// What the parent read back from a reopened store.
struct Readback {
  ModelState got;        // every record, under its model key
  std::string problems;  // broken invariants ("" if none)
  void note(const std::string& collection, const std::string& what) {
    if (!problems.empty()) problems += "; ";
    problems.append(collection).append(": ").append(what);
  }
};

// Reads collection c (keys 0 .. keys-1) into r.got under model key offset +
// key, checking that its scan ascends strictly and stays in that range, that
// size() equals the records the scan yields and that get() of every key
// agrees with the scan.
template <class C>
void read_collection(const C& c, const std::string& name, int offset, int keys, Readback& r) {
  ModelState mine;
  std::optional<int> prev;
  bool ascending = true;
  std::size_t records = 0, stray = 0, disagree = 0;
  for (const auto& [k, v] : c.scan()) {
    if (prev && !(*prev < k)) ascending = false;
    prev = k;
    ++records;
    if (k < 0 || k >= keys) {
      ++stray;
      continue;
    }
    mine[k] = v;
    r.got[offset + k] = v;
  }
  const std::size_t size = c.size();
  for (int k = 0; k < keys; ++k) {
    auto g = c.get(k);
    auto it = mine.find(k);
    if (g.has_value() != (it != mine.end()) || (g && *g != it->second)) ++disagree;
  }
  if (!ascending) r.note(name, "the scan does not ascend strictly");
  if (stray > 0) r.note(name, std::to_string(stray) + " keys outside 0.." + std::to_string(keys - 1));
  if (size != records)
    r.note(name, "size() is " + std::to_string(size) + " but the scan yields " + std::to_string(records));
  if (disagree > 0) r.note(name, "get() disagrees with the scan on " + std::to_string(disagree) + " keys");
}

// One pass over c, yielding now and then (the child's reader thread).
template <class C>
void scan_through(const C& c) {
  std::size_t n = 0;
  for (auto&& kv : c.scan()) {
    (void)kv;
    if (++n % 64 == 0) std::this_thread::yield();
  }
}

// The store of the [crash] cases: one Storage, model key = key.
struct StorageTarget {
  static constexpr const char* kName = "";
  Store db;
  StorageTarget(const std::filesystem::path& dir, const Options& o) : db(dir, o) {}
  void scan() const { scan_through(db); }
  std::optional<std::string> get(int k) const { return db.get(k); }
  // Runs a write; returns what an erase returned (1: the key was there).
  std::int64_t write(const ModelOp& op) {
    if (op.kind == ModelOp::erase) return db.erase(op.key) ? 1 : 0;
    stowage_test::run_op(db, op);
    return 0;
  }
  void read(Readback& r) const { read_collection(db, "the store", 0, kKeys, r); }
};

// The store of the [crash][collections] case: a Database with collections
// "a" (model keys below kHalf) and "b" (model key k is key k - kHalf of "b").
struct DatabaseTarget {
  static constexpr const char* kName = "collections, ";
  static constexpr int kHalf = kKeys / 2;
  using Coll = Database<>::collection_type<int, std::string>;
  Database<> db;
  Coll a, b;
  DatabaseTarget(const std::filesystem::path& dir, const Options& o)
      : db(dir, o), a(db.collection<int, std::string>("a")), b(db.collection<int, std::string>("b")) {}
  Coll& of(int k) { return k < kHalf ? a : b; }
  static int key(int k) { return k < kHalf ? k : k - kHalf; }
  void scan() const {
    scan_through(a);
    scan_through(b);
  }
  std::optional<std::string> get(int k) { return of(k).get(key(k)); }
  std::int64_t write(const ModelOp& op) {
    switch (op.kind) {
      case ModelOp::put: of(op.key).put(key(op.key), op.value); break;
      case ModelOp::erase: return of(op.key).erase(key(op.key)) ? 1 : 0;
      case ModelOp::batch: {
        bool in_a = false, in_b = false;  // the collections it writes to
        for (const auto& kv : op.pairs) (kv.first < kHalf ? in_a : in_b) = true;
        for (int k : op.erases) (k < kHalf ? in_a : in_b) = true;
        if (in_a != in_b && op.batch_id % 2 == 0) {
          // Every other batch within one collection goes through that
          // collection's own put_batch or Batch.
          ModelOp local = op;
          for (auto& kv : local.pairs) kv.first = key(kv.first);
          for (int& k : local.erases) k = key(k);
          stowage_test::run_op(in_a ? a : b, local);
        } else {
          // One commit across both collections.
          auto batch = db.batch();
          for (const auto& [k, v] : op.pairs) batch.put(of(k), key(k), v);
          for (int k : op.erases) batch.erase(of(k), key(k));
          batch.commit();
        }
        break;
      }
    }
    return 0;
  }
  void read(Readback& r) const {
    const auto names = db.collections();
    if (names != std::vector<std::string>{"a", "b"}) {
      std::string got;
      for (const auto& n : names) got.append(got.empty() ? "" : ", ").append(n);
      r.note("the database", "collections() is {" + got + "}, not {a, b}");
    }
    read_collection(a, "collection a", 0, kHalf, r);
    read_collection(b, "collection b", kHalf, kHalf, r);
  }
};

// ---- the [crash][indexes] store --------------------------------------------
//
// DatabaseTarget's two collections, each with two secondary indexes declared
// by every session before it writes (and by the parent before it reads):
//
//  - "by_tag", unique: a value is "<tag>|..." and its index key is the tag.
//    A key's own tags are 2 * key and 2 * key + 1 (its collection's key), so
//    a write normally collides with nothing; but a put in twenty, and a
//    batch in sixteen, gives a record any tag (another record of its
//    collection may hold it), a batch in sixteen erases a record and gives
//    one of its two tags to another (the erase frees it, if that is the one
//    it holds), and a batch in sixteen gives two records one tag. A write
//    that would give two records one tag throws ConstraintError in the
//    child, which acks it "refused" (kRefused).
//    The parent predicts the refusal from its model (refuses()) and checks
//    the child agrees; a refused write changes nothing, so it is no
//    candidate for the store's contents either.
//  - "by_len", not unique: (key + the value's length) modulo 5, 6 or 7, a
//    function of the key and the value: most writes move a record's entry.
//
// Both extractors depend on an index version that changes every few rounds
// (by_tag every third, by_len every second: the tag index keys shift by a
// million), so the child opens the store by rebuilding an index over every
// record, and kills in the open land inside those builds. Every fourth round
// the child leaves by_len of "b" undeclared: its first write marks it stale
// (rebuilt by the parent's declaration). After each kill the parent reopens,
// declares the indexes of that round and checks, for each index, that its
// scan yields exactly the (index key, record key) pairs the collection's
// records give, in index key order, that size() equals the collection's,
// that find() of each record's tag returns the record, and that no two
// records share a tag.

constexpr std::int64_t kRefused = 2;  // the ack result of a write the child's unique index refused

// The tag of a value ("<tag>|...").
int tag_of(std::string_view v) {
  int t = -1;
  std::from_chars(v.data(), v.data() + v.size(), t);
  return t;
}

// The extractors, as types (so the index handles have names).
struct TagKey {
  std::uint32_t version = 0;
  int operator()(const std::string& v) const { return tag_of(v) + static_cast<int>(version % 2) * 1000000; }
};
struct LenKey {
  std::uint32_t version = 0;
  int operator()(const int& k, const std::string& v) const {
    return static_cast<int>((v.size() + static_cast<std::size_t>(k)) % (5 + version % 3));
  }
};

struct IndexedTarget : DatabaseTarget {
  static constexpr const char* kName = "indexes, ";
  using Unique = Coll::Index<int, true>;
  using Multi = Coll::Index<int, false>;
  TagKey tag;
  LenKey len;
  Unique a_tag, b_tag;
  Multi a_len;
  std::optional<Multi> b_len;  // left undeclared by the child every fourth round
  // writer: the child (leaves b's by_len undeclared every fourth round).
  IndexedTarget(const std::filesystem::path& dir, const Options& o, int round, bool writer)
      : DatabaseTarget(dir, o),
        tag{static_cast<std::uint32_t>(round / 3)},
        len{static_cast<std::uint32_t>(round / 2)},
        a_tag(a.index("by_tag", tag, stowage::unique, tag.version)),
        b_tag(b.index("by_tag", tag, stowage::unique, tag.version)),
        a_len(a.index("by_len", len, len.version)) {
    if (!writer || round % 4 != 3) b_len.emplace(b.index("by_len", len, len.version));
  }

  // Gives the values of op (op_at's) their tags; see the top of this part.
  static void shape(CrashOp& op, std::uint64_t seed, std::uint64_t i) {
    if (op.is_get || op.write.kind == ModelOp::erase) return;
    std::mt19937_64 rng((seed * 0x9E3779B97F4A7C15ull + i) ^ 0x5851F42D4C957F2Dull);
    auto own = [&](int k) { return 2 * key(k) + static_cast<int>(rng() % 2); };
    auto any = [&] { return static_cast<int>(rng() % (2 * kHalf)); };  // maybe another record's
    auto tagged = [](int t, const std::string& v) { return std::to_string(t) + "|" + v; };
    if (op.write.kind == ModelOp::put) {
      op.write.value = tagged(rng() % 20 == 0 ? any() : own(op.write.key), op.write.value);
      return;
    }
    auto& pairs = op.write.pairs;
    std::vector<int> tags;
    for (const auto& kv : pairs) tags.push_back(own(kv.first));
    const auto r = rng() % 16;
    const std::size_t j = rng() % pairs.size();
    const int base = pairs[j].first < kHalf ? 0 : kHalf;  // the collection of pair j, as a model key offset
    if (r == 0) {
      // Takes the tag of a record the batch erases (the erase frees it, if
      // that record holds this one of its two tags).
      const int victim = base + static_cast<int>(rng() % kHalf);
      op.write.erases.push_back(victim);
      tags[j] = 2 * key(victim) + static_cast<int>(rng() % 2);
    } else if (r == 1) {
      tags[j] = any();
    } else if (r == 2) {
      // Two records of one collection, one tag (refused unless they are one key).
      for (std::size_t m = 0; m < pairs.size(); ++m)
        if (m != j && (pairs[m].first < kHalf) == (base == 0)) {
          tags[m] = tags[j];
          break;
        }
    }
    for (std::size_t m = 0; m < pairs.size(); ++m) pairs[m].second = tagged(tags[m], pairs[m].second);
  }

  // Whether op, on a store holding s, would give a unique index one tag
  // twice (then it throws ConstraintError and writes nothing).
  static bool refuses(const ModelState& s, const ModelOp& op) {
    if (op.kind == ModelOp::erase) return false;
    std::map<int, const std::string*> after;  // the records op writes (nullptr: erased)
    if (op.kind == ModelOp::put) after[op.key] = &op.value;
    for (const auto& [k, v] : op.pairs) after[k] = &v;
    for (int k : op.erases) after[k] = nullptr;
    std::set<std::pair<bool, int>> taken;  // (in "b", tag) of the records it leaves
    for (const auto& [k, v] : after)
      if (v && !taken.emplace(k >= kHalf, tag_of(*v)).second) return true;
    for (const auto& [k, v] : s)
      if (!after.count(k) && taken.count({k >= kHalf, tag_of(v)})) return true;
    return false;
  }

  std::int64_t write(const ModelOp& op) {
    try {
      return DatabaseTarget::write(op);
    } catch (const ConstraintError&) {
      return kRefused;
    }
  }

  void scan() const {
    DatabaseTarget::scan();
    scan_through(a_tag);
    scan_through(b_tag);
    scan_through(a_len);
    if (b_len) scan_through(*b_len);
  }

  void read(Readback& r) const {
    DatabaseTarget::read(r);
    check_indexes(a, a_tag, a_len, "collection a", r);
    if (b_len) check_indexes(b, b_tag, *b_len, "collection b", r);
  }

  // Checks both indexes of collection c against its records (see the top).
  void check_indexes(const Coll& c, const Unique& by_tag, const Multi& by_len, const std::string& name,
                     Readback& r) const {
    using Entries = std::vector<std::pair<int, int>>;  // (index key, record key)
    Entries want_tag, want_len, got_tag, got_len;
    std::size_t found = 0;
    for (const auto& [k, v] : c.scan()) {
      want_tag.emplace_back(tag(v), k);
      want_len.emplace_back(len(k, v), k);
      const auto f = by_tag.find(tag(v));
      if (f && f->first == k && f->second == v) ++found;
    }
    for (const auto& [k, v] : by_tag.scan()) got_tag.emplace_back(tag(v), k);
    for (const auto& [k, v] : by_len.scan()) got_len.emplace_back(len(k, v), k);
    const std::size_t records = c.size();
    auto differ = [](Entries want, const Entries& got) {  // "N missing, M extra"
      std::sort(want.begin(), want.end());
      Entries sorted = got, missing, extra;
      std::sort(sorted.begin(), sorted.end());
      std::set_difference(want.begin(), want.end(), sorted.begin(), sorted.end(), std::back_inserter(missing));
      std::set_difference(sorted.begin(), sorted.end(), want.begin(), want.end(), std::back_inserter(extra));
      if (missing.empty() && extra.empty()) return std::string();
      std::string s = std::to_string(missing.size()) + " missing, " + std::to_string(extra.size()) + " extra";
      for (const auto& [what, list] : {std::pair{"missing", &missing}, std::pair{"extra", &extra}})
        if (!list->empty())
          s.append(", first ").append(what).append(" (").append(std::to_string(list->front().first)).append(", ")
              .append(std::to_string(list->front().second)).append(")");
      return s;
    };
    const auto strictly = [](const auto& a, const auto& b) { return a.first >= b.first; };
    if (std::adjacent_find(got_tag.begin(), got_tag.end(), strictly) != got_tag.end())
      r.note(name, "by_tag's scan does not ascend strictly in its index keys");
    if (!std::is_sorted(got_len.begin(), got_len.end()))
      r.note(name, "by_len's scan is not in (index key, key) order");
    if (auto d = differ(want_tag, got_tag); !d.empty()) r.note(name, "by_tag disagrees with the records: " + d);
    if (auto d = differ(want_len, got_len); !d.empty()) r.note(name, "by_len disagrees with the records: " + d);
    std::sort(want_tag.begin(), want_tag.end());
    if (std::adjacent_find(want_tag.begin(), want_tag.end(), [](const auto& a, const auto& b) {
          return a.first == b.first;
        }) != want_tag.end())
      r.note(name, "two records share a tag of the unique index");
    if (by_tag.size() != records)
      r.note(name,
             "by_tag.size() is " + std::to_string(by_tag.size()) + ", the collection's " + std::to_string(records));
    if (by_len.size() != records)
      r.note(name,
             "by_len.size() is " + std::to_string(by_len.size()) + ", the collection's " + std::to_string(records));
    if (found != want_tag.size())
      r.note(name, "by_tag.find() misses " + std::to_string(want_tag.size() - found) + " records");
  }
};

// What the cases' op stream, prediction and construction are for Target
// (op_at, no refusals, (dir, options) for the targets without indexes).
template <class Target>
CrashOp op_for(std::uint64_t seed, std::uint64_t i) {
  CrashOp op = op_at(seed, i);
  if constexpr (requires { Target::shape(op, seed, i); }) Target::shape(op, seed, i);
  return op;
}
template <class Target>
bool refused_by(const ModelState& s, const ModelOp& op) {
  if constexpr (requires { Target::refuses(s, op); })
    return Target::refuses(s, op);
  else
    return false;
}
template <class Target>
Target open_target(const std::filesystem::path& dir, const Options& o, int round, bool writer) {
  if constexpr (std::is_constructible_v<Target, const std::filesystem::path&, const Options&, int, bool>)
    return Target(dir, o, round, writer);
  else
    return Target(dir, o);
}

// ---- the pipe protocol -----------------------------------------------------

enum AckKind : std::uint32_t { kStarting = 1, kOpened = 2, kDone = 3, kFailed = 4, kStep = 5 };

struct Ack {
  std::uint32_t magic = 0x53544f57;  // "STOW"
  std::uint32_t kind = 0;
  std::uint64_t index = 0;   // kDone: the op index
  std::int64_t result = 0;   // erase: 0/1; get: -1 or the value's hash; kStep: the FaultOp
  char message[232] = {};    // kFailed: what(); kStep: the file name
};

// The file-system steps a kill may precede exactly.
constexpr unsigned kStepMask = stowage_test::kOpCreate | stowage_test::kOpSync | stowage_test::kOpRename |
                               stowage_test::kOpRemove | stowage_test::kOpTruncate | stowage_test::kOpSyncDir |
                               stowage_test::kOpClose | stowage_test::kOpOpenAppend;
static_assert(sizeof(Ack) == 256, "one pipe write is atomic (<= PIPE_BUF)");

void send_ack(int fd, const Ack& a) {
  const char* p = reinterpret_cast<const char*>(&a);
  std::size_t left = sizeof a;
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::_exit(5);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

// Reads one ack; false at end of file (the child is gone and the pipe drained).
bool read_ack(int fd, Ack& a) {
  char* p = reinterpret_cast<char*>(&a);
  std::size_t got = 0;
  while (got < sizeof a) {
    ssize_t n = ::read(fd, p + got, sizeof a - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return false;
    got += static_cast<std::size_t>(n);
  }
  return true;
}

// A child reports what it threw and exits.
[[noreturn]] void child_failed(int fd, const std::exception& e) {
  Ack f;
  f.kind = kFailed;
  std::snprintf(f.message, sizeof f.message, "%s", e.what());
  send_ack(fd, f);
  ::_exit(3);
}

// A pass-through file system for a child that reports each file-system step
// of kStepMask on fd and waits for a byte on step_fd before doing it.
std::shared_ptr<FileSystem> gated_file_system(const std::filesystem::path& dir, int fd, int step_fd) {
  auto fs = stowage_test::FaultFileSystem::make(dir);
  fs->set_real_sync(true);
  fs->set_hook(kStepMask, [fd, step_fd](unsigned op, const std::filesystem::path& p) {
    Ack step;
    step.kind = kStep;
    step.result = op;
    std::snprintf(step.message, sizeof step.message, "%s", p.filename().c_str());
    send_ack(fd, step);
    char go = 0;
    while (::read(step_fd, &go, 1) != 1)
      if (errno != EINTR) ::_exit(6);
  });
  return fs;
}

// The child: opens a Target (StorageTarget or DatabaseTarget), writes
// forever, acknowledging every op after it returns. No Catch2 here; leaves
// only through SIGKILL or _exit. With step_fd >= 0 it reports every
// file-system step of kStepMask and waits for a byte on step_fd before doing
// it.
template <class Target>
[[noreturn]] void child_main(const std::filesystem::path& dir, Options opt, int round, std::uint64_t seed, int fd,
                             int step_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  Ack a;
  a.kind = kStarting;
  send_ack(fd, a);
  try {
    if (step_fd >= 0) opt.file_system = gated_file_system(dir, fd, step_fd);
    Target db = open_target<Target>(dir, opt, round, true);
    a.kind = kOpened;
    send_ack(fd, a);
    if (step_fd < 0) {
      // A reader scans the store over and over, so the kill also lands while
      // iterators pin Versions whose files compactions have replaced.
      std::thread([&db, fd] {
        try {
          for (;;) db.scan();
        } catch (const std::exception& e) {
          child_failed(fd, e);
        }
      }).detach();
    }
    for (std::uint64_t i = 0;; ++i) {
      const CrashOp op = op_for<Target>(seed, i);
      Ack done;
      done.kind = kDone;
      done.index = i;
      if (op.is_get) {
        auto v = db.get(op.get_key);
        done.result = v ? value_hash(*v) : -1;
      } else {
        done.result = db.write(op.write);
      }
      send_ack(fd, done);
    }
  } catch (const std::exception& e) {
    child_failed(fd, e);
  }
}

// Kills and reaps the child if the parent leaves a round early (a failed REQUIRE).
struct ChildGuard {
  pid_t pid = -1;
  int fd = -1;
  ~ChildGuard() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
    }
    if (fd >= 0) ::close(fd);
  }
};

// Where in the engine's life the kill landed, judged from the files it left.
struct KillPoints {
  int recovery = 0;          // killed during the child's open
  int chunks_unnamed = 0;    // new chunk files, manifest not installed yet
  int manifest_tmp = 0;      // MANIFEST.tmp present
  int cleanup = 0;           // manifest installed, old chunks / WAL not yet deleted
  int between = 0;           // no checkpoint leftovers
  int in_flight_landed = 0;  // the unacknowledged op was found in the store
  int index_not_ready = 0;   // the MANIFEST has an index not ready (killed in its build, or stale)
  std::map<std::string, int> steps;  // exact kills: before which step ("sync chunk", ...)
};

std::string step_name(const Ack& a) {
  std::string file = a.message;
  std::string kind = file.find(".chunk") != std::string::npos ? "chunk"
                     : file.find(".log") != std::string::npos ? "wal"
                     : file.rfind("MANIFEST", 0) == 0        ? file
                                                              : "dir";
  return std::string(stowage_test::fault_op_name(static_cast<unsigned>(a.result))) + " " + kind;
}

void classify(const std::filesystem::path& dir, bool during_open, KillPoints& k) {
  try {
    const auto m = detail::read_manifest(*default_file_system(), dir);
    if (std::any_of(m.collections.begin(), m.collections.end(), [](const auto& c) { return c.is_index() && !c.ready; }))
      ++k.index_not_ready;
  } catch (const std::exception&) {  // the reopen below reports it
  }
  if (during_open) {
    ++k.recovery;
    return;
  }
  auto fs = default_file_system();
  detail::Manifest m;
  try {
    m = detail::read_manifest(*fs, dir);
  } catch (const std::exception&) {
    return;  // the reopen below reports it
  }
  std::vector<std::uint64_t> named;
  for (const auto& ks : m.keyspaces)
    for (const auto& c : ks.chunks) named.push_back(c.file);
  bool fresh = false, stale = false;
  for (const auto& name : fs->list(dir)) {
    if (name == "MANIFEST.tmp") {
      ++k.manifest_tmp;
      return;
    }
    if (auto w = detail::parse_wal_file_name(name); w && *w < m.wal_start) stale = true;
    if (name.size() > 6 && name.substr(name.size() - 6) == ".chunk") {
      const auto num = std::stoull(name.substr(0, name.size() - 6));
      if (std::find(named.begin(), named.end(), num) == named.end()) (num >= m.next_file ? fresh : stale) = true;
    }
  }
  if (fresh)
    ++k.chunks_unnamed;
  else if (stale)
    ++k.cleanup;
  else
    ++k.between;
}

bool step_matches(int filter, const Ack& a) {
  const std::string file = a.message;
  switch (filter) {
    case 1: return file.rfind("MANIFEST", 0) == 0;
    case 2: return a.result == stowage_test::kOpSyncDir;
    case 3: return file.find(".log") != std::string::npos;
    case 4: return a.result == stowage_test::kOpRemove;
    default: return true;
  }
}

int rounds_per_mode(int fallback) {
  const char* env = std::getenv("STOWAGE_CRASH_ROUNDS");
  if (!env) return fallback;
  return std::max(1, std::atoi(env));
}

template <class Target>
void run_crash_rounds(Durability durability, int rounds, std::uint64_t seed_base, std::uint64_t max_ops,
                      std::uint64_t max_steps) {
  const std::string label = std::string(Target::kName) + (durability == Durability::sync ? "sync" : "none");
  TempDir tmp("crash");
  const auto dir = tmp / "db";
  ModelState base;  // the verified contents after the previous round
  std::mt19937_64 rng(seed_base);
  KillPoints kills;
  std::uint64_t total_acked = 0;
  int refused_puts = 0, refused_batches = 0;  // writes a unique index refused (acknowledged)
  const auto started = std::chrono::steady_clock::now();
  ::signal(SIGPIPE, SIG_IGN);  // a child that dies early must fail the test, not kill it

  for (int round = 0; round < rounds; ++round) {
    const std::uint64_t seed = seed_base + static_cast<std::uint64_t>(round);
    const bool small_wal = round % 3 == 1;
    const Options opt = crash_options(durability, small_wal);
    // Where to kill: during the open, after `target` acks, or exactly before
    // the `target`-th file-system step.
    enum { in_open, after_acks, before_step } how;
    std::uint64_t target = 0;
    int step_filter = 0;  // 0 any step, 1 MANIFEST, 2 directory sync, 3 WAL, 4 remove
    const auto pick = rng() % 10;
    if (pick == 0) {
      how = in_open;
    } else if (pick < 5) {
      how = after_acks;
      target = pick < 3 ? 1 + rng() % (max_ops / 10) : 1 + rng() % max_ops;
    } else {
      how = before_step;
      // Count every step, or only those of one kind (so the rarer steps of a
      // manifest install, WAL rollover and cleanup get their share).
      step_filter = static_cast<int>(rng() % 5);
      target = 1 + rng() % (step_filter == 0 ? max_steps : step_filter == 3 ? max_steps / 4 : 12);
    }

    int fds[2], step_fds[2] = {-1, -1};
    REQUIRE(::pipe(fds) == 0);
    if (how == before_step) REQUIRE(::pipe(step_fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      if (step_fds[1] >= 0) ::close(step_fds[1]);
      child_main<Target>(dir, opt, round, seed, fds[1], step_fds[0]);
    }
    ::close(fds[1]);
    if (step_fds[0] >= 0) ::close(step_fds[0]);
    ChildGuard guard{pid, fds[0]};
    ChildGuard step_guard{-1, step_fds[1]};

    // Read acks up to the target, checking erase()/get() results on the way.
    ModelState cur = base;
    std::vector<ModelOp> writes;  // acknowledged writes, in order
    std::uint64_t acked = 0;      // ops (writes and gets) acknowledged
    std::uint64_t steps = 0;      // file-system steps reported
    bool opened = false, failed = false, stopped = false, killed_at_step = false;
    std::string failure, last_step;
    auto take = [&](const Ack& a) {
      if (a.magic != 0x53544f57) {
        failed = true;
        failure = "bad ack record";
        return;
      }
      if (a.kind == kOpened) opened = true;
      if (a.kind == kFailed) {
        failed = true;
        failure = a.message;
      }
      if (a.kind == kStep && step_matches(step_filter, a)) {
        ++steps;
        last_step = step_name(a);
      }
      if (a.kind != kDone) return;
      if (a.index != acked) {
        failed = true;
        failure = "ack for op " + std::to_string(a.index) + ", expected " + std::to_string(acked);
        return;
      }
      const CrashOp op = op_for<Target>(seed, a.index);
      if (op.is_get) {
        auto it = cur.find(op.get_key);
        const std::int64_t want = it == cur.end() ? -1 : value_hash(it->second);
        INFO("round " << round << ": get(" << op.get_key << ") in the child, op " << a.index);
        CHECK(a.result == want);
      } else {
        const bool refuse = refused_by<Target>(cur, op.write);
        if (op.write.kind == ModelOp::erase) {
          INFO("round " << round << ": erase(" << op.write.key << ") in the child, op " << a.index);
          CHECK(a.result == (cur.count(op.write.key) ? 1 : 0));
        } else {
          INFO("round " << round << ": " << (op.write.kind == ModelOp::put ? "put" : "batch") << " op " << a.index
                        << " in the child " << (a.result == kRefused ? "was refused" : "returned")
                        << "; the model " << (refuse ? "refuses" : "takes") << " it");
          CHECK(a.result == (refuse ? kRefused : 0));
        }
        if (refuse) {
          ++(op.write.kind == ModelOp::put ? refused_puts : refused_batches);
        } else {
          stowage_test::apply_op(cur, op.write);
          writes.push_back(op.write);
        }
      }
      ++acked;
    };
    Ack a;
    while (!failed) {
      if (!read_ack(fds[0], a)) {
        stopped = true;
        break;
      }
      take(a);
      if (how == in_open && a.kind == kStarting) break;
      if (how == after_acks && acked >= target) break;
      if (a.kind == kStep) {
        if (how == before_step && steps >= target) {
          killed_at_step = true;
          break;  // the child waits before the step: kill it there
        }
        const char go = 1;
        REQUIRE(::write(step_fds[1], &go, 1) == 1);
      }
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    guard.pid = -1;
    // Drain what the child acknowledged before it died.
    while (!failed && read_ack(fds[0], a)) take(a);
    INFO("round " << round << " (" << label << ", seed " << seed
                  << (how == in_open ? ", killed in open" : how == after_acks ? ", killed after acks: " : ", killed before step ")
                  << target << (killed_at_step ? " (" + last_step + ")" : std::string()) << ", " << acked
                  << " ops acknowledged)");
    REQUIRE_FALSE(failed);
    if (stopped) FAIL("the child exited by itself: status " << status);
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);

    // The op the child was in when it died (if it was a write).
    const CrashOp next = op_for<Target>(seed, acked);
    std::vector<ModelOp> candidates = writes;
    // (A write the model refuses writes nothing: it is no candidate.)
    const bool in_flight = opened && !next.is_get && !refused_by<Target>(cur, next.write);
    if (in_flight) candidates.push_back(next.write);

    classify(dir, !opened, kills);
    if (killed_at_step) ++kills.steps[last_step];

    // Reopen and read everything.
    Readback back;
    try {
      Options check = crash_options(durability, small_wal);
      check.checkpoint_on_close = round % 2 == 0;  // sometimes the next child replays this WAL too
      const Target db = open_target<Target>(dir, check, round, false);
      db.read(back);
    } catch (const std::exception& e) {
      // Keep the broken store for a post-mortem.
      const auto keep = std::filesystem::temp_directory_path() /
                        ("stowage-crash-failure-" + std::to_string(::getpid()) + "-" + std::to_string(round));
      stowage_test::copy_dir(dir, keep);
      FAIL("reopening after SIGKILL threw: " << e.what() << "\n  store kept at " << keep.string());
    }
    CHECK(back.problems == "");
    const ModelState& got = back.got;
    const long p = stowage_test::find_prefix(base, candidates, writes.size(), candidates.size(), got);
    if (p < 0) {
      const auto keep = std::filesystem::temp_directory_path() /
                        ("stowage-crash-failure-" + std::to_string(::getpid()) + "-" + std::to_string(round));
      stowage_test::copy_dir(dir, keep);
      FAIL("the store after SIGKILL is neither the acknowledged state nor that plus the in-flight "
           << (in_flight ? (next.write.kind == ModelOp::batch ? "batch" : "write") : "(no write)") << ":\n  "
           << stowage_test::describe_diff(cur, got) << "\n  store kept at " << keep.string());
    }
    if (in_flight && p == static_cast<long>(candidates.size())) ++kills.in_flight_landed;
    total_acked += acked;
    base = std::move(back.got);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "crash (%s): %d rounds, %llu acknowledged ops, %.1f s; kills during open %d, in a checkpoint before the "
      "manifest %d, writing the manifest %d, in checkpoint cleanup %d, elsewhere %d; in-flight write landed %d; "
      "final store %zu records\n",
      label.c_str(), rounds, static_cast<unsigned long long>(total_acked), secs,
      kills.recovery, kills.chunks_unnamed, kills.manifest_tmp, kills.cleanup, kills.between, kills.in_flight_landed,
      base.size());
  std::string exact;
  for (const auto& [name, n] : kills.steps) exact += " [" + name + "] x" + std::to_string(n);
  std::printf("crash (%s): exact kills before:%s\n", label.c_str(), exact.c_str());
  if (refused_puts + refused_batches > 0)
    std::printf("crash (%s): writes refused by a unique index (as the model predicted): %d puts, %d batches; "
                "kills leaving an index not ready (in its build, or stale) %d\n",
                label.c_str(), refused_puts, refused_batches, kills.index_not_ready);
}

}  // namespace

TEST_CASE("SIGKILL at random points with Durability::none loses no acknowledged write", "[crash]") {
  run_crash_rounds<StorageTarget>(Durability::none, rounds_per_mode(14), 1000, 4000, 800);
}

TEST_CASE("SIGKILL at random points with Durability::sync loses no acknowledged write", "[crash]") {
  run_crash_rounds<StorageTarget>(Durability::sync, rounds_per_mode(11), 5000, 1200, 1500);
}

// Both durability modes: puts, erases and gets in either collection of a
// Database, batches within one and across both (each all or nothing).
TEST_CASE("SIGKILL at random points in a Database of two collections loses no acknowledged write and splits no "
          "batch across collections",
          "[crash][collections]") {
  run_crash_rounds<DatabaseTarget>(Durability::none, rounds_per_mode(8), 9000, 2000, 800);
  run_crash_rounds<DatabaseTarget>(Durability::sync, rounds_per_mode(6), 13000, 1000, 1500);
}

// Both durability modes: the [collections] stream with a unique and a
// non-unique index on each collection (IndexedTarget): every index agrees
// with its collection after every kill, including kills while an index is
// rebuilt, and the writes the unique index refuses leave nothing behind.
TEST_CASE("SIGKILL at random points in a Database with secondary indexes leaves every index agreeing with its "
          "collection",
          "[crash][indexes]") {
  run_crash_rounds<IndexedTarget>(Durability::none, rounds_per_mode(6), 17000, 1500, 800);
  run_crash_rounds<IndexedTarget>(Durability::sync, rounds_per_mode(5), 21600, 800, 1500);
}

namespace {

// The child of the migration rounds: opens the version-1 store with the
// version-2 program (so it migrates), reporting each file-system step of
// kStepMask and waiting for the go-ahead; _exit(0) once open.
[[noreturn]] void migrating_child(const std::filesystem::path& dir, const std::filesystem::path& backups, int fd,
                                  int step_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  try {
    Options o = crash_options(Durability::none, false);
    o.file_system = gated_file_system(dir, fd, step_fd);
    Storage<int, stowage_test::MigV2> db(dir, o, stowage_test::mig_steps(backups));
    Ack a;
    a.kind = kOpened;
    send_ack(fd, a);
  } catch (const std::exception& e) {
    child_failed(fd, e);
  }
  ::_exit(0);
}

// Runs one migrating child, killing it before its `kill_at`-th step (0: never).
// Returns the steps it reported; fails the test if the child failed.
std::uint64_t run_migrating_child(const std::filesystem::path& dir, const std::filesystem::path& backups,
                                  std::uint64_t kill_at) {
  int fds[2], step_fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(::pipe(step_fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::close(step_fds[1]);
    migrating_child(dir, backups, fds[1], step_fds[0]);
  }
  ::close(fds[1]);
  ::close(step_fds[0]);
  ChildGuard guard{pid, fds[0]};
  ChildGuard step_guard{-1, step_fds[1]};
  std::uint64_t steps = 0;
  Ack a;
  while (read_ack(fds[0], a)) {
    REQUIRE(a.magic == 0x53544f57);
    if (a.kind == kFailed) FAIL("the migrating child failed: " << a.message);
    if (a.kind == kOpened) break;
    if (a.kind != kStep) continue;
    if (++steps == kill_at) {
      ::kill(pid, SIGKILL);  // before the step runs
      break;
    }
    char go = 1;
    REQUIRE(::write(step_fds[1], &go, 1) == 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  guard.pid = -1;
  if (kill_at == 0 || steps < kill_at) CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  return steps;
}

}  // namespace

TEST_CASE("SIGKILL during a migration leaves the old version or the new one with all data", "[crash][migration]") {
  ::signal(SIGPIPE, SIG_IGN);
  TempDir tmp("crash-mig");
  const auto pristine = tmp / "v1";
  const auto model = stowage_test::make_v1_store(pristine, crash_options(Durability::none, false));
  const auto dir = tmp / "db";
  // How many steps a whole migration takes.
  stowage_test::copy_dir(pristine, dir);
  const std::uint64_t steps = run_migrating_child(dir, tmp / "backups-count", 0);
  REQUIRE(steps > 10);
  REQUIRE(migration_status(dir).schema_version == 2);
  // A kill before every step. A store left at version 1 is migrated again by
  // the next round (over the leftovers of the killed one), killed at the next
  // step; one at version 2 starts over from the pristine copy.
  int at_v1 = 0, at_v2 = 0;
  std::filesystem::create_directories(tmp / "backups");
  stowage_test::copy_dir(pristine, dir);
  for (std::uint64_t k = 1; k <= steps; ++k) {
    run_migrating_child(dir, tmp / "backups", k);
    const auto ctx = "kill before migration step " + std::to_string(k) + "/" + std::to_string(steps);
    // Check a copy: check_old_or_new finishes the migration on what it checks.
    stowage_test::copy_dir(dir, tmp / "check");
    const unsigned v = stowage_test::check_old_or_new(tmp / "check", model, crash_options(Durability::none, false),
                                                      tmp / "backups", ctx);
    (v == 1 ? at_v1 : at_v2)++;
    if (v == 2) stowage_test::copy_dir(pristine, dir);
  }
  CHECK(at_v1 > 0);
  CHECK(at_v2 > 0);
  std::printf("crash (migration): SIGKILL before each of the %llu steps of a migration: %d left version 1, %d "
              "version 2, none between\n",
              static_cast<unsigned long long>(steps), at_v1, at_v2);
}
