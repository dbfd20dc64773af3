// backup_power_test.cpp: a power cut at every step of an online backup
// (Storage::backup_to, backup.hpp's BackupStage).
//
// The store runs on a FaultFileSystem (fault_fs.hpp) that tracks the store's
// directory and the backup's two, `<target>.partial` (which the backup
// creates and fills: hard links of the chunk files, copies of the WAL, the
// MANIFEST, the BACKUP descriptor) and target (the partial one renamed, a
// directory operation of the parent, durable once the parent is synced).
// One backup is run to count its syncs, renames, directory syncs, links and
// removes; then for each k the k-th of them fails and the power goes off
// there (and once more after backup_to returned), and four images of what
// the disk could hold (one per DirMode, the tail modes rotating) are checked:
//
//  - the store opens and holds the model after some prefix of its writes
//    that includes every write before its last flush();
//  - the target either is absent (a `<target>.partial` may be there) or opens
//    read_only as a store holding exactly the records of the backup's moment
//    (every write before backup_to), with a BACKUP descriptor of the
//    backup's sequence; after backup_to returned it must be there;
//  - a new backup_to into the same target from the recovered store succeeds
//    (after remove_backup when the cut left a whole one there, which
//    backup_to must refuse to overwrite), replaces a leftover .partial, and
//    holds exactly what the recovered store holds.
//
// The store has records in chunk files and records only in its WAL (some of
// those not synced when the backup starts). The second case backs up over
// the whole `.partial` an earlier cut left (at the rename), after the store
// moved on, so its cuts also land on the removal of the leftover's files.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <stowage/stowage.hpp>

#include "fault_fs.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::DirMode;
using stowage_test::FaultFileSystem;
using stowage_test::ModelOp;
using stowage_test::ModelState;
using stowage_test::TailMode;
using stowage_test::TempDir;

namespace {

using Store = Storage<int, std::string>;

constexpr int kKeys = 400;

// As power_loss_test's: small chunks (many chunk files to link), no
// automatic compaction (the operations a backup runs are the same each time).
Options small_options(std::shared_ptr<FileSystem> fs = nullptr) {
  Options o;
  o.cache_bytes = 256 << 10;
  o.chunk_bytes = 8 << 10;
  o.durability = Durability::none;
  o.block_bytes = 512;
  o.write_buffer_bytes = 64 << 10;
  o.auto_compaction = false;
  o.file_system = std::move(fs);
  return o;
}

// 75% put, 15% erase, 10% batch of 5..20 puts.
constexpr stowage_test::OpMix kMix{.key_hi = kKeys,
                                   .put_below = 75,
                                   .erase_below = 90,
                                   .batch_min = 5,
                                   .batch_spread = 16,
                                   .batch_erases = false,
                                   .value_spread = 120};

std::vector<ModelOp> make_ops(std::uint64_t seed, std::size_t n, std::uint64_t nonce0) {
  std::mt19937_64 rng(seed);
  std::vector<ModelOp> ops;
  for (std::size_t i = 0; i < n; ++i) ops.push_back(stowage_test::random_op(rng, nonce0 + i, kMix));
  return ops;
}

ModelState replay(ModelState s, const std::vector<ModelOp>& ops, std::size_t n) {
  for (std::size_t i = 0; i < n && i < ops.size(); ++i) stowage_test::apply_op(s, ops[i]);
  return s;
}

// Opens the store (or backup) at dir with the POSIX file system and reads
// all of it, checking that the scan ascends and size() and get() agree with
// it. Fails the test (with context) and returns nullopt when it throws.
std::optional<ModelState> read_dir(const std::filesystem::path& dir, bool read_only, const std::string& context) {
  INFO(context << (read_only ? " (read_only open of " : " (open of ") << dir.string() << ")");
  ModelState got;
  try {
    Options o = small_options();
    o.read_only = read_only;
    o.create_if_missing = false;
    o.checkpoint_on_close = false;
    Store db(dir, o);
    std::optional<int> prev;
    bool ascending = true;
    for (const auto& [k, v] : db.scan()) {
      if (prev && !(*prev < k)) ascending = false;
      prev = k;
      got[k] = v;
    }
    CHECK(ascending);
    CHECK(db.size() == got.size());
    std::size_t disagree = 0;
    for (int k = 0; k < kKeys; ++k) {
      const auto g = db.get(k);
      const auto it = got.find(k);
      if (g.has_value() != (it != got.end()) || (g && *g != it->second)) ++disagree;
    }
    CHECK(disagree == 0);
  } catch (const std::exception& e) {
    FAIL_CHECK("opening threw: " << e.what());
    return std::nullopt;
  }
  return got;
}

// The store every run starts from: records in chunk files and, after its
// last checkpoint, records only in its WAL.
struct Template {
  TempDir tmp{"bkpower-template"};
  std::filesystem::path dir = tmp / "db";
  std::vector<ModelOp> ops = make_ops(11, 900, 1000000);
  std::size_t checkpointed = 840;  // ops[0, 840) in chunk files, the rest in the WAL
  ModelState state;
  Template() {
    Options o = small_options();
    o.checkpoint_on_close = false;
    Store db(dir, o);
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (i == checkpointed) db.checkpoint();
      stowage_test::run_op(db, ops[i]);
    }
    db.close();
    stowage_test::remove_unneeded_files(dir);  // what an open would remove in the background
    state = replay({}, ops, ops.size());
  }
};

