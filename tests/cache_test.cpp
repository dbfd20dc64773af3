// Tests for cache.hpp: the byte bound under random workloads (every policy),
// LRU behaviour
// against a reference model, scans (touch=false / fill=false), erase_file,
// set_capacity, get_or_load, stats, priorities, a user-written policy, and
// concurrent use.
#include <stowage/cache.hpp>

#include "fifo_eviction.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <list>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/intrusive/list.hpp>
#include <catch2/catch.hpp>

namespace {

using stowage::detail::BlockCache;
using stowage::detail::CacheKey;
using LruCache = BlockCache<stowage::LruEviction>;

// Live Block objects, to check that the cache releases what it drops.
std::atomic<long> g_live_blocks{0};

// A cached object that remembers which key and charge it was made for.
struct Block {
  CacheKey key;
  std::size_t charge = 0;
  int id = 0;
  Block(CacheKey k, std::size_t c, int i) : key(k), charge(c), id(i) { ++g_live_blocks; }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  ~Block() { --g_live_blocks; }
};

std::shared_ptr<const Block> make_block(CacheKey k, std::size_t charge, int id = 0) {
  return std::make_shared<const Block>(k, charge, id);
}

void put(auto& cache, CacheKey k, std::size_t charge, int id = 0) { cache.insert(k, make_block(k, charge, id), charge); }

bool cached(auto& cache, CacheKey k) { return cache.template lookup<Block>(k, false) != nullptr; }

using stowage_test::FifoEviction;

// What a single-shard LRU cache must do, written the slow, obvious way.
class LruModel {
 public:
  explicit LruModel(std::size_t capacity) : capacity_(capacity) {}

  void insert(CacheKey k, std::size_t charge, int id) {
    drop(k);
    if (charge > capacity_) return;
    order_.push_front(k);
    map_[{k.file, k.offset}] = Rec{charge, id, order_.begin()};
    bytes_ += charge;
    ++inserts_;
    shrink();
  }
  // The cached id, or -1.
  int lookup(CacheKey k, bool touch) {
    auto it = map_.find({k.file, k.offset});
    if (it == map_.end()) return -1;
    if (touch) order_.splice(order_.begin(), order_, it->second.pos);
    return it->second.id;
  }
  void erase_file(std::uint64_t file) {
    for (auto it = map_.begin(); it != map_.end();) {
      if (it->first.first == file) {
        bytes_ -= it->second.charge;
        order_.erase(it->second.pos);
        it = map_.erase(it);
      } else {
        ++it;
      }
    }
  }
  void set_capacity(std::size_t c) {
    capacity_ = c;
    shrink();
  }
  std::size_t bytes() const { return bytes_; }
  std::size_t entries() const { return map_.size(); }
  std::uint64_t evictions() const { return evictions_; }
  std::uint64_t inserts() const { return inserts_; }

 private:
  struct Rec {
    std::size_t charge;
    int id;
    std::list<CacheKey>::iterator pos;
  };
  void drop(CacheKey k) {
    auto it = map_.find({k.file, k.offset});
    if (it == map_.end()) return;
    bytes_ -= it->second.charge;
    order_.erase(it->second.pos);
    map_.erase(it);
  }
  void shrink() {
    while (bytes_ > capacity_) {
      drop(order_.back());
      ++evictions_;
    }
  }
  std::size_t capacity_;
  std::size_t bytes_ = 0;
  std::uint64_t evictions_ = 0;
  std::uint64_t inserts_ = 0;
  std::list<CacheKey> order_;  // most recent first
  std::map<std::pair<std::uint64_t, std::uint64_t>, Rec> map_;
};

}  // namespace

TEST_CASE("a cache needs at least one shard", "[cache]") {
  CHECK_THROWS_AS(LruCache(1000, 0), stowage::ValidationError);
  LruCache one(1000, 1);
  CHECK(one.capacity() == 1000);
}

