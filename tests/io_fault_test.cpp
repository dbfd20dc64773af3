// I/O fault tests, "for every N": one fixed workload (open a store, puts,
// erases, put_batch, explicit checkpoints, automatic checkpoints, flush,
// close, reopen, more writes, close) is run once on a FaultFileSystem
// (fault_fs.hpp) without faults, counting its file operations per kind. Then
// it is rerun once for EVERY N from 1 to that count with the N-th operation
// failing (fail_at(mask, N), no power cut):
//
//   [eio]    every operation (mutating ones and reads), failing with EIO;
//   [enospc] every mutating operation, failing with ENOSPC (the message must
//            say the disk is full);
//   [short]  every append/flush/sync/close, as a short write: half the
//            pending bytes reach the file, then ENOSPC.
//
// All sweeps use sticky handles (a WritableFile that failed refuses every
// later call, as PosixWritableFile does). For each fault point:
//
//  - a fault that reaches the caller is a stowage::IoError (never another
//    exception type, never a crash);
//  - after a failed write-side operation (anything but a read) reported by a
//    store call, the store refuses put, erase, put_batch and checkpoint with
//    IoError;
//  - reads of the failed store (a full scan plus get() of every key) return
//    exactly the acknowledged operations, possibly plus the one in flight
//    (a batch all or nothing); erase() returns whether the key was there;
//  - if flush() still returns after the fault, everything acknowledged must
//    survive a power cut (simulate_power_loss): a failed fsync is never
//    reported as a success later;
//  - reopened with the POSIX file system (no faults), the store holds exactly
//    the acknowledged operations, plus possibly the one in flight (all or
//    nothing), at least what the failed store showed, and takes new writes.
//
// A separate case runs the workload with non-sticky handles and checks that
// the engine never calls sync on a handle whose earlier call failed.
//
// STOWAGE_IO_FAULT_STRIDE=k tries only every k-th fault point (default 1).
// The stores live under $STOWAGE_IO_FAULT_TMPDIR, else /dev/shm when it is a
// writable directory (the reopen checks use the POSIX file system, whose
// fdatasync calls make ~3000 reopens on a disk take minutes; on tmpfs the
// whole file runs in seconds), else the system temp directory.
#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <stowage/stowage.hpp>

#include "fault_fs.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::FaultFileSystem;
using stowage_test::ModelOp;
using stowage_test::ModelState;

