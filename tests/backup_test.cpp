// backup_test.cpp: online backups (backup_to), their listing and removal
// (backups, remove_backup) and restores (restore_from): backup.hpp and
// Engine::backup_to.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <stowage/stowage.hpp>

#include "fault_fs.hpp"
#include "migration_util.hpp"
#include "op_load.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::error_of;
using stowage_test::apply_op;
using stowage_test::busy_options;
using stowage_test::model_after;
using stowage_test::TempDir;

namespace {

using Store = Storage<std::uint64_t, std::uint64_t>;
using Model = std::map<std::uint64_t, std::uint64_t>;

struct User {
  std::string email;
  std::uint32_t age = 0;
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar & email & age;
  }
};

Model contents(Store& db) {
  Model m;
  for (const auto& [k, v] : db.scan()) m[k] = v;
  return m;
}
Model contents_of(const std::filesystem::path& dir) {
  Store db(dir, Options{.create_if_missing = false});
  return contents(db);
}

std::size_t chunk_files_in(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".chunk") ++n;
  return n;
}

// The POSIX file system, except that a chunk file of `store` cannot be
// linked (as from another file system): it is copied.
class NoLinkFromStore : public stowage_test::ForwardingFileSystem {
 public:
  explicit NoLinkFromStore(std::filesystem::path store) : store_(detail::store_identity(store)) {}
  void link(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (detail::store_identity(from.parent_path()) == store_) {
      ++copies;
      copy_file(*this, from, to);
    } else {
      base_->link(from, to);
    }
  }
  int copies = 0;

 private:
  std::filesystem::path store_;
};

}  // namespace

TEST_CASE("backup_to writes a store that opens on its own", "[backup]") {
  TempDir tmp("backup");
  const auto dir = tmp / "store";
  Options o = busy_options();
  o.checkpoint_on_close = false;
  Store db(dir, o);
  for (std::uint64_t k = 0; k < 4000; ++k) apply_op(db, k);
  db.checkpoint();
  for (std::uint64_t k = 4000; k < 4100; ++k) apply_op(db, k);  // these only in the WAL
  REQUIRE(db.stats().last_sequence == 4100);

  const BackupReport r = db.backup_to(tmp / "b1");
  CHECK(r.path == detail::store_identity(tmp / "b1"));
  CHECK(r.sequence == 4100);
  const std::size_t chunks = chunk_files_in(tmp / "b1");
  CHECK(chunks > 0);
  CHECK(r.files_linked == chunks);  // the chunk files are new names of the store's
  CHECK(r.files > chunks);          // and the WAL and MANIFEST
  CHECK(r.bytes_written < r.bytes);
  CHECK(std::filesystem::exists(tmp / "b1" / "BACKUP"));
  CHECK_FALSE(std::filesystem::exists(tmp / "b1.partial"));

  for (std::uint64_t k = 4100; k < 4300; ++k) apply_op(db, k);  // after the backup: not in it
  const Model want = model_after(4100);
  CHECK(contents(db) == model_after(4300));
  db.close();
  CHECK(contents_of(tmp / "b1") == want);
  CHECK(contents_of(dir) == model_after(4300));
}

TEST_CASE("a read_only store backs up too, WAL included", "[backup]") {
  TempDir tmp("backup");
  Options o = busy_options();
  o.checkpoint_on_close = false;
  {
    Store db(tmp / "store", o);
    for (std::uint64_t k = 0; k < 2000; ++k) apply_op(db, k);
    // Then a few writes the 16 KiB buffer holds: whatever the background
    // flushes did, they are in the WAL at close (checkpoint_on_close off).
    // (A freeze at the last write could leave the WAL empty: CI failed once.)
    db.checkpoint();
    for (std::uint64_t k = 2000; k < 2010; ++k) apply_op(db, k);
  }
  Options ro = o;
  ro.read_only = true;
  Store reader(tmp / "store", ro);
  const BackupReport r = reader.backup_to(tmp / "bk");
  CHECK(r.sequence == 2010);
  bool wal = false;
  for (const auto& e : std::filesystem::directory_iterator(tmp / "bk"))
    wal = wal || e.path().extension() == ".log";
  CHECK(wal);  // the writes since the last flush are in the backup's WAL
  CHECK(contents_of(tmp / "bk") == model_after(2010));
}

