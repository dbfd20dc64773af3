// Corruption tests: damaged files must never crash the store, hang it, throw
// anything but stowage::CorruptionError, or return data that was not written.
//
// One store is built with several chunk files, a MANIFEST and two WAL
// segments whose records are not in any chunk (checkpoint_on_close = false,
// so open replays them). For each file kind, bytes are flipped (every offset
// of the MANIFEST, a few hundred per chunk and WAL segment), the file is
// truncated to many lengths, ranges are zeroed and garbage is appended. After
// each damage the store is opened and read completely (get of every key, a
// full scan, size()); the outcome must be:
//
//  - stowage::CorruptionError whose what() names the damaged file; or
//  - for a torn tail of the LAST WAL segment (a cut, or damage to bytes that
//    no intact record after it says were synced): the store opens and holds
//    exactly the records before the damaged record. A pure cut or appended garbage there must
//    open (that is what a crash leaves).
//
// Anything else fails: another exception type, damage to a chunk or the
// MANIFEST that goes unnoticed, a get returning a value the model does not
// have, or a damaged WAL segment whose damaged bytes were synced (an intact
// record after them says so) that opens: flushed writes would be dropped. Before each case the
// pristine directory is restored: files the previous case created are
// removed and every file whose bytes differ from the pristine copy is
// rewritten (equivalent to copying the whole directory back, and much faster).
//
// Two more test cases: files that are missing or mixed up (a deleted chunk,
// MANIFEST or earlier WAL segment; valid chunk files swapped or replaced),
// and WAL records whose checksums are right but whose payloads are not valid
// batches (forged with the engine's own WalWriter). Both must give
// CorruptionError. Each section prints its case counts; failures are grouped
// by kind with a first example.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <typeinfo>
#include <vector>

#include <unistd.h>

#include <stowage/stowage.hpp>

#include "fault_fs.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::ModelOp;
using stowage_test::ModelState;
using stowage_test::TempDir;

namespace {

using Store = Storage<int, std::string>;

constexpr int kKeys = 700;
constexpr std::size_t kWalOpsA = 60;  // records of the first live WAL segment
constexpr std::size_t kWalOpsB = 40;  // records of the second (last) one

Options corruption_options(bool read_only = false) {
  Options o;
  o.cache_bytes = 256 << 10;
  o.chunk_bytes = 8 << 10;
  o.block_bytes = 512;
  o.write_buffer_bytes = 64 << 10;  // frozen at half: the WAL ops below stay in the buffer
  o.checkpoint_on_close = false;
  o.read_only = read_only;
  return o;
}

std::string value_for(int key, std::uint64_t nonce) {
  std::string v = "k" + std::to_string(key) + "/n" + std::to_string(nonce) + "/";
  v.append(static_cast<std::size_t>((nonce * 37 + static_cast<std::uint64_t>(key)) % 150), static_cast<char>('a' + nonce % 26));
  return v;
}

ModelOp random_op(std::mt19937_64& rng, std::uint64_t nonce, bool batches) {
  ModelOp op;
  const auto r = rng() % 100;
  if (batches && r < 8) {
    op.kind = ModelOp::batch;
    const int n = 5 + static_cast<int>(rng() % 20);
    for (int i = 0; i < n; ++i) {
      const int k = static_cast<int>(rng() % kKeys);
      op.pairs.emplace_back(k, value_for(k, nonce) + "#b");
    }
  } else if (r < 85) {
    op.kind = ModelOp::put;
    op.key = static_cast<int>(rng() % kKeys);
    op.value = value_for(op.key, nonce);
  } else {
    op.kind = ModelOp::erase;
    op.key = static_cast<int>(rng() % kKeys);
  }
  return op;
}

using stowage_test::run_op;

std::string read_bytes(const std::filesystem::path& p) { return stowage_test::read_all(p); }

// Byte ranges [start, end) of the records of a WAL segment (from the framing:
// a detail::kWalHeaderBytes-byte header whose first 4 bytes are the payload length).
std::vector<std::pair<std::size_t, std::size_t>> wal_records(const std::string& bytes) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t pos = 0;
  while (pos + detail::kWalHeaderBytes <= bytes.size()) {
    const std::size_t len = static_cast<unsigned char>(bytes[pos]) | (static_cast<unsigned char>(bytes[pos + 1]) << 8) |
                            (static_cast<std::size_t>(static_cast<unsigned char>(bytes[pos + 2])) << 16) |
                            (static_cast<std::size_t>(static_cast<unsigned char>(bytes[pos + 3])) << 24);
    if (pos + detail::kWalHeaderBytes + len > bytes.size()) break;
    out.emplace_back(pos, pos + detail::kWalHeaderBytes + len);
    pos += detail::kWalHeaderBytes + len;
  }
  return out;
}

