// Bad input at the API: each case must end in a clear exception of the right
// type (ValidationError for the caller's mistakes, IoError for the system's),
// with a message that says what is wrong, and the store must stay usable (or,
// after an I/O error, refuse writes and recover everything acknowledged on
// reopen).
#include <catch2/catch.hpp>

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stowage/stowage.hpp>

#include "fault_fs.hpp"
#include "test_util.hpp"

using namespace stowage;
using stowage_test::FaultFileSystem;
using stowage_test::TempDir;
using Catch::Matchers::Contains;

namespace {

Options small_options(std::shared_ptr<FileSystem> fs = nullptr) {
  Options o;
  o.cache_bytes = 256 << 10;
  o.chunk_bytes = 8 << 10;
  o.block_bytes = 512;
  o.write_buffer_bytes = 32 << 10;
  o.file_system = std::move(fs);
  return o;
}

using StrStore = Storage<std::string, std::string>;
using IntStore = Storage<int, std::string>;

// The directory's files and their bytes.
std::map<std::string, std::string> snapshot(const std::filesystem::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != "LOCK")
      out[e.path().filename().string()] = stowage_test::read_all(e.path());
  return out;
}

// Checks that fn throws exactly an E (or a subclass) whose message contains `text`.
template <class E, class Fn>
void expect_throw(Fn&& fn, const std::string& text) {
  try {
    fn();
    FAIL_CHECK("no exception; expected one mentioning '" << text << "'");
  } catch (const E& e) {
    CHECK_THAT(e.what(), Contains(text));
  } catch (const std::exception& e) {
    FAIL_CHECK("wrong exception type: " << e.what());
  }
}

}  // namespace

static_assert(stowage::kMaxKeyBytes == 64 * 1024);
static_assert(stowage::kMaxValueBytes == std::size_t{1} << 30);

TEST_CASE("a key over 64 KiB is refused and the store stays usable", "[bad_input]") {
  TempDir tmp("bad");
  StrStore db(tmp / "db", small_options());
  const std::string huge(kMaxKeyBytes + 1, 'k');
  expect_throw<ValidationError>([&] { (void)db.put(huge, "v"); }, "exceeds the limit");
  CHECK_THROWS_AS(db.erase(huge), ValidationError);
  CHECK_FALSE(db.get(huge).has_value());  // lookups of any key are fine
  CHECK(db.empty());
  // A key close to the limit works, and so does an ordinary one.
  const std::string big(kMaxKeyBytes - 16, 'b');
  db.put(big, "big");
  db.put("a", "1");
  CHECK(db.get(big) == std::optional<std::string>("big"));
  CHECK(db.get("a") == std::optional<std::string>("1"));
  db.checkpoint();
  db.close();
  StrStore re(tmp / "db", small_options());
  CHECK(re.size() == 2);
  CHECK(re.get(big) == std::optional<std::string>("big"));
}

TEST_CASE("a batch with one oversized key stores none of it", "[bad_input]") {
  TempDir tmp("bad");
  StrStore db(tmp / "db", small_options());
  db.put("before", "x");
  std::vector<std::pair<std::string, std::string>> batch;
  for (int i = 0; i < 20; ++i) batch.emplace_back("key" + std::to_string(i), "value" + std::to_string(i));
  batch.insert(batch.begin() + 10, {std::string(kMaxKeyBytes + 100, 'z'), "too big"});
  REQUIRE_THROWS_AS(db.put_batch(batch), ValidationError);
  CHECK(db.size() == 1);
  for (int i = 0; i < 20; ++i) CHECK_FALSE(db.contains("key" + std::to_string(i)));
  // The same batch without the bad key goes in whole.
  batch.erase(batch.begin() + 10);
  db.put_batch(batch);
  CHECK(db.size() == 21);
  db.close();
  StrStore re(tmp / "db", small_options());
  CHECK(re.size() == 21);
}

TEST_CASE("a store path that is a regular file is refused", "[bad_input]") {
  TempDir tmp("bad");
  stowage_test::write_all(tmp / "plain", "not a store");
  expect_throw<ValidationError>([&] { IntStore db(tmp / "plain", small_options()); }, "not a directory");
  CHECK(stowage_test::read_all(tmp / "plain") == "not a store");
  // A store inside a path whose parent is a file: an IoError from the file system.
  CHECK_THROWS_AS(IntStore(tmp / "plain" / "db", small_options()), IoError);
}