namespace {

using Store = Storage<int, std::string>;
constexpr int kKeys = 240;
constexpr int kProbeKey = 100000;  // written only by the refusal probes

// A fresh directory for one run, removed afterwards (see the file comment).
struct ScratchDir : stowage_test::ScratchDir {
  ScratchDir() : stowage_test::ScratchDir("iof", "STOWAGE_IO_FAULT_TMPDIR") {}
};

Options small_options(std::shared_ptr<FileSystem> fs = nullptr) {
  Options o;
  o.cache_bytes = 256 << 10;
  o.chunk_bytes = 8 << 10;
  o.block_bytes = 512;
  o.write_buffer_bytes = 32 << 10;
  o.file_system = std::move(fs);
  return o;
}

std::string value_for(int key, std::uint64_t nonce, std::size_t extra) {
  std::string v = "k" + std::to_string(key) + "/n" + std::to_string(nonce) + "/";
  v.append(extra, static_cast<char>('a' + nonce % 26));
  return v;
}

// One step of the workload.
struct Step {
  enum Kind { op, checkpoint, flush, reopen, get } kind = op;
  ModelOp mop;
};

// The fixed workload: ~150 writes in two sessions. Values are large enough
// (up to ~1.5 KiB) that the 32 KiB write buffer also checkpoints on its own.
std::vector<Step> make_workload() {
  std::mt19937_64 rng(20240611);
  std::vector<Step> w;
  std::uint64_t nonce = 0;
  auto key = [&] { return static_cast<int>(rng() % kKeys); };
  auto ops = [&](int n) {
    for (int i = 0; i < n; ++i) {
      Step s;
      ++nonce;
      const auto r = rng() % 100;
      if (r < 70) {
        s.mop.kind = ModelOp::put;
        s.mop.key = key();
        s.mop.value = value_for(s.mop.key, nonce, static_cast<std::size_t>(rng() % (rng() % 8 == 0 ? 1500 : 200)));
      } else if (r < 85) {
        s.mop.kind = ModelOp::erase;
        s.mop.key = key();
      } else {
        s.mop.kind = ModelOp::batch;
        s.mop.batch_id = nonce;
        const int n = 3 + static_cast<int>(rng() % 12);
        for (int j = 0; j < n; ++j) {
          int k = key();
          s.mop.pairs.emplace_back(k, value_for(k, nonce, static_cast<std::size_t>(rng() % 120)) + "b");
        }
      }
      w.push_back(s);
      if (rng() % 10 == 0) w.push_back(Step{Step::get, {}});
    }
  };
  ops(60);
  w.push_back(Step{Step::checkpoint, {}});
  ops(40);
  w.push_back(Step{Step::flush, {}});
  ops(40);
  w.push_back(Step{Step::checkpoint, {}});
  ops(10);
  w.push_back(Step{Step::reopen, {}});  // close (checkpoints) and open again
  ops(40);
  w.push_back(Step{Step::flush, {}});
  ops(10);
  w.push_back(Step{Step::checkpoint, {}});
  ops(5);
  return w;  // the driver closes the store at the end
}

const std::vector<Step>& workload() {
  static const std::vector<Step> w = make_workload();
  return w;
}

ModelState with_op(ModelState s, const std::optional<ModelOp>& op) {
  if (op) stowage_test::apply_op(s, *op);
  return s;
}

// Everything in a store, through a scan; also checks get() agrees.
ModelState dump(const Store& db, std::size_t& disagree) {
  ModelState got;
  for (const auto& [k, v] : db.scan()) got[k] = v;
  for (int k = 0; k < kKeys; ++k) {
    auto g = db.get(k);
    auto it = got.find(k);
    if (g.has_value() != (it != got.end()) || (g && *g != it->second)) ++disagree;
  }
  return got;
}

struct Outcome {
  bool fault_reported = false;  // an injected fault reached a store call
  bool swallowed = false;       // a fault fired but every call succeeded
  std::string failed_call;
};

struct FaultRunner {
  // Counters over a sweep (for the report).
  std::size_t points = 0, reported = 0, swallowed = 0, flush_ok_after_fault = 0, inflight_kept = 0;
  std::map<std::string, std::size_t> by_call;
  // Whether to call flush() on a failed store (the retry case turns it off
  // to see whether the engine retries a sync on its own), and whether to
  // check a sync after a fault on the same handle (it does its own count).
  bool probe_flush = true;
  bool check_no_retry = true;
  bool verify_reopen = true;  // reopen with the POSIX file system and compare

