// Tests for content_store.hpp: put / get / contains / put_batch with dedup and
// verification; get_or_compute's single flight across threads (one computes,
// the others wait; an exception reaches them all and nothing is stored;
// timeouts) and across real processes (fork: one process computes while the
// other waits for its result; a kill -9'd owner is taken over after its
// lease); status and stats; garbage collection from roots through references,
// by age, beside concurrent writers, and killed with SIGKILL in the middle.
// Synchronisation is by pipes and the store's log lines, never by sleeping.
#include <stowage/content_store.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace {

using stowage::ComputeStatus;
using stowage::ContentOptions;
using stowage::Digest;
using stowage::Sharing;

struct Node {
  std::string name;
  std::vector<Digest> children;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & name & children;
  }
};

using Store = stowage::ContentStore<Node>;

std::vector<Digest> children_of(const Node& n) { return n.children; }

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::path(STOWAGE_TEST_BINARY_DIR) / ("content-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(dir.string() + ".ops");
  return dir;
}

// ---- pipes between processes ----------------------------------------------------

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    ::close(r);
    ::close(w);
  }
  void send(char c) const {
    while (::write(w, &c, 1) != 1) {
    }
  }
  // The next byte, or 0 when none came within the deadline.
  char next(int timeout_ms = 20000) const {
    pollfd p{r, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return 0;
    char c = 0;
    return ::read(r, &c, 1) == 1 ? c : 0;
  }
};

// Runs f in a child process; its return value is the exit code.
template <class F>
pid_t spawn(F f) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 90;
    try {
      code = f();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      code = 91;
    }
    ::_exit(code);
  }
  return pid;
}

int exit_code(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A logger that reports the content store's "waiting" and "taking over" lines.
stowage::Logger signal_on(const Pipe& p) {
  return [&p](stowage::LogLevel, std::string_view msg) {
    if (msg.find("waiting for the computation") != std::string_view::npos) p.send('W');
    if (msg.find("taking over") != std::string_view::npos) p.send('T');
  };
}

// Counts "waiting" log lines and lets a computation block until enough callers wait.
struct WaitCounter {
  std::mutex mu;
  std::condition_variable cv;
  int waiting = 0;
  stowage::Logger logger() {
    return [this](stowage::LogLevel, std::string_view msg) {
      if (msg.find("waiting for the computation") == std::string_view::npos) return;
      std::lock_guard g(mu);
      ++waiting;
      cv.notify_all();
    };
  }
  bool wait_for(int n) {
    std::unique_lock l(mu);
    return cv.wait_for(l, std::chrono::seconds(20), [&] { return waiting >= n; });
  }
};

// A computation that holds its result until the test opens the gate.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, opened = false;
  // Call inside the computation: reports it started, then waits for open().
  Node hold(std::string name) {
    std::unique_lock l(mu);
    started = true;
    cv.notify_all();
    cv.wait(l, [&] { return opened; });
    return Node{std::move(name), {}};
  }
  void wait_started() {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return started; });
  }
  void open() {
    {
      std::lock_guard l(mu);
      opened = true;
    }
    cv.notify_all();
  }
};

}  // namespace

TEST_CASE("put stores equal values once and get verifies them", "[content]") {
  const auto dir = fresh_dir("dedup");
  const Node leaf{"leaf", {}};
  Digest d;
  {
    Store cs(dir);
    d = cs.put(leaf);
    for (int i = 0; i < 100; ++i) CHECK(cs.put(Node{"leaf", {}}) == d);
    CHECK(cs.count() == 1);
    std::string bytes;
    stowage::BinarySerializer::serialize(leaf, bytes);
    CHECK(d == stowage::sha256(bytes));
    CHECK(Store::digest_of(leaf) == d);
    CHECK(cs.contains(d));
    CHECK_FALSE(cs.contains(stowage::sha256("nothing")));
    CHECK_FALSE(cs.get(stowage::sha256("nothing")));
    auto batch = cs.put_batch(std::vector<Node>{{"a", {d}}, {"b", {}}, {"a", {d}}, {"leaf", {}}});
    REQUIRE(batch.size() == 4);
    CHECK(batch[0] == batch[2]);
    CHECK(batch[3] == d);
    CHECK(cs.count() == 3);
  }
  Store cs(dir);  // reopened
  auto got = cs.get(d);
  REQUIRE(got);
  CHECK(got->name == "leaf");
  CHECK(cs.count() == 3);
}

