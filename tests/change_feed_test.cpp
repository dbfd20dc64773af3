// change_feed_test.cpp: Collection::changes_since (Engine::changes_since)
// and the released WAL kept for it (Options::change_feed_bytes).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <stowage/stowage.hpp>

#include "migration_util.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::error_of;
using stowage_test::TempDir;

namespace {

using Store = Storage<std::uint64_t, std::string>;
using C = Change<std::uint64_t, std::string>;

Options small(std::uint64_t feed_bytes) {
  Options o{.cache_bytes = 256 << 10, .chunk_bytes = 8 << 10, .block_bytes = 512, .write_buffer_bytes = 16 << 10};
  o.change_feed_bytes = feed_bytes;
  return o;
}

std::vector<C> changes(const Store& db, std::uint64_t since, std::uint64_t* end = nullptr) {
  std::vector<C> out;
  const std::uint64_t e = db.changes_since(since, [&](const C& c) { out.push_back(c); });
  if (end) *end = e;
  return out;
}

std::size_t feed_files(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().rfind("feed-", 0) == 0) ++n;
  return n;
}

}  // namespace

TEST_CASE("changes_since hands over puts and erases in commit order", "[feed]") {
  TempDir tmp("feed");
  Store db(tmp / "s", small(0));
  db.put(1, "a");
  db.put(2, "b");
  db.erase(1);
  db.put_batch(std::vector<std::pair<std::uint64_t, std::string>>{{3, "c"}, {4, "d"}});
  db.batch().put(5, "e").erase(9).commit();  // an erase of a key that was never there

  std::uint64_t end = 0;
  auto all = changes(db, 0, &end);
  CHECK(end == 7);
  REQUIRE(all.size() == 7);
  const std::vector<std::uint64_t> keys{1, 2, 1, 3, 4, 5, 9};
  for (std::size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].sequence == i + 1);
    CHECK(all[i].key == keys[i]);
  }
  CHECK(all[2].erased);
  CHECK_FALSE(all[2].value);
  CHECK(all[6].erased);
  CHECK(all[0].value == std::optional<std::string>("a"));
  CHECK(all[5].value == std::optional<std::string>("e"));

  // From the returned sequence: only what came after.
  CHECK(changes(db, end).empty());
  db.put(6, "f");
  auto more = changes(db, end, &end);
  REQUIRE(more.size() == 1);
  CHECK(more[0].key == 6);
  CHECK(end == 8);
  auto tail = changes(db, 5);
  REQUIRE(tail.size() == 3);
  CHECK(tail[0].sequence == 6);

  CHECK_THAT(error_of([&] { changes(db, 9); }), Catch::Contains("the last commit") && Catch::Contains("is 8"));
}

TEST_CASE("without change_feed_bytes the feed reaches back to the last flush, and says so", "[feed]") {
  TempDir tmp("feed");
  Store db(tmp / "s", small(0));
  for (std::uint64_t i = 0; i < 2000; ++i) db.put(i % 50, std::to_string(i));
  db.checkpoint();
  const std::uint64_t flushed = db.stats().last_sequence;
  CHECK(flushed == 2000);
  db.put(1, "x");
  CHECK(changes(db, flushed).size() == 1);
  CHECK_THAT(error_of([&] { changes(db, 0); }),
             Catch::Contains("no longer kept") && Catch::Contains("change_feed_bytes"));
  CHECK(feed_files(tmp / "s") == 0);
  CHECK(db.stats().change_feed_bytes == 0);
}