  // Runs the workload with the N-th operation of `mask` failing (N = 0: no
  // fault) and checks everything listed in the file comment. Returns the FS
  // (for the counts).
  std::shared_ptr<FaultFileSystem> run(unsigned mask, std::uint64_t n, int err, bool short_writes,
                                       bool sticky = true) {
    ScratchDir tmp;
    const auto dir = tmp / "db";
    auto fs = FaultFileSystem::make(dir);
    fs->set_sticky_handles(sticky);
    fs->set_short_writes(short_writes);
    fs->set_fault_errno(err);
    if (n > 0) fs->fail_at(mask, n, /*crash=*/false);
    const std::string ctx = std::string("fault point ") + std::to_string(n) + " (errno " + std::to_string(err) +
                            (short_writes ? ", short write" : "") + ")";

    ModelState acked;
    std::optional<ModelOp> inflight;
    std::optional<ModelState> seen_after_fault;
    bool flush_ok = false;
    bool reported = false;
    std::string failed_call;
    std::optional<Store> db;

    // Checks an exception from a store call; true if it is an IoError.
    auto io_error = [&](const std::string& call, const std::exception_ptr& ep) {
      try {
        std::rethrow_exception(ep);
      } catch (const IoError& e) {
        INFO(ctx << ": " << call << " threw " << e.what());
        CHECK(fs->faults() == 1);  // only an injected fault may fail a call
        if (err == ENOSPC) CHECK(std::string(e.what()).find("disk is full") != std::string::npos);
        return true;
      } catch (const std::exception& e) {
        FAIL_CHECK(ctx << ": " << call << " threw a non-IoError: " << e.what() << " (last fault: " << fs->last_fault()
                       << ")");
      } catch (...) {
        FAIL_CHECK(ctx << ": " << call << " threw something that is not a std::exception");
      }
      return false;
    };

    // After a fault reached the caller through `call` on an open store.
    auto after_fault = [&](const std::string& call) {
      const std::string fault = fs->last_fault();
      const bool read_fault = fault.rfind("read", 0) == 0;
      INFO(ctx << ": after " << call << " failed on " << fault);
      // The store refuses writes (after a failed write-side operation).
      auto expect_refused = [&](const char* what, const std::function<void()>& fn) {
        try {
          fn();
          if (!read_fault) FAIL_CHECK(what << " succeeded on a store that had a write error");
          return true;
        } catch (const IoError&) {
        } catch (const std::exception& e) {
          FAIL_CHECK(what << " after the fault threw a non-IoError: " << e.what());
        }
        return false;
      };
      if (expect_refused("put", [&] { db->put(kProbeKey, "probe"); })) acked[kProbeKey] = "probe";
      if (expect_refused("erase", [&] { db->erase(kProbeKey); })) acked.erase(kProbeKey);
      std::vector<std::pair<int, std::string>> probe_batch{{kProbeKey + 1, "p1"}, {kProbeKey + 2, "p2"}};
      if (expect_refused("put_batch", [&] { db->put_batch(probe_batch); })) {
        acked[kProbeKey + 1] = "p1";
        acked[kProbeKey + 2] = "p2";
      }
      expect_refused("checkpoint", [&] { db->checkpoint(); });
      // Reads return acknowledged data (maybe with the op in flight).
      try {
        std::size_t disagree = 0;
        ModelState got = dump(*db, disagree);
        CHECK(disagree == 0);
        if (got != acked && got != with_op(acked, inflight))
          FAIL_CHECK("reads of the failed store: " << stowage_test::describe_diff(acked, got));
        seen_after_fault = got;
      } catch (const std::exception& e) {
        FAIL_CHECK("reading the failed store threw " << e.what());
      }
      // flush() either refuses or really makes everything durable.
      if (probe_flush) try {
        db->flush();
        flush_ok = true;
      } catch (const IoError&) {
      } catch (const std::exception& e) {
        FAIL_CHECK("flush after the fault threw a non-IoError: " << e.what());
      }
    };

    // Runs one store call; false (after the checks) if it failed.
    auto call = [&](const std::string& name, const std::function<void()>& fn, const ModelOp* op) {
      try {
        fn();
        return true;
      } catch (...) {
        const bool io = io_error(name, std::current_exception());
        reported = true;
        failed_call = name;
        if (op) inflight = *op;
        if (io && db && name != "close") after_fault(name);  // close() leaves the store closed either way
        return false;
      }
    };

    const auto opts = small_options(fs);
    bool alive = call("open", [&] { db.emplace(dir, opts); }, nullptr);
    for (const Step& s : workload()) {
      if (!alive) break;
      switch (s.kind) {
        case Step::op: {
          const ModelOp& op = s.mop;
          bool existed = false;
          alive = call(op.kind == ModelOp::put ? "put" : op.kind == ModelOp::erase ? "erase" : "put_batch", [&] {
            if (op.kind == ModelOp::erase)
              existed = db->erase(op.key);
            else
              stowage_test::run_op(*db, op);
          }, &op);
          if (alive) {
            if (op.kind == ModelOp::erase) {
              INFO(ctx << ": erase(" << op.key << ") returned " << existed);
              CHECK(existed == (acked.count(op.key) != 0));
            }
            stowage_test::apply_op(acked, op);
          }
          break;
        }
        case Step::checkpoint: alive = call("checkpoint", [&] { db->checkpoint(); }, nullptr); break;
        case Step::flush: alive = call("flush", [&] { db->flush(); }, nullptr); break;
        case Step::get: {
          // A few point reads; they must match the model (or fail with IoError).
          for (int k = 0; k < kKeys && alive; k += 37) {
            std::optional<std::string> g;
            alive = call("get", [&] { g = db->get(k); }, nullptr);
            if (alive) {
              auto it = acked.find(k);
              INFO(ctx << ": get(" << k << ")");
              CHECK(g.has_value() == (it != acked.end()));
              if (g && it != acked.end()) CHECK(*g == it->second);
            }
          }
          break;
        }
        case Step::reopen: {
          alive = call("close", [&] { db->close(); }, nullptr);
          db.reset();
          if (alive) alive = call("open", [&] { db.emplace(dir, opts); }, nullptr);
          break;
        }
      }
    }
    if (alive && db) alive = call("close", [&] { db->close(); }, nullptr);
    db.reset();  // the destructor closes quietly
    if (check_no_retry) {
      INFO(ctx << ": a handle was synced again after a fault on it (last fault: " << fs->last_fault() << ")");
      CHECK(fs->syncs_after_fault() == 0);
    }

    const bool fired = fs->faults() > 0;
    fs->disarm();
    if (fired && !reported) ++swallowed;
    if (reported) {
      ++this->reported;
      ++by_call[failed_call];
    }
    if (flush_ok) {
      // flush() returned after the fault: acknowledged writes must survive a power cut.
      ++flush_ok_after_fault;
      fs->simulate_power_loss(stowage_test::TailMode::drop, n, stowage_test::DirMode::lose);
    }

    // Reopen with the POSIX file system: exactly the acknowledged ops (+ the one in flight).
    if (verify_reopen) try {
      Options o = small_options();
      o.checkpoint_on_close = false;
      Store re(dir, o);
      std::size_t disagree = 0;
      ModelState got = dump(re, disagree);
      // (kProbeKey entries are outside dump()'s get loop but inside the scan.)
      INFO(ctx << " (" << (reported ? "fault reported by " + failed_call : fired ? "fault swallowed" : "no fault")
               << ", last fault: " << fs->last_fault() << (flush_ok ? ", flush() succeeded after it" : "") << ")");
      CHECK(disagree == 0);
      if (got == acked) {
      } else if (inflight && got == with_op(acked, inflight)) {
        ++inflight_kept;
      } else {
        FAIL_CHECK("recovered store differs from the acknowledged writes: "
                   << stowage_test::describe_diff(acked, got)
                   << (inflight ? "\n  (and from acknowledged + the op in flight)" : ""));
      }
      if (seen_after_fault && *seen_after_fault != acked)
        CHECK(got == *seen_after_fault);  // what reads showed is not lost by a reopen
      re.put(kProbeKey + 7, "after");
      CHECK(re.get(kProbeKey + 7) == std::optional<std::string>("after"));
    } catch (const std::exception& e) {
      FAIL_CHECK(ctx << ": reopening with the POSIX file system threw " << e.what() << " (last fault: "
                     << fs->last_fault() << ")");
    }
    if (std::getenv("STOWAGE_IO_FAULT_VERBOSE"))
      std::printf("  %s: %s%s%s\n", ctx.c_str(), reported ? ("reported by " + failed_call).c_str() : "not reported",
                  fired ? (", fault at " + fs->last_fault()).c_str() : "", inflight ? ", op in flight" : "");
    ++points;
    return fs;
  }
};

std::uint64_t stride() {
  const char* s = std::getenv("STOWAGE_IO_FAULT_STRIDE");
  const long v = s ? std::atol(s) : 1;
  return v > 0 ? static_cast<std::uint64_t>(v) : 1;
}

constexpr unsigned kAllOps = stowage_test::kOpMutating | stowage_test::kOpRead;
constexpr unsigned kWriteOps = stowage_test::kOpAppend | stowage_test::kOpFlush | stowage_test::kOpSync |
                               stowage_test::kOpClose;

void sweep(const char* name, unsigned mask, int err, bool short_writes, bool sticky = true) {
  FaultRunner r;
  // A non-sticky handle lets flush() re-sync the failed WAL handle (see the
  // [retry] cases), so that sweep skips the flush() probe (and the power cut
  // after it): there the failed WAL record's bytes reach the file when its
  // handle is destroyed, which exercises recovering the op in flight.
  r.check_no_retry = sticky;
  r.probe_flush = sticky;
  const auto t0 = std::chrono::steady_clock::now();
  auto fs = r.run(mask, 0, err, short_writes, sticky);
  const std::uint64_t total = fs->count(mask);
  REQUIRE(total > 0);
  std::string kinds;
  for (unsigned bit = 0; bit < 12; ++bit)
    if (mask & (1u << bit))
      kinds += std::string(" ") + stowage_test::fault_op_name(1u << bit) + "=" + std::to_string(fs->count(1u << bit));
  for (std::uint64_t n = 1; n <= total; n += stride()) r.run(mask, n, err, short_writes, sticky);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string calls;
  for (const auto& [c, k] : r.by_call) calls += " " + c + "=" + std::to_string(k);
  std::printf(
      "io_fault [%s]: %llu operations in the workload (%s ), %zu fault points tried: %zu reported to the caller "
      "(%s ), %zu swallowed, %zu kept the op in flight, flush() succeeded after %zu; %.1f s\n",
      name, static_cast<unsigned long long>(total), kinds.c_str(), r.points - 1, r.reported, calls.c_str(),
      r.swallowed, r.inflight_kept, r.flush_ok_after_fault, secs);
  std::fflush(stdout);
  CHECK(r.reported > 0);
}

}  // namespace