TEMPLATE_TEST_CASE("bytes never exceed capacity under a random workload", "[cache]", stowage::LruEviction,
                   stowage::SieveEviction, stowage::S3FifoEviction, stowage::WTinyLfuEviction,
                   stowage::StaticWTinyLfuEviction, stowage::ShadowTinyLfuEviction) {
  const std::size_t capacity = 64 * 1024;
  BlockCache<TestType> cache(capacity);  // 16 shards of 4 KiB
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<std::uint64_t> file_dist(0, 15), offset_dist(0, 255);
  std::uniform_int_distribution<std::size_t> charge_dist(1, 5000);  // some exceed a shard's 4 KiB
  std::uniform_int_distribution<int> op_dist(0, 99);
  std::size_t over = 0, wrong = 0;
  std::uint64_t lookups = 0;
  for (int i = 0; i < 100000; ++i) {
    const CacheKey k{file_dist(rng), offset_dist(rng) * 4096};
    const int op = op_dist(rng);
    if (op < 45) {
      const std::size_t charge = charge_dist(rng);
      put(cache, k, charge);
      const auto st = cache.stats();
      if (st.bytes > capacity || st.bytes > st.capacity) ++over;
    } else if (op < 90) {
      ++lookups;
      auto b = cache.template lookup<Block>(k, op % 2 == 0);
      if (b && !(b->key == k)) ++wrong;
    } else if (op < 99) {
      ++lookups;
      const std::size_t charge = charge_dist(rng);
      auto b = cache.template get_or_load<Block>(k, [&] { return std::pair{make_block(k, charge), charge}; });
      if (!b || !(b->key == k)) ++wrong;
      if (cache.stats().bytes > capacity) ++over;
    } else {
      cache.erase_file(file_dist(rng));
    }
  }
  CHECK(over == 0);
  CHECK(wrong == 0);
  const auto st = cache.stats();
  CHECK(st.bytes <= capacity);
  CHECK(st.capacity == capacity);
  CHECK(st.hits + st.misses == lookups);
  CHECK(st.evictions > 0);
  CHECK(st.entries > 0);

  // The charges of what the cache holds add up to stats().bytes.
  std::size_t sum = 0, count = 0;
  for (std::uint64_t f = 0; f < 16; ++f)
    for (std::uint64_t o = 0; o < 256; ++o)
      if (auto b = cache.template lookup<Block>({f, o * 4096}, false)) {
        sum += b->charge;
        ++count;
      }
  CHECK(sum == cache.stats().bytes);
  CHECK(count == cache.stats().entries);
}

TEST_CASE("a single-shard LRU cache behaves like the reference model", "[cache][lru]") {
  const std::size_t capacity = 1000;
  LruCache cache(capacity, 1);
  LruModel model(capacity);
  std::mt19937_64 rng(777);
  std::uniform_int_distribution<std::uint64_t> file_dist(0, 3), offset_dist(0, 15);
  std::uniform_int_distribution<std::size_t> charge_dist(0, 300);
  std::uniform_int_distribution<int> op_dist(0, 199);
  int next_id = 1;
  std::size_t mismatches = 0;
  for (int i = 0; i < 50000; ++i) {
    const CacheKey k{file_dist(rng), offset_dist(rng)};
    const int op = op_dist(rng);
    if (op < 80) {
      std::size_t charge = charge_dist(rng);
      if (op == 0) charge = 1500;  // larger than the shard: returned, not kept
      const int id = next_id++;
      put(cache, k, charge, id);
      model.insert(k, charge, id);
    } else if (op < 190) {
      const bool touch = op < 150;
      auto b = cache.lookup<Block>(k, touch);
      const int expect = model.lookup(k, touch);
      if ((b ? b->id : -1) != expect) ++mismatches;
    } else if (op < 197) {
      cache.erase_file(k.file);
      model.erase_file(k.file);
    } else {
      const std::size_t c = 200 + static_cast<std::size_t>(op_dist(rng)) * 5;
      cache.set_capacity(c);
      model.set_capacity(c);
    }
    const auto st = cache.stats();
    if (st.bytes != model.bytes() || st.entries != model.entries()) ++mismatches;
  }
  CHECK(mismatches == 0);
  const auto st = cache.stats();
  CHECK(st.evictions == model.evictions());
  CHECK(st.inserts == model.inserts());
}

