// Tests of stowage::verify and stowage::inspect: a sound store, a store of
// several levels with tombstones (levels reported, the live count checked by
// merging the runs), damaged chunk and WAL files (each problem named with its
// file and offset, checking going on past it), a damaged level-0 file, a
// missing chunk, a MANIFEST whose live count is wrong, and a store another
// thread and another process write to meanwhile; the store is never changed
// and its LOCK never released.
#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <stowage/stowage.hpp>

#include "level_util.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;

namespace {

using Db = Storage<std::uint64_t, std::string>;
const Options kSmall{.chunk_bytes = 16 << 10, .block_bytes = 1024};

// A store of n records compacted into the last level (several chunks) and
// `tail` more in the WAL.
void fill(const std::filesystem::path& dir, std::uint64_t n, std::uint64_t tail) {
  Options o = kSmall;
  o.checkpoint_on_close = false;
  Db db(dir, o);
  for (std::uint64_t i = 0; i < n; ++i) db.put(i, "value " + std::to_string(i * 7919 % 1000));
  db.compact();
  for (std::uint64_t i = 0; i < tail; ++i) db.put(n + i, "wal " + std::to_string(i));
  db.flush();
}

using stowage_test::kLevels;
using stowage_test::split_last_level;

// A store of three levels holding tombstones: puts, overwrites and erases
// with background compaction, then a last session without compaction whose
// erases and overwrites stay in level 0 above the older levels, and half the
// last level moved to level 5. Returns the live records.
std::map<std::uint64_t, std::string> fill_levels(const std::filesystem::path& dir) {
  std::map<std::uint64_t, std::string> model;
  {
    Db db(dir, kLevels);
    for (std::uint64_t i = 0; i < 4000; ++i) {
      const std::uint64_t k = i * 7 % 2500;
      std::string v = std::to_string(i);  // (appended: g++ 12 -O2 warns falsely on operator+ here)
      v.append(20 + i % 30, 'x');
      db.put(k, v);
      model[k] = v;
      if (i % 5 == 0) {
        const std::uint64_t gone = i * 13 % 2500;
        db.erase(gone);
        model.erase(gone);
      }
      if (i % 900 == 0) db.checkpoint();
    }
  }
  {
    Options o = kLevels;
    o.auto_compaction = false;
    Db db(dir, o);
    for (std::uint64_t k = 0; k < 2500; k += 9) {
      if (k % 2 == 0) {
        db.erase(k);
        model.erase(k);
      } else {
        std::string v = std::to_string(k);
        v.append(" late");
        db.put(k, v);
        model[k] = v;
      }
    }
    db.checkpoint();
    REQUIRE(db.size() == model.size());
  }
  split_last_level(dir);
  return model;
}

// Every file's bytes, to show nothing changed.
std::map<std::string, std::string> snapshot(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  for (auto& e : std::filesystem::directory_iterator(dir))
    files[e.path().filename().string()] = stowage_test::read_all(e.path());
  return files;
}

// The POSIX file system, calling a hook after an open_read (with the path
// and how many times that path was opened for reading, this one included).
class OpenHookFs final : public FileSystem {
 public:
  std::function<void(const std::filesystem::path&, int)> hook;

  std::unique_ptr<WritableFile> create(const std::filesystem::path& p) override { return fs_->create(p); }
  std::unique_ptr<WritableFile> open_append(const std::filesystem::path& p) override { return fs_->open_append(p); }
  std::unique_ptr<RandomAccessFile> open_read(const std::filesystem::path& p) override {
    auto f = fs_->open_read(p);
    if (hook) hook(p, ++opened_[p.filename().string()]);
    return f;
  }
  void rename(const std::filesystem::path& from, const std::filesystem::path& to) override { fs_->rename(from, to); }
  void remove(const std::filesystem::path& p) override { fs_->remove(p); }
  void truncate(const std::filesystem::path& p, std::uint64_t size) override { fs_->truncate(p, size); }
  void sync_dir(const std::filesystem::path& dir) override { fs_->sync_dir(dir); }
  void create_dirs(const std::filesystem::path& dir) override { fs_->create_dirs(dir); }
  std::vector<std::string> list(const std::filesystem::path& dir) override { return fs_->list(dir); }
  bool exists(const std::filesystem::path& p) override { return fs_->exists(p); }
  bool is_directory(const std::filesystem::path& p) override { return fs_->is_directory(p); }

