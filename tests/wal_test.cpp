// Tests of the write-ahead log: framing, replay, torn tails, damage, and
// preallocated segments (records written in place over zeros).
#include <catch2/catch.hpp>

#include <random>

#include <stowage/wal.hpp>

#include "fault_fs.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;

namespace {

std::string batch_payload(std::uint64_t seq, const std::vector<std::pair<std::string, std::string>>& puts) {
  detail::WalBatch b(seq);
  for (auto& [k, v] : puts) b.put(k, v);
  return b.finish();
}

struct Replayed {
  std::vector<std::string> payloads;
  detail::WalReplay result;
};

Replayed replay(const std::filesystem::path& dir, std::uint64_t number) {
  Replayed r;
  r.result = detail::replay_wal(*default_file_system(), dir / detail::wal_file_name(number), number,
                                [&](std::string_view p, std::uint64_t) { r.payloads.emplace_back(p); });
  return r;
}

std::string payload_for(int i) {
  return batch_payload(static_cast<std::uint64_t>(i + 1),
                       {{"key" + std::to_string(i), std::string(static_cast<std::size_t>(i * 7), 'v')}});
}

// True if files in dir are written through a map (see WritableFile::map).
bool maps_here(const std::filesystem::path& dir) {
  auto f = default_file_system()->create(dir / "probe");
  const bool mapped = f->map(4096) != nullptr;
  f->close();
  std::filesystem::remove(dir / "probe");
  return mapped;
}

// n records, synced at the end; sealed (no preallocated zeros) unless told.
std::vector<std::string> write_records(const std::filesystem::path& dir, std::uint64_t number, int n,
                                       bool seal = true) {
  detail::WalWriter w(*default_file_system(), dir, number);
  std::vector<std::string> payloads;
  for (int i = 0; i < n; ++i) {
    payloads.push_back(payload_for(i));
    w.append(payloads.back());
  }
  if (seal)
    w.seal();
  else
    w.sync();
  return payloads;
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

}  // namespace

TEST_CASE("wal file names round trip") {
  CHECK(detail::wal_file_name(7) == "wal-000007.log");
  CHECK(detail::parse_wal_file_name("wal-000007.log") == std::optional<std::uint64_t>(7));
  CHECK_FALSE(detail::parse_wal_file_name("wal-.log"));
  CHECK_FALSE(detail::parse_wal_file_name("wal-12a.log"));
  CHECK_FALSE(detail::parse_wal_file_name("000007.chunk"));
}

TEST_CASE("batch payload encodes and decodes every op") {
  detail::WalBatch b(41);
  b.put("a", "1");
  b.erase("b");
  b.put("c", std::string(1000, 'x'));
  std::string payload = b.finish();
  std::vector<detail::WalOp> ops;
  std::filesystem::path file = "mem";
  detail::decode_wal_batch(payload, file, 0, [&](const detail::WalOp& op) { ops.push_back(op); });
  REQUIRE(ops.size() == 3);
  CHECK(ops[0].kind == detail::kOpPut);
  CHECK(ops[0].seq == 41);
  CHECK(ops[0].key == "a");
  CHECK(ops[0].value == "1");
  CHECK(ops[1].kind == detail::kOpErase);
  CHECK(ops[1].seq == 42);
  CHECK(ops[2].value.size() == 1000);
  // Every truncation of a payload is rejected as corruption, never a crash.
  for (std::size_t n = 0; n < payload.size(); ++n) {
    CHECK_THROWS_AS(detail::decode_wal_batch(payload.substr(0, n), file, 0, [](const detail::WalOp&) {}),
                    CorruptionError);
  }
}

TEST_CASE("records replay in order") {
  TempDir dir("wal");
  auto written = write_records(dir.path(), 3, 50);
  auto r = replay(dir.path(), 3);
  CHECK(r.payloads == written);
  CHECK(r.result.records == 50);
  CHECK(r.result.cut_bytes == 0);
}

TEST_CASE("replay reads through a window: records across its edges and larger than it replay whole") {
  // Replay reads the file a MiB at a time (WindowReader::kChunk): records
  // of varied sizes straddle every window edge, and one is larger than a
  // window; a tear inside the large one keeps every record before it.
  TempDir dir("wal");
  std::vector<std::string> written;
  std::vector<std::size_t> ends;
  {
    detail::WalWriter w(*default_file_system(), dir.path(), 4);
    std::mt19937 rng(11);
    std::size_t pos = 0;
    for (int i = 0; pos < 3 * detail::wal_detail::WindowReader::kChunk; ++i) {
      const std::size_t len = i == 40 ? detail::wal_detail::WindowReader::kChunk * 5 / 2 : 1 + rng() % 70000;
      std::string key = "k";
      key += std::to_string(i);  // not "k" + ...: g++ 12 -O2 warns (-Wrestrict) through operator+
      written.push_back(batch_payload(static_cast<std::uint64_t>(i + 1), {{key, std::string(len, static_cast<char>('a' + i % 26))}}));
      w.append(written.back());
      ends.push_back(pos += detail::kWalHeaderBytes + written.back().size());
    }
    w.seal();
  }
  auto r = replay(dir.path(), 4);
  CHECK(r.payloads == written);
  CHECK(r.result.cut_bytes == 0);
  CHECK(r.result.valid_bytes == ends.back());
  // Torn in the middle of the large record (the 41st).
  const auto path = dir / detail::wal_file_name(4);
  const auto full = stowage_test::read_all(path);
  stowage_test::write_all(path, full.substr(0, ends[39] + detail::wal_detail::WindowReader::kChunk));
  r = replay(dir.path(), 4);
  REQUIRE(r.payloads.size() == 40);
  CHECK(std::equal(r.payloads.begin(), r.payloads.end(), written.begin()));
  CHECK(r.result.valid_bytes == ends[39]);
}

TEST_CASE("a torn tail is cut at every length and the prefix recovered") {
  TempDir dir("wal");
  auto written = write_records(dir.path(), 1, 6);
  auto path = dir / detail::wal_file_name(1);
  auto full = stowage_test::read_all(path);
  // Record boundaries.
  std::vector<std::size_t> ends;
  std::size_t pos = 0;
  for (auto& p : written) ends.push_back(pos += detail::kWalHeaderBytes + p.size());
  for (std::size_t len = 0; len <= full.size(); ++len) {
    stowage_test::write_all(path, full.substr(0, len));
    auto r = replay(dir.path(), 1);
    std::size_t complete = static_cast<std::size_t>(std::upper_bound(ends.begin(), ends.end(), len) - ends.begin());
    REQUIRE(r.payloads.size() == complete);
    CHECK(r.result.valid_bytes + r.result.cut_bytes + r.result.zero_bytes == len);
  }
}

TEST_CASE("a zero tail is a clean end; a garbage tail is cut") {
  TempDir dir("wal");
  auto written = write_records(dir.path(), 2, 4);
  auto path = dir / detail::wal_file_name(2);
  auto full = stowage_test::read_all(path);
  stowage_test::write_all(path, full + std::string(4096, '\0'));
  auto r = replay(dir.path(), 2);
  CHECK(r.payloads == written);
  CHECK(r.result.valid_bytes == full.size());
  CHECK(r.result.cut_bytes == 0);
  CHECK(r.result.zero_bytes == 4096);
  std::mt19937 rng(7);
  std::string garbage(10000, '\0');
  for (auto& c : garbage) c = static_cast<char>(rng());
  stowage_test::write_all(path, full + garbage);
  r = replay(dir.path(), 2);
  CHECK(r.payloads == written);
}

TEST_CASE("damage in synced bytes is a CorruptionError, never a silent skip") {
  TempDir dir("wal");
  auto path = dir / detail::wal_file_name(5);
  std::vector<std::string> written;
  std::size_t synced_bytes = 0;
  {
    detail::WalWriter w(*default_file_system(), dir.path(), 5);
    for (int i = 0; i < 10; ++i) {
      written.push_back(batch_payload(static_cast<std::uint64_t>(i + 1), {{"key" + std::to_string(i), "value"}}));
      w.append(written.back());
    }
    w.sync();
    synced_bytes = w.size();
    // Later records say the first ten were durable when they were written.
    for (int i = 10; i < 13; ++i) {
      written.push_back(batch_payload(static_cast<std::uint64_t>(i + 1), {{"key" + std::to_string(i), "value"}}));
      w.append(written.back());
    }
  }
  auto full = stowage_test::read_all(path);
  for (std::size_t off = 0; off < synced_bytes; ++off) {
    stowage_test::write_all(path, full);
    stowage_test::flip_byte(path, off);
    try {
      auto r = replay(dir.path(), 5);
      FAIL("flipping synced byte " << off << " went unnoticed (" << r.payloads.size() << " records)");
    } catch (const CorruptionError& e) {
      CHECK(std::string(e.what()).find(path.string()) != std::string::npos);
    }
  }
}

TEST_CASE("damage in bytes never synced is a torn tail: cut there, the prefix recovered") {
  TempDir dir("wal");
  auto written = write_records(dir.path(), 6, 10);  // synced only at the end: no record claims durability
  auto path = dir / detail::wal_file_name(6);
  auto full = stowage_test::read_all(path);
  std::size_t second = detail::kWalHeaderBytes + written[0].size();
  for (std::size_t off : {second, second + 3, second + detail::kWalHeaderBytes + 1}) {
    stowage_test::write_all(path, full);
    stowage_test::flip_byte(path, off);
    auto r = replay(dir.path(), 6);
    REQUIRE(r.payloads.size() == 1);
    CHECK(r.payloads[0] == written[0]);
    CHECK(r.result.valid_bytes == second);
    CHECK(r.result.cut_bytes == full.size() - second);
  }
}

TEST_CASE("records of another segment number never replay") {
  TempDir dir("wal");
  write_records(dir.path(), 9, 3);
  std::filesystem::rename(dir / detail::wal_file_name(9), dir / detail::wal_file_name(10));
  auto r = replay(dir.path(), 10);
  CHECK(r.payloads.empty());
  CHECK(r.result.cut_bytes > 0);
}

TEST_CASE("a preallocated segment: records in place over written zeros, the zero tail a clean end") {
  TempDir dir("wal");
  auto path = dir / detail::wal_file_name(4);
  for (std::uint64_t step : {detail::kWalPreallocMax, std::uint64_t{4096}}) {
    INFO("preallocation step " << step);
    detail::WalWriter w(*default_file_system(), dir.path(), 4, step);
    w.sync();  // preallocation starts with the first sync
    std::vector<std::string> written;
    std::uint64_t grows = 0, last_allocated = 0;
    for (int i = 0; i < 300; ++i) {
      written.push_back(payload_for(i));
      w.append(written.back());
      if (i % 3 == 0) w.sync();
      if (w.allocated() != last_allocated) ++grows;
      last_allocated = w.allocated();
      // The file is ahead of the records, in whole pages of zeros.
      REQUIRE(w.allocated() >= w.size());
      REQUIRE(w.allocated() % 4096 == 0);
      REQUIRE(std::filesystem::file_size(path) == w.allocated());
    }
    w.sync();
    CHECK(grows >= (step == 4096 ? 10u : 2u));  // 64 KiB, then doubling; or 4 KiB steps
    auto bytes = stowage_test::read_all(path);
    CHECK(all_zero(std::string_view(bytes).substr(static_cast<std::size_t>(w.size()))));
    auto r = replay(dir.path(), 4);
    CHECK(r.payloads == written);
    CHECK(r.result.valid_bytes == w.size());
    CHECK(r.result.cut_bytes == 0);
    CHECK(r.result.zero_bytes == w.allocated() - w.size());
    // seal() leaves exactly the records.
    w.seal();
    CHECK(std::filesystem::file_size(path) == w.size());
    r = replay(dir.path(), 4);
    CHECK(r.payloads == written);
    CHECK(r.result.zero_bytes == 0);
  }
  // A record larger than a step still fits.
  detail::WalWriter w(*default_file_system(), dir.path(), 6, 4096);
  w.sync();
  std::string big = batch_payload(1, {{"big", std::string(100000, 'b')}});
  w.append(big);
  w.append(payload_for(1));
  w.sync();
  auto r = replay(dir.path(), 6);
  REQUIRE(r.payloads.size() == 2);
  CHECK(r.payloads[0] == big);
  CHECK(r.result.cut_bytes == 0);
}

TEST_CASE("a record after zeros replays only if nothing before it was lost; lost synced bytes are corruption") {
  TempDir dir("wal");
  auto path = dir / detail::wal_file_name(8);
  std::vector<std::string> written;
  std::vector<std::uint64_t> ends;
  {
    detail::WalWriter w(*default_file_system(), dir.path(), 8);
    for (int i = 0; i < 3; ++i) {
      written.push_back(payload_for(i));
      w.append(written.back());
      ends.push_back(w.size());
      w.sync();  // each later record says the ones before it are durable
    }
    for (int i = 3; i < 6; ++i) {  // never synced: they claim ends[2] bytes at most
      written.push_back(payload_for(i));
      w.append(written.back());
      ends.push_back(w.size());
    }
  }
  const auto full = stowage_test::read_all(path);
  auto zeroed = [&](std::uint64_t from, std::uint64_t to) {
    std::string b = full;
    std::fill(b.begin() + static_cast<std::ptrdiff_t>(from), b.begin() + static_cast<std::ptrdiff_t>(to), '\0');
    return b;
  };
  // Record 1 (synced; record 2 says so) comes back as zeros: corruption.
  stowage_test::write_all(path, zeroed(ends[0], ends[1]));
  CHECK_THROWS_AS(replay(dir.path(), 8), CorruptionError);
  // Record 3 (never synced) comes back as zeros: records 4 and 5 after the
  // zeros are not replayed, the tail is cut up to record 5's last byte.
  stowage_test::write_all(path, zeroed(ends[2], ends[3]));
  auto r = replay(dir.path(), 8);
  CHECK(r.payloads == std::vector<std::string>(written.begin(), written.begin() + 3));
  CHECK(r.result.valid_bytes == ends[2]);
  CHECK(r.result.cut_bytes == ends[5] - ends[2]);
  CHECK(r.result.zero_bytes == full.size() - ends[5]);
  // Only the last record's header survives, its payload zeros: never a record.
  stowage_test::write_all(path, zeroed(ends[4] + detail::kWalHeaderBytes, full.size()));
  r = replay(dir.path(), 8);
  CHECK(r.payloads == std::vector<std::string>(written.begin(), written.begin() + 5));
  CHECK(r.result.cut_bytes > 0);
  // A record header of zeros only, anywhere in the zero tail: a clean end.
  stowage_test::write_all(path, zeroed(ends[2], full.size()));
  r = replay(dir.path(), 8);
  CHECK(r.payloads.size() == 3);
  CHECK(r.result.cut_bytes == 0);
  CHECK(r.result.zero_bytes == full.size() - ends[2]);
}

TEST_CASE("a continued segment appends at its logical end, over the zeros, and never after stale bytes") {
  TempDir dir("wal");
  auto& fs = *default_file_system();
  auto path = dir / detail::wal_file_name(3);
  std::vector<std::string> written;
  {
    detail::WalWriter w(fs, dir.path(), 3);
    w.sync();
    for (int i = 0; i < 5; ++i) {
      written.push_back(payload_for(i));
      w.append(written.back());
    }
    w.sync();
  }  // a crash: the zeros stay
  const auto physical = std::filesystem::file_size(path);
  auto r = replay(dir.path(), 3);
  REQUIRE(r.payloads == written);
  REQUIRE(r.result.zero_bytes > 0);
  {
    detail::WalWriter w(fs, dir.path(), 3, r.result);
    CHECK(w.size() == r.result.valid_bytes);
    for (int i = 5; i < 8; ++i) {
      written.push_back(payload_for(i));
      w.append(written.back());
    }
    w.sync();
    CHECK(std::filesystem::file_size(path) == physical);  // written into the zeros, not after them
  }
  r = replay(dir.path(), 3);
  CHECK(r.payloads == written);
  CHECK(r.result.cut_bytes == 0);

  // A torn tail holding a stale but valid record of this very segment (its
  // durable length claims nothing lost) is cut, then truncated away when the
  // segment is continued: the stale record can never follow a new one.
  auto bytes = stowage_test::read_all(path);
  const auto end = static_cast<std::size_t>(r.result.valid_bytes);
  const std::size_t second = detail::kWalHeaderBytes + written[0].size();
  std::string stale = bytes.substr(second, detail::kWalHeaderBytes + written[1].size());  // claims 0 bytes durable
  std::string torn = bytes.substr(0, end) + "garbage!" + stale;
  torn += std::string(8192 - torn.size() % 4096, '\0');
  stowage_test::write_all(path, torn);
  r = replay(dir.path(), 3);
  REQUIRE(r.payloads == written);
  REQUIRE(r.result.cut_bytes == 8 + stale.size());
  {
    detail::WalWriter w(fs, dir.path(), 3, r.result);
    written.push_back(payload_for(8));
    w.append(written.back());
    w.sync();
  }
  r = replay(dir.path(), 3);
  CHECK(r.payloads == written);  // the stale copy of record 1 is gone
  CHECK(r.result.cut_bytes == 0);
}

TEST_CASE("stale records of another segment in the zero tail never replay") {
  TempDir dir("wal");
  auto old_records = write_records(dir.path(), 11, 4);
  auto mine = write_records(dir.path(), 12, 2);
  auto path = dir / detail::wal_file_name(12);
  // As if segment 12 reused segment 11's file: 11's records after 12's.
  stowage_test::write_all(path, stowage_test::read_all(path) +
                                    stowage_test::read_all(dir / detail::wal_file_name(11)) +
                                    std::string(4096, '\0'));
  auto r = replay(dir.path(), 12);
  CHECK(r.payloads == mine);
  CHECK(r.result.cut_bytes > 0);  // foreign bytes: cut, never replayed
}

namespace {

// A file system whose files can only be appended to (no write_at).
class AppendOnlyFileSystem final : public FileSystem {
  struct File final : WritableFile {
    std::unique_ptr<WritableFile> in;
    explicit File(std::unique_ptr<WritableFile> f) : in(std::move(f)) {}
    void append(std::string_view d) override { in->append(d); }
    void flush() override { in->flush(); }
    void sync() override { in->sync(); }
    void sync_flushed() override { in->sync_flushed(); }
    void close() override { in->close(); }
    std::uint64_t size() const override { return in->size(); }
  };
  FileSystem& base_ = *default_file_system();