TEST_CASE("a value whose bytes do not match its digest is a CorruptionError", "[content]") {
  const auto dir = fresh_dir("verify");
  Digest d;
  {
    Store cs(dir);
    d = cs.put(Node{"genuine", {}});
  }
  {
    // Rewrite the content record behind the store's back (layout: docs/format.md#content-store).
    stowage::Storage<std::string, std::string> raw(dir);
    std::string forged(8, '\0');
    stowage::BinarySerializer::serialize(Node{"forged", {}}, forged);
    raw.put("c" + std::string(d.raw()), forged);
  }
  Store cs(dir);
  CHECK(cs.contains(d));
  CHECK_THROWS_AS(cs.get(d), stowage::CorruptionError);
  try {
    cs.get(d);
  } catch (const stowage::CorruptionError& e) {
    CHECK(std::string(e.what()).find(d.hex()) != std::string::npos);
    CHECK(std::string(e.what()).find(dir.string()) != std::string::npos);
  }
}

TEST_CASE("get_or_compute runs once while the other threads wait", "[content][single-flight]") {
  const auto dir = fresh_dir("flight");
  WaitCounter waiting;
  ContentOptions opt;
  opt.store.logger = waiting.logger();
  Store cs(dir, opt);
  const Digest key = Store::key_of(std::string("input"));
  constexpr int kThreads = 8;
  std::atomic<int> runs{0};
  std::vector<std::string> got(kThreads);
  std::vector<std::thread> threads;
  std::atomic<bool> all_waited{false};
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      got[i] = cs.get_or_compute(key, [&] {
                   ++runs;
                   all_waited = waiting.wait_for(kThreads - 1);  // hold the result until everyone waits
                   return Node{"result", {}};
                 }).name;
    });
  for (auto& t : threads) t.join();
  CHECK(all_waited);
  CHECK(runs == 1);
  for (const auto& g : got) CHECK(g == "result");
  auto st = cs.stats();
  CHECK(st.computations == 1);
  CHECK(st.waits == kThreads - 1);
  CHECK(cs.status(key) == ComputeStatus::complete);
  CHECK(cs.get_or_compute(key, [&] { ++runs; return Node{"again", {}}; }).name == "result");
  CHECK(cs.stats().hits == 1);
  CHECK(runs == 1);
  // A string key is the SHA-256 of the string.
  CHECK(cs.get_or_compute("any key", [] { return Node{"by name", {}}; }).name == "by name");
  CHECK(cs.status(stowage::sha256("any key")) == ComputeStatus::complete);
}

TEST_CASE("an exception in the computation reaches every waiter and stores nothing", "[content][single-flight]") {
  const auto dir = fresh_dir("flight-fail");
  WaitCounter waiting;
  ContentOptions opt;
  opt.store.logger = waiting.logger();
  Store cs(dir, opt);
  const Digest key = stowage::sha256("failing");
  constexpr int kThreads = 5;
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      try {
        cs.get_or_compute(key, [&]() -> Node {
          waiting.wait_for(kThreads - 1);
          throw std::runtime_error("the computation broke");
        });
      } catch (const std::runtime_error& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors) CHECK(e == "the computation broke");
  CHECK(cs.count() == 0);
  CHECK(cs.status(key) == ComputeStatus::failed);
  CHECK(cs.stats().failures == 1);
  CHECK(cs.get_or_compute(key, [] { return Node{"fixed", {}}; }).name == "fixed");
  CHECK(cs.status(key) == ComputeStatus::complete);
}

TEST_CASE("status shows a running computation; a waiter times out with a clear error", "[content][single-flight]") {
  const auto dir = fresh_dir("flight-timeout");
  ContentOptions opt;
  opt.wait_timeout = std::chrono::milliseconds(50);
  Store cs(dir, opt);
  const Digest key = stowage::sha256("slow");
  Gate gate;
  std::thread owner([&] { cs.get_or_compute(key, [&] { return gate.hold("slow"); }); });
  gate.wait_started();
  CHECK(cs.status(key) == ComputeStatus::running);
  CHECK(cs.status(stowage::sha256("other")) == ComputeStatus::none);
  try {
    cs.get_or_compute(key, [] { return Node{"never", {}}; });
    FAIL("no timeout");
  } catch (const stowage::TimeoutError& e) {
    CHECK(std::string(e.what()).find("wait_timeout") != std::string::npos);
    CHECK(std::string(e.what()).find(key.hex()) != std::string::npos);
  }
  gate.open();
  owner.join();
  CHECK(cs.status(key) == ComputeStatus::complete);
}