TEST_CASE("a backup under load holds every commit up to its sequence and none after", "[backup]") {
  TempDir tmp("backup");
  Store db(tmp / "store", busy_options());
  REQUIRE(db.stats().last_sequence == 0);
  constexpr std::uint64_t kOps = 30000;
  std::atomic<std::uint64_t> done{0};
  std::thread writer([&] {
    for (std::uint64_t k = 0; k < kOps; ++k) {
      apply_op(db, k);
      done.store(k + 1);
    }
  });
  std::vector<BackupReport> taken;
  for (int i = 0; i < 4; ++i) {
    // Each backup starts once the writer is a quarter further on.
    const std::uint64_t from = kOps * static_cast<std::uint64_t>(i) / 5;
    while (done.load() < from) std::this_thread::yield();
    taken.push_back(db.backup_to(tmp / std::string("b").append(std::to_string(i))));
  }
  writer.join();
  CHECK(db.stats().last_sequence == kOps);  // one sequence per op
  const Stats st = db.stats();
  CHECK(st.flushes > 4);  // flushes ran while the backups were taken
  db.close();
  for (const auto& r : taken) {
    INFO("backup " << r.path << " at sequence " << r.sequence);
    CHECK(r.sequence <= kOps);
    CHECK(contents_of(r.path) == model_after(r.sequence));
  }
  CHECK(taken.back().sequence >= kOps * 3 / 5);
}

TEST_CASE("a Database backup keeps its collections and indexes", "[backup]") {
  TempDir tmp("backup");
  BackupReport r;
  {
    Database db(tmp / "db", busy_options());
    auto users = db.collection<std::uint64_t, User>("users");
    users.index("by_email", &User::email, unique);
    auto tags = db.collection<std::string, std::string>("tags");
    for (std::uint64_t i = 0; i < 2000; ++i) users.put(i, User{std::string("u").append(std::to_string(i)), 20});
    tags.put("a", "b");
    r = db.backup_to(tmp / "db.bk");
    users.erase(5);
  }
  CHECK(r.sequence > 2000);
  const auto listed = backups(tmp / "db");
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].kind == "online");
  CHECK(listed[0].sequence == r.sequence);
  Database copy(tmp / "db.bk");
  CHECK(copy.collections() == std::vector<std::string>{"users", "tags"});
  auto users = copy.collection<std::uint64_t, User>("users");
  auto by_email = users.index("by_email", &User::email, unique);
  CHECK(users.size() == 2000);
  auto found = by_email.find(std::string("u5"));
  REQUIRE(found);
  CHECK(found->first == 5);
  CHECK(copy.collection<std::string, std::string>("tags").get("a") == std::optional<std::string>("b"));
}

TEST_CASE("backup_to refuses a target that is not new, or inside the store", "[backup]") {
  TempDir tmp("backup");
  Store db(tmp / "store", busy_options());
  db.put(1, 1);
  std::filesystem::create_directories(tmp / "full");
  stowage_test::write_all(tmp / "full" / "x", "x");
  CHECK_THAT(error_of([&] { db.backup_to(tmp / "full"); }), Catch::Contains("exists and is not an empty directory"));
  CHECK_THAT(error_of([&] { db.backup_to(tmp / "store"); }), Catch::Contains("inside the store"));
  CHECK_THAT(error_of([&] { db.backup_to(tmp / "store" / "b"); }), Catch::Contains("inside the store"));
  CHECK_FALSE(std::filesystem::exists(tmp / "store" / "b"));

  // An empty directory is taken; a partial backup a crash left is replaced.
  std::filesystem::create_directories(tmp / "empty");
  CHECK(db.backup_to(tmp / "empty").sequence == 1);
  std::filesystem::create_directories(tmp / "b.partial");
  stowage_test::write_all(tmp / "b.partial" / "000007.chunk", "half");
  CHECK(db.backup_to(tmp / "b").sequence == 1);
  CHECK_FALSE(std::filesystem::exists(tmp / "b.partial"));
  // ... but not one that holds other files.
  std::filesystem::create_directories(tmp / "c.partial");
  stowage_test::write_all(tmp / "c.partial" / "notes.txt", "mine");
  CHECK_THAT(error_of([&] { db.backup_to(tmp / "c"); }), Catch::Contains("notes.txt"));
  CHECK(std::filesystem::exists(tmp / "c.partial" / "notes.txt"));
}