// The pristine store, built once per test case.
struct Pristine {
  TempDir tmp{"corrupt"};
  std::filesystem::path dir = tmp / "pristine";
  std::filesystem::path work = tmp / "work";
  std::map<std::string, std::string> files;  // name -> bytes
  std::vector<ModelOp> ops;
  std::size_t wal_a_first = 0;  // index in ops of the first op in WAL segment A
  std::string wal_a, wal_b;     // segment file names (A then B, B is the last)
  std::vector<std::string> chunks;
  ModelState full;

  Pristine() {
    std::mt19937_64 rng(77);
    std::uint64_t nonce = 1;
    {
      Store db(dir, corruption_options());
      for (int i = 0; i < 1800; ++i) {
        ops.push_back(random_op(rng, nonce++, true));
        run_op(db, ops.back());
      }
      db.checkpoint();
      const auto checkpoints = db.stats().checkpoints;
      wal_a_first = ops.size();
      for (std::size_t i = 0; i < kWalOpsA; ++i) {
        ops.push_back(random_op(rng, nonce++, i % 20 == 7));
        run_op(db, ops.back());
      }
      REQUIRE(db.stats().checkpoints == checkpoints);  // these stay in the WAL only
    }
    {
      Store db(dir, corruption_options());
      const auto checkpoints = db.stats().checkpoints;
      for (std::size_t i = 0; i < kWalOpsB; ++i) {
        // Half way, a flush: the records after it say the first half is
        // durable, so damage there is corruption, not a torn tail.
        if (i == kWalOpsB / 2) db.flush();
        ops.push_back(random_op(rng, nonce++, i % 20 == 7));
        run_op(db, ops.back());
      }
      REQUIRE(db.stats().checkpoints == checkpoints);
    }
    for (const auto& op : ops) stowage_test::apply_op(full, op);
    // A close leaves the files its last compactions made obsolete (the next
    // open removes them): every case damages a file the store needs.
    stowage_test::remove_unneeded_files(dir);
    std::vector<std::string> wals;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      const auto name = e.path().filename().string();
      files[name] = read_bytes(e.path());
      if (name.size() > 4 && name.substr(name.size() - 4) == ".log" && !files[name].empty()) wals.push_back(name);
      if (name.size() > 6 && name.substr(name.size() - 6) == ".chunk") chunks.push_back(name);
    }
    std::sort(wals.begin(), wals.end());
    std::sort(chunks.begin(), chunks.end());
    REQUIRE(wals.size() == 2);
    REQUIRE(chunks.size() >= 8);
    wal_a = wals[0];
    wal_b = wals[1];
    REQUIRE(wal_records(files[wal_a]).size() == kWalOpsA);
    REQUIRE(wal_records(files[wal_b]).size() == kWalOpsB);
    stowage_test::copy_dir(dir, work);
    std::printf("corruption: pristine store: MANIFEST %zu bytes, %zu chunk files, %s %zu bytes (%zu records), %s %zu "
                "bytes (%zu records), %zu records live\n",
                files["MANIFEST"].size(), chunks.size(), wal_a.c_str(), files[wal_a].size(), kWalOpsA, wal_b.c_str(),
                files[wal_b].size(), kWalOpsB, full.size());
  }

  // Makes `work` hold exactly the pristine files.
  void restore() const {
    std::set<std::string> seen;
    for (const auto& e : std::filesystem::directory_iterator(work)) {
      const auto name = e.path().filename().string();
      if (!files.count(name)) {
        std::filesystem::remove(e.path());
        continue;
      }
      seen.insert(name);
      const std::string& want = files.at(name);
      if (e.file_size() != want.size() || read_bytes(e.path()) != want) stowage_test::write_all(e.path(), want);
    }
    for (const auto& [name, bytes] : files)
      if (!seen.count(name)) stowage_test::write_all(work / name, bytes);
  }

  ModelState state_after(std::size_t n_ops) const {
    ModelState s;
    for (std::size_t i = 0; i < n_ops && i < ops.size(); ++i) stowage_test::apply_op(s, ops[i]);
    return s;
  }
};