TEST_CASE("two processes computing the same key: one runs, the other waits and gets its result",
          "[content][single-flight][processes]") {
  const auto dir = fresh_dir("processes");
  const Digest key = stowage::sha256("shared input");
  Pipe a_events, a_go, b_events;
  const pid_t a = spawn([&] {
    ContentOptions opt;
    opt.sharing = Sharing::processes;
    opt.hold_for = std::chrono::hours(1);  // A keeps the store open until B asks for it
    Store cs(dir, opt);
    Node v = cs.get_or_compute(key, [&] {
      a_events.send('C');                   // computing
      return a_go.next() == 'g' ? Node{"computed by A", {}} : Node{"no go", {}};
    });
    a_events.send('D');
    return v.name == "computed by A" && cs.stats().computations == 1 ? 0 : 3;
  });
  REQUIRE(a_events.next() == 'C');
  const pid_t b = spawn([&] {
    ContentOptions opt;
    opt.sharing = Sharing::processes;
    opt.store.logger = signal_on(b_events);
    Store cs(dir, opt);
    Node v = cs.get_or_compute(key, [] { return Node{"computed by B", {}}; });
    auto st = cs.stats();
    b_events.send(v.name == "computed by A" && st.waits == 1 && st.computations == 0 ? 'R' : 'X');
    return 0;
  });
  CHECK(b_events.next() == 'W');  // B waits for A
  a_go.send('g');
  CHECK(a_events.next() == 'D');
  CHECK(b_events.next() == 'R');
  CHECK(exit_code(a) == 0);
  CHECK(exit_code(b) == 0);
  ContentOptions opt;
  opt.sharing = Sharing::processes;
  Store cs(dir, opt);
  CHECK(cs.status(key) == ComputeStatus::complete);
  CHECK(cs.count() == 1);
  CHECK_FALSE(std::filesystem::exists(std::filesystem::path(dir.string() + ".ops") / (key.hex() + ".op")));
}

TEST_CASE("two processes racing through the same keys compute each key once", "[content][single-flight][processes]") {
  const auto dir = fresh_dir("processes-race");
  constexpr int kKeys = 40;
  Pipe results;
  Pipe go;
  auto worker = [&](bool reverse) {
    return [&, reverse] {
      ContentOptions opt;
      opt.sharing = Sharing::processes;
      Store cs(dir, opt);
      go.next();  // both start together
      bool right = true;
      for (int n = 0; n < kKeys; ++n) {
        const int i = reverse ? kKeys - 1 - n : n;
        right = right && cs.get_or_compute("key " + std::to_string(i), [i] {
                           return Node{"value " + std::to_string(i), {}};
                         }).name == "value " + std::to_string(i);
      }
      auto st = cs.stats();
      results.send(right ? 'R' : 'X');
      results.send(static_cast<char>(st.computations));
      return 0;
    };
  };
  const pid_t a = spawn(worker(false));
  const pid_t b = spawn(worker(true));
  go.send('g');
  go.send('g');
  int computations = 0;
  for (int child = 0; child < 2; ++child) {
    CHECK(results.next() == 'R');
    computations += results.next();
  }
  CHECK(exit_code(a) == 0);
  CHECK(exit_code(b) == 0);
  CHECK(computations == kKeys);
  ContentOptions opt;
  opt.sharing = Sharing::processes;
  Store cs(dir, opt);
  CHECK(cs.count() == kKeys);
}

TEST_CASE("a killed owner's computation is taken over by its waiter after the lease",
          "[content][single-flight][processes]") {
  const auto dir = fresh_dir("takeover");
  const Digest key = stowage::sha256("owner dies");
  Pipe a_events, never, b_events;
  ContentOptions opt;
  opt.sharing = Sharing::processes;
  opt.lease = std::chrono::milliseconds(300);
  const pid_t a = spawn([&] {
    Store cs(dir, opt);
    cs.get_or_compute(key, [&] {
      a_events.send('C');
      never.next(60000);  // blocks until killed
      return Node{"A", {}};
    });
    return 4;
  });
  REQUIRE(a_events.next() == 'C');
  const pid_t b = spawn([&] {
    ContentOptions bopt = opt;
    bopt.store.logger = signal_on(b_events);
    Store cs(dir, bopt);
    Node v = cs.get_or_compute(key, [] { return Node{"B", {}}; });
    auto st = cs.stats();
    b_events.send(v.name == "B" && st.takeovers == 1 && st.computations == 1 && st.waits == 1 ? 'R' : 'X');
    return 0;
  });
  CHECK(b_events.next() == 'W');  // B waits while A's heartbeat is fresh
  {
    Store cs(dir, opt);
    CHECK(cs.status(key) == ComputeStatus::running);
  }
  ::kill(a, SIGKILL);
  CHECK(exit_code(a) == 128 + SIGKILL);
  CHECK(b_events.next() == 'T');  // after the lease B takes over
  CHECK(b_events.next() == 'R');
  CHECK(exit_code(b) == 0);
  Store cs(dir, opt);
  CHECK(cs.get_or_compute(key, [] { return Node{"C", {}}; }).name == "B");
}