TEST_CASE("change_feed_bytes keeps released WAL up to its size, across restarts", "[feed]") {
  TempDir tmp("feed");
  const auto dir = tmp / "s";
  {
    Store db(dir, small(std::uint64_t{1} << 20));  // room for every segment below
    for (std::uint64_t i = 0; i < 5000; ++i) db.put(i % 300, std::string(20, static_cast<char>('a' + i % 26)));
    CHECK(db.stats().flushes > 3);
    CHECK(feed_files(dir) > 0);
    auto all = changes(db, 0);
    REQUIRE(all.size() == 5000);
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i].sequence == i + 1);
  }
  {
    Store db(dir, small(std::uint64_t{1} << 20));  // reopened: the same history, also what the close flushed
    auto all = changes(db, 0);
    CHECK(all.size() == 5000);
    CHECK(db.stats().change_feed_bytes > 0);
  }
  {
    // A small bound: the oldest feed files go; what is left starts later.
    Store db(dir, small(40 << 10));
    CHECK(db.stats().change_feed_bytes <= 40 << 10);
    for (std::uint64_t i = 0; i < 3000; ++i) db.put(i % 300, "y");
    // Until the flushes the puts started are done (with the releases and
    // prunes of the feed that follow them), the oldest kept sequence may
    // still move between the two reads below: checkpoint() waits for them.
    db.checkpoint();
    CHECK(db.stats().change_feed_bytes <= 40 << 10);
    const std::string e = error_of([&] { changes(db, 0); });
    CHECK_THAT(e, Catch::Contains("the oldest kept is"));
    // From the oldest kept sequence on, every change is there.
    const auto at = e.find("the oldest kept is ") + 19;
    const std::uint64_t oldest = std::stoull(e.substr(at));
    CHECK(oldest > 1);
    auto rest = changes(db, oldest - 1);
    REQUIRE_FALSE(rest.empty());
    CHECK(rest.front().sequence == oldest);
    CHECK(rest.back().sequence == 8000);
    CHECK(rest.size() == 8000 - oldest + 1);
  }
  {
    Store db(dir, small(0));  // the feed turned off: its files are deleted
    CHECK(feed_files(dir) == 0);
    CHECK(db.stats().change_feed_bytes == 0);
  }
}

TEST_CASE("a collection's feed holds its own records only, not other collections' or index entries", "[feed]") {
  TempDir tmp("feed");
  Database db(tmp / "db", small(std::uint64_t{1} << 20));
  auto users = db.collection<std::uint64_t, std::string>("users");
  auto by_name = users.index("by_name", [](const std::string& s) { return s; });
  auto other = db.collection<std::string, std::uint64_t>("other");
  users.put(1, "ann");
  other.put("x", 1);
  db.batch().put(users, 2, "bob").put(other, "y", 2).erase(users, 1).commit();
  std::vector<Change<std::uint64_t, std::string>> got;
  const auto end = users.changes_since(0, [&](const auto& c) { got.push_back(c); });
  REQUIRE(got.size() == 3);
  CHECK(got[0].key == 1);
  CHECK(got[1].key == 2);
  CHECK(got[2].erased);
  CHECK(got[1].sequence > got[0].sequence);
  CHECK(end == db.stats().last_sequence);
  std::vector<Change<std::string, std::uint64_t>> others;
  other.changes_since(0, [&](const auto& c) { others.push_back(c); });
  REQUIRE(others.size() == 2);
  CHECK(others[1].key == "y");
  CHECK(others[1].value == std::optional<std::uint64_t>(2));
  (void)by_name;
}

TEST_CASE("a follower tailing the feed while a writer runs ends with the writer's records", "[feed]") {
  TempDir tmp("feed");
  Store db(tmp / "s", small(std::uint64_t{4} << 20));
  constexpr std::uint64_t kOps = 10000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::uint64_t i = 0; i < kOps; ++i) {
      if (i % 7 == 6)
        db.erase(i % 400);
      else
        db.put(i % 400, std::to_string(i));
    }
    done = true;
  });
  std::map<std::uint64_t, std::string> replica;
  std::uint64_t at = 0, calls = 0;
  auto follow = [&] {
    at = db.changes_since(at, [&](const C& c) {
      if (c.erased)
        replica.erase(c.key);
      else
        replica[c.key] = *c.value;
    });
    ++calls;
  };
  while (!done.load()) follow();
  writer.join();
  follow();
  CHECK(at == kOps);
  CHECK(calls > 1);
  std::map<std::uint64_t, std::string> want;
  for (const auto& [k, v] : db.scan()) want[k] = v;
  CHECK(replica == want);
  CHECK(db.stats().flushes > 3);
}

TEST_CASE("a read_only open reads the feed", "[feed]") {
  TempDir tmp("feed");
  const auto dir = tmp / "s";
  Options o = small(std::uint64_t{1} << 20);
  o.checkpoint_on_close = false;
  {
    Store db(dir, o);
    for (std::uint64_t i = 0; i < 3000; ++i) db.put(i % 100, "v");
  }
  Options ro = o;
  ro.read_only = true;
  Store db(dir, ro);
  CHECK(changes(db, 0).size() == 3000);
}