TEST_CASE("restore_from makes an independent store and refuses a non-empty target", "[backup]") {
  TempDir tmp("backup");
  Options o = busy_options();
  o.checkpoint_on_close = false;
  {
    Store db(tmp / "store", o);
    for (std::uint64_t k = 0; k < 3000; ++k) apply_op(db, k);
    db.backup_to(tmp / "bk");
  }
  const Model want = model_after(3000);
  const BackupReport r = restore_from(tmp / "bk", tmp / "restored");
  CHECK(r.sequence == 3000);
  CHECK(r.files_linked == chunk_files_in(tmp / "bk"));
  CHECK_FALSE(std::filesystem::exists(tmp / "restored" / "BACKUP"));
  CHECK_FALSE(std::filesystem::exists(tmp / "restored.partial"));
  {
    Store db(tmp / "restored", o);
    CHECK(contents(db) == want);
    for (std::uint64_t k = 3000; k < 5000; ++k) apply_op(db, k);  // writes, flushes, compactions
    db.compact();
  }
  CHECK(contents_of(tmp / "restored") == model_after(5000));
  CHECK(contents_of(tmp / "bk") == want);  // the backup did not change

  CHECK_THAT(error_of([&] { restore_from(tmp / "bk", tmp / "restored"); }), Catch::Contains("not an empty directory"));
  CHECK_THAT(error_of([&] { restore_from(tmp / "nothing", tmp / "r2"); }), Catch::Contains("no MANIFEST"));
  // A chunk file the backup's MANIFEST names is gone.
  restore_from(tmp / "bk", tmp / "bk2");
  for (const auto& e : std::filesystem::directory_iterator(tmp / "bk2"))
    if (e.path().extension() == ".chunk") {
      std::filesystem::remove(e.path());
      break;
    }
  CHECK_THROWS_AS(restore_from(tmp / "bk2", tmp / "r3"), CorruptionError);
  CHECK_FALSE(std::filesystem::exists(tmp / "r3"));
  CHECK_FALSE(std::filesystem::exists(tmp / "r3.partial"));
}

TEST_CASE("backups of one store share the chunk files that did not change", "[backup]") {
  TempDir tmp("backup");
  const auto dir = tmp / "store";
  auto fs = std::make_shared<NoLinkFromStore>(dir);
  Options o = busy_options();
  o.file_system = fs;
  o.auto_compaction = false;  // the chunk files of the first backup stay the store's
  Store db(dir, o);
  for (std::uint64_t k = 0; k < 3000; ++k) apply_op(db, k);
  db.checkpoint();
  const BackupReport first = db.backup_to(tmp / "bk" / "1");
  const std::size_t chunks = chunk_files_in(tmp / "bk" / "1");
  CHECK(first.files_linked == 0);  // copies: the store's files cannot be linked here
  CHECK(fs->copies == static_cast<int>(chunks));
  for (std::uint64_t k = 3000; k < 3300; ++k) apply_op(db, k);
  db.checkpoint();
  const BackupReport second = db.backup_to(tmp / "bk" / "2");
  CHECK(second.files_linked == chunks);  // every file of the first, linked from it
  CHECK(chunk_files_in(tmp / "bk" / "2") > chunks);
  std::size_t shared = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp / "bk" / "1"))
    if (e.path().extension() == ".chunk") {
      CHECK(detail::same_file(e.path(), tmp / "bk" / "2" / e.path().filename()));
      ++shared;
    }
  CHECK(shared == chunks);
  CHECK(second.bytes_written < second.bytes - first.bytes / 2);
  db.close();
  CHECK(contents_of(tmp / "bk" / "2") == model_after(3300));
}

TEST_CASE("backups() lists online and migration backups; remove_backup deletes them", "[backup]") {
  TempDir tmp("backup");
  const auto dir = tmp / "store";
  Options o = busy_options();
  stowage_test::make_v1_store(dir, o);
  { Storage<int, stowage_test::MigV2> db(dir, o, stowage_test::mig_steps(tmp.path())); }  // a migration backup
  {
    Storage<int, stowage_test::MigV2> db(dir, o);
    db.backup_to(tmp / "online-1");
    db.put(1, {});
    db.backup_to(tmp / "online-2");
  }
  // Not backups of this store: another store's, a damaged descriptor, a plain directory.
  {
    Store other(tmp / "other", busy_options());
    other.put(1, 1);
    other.backup_to(tmp / "other-bk");
  }
  std::filesystem::create_directories(tmp / "junk");
  stowage_test::write_all(tmp / "junk" / "BACKUP", "stowage-backup 1\nkind sideways\nstore x\n");
  std::filesystem::create_directories(tmp / "plain");

  auto list = backups(dir);
  REQUIRE(list.size() == 3);
  CHECK(list[0].kind == "migration");
  CHECK(list[0].sequence == 0);
  CHECK(list[1].kind == "online");
  CHECK(list[2].kind == "online");
  CHECK(list[2].sequence == list[1].sequence + 1);
  for (const auto& b : list) CHECK(b.bytes > 0);
  CHECK(backups(tmp / "other").size() == 1);

  CHECK_THROWS_AS(remove_backup(tmp / "plain"), ValidationError);
  CHECK_THROWS_AS(remove_backup(tmp / "junk"), CorruptionError);
  CHECK(std::filesystem::exists(tmp / "junk" / "BACKUP"));
  {
    Storage<int, stowage_test::MigV2> open_backup(list[1].path);  // opened as a store: not removed
    CHECK_THROWS_AS(remove_backup(list[1].path), LockError);
  }
  remove_backup(list[0].path);
  remove_backup(list[1].path);
  CHECK_FALSE(std::filesystem::exists(list[0].path));
  CHECK_FALSE(std::filesystem::exists(list[1].path));
  list = backups(dir);
  REQUIRE(list.size() == 1);
  CHECK(list[0].path.filename() == "online-2");
  Storage<int, stowage_test::MigV2> db(dir, o);
  CHECK(db.backups().size() == 1);
}