TEST_CASE("LRU evicts the least recently used entry; touch=false does not count as use", "[cache][lru]") {
  LruCache cache(30, 1);
  const CacheKey a{1, 0}, b{1, 10}, c{1, 20}, d{1, 30};
  put(cache, a, 10);
  put(cache, b, 10);
  put(cache, c, 10);

  SECTION("a touched entry survives") {
    CHECK(cache.lookup<Block>(a) != nullptr);
    put(cache, d, 10);
    CHECK(cached(cache, a));
    CHECK_FALSE(cached(cache, b));
  }
  SECTION("an untouched lookup leaves the order alone") {
    CHECK(cache.lookup<Block>(a, false) != nullptr);
    put(cache, d, 10);
    CHECK_FALSE(cached(cache, a));
    CHECK(cached(cache, b));
  }
  SECTION("a get_or_load hit with fill=false leaves the order alone; fill=true counts as use") {
    int loads = 0;
    auto load = [&] {
      ++loads;
      return std::pair{make_block(a, 10), std::size_t{10}};
    };
    CHECK(cache.get_or_load<Block>(a, load, /*fill=*/false) != nullptr);
    put(cache, d, 10);
    CHECK_FALSE(cached(cache, a));
    CHECK(cache.get_or_load<Block>(b, load, /*fill=*/true) != nullptr);
    put(cache, a, 10);
    CHECK(cached(cache, b));
    CHECK_FALSE(cached(cache, c));
    CHECK(loads == 0);
  }
  SECTION("one large insert evicts as many victims as it needs") {
    put(cache, d, 25);
    CHECK_FALSE(cached(cache, a));
    CHECK_FALSE(cached(cache, b));
    CHECK_FALSE(cached(cache, c));
    CHECK(cached(cache, d));
    CHECK(cache.stats().bytes == 25);
    CHECK(cache.stats().evictions == 3);
  }
  SECTION("replacing an entry updates its charge and value") {
    cache.insert(b, make_block(b, 5, 42), 5);
    CHECK(cache.stats().bytes == 25);
    CHECK(cache.stats().entries == 3);
    CHECK(cache.lookup<Block>(b)->id == 42);
    put(cache, d, 10);  // 35 > 30: evicts a, the oldest
    CHECK_FALSE(cached(cache, a));
    CHECK(cached(cache, b));
    CHECK(cache.stats().bytes == 25);
  }
  SECTION("an object larger than the shard is returned but not kept, and drops the old entry") {
    auto big = cache.get_or_load<Block>(a, [&] { return std::pair{make_block(a, 31, 7), std::size_t{31}}; });
    REQUIRE(big != nullptr);  // a hit: the old a
    CHECK(big->id == 0);
    put(cache, a, 31);
    CHECK_FALSE(cached(cache, a));
    CHECK(cached(cache, b));
    CHECK(cached(cache, c));
    CHECK(cache.stats().bytes == 20);
    const CacheKey e{2, 0};
    auto loaded = cache.get_or_load<Block>(e, [&] { return std::pair{make_block(e, 100, 9), std::size_t{100}}; });
    REQUIRE(loaded != nullptr);
    CHECK(loaded->id == 9);
    CHECK_FALSE(cached(cache, e));
  }
  SECTION("a null object is not stored") {
    cache.insert(a, nullptr, 1);
    CHECK_FALSE(cached(cache, a));
    CHECK(cache.stats().entries == 2);
  }
}

TEST_CASE("a hot set survives a stream of one-time reads with fill=false", "[cache][lru]") {
  const std::size_t charge = 100;
  LruCache cache(50 * charge, 1);
  std::vector<CacheKey> hot;
  for (std::uint64_t i = 0; i < 20; ++i) hot.push_back({1, i * 4096});
  int loads = 0;
  auto loader = [&](CacheKey k) {
    return [&loads, k, charge] {
      ++loads;
      return std::pair{make_block(k, charge), charge};
    };
  };
  for (const auto& k : hot) cache.get_or_load<Block>(k, loader(k));
  REQUIRE(loads == 20);

  SECTION("fill=false: the stream leaves the cache as it was") {
    for (std::uint64_t i = 0; i < 10000; ++i) {
      const CacheKey k{2, i * 4096};
      auto b = cache.get_or_load<Block>(k, loader(k), /*fill=*/false);
      REQUIRE(b != nullptr);
      if (i % 100 == 0) cache.get_or_load<Block>(hot[(i / 100) % hot.size()], loader(hot[0]));
    }
    CHECK(loads == 20 + 10000);
    for (const auto& k : hot) CHECK(cached(cache, k));
    CHECK_FALSE(cached(cache, CacheKey{2, 0}));
    CHECK(cache.stats().entries == 20);
    CHECK(cache.stats().evictions == 0);
  }
  SECTION("fill=true: the same stream pushes the hot set out") {
    for (std::uint64_t i = 0; i < 10000; ++i) {
      const CacheKey k{2, i * 4096};
      cache.get_or_load<Block>(k, loader(k));
    }
    for (const auto& k : hot) CHECK_FALSE(cached(cache, k));
    CHECK(cache.stats().entries == 50);
  }
}

TEST_CASE("erase_file drops every entry of one file and nothing else", "[cache]") {
  LruCache cache(1 << 20);
  for (std::uint64_t f = 1; f <= 3; ++f)
    for (std::uint64_t o = 0; o < 100; ++o) put(cache, {f, o * 512}, 100);
  REQUIRE(cache.stats().entries == 300);
  cache.erase_file(2);
  CHECK(cache.stats().entries == 200);
  CHECK(cache.stats().bytes == 200 * 100);
  CHECK(cache.stats().evictions == 0);
  for (std::uint64_t o = 0; o < 100; ++o) {
    CHECK(cached(cache, {1, o * 512}));
    CHECK_FALSE(cached(cache, {2, o * 512}));
    CHECK(cached(cache, {3, o * 512}));
  }
  cache.erase_file(2);   // again: nothing to do
  cache.erase_file(99);  // never cached
  CHECK(cache.stats().entries == 200);
  put(cache, {2, 0}, 100);  // the file's number can be cached again
  CHECK(cached(cache, {2, 0}));
  cache.erase_file(1);
  cache.erase_file(2);
  cache.erase_file(3);
  CHECK(cache.stats().entries == 0);
  CHECK(cache.stats().bytes == 0);
}