TEST_CASE("a migration that rewrites the records ends the feed", "[feed]") {
  TempDir tmp("feed");
  const auto dir = tmp / "s";
  Options o = small(std::uint64_t{1} << 20);
  stowage_test::make_v1_store(dir, o);
  CHECK(feed_files(dir) > 0);
  Storage<int, stowage_test::MigV2> db(dir, o, stowage_test::mig_steps(tmp.path()));
  REQUIRE(db.last_migration());
  CHECK(feed_files(dir) == 0);
  const std::uint64_t last = db.stats().last_sequence;
  CHECK_THAT(error_of([&] { db.changes_since(0, [](const auto&) {}); }), Catch::Contains("no longer kept"));
  db.put(7, {"seven", 5});
  std::vector<Change<int, stowage_test::MigV2>> got;
  db.changes_since(last, [&](const auto& c) { got.push_back(c); });
  REQUIRE(got.size() == 1);
  CHECK(got[0].value->text == "seven");
}

// ---- a follower in another process (ChangeReader) ------------------------

namespace {

using Leader = Storage<std::uint64_t, std::uint64_t>;

Options leader_options() {
  Options o{.cache_bytes = 256 << 10, .chunk_bytes = 8 << 10, .block_bytes = 512, .write_buffer_bytes = 16 << 10};
  o.change_feed_bytes = std::uint64_t{64} << 20;  // every released segment stays
  return o;
}

// Op k of the leader: one commit each (sequence k + 1 in a fresh store).
void leader_op(Leader& db, std::uint64_t k) {
  if (k % 6 == 5)
    db.erase((k * 31) % 700);
  else
    db.put((k * 31) % 700, k);
}

// Applies the feed of the leader at dir to the replica Database at replica
// until stop() says so (after its last read): records and the sequence
// applied go in one batch, so a kill leaves them agreeing. Returns the
// sequence applied.
std::uint64_t follow(const std::filesystem::path& dir, const std::filesystem::path& replica,
                     const std::function<bool(std::uint64_t)>& stop, int progress_fd = -1) {
  Database db(replica);
  auto records = db.collection<std::uint64_t, std::uint64_t>("records");
  auto meta = db.collection<std::string, std::uint64_t>("meta");
  ChangeReader<std::uint64_t, std::uint64_t> reader(dir);
  std::uint64_t at = meta.get("applied").value_or(0);
  for (;;) {
    auto batch = db.batch();
    const std::uint64_t next = reader.changes_since(at, [&](const Change<std::uint64_t, std::uint64_t>& c) {
      if (c.erased)
        batch.erase(records, c.key);
      else
        batch.put(records, c.key, *c.value);
    });
    if (next != at) {
      batch.put(meta, "applied", next);
      batch.commit();
      at = next;
      if (progress_fd >= 0) {
        const char c = 1;
        if (::write(progress_fd, &c, 1) != 1) ::_exit(4);
      }
    }
    if (stop(at)) return at;
    std::this_thread::yield();
  }
}

[[noreturn]] void leader_child(const std::filesystem::path& dir, int fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  try {
    Leader db(dir, leader_options());
    for (std::uint64_t k = db.stats().last_sequence;; ++k) {
      leader_op(db, k);
      if (k % 500 == 0) {
        const char c = 1;
        if (::write(fd, &c, 1) != 1) ::_exit(4);
      }
    }
  } catch (...) {
    ::_exit(2);
  }
}

[[noreturn]] void follower_child(const std::filesystem::path& dir, const std::filesystem::path& replica, int fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  try {
    follow(dir, replica, [](std::uint64_t) { return false; }, fd);
  } catch (const ValidationError&) {
    ::_exit(5);  // the leader's store not made yet: the parent starts it again
  } catch (...) {
    ::_exit(2);
  }
  ::_exit(0);
}

pid_t spawn(const std::function<void(int)>& body, int& read_fd) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    body(fds[1]);
    ::_exit(0);
  }
  ::close(fds[1]);
  read_fd = fds[0];
  return pid;
}

void wait_bytes(int fd, int n) {
  char c;
  for (int i = 0; i < n && ::read(fd, &c, 1) == 1; ++i) {
  }
}

void kill_and_reap(pid_t pid, int fd) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fd);
}

}  // namespace

