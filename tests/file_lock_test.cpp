// Tests of the store's LOCK: one process at a time, ThreadLock fails at once,
// ProcessLock waits up to lock_timeout, and both succeed after a release.
#include <catch2/catch.hpp>

#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <stowage/stowage.hpp>

#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;

namespace {

// A child process that opens the store, says so on `ready`, waits for a byte
// on `release`, closes the store and exits.
pid_t hold_in_child(const std::filesystem::path& dir, int ready_fd, int release_fd) {
  pid_t pid = fork();
  if (pid == 0) {
    int rc = 0;
    try {
      Storage<int, int> db(dir);
      char c = 'r';
      if (write(ready_fd, &c, 1) != 1) rc = 3;
      if (read(release_fd, &c, 1) != 1) rc = 4;
    } catch (...) {
      rc = 2;
    }
    _exit(rc);
  }
  return pid;
}

struct Pipe {
  int fd[2];
  Pipe() { REQUIRE(pipe(fd) == 0); }
  ~Pipe() {
    close(fd[0]);
    close(fd[1]);
  }
};

}  // namespace

TEST_CASE("a store held by another process: LockError at once, ProcessLock waits, then both succeed") {
  TempDir dir("lock");
  { Storage<int, int> init(dir.path()); init.put(1, 1); }
  Pipe ready, release;
  pid_t child = hold_in_child(dir.path(), ready.fd[1], release.fd[0]);
  char c;
  REQUIRE(read(ready.fd[0], &c, 1) == 1);

  CHECK_THROWS_WITH((Storage<int, int>(dir.path())), Catch::Contains((dir / "LOCK").string()) && Catch::Contains("another process"));
  using WaitingStore = Storage<int, int, BinarySerializer, Lz4Compression, LruEviction, ProcessLock>;
  CHECK_THROWS_WITH((WaitingStore(dir.path(), Options{.lock_timeout = std::chrono::milliseconds(200)})),
                    Catch::Contains("waited 200 ms"));

  // Release while (or before) a ProcessLock open waits: it succeeds.
  ssize_t sent = 0;
  std::thread releaser([&] { sent = write(release.fd[1], "x", 1); });
  {
    WaitingStore db(dir.path(), Options{.lock_timeout = std::chrono::milliseconds(30000)});
    CHECK(db.get(1) == 1);
  }
  releaser.join();
  CHECK(sent == 1);
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  Storage<int, int> db(dir.path());
  CHECK(db.get(1) == 1);
}

TEST_CASE("within one process a second Storage on the same directory is refused, even through another path") {
  TempDir dir("lock");
  Storage<int, int> db(dir.path());
  CHECK_THROWS_AS((Storage<int, int>(dir.path() / "." / "")), LockError);
  db.close();
  Storage<int, int> again(dir.path());  // released by close()
  again.put(2, 2);
}

TEST_CASE("ProcessLock waits for another Storage of this process to close") {
  TempDir dir("lock");
  using WaitingStore = Storage<int, int, BinarySerializer, Lz4Compression, LruEviction, ProcessLock>;
  auto first = std::make_unique<WaitingStore>(dir.path());
  first->put(7, 7);
  std::thread closer([&] { first.reset(); });
  WaitingStore second(dir.path(), Options{.lock_timeout = std::chrono::milliseconds(30000)});
  closer.join();
  CHECK(second.get(7) == 7);
}

TEST_CASE("the LOCK file survives and is reused; no other file is needed to lock") {
  TempDir dir("lock");
  { Storage<int, int> db(dir.path()); }
  CHECK(std::filesystem::exists(dir / "LOCK"));
  { Storage<int, int> db(dir.path()); }
}