// What a backup runs from: a store (and perhaps a `bk.partial` an earlier
// cut left beside it), written to after it is opened on the FaultFileSystem.
struct Scenario {
  std::filesystem::path from;  // holds db/ and perhaps bk.partial/
  ModelState state;            // what from/db holds
  std::vector<ModelOp> more;   // written after the open ...
  std::size_t synced = 0;      // ... the first `synced` of them made durable by flush()
};

// The operations a cut lands on: every sync, rename, directory sync, link
// and remove.
constexpr unsigned kCutMask = stowage_test::kOpDurability | stowage_test::kOpLink | stowage_test::kOpRemove;

struct Run {
  bool completed = false;
  std::uint64_t steps = 0;     // operations of kCutMask backup_to ran
  std::uint64_t sequence = 0;  // the backup's (when completed)
  std::size_t links = 0;       // chunk files it linked (when completed)
};

// Copies s.from's db (and bk.partial) into base, opens the store on fs
// (tracking base/bk and base/bk.partial), writes s.more and backs up to
// base/bk with the k-th operation of kCutMask failing and the power going
// off there (k = 0: none); the power goes off after backup_to returns in any
// case.
Run backup_with_cut(const Scenario& s, const std::filesystem::path& base, std::shared_ptr<FaultFileSystem>& fs,
                    std::uint64_t k) {
  stowage_test::copy_dir(s.from / "db", base / "db");
  if (std::filesystem::exists(s.from / "bk.partial")) stowage_test::copy_dir(s.from / "bk.partial", base / "bk.partial");
  fs = FaultFileSystem::make(base / "db");
  fs->track(base / "bk.partial");
  fs->track(base / "bk");
  Run run;
  Store db(base / "db", small_options(fs));
  for (std::size_t i = 0; i < s.more.size(); ++i) {
    if (i == s.synced) db.flush();
    stowage_test::run_op(db, s.more[i]);
  }
  if (s.synced == s.more.size()) db.flush();
  if (k) fs->fail_at(kCutMask, k, /*crash=*/true);
  const auto before = fs->count(kCutMask);
  try {
    const BackupReport r = db.backup_to(base / "bk");
    run.completed = true;
    run.sequence = r.sequence;
    run.links = r.files_linked;
  } catch (const IoError&) {
  }
  run.steps = fs->count(kCutMask) - before;
  fs->crash_now();  // the power goes off now if it did not at step k
  return run;       // db's destructor: a crashed close fails quietly
}

struct Outcomes {
  std::uint64_t steps = 0;
  std::size_t images = 0, with_target = 0, with_partial = 0, neither = 0;
};