 private:
  std::shared_ptr<FileSystem> fs_ = default_file_system();
  std::map<std::string, int> opened_;
};

// Verifies the store at dir while this process has it open, compacting it
// once, right after the first open_read for which `when(path, nth open of
// that path)` holds.
VerifyReport verify_compacting_at(const std::filesystem::path& dir,
                                  const std::function<bool(const std::filesystem::path&, int)>& when) {
  Options o = kLevels;
  o.auto_compaction = false;
  Db db(dir, o);
  const auto fs = std::make_shared<OpenHookFs>();
  bool compacted = false;
  fs->hook = [&](const std::filesystem::path& p, int n) {
    if (!compacted && when(p, n)) {
      compacted = true;
      db.compact();
    }
  };
  VerifyOptions vo;
  vo.file_system = fs;
  VerifyReport rep = verify(dir, vo);
  REQUIRE(compacted);
  return rep;
}

}  // namespace

TEST_CASE("inspect reports what the MANIFEST says without opening the store") {
  TempDir dir("verify");
  fill(dir.path(), 2000, 10);
  const auto before = snapshot(dir.path());
  const StoreInfo info = inspect(dir.path());
  CHECK(info.format_major == detail::kFormatMajor);
  CHECK(info.serializer == "binary-1");
  CHECK(info.compression == "lz4");
  CHECK(info.last_seq == 2000);
  REQUIRE(info.keyspaces.size() == 1);
  const auto& ks = info.keyspaces[0];
  CHECK(ks.name == "default");
  CHECK(ks.key_order == "u64");
  CHECK(ks.value_type == "str");
  CHECK(ks.records == 2000);
  CHECK(ks.live == 2000);
  CHECK(ks.chunks.size() > 2);
  for (const auto& c : ks.chunks) {
    CHECK(c.present);
    CHECK(c.level == detail::kLastLevel);
  }
  // compact() leaves one level: the last.
  REQUIRE(ks.levels.size() == detail::kLevels);
  CHECK(ks.level_count() == 1);
  CHECK(ks.levels[detail::kLastLevel].files == ks.chunks.size());
  CHECK(ks.levels[detail::kLastLevel].runs == 1);
  CHECK(ks.levels[detail::kLastLevel].bytes == ks.bytes);
  CHECK(info.records == 2000);
  CHECK(info.live == 2000);
  REQUIRE(!info.wal.empty());
  CHECK(info.wal.back().live);
  CHECK(info.wal_bytes > 0);
  CHECK(info.disk_bytes == info.manifest_bytes + info.chunk_bytes + info.wal_bytes);
  CHECK(snapshot(dir.path()) == before);
  CHECK_THROWS_AS(inspect(dir / "nothing-here"), ValidationError);
}

TEST_CASE("verify reads every chunk block and WAL record of a sound store and changes nothing") {
  TempDir dir("verify");
  fill(dir.path(), 3000, 25);
  const auto before = snapshot(dir.path());
  std::uint64_t last_done = 0, calls = 0, total = 0;
  VerifyOptions opt;
  opt.progress = [&](std::uint64_t done, std::uint64_t all) {
    CHECK(done >= last_done);
    last_done = done;
    total = all;
    ++calls;
  };
  const VerifyReport rep = verify(dir.path(), opt);
  INFO((rep.problems.empty() ? std::string() : rep.problems[0].what));
  CHECK(rep.ok());
  CHECK(rep.chunk_records == 3000);
  CHECK(rep.chunk_tombstones == 0);
  CHECK(rep.live_checked);
  CHECK(rep.live_records == 3000);
  CHECK(rep.wal_operations == 25);
  CHECK(rep.passes == 1);
  CHECK(rep.files.front().kind == "manifest");
  std::size_t chunks = 0;
  for (const auto& f : rep.files) {
    CHECK(f.ok);
    if (f.kind == "chunk") {
      ++chunks;
      CHECK(f.blocks > 0);
    }
  }
  CHECK(chunks == rep.info.keyspaces[0].chunks.size());
  CHECK(calls > 0);
  CHECK(last_done == total);
  CHECK(snapshot(dir.path()) == before);
}