// One damaged file.
struct Damage {
  std::string file;
  std::string bytes;  // the damaged content
  std::string what;   // e.g. "flip 0x5a at 123"
  bool pure_cut = false;  // a cut, appended bytes or zeros to the end: a torn WAL tail that must open
};

// What the store did with it.
struct Outcome {
  std::vector<std::string> corruption;  // what() of every CorruptionError
  std::string other;                    // any other exception: type and what()
  bool opened = false;
  ModelState scanned;
  std::vector<std::string> bad_reads;   // gets that disagree with everything allowed
  bool ascending = true;
  std::optional<std::size_t> size;
};

std::string describe_exception(const std::exception& e) {
  return std::string(typeid(e).name()) + ": " + e.what();
}

// Opens and reads everything. `allowed(k)` is the set of values a get may
// return for key k (nullopt = absent).
Outcome probe(const std::filesystem::path& dir, bool read_only,
              const std::function<bool(int, const std::optional<std::string>&)>& allowed) {
  Outcome out;
  try {
    Store db(dir, corruption_options(read_only));
    out.opened = true;
    for (int k = 0; k < kKeys; ++k) {
      try {
        auto g = db.get(k);
        if (!allowed(k, g))
          out.bad_reads.push_back("get(" + std::to_string(k) + ") = " + (g ? "'" + g->substr(0, 40) + "'" : "absent"));
      } catch (const CorruptionError& e) {
        out.corruption.push_back(e.what());
      }
    }
    try {
      std::optional<int> prev;
      for (const auto& [k, v] : db.scan()) {
        if (prev && !(*prev < k)) out.ascending = false;
        prev = k;
        out.scanned[k] = v;
      }
    } catch (const CorruptionError& e) {
      out.corruption.push_back(e.what());
      out.scanned.clear();
    }
    try {
      out.size = db.size();
    } catch (const CorruptionError& e) {
      out.corruption.push_back(e.what());
    }
  } catch (const CorruptionError& e) {
    out.corruption.push_back(e.what());
  } catch (const std::exception& e) {
    out.other = describe_exception(e);
  }
  return out;
}

// Counts outcomes and groups failures by category (role of the file, kind of
// damage, what went wrong), keeping the first example of each.
struct Tally {
  std::size_t cases = 0, detected = 0, recovered_prefix = 0, undamaged = 0, failed_cases = 0;
  std::map<std::string, std::pair<std::size_t, std::string>> failures;  // category -> (count, first example)
  bool case_failed = false;
  void begin() { case_failed = false; }
  void fail(const std::string& category, const std::string& example) {
    auto& f = failures[category];
    if (f.first++ == 0) f.second = example;
    if (!case_failed) ++failed_cases;
    case_failed = true;
  }
  void report(const char* what) const {
    std::printf("corruption (%s): %zu cases: %zu CorruptionError, %zu torn WAL tails recovered, %zu failed\n", what,
                cases - undamaged, detected, recovered_prefix, failed_cases);
    std::string all;
    for (const auto& [category, f] : failures)
      all += "\n  - " + category + ": " + std::to_string(f.first) + " case(s), e.g. " + f.second;
    if (!all.empty()) std::printf("corruption (%s): failures by kind:%s\n", what, all.c_str());
    INFO(failed_cases << " failing case(s) of " << cases - undamaged << ", by kind:" << all);
    CHECK(failed_cases == 0);
  }
};

// Whether every message names one of the files.
bool names_file(const std::vector<std::string>& whats, const std::vector<std::string>& files) {
  for (const auto& w : whats) {
    bool named = false;
    for (const auto& f : files) named = named || w.find(f) != std::string::npos;
    if (!named) return false;
  }
  return !whats.empty();
}