TEMPLATE_TEST_CASE("erase_if drops exactly the entries its predicate names", "[cache]", stowage::LruEviction,
                   FifoEviction) {
  BlockCache<TestType> cache(1 << 20, 4);
  // Offsets with the top bit set stand for another kind of block (as the
  // engine's stored blocks), at other charges.
  constexpr std::uint64_t kOther = std::uint64_t{1} << 63;
  for (std::uint64_t f = 1; f <= 3; ++f)
    for (std::uint64_t o = 0; o < 100; ++o) {
      put(cache, {f, o}, 100);
      put(cache, {f, kOther | o}, 70);
    }
  REQUIRE(cache.stats().entries == 600);
  const auto held = cache.template lookup<Block>({2, kOther | 5});  // a reader keeps one of them
  REQUIRE(held != nullptr);
  const long live_before = g_live_blocks.load();
  CHECK(cache.erase_if([](const CacheKey& k) { return (k.offset & kOther) != 0; }) == 300);
  CHECK(cache.stats().entries == 300);
  CHECK(cache.stats().bytes == 300 * 100);
  CHECK(cache.stats().evictions == 0);
  // Every dropped object but the held one is gone; the held one still reads.
  CHECK(g_live_blocks.load() == live_before - 299);
  CHECK(held->key == CacheKey{2, kOther | 5});
  for (std::uint64_t f = 1; f <= 3; ++f)
    for (std::uint64_t o = 0; o < 100; ++o) {
      CHECK(cached(cache, {f, o}));
      CHECK_FALSE(cached(cache, {f, kOther | o}));
    }
  CHECK(cache.erase_if([](const CacheKey&) { return false; }) == 0);
  // A dropped key can be cached again, and the cache still evicts by its
  // policy and budget afterwards.
  put(cache, {2, kOther | 5}, 70);
  CHECK(cached(cache, {2, kOther | 5}));
  for (std::uint64_t o = 0; o < 20000; ++o) put(cache, {9, o}, 100);
  CHECK(cache.stats().bytes <= cache.capacity());
  CHECK(cache.stats().evictions > 0);
  CHECK(cache.erase_if([](const CacheKey& k) { return k.file == 9; }) > 0);
  const auto left = cache.stats().entries;
  CHECK(cache.erase_if([](const CacheKey&) { return true; }) == left);
  CHECK(cache.stats().entries == 0);
  CHECK(cache.stats().bytes == 0);
}

TEST_CASE("set_capacity shrinks by evicting and grows without evicting", "[cache]") {
  SECTION("one shard: the most recent entries survive a shrink") {
    LruCache cache(1000, 1);
    for (std::uint64_t i = 0; i < 10; ++i) put(cache, {1, i}, 100);
    cache.lookup<Block>({1, 0});  // now the most recent
    cache.set_capacity(350);
    CHECK(cache.capacity() == 350);
    CHECK(cache.stats().capacity == 350);
    CHECK(cache.stats().bytes == 300);
    CHECK(cache.stats().evictions == 7);
    CHECK(cached(cache, {1, 0}));
    CHECK(cached(cache, {1, 9}));
    CHECK(cached(cache, {1, 8}));
    CHECK_FALSE(cached(cache, {1, 7}));
    cache.set_capacity(0);
    CHECK(cache.stats().entries == 0);
    put(cache, {1, 1}, 1);
    CHECK(cache.stats().entries == 0);
    cache.set_capacity(1000);
    put(cache, {1, 1}, 100);
    CHECK(cache.stats().entries == 1);
  }
  SECTION("sixteen shards: bytes stay under the new capacity") {
    LruCache cache(16 * 1000);
    for (std::uint64_t i = 0; i < 1000; ++i) put(cache, {i % 7, i}, 50);
    CHECK(cache.stats().bytes <= 16 * 1000);
    cache.set_capacity(16 * 300);
    CHECK(cache.stats().bytes <= 16 * 300);
    CHECK(cache.stats().bytes > 0);
    cache.set_capacity(16 * 300 + 5);  // shares differ by at most one byte
    CHECK(cache.capacity() == 16 * 300 + 5);
  }
}

