// Tests for open_files.hpp: the bound on open files, least-recently-used
// closing, erase, put replacing, failed opens, and files outliving the cache's
// reference while a reader holds them.
#include <stowage/open_files.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include <catch2/catch.hpp>

namespace {

using stowage::RandomAccessFile;
using stowage::detail::OpenFileCache;

std::atomic<int> g_open{0};

// A file that counts how many are open and remembers its number.
class CountedFile : public RandomAccessFile {
 public:
  explicit CountedFile(std::uint64_t n) : n_(n), path_(std::to_string(n) + ".chunk") { ++g_open; }
  ~CountedFile() override { --g_open; }
  std::size_t read(std::uint64_t, std::size_t, char*) const override { return 0; }
  std::uint64_t size() const override { return n_; }
  const std::filesystem::path& path() const override { return path_; }

 private:
  std::uint64_t n_;
  std::filesystem::path path_;
};

auto opener(std::uint64_t n, int* calls) {
  return [n, calls] {
    ++*calls;
    return std::make_unique<CountedFile>(n);
  };
}

}  // namespace

TEST_CASE("an open file cache keeps at most its capacity open, closing the least recently used", "[open_files]") {
  REQUIRE(g_open == 0);
  {
    OpenFileCache files(3);
    int calls = 0;
    for (std::uint64_t n = 1; n <= 3; ++n) CHECK(files.get(n, opener(n, &calls))->size() == n);
    CHECK(calls == 3);
    CHECK(files.get(1, opener(1, &calls))->size() == 1);  // a hit; 1 is now the most recent
    CHECK(calls == 3);
    files.get(4, opener(4, &calls));  // closes 2, the least recently used
    CHECK(calls == 4);
    CHECK(g_open == 3);
    CHECK(files.stats().open == 3);
    files.get(2, opener(2, &calls));
    CHECK(calls == 5);  // 2 was closed
    files.get(1, opener(1, &calls));
    CHECK(calls == 5);  // 1 stayed open
    auto st = files.stats();
    CHECK(st.hits == 2);
    CHECK(st.opens == 5);
    CHECK(st.capacity == 3);
  }
  CHECK(g_open == 0);
}

TEST_CASE("erase closes a file; put replaces one; a borrowed file outlives the cache's reference", "[open_files]") {
  OpenFileCache files(2);
  int calls = 0;
  auto held = files.get(7, opener(7, &calls));
  files.erase(7);
  CHECK(files.stats().open == 0);
  CHECK(g_open == 1);  // the reader still has it
  CHECK(held->size() == 7);
  held.reset();
  CHECK(g_open == 0);
  files.erase(42);  // not open: nothing happens

  files.put(5, std::make_shared<CountedFile>(5));
  files.put(5, std::make_shared<CountedFile>(50));
  CHECK(g_open == 1);
  CHECK(files.get(5, opener(5, &calls))->size() == 50);
  CHECK(calls == 1);
}

TEST_CASE("a failed open keeps nothing and propagates; zero capacity is refused", "[open_files]") {
  OpenFileCache files(2);
  CHECK_THROWS_AS(files.get(1, []() -> std::unique_ptr<RandomAccessFile> { throw std::runtime_error("no"); }),
                  std::runtime_error);
  CHECK(files.stats().open == 0);
  CHECK_THROWS_AS(OpenFileCache(0), stowage::ValidationError);
}

TEST_CASE("open_file_limit: a given limit as is; 0 is half the soft RLIMIT_NOFILE within [64, 8192]", "[open_files]") {
  using stowage::detail::open_file_limit;
  CHECK(open_file_limit(7) == 7);
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  const std::size_t auto_limit = open_file_limit(0);
  CHECK(auto_limit >= 64);
  CHECK(auto_limit <= 8192);
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur / 2 >= 64 && limit.rlim_cur / 2 <= 8192)
    CHECK(auto_limit == limit.rlim_cur / 2);
}

TEST_CASE("concurrent borrows keep the bound", "[open_files][threads]") {
  OpenFileCache files(4);
  std::atomic<int> calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < 2000; ++i) {
        std::uint64_t n = (i * 7 + static_cast<std::uint64_t>(t)) % 10;
        auto f = files.get(n, [&] {
          ++calls;
          return std::make_unique<CountedFile>(n);
        });
        if (f->size() != n) throw std::logic_error("wrong file");
      }
    });
  for (auto& th : threads) th.join();
  CHECK(files.stats().open <= 4);
  CHECK(g_open <= 4);
  CHECK(calls > 0);
}