TEST_CASE("verify names a flipped byte in a data block and goes on with the rest") {
  TempDir dir("verify");
  fill(dir.path(), 3000, 5);
  const auto info = inspect(dir.path());
  const auto& chunks = info.keyspaces[0].chunks;
  REQUIRE(chunks.size() >= 3);
  const auto victim = chunks[1].file;
  // A byte inside the second data block's stored bytes (blocks start at 16).
  const auto table = detail::ChunkTable<Lz4Compression>::open(*default_file_system(), victim);
  REQUIRE(table->block_count() >= 2);
  const std::size_t at = 16 + 1200;
  stowage_test::flip_byte(victim, at);
  const VerifyReport rep = verify(dir.path());
  CHECK(!rep.ok());
  REQUIRE(rep.problems.size() == 1);
  CHECK(rep.problems[0].file == victim);
  CHECK(rep.problems[0].offset <= at);
  CHECK(rep.problems[0].offset + 4200 > at);  // the damaged block's frame
  CHECK_THAT(rep.problems[0].what, Catch::Contains("checksum"));
  // Every other block of that chunk and every other chunk were still read.
  std::size_t bad = 0;
  for (const auto& f : rep.files) {
    if (!f.ok) {
      ++bad;
      CHECK(f.file == victim);
      CHECK(f.blocks + 1 == table->block_count());
    }
  }
  CHECK(bad == 1);
  CHECK(!rep.live_checked);  // not every record could be read
  CHECK(rep.chunk_records < 3000);
  CHECK(rep.chunk_records > 3000 - 200);
  CHECK(rep.wal_operations == 5);
}

TEST_CASE("verify reports a missing chunk, a damaged chunk footer and a damaged MANIFEST") {
  TempDir dir("verify");
  fill(dir.path(), 3000, 0);
  const auto chunks = inspect(dir.path()).keyspaces[0].chunks;
  REQUIRE(chunks.size() >= 3);
  std::filesystem::remove(chunks[0].file);
  const auto size = std::filesystem::file_size(chunks[2].file);
  stowage_test::flip_byte(chunks[2].file, size - 20);  // the footer checksum
  VerifyReport rep = verify(dir.path());
  REQUIRE(rep.problems.size() == 2);
  CHECK(rep.problems[0].file == chunks[0].file);
  CHECK_THAT(rep.problems[0].what, Catch::Contains("missing"));
  CHECK(rep.problems[1].file == chunks[2].file);
  CHECK(rep.problems[1].offset == size - 16);
  CHECK(rep.chunk_records == 3000 - chunks[0].records - chunks[2].records);

  stowage_test::flip_byte(dir / "MANIFEST", 30);
  rep = verify(dir.path());
  REQUIRE(rep.problems.size() == 1);
  CHECK(rep.problems[0].file == dir / "MANIFEST");
  CHECK_THAT(rep.problems[0].what, Catch::Contains("checksum"));
  CHECK_THROWS_AS(inspect(dir.path()), CorruptionError);
  CHECK_THROWS_AS(verify(dir / "nothing-here"), ValidationError);
}

TEST_CASE("verify: a torn tail of the last WAL segment is a note, damage in an earlier one a problem once a later one was synced") {
  TempDir dir("verify");
  fill(dir.path(), 100, 20);
  auto wal = inspect(dir.path()).wal;
  REQUIRE(wal.size() == 1);
  // A torn tail: garbage after the last record.
  const std::uint64_t records_end = [&] {
    std::uint64_t end = 0;
    detail::replay_wal(*default_file_system(), wal[0].file, wal[0].number,
                       [&](std::string_view p, std::uint64_t off) { end = off + detail::kWalHeaderBytes + p.size(); });
    return end;
  }();
  stowage_test::flip_byte(wal[0].file, records_end - 3);
  VerifyReport rep = verify(dir.path());
  CHECK(rep.ok());
  CHECK(rep.wal_operations == 19);
  REQUIRE(!rep.notes.empty());
  CHECK_THAT(rep.notes[0], Catch::Contains("torn tail"));

  // A later segment whose records were never synced: the damaged end is
  // where a power cut before the seal ended the log (the next open drops
  // the later segment), a note.
  const auto later = dir.path() / detail::wal_file_name(wal[0].number + 1000);
  auto write_later = [&](bool synced) {
    std::string seg = stowage_test::read_all(wal[0].file);
    seg.resize(records_end);
    stowage_test::write_all(wal[0].file, seg);
    std::filesystem::remove(later);
    detail::WalWriter w(*default_file_system(), dir.path(), wal[0].number + 1000, 0);
    for (std::uint64_t seq = 121; seq < 123; ++seq) {
      detail::WalBatch b(seq);
      std::string v;
      BinarySerializer::serialize(std::string("late"), v);
      b.put(encode_key<std::uint64_t>(500 + seq), v);
      w.append(b.finish());
      if (synced) w.sync();  // the second record says the first was synced
    }
    w.close();
  };
  write_later(false);  // keeps the flipped byte
  rep = verify(dir.path());
  CHECK(rep.ok());
  CHECK(rep.wal_operations == 19);
  REQUIRE(!rep.notes.empty());
  CHECK_THAT(rep.notes[0], Catch::Contains("the WAL ends early"));

  // Synced: the later segment was synced after this one was sealed, so
  // the same damage lies in synced bytes, a problem.
  write_later(true);
  rep = verify(dir.path());
  REQUIRE(rep.problems.size() == 2);
  CHECK(rep.problems[0].file == wal[0].file);
  CHECK(rep.problems[0].offset < records_end);
  CHECK_THAT(rep.problems[0].what, Catch::Contains("a later, synced segment follows"));
  // ... and the record it lost (sequence 120) shows as a gap in the next one.
  CHECK(rep.problems[1].file == later);
  CHECK_THAT(rep.problems[1].what, Catch::Contains("sequence 121 where 120"));
}