TEST_CASE("a directory without permission is an IoError that says so", "[bad_input]") {
  TempDir tmp("bad");
  const auto parent = tmp / "locked";
  std::filesystem::create_directories(parent);
  if (::geteuid() != 0) {
    ::chmod(parent.c_str(), 0);
    try {
      IntStore db(parent / "db", small_options());
      FAIL("opening a store under a directory without permission succeeded");
    } catch (const IoError& e) {
      CHECK_THAT(e.what(), Contains("permission"));
    }
    ::chmod(parent.c_str(), 0755);
  } else {
    // root ignores permission bits: inject EACCES instead, on the first
    // directory creation and then on the first file creation.
    for (unsigned op : {unsigned(stowage_test::kOpCreateDirs), unsigned(stowage_test::kOpCreate)}) {
      auto fs = FaultFileSystem::make(parent / "db");
      fs->set_fault_errno(EACCES);
      fs->fail_at(op, 1, false);
      INFO("EACCES on " << stowage_test::fault_op_name(op));
      try {
        IntStore db(parent / "db", small_options(fs));
        FAIL("opening the store succeeded despite EACCES");
      } catch (const IoError& e) {
        CHECK_THAT(e.what(), Contains("permission"));
      }
      // Once the "permission" is back, the store opens and works.
      IntStore db(parent / "db", small_options(fs));
      db.put(1, "one");
      CHECK(db.get(1) == std::optional<std::string>("one"));
    }
  }
}