TEST_CASE("every operation failing with EIO, one at a time", "[io_fault][eio]") {
  sweep("eio", kAllOps, EIO, false);
}

TEST_CASE("every operation failing with EIO, handles that keep working after a fault", "[io_fault][eio]") {
  // The op in flight can survive here: its WAL bytes stay in the handle's
  // buffer and reach the file when it is destroyed.
  sweep("eio, non-sticky handles", kAllOps, EIO, false, /*sticky=*/false);
}

TEST_CASE("every mutating operation failing with ENOSPC, one at a time", "[io_fault][enospc]") {
  sweep("enospc", stowage_test::kOpMutating, ENOSPC, false);
}

TEST_CASE("every write and sync cut short by ENOSPC, one at a time", "[io_fault][short]") {
  sweep("short", kWriteOps, ENOSPC, true);
}

// Without sticky handles the FS lets a retried fsync "succeed" (as Linux
// does after it dropped the dirty pages: fsyncgate). file.hpp makes the POSIX
// layer refuse such a retry, but another FileSystem may not honour that. These
// count where the ENGINE syncs a handle again after a failed call on it: on its
// own (the workload stops at the fault), and when the caller calls flush() on
// the failed store.
std::uint64_t retry_sweep(bool flush_after, std::uint64_t step) {
  FaultRunner r;
  r.probe_flush = flush_after;
  r.check_no_retry = false;
  r.verify_reopen = false;  // the sweeps above check recovery; this one only counts syncs
  auto fs = r.run(kWriteOps, 0, EIO, false, /*sticky=*/false);
  const std::uint64_t total = fs->count(kWriteOps);
  std::uint64_t retried_points = 0;
  std::map<std::string, std::size_t> where;
  for (std::uint64_t n = 1; n <= total; n += step) {
    auto f = r.run(kWriteOps, n, EIO, false, /*sticky=*/false);
    if (f->syncs_after_fault() > 0) {
      ++retried_points;
      ++where[f->last_fault().substr(0, f->last_fault().find(' '))];
    }
  }
  std::string w;
  for (const auto& [k, v] : where) w += " " + k + "=" + std::to_string(v);
  std::printf("io_fault [retry, %s]: %llu fault points (every %llu-th tried), %llu where a failed handle was synced again (by fault:%s )\n",
              flush_after ? "flush() after the fault" : "no flush() after the fault",
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(step),
              static_cast<unsigned long long>(retried_points), w.c_str());
  std::fflush(stdout);
  return retried_points;
}

TEST_CASE("the engine never syncs a handle again after a failed call on it", "[io_fault][retry]") {
  CHECK(retry_sweep(false, stride()) == 0);
}

// flush() on a store that refused writes after an error must not sync the
// failed WAL handle again (a FileSystem that forgets the error would let it
// "succeed" with the data gone): it throws IoError instead.
TEST_CASE("flush() on a failed store does not retry the failed handle's sync", "[io_fault][retry]") {
  CHECK(retry_sweep(true, stride()) == 0);
}