TEST_CASE("a backup descriptor of hostile bytes is a CorruptionError", "[backup]") {
  const std::filesystem::path p = "BACKUP";
  const std::string good = detail::encode_backup_descriptor({"online", "/x/store", 42, "20261206T173000Z"});
  const auto d = detail::decode_backup_descriptor(good, p);
  CHECK(d.kind == "online");
  CHECK(d.store == "/x/store");
  CHECK(d.sequence == 42);
  CHECK(d.created == "20261206T173000Z");
  CHECK_THROWS_AS(detail::decode_backup_descriptor("", p), CorruptionError);
  CHECK_THROWS_AS(detail::decode_backup_descriptor("stowage-backup 1\nkind online\n", p), CorruptionError);
  CHECK_THROWS_AS(detail::decode_backup_descriptor(good + "sequence 99999999999999999999\n", p), CorruptionError);
  CHECK_THROWS_AS(detail::decode_backup_descriptor(good.substr(0, good.size() - 1), p), CorruptionError);
  std::mt19937_64 rng(7);
  int refused = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[at] = static_cast<char>(rng()); break;
        case 1: s.erase(at, 1 + rng() % 8); break;
        default: s.insert(at, 1, static_cast<char>(rng())); break;
      }
      if (s.empty()) s.push_back('x');
    }
    try {
      detail::decode_backup_descriptor(s, p);
    } catch (const CorruptionError&) {
      ++refused;
    }
  }
  CHECK(refused > 1000);
}

namespace {

// The child of the kill test: a writer thread runs the ops while the main
// thread takes backups bk-0, bk-1, ... and writes one byte to fd after each.
[[noreturn]] void backup_child(const std::filesystem::path& root, int fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  try {
    Store db(root / "store", busy_options());
    std::thread([&db] {
      try {
        for (std::uint64_t k = db.stats().last_sequence;; ++k) apply_op(db, k);
      } catch (...) {
        ::_exit(3);
      }
    }).detach();
    for (int n = 0;; ++n) {
      const auto target = root / std::string("bk-").append(std::to_string(n));
      if (std::filesystem::exists(target)) continue;
      db.backup_to(target);
      const char c = 1;
      if (::write(fd, &c, 1) != 1) ::_exit(4);
    }
  } catch (...) {
    ::_exit(2);
  }
}

}  // namespace

TEST_CASE("kill -9 during backups leaves whole backups or none", "[backup][crash]") {
  TempDir tmp("backup-kill");
  std::mt19937 rng(11);
  for (int round = 0; round < 6; ++round) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      backup_child(tmp.path(), fds[1]);
    }
    ::close(fds[1]);
    // Killed after 1 to 3 backups of this round, wherever the next one is.
    const int wait_for = 1 + static_cast<int>(rng() % 3);
    for (int got = 0; got < wait_for;) {
      char c;
      const auto n = ::read(fds[0], &c, 1);
      if (n != 1) break;
      ++got;
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(fds[0]);
    REQUIRE(WIFSIGNALED(status));
  }
  // Every directory under a backup's name is a whole backup, holding every
  // op up to its sequence; the store opens with all of them.
  const auto list = backups(tmp / "store");
  CHECK(list.size() >= 6);
  std::uint64_t last = 0;
  for (const auto& b : list) {
    INFO("backup " << b.path << " at sequence " << b.sequence);
    CHECK(contents_of(b.path) == model_after(b.sequence));
    last = std::max(last, b.sequence);
  }
  Store db(tmp / "store", busy_options());
  CHECK(db.stats().last_sequence >= last);
  CHECK(contents(db) == model_after(db.stats().last_sequence));
  // A partial backup the kill left is replaced by the next backup under its name.
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
    const auto name = e.path().filename().string();
    if (name.size() > 8 && name.substr(name.size() - 8) == ".partial") {
      const auto target = e.path().parent_path() / name.substr(0, name.size() - 8);
      CHECK(db.backup_to(target).sequence == db.stats().last_sequence);
      CHECK_FALSE(std::filesystem::exists(e.path()));
    }
  }
}
