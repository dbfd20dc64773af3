// Tests of the in-process Lock policies (lock.hpp) and the polling shared
// mutex under ThreadLock and the engine: one writer or many readers at a
// time, whether a waiter gets the lock while polling or after it sleeps;
// try_lock and try_lock_shared refuse while the other side holds it.
// (Locks between processes: file_lock_test.cpp.)
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include <stowage/lock.hpp>

using namespace stowage;

namespace {

// Writers bump two counters, one after the other; a reader that ever sees
// them differ saw a writer's half-done work. Writers hold the lock for a
// short or a long stretch, so waiters get it both while polling and after
// sleeping.
template <class Mutex>
void check_exclusion(Mutex& m) {
  constexpr int kWriters = 2, kReaders = 2, kRounds = 2000;
  std::uint64_t a = 0, b = 0;  // m
  std::atomic<int> torn{0}, writers_left{kWriters};
  std::atomic<std::uint64_t> shared_reads{0}, busy{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] {
      for (int i = 0; i < kRounds; ++i) {
        std::unique_lock g(m);
        ++a;
        // Every 64th hold is long (well past the polls of a waiter).
        const int spin = (i + w) % 64 == 0 ? 20000 : 10;
        for (int s = 0; s < spin; ++s) busy.fetch_add(1, std::memory_order_relaxed);
        ++b;
      }
      writers_left.fetch_sub(1);
    });
  for (int r = 0; r < kReaders; ++r)
    threads.emplace_back([&] {
      while (writers_left.load() > 0) {
        std::shared_lock g(m);
        if (a != b) torn.fetch_add(1);
        shared_reads.fetch_add(1);
      }
    });
  for (auto& t : threads) t.join();
  CHECK(torn.load() == 0);
  CHECK(a == std::uint64_t{kWriters} * kRounds);
  CHECK(b == a);
  CHECK(shared_reads.load() > 0);
}

}  // namespace

TEST_CASE("PollingSharedMutex: one writer or many readers") {
  detail::PollingSharedMutex m;
  check_exclusion(m);
}

TEST_CASE("ThreadLock and ProcessLock: one writer or many readers") {
  ThreadLock t;
  check_exclusion(t);
  ProcessLock p;
  check_exclusion(p);
}

TEST_CASE("PollingSharedMutex: try_lock and try_lock_shared refuse what the other side holds") {
  detail::PollingSharedMutex m;
  m.lock_shared();
  REQUIRE(m.try_lock_shared());  // readers share it
  CHECK_FALSE(m.try_lock());
  m.unlock_shared();
  CHECK_FALSE(m.try_lock());  // one reader left
  m.unlock_shared();
  REQUIRE(m.try_lock());
  CHECK_FALSE(m.try_lock_shared());
  CHECK_FALSE(m.try_lock());
  m.unlock();
  CHECK(m.try_lock_shared());
  m.unlock_shared();
}

TEST_CASE("PollingSharedMutex: a waiter that slept gets the lock when it is released") {
  detail::PollingSharedMutex m;
  m.lock();
  std::atomic<bool> started{false}, got{false};
  std::thread waiter([&] {
    started.store(true);
    m.lock_shared();  // polls, then sleeps until the unlock below
    got.store(true);
    m.unlock_shared();
  });
  while (!started.load()) std::this_thread::yield();
  // Whether the waiter is still polling or already asleep, it cannot have
  // the lock while it is held exclusively.
  CHECK_FALSE(got.load());
  m.unlock();
  waiter.join();
  CHECK(got.load());
}

TEST_CASE("NoLock does nothing, and says so") {
  STATIC_REQUIRE_FALSE(NoLock::thread_safe);
  STATIC_REQUIRE(ThreadLock::thread_safe);
  NoLock n;
  n.lock();
  n.lock();  // no-op: would deadlock a real lock
  n.unlock();
  n.lock_shared();
  n.unlock_shared();
  SUCCEED("NoLock's members return at once");
}
