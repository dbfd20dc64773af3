// Tests for eviction.hpp: LRU order, erase, the empty queue, and the
// EvictionPolicy concept (accepts LRU and a user-written FIFO, rejects a
// policy without victim()).
#include <stowage/eviction.hpp>

#include "fifo_eviction.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <boost/intrusive/list.hpp>
#include <catch2/catch.hpp>

namespace {

// A test entry shaped like the cache's: the policy's hook plus charge and hash.
template <class Policy>
struct TestEntry {
  typename Policy::hook eviction_hook;
  std::size_t charge = 1;
  std::uint64_t hash = 0;
  char id = '?';
};

using stowage_test::FifoEviction;

// Like FifoEviction but without victim(): not a policy.
struct NoVictimEviction {
  static constexpr std::string_view name = "no-victim";
  using hook = boost::intrusive::list_member_hook<>;
  template <class Entry>
  class queue {
   public:
    void insert(Entry&) {}
    void touch(Entry&) {}
    void erase(Entry&) {}
  };
};

// victim() returns the wrong type: not a policy.
struct WrongVictimEviction {
  static constexpr std::string_view name = "wrong-victim";
  using hook = boost::intrusive::list_member_hook<>;
  template <class Entry>
  class queue {
   public:
    void insert(Entry&) {}
    void touch(Entry&) {}
    void erase(Entry&) {}
    int victim() { return 0; }
  };
};

// No hook type: not a policy.
struct NoHookEviction {
  static constexpr std::string_view name = "no-hook";
  template <class Entry>
  class queue {
   public:
    void insert(Entry&) {}
    void touch(Entry&) {}
    void erase(Entry&) {}
    Entry* victim() { return nullptr; }
  };
};

// No name: not a policy.
struct NoNameEviction {
  using hook = boost::intrusive::list_member_hook<>;
  template <class Entry>
  using queue = FifoEviction::queue<Entry>;
};

}  // namespace

static_assert(stowage::EvictionPolicy<stowage::LruEviction>);
static_assert(stowage::EvictionPolicy<FifoEviction>);
static_assert(!stowage::EvictionPolicy<NoVictimEviction>);
static_assert(!stowage::EvictionPolicy<WrongVictimEviction>);
static_assert(!stowage::EvictionPolicy<NoHookEviction>);
static_assert(!stowage::EvictionPolicy<NoNameEviction>);
static_assert(!stowage::EvictionPolicy<int>);

TEST_CASE("the EvictionPolicy concept checks name, hook and queue", "[eviction]") {
  // A requires-expression at run time, to show the check also works in if constexpr.
  constexpr bool lru_ok = requires { requires stowage::EvictionPolicy<stowage::LruEviction>; };
  constexpr bool bad_ok = requires { requires stowage::EvictionPolicy<NoVictimEviction>; };
  CHECK(lru_ok);
  CHECK_FALSE(bad_ok);
  CHECK(stowage::LruEviction::name == "lru");
  CHECK(FifoEviction::name == "fifo");
}

TEST_CASE("LRU evicts the least recently inserted or touched entry", "[eviction][lru]") {
  using Entry = TestEntry<stowage::LruEviction>;
  Entry a, b, c;
  a.id = 'a';
  b.id = 'b';
  c.id = 'c';
  stowage::LruEviction::queue<Entry> q;

  SECTION("empty queue has no victim") { CHECK(q.victim() == nullptr); }

  SECTION("insert order, then a touch moves an entry to the back of the line") {
    q.insert(a);
    q.insert(b);
    q.insert(c);
    CHECK(q.victim() == &a);
    q.touch(a);
    CHECK(q.victim() == &b);
    q.erase(b);
    CHECK(q.victim() == &c);
    q.erase(c);
    CHECK(q.victim() == &a);
    q.erase(a);
    CHECK(q.victim() == nullptr);
  }

  SECTION("erase in the middle keeps the order of the rest") {
    q.insert(a);
    q.insert(b);
    q.insert(c);
    q.erase(b);
    CHECK(q.victim() == &a);
    q.erase(a);
    CHECK(q.victim() == &c);
    q.erase(c);
  }

  SECTION("touching the most recent entry changes nothing") {
    q.insert(a);
    q.insert(b);
    q.touch(b);
    CHECK(q.victim() == &a);
    q.touch(a);
    q.touch(a);
    CHECK(q.victim() == &b);
    q.erase(a);
    q.erase(b);
  }

  SECTION("an erased entry can be inserted again as the newest") {
    q.insert(a);
    q.insert(b);
    q.erase(a);
    q.insert(a);
    CHECK(q.victim() == &b);
    q.erase(b);
    q.erase(a);
  }

  SECTION("evicting everything in order") {
    std::vector<Entry> many(100);
    for (auto& e : many) q.insert(e);
    for (std::size_t i = 0; i < many.size(); i += 2) q.touch(many[i]);  // evens become newest
    std::vector<Entry*> order;
    while (Entry* v = q.victim()) {
      order.push_back(v);
      q.erase(*v);
    }
    REQUIRE(order.size() == many.size());
    for (std::size_t i = 0; i < 50; ++i) CHECK(order[i] == &many[2 * i + 1]);
    for (std::size_t i = 0; i < 50; ++i) CHECK(order[50 + i] == &many[2 * i]);
  }
}

TEST_CASE("a user-written FIFO policy ignores touches", "[eviction][fifo]") {
  using Entry = TestEntry<FifoEviction>;
  Entry a, b, c;
  FifoEviction::queue<Entry> q;
  CHECK(q.victim() == nullptr);
  q.insert(a);
  q.insert(b);
  q.insert(c);
  q.touch(a);
  CHECK(q.victim() == &a);
  q.erase(a);
  CHECK(q.victim() == &b);
  q.erase(b);
  q.erase(c);
  CHECK(q.victim() == nullptr);
}
