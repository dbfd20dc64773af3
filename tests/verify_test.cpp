// Tests of stowage::verify and stowage::inspect: a sound store, damaged chunk
// and WAL files (each problem named with its file and offset, checking going
// on past it), a missing chunk, and a store another thread and another
// process write to meanwhile; the store is never changed and its LOCK never
// released.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <stowage/stowage.hpp>

#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;

namespace {

using Db = Storage<std::uint64_t, std::string>;
const Options kSmall{.chunk_bytes = 16 << 10, .block_bytes = 1024};

// A store of n checkpointed records (several chunks) and `tail` more in the WAL.
void fill(const std::filesystem::path& dir, std::uint64_t n, std::uint64_t tail) {
  Options o = kSmall;
  o.checkpoint_on_close = false;
  Db db(dir, o);
  for (std::uint64_t i = 0; i < n; ++i) db.put(i, "value " + std::to_string(i * 7919 % 1000));
  db.checkpoint();
  for (std::uint64_t i = 0; i < tail; ++i) db.put(n + i, "wal " + std::to_string(i));
  db.flush();
}

// Every file's bytes, to show nothing changed.
std::map<std::string, std::string> snapshot(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  for (auto& e : std::filesystem::directory_iterator(dir))
    files[e.path().filename().string()] = stowage_test::read_all(e.path());
  return files;
}

}  // namespace

TEST_CASE("inspect reports what the MANIFEST says without opening the store") {
  TempDir dir("verify");
  fill(dir.path(), 2000, 10);
  const auto before = snapshot(dir.path());
  const StoreInfo info = inspect(dir.path());
  CHECK(info.format_major == 2);
  CHECK(info.serializer == "binary-1");
  CHECK(info.compression == "lz4");
  CHECK(info.last_seq == 2000);
  REQUIRE(info.keyspaces.size() == 1);
  const auto& ks = info.keyspaces[0];
  CHECK(ks.name == "default");
  CHECK(ks.key_order == "u64");
  CHECK(ks.value_type == "str");
  CHECK(ks.records == 2000);
  CHECK(ks.chunks.size() > 2);
  for (const auto& c : ks.chunks) CHECK(c.present);
  CHECK(info.records == 2000);
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

TEST_CASE("verify: a torn tail of the last WAL segment is a note, damage in an earlier one a problem") {
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

  // A later segment: the same damage is now inside a segment others follow.
  {
    std::string seg = stowage_test::read_all(wal[0].file);
    seg.resize(records_end);
    stowage_test::write_all(wal[0].file, seg);
    detail::WalWriter w(*default_file_system(), dir.path(), wal[0].number + 1000, 0);
    detail::WalBatch b(121);
    std::string v;
    BinarySerializer::serialize(std::string("late"), v);
    b.put(encode_key<std::uint64_t>(500), v);
    w.append(b.finish());
    w.sync();
    w.close();
  }
  rep = verify(dir.path());
  REQUIRE(rep.problems.size() == 2);
  CHECK(rep.problems[0].file == wal[0].file);
  CHECK(rep.problems[0].offset < records_end);
  CHECK_THAT(rep.problems[0].what, Catch::Contains("later segments follow"));
  // ... and the record it lost (sequence 120) shows as a gap in the next one.
  CHECK(rep.problems[1].file == dir.path() / detail::wal_file_name(wal[0].number + 1000));
  CHECK_THAT(rep.problems[1].what, Catch::Contains("sequence 121 where 120"));
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
      Db other(dir.path());
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
