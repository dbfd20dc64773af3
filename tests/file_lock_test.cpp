// Tests of the store's LOCK: a writable open has the store to itself, while
// read_only opens share it (in several processes, and several in one
// process); every open waits up to lock_timeout whatever the Lock policy, a
// lock_timeout of 0 fails at once, and a lock released within the timeout
// is taken. Second processes come from fork(); pipes order them (no sleeps).
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <stowage/stowage.hpp>

#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;

namespace {

constexpr std::chrono::milliseconds kAtOnce{0};
constexpr std::chrono::milliseconds kLong{30000};

Options writable(std::chrono::milliseconds timeout) { return Options{.lock_timeout = timeout}; }
Options reading(std::chrono::milliseconds timeout) { return Options{.lock_timeout = timeout, .read_only = true}; }

// A second process that opens and closes the store on command. It is forked
// before this process opens the store, so it inherits nothing of its locks.
// Commands (one byte each): 'W' / 'R' open and hold the store writable /
// read_only (lock_timeout 0), 'C' close it, 'w' / 'r' open writable /
// read_only and close again at once, 'q' (or the pipe closing) close and
// exit. Each command but 'q' is answered with one byte: 'o' done, 'L'
// LockError, 'e' another error.
class OtherProcess {
 public:
  explicit OtherProcess(const std::filesystem::path& dir) {
    REQUIRE(pipe(commands_) == 0);
    REQUIRE(pipe(replies_) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      close(commands_[1]);
      close(replies_[0]);
      serve(dir, commands_[0], replies_[1]);
    }
    close(commands_[0]);
    close(replies_[1]);
  }
  ~OtherProcess() {
    if (pid_ > 0) finish();
  }
  OtherProcess(const OtherProcess&) = delete;
  OtherProcess& operator=(const OtherProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Sends a command without waiting for its answer; safe from another
  // thread (it asserts nothing: Catch's assertions are not thread-safe).
  bool send(char command) const { return write(commands_[1], &command, 1) == 1; }
  // The answer to the last command sent.
  char reply() const {
    char c = '?';
    CHECK(read(replies_[0], &c, 1) == 1);
    return c;
  }
  // Sends a command and waits for its answer.
  char ask(char command) const {
    CHECK(send(command));
    return reply();
  }
  // Waits for the process to exit (after 'q', or by closing its commands);
  // returns its exit status (0: it never failed to answer).
  int finish() {
    if (commands_[1] >= 0) close(commands_[1]);
    commands_[1] = -1;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    close(replies_[0]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
  }

 private:
  [[noreturn]] static void serve(const std::filesystem::path& dir, int in, int out) {
    std::optional<Storage<int, int>> held;
    char c;
    while (read(in, &c, 1) == 1 && c != 'q') {
      char answer = 'o';
      try {
        switch (c) {
          case 'W': held.emplace(dir, writable(kAtOnce)); break;
          case 'R': held.emplace(dir, reading(kAtOnce)); break;
          case 'C': held.reset(); break;
          case 'w': Storage<int, int>(dir, writable(kAtOnce)); break;
          case 'r': Storage<int, int>(dir, reading(kAtOnce)); break;
          default: answer = 'e';
        }
      } catch (const LockError&) {
        answer = 'L';
      } catch (...) {
        answer = 'e';
      }
      if (write(out, &answer, 1) != 1) _exit(3);
    }
    held.reset();
    _exit(0);
  }

  pid_t pid_ = -1;
  int commands_[2] = {-1, -1};
  int replies_[2] = {-1, -1};
};

void make_store(const std::filesystem::path& dir) {
  Storage<int, int> init(dir);
  init.put(1, 1);
}

using WaitingStore = Storage<int, int, BinarySerializer, Lz4Compression, LruEviction, ProcessLock>;

}  // namespace

TEST_CASE("a store another process writes: LockError at once with lock_timeout 0, after it otherwise; then a wait succeeds") {
  TempDir dir("lock");
  make_store(dir.path());
  OtherProcess other(dir.path());
  REQUIRE(other.ask('W') == 'o');

  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), writable(kAtOnce))),
                    Catch::Contains((dir / "LOCK").string()) && Catch::Contains("a writer in another process") &&
                        Catch::Contains(std::to_string(other.pid())));
  CHECK_THROWS_WITH((WaitingStore(dir.path(), writable(std::chrono::milliseconds(200)))),
                    Catch::Contains("another process") && Catch::Contains("waited 200 ms"));

  // Released while (or before) the open waits: it succeeds.
  bool sent = false;
  std::thread releaser([&] { sent = other.send('q'); });
  {
    WaitingStore db(dir.path(), writable(kLong));
    CHECK(db.get(1) == 1);
  }
  releaser.join();
  CHECK(sent);
  CHECK(other.finish() == 0);
  Storage<int, int> db(dir.path());
  CHECK(db.get(1) == 1);
}

TEST_CASE("read_only opens in two processes hold the store at once") {
  TempDir dir("lock");
  make_store(dir.path());
  OtherProcess other(dir.path());
  REQUIRE(other.ask('R') == 'o');
  {
    Storage<int, int> db(dir.path(), reading(kAtOnce));
    CHECK(db.get(1) == 1);
    CHECK(other.ask('r') == 'o');  // a third read_only open meanwhile, in the other process
  }
  CHECK(other.ask('C') == 'o');
  CHECK(other.finish() == 0);
}