// A backup from s with a power cut at each of its steps in turn, and one
// after it returned; four images of each cut checked (see the top of the file).
Outcomes cut_everywhere(const Scenario& s) {
  const ModelState at_backup = replay(s.state, s.more, s.more.size());  // the backup's moment: every write

  // One backup without a fault: how many steps it takes, and what it holds.
  Run whole;
  {
    TempDir tmp("bkpower0");
    const auto base = std::filesystem::canonical(tmp.path());
    std::shared_ptr<FaultFileSystem> fs;
    whole = backup_with_cut(s, base, fs, 0);
    REQUIRE(whole.completed);
    REQUIRE(whole.links > 2);
    CHECK_FALSE(std::filesystem::exists(base / "bk.partial"));
    const auto got = read_dir(base / "bk", true, "the backup without a fault");
    REQUIRE(got);
    CHECK(*got == at_backup);
  }
  INFO("a backup takes " << whole.steps << " syncs, renames, directory syncs, links and removes (" << whole.links
                         << " chunk files linked)");
  REQUIRE(whole.steps > whole.links + 4);

  static constexpr TailMode tails[] = {TailMode::drop, TailMode::prefix, TailMode::garbage, TailMode::zeros,
                                       TailMode::mixed};
  static constexpr DirMode dirs[] = {DirMode::lose, DirMode::prefix, DirMode::subset, DirMode::suffix};
  Outcomes out;
  out.steps = whole.steps;
  // k = steps + 1: the cut comes after backup_to returned.
  for (std::uint64_t k = 1; k <= whole.steps + 1; ++k) {
    TempDir tmp("bkpower");
    const auto base = std::filesystem::canonical(tmp.path()) / "t";
    std::filesystem::create_directories(base);
    std::shared_ptr<FaultFileSystem> fs;
    const Run run = backup_with_cut(s, base, fs, k);
    REQUIRE(run.completed == (k > whole.steps));
    REQUIRE(fs->faults() == (run.completed ? 0u : 1u));
    const std::string cut = run.completed ? "power cut after backup_to returned"
                                          : "power cut at backup step " + std::to_string(k) + "/" +
                                                std::to_string(whole.steps) + " (" + fs->last_fault() + ")";
    for (std::uint64_t i = 0; i < 4; ++i) {
      const TailMode tail = tails[(k + i) % 5];
      const auto image = tmp / "image";
      fs->power_loss_image_tree(base, image, tail, k * 4 + i, dirs[i]);
      const std::string ctx = cut + ", tail=" + stowage_test::tail_mode_name(tail) +
                              " dirs=" + stowage_test::dir_mode_name(dirs[i]);
      INFO(ctx);
      ++out.images;
      const auto db_dir = image / "db", target = image / "bk", partial = image / "bk.partial";

      // The store: every write before its flush(), and a prefix of the others.
      const auto store = read_dir(db_dir, false, ctx + ": the store");
      REQUIRE(store);
      const long p = stowage_test::find_prefix(s.state, s.more, s.synced, s.more.size(), *store);
      if (p < 0)
        FAIL_CHECK("the store holds no prefix of its writes from the flushed ones on: against the flushed ones, "
                   << stowage_test::describe_diff(replay(s.state, s.more, s.synced), *store));

      // The target: a whole backup of the backup's moment, or nothing.
      const bool had_target = std::filesystem::exists(target);
      const bool had_partial = std::filesystem::exists(partial);
      (had_target ? out.with_target : had_partial ? out.with_partial : out.neither)++;
      if (run.completed) CHECK(had_target);  // a backup that returned is durable
      if (had_target) {
        const auto got = read_dir(target, true, ctx + ": the backup the cut left");
        if (got && *got != at_backup)
          FAIL_CHECK("the backup the cut left is not the store at its moment: "
                     << stowage_test::describe_diff(at_backup, *got));
        std::optional<detail::BackupDescriptor> d;
        CHECK_NOTHROW(d = detail::read_backup_descriptor(*default_file_system(), target));
        REQUIRE(d);
        CHECK(d->kind == "online");
        CHECK(d->sequence == whole.sequence);
      }

      // A new backup into the same target, from the recovered store.
      {
        Options o = small_options();
        o.create_if_missing = false;
        o.checkpoint_on_close = false;
        Store db(db_dir, o);
        if (had_target) {
          CHECK_THROWS_AS(db.backup_to(target), ValidationError);  // never over a whole backup
          const auto kept = read_dir(target, true, ctx + ": the backup after a refused backup_to");
          const bool unchanged = kept && *kept == at_backup;
          CHECK(unchanged);
          remove_backup(target);
          REQUIRE_FALSE(std::filesystem::exists(target));
        }
        BackupReport r;
        REQUIRE_NOTHROW(r = db.backup_to(target));
        CHECK(r.sequence == db.stats().last_sequence);
        CHECK(std::filesystem::exists(target / "BACKUP"));
        CHECK_FALSE(std::filesystem::exists(partial));
      }
      const auto again = read_dir(target, true, ctx + ": the new backup");
      if (again && *again != *store)
        FAIL_CHECK("the new backup does not hold the recovered store: " << stowage_test::describe_diff(*store, *again));
    }
  }
  INFO(out.images << " images: " << out.with_target << " with the backup, " << out.with_partial << " with only "
                  << "bk.partial, " << out.neither << " with neither");
  CHECK(out.images == 4 * (whole.steps + 1));
  CHECK(out.with_target > 0);
  CHECK(out.with_partial > 0);
  return out;
}