TEST_CASE("inspect and verify a store of several levels holding tombstones") {
  TempDir dir("verify");
  const auto model = fill_levels(dir.path());
  const auto before = snapshot(dir.path());
  const StoreInfo info = inspect(dir.path());
  REQUIRE(info.keyspaces.size() == 1);
  const auto& ks = info.keyspaces[0];
  INFO(ks.chunks.size() << " files");
  // The MANIFEST's count, and the uncounted records its chunks hold besides
  // (verify looks them up and checks the sum).
  CHECK(ks.live <= static_cast<std::int64_t>(model.size()) + static_cast<std::int64_t>(ks.uncounted));
  CHECK(info.live == ks.live);
  CHECK(info.uncounted == ks.uncounted);
  CHECK(ks.level_count() == 3);
  CHECK(ks.levels[0].files > 0);  // the last session's flush
  CHECK(ks.levels[detail::kLastLevel - 1].files > 0);
  CHECK(ks.levels[detail::kLastLevel].files > 0);
  CHECK(ks.levels[0].runs >= 1);
  CHECK(static_cast<std::int64_t>(ks.records) > ks.live);  // overwritten records and tombstones
  // The levels add up to the chunk list, which is in MANIFEST order.
  std::uint64_t files = 0, bytes = 0, records = 0;
  for (const auto& l : ks.levels) {
    CHECK(l.level == &l - ks.levels.data());
    if (l.level > 0) CHECK(l.runs == (l.files > 0 ? 1u : 0u));
    files += l.files;
    bytes += l.bytes;
    records += l.records;
  }
  CHECK(files == ks.chunks.size());
  CHECK(bytes == ks.bytes);
  CHECK(records == ks.records);
  for (std::size_t i = 1; i < ks.chunks.size(); ++i) {
    const auto& a = ks.chunks[i - 1];
    const auto& b = ks.chunks[i];
    CHECK(a.level <= b.level);
    if (a.level == b.level && a.run == b.run) CHECK(a.last_key < b.first_key);  // one run: no overlap
    if (a.level == 0 && b.level == 0) CHECK(a.run >= b.run);                    // newest run first
  }

  const VerifyReport rep = verify(dir.path());
  INFO((rep.problems.empty() ? std::string() : rep.problems[0].what));
  CHECK(rep.ok());
  CHECK(rep.live_checked);
  CHECK(rep.live_records == model.size());
  CHECK(rep.chunk_records == ks.records);
  CHECK(rep.chunk_tombstones > 0);
  std::size_t chunk_files = 0;
  for (const auto& f : rep.files) chunk_files += f.kind == "chunk";
  CHECK(chunk_files == ks.chunks.size());
  CHECK(snapshot(dir.path()) == before);
}