TEST_CASE("get_or_load calls load once on a miss and never on a hit", "[cache]") {
  LruCache cache(10000, 4);
  const CacheKey k{5, 64};
  int loads = 0;
  auto load = [&] {
    ++loads;
    return std::pair{make_block(k, 100, 3), std::size_t{100}};
  };
  auto first = cache.get_or_load<Block>(k, load);
  REQUIRE(first != nullptr);
  CHECK(first->id == 3);
  CHECK(loads == 1);
  auto second = cache.get_or_load<Block>(k, load);
  CHECK(second == first);
  CHECK(loads == 1);
  auto third = cache.get_or_load<Block>(k, load, /*fill=*/false);
  CHECK(third == first);
  CHECK(loads == 1);

  SECTION("fill=false on a miss loads but does not insert") {
    const CacheKey other{5, 128};
    int n = 0;
    auto b = cache.get_or_load<Block>(other, [&] {
      ++n;
      return std::pair{make_block(other, 10), std::size_t{10}};
    }, false);
    CHECK(b != nullptr);
    CHECK(n == 1);
    CHECK_FALSE(cached(cache, other));
  }
  SECTION("a throwing load inserts nothing and propagates") {
    const CacheKey other{6, 0};
    const auto before = cache.stats();
    CHECK_THROWS_AS(cache.get_or_load<Block>(other,
                                             [&]() -> std::pair<std::shared_ptr<const Block>, std::size_t> {
                                               throw std::runtime_error("disk on fire");
                                             }),
                    std::runtime_error);
    const auto after = cache.stats();
    CHECK(after.entries == before.entries);
    CHECK(after.bytes == before.bytes);
    CHECK(after.inserts == before.inserts);
    CHECK_FALSE(cached(cache, other));
    // The key can still be loaded afterwards.
    auto b = cache.get_or_load<Block>(other, [&] { return std::pair{make_block(other, 10), std::size_t{10}}; });
    CHECK(b != nullptr);
    CHECK(cached(cache, other));
  }
  SECTION("a load returning null inserts nothing") {
    const CacheKey other{7, 0};
    auto b = cache.get_or_load<Block>(other, [] { return std::pair{std::shared_ptr<const Block>(), std::size_t{10}}; });
    CHECK(b == nullptr);
    CHECK_FALSE(cached(cache, other));
  }
}

TEST_CASE("stats count hits, misses, evictions and inserts", "[cache]") {
  LruCache cache(300, 1);
  CHECK(cache.stats().hits == 0);
  CHECK(cache.stats().misses == 0);
  CHECK(cache.lookup<Block>({1, 0}) == nullptr);
  put(cache, {1, 0}, 100);
  put(cache, {1, 1}, 100);
  put(cache, {1, 2}, 100);
  CHECK(cache.lookup<Block>({1, 0}) != nullptr);
  CHECK(cache.lookup<Block>({1, 1}, false) != nullptr);
  put(cache, {1, 3}, 100);  // evicts {1,1}, the least recent (the touch=false hit did not count)
  put(cache, {1, 4}, 200);  // evicts {1,2}, then {1,0}
  auto st = cache.stats();
  CHECK(st.hits == 2);
  CHECK(st.misses == 1);
  CHECK(st.inserts == 5);
  CHECK(st.evictions == 3);
  CHECK(st.entries == 2);
  CHECK(st.bytes == 300);
  CHECK(st.capacity == 300);
  int calls = 0;
  cache.get_or_load<Block>({1, 9}, [&] {
    ++calls;
    return std::pair{make_block({1, 9}, 1), std::size_t{1}};
  });
  cache.get_or_load<Block>({1, 9}, [&] {
    ++calls;
    return std::pair{make_block({1, 9}, 1), std::size_t{1}};
  });
  st = cache.stats();
  CHECK(calls == 1);
  CHECK(st.misses == 2);
  CHECK(st.hits == 3);
  CHECK(st.inserts == 6);
  CHECK(st.evictions == 4);
}

TEST_CASE("high-priority entries survive a stream of low ones up to three quarters of the capacity", "[cache]") {
  using stowage::detail::CachePriority;
  LruCache cache(1000, 1);
  auto put_high = [&](CacheKey k, std::size_t charge) {
    cache.insert(k, make_block(k, charge), charge, CachePriority::high);
  };
  for (std::uint64_t f = 0; f < 5; ++f) put_high({f, 0}, 100);  // 500 bytes of metadata
  for (std::uint64_t o = 0; o < 50; ++o) put(cache, {9, o}, 100);  // a stream of blocks
  for (std::uint64_t f = 0; f < 5; ++f) CHECK(cached(cache, {f, 0}));
  CHECK(cache.stats().high_bytes == 500);
  CHECK(cache.stats().bytes <= 1000);
  CHECK(cached(cache, {9, 49}));   // the newest blocks fill the rest
  CHECK_FALSE(cached(cache, {9, 0}));

  SECTION("past three quarters, the least recently used high entry goes, not the blocks") {
    for (std::uint64_t f = 5; f < 8; ++f) put_high({f, 0}, 100);  // 800 bytes wanted
    auto st = cache.stats();
    CHECK(st.high_bytes <= 750 + 100);
    CHECK(st.bytes <= 1000);
    CHECK_FALSE(cached(cache, {0, 0}));
    CHECK(cached(cache, {7, 0}));
    CHECK(cached(cache, {9, 49}));
  }
  SECTION("with no low entry left, high ones are evicted to fit") {
    LruCache only_high(300, 1);
    for (std::uint64_t f = 0; f < 4; ++f)
      only_high.insert({f, 0}, make_block({f, 0}, 100), 100, CachePriority::high);
    CHECK(only_high.stats().bytes == 300);
    CHECK_FALSE(cached(only_high, {0, 0}));
  }
  SECTION("replacing an entry moves it to the new priority's queue and counts") {
    put(cache, {0, 0}, 100);  // was high, now low
    CHECK(cache.stats().high_bytes == 400);
    for (std::uint64_t o = 50; o < 60; ++o) put(cache, {9, o}, 100);
    CHECK_FALSE(cached(cache, {0, 0}));
    CHECK(cached(cache, {1, 0}));
  }
  SECTION("erase_file takes high entries out of the counts") {
    cache.erase_file(2);
    CHECK(cache.stats().high_bytes == 400);
  }
}