 public:
  std::unique_ptr<WritableFile> create(const std::filesystem::path& p) override {
    return std::make_unique<File>(base_.create(p));
  }
  std::unique_ptr<WritableFile> open_append(const std::filesystem::path& p) override {
    return std::make_unique<File>(base_.open_append(p));
  }
  std::unique_ptr<RandomAccessFile> open_read(const std::filesystem::path& p) override { return base_.open_read(p); }
  void rename(const std::filesystem::path& a, const std::filesystem::path& b) override { base_.rename(a, b); }
  void remove(const std::filesystem::path& p) override { base_.remove(p); }
  void truncate(const std::filesystem::path& p, std::uint64_t n) override { base_.truncate(p, n); }
  void sync_dir(const std::filesystem::path& d) override { base_.sync_dir(d); }
  void create_dirs(const std::filesystem::path& d) override { base_.create_dirs(d); }
  std::vector<std::string> list(const std::filesystem::path& d) override { return base_.list(d); }
  bool exists(const std::filesystem::path& p) override { return base_.exists(p); }
  bool is_directory(const std::filesystem::path& p) override { return base_.is_directory(p); }
};

}  // namespace

TEST_CASE("a file system without write_at gets plain appends") {
  TempDir dir("wal");
  AppendOnlyFileSystem fs;
  auto path = dir / detail::wal_file_name(2);
  std::vector<std::string> written;
  {
    detail::WalWriter w(fs, dir.path(), 2);
    for (int i = 0; i < 4; ++i) {
      written.push_back(payload_for(i));
      w.append(written.back());
      CHECK(w.allocated() == w.size());
      CHECK(std::filesystem::file_size(path) == w.size());
    }
    w.sync();
  }
  // Continued after a zero tail (written by another program): the zeros go.
  stowage_test::write_all(path, stowage_test::read_all(path) + std::string(4096, '\0'));
  Replayed r;
  r.result = detail::replay_wal(fs, path, 2, [&](std::string_view p, std::uint64_t) { r.payloads.emplace_back(p); });
  REQUIRE(r.result.zero_bytes == 4096);
  {
    detail::WalWriter w(fs, dir.path(), 2, r.result);
    written.push_back(payload_for(4));
    w.append(written.back());
    w.sync();
  }
  CHECK(replay(dir.path(), 2).payloads == written);
}

TEST_CASE("power cuts of a preallocated segment keep every synced record and replay no torn one") {
  using stowage_test::TailMode;
  TempDir dir("wal");
  const auto seg = dir / "seg";
  std::filesystem::create_directories(seg);
  std::mt19937_64 rng(5);
  int opened = 0, cut = 0;
  for (int round = 0; round < 40; ++round) {
    for (const auto& e : std::filesystem::directory_iterator(seg)) std::filesystem::remove(e.path());
    auto fs = stowage_test::FaultFileSystem::make(seg);
    std::vector<std::string> written;
    std::size_t synced = 0;
    {
      detail::WalWriter w(*fs, seg, 1, round % 2 ? 4096 : detail::kWalPreallocMax);
      const int n = 5 + static_cast<int>(rng() % 200);
      for (int i = 0; i < n; ++i) {
        written.push_back(payload_for(i));
        w.append(written.back());
        if (rng() % 4 == 0) {
          w.sync();
          synced = written.size();
        }
      }
    }
    for (auto mode : {TailMode::drop, TailMode::prefix, TailMode::garbage, TailMode::zeros, TailMode::holes}) {
      const auto image = dir / "image";
      fs->power_loss_image(image, mode, rng(), stowage_test::DirMode::lose);
      INFO("round " << round << ", " << stowage_test::tail_mode_name(mode) << ", " << written.size() << " written, "
                    << synced << " synced");
      Replayed r;
      REQUIRE_NOTHROW(r = replay(image, 1));
      REQUIRE(r.payloads.size() >= synced);
      REQUIRE(r.payloads.size() <= written.size());
      CHECK(r.payloads == std::vector<std::string>(written.begin(), written.begin() + r.payloads.size()));
      ++opened;
      if (r.result.cut_bytes > 0) ++cut;
    }
  }
  CHECK(opened == 200);
  CHECK(cut > 0);  // some cuts were torn, not clean
}

TEST_CASE("a segment written with write_at is preallocated only once synced") {
  TempDir dir("wal");
  // The fault file system cannot map files: records go through write_at().
  auto fs = stowage_test::FaultFileSystem::make(dir.path());
  detail::WalWriter w(*fs, dir.path(), 1);
  for (int i = 0; i < 50; ++i) w.append(payload_for(i));
  CHECK(w.allocated() == w.size());
  CHECK(std::filesystem::file_size(dir / detail::wal_file_name(1)) == w.size());
  w.sync();
  w.append(payload_for(50));
  CHECK(w.allocated() > w.size());
  CHECK(w.allocated() % 4096 == 0);
}

TEST_CASE("a mapped segment is preallocated at once, and its records replay as written") {
  TempDir dir("wal");
  std::vector<std::string> written;
  {
    detail::WalWriter w(*default_file_system(), dir.path(), 1);
    for (int i = 0; i < 50; ++i) {
      written.push_back(payload_for(i));
      w.append(written.back());
    }
    // The map may only cover bytes the file holds: zeros are ahead of the
    // records before the first store into it, synced or not. (Where the
    // temporary directory's file system is not mapped, records are written
    // and the segment grows as it is written.)
    if (maps_here(dir.path())) {
      CHECK(w.allocated() > w.size());
      CHECK(w.allocated() % 4096 == 0);
    } else {
      WARN("the temporary directory's file system is written with pwrite, not mapped");
      CHECK(w.allocated() == w.size());
    }
    CHECK(std::filesystem::file_size(dir / detail::wal_file_name(1)) == w.allocated());
    // Stores into the map are in the page cache: another handle reads them
    // before any sync (what a process crash leaves).
    Replayed live = replay(dir.path(), 1);
    CHECK(live.payloads == written);
    CHECK(live.result.valid_bytes == w.size());
    // A record over 64 KiB is written with write_at() between mapped ones.
    written.push_back(batch_payload(51, {{"big", std::string(std::size_t{100} << 10, 'b')}}));
    w.append(written.back());
    written.push_back(payload_for(52));
    w.append(written.back());
    w.sync();
    w.seal();
    CHECK(std::filesystem::file_size(dir / detail::wal_file_name(1)) == w.size());
  }
  Replayed r = replay(dir.path(), 1);
  CHECK(r.payloads == written);
  CHECK(r.result.cut_bytes == 0);
}

TEST_CASE("write_back starts the OS writing each range once and makes nothing durable") {
  TempDir dir("wal");
  auto fs = stowage_test::FaultFileSystem::make(dir.path());
  const std::string name = detail::wal_file_name(1);
  detail::WalWriter w(*fs, dir.path(), 1);
  w.prepare();  // the preallocated zeros durable, as the engine's segments are
  for (int i = 0; i < 20; ++i) w.append(payload_for(i));
  const std::uint64_t durable = fs->durable_bytes(name), first = w.size();
  w.write_back(first);
  w.write_back(first);      // asked already: no second hint
  w.write_back(first / 2);  // behind what was asked: none either
  for (int i = 20; i < 30; ++i) w.append(payload_for(i));
  w.write_back(w.size());
  using Range = std::pair<std::uint64_t, std::uint64_t>;
  CHECK(fs->write_backs() == std::vector<Range>{{0, first}, {first, w.size() - first}});
  // Only a hint: a power cut now keeps what was durable before it.
  CHECK(fs->durable_bytes(name) == durable);
  w.sync();
  CHECK(fs->durable_bytes(name) >= w.size());
}

TEST_CASE("a mapped segment grows past its first 64 MiB window, and a continued one maps again") {
  TempDir dir("wal");
  std::vector<std::string> written;
  std::uint64_t end = 0;
  {
    detail::WalWriter w(*default_file_system(), dir.path(), 1);
    // 60 KiB records (mapped: at most 64 KiB) up to past 64 MiB: the map is
    // replaced by a larger one on the way.
    for (int i = 0; w.size() < (std::uint64_t{66} << 20); ++i) {
      std::string key = std::to_string(i);  // (not "k" + ...: g++ 12 -Wrestrict false positive)
      written.push_back(batch_payload(static_cast<std::uint64_t>(i + 1),
                                      {{key, std::string(std::size_t{60} << 10, char('a' + i % 26))}}));
      w.append(written.back());
    }
    end = w.size();
    w.sync();
  }  // not sealed: its zero tail stays, as after a crash
  detail::WalReplay replayed;
  {
    Replayed r = replay(dir.path(), 1);
    CHECK(r.payloads == written);
    CHECK(r.result.valid_bytes == end);
    replayed = r.result;
  }
  {
    detail::WalWriter w(*default_file_system(), dir.path(), 1, replayed);
    for (int i = 0; i < 20; ++i) {
      written.push_back(payload_for(1000 + i));
      w.append(written.back());
    }
    w.sync();
    w.seal();
  }
  Replayed r = replay(dir.path(), 1);
  CHECK(r.payloads == written);
  CHECK(r.result.cut_bytes == 0);
}

// A freeze leaves its segment to be sealed in the background, before any
// later segment is synced: judge_wal_end tells an unsealed segment's clean
// end, a power cut's lost end and damage to synced bytes apart.
TEST_CASE("judge_wal_end: the end of a segment that later segments follow") {
  using detail::WalEnd;
  using detail::WalReplay;
  const std::filesystem::path path = "wal-000001.log";
  auto seg = [](std::uint64_t records, std::uint64_t first, std::uint64_t cut, std::uint64_t zeros,
                std::uint64_t claim) {
    WalReplay r;
    r.records = records;
    r.valid_bytes = records * 40;
    r.first_seq = records > 0 ? first : 0;
    r.cut_bytes = cut;
    r.zero_bytes = zeros;
    r.durable_claim = claim;
    return r;
  };
  const WalReplay frozen_whole = seg(10, 1, 0, 4096, 200);  // records 1..10, then zeros
  const WalReplay frozen_torn = seg(8, 1, 60, 4000, 200);   // records 1..8, then garbage
  const WalReplay next_unsynced = seg(5, 11, 0, 0, 0);      // records 11..15, never synced
  const WalReplay next_synced = seg(5, 11, 0, 0, 120);      // a record says 120 bytes were synced
  const WalReplay empty = seg(0, 0, 0, 0, 0);

  // Sealed: ends at its last record, whatever follows.
  CHECK(detail::judge_wal_end(path, seg(10, 1, 0, 0, 400), 11, {next_synced}) == WalEnd::sealed);
  // Zeros, and the next segment goes on at the next sequence (kill -9
  // before the seal): whole, synced after or not.
  CHECK(detail::judge_wal_end(path, frozen_whole, 11, {empty, next_unsynced}) == WalEnd::unsealed);
  CHECK(detail::judge_wal_end(path, frozen_whole, 11, {next_synced}) == WalEnd::unsealed);
  // Zeros, then nothing but empty segments: it is the log's end, clean.
  CHECK(detail::judge_wal_end(path, frozen_whole, 11, {empty}) == WalEnd::unsealed);
  // Torn, or short (zeros, then a gap before the next segment), and no later
  // record was synced: a power cut before the seal, so the log ends here.
  CHECK(detail::judge_wal_end(path, frozen_torn, 9, {next_unsynced}) == WalEnd::cut);
  CHECK(detail::judge_wal_end(path, seg(7, 1, 0, 4096, 0), 8, {next_unsynced}) == WalEnd::cut);
  CHECK(detail::judge_wal_end(path, frozen_torn, 9, {empty}) == WalEnd::cut);
  // The same after a later segment was synced: that sync came after this
  // segment's seal, so its end was synced and is damaged.
  CHECK_THROWS_AS(detail::judge_wal_end(path, frozen_torn, 9, {next_synced}), CorruptionError);
  CHECK_THROWS_AS(detail::judge_wal_end(path, seg(7, 1, 0, 4096, 0), 8, {next_unsynced, next_synced}),
                  CorruptionError);
  try {
    detail::judge_wal_end(path, frozen_torn, 9, {next_unsynced, next_synced});
    FAIL("no CorruptionError");
  } catch (const CorruptionError& e) {
    CHECK(e.offset() == frozen_torn.valid_bytes);
    CHECK_THAT(e.what(), Catch::Contains("a later, synced segment follows"));
  }
}

TEST_CASE("replay reports the first sequence and the largest synced length its records state") {
  TempDir dir("wal-claims");
  {
    detail::WalWriter w(*default_file_system(), dir.path(), 3, 0);
    w.append(payload_for(4));  // sequence 5, nothing synced yet
    w.sync();
    w.append(payload_for(5));  // says the first record was synced
    w.close();
  }
  const auto r = replay(dir.path(), 3);
  REQUIRE(r.result.records == 2);
  CHECK(r.result.first_seq == 5);
  CHECK(r.result.durable_claim == detail::kWalHeaderBytes + payload_for(4).size());
  CHECK(r.result.sealed());
}