// A failed open of LOCK (EACCES here) is an IoError with the permissions
// hint, not a LockError (which means another process holds the store).
TEST_CASE("a store directory that cannot be written (real permissions, as nobody)", "[bad_input]") {
  // Run the check in a child process as an unprivileged user when we are root.
  TempDir tmp("bad");
  const auto dir = tmp / "db";
  {
    IntStore db(dir, small_options());
    db.put(1, "one");
  }
  ::chmod(tmp.path().c_str(), 0755);
  ::chmod(dir.c_str(), 0555);  // readable, not writable
  for (const auto& e : std::filesystem::directory_iterator(dir)) ::chmod(e.path().c_str(), 0444);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    try {
      Options o = small_options();
      o.lock_timeout = std::chrono::milliseconds(0);  // a LockError (a failure here) at once, not after 5 s
      IntStore db(dir, o);
      ::_exit(4);  // opened for writing in a directory it cannot write
    } catch (const IoError& e) {
      ::_exit(std::string(e.what()).find("permission") != std::string::npos ? 0 : 5);
    } catch (const LockError&) {
      ::_exit(6);
    } catch (...) {
      ::_exit(7);
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::chmod(dir.c_str(), 0755);
  REQUIRE(WIFEXITED(status));
  const int code = WEXITSTATUS(status);
  INFO("child exit code " << code
                          << " (0 IoError naming permissions, 3 setuid failed, 4 opened, 5 IoError without the "
                             "permissions hint, 6 LockError, 7 another exception)");
  if (code == 3) WARN("cannot become nobody; skipped");
  else CHECK(code == 0);
}

TEST_CASE("a full disk mid-workload: IoError saying so, writes refused, reopen recovers", "[bad_input]") {
  TempDir tmp("bad");
  const auto dir = tmp / "db";
  std::map<int, std::string> acked;
  std::optional<int> inflight_key;
  std::string inflight_value;
  for (std::uint64_t n : {5u, 40u, 200u, 400u}) {
    inflight_key.reset();
    std::filesystem::remove_all(dir);
    acked.clear();
    auto fs = FaultFileSystem::make(dir);
    fs->set_fault_errno(ENOSPC);
    fs->set_sticky_handles(true);
    {
      IntStore db(dir, small_options(fs));
      fs->fail_at(stowage_test::kOpAppend | stowage_test::kOpFlush | stowage_test::kOpSync | stowage_test::kOpCreate,
                  n, false);
      std::string message;
      for (int i = 0; i < 2000 && message.empty(); ++i) {
        const std::string v(100 + i % 300, static_cast<char>('a' + i % 26));
        try {
          db.put(i % 500, v);
          acked[i % 500] = v;
        } catch (const IoError& e) {
          message = e.what();
          inflight_key = i % 500;
          inflight_value = v;
        }
      }
      INFO("fault point " << n << ": " << message);
      REQUIRE_FALSE(message.empty());
      CHECK_THAT(message, Contains("disk is full"));
      CHECK_THROWS_AS(db.put(9999, "x"), IoError);
      CHECK_THROWS_AS(db.erase(1), IoError);
      CHECK_THROWS_AS(db.checkpoint(), IoError);
      // Reads still answer.
      for (const auto& [k, v] : acked) {
        auto g = db.get(k);
        CHECK((g && *g == v));
      }
    }
    IntStore re(dir, small_options());
    std::map<int, std::string> got;
    for (const auto& [k, v] : re.scan()) got[k] = v;
    INFO("fault point " << n << ": " << stowage_test::describe_diff(acked, got));
    // The put that failed may be there too (its WAL record can be complete
    // when a later step, e.g. the checkpoint it triggered, failed).
    if (got != acked) {
      REQUIRE(inflight_key.has_value());
      auto with = acked;
      with[*inflight_key] = inflight_value;
      CHECK(got == with);
    }
    re.put(9999, "after");
    CHECK(re.get(9999) == std::optional<std::string>("after"));
  }
}

TEST_CASE("a read_only store refuses every write and changes nothing on disk", "[bad_input]") {
  TempDir tmp("bad");
  const auto dir = tmp / "db";
  {
    Options o = small_options();
    o.checkpoint_on_close = false;  // leave a WAL to replay
    IntStore db(dir, o);
    for (int i = 0; i < 50; ++i) db.put(i, "v" + std::to_string(i));
  }
  const auto before = snapshot(dir);
  {
    Options o = small_options();
    o.read_only = true;
    IntStore db(dir, o);
    CHECK(db.size() == 50);
    CHECK(db.get(7) == std::optional<std::string>("v7"));
    expect_throw<ValidationError>([&] { db.put(1, "x"); }, "read_only");
    CHECK_THROWS_AS(db.erase(1), ValidationError);
    std::vector<std::pair<int, std::string>> batch{{100, "a"}, {101, "b"}};
    CHECK_THROWS_AS(db.put_batch(batch), ValidationError);
    CHECK_THROWS_AS(db.checkpoint(), ValidationError);
    CHECK_NOTHROW(db.flush());  // nothing to make durable
    CHECK(db.get(1) == std::optional<std::string>("v1"));
    CHECK(db.size() == 50);
    db.close();
  }
  CHECK(snapshot(dir) == before);
  // read_only on a path with no store.
  Options o = small_options();
  o.read_only = true;
  CHECK_THROWS_AS(IntStore(tmp / "nothing", o), ValidationError);
  CHECK_FALSE(std::filesystem::exists(tmp / "nothing"));
}

TEST_CASE("a NaN key is refused", "[bad_input]") {
  TempDir tmp("bad");
  Storage<double, std::string> db(tmp / "db", small_options());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  expect_throw<ValidationError>([&] { (void)db.put(nan, "x"); }, "NaN");
  CHECK_THROWS_AS(db.erase(nan), ValidationError);
  std::vector<std::pair<double, std::string>> batch{{1.0, "a"}, {nan, "b"}};
  CHECK_THROWS_AS(db.put_batch(batch), ValidationError);
  CHECK_THROWS_AS(db.get(nan), ValidationError);
  CHECK(db.empty());
  db.put(1.5, "ok");
  db.put(-0.0, "zero");
  CHECK(db.get(1.5) == std::optional<std::string>("ok"));
  CHECK(db.get(0.0) == std::optional<std::string>("zero"));
  CHECK(db.size() == 2);
}

TEST_CASE("Options out of range are refused, naming the option", "[bad_input]") {
  TempDir tmp("bad");
  struct Case {
    const char* name;
    Options opt;
  };
  std::vector<Case> cases;
  {
    Options o = small_options();
    o.cache_bytes = 1024;
    cases.push_back({"cache_bytes", o});
  }
  {
    Options o = small_options();
    o.block_bytes = 0;
    cases.push_back({"block_bytes", o});
  }
  {
    Options o = small_options();
    o.block_bytes = std::size_t{64} << 20;
    o.chunk_bytes = std::size_t{128} << 20;
    cases.push_back({"block_bytes", o});
  }
  {
    Options o = small_options();
    o.block_bytes = 4096;
    o.chunk_bytes = 1024;
    cases.push_back({"chunk_bytes", o});
  }
  {
    Options o = small_options();
    o.write_buffer_bytes = o.cache_bytes;
    cases.push_back({"write_buffer_bytes", o});
  }
  for (const auto& c : cases) {
    INFO(c.name);
    expect_throw<ValidationError>([&] { IntStore db(tmp / "db", c.opt); }, c.name);
    CHECK_FALSE(std::filesystem::exists(tmp / "db"));  // refused before touching the disk
  }
  IntStore ok(tmp / "db", small_options());
  ok.put(1, "x");
  CHECK(ok.size() == 1);
}

TEST_CASE("every call on a closed store is a ValidationError", "[bad_input]") {
  TempDir tmp("bad");
  IntStore db(tmp / "db", small_options());
  db.put(1, "one");
  db.close();
  CHECK_NOTHROW(db.close());  // idempotent
    expect_throw<ValidationError>([&] { (void)db.put(2, "two"); }, "closed");
  expect_throw<ValidationError>([&] { (void)db.get(1); }, "closed");
  CHECK_THROWS_AS(db.contains(1), ValidationError);
  CHECK_THROWS_AS(db.erase(1), ValidationError);
  std::vector<std::pair<int, std::string>> batch{{3, "c"}};
  CHECK_THROWS_AS(db.put_batch(batch), ValidationError);
  CHECK_THROWS_AS(db.size(), ValidationError);
  CHECK_THROWS_AS(db.empty(), ValidationError);
  CHECK_THROWS_AS(db.flush(), ValidationError);
  CHECK_THROWS_AS(db.checkpoint(), ValidationError);
  CHECK_THROWS_AS(db.stats(), ValidationError);
  CHECK_THROWS_AS(db.scan().begin(), ValidationError);
  std::vector<int> keys{1};
  CHECK_THROWS_AS(db.get_batch(keys), ValidationError);
  // The data is still there for the next open.
  IntStore re(tmp / "db", small_options());
  CHECK(re.get(1) == std::optional<std::string>("one"));
}