// Runs one damage case against the pristine store and judges the outcome.
// torn_prefix: for damage to the last WAL segment with no intact record after
// it, the number of ops the store must then hold (nullopt: CorruptionError is
// the only acceptable outcome).
void run_case(const Pristine& p, const Damage& d, std::optional<std::size_t> torn_prefix, bool read_only,
              Tally& tally) {
  ++tally.cases;
  p.restore();
  if (d.bytes == p.files.at(d.file)) {
    ++tally.undamaged;
    return;
  }
  stowage_test::write_all(p.work / d.file, d.bytes);
  const ModelState prefix = torn_prefix ? p.state_after(*torn_prefix) : ModelState{};
  auto allowed = [&](int k, const std::optional<std::string>& v) {
    auto match = [&](const ModelState& s) {
      auto it = s.find(k);
      return it == s.end() ? !v.has_value() : v.has_value() && *v == it->second;
    };
    return match(p.full) || (torn_prefix && match(prefix));
  };
  static const bool verbose = std::getenv("STOWAGE_CORRUPTION_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "case %s: %s%s\n", d.file.c_str(), d.what.c_str(), read_only ? " (read_only)" : "");
  const auto started = std::chrono::steady_clock::now();
  Outcome o = probe(p.work, read_only, allowed);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const std::string label = d.file + ": " + d.what + (read_only ? " (read_only)" : "");
  const std::string role = d.file == "MANIFEST"                       ? "MANIFEST"
                           : d.file.find(".chunk") != std::string::npos ? "chunk"
                           : d.file == p.wal_b                          ? "last WAL segment"
                                                                        : "earlier WAL segment";
  const std::string kind = role + ", " + d.what.substr(0, d.what.find(' '));
  tally.begin();
  if (secs > 5) tally.fail(kind + ": slow (a hang?)", label + ": took " + std::to_string(secs) + " s");
  if (!o.other.empty()) {
    tally.fail(kind + ": threw another exception type", label + ": " + o.other);
    return;
  }
  if (!o.bad_reads.empty())
    tally.fail(kind + ": get() returned data not in the store's history at this point",
               label + ": " + std::to_string(o.bad_reads.size()) + " such gets, e.g. " + o.bad_reads[0]);
  if (!o.corruption.empty()) {
    // A cut of an earlier WAL segment shows as a gap where the next one starts:
    // naming either is fine.
    const bool cut_earlier_wal = role == "earlier WAL segment" && d.pure_cut;
    if (!names_file(o.corruption, cut_earlier_wal ? std::vector<std::string>{d.file, p.wal_b}
                                                   : std::vector<std::string>{d.file}))
      tally.fail(kind + ": CorruptionError does not name the damaged file", label + ": " + o.corruption[0]);
    if (torn_prefix && d.pure_cut)
      tally.fail(kind + ": torn tail refused", label + ": " + o.corruption[0]);
    ++tally.detected;
    return;
  }
  // It opened and read without complaint.
  if (!o.ascending) tally.fail(kind + ": scan not strictly ascending", label);
  if (o.size != o.scanned.size()) tally.fail(kind + ": size() disagrees with the scan", label);
  if (!torn_prefix) {
    tally.fail(kind + ": damage went unnoticed",
               label + " (" +
                   (o.scanned == p.full ? std::string("data intact") : stowage_test::describe_diff(p.full, o.scanned, 2)) +
                   ")");
    return;
  }
  if (o.scanned != prefix) {
    tally.fail(kind + ": torn-tail recovery does not hold exactly the records before the damage",
               label + ": " + stowage_test::describe_diff(prefix, o.scanned, 2));
    return;
  }
  ++tally.recovered_prefix;
  if (!read_only) {
    // A second open of the recovered store (now with a later WAL segment) sees the same.
    Outcome again = probe(p.work, false, allowed);
    if (!again.other.empty() || !again.corruption.empty() || again.scanned != prefix)
      tally.fail(kind + ": the second open after a torn-tail cut differs",
                 label + ": " +
                     (again.other.empty() ? (again.corruption.empty() ? std::string("data") : again.corruption[0])
                                          : again.other));
  }
}

Damage flip(const Pristine& p, const std::string& file, std::size_t at, unsigned char mask) {
  Damage d{file, p.files.at(file), "", false};
  d.bytes[at] = static_cast<char>(d.bytes[at] ^ mask);
  char buf[64];
  std::snprintf(buf, sizeof buf, "flip 0x%02x at %zu", mask, at);
  d.what = buf;
  return d;
}
Damage cut(const Pristine& p, const std::string& file, std::size_t len) {
  Damage d{file, p.files.at(file).substr(0, len), "truncate to " + std::to_string(len), true};
  return d;
}
Damage zero(const Pristine& p, const std::string& file, std::size_t at, std::size_t len) {
  Damage d{file, p.files.at(file), "", false};
  len = std::min(len, d.bytes.size() - at);
  d.pure_cut = at + len == d.bytes.size();  // zeros to the end: what a power cut can leave
  std::fill(d.bytes.begin() + static_cast<std::ptrdiff_t>(at), d.bytes.begin() + static_cast<std::ptrdiff_t>(at + len),
            '\0');
  d.what = "zero [" + std::to_string(at) + ", " + std::to_string(at + len) + ")";
  return d;
}
Damage append(const Pristine& p, const std::string& file, const std::string& tail, const std::string& what) {
  Damage d{file, p.files.at(file) + tail, "append " + what, true};
  return d;
}

constexpr unsigned char kMasks[] = {0x01, 0x80, 0xff, 0x5a, 0x10};

// For damage to a WAL segment: the ops the store must hold if it opens (the
// records before the first damaged byte), or nullopt if it must not open.
std::optional<std::size_t> wal_expectation(const Pristine& p, const Damage& d) {
  const std::string& orig = p.files.at(d.file);
  const bool last = d.file == p.wal_b;
  const std::size_t first_op = last ? p.wal_a_first + kWalOpsA : p.wal_a_first;
  const auto records = wal_records(orig);
  // Zeros after the records of an earlier segment, the next one going on at
  // the next sequence: what a crash between a freeze and the seal leaves,
  // every record whole (docs/format.md#wal).
  if (!last && d.bytes.size() > orig.size() && d.bytes.compare(0, orig.size(), orig) == 0 &&
      d.bytes.find_first_not_of('\0', orig.size()) == std::string::npos)
    return p.ops.size();
  // [lo, hi): from the first to one past the last changed byte; a change of
  // length reaches the end.
  const std::size_t common = std::min(d.bytes.size(), orig.size());
  std::size_t lo = common;
  for (std::size_t i = 0; i < common; ++i)
    if (d.bytes[i] != orig[i]) {
      lo = i;
      break;
    }
  std::size_t hi = std::max(d.bytes.size(), orig.size());
  if (d.bytes.size() == orig.size()) {
    hi = 0;
    for (std::size_t i = orig.size(); i-- > 0;)
      if (d.bytes[i] != orig[i]) {
        hi = i + 1;
        break;
      }
  }
  // Records wholly before the damage survive. Damage in bytes that an
  // intact record after it says were already synced is corruption; damage
  // in bytes never synced is a torn tail (a power cut can leave exactly that).
  std::size_t before = 0;
  bool synced_damage = false;
  for (const auto& [s, e] : records) {
    if (e <= lo) ++before;
    if (s >= hi && e <= d.bytes.size()) {
      const std::uint64_t durable = detail::decode_fixed64(d.bytes.data() + s + 9);
      if (durable > lo) synced_damage = true;
    }
  }
  if (!last || synced_damage) return std::nullopt;
  return first_op + before;
}

}  // namespace