TEMPLATE_TEST_CASE("every policy keeps metadata through a stream of blocks and fills the rest", "[cache]",
                   stowage::SieveEviction, stowage::S3FifoEviction, stowage::WTinyLfuEviction,
                   stowage::StaticWTinyLfuEviction, stowage::ShadowTinyLfuEviction) {
  using stowage::detail::CachePriority;
  BlockCache<TestType> cache(1000, 1);
  for (std::uint64_t f = 0; f < 5; ++f) cache.insert({f, 0}, make_block({f, 0}, 100), 100, CachePriority::high);
  for (std::uint64_t o = 0; o < 500; ++o) {
    put(cache, {9, o}, 100);
    CHECK(cache.stats().bytes <= 1000);
  }
  for (std::uint64_t f = 0; f < 5; ++f) CHECK(cached(cache, {f, 0}));
  const auto st = cache.stats();
  CHECK(st.high_bytes == 500);
  CHECK(st.bytes - st.high_bytes == 500);  // the low queue fills the rest exactly
}

TEMPLATE_TEST_CASE("a hot set survives a one-hit scan ten times the cache through the real cache", "[cache]",
                   stowage::S3FifoEviction, stowage::WTinyLfuEviction, stowage::StaticWTinyLfuEviction,
                   stowage::ShadowTinyLfuEviction) {
  BlockCache<TestType> cache(100 * 64, 1);
  // A hot set of 50 blocks, each read many times.
  for (int round = 0; round < 20; ++round)
    for (std::uint64_t o = 0; o < 50; ++o)
      if (cache.template lookup<Block>({1, o}) == nullptr) put(cache, {1, o}, 64);
  // A scan of 2000 blocks, each read once; one hot read after every four
  // scan blocks, so a hot block is read again only after 200 scan blocks,
  // twice what the cache holds (LRU loses every one; see below).
  std::size_t hot_misses = 0;
  for (std::uint64_t o = 0; o < 2000; ++o) {
    put(cache, {2, o}, 64);
    if (o % 4 != 3) continue;
    const CacheKey hot{1, (o / 4) % 50};
    if (cache.template lookup<Block>(hot) == nullptr) {
      ++hot_misses;
      put(cache, hot, 64);
    }
  }
  CHECK(hot_misses <= 25);  // of 500 hot reads
  std::size_t hot_held = 0;
  for (std::uint64_t o = 0; o < 50; ++o) hot_held += cached(cache, {1, o}) ? 1 : 0;
  CHECK(hot_held >= 40);
}

TEST_CASE("LRU loses the hot set to the same scan (the test above can fail)", "[cache][lru]") {
  LruCache cache(100 * 64, 1);
  for (std::uint64_t o = 0; o < 50; ++o) put(cache, {1, o}, 64);
  std::size_t hot_misses = 0;
  for (std::uint64_t o = 0; o < 2000; ++o) {
    put(cache, {2, o}, 64);
    if (o % 4 != 3) continue;
    const CacheKey hot{1, (o / 4) % 50};
    if (cache.lookup<Block>(hot) == nullptr) {
      ++hot_misses;
      put(cache, hot, 64);
    }
  }
  CHECK(hot_misses >= 450);  // all but the first few hot reads
}

TEST_CASE("lookups find exactly the entries held through growth, replacement and removal", "[cache]") {
  // Exercises the shard's open-addressing table: many entries (growth),
  // removals from the middle of probe runs (erase_file, eviction), re-inserts.
  LruCache cache(1 << 30, 1);
  std::set<std::pair<std::uint64_t, std::uint64_t>> held;
  std::mt19937_64 rng(5);
  for (int step = 0; step < 60000; ++step) {
    const std::uint64_t f = rng() % 64, o = rng() % 128;
    switch (rng() % 4) {
      case 0:
      case 1:
        put(cache, {f, o}, 1);
        held.insert({f, o});
        break;
      case 2:
        cache.insert({f, o}, nullptr, 0);  // drops the entry
        held.erase({f, o});
        break;
      default:
        if (rng() % 50 == 0) {
          cache.erase_file(f);
          for (auto it = held.begin(); it != held.end();) it = it->first == f ? held.erase(it) : std::next(it);
        }
    }
    if (step % 997 == 0) {
      for (std::uint64_t ff = 0; ff < 64; ++ff)
        for (std::uint64_t oo = 0; oo < 128; ++oo) REQUIRE(cached(cache, {ff, oo}) == held.count({ff, oo}) > 0);
      REQUIRE(cache.stats().entries == held.size());
    }
  }
}

