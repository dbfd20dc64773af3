// Tests of the store's LOCK: a writable open has the store to itself, while
// read_only opens share it (in several processes, and several in one
// process); every open waits up to lock_timeout whatever the Lock policy, a
// lock_timeout of 0 fails at once, and a lock released within the timeout
// is taken. Second processes come from fork(); pipes order them (no sleeps).
// A read_only open writes nothing: it creates no LOCK, changes no file, and
// works where the directory and LOCK are not writable; a store whose LOCK is
// missing is still guarded (by a flock on the directory), and an older
// stowage process that knows only the fcntl lock on LOCK is still excluded.
#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
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
// read_only and close again at once, 'X' / 'S' hold LOCK as an older stowage
// writer / reader does (an fcntl write / read lock only, LOCK created if
// missing, no lock on the directory; refused: 'L'), 'q' (or the pipe
// closing) close and exit. 'C' closes both kinds. Each command but 'q' is
// answered with one byte: 'o' done, 'L' LockError, 'e' another error.
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
  // Takes an fcntl lock of `type` on LOCK the way stowage versions before
  // the directory's flock did; returns its descriptor, -1 when refused.
  static int old_stowage_lock(const std::filesystem::path& dir, short type) {
    const int fd = open((dir / "LOCK").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot open LOCK");
    struct flock want {};
    want.l_type = type;
    want.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &want) == 0) return fd;
    close(fd);
    return -1;
  }

  [[noreturn]] static void serve(const std::filesystem::path& dir, int in, int out) {
    std::optional<Storage<int, int>> held;
    int old_fd = -1;
    char c;
    while (read(in, &c, 1) == 1 && c != 'q') {
      char answer = 'o';
      try {
        switch (c) {
          case 'W': held.emplace(dir, writable(kAtOnce)); break;
          case 'R': held.emplace(dir, reading(kAtOnce)); break;
          case 'C':
            held.reset();
            if (old_fd >= 0) close(old_fd);
            old_fd = -1;
            break;
          case 'X':
          case 'S':
            old_fd = old_stowage_lock(dir, c == 'X' ? F_WRLCK : F_RDLCK);
            if (old_fd < 0) answer = 'L';
            break;
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

// Every entry of dir, and dir itself as ".", one line each in name order:
// its name, type and mode, size, modification and change times to the
// nanosecond, and a hash of its bytes (a write within one clock tick may
// leave the times as they were).
std::vector<std::string> snapshot(const std::filesystem::path& dir) {
  std::map<std::string, std::string> entries;
  auto add = [&](const std::string& name, const std::filesystem::path& p) {
    struct stat st {};
    REQUIRE(lstat(p.c_str(), &st) == 0);
    std::string s = name + ": mode " + std::to_string(st.st_mode) + " size " + std::to_string(st.st_size) +
                    " mtime " + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
                    " ctime " + std::to_string(st.st_ctim.tv_sec) + "." + std::to_string(st.st_ctim.tv_nsec);
    if (S_ISREG(st.st_mode)) s += " bytes " + std::to_string(std::hash<std::string>{}(stowage_test::read_all(p)));
    entries[name] = s;
  };
  add(".", dir);
  for (const auto& e : std::filesystem::directory_iterator(dir)) add(e.path().filename().string(), e.path());
  std::vector<std::string> out;
  for (auto& [name, line] : entries) out.push_back(line);
  return out;
}

// Exit codes of the child of the read-only directory test.
enum ReadOnlyChild : int {
  kAllChecked = 0,        // permissions enforced; read_only open worked; a writable one got IoError
  kRootStayed = 20,       // root could not drop its privileges: only the read_only open was checked
  kProbeWrote = 11,       // a file could be created in the directory: permissions not enforced
  kLockWritable = 12,     // LOCK could be opened for writing
  kReadFailed = 13,       // the read_only open threw
  kWrongValue = 14,       // it read the wrong value
  kWriterOpened = 15,     // a writable open succeeded
  kWriterWrongError = 16  // a writable open threw something other than IoError
};

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

TEST_CASE("a read_only open creates no LOCK and changes no file of the store") {
  TempDir dir("lock");
  make_store(dir.path());
  const bool lock_present = GENERATE(false, true);
  if (!lock_present) REQUIRE(std::filesystem::remove(dir / "LOCK"));
  INFO("LOCK present before the opens: " << lock_present);
  OtherProcess other(dir.path());  // forked before this process holds anything
  const auto before = snapshot(dir.path());
  {
    Storage<int, int> db(dir.path(), reading(kAtOnce));
    CHECK(db.get(1) == 1);
    Storage<int, int> second(dir.path(), reading(kAtOnce));  // a second holder in this process
    CHECK(second.get(1) == 1);
    CHECK(other.ask('R') == 'o');  // and one in another process
    CHECK(other.ask('r') == 'o');
    CHECK(std::filesystem::exists(dir / "LOCK") == lock_present);
  }
  CHECK(other.ask('C') == 'o');
  CHECK(other.finish() == 0);
  CHECK(std::filesystem::exists(dir / "LOCK") == lock_present);
  CHECK(snapshot(dir.path()) == before);
}

TEST_CASE("with LOCK missing, a reader in another process keeps writers out, and readers share the store") {
  TempDir dir("lock");
  make_store(dir.path());
  REQUIRE(std::filesystem::remove(dir / "LOCK"));
  OtherProcess other(dir.path());
  REQUIRE(other.ask('R') == 'o');
  REQUIRE_FALSE(std::filesystem::exists(dir / "LOCK"));

  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), writable(kAtOnce))),
                    Catch::Contains((dir / "LOCK").string()) && Catch::Contains("a reader") &&
                        Catch::Contains("another process"));
  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), writable(std::chrono::milliseconds(100)))),
                    Catch::Contains("a reader") && Catch::Contains("waited 100 ms"));
  CHECK_THROWS_AS((WaitingStore(dir.path(), writable(kAtOnce))), LockError);

  // Two read_only opens in two processes (and a third, briefly) share it.
  {
    Storage<int, int> db(dir.path(), reading(kAtOnce));
    CHECK(db.get(1) == 1);
    CHECK(other.ask('r') == 'o');
    CHECK_THROWS_AS((Storage<int, int>(dir.path(), writable(kAtOnce))), LockError);
  }
  CHECK_FALSE(std::filesystem::exists(dir / "LOCK"));
  CHECK_THROWS_AS((Storage<int, int>(dir.path(), writable(kAtOnce))), LockError);  // the other reader still holds it

  // A writer waits for the reader to close, then opens.
  bool sent = false;
  std::thread releaser([&] { sent = other.send('C'); });
  {
    Storage<int, int> db(dir.path(), writable(kLong));
    db.put(2, 2);
  }
  releaser.join();
  CHECK(sent);
  CHECK(other.reply() == 'o');
  CHECK(other.finish() == 0);
}