TEST_CASE("corruption: every flipped byte or cut or zeroed range is detected or cut as a torn WAL tail",
          "[corruption]") {
  ::alarm(600);  // a hang fails the run instead of blocking it
  const Pristine p;
  const auto started = std::chrono::steady_clock::now();
  std::mt19937_64 rng(99);

  SECTION("MANIFEST") {
    Tally t;
    const std::string f = "MANIFEST";
    const std::size_t n = p.files.at(f).size();
    for (std::size_t i = 0; i < n; ++i) run_case(p, flip(p, f, i, kMasks[i % 5]), std::nullopt, i % 7 == 0, t);
    for (std::size_t len = 0; len < n; ++len) run_case(p, cut(p, f, len), std::nullopt, false, t);
    for (std::size_t at : {std::size_t{0}, std::size_t{8}, std::size_t{16}, std::size_t{24}, n / 2, n - 8})
      for (std::size_t len : {std::size_t{1}, std::size_t{4}, std::size_t{64}, n})
        run_case(p, zero(p, f, at, len), std::nullopt, false, t);
    run_case(p, append(p, f, std::string(1, '\0'), "1 zero byte"), std::nullopt, false, t);
    run_case(p, append(p, f, std::string(100, 'g'), "100 bytes"), std::nullopt, false, t);
    t.report("MANIFEST");
  }

  SECTION("chunk files") {
    Tally t;
    // Four chunk files: the first, two in the middle and the last.
    const auto& c = p.chunks;
    for (const auto& f : {c.front(), c[c.size() / 3], c[2 * c.size() / 3], c.back()}) {
      const std::string& bytes = p.files.at(f);
      const std::size_t n = bytes.size();
      std::set<std::size_t> offsets;
      for (std::size_t i = 0; i < 20 && i < n; ++i) offsets.insert(i);  // header, first frame head
      for (std::size_t i = n - std::min<std::size_t>(n, 40); i < n; ++i) offsets.insert(i);  // meta tail, footer
      const std::uint64_t meta = detail::decode_fixed64(bytes.data() + n - 32);
      for (std::uint64_t i = meta; i < meta + 24 && i < n; ++i) offsets.insert(static_cast<std::size_t>(i));
      while (offsets.size() < std::min<std::size_t>(400, n)) offsets.insert(static_cast<std::size_t>(rng() % n));
      std::size_t j = 0;
      for (auto at : offsets) {
        ++j;
        run_case(p, flip(p, f, at, kMasks[j % 5]), std::nullopt, j % 6 == 0, t);
      }
      std::set<std::size_t> lens = {0, 1, 15, 16, 17, 33, n - 1, n - 8, n - 31, n - 32, n - 33,
                                    static_cast<std::size_t>(meta), static_cast<std::size_t>(meta) + 1,
                                    static_cast<std::size_t>(meta) - 1};
      while (lens.size() < std::min<std::size_t>(40, n)) lens.insert(static_cast<std::size_t>(rng() % n));
      for (auto len : lens) run_case(p, cut(p, f, len), std::nullopt, false, t);
      for (std::size_t at : {std::size_t{0}, std::size_t{16}, n / 3, n / 2, static_cast<std::size_t>(meta), n - 32})
        for (std::size_t len : {std::size_t{1}, std::size_t{7}, std::size_t{512}})
          run_case(p, zero(p, f, at, len), std::nullopt, false, t);
      run_case(p, append(p, f, std::string(1, 'x'), "1 byte"), std::nullopt, false, t);
      run_case(p, append(p, f, std::string(4096, '\0'), "4096 zero bytes"), std::nullopt, false, t);
    }
    t.report("chunk files");
  }

  SECTION("WAL segments") {
    // Every byte of both live segments is flipped; cuts at and around every
    // record boundary.
    Tally t;
    for (const auto& f : {p.wal_a, p.wal_b}) {
      const std::string& bytes = p.files.at(f);
      const std::size_t n = bytes.size();
      const auto records = wal_records(bytes);
      // Every byte of the segment.
      std::vector<std::size_t> offsets(n);
      for (std::size_t i = 0; i < n; ++i) offsets[i] = i;
      std::size_t j = 0;
      for (auto at : offsets) {
        ++j;
        Damage d = flip(p, f, at, kMasks[j % 5]);
        run_case(p, d, wal_expectation(p, d), j % 5 == 0, t);
      }
      std::set<std::size_t> lens = {0, 1, 16, 17, 18, n - 1};
      for (const auto& [s, e] : records) {
        lens.insert(s);
        lens.insert(s + 1);
        lens.insert(s + detail::kWalHeaderBytes);
        if (e < n) lens.insert(e - 1);
      }
      while (lens.size() < std::min(records.size() * 4 + 40, n)) lens.insert(static_cast<std::size_t>(rng() % n));
      for (auto len : lens) {
        if (len >= n) continue;
        Damage d = cut(p, f, len);
        run_case(p, d, wal_expectation(p, d), len % 4 == 0, t);
      }
      for (std::size_t at : {std::size_t{0}, std::size_t{17}, n / 3, n / 2, records.back().first, n - 1})
        for (std::size_t len : {std::size_t{1}, std::size_t{9}, std::size_t{300}, n}) {
          Damage d = zero(p, f, at, len);
          run_case(p, d, wal_expectation(p, d), false, t);
        }
      std::string garbage(333, '\0');
      for (auto& c : garbage) c = static_cast<char>(rng());
      for (const auto& [tail, what] : std::vector<std::pair<std::string, std::string>>{
               {std::string(1, '\0'), "1 zero byte"},
               {std::string(detail::kWalHeaderBytes, '\0'), "a zero record header"},
               {std::string(4096, '\0'), "a zero page"},
               {garbage, "333 random bytes"},
               {bytes.substr(records.back().first, 20), "the start of a copy of the last record"}}) {
        Damage d = append(p, f, tail, what);
        run_case(p, d, wal_expectation(p, d), false, t);
      }
    }
    t.report("WAL segments");
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("corruption: section done in %.1f s\n", secs);
  ::alarm(0);
}

// Files that vanish or are mixed up: a chunk file the MANIFEST names, the
// MANIFEST itself, a WAL segment with a later one after it; two chunk files
// swapped; a chunk file replaced by another valid one.
TEST_CASE("corruption: missing or mixed-up files are a CorruptionError", "[corruption]") {
  ::alarm(300);
  const Pristine p;
  Tally t;
  auto missing = [&](const std::string& file) {
    ++t.cases;
    t.begin();
    p.restore();
    std::filesystem::remove(p.work / file);
    const std::string label = file + ": deleted";
    Outcome o = probe(p.work, false, [&](int k, const std::optional<std::string>& v) {
      auto it = p.full.find(k);
      return it == p.full.end() ? !v.has_value() : v.has_value() && *v == it->second;
    });
    if (!o.other.empty()) return t.fail(label + ": threw another exception type", o.other);
    if (!o.bad_reads.empty())
      t.fail(label + ": get() returned stale data",
             std::to_string(o.bad_reads.size()) + " such gets, e.g. " + o.bad_reads[0]);
    if (o.corruption.empty())
      return t.fail(label + ": went unnoticed",
                    o.scanned == p.full ? std::string("data intact") : stowage_test::describe_diff(p.full, o.scanned, 2));
    const bool wal = file.find(".log") != std::string::npos;
    if (!names_file(o.corruption, wal ? std::vector<std::string>{file, p.wal_b} : std::vector<std::string>{file}))
      t.fail(label + ": CorruptionError does not name the file", o.corruption[0]);
    ++t.detected;
  };
  missing("MANIFEST");
  missing(p.chunks.front());
  missing(p.chunks[p.chunks.size() / 2]);
  missing(p.wal_a);
  t.report("missing files");

  // Valid chunk files under the wrong names: every byte checks out, only the
  // MANIFEST's record of each chunk (size, records, first and last key) can
  // tell.
  Tally m;
  auto mixed_up = [&](const std::string& label, const std::map<std::string, std::string>& replace) {
    ++m.cases;
    m.begin();
    p.restore();
    for (const auto& [name, bytes] : replace) stowage_test::write_all(p.work / name, bytes);
    Outcome o = probe(p.work, false, [&](int k, const std::optional<std::string>& v) {
      auto it = p.full.find(k);
      return it == p.full.end() ? !v.has_value() : v.has_value() && *v == it->second;
    });
    if (!o.other.empty()) return m.fail(label + ": threw another exception type", o.other);
    if (!o.bad_reads.empty())
      m.fail(label + ": get() returned wrong data", std::to_string(o.bad_reads.size()) + " such gets, e.g. " + o.bad_reads[0]);
    if (o.corruption.empty()) {
      if (!o.ascending) m.fail(label + ": scan not strictly ascending", "");
      return m.fail(label + ": went unnoticed",
                    o.scanned == p.full ? std::string("data intact") : stowage_test::describe_diff(p.full, o.scanned, 2));
    }
    std::vector<std::string> names;
    for (const auto& [name, bytes] : replace) names.push_back(name);
    if (!names_file(o.corruption, names)) m.fail(label + ": CorruptionError does not name the file", o.corruption[0]);
    ++m.detected;
  };
  const auto& c = p.chunks;
  const std::string& first = c.front();
  const std::string& second = c[1];
  const std::string& middle = c[c.size() / 2];
  mixed_up("two neighbouring chunk files swapped", {{first, p.files.at(second)}, {second, p.files.at(first)}});
  mixed_up("two distant chunk files swapped", {{first, p.files.at(middle)}, {middle, p.files.at(first)}});
  mixed_up("a chunk file replaced by a copy of another", {{middle, p.files.at(c.back())}});
  m.report("mixed-up files");
  ::alarm(0);
}

// WAL records whose checksums are right but whose payload is not a valid
// batch (a writer bug or a hostile file): appended as a new last segment with
// the engine's own WalWriter. Each must be a CorruptionError naming the
// segment — never a crash, std::bad_alloc, std::length_error or a silent skip.
TEST_CASE("corruption: WAL records with valid checksums but malformed payloads", "[corruption]") {
  ::alarm(300);
  const Pristine p;
  std::uint64_t last_seq = 0;
  {
    p.restore();
    Store db(p.work, corruption_options(true));
    last_seq = db.stats().last_sequence;
  }
  const auto wal_number = detail::parse_wal_file_name(p.wal_b);
  REQUIRE(wal_number);
  const std::uint64_t forged_number = *wal_number + 1000;
  const std::string forged_name = detail::wal_file_name(forged_number);
  const std::string key5 = encode_key(5);
  auto header = [&](std::uint64_t seq, std::uint64_t count) {
    std::string b;
    detail::put_fixed64(b, seq);
    detail::put_varint(b, count);
    return b;
  };
  std::string good_value;
  BinarySerializer::serialize(std::string("fine"), good_value);

  struct Forged {
    std::string what, payload;
    bool names_dir_ok = false;  // a value/key that fails to decode may name the store directory instead
  };
  std::vector<Forged> cases;
  const std::uint64_t next = last_seq + 1;
  cases.push_back({"an empty payload", ""});
  cases.push_back({"a sequence number only", header(next, 0).substr(0, 8)});
  cases.push_back({"an op count of 2^62", header(next, std::uint64_t{1} << 62)});
  cases.push_back({"an op count larger than the ops", header(next, 3) + std::string(1, '\1') +
                                                         std::string(1, static_cast<char>(key5.size())) + key5 +
                                                         std::string(1, static_cast<char>(good_value.size())) + good_value});
  cases.push_back({"an unknown op kind", header(next, 1) + std::string(1, '\7') + std::string(1, '\4') + key5});
  cases.push_back({"a key length past the end", header(next, 1) + std::string(1, '\1') + "\xff\xff\x03" + key5});
  cases.push_back({"a put without its value", header(next, 1) + std::string(1, '\1') + std::string(1, '\4') + key5});
  cases.push_back({"trailing bytes after the ops", header(next, 1) + std::string(1, '\2') + std::string(1, '\4') + key5 +
                                                       "junk"});
  cases.push_back({"an overlong varint", header(next, 0).substr(0, 8) + std::string(11, '\xff')});
  {
    std::string b = header(next, 1) + std::string(1, '\1');
    detail::put_bytes(b, "abc");  // 3 bytes: not an int key
    detail::put_bytes(b, good_value);
    cases.push_back({"a key that does not decode as the Key type", b, true});
  }
  {
    std::string b = header(next, 1) + std::string(1, '\1');
    detail::put_bytes(b, key5);
    detail::put_bytes(b, std::string("\x64\x01", 2));  // a string of 100 bytes, 1 present
    cases.push_back({"a value that does not decode as the Value type", b, true});
  }
  {
    std::string b = header(next + 1000, 1) + std::string(1, '\1');
    detail::put_bytes(b, key5);
    detail::put_bytes(b, good_value);
    cases.push_back({"a sequence gap of 1000 before the record", b});
  }

  Tally t;
  for (const auto& c : cases) {
    ++t.cases;
    t.begin();
    p.restore();
    {
      detail::WalWriter w(*default_file_system(), p.work, forged_number);
      w.append(c.payload);
      w.sync();
    }
    const std::string label = "forged record with " + c.what;
    Outcome o = probe(p.work, false, [&](int k, const std::optional<std::string>& v) {
      auto it = p.full.find(k);
      return it == p.full.end() ? !v.has_value() : v.has_value() && *v == it->second;
    });
    std::filesystem::remove(p.work / forged_name);
    if (!o.other.empty()) {
      t.fail(label + ": threw another exception type", o.other);
      continue;
    }
    if (o.corruption.empty()) {
      t.fail(label + ": accepted", o.scanned == p.full ? std::string("store unchanged")
                                                       : stowage_test::describe_diff(p.full, o.scanned, 2));
      continue;
    }
    std::vector<std::string> names = {forged_name};
    if (c.names_dir_ok) names.push_back(p.work.string());
    if (!names_file(o.corruption, names)) t.fail(label + ": CorruptionError does not name the WAL segment", o.corruption[0]);
    ++t.detected;
  }
  t.report("forged WAL records");
  ::alarm(0);
}