TEST_CASE("a writer is refused while another process reads, and waits for the reader to exit") {
  TempDir dir("lock");
  make_store(dir.path());
  OtherProcess other(dir.path());
  REQUIRE(other.ask('R') == 'o');

  CHECK_THROWS_AS((Storage<int, int>(dir.path(), writable(kAtOnce))), LockError);
  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), writable(kAtOnce))),
                    Catch::Contains((dir / "LOCK").string()) && Catch::Contains("a reader") &&
                        Catch::Contains("another process") && Catch::Contains(std::to_string(other.pid())));

  bool sent = false;
  std::thread releaser([&] { sent = other.send('q'); });
  {
    Storage<int, int> db(dir.path(), writable(kLong));
    db.put(2, 2);
    CHECK(db.get(1) == 1);
  }
  releaser.join();
  CHECK(sent);
  CHECK(other.finish() == 0);
}

TEST_CASE("a reader is refused while another process writes") {
  TempDir dir("lock");
  make_store(dir.path());
  OtherProcess other(dir.path());
  REQUIRE(other.ask('W') == 'o');
  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), reading(kAtOnce))),
                    Catch::Contains((dir / "LOCK").string()) && Catch::Contains("a writer in another process"));
  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), reading(std::chrono::milliseconds(100)))),
                    Catch::Contains("waited 100 ms"));
  CHECK(other.ask('C') == 'o');
  Storage<int, int> db(dir.path(), reading(kAtOnce));  // once it has closed
  CHECK(db.get(1) == 1);
  CHECK(other.ask('r') == 'o');
  CHECK(other.ask('w') == 'L');
}

TEST_CASE("two read_only Storage objects of one process share the store; closing one keeps the lock for the other") {
  TempDir dir("lock");
  make_store(dir.path());
  OtherProcess other(dir.path());  // forked before this process holds anything
  auto first = std::make_unique<Storage<int, int>>(dir.path(), reading(kAtOnce));
  Storage<int, int> second(dir.path() / "." / "", reading(kAtOnce));  // the same directory through another path
  CHECK(first->get(1) == 1);
  CHECK(second.get(1) == 1);
  CHECK(other.ask('w') == 'L');
  CHECK(other.ask('r') == 'o');
  // A writable open in this process is refused while either reader is open.
  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), writable(kAtOnce))),
                    Catch::Contains((dir / "LOCK").string()) && Catch::Contains("2 readers") &&
                        Catch::Contains("this process"));

  first.reset();  // one reader closes: the process's lock stays held for `second`
  CHECK(second.get(1) == 1);
  CHECK(other.ask('w') == 'L');
  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), writable(kAtOnce))), Catch::Contains("1 reader"));
  {
    Storage<int, int> third(dir.path(), reading(kAtOnce));  // joins `second`
    CHECK(third.get(1) == 1);
  }
  CHECK(other.ask('w') == 'L');
  CHECK(second.get(1) == 1);

  second.close();  // the last reader: the lock goes
  CHECK(other.ask('W') == 'o');
  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), reading(kAtOnce))), Catch::Contains("a writer in another process"));
  CHECK(other.ask('C') == 'o');
  CHECK(other.finish() == 0);
}

TEST_CASE("within one process a writer excludes readers and other writers, even through another path") {
  TempDir dir("lock");
  Storage<int, int> db(dir.path());
  CHECK_THROWS_AS((Storage<int, int>(dir.path() / "." / "", writable(kAtOnce))), LockError);
  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), reading(kAtOnce))),
                    Catch::Contains((dir / "LOCK").string()) && Catch::Contains("a writer") &&
                        Catch::Contains("this process"));
  db.close();
  Storage<int, int> again(dir.path(), writable(kAtOnce));  // released by close()
  again.put(2, 2);
}

TEST_CASE("ProcessLock waits for another Storage of this process to close") {
  TempDir dir("lock");
  auto first = std::make_unique<WaitingStore>(dir.path());
  first->put(7, 7);
  std::thread closer([&] { first.reset(); });
  WaitingStore second(dir.path(), writable(kLong));
  closer.join();
  CHECK(second.get(7) == 7);
}

TEST_CASE("a writer in this process waits for its readers to close, and they for it") {
  TempDir dir("lock");
  make_store(dir.path());
  auto reader = std::make_unique<Storage<int, int>>(dir.path(), reading(kAtOnce));
  std::thread closer([&] { reader.reset(); });
  auto writer = std::make_unique<Storage<int, int>>(dir.path(), writable(kLong));
  closer.join();
  writer->put(3, 3);
  std::thread closer2([&] { writer.reset(); });
  Storage<int, int> again(dir.path(), reading(kLong));
  closer2.join();
  CHECK(again.get(3) == 3);
}

TEMPLATE_TEST_CASE("every Lock policy waits up to lock_timeout for another process", "", NoLock, ThreadLock) {
  using Store = Storage<int, int, BinarySerializer, Lz4Compression, LruEviction, TestType>;
  TempDir dir("lock");
  make_store(dir.path());
  OtherProcess other(dir.path());
  REQUIRE(other.ask('W') == 'o');

  CHECK_THROWS_AS((Store(dir.path(), writable(kAtOnce))), LockError);
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH((Store(dir.path(), writable(std::chrono::milliseconds(200)))),
                    Catch::Contains("another process") && Catch::Contains("waited 200 ms"));
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(150));

  // Released within the timeout: the open takes the lock.
  bool sent = false;
  std::thread releaser([&] { sent = other.send('C'); });
  {
    Store db(dir.path(), writable(kLong));
    CHECK(db.get(1) == 1);
  }
  releaser.join();
  CHECK(sent);
  CHECK(other.reply() == 'o');
  CHECK(other.finish() == 0);
}

TEST_CASE("the LOCK file survives and is reused; no other file is needed to lock") {
  TempDir dir("lock");
  { Storage<int, int> db(dir.path()); }
  CHECK(std::filesystem::exists(dir / "LOCK"));
  { Storage<int, int> db(dir.path()); }
  { Storage<int, int> db(dir.path(), reading(kAtOnce)); }
}