TEST_CASE("verify names a damaged level-0 file and leaves the live count unchecked") {
  TempDir dir("verify");
  fill_levels(dir.path());
  const auto info = inspect(dir.path());
  const auto& chunks = info.keyspaces[0].chunks;
  // The level-0 file with the most data blocks.
  auto l0 = chunks.end();
  std::shared_ptr<detail::ChunkTable<Lz4Compression>> table;
  for (auto c = chunks.begin(); c != chunks.end(); ++c) {
    if (c->level != 0) continue;
    auto t = detail::ChunkTable<Lz4Compression>::open(*default_file_system(), c->file);
    if (!table || t->block_count() > table->block_count()) l0 = c, table = t;
  }
  REQUIRE(l0 != chunks.end());
  REQUIRE(table->block_count() >= 2);
  const std::size_t at = 16 + 40;  // inside the first data block's stored bytes
  stowage_test::flip_byte(l0->file, at);
  const VerifyReport rep = verify(dir.path());
  CHECK(!rep.ok());
  REQUIRE(rep.problems.size() == 1);
  CHECK(rep.problems[0].file == l0->file);
  CHECK(rep.problems[0].offset <= at);
  CHECK_THAT(rep.problems[0].what, Catch::Contains("checksum"));
  // Its other blocks and every other file were still read.
  for (const auto& f : rep.files) {
    if (f.file == l0->file) {
      CHECK(!f.ok);
      CHECK(f.blocks + 1 == table->block_count());
    } else {
      CHECK(f.ok);
    }
  }
  CHECK(rep.chunk_records + 600 > info.records);
  CHECK(!rep.live_checked);
  CHECK_THAT(rep.notes.back(), Catch::Contains("live record count") && Catch::Contains("not checked"));
}

TEST_CASE("verify finds a MANIFEST whose live count is wrong") {
  TempDir dir("verify");
  const auto model = fill_levels(dir.path());
  auto fs = default_file_system();
  const auto good = detail::read_manifest(*fs, dir.path());
  SECTION("a live count one too high") {
    auto m = good;
    m.keyspaces[0].live += 1;
    detail::write_manifest(*fs, dir.path(), m);
    const VerifyReport rep = verify(dir.path());
    REQUIRE(rep.problems.size() == 1);
    CHECK(rep.problems[0].file == dir / "MANIFEST");
    CHECK_THAT(rep.problems[0].what, Catch::Contains("counts " + std::to_string(good.keyspaces[0].live + 1) +
                                                     " live records") &&
                                         Catch::Contains("hold " + std::to_string(model.size())));
  }
}

TEST_CASE("verify finds level-0 runs in the wrong order: an older record would hide a newer one") {
  TempDir dir("verify");
  Options o = kSmall;
  o.auto_compaction = false;
  {
    Db db(dir.path(), o);
    for (std::uint64_t k = 0; k < 300; ++k) db.put(k, "old");
    db.checkpoint();
    for (std::uint64_t k = 0; k < 300; k += 2) db.put(k, "new");
    db.checkpoint();
  }
  auto fs = default_file_system();
  auto m = detail::read_manifest(*fs, dir.path());
  auto& chunks = m.keyspaces[0].chunks;
  REQUIRE(chunks.size() == 2);
  REQUIRE(chunks[0].level == 0);
  REQUIRE(chunks[1].level == 0);
  REQUIRE(verify(dir.path()).ok());
  // The older run takes the newer run number, and so is read first.
  std::swap(chunks[0].run, chunks[1].run);
  std::swap(chunks[0], chunks[1]);
  detail::write_manifest(*fs, dir.path(), m);
  const VerifyReport rep = verify(dir.path());
  REQUIRE(rep.problems.size() == 1);
  CHECK(rep.problems[0].file == dir / detail::chunk_file_name(chunks[1].file));
  CHECK_THAT(rep.problems[0].what, Catch::Contains("out of order, so reads return an older value") &&
                                       Catch::Contains("and 149 more keys"));
  CHECK(rep.live_records == 300);
}