TEST_CASE("objects outlive eviction while readers hold them, and are released after", "[cache]") {
  const long base = g_live_blocks.load();
  {
    LruCache cache(100, 1);
    put(cache, {1, 0}, 60);
    auto held = cache.lookup<Block>({1, 0});
    put(cache, {1, 1}, 60);  // evicts {1,0}
    CHECK_FALSE(cached(cache, {1, 0}));
    REQUIRE(held != nullptr);
    CHECK(held->key == CacheKey{1, 0});
    CHECK(held.use_count() == 1);  // only the reader holds it now
    CHECK(g_live_blocks.load() == base + 2);
    held.reset();
    CHECK(g_live_blocks.load() == base + 1);
    for (std::uint64_t i = 0; i < 10; ++i) put(cache, {2, i}, 10);
  }
  CHECK(g_live_blocks.load() == base);  // the destructor dropped the rest
}

TEST_CASE("a hit's object outlives an insert over its key, erase_file and the cache", "[cache]") {
  const long base = g_live_blocks.load();
  std::shared_ptr<const Block> replaced;
  std::shared_ptr<const Block> erased;
  {
    LruCache cache(1000, 1);
    put(cache, {1, 0}, 10, 1);
    put(cache, {2, 0}, 10, 3);
    replaced = cache.lookup<Block>({1, 0});
    put(cache, {1, 0}, 20, 2);  // a new entry for the key; the reader keeps the old one
    REQUIRE(replaced != nullptr);
    CHECK(replaced->id == 1);
    CHECK(cache.lookup<Block>({1, 0})->id == 2);
    CHECK(cache.stats().bytes == 30);
    CHECK(cache.stats().entries == 2);
    erased = cache.lookup<Block>({2, 0});
    cache.erase_file(2);
    CHECK_FALSE(cached(cache, {2, 0}));
    REQUIRE(erased != nullptr);
    CHECK(erased->id == 3);
    CHECK(g_live_blocks.load() == base + 3);
  }
  CHECK(g_live_blocks.load() == base + 2);  // the cache is gone, the readers' objects are not
  CHECK(replaced->key == CacheKey{1, 0});
  CHECK(erased->key == CacheKey{2, 0});
  replaced.reset();
  erased.reset();
  CHECK(g_live_blocks.load() == base);
}

TEST_CASE("a user-written eviction policy works with the cache", "[cache][fifo]") {
  BlockCache<FifoEviction> cache(30, 1);
  static_assert(std::is_same_v<decltype(cache)::eviction_type, FifoEviction>);
  const CacheKey a{1, 0}, b{1, 1}, c{1, 2}, d{1, 3};
  put(cache, a, 10);
  put(cache, b, 10);
  put(cache, c, 10);
  CHECK(cache.lookup<Block>(a) != nullptr);  // FIFO ignores the hit
  put(cache, d, 10);
  CHECK_FALSE(cached(cache, a));
  CHECK(cached(cache, b));
  CHECK(cached(cache, c));
  CHECK(cached(cache, d));
  cache.erase_file(1);
  CHECK(cache.stats().entries == 0);
  for (std::uint64_t i = 0; i < 1000; ++i) put(cache, {i % 3, i}, 1 + i % 7);
  CHECK(cache.stats().bytes <= 30);
}

TEST_CASE("a user-written policy with hook_for<Entry> works with the cache", "[cache][hook_for]") {
  BlockCache<stowage_test::LinkedLifoEviction> cache(30, 1);
  const CacheKey a{1, 0}, b{1, 1}, c{1, 2}, d{1, 3};
  put(cache, a, 10);
  put(cache, b, 10);
  put(cache, c, 10);
  put(cache, d, 10);  // over capacity: the newest goes first, which is d itself
  CHECK(cached(cache, a));
  CHECK(cached(cache, b));
  CHECK(cached(cache, c));
  CHECK_FALSE(cached(cache, d));
  cache.erase_file(1);
  CHECK(cache.stats().entries == 0);
  for (std::uint64_t i = 0; i < 1000; ++i) put(cache, {i % 3, i}, 1 + i % 7);
  CHECK(cache.stats().bytes <= 30);
}