void print(const char* what, const Outcomes& o) {
  std::printf("backup power loss (%s): a power cut at each of the %llu steps of a backup and after it, 4 images "
              "each: %zu with the whole backup, %zu with only its .partial, %zu with neither\n",
              what, static_cast<unsigned long long>(o.steps), o.with_target, o.with_partial, o.neither);
}

}  // namespace

TEST_CASE("power loss at every step of an online backup leaves the store whole and a whole backup or none",
          "[backup][power]") {
  const Template t;
  const Scenario s{t.tmp.path(), t.state, make_ops(12, 30, 2000000), 20};
  print("store with records in chunk files and in its WAL", cut_everywhere(s));
}

TEST_CASE("power loss at every step of an online backup that replaces the .partial an earlier cut left",
          "[backup][power]") {
  const Template t;
  const Scenario first{t.tmp.path(), t.state, make_ops(12, 30, 2000000), 20};
  // The leftover: a cut at the rename of a whole bk.partial (the last step
  // but one), every unsynced directory operation lost.
  TempDir left("bkpower-left");
  std::uint64_t steps = 0;
  {
    TempDir tmp("bkpower-first0");
    std::shared_ptr<FaultFileSystem> fs;
    const Run whole = backup_with_cut(first, std::filesystem::canonical(tmp.path()), fs, 0);
    REQUIRE(whole.completed);
    steps = whole.steps;
  }
  {
    TempDir tmp("bkpower-first");
    const auto base = std::filesystem::canonical(tmp.path());
    std::shared_ptr<FaultFileSystem> fs;
    const Run run = backup_with_cut(first, base, fs, steps - 1);
    REQUIRE_FALSE(run.completed);
    INFO(fs->last_fault());
    REQUIRE(fs->last_fault().rfind("rename", 0) == 0);
    fs->power_loss_image_tree(base, left.path(), TailMode::drop, 1, DirMode::lose);
  }
  REQUIRE(std::filesystem::exists(left / "bk.partial" / "BACKUP"));
  REQUIRE_FALSE(std::filesystem::exists(left / "bk"));
  // The store moves on: more records, a checkpoint (new chunk files that the
  // leftover lacks; some of its chunk files no longer the store's).
  ModelState state;
  {
    Options o = small_options();
    o.create_if_missing = false;
    Store db(left / "db", o);
    for (const auto& op : make_ops(13, 150, 3000000)) stowage_test::run_op(db, op);
    db.checkpoint();
    for (const auto& [k, v] : db.scan()) state[k] = v;
    db.close();
    stowage_test::remove_unneeded_files(left / "db");
  }
  const Scenario s{left.path(), state, make_ops(14, 12, 4000000), 6};
  print("replacing a leftover .partial", cut_everywhere(s));
}