TEST_CASE("with LOCK missing, a writer in another process keeps readers out") {
  TempDir dir("lock");
  make_store(dir.path());
  REQUIRE(std::filesystem::remove(dir / "LOCK"));
  OtherProcess other(dir.path());
  REQUIRE(other.ask('W') == 'o');
  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), reading(kAtOnce))),
                    Catch::Contains((dir / "LOCK").string()) && Catch::Contains("a writer in another process") &&
                        Catch::Contains(std::to_string(other.pid())));
  CHECK_THROWS_AS((Storage<int, int>(dir.path(), writable(kAtOnce))), LockError);
  CHECK(other.ask('C') == 'o');
  REQUIRE(std::filesystem::remove(dir / "LOCK"));
  Storage<int, int> db(dir.path(), reading(kAtOnce));  // once it has closed
  CHECK(db.get(1) == 1);
  CHECK(other.finish() == 0);
}

TEST_CASE("with LOCK missing, a reader or writer in this process keeps another process out") {
  TempDir dir("lock");
  make_store(dir.path());
  REQUIRE(std::filesystem::remove(dir / "LOCK"));
  OtherProcess other(dir.path());  // forked before this process holds anything
  {
    Storage<int, int> db(dir.path(), reading(kAtOnce));
    CHECK(other.ask('w') == 'L');
    CHECK(other.ask('W') == 'L');
    CHECK(other.ask('r') == 'o');
    CHECK(other.ask('R') == 'o');
    CHECK(other.ask('C') == 'o');
    CHECK(db.get(1) == 1);
  }
  CHECK_FALSE(std::filesystem::exists(dir / "LOCK"));
  {
    Storage<int, int> db(dir.path(), writable(kAtOnce));
    CHECK(other.ask('r') == 'L');
    CHECK(other.ask('w') == 'L');
    db.put(2, 2);
  }
  REQUIRE(std::filesystem::remove(dir / "LOCK"));
  CHECK(other.ask('W') == 'o');  // all released
  CHECK(other.ask('C') == 'o');
  CHECK(other.finish() == 0);
}