// ShadowTinyLfuEviction: its shards share one simulation (a mutex of its own).
TEMPLATE_TEST_CASE("concurrent readers, writers and erase_file keep the cache consistent", "[cache][threads]",
                   stowage::LruEviction, stowage::ShadowTinyLfuEviction) {
  constexpr int kThreads = 8;
  constexpr int kOps = 20000;
  constexpr std::size_t kCapacity = 256 * 1024;
  constexpr std::uint64_t kFiles = 8, kOffsets = 256;
  BlockCache<TestType> cache(kCapacity);

  struct Result {
    std::uint64_t lookups = 0;  // lookup and get_or_load calls
    std::uint64_t wrong = 0;    // a returned object for another key, or a missing one
    std::uint64_t over = 0;     // stats().bytes above the largest capacity ever set
    std::uint64_t loads = 0;
  };
  std::vector<Result> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&cache, &results, t] {
      Result& r = results[static_cast<std::size_t>(t)];
      std::mt19937_64 rng(1000 + static_cast<std::uint64_t>(t));
      std::uniform_int_distribution<std::uint64_t> file_dist(0, kFiles - 1), offset_dist(0, kOffsets - 1);
      std::uniform_int_distribution<std::size_t> charge_dist(64, 4096);
      std::uniform_int_distribution<int> op_dist(0, 99);
      for (int i = 0; i < kOps; ++i) {
        const CacheKey k{file_dist(rng), offset_dist(rng) * 4096};
        const int op = op_dist(rng);
        if (op < 60) {
          ++r.lookups;
          const std::size_t charge = charge_dist(rng);
          auto b = cache.template get_or_load<Block>(
              k,
              [&] {
                ++r.loads;
                return std::pair{make_block(k, charge), charge};
              },
              op < 50);
          if (!b || !(b->key == k)) ++r.wrong;
        } else if (op < 80) {
          put(cache, k, charge_dist(rng));
        } else if (op < 95) {
          ++r.lookups;
          auto b = cache.template lookup<Block>(k, op % 2 == 0);
          if (b && !(b->key == k)) ++r.wrong;
        } else if (op < 99) {
          cache.erase_file(k.file);
        } else if (t == 0) {
          cache.set_capacity(i % 2 == 0 ? kCapacity / 2 : kCapacity);
        } else if (cache.stats().bytes > kCapacity) {
          ++r.over;
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  Result total;
  for (const auto& r : results) {
    total.lookups += r.lookups;
    total.wrong += r.wrong;
    total.over += r.over;
    total.loads += r.loads;
  }
  CHECK(total.wrong == 0);
  CHECK(total.over == 0);
  const auto st = cache.stats();
  CHECK(st.hits + st.misses == total.lookups);
  CHECK(st.hits > 0);
  CHECK(st.misses > 0);
  CHECK(total.loads > 0);
  CHECK(st.bytes <= cache.capacity());

  // What the cache holds is consistent: right keys, charges summing to bytes.
  std::size_t sum = 0, count = 0;
  for (std::uint64_t f = 0; f < kFiles; ++f)
    for (std::uint64_t o = 0; o < kOffsets; ++o)
      if (auto b = cache.template lookup<Block>({f, o * 4096}, false)) {
        CHECK(b->key == CacheKey{f, o * 4096});
        sum += b->charge;
        ++count;
      }
  CHECK(sum == st.bytes);
  CHECK(count == st.entries);
}

namespace {
// LRU whose insert throws when told to (a user policy that fails).
struct FailingInsertEviction {
  static constexpr std::string_view name = "lru-failing-insert";
  using hook = stowage::LruEviction::hook;
  static inline bool fail_next = false;
  template <class Entry>
  class queue {
   public:
    void insert(Entry& e) {
      if (std::exchange(fail_next, false)) throw std::runtime_error("policy insert failed");
      lru_.insert(e);
    }
    void touch(Entry& e) { lru_.touch(e); }
    void erase(Entry& e) { lru_.erase(e); }
    Entry* victim() { return lru_.victim(); }

   private:
    stowage::LruEviction::queue<Entry> lru_;
  };
};
}  // namespace

TEST_CASE("a policy whose insert throws leaves the cache consistent", "[cache]") {
  BlockCache<FailingInsertEviction> cache(100, 1);
  const CacheKey a{1, 0}, b{1, 1};
  put(cache, a, 10);
  // A new entry: not kept, the exception reaches the caller.
  FailingInsertEviction::fail_next = true;
  CHECK_THROWS_AS(put(cache, b, 10), std::runtime_error);
  CHECK_FALSE(cached(cache, b));
  CHECK(cache.stats().bytes == 10);
  CHECK(cache.stats().entries == 1);
  // A replacement: the old entry goes too.
  FailingInsertEviction::fail_next = true;
  CHECK_THROWS_AS(put(cache, a, 20), std::runtime_error);
  CHECK_FALSE(cached(cache, a));
  CHECK(cache.stats().bytes == 0);
  // The cache goes on working, and erase_file finds nothing stale.
  put(cache, a, 30);
  put(cache, b, 30);
  CHECK(cache.stats().bytes == 60);
  cache.erase_file(1);
  CHECK(cache.stats().entries == 0);
}