TEST_CASE("verify works on a store this process writes to, and leaves its LOCK held") {
  TempDir dir("verify");
  fill(dir.path(), 500, 0);
  Options o = kSmall;
  o.write_buffer_bytes = 32 << 10;  // frequent checkpoints: MANIFEST replaced under verify
  Db db(dir.path(), o);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (std::uint64_t i = 0; !stop; ++i) db.put(1000 + i % 5000, std::string(40, static_cast<char>('a' + i % 26)));
  });
  std::vector<VerifyReport> reports;
  for (int i = 0; i < 8; ++i) reports.push_back(verify(dir.path()));
  stop = true;
  writer.join();
  for (const auto& rep : reports) {
    INFO((rep.problems.empty() ? std::string() : rep.problems[0].what));
    CHECK(rep.ok());
  }
  // The lock is still held: another process cannot open the store.
  pid_t child = fork();
  if (child == 0) {
    int rc = 1;
    try {
      Db other(dir.path(), Options{.lock_timeout = std::chrono::milliseconds(0)});  // fail at once, not in 5 s
    } catch (const LockError&) {
      rc = 0;
    } catch (...) {
      rc = 2;
    }
    _exit(rc);
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  db.put(1, "still writable");
  CHECK(db.get(1) == "still writable");
}

TEST_CASE("verify reads one consistent state when a compaction deletes its files mid-pass") {
  // Every file is opened before any is read: a compaction that replaces and
  // deletes all of them after that (here: as soon as MANIFEST has been read
  // the second time, which confirms the opened files are the current ones)
  // changes nothing in the report.
  TempDir dir("verify");
  const auto model = fill_levels(dir.path());
  const VerifyReport rep = verify_compacting_at(
      dir.path(), [](const std::filesystem::path& p, int n) { return p.filename() == "MANIFEST" && n == 2; });
  INFO((rep.problems.empty() ? std::string() : rep.problems[0].what));
  CHECK(rep.ok());
  CHECK(rep.passes == 1);
  CHECK(rep.live_checked);
  CHECK(rep.live_records == model.size());
  // The files it read are gone now: the compaction did delete them under it.
  std::size_t chunks = 0, gone = 0;
  for (const auto& f : rep.files)
    if (f.kind == "chunk") {
      ++chunks;
      gone += std::filesystem::exists(f.file) ? 0 : 1;
    }
  CHECK(chunks > 3);
  CHECK(gone == chunks);
  CHECK(verify(dir.path()).ok());
}

TEST_CASE("verify opens the new state's files when a compaction deletes them while it opens") {
  // The first chunk file opened triggers a compaction, so the later opens
  // of that state fail; MANIFEST changed, so verify opens the new state's
  // files and reads them, and reports no problem.
  TempDir dir("verify");
  const auto model = fill_levels(dir.path());
  const VerifyReport rep =
      verify_compacting_at(dir.path(), [](const std::filesystem::path& p, int) { return p.extension() == ".chunk"; });
  INFO((rep.problems.empty() ? std::string() : rep.problems[0].what));
  CHECK(rep.ok());
  CHECK(rep.passes == 2);
  CHECK(rep.live_records == model.size());
  for (const auto& f : rep.files) CHECK(std::filesystem::exists(f.file));
}

TEST_CASE("verify of a store with more files than max_open_files opens each when reached") {
  TempDir dir("verify");
  const auto model = fill_levels(dir.path());
  VerifyOptions vo;
  vo.max_open_files = 2;
  const VerifyReport rep = verify(dir.path(), vo);
  INFO((rep.problems.empty() ? std::string() : rep.problems[0].what));
  CHECK(rep.ok());
  CHECK(rep.live_records == model.size());
  CHECK(rep.files.size() > 3);
}

TEST_CASE("verify works on a store another process holds and writes to") {
  TempDir dir("verify");
  fill(dir.path(), 500, 0);
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  pid_t child = fork();
  if (child == 0) {
    close(ready[0]);
    int rc = 0;
    try {
      Options o = kSmall;
      o.write_buffer_bytes = 32 << 10;
      Db db(dir.path(), o);
      char c = 'r';
      if (write(ready[1], &c, 1) != 1) rc = 3;
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
      for (std::uint64_t i = 0; std::chrono::steady_clock::now() < until; ++i)
        db.put(1000 + i % 5000, std::string(40, static_cast<char>('a' + i % 26)));
    } catch (...) {
      rc = 2;
    }
    _exit(rc);
  }
  close(ready[1]);
  char c;
  REQUIRE(read(ready[0], &c, 1) == 1);
  close(ready[0]);
  int runs = 0;
  for (; runs < 6; ++runs) {
    const VerifyReport rep = verify(dir.path());
    INFO((rep.problems.empty() ? std::string() : rep.problems[0].what));
    CHECK(rep.ok());
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const VerifyReport rep = verify(dir.path());
  CHECK(rep.ok());
}