TEST_CASE("a process of an older stowage, which locks only LOCK with fcntl, is still excluded both ways") {
  TempDir dir("lock");
  make_store(dir.path());
  OtherProcess other(dir.path());  // forked before this process holds anything

  REQUIRE(other.ask('X') == 'o');  // an older writer
  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), reading(kAtOnce))),
                    Catch::Contains("a writer in another process") && Catch::Contains(std::to_string(other.pid())));
  CHECK_THROWS_AS((Storage<int, int>(dir.path(), writable(kAtOnce))), LockError);
  CHECK(other.ask('C') == 'o');

  REQUIRE(other.ask('S') == 'o');  // an older reader
  CHECK_THROWS_WITH((Storage<int, int>(dir.path(), writable(kAtOnce))),
                    Catch::Contains("a reader") && Catch::Contains(std::to_string(other.pid())));
  {
    Storage<int, int> db(dir.path(), reading(kAtOnce));
    CHECK(db.get(1) == 1);
  }
  CHECK(other.ask('C') == 'o');

  {
    Storage<int, int> db(dir.path(), reading(kAtOnce));  // a reader of this version keeps an older writer out
    CHECK(other.ask('X') == 'L');
    CHECK(other.ask('S') == 'o');
    CHECK(other.ask('C') == 'o');
  }
  {
    Storage<int, int> db(dir.path(), writable(kAtOnce));  // and so does a writer, of older readers too
    CHECK(other.ask('X') == 'L');
    CHECK(other.ask('S') == 'L');
  }
  CHECK(other.ask('X') == 'o');
  CHECK(other.ask('C') == 'o');
  CHECK(other.finish() == 0);
}

TEST_CASE("a read_only open works where neither the directory nor LOCK is writable") {
  // Permission bits do not stop root: run as root, the child drops to
  // uid/gid 65534 first, and checks that it cannot write there.
  TempDir dir("lock");
  make_store(dir.path());
  const bool lock_present = GENERATE(false, true);
  INFO("LOCK present (mode 0444): " << lock_present);
  if (lock_present) REQUIRE(chmod((dir / "LOCK").c_str(), 0444) == 0);
  else REQUIRE(std::filesystem::remove(dir / "LOCK"));
  REQUIRE(chmod(dir.path().c_str(), 0555) == 0);
  const auto before = snapshot(dir.path());

  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // no Catch assertions here: exit codes report (ReadOnlyChild)
    bool unprivileged = geteuid() != 0;
    if (!unprivileged) unprivileged = setgroups(0, nullptr) == 0 && setgid(65534) == 0 && setuid(65534) == 0;
    if (unprivileged) {
      if (open((dir / "probe").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644) >= 0) _exit(kProbeWrote);
      if (open((dir / "LOCK").c_str(), O_RDWR | O_CLOEXEC) >= 0) _exit(kLockWritable);
    }
    try {
      Storage<int, int> db(dir.path(), reading(kAtOnce));
      Storage<int, int> second(dir.path(), reading(kAtOnce));
      if (db.get(1) != 1 || second.get(1) != 1) _exit(kWrongValue);
    } catch (...) {
      _exit(kReadFailed);
    }
    if (!unprivileged) _exit(kRootStayed);  // a writable open would succeed as root
    try {
      Storage<int, int>(dir.path(), writable(kAtOnce));
      _exit(kWriterOpened);
    } catch (const IoError&) {
    } catch (...) {
      _exit(kWriterWrongError);
    }
    _exit(kAllChecked);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  const auto after = snapshot(dir.path());
  chmod(dir.path().c_str(), 0755);  // so that TempDir can remove it
  REQUIRE(WIFEXITED(status));
  const int code = WEXITSTATUS(status);
  INFO("child exit code " << code << " (see ReadOnlyChild)");
  if (code == kRootStayed)
    WARN("running as root and unable to drop privileges: the directory's permission bits were not enforced; "
         "checked only that the read_only opens worked and wrote nothing");
  CHECK((code == kAllChecked || code == kRootStayed));
  CHECK(after == before);
}