TEST_CASE("across processes: a failure reaches the waiter as ComputeError, a live owner times the waiter out",
          "[content][single-flight][processes]") {
  // Two ContentStore objects in one process coordinate exactly as two processes do.
  const auto dir = fresh_dir("processes-errors");
  Pipe events;
  ContentOptions opt;
  opt.sharing = Sharing::processes;
  ContentOptions waiter_opt = opt;
  waiter_opt.store.logger = signal_on(events);
  Store owner(dir, opt), waiter(dir, waiter_opt);
  const Digest key = stowage::sha256("fails elsewhere");
  Pipe computing;
  std::thread t([&] {
    try {
      owner.get_or_compute(key, [&]() -> Node {
        computing.send('C');
        events.next();  // the waiter's 'W'
        throw std::runtime_error("disk on fire");
      });
    } catch (const std::runtime_error&) {
    }
  });
  REQUIRE(computing.next() == 'C');
  try {
    waiter.get_or_compute(key, [] { return Node{"waiter", {}}; });
    FAIL("no ComputeError");
  } catch (const stowage::ComputeError& e) {
    CHECK(std::string(e.what()).find("disk on fire") != std::string::npos);
  }
  t.join();
  CHECK(waiter.status(key) == ComputeStatus::failed);
  // A fresh call retries the failed computation.
  CHECK(waiter.get_or_compute(key, [] { return Node{"retried", {}}; }).name == "retried");

  const Digest slow = stowage::sha256("slow elsewhere");
  ContentOptions impatient = opt;
  impatient.wait_timeout = std::chrono::milliseconds(100);
  Store third(dir, impatient);
  Gate gate;
  std::thread t2([&] { owner.get_or_compute(slow, [&] { return gate.hold("slow"); }); });
  gate.wait_started();
  CHECK_THROWS_AS(third.get_or_compute(slow, [] { return Node{"never", {}}; }), stowage::TimeoutError);
  gate.open();
  t2.join();
  CHECK(third.get_or_compute(slow, [] { return Node{"never", {}}; }).name == "slow");
}

TEST_CASE("collect keeps what the roots reach and removes the rest", "[content][gc]") {
  const auto dir = fresh_dir("gc");
  Store cs(dir, {}, children_of);
  const Digest leaf1 = cs.put(Node{"leaf1", {}});
  const Digest leaf2 = cs.put(Node{"leaf2", {}});
  const Digest mid = cs.put(Node{"mid", {leaf1, leaf2}});
  const Digest top = cs.put(Node{"top", {mid}});
  const Digest other = cs.put(Node{"other", {leaf2}});
  std::vector<Digest> garbage;
  for (int i = 0; i < 600; ++i) garbage.push_back(cs.put(Node{"garbage " + std::to_string(i), {leaf1}}));
  CHECK(cs.get_or_compute("a result", [] { return Node{"computed", {}}; }).name == "computed");
  cs.pin("release", top);
  cs.pin("other", other);
  CHECK_THROWS_AS(cs.pin("missing", stowage::sha256("nope")), stowage::ValidationError);
  CHECK(cs.pins().size() == 2);

  // Everything is younger than an hour: nothing goes.
  auto young = cs.collect({.older_than = std::chrono::hours(1)});
  CHECK(young.removed == 0);
  CHECK(young.kept_young == 601);

  int steps = 0;
  auto r = cs.collect({.step = 100, .on_step = [&](const stowage::GcReport&) { ++steps; }});
  CHECK(r.reachable == 5);
  CHECK(r.removed == 601);
  CHECK(r.memos_removed == 1);
  CHECK(steps == 7);
  CHECK(cs.count() == 5);
  for (const Digest& d : {leaf1, leaf2, mid, top, other}) CHECK(cs.get(d));
  CHECK_FALSE(cs.contains(garbage[0]));
  CHECK(cs.status(stowage::sha256("a result")) == ComputeStatus::none);

  CHECK(cs.unpin("release"));
  CHECK_FALSE(cs.unpin("release"));
  r = cs.collect();
  CHECK(r.removed == 3);  // top, mid, leaf1; leaf2 stays under "other"
  CHECK(cs.count() == 2);
  CHECK(cs.pinned("other") == other);
  CHECK(cs.unpin("other"));
  CHECK(cs.collect().removed == 2);  // no roots: removal by age (here: everything)
  CHECK(cs.count() == 0);
}