TEST_CASE("a follower process keeps a replica that converges, with both killed at random points",
          "[feed][crash]") {
  TempDir tmp("feed-replica");
  const auto dir = tmp / "leader";
  const auto replica = tmp / "replica";
  std::mt19937 rng(5);
  { Leader db(dir, leader_options()); }  // the store exists before the first follower reads it
  for (int round = 0; round < 6; ++round) {
    int lfd = -1, ffd = -1;
    const pid_t leader = spawn([&](int fd) { leader_child(dir, fd); }, lfd);
    wait_bytes(lfd, 1 + static_cast<int>(rng() % 3));
    const pid_t follower = spawn([&](int fd) { follower_child(dir, replica, fd); }, ffd);
    // Both run; then each is killed after a few more steps of its own.
    if (rng() % 2 == 0) {
      wait_bytes(ffd, 1 + static_cast<int>(rng() % 4));
      kill_and_reap(follower, ffd);
      wait_bytes(lfd, 1 + static_cast<int>(rng() % 3));
      kill_and_reap(leader, lfd);
    } else {
      wait_bytes(lfd, 1 + static_cast<int>(rng() % 3));
      kill_and_reap(leader, lfd);
      wait_bytes(ffd, 1 + static_cast<int>(rng() % 2));
      kill_and_reap(follower, ffd);
    }
  }
  // The leader reopened (its recovery runs), then the follower catches up.
  std::map<std::uint64_t, std::uint64_t> want;
  std::uint64_t last = 0;
  {
    Leader db(dir, leader_options());
    last = db.stats().last_sequence;
    for (const auto& [k, v] : db.scan()) want[k] = v;
  }
  REQUIRE(last > 3000);
  const std::uint64_t applied = follow(dir, replica, [&](std::uint64_t at) { return at >= last; });
  CHECK(applied == last);
  Database db(replica);
  std::map<std::uint64_t, std::uint64_t> got;
  for (const auto& [k, v] : db.collection<std::uint64_t, std::uint64_t>("records").scan()) got[k] = v;
  CHECK(got == want);
  // The leader's records follow from the ops (one sequence per op).
  std::map<std::uint64_t, std::uint64_t> model;
  for (std::uint64_t k = 0; k < last; ++k) {
    if (k % 6 == 5)
      model.erase((k * 31) % 700);
    else
      model[(k * 31) % 700] = k;
  }
  CHECK(want == model);
}

TEST_CASE("ChangeReader checks the collection and says when the feed is released", "[feed]") {
  TempDir tmp("feed");
  {
    Database db(tmp / "db", leader_options());
    db.collection<std::uint64_t, std::uint64_t>("a").put(1, 2);
  }
  ChangeReader<std::uint64_t, std::uint64_t> a(tmp / "db", "a");
  std::vector<Change<std::uint64_t, std::uint64_t>> got;
  CHECK(a.changes_since(0, [&](const auto& c) { got.push_back(c); }) == 1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].value == std::optional<std::uint64_t>(2));
  CHECK_THROWS_AS((ChangeReader<std::uint64_t, std::uint64_t>(tmp / "db", "nope").changes_since(0, [](const auto&) {})),
                  ValidationError);
  CHECK_THROWS_AS((ChangeReader<std::string, std::uint64_t>(tmp / "db", "a").changes_since(0, [](const auto&) {})),
                  MigrationError);
  CHECK_THROWS_AS((ChangeReader<std::uint64_t, std::uint64_t>(tmp / "none").changes_since(0, [](const auto&) {})),
                  ValidationError);
  {
    Store db(tmp / "s", small(0));
    for (std::uint64_t i = 0; i < 100; ++i) db.put(i, "x");
    db.checkpoint();
  }
  ChangeReader<std::uint64_t, std::string> s(tmp / "s");
  CHECK_THAT(error_of([&] { s.changes_since(0, [](const auto&) {}); }), Catch::Contains("no longer kept"));
  CHECK(s.changes_since(100, [](const auto&) {}) == 100);
  // A sequence after the store's last commit was read from commits it lost
  // (a power cut before they were synced: follower_power_test makes them).
  CHECK_THAT(error_of([&] { s.changes_since(101, [](const auto&) {}); }),
             Catch::Contains("the last commit of the store") && Catch::Contains("is 100") &&
                 Catch::Contains("lost commits"));
  CHECK_THROWS_AS(a.changes_since(2, [](const auto&) {}), ValidationError);  // from the WAL: its last is 1
  CHECK(a.changes_since(1, [](const auto&) {}) == 1);
}