TEST_CASE("collect with Sharing::processes, while another process's store object waits", "[content][gc][processes]") {
  const auto dir = fresh_dir("gc-processes");
  ContentOptions opt;
  opt.sharing = Sharing::processes;
  Store a(dir, opt, children_of), b(dir, opt, children_of);  // coordinate as two processes do
  const Digest leaf = a.put(Node{"leaf", {}});
  const Digest root = b.put(Node{"root", {leaf}});
  for (int i = 0; i < 300; ++i) a.put(Node{"garbage " + std::to_string(i), {leaf}});
  b.pin("root", root);
  std::thread reader([&] {
    for (int i = 0; i < 50; ++i) (void)b.get(leaf);
  });
  auto r = a.collect({.step = 32});
  reader.join();
  CHECK(r.reachable == 2);
  CHECK(r.removed == 300);
  CHECK(b.count() == 2);
  CHECK(b.get(leaf));
  CHECK(a.pins() == std::vector<std::pair<std::string, Digest>>{{"root", root}});
}

TEST_CASE("collect runs beside writers and never removes what they store or pin", "[content][gc]") {
  const auto dir = fresh_dir("gc-concurrent");
  Store cs(dir, {}, children_of);
  std::vector<Node> garbage;
  for (int i = 0; i < 5000; ++i) garbage.push_back(Node{"old garbage " + std::to_string(i), {}});
  cs.put_batch(garbage);
  // A writer stores children and parents and pins the parents while the
  // collection runs (it starts after the collection's first step).
  std::atomic<bool> stop{false};
  Pipe first_step;
  std::vector<std::pair<std::string, Digest>> pinned;
  std::thread writer([&] {
    first_step.next();
    for (int i = 0; !stop; ++i) {
      const Digest child = cs.put(Node{"child " + std::to_string(i), {}});
      const Digest parent = cs.put(Node{"parent " + std::to_string(i), {child}});
      cs.pin("root " + std::to_string(i), parent);
      pinned.emplace_back("root " + std::to_string(i), parent);
    }
  });
  bool signalled = false;
  auto r = cs.collect({.step = 16, .on_step = [&](const stowage::GcReport&) {
                         if (!signalled) first_step.send('S');
                         signalled = true;
                       }});
  stop = true;
  writer.join();
  CHECK(r.removed == 5000);
  INFO(pinned.size() << " roots pinned during the collection");
  for (const auto& [name, d] : pinned) {
    auto v = cs.get(d);
    REQUIRE(v);
    REQUIRE(v->children.size() == 1);
    REQUIRE(cs.get(v->children[0]));
  }
  cs.collect();
  CHECK(cs.count() == 2 * pinned.size());
}

TEST_CASE("a collection killed with SIGKILL loses nothing reachable", "[content][gc]") {
  const auto dir = fresh_dir("gc-crash");
  std::vector<Digest> reachable;
  {
    Store cs(dir, {}, children_of);
    Digest prev = cs.put(Node{"chain 0", {}});
    reachable.push_back(prev);
    for (int i = 1; i < 50; ++i) {
      prev = cs.put(Node{"chain " + std::to_string(i), {prev}});
      reachable.push_back(prev);
    }
    cs.pin("head", prev);
    std::vector<Node> junk;
    for (int i = 0; i < 3000; ++i) junk.push_back(Node{"junk " + std::to_string(i), {reachable[i % 50]}});
    cs.put_batch(junk);
  }
  Pipe steps;
  const pid_t child = spawn([&] {
    Store cs(dir, {}, children_of);
    cs.collect({.step = 50, .on_step = [&](const stowage::GcReport&) { steps.send('S'); }});
    steps.send('E');
    return 0;
  });
  CHECK(steps.next() == 'S');
  CHECK(steps.next() == 'S');
  ::kill(child, SIGKILL);
  exit_code(child);
  Store cs(dir, {}, children_of);
  for (const Digest& d : reachable) REQUIRE(cs.get(d));
  cs.collect();
  CHECK(cs.count() == 50);
  for (const Digest& d : reachable) REQUIRE(cs.get(d));
}
