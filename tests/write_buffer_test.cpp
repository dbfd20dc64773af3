// Tests of the write buffer: ordering by sequence, tombstones, byte charge,
// the exact record delta, the B+tree against a std::map model, and the key
// filter find(key, hash) consults.
#include <catch2/catch.hpp>

#include <stowage/write_buffer.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

using stowage::detail::Arena;
using stowage::detail::Below;
using stowage::detail::bloom_hash;
using stowage::detail::BufferEntry;
using stowage::detail::WriteBuffer;

namespace {

// What the buffer should hold, kept by std::map.
struct Model {
  std::uint64_t seq = 0;
  bool tombstone = false;
  std::string value;
};

std::vector<std::string> keys_of(const WriteBuffer& b) {
  std::vector<std::string> keys;
  for (const auto& [k, e] : b) keys.emplace_back(k);
  return keys;
}

// "k" and i in decimal (appended, not "k" + std::to_string(i): g++ 12 at
// -O2 warns of an overlapping memcpy inside that operator+, -Wrestrict).
std::string numbered_key(std::uint64_t i) {
  std::string k = "k";
  k += std::to_string(i);
  return k;
}

std::string random_key(std::mt19937_64& rng) {
  // Short keys over a small alphabet: many shared prefixes, prefixes of
  // other keys, and embedded zero bytes.
  std::string k(rng() % 6, '\0');
  for (char& c : k) c = "\0abz\xff"[rng() % 5];
  return k;
}

}  // namespace

TEST_CASE("newer sequences win, older ones are ignored") {
  WriteBuffer b;
  b.apply("k", 5, false, "five");
  b.apply("k", 3, false, "three");
  REQUIRE(b.find("k"));
  CHECK(b.find("k")->value == "five");
  b.apply("k", 9, true, "");
  CHECK(b.find("k")->tombstone);
  CHECK(b.max_seq() == 9);
  CHECK(b.entries() == 1);
  b.apply("k", 9, false, "same sequence");  // not newer: ignored
  CHECK(b.find("k")->tombstone);
  b.apply("k", 10, false, "a longer value than before");
  CHECK(b.find("k")->value == "a longer value than before");
  CHECK_FALSE(b.find("k")->tombstone);
  CHECK(b.find("k")->seq == 10);
  CHECK(b.find("j") == nullptr);
  CHECK(b.find("kk") == nullptr);
  CHECK(b.find("") == nullptr);
}

TEST_CASE("iteration is in byte order") {
  WriteBuffer b;
  std::uint64_t seq = 1;
  for (const std::string& k : std::vector<std::string>{"b", "a", "c", "ab", std::string("\0x", 2), "\xff", ""})
    b.apply(k, seq++, false, "v");
  CHECK(keys_of(b) == std::vector<std::string>{"", std::string("\0x", 2), "a", "ab", "b", "c", "\xff"});
  CHECK(b.lower_bound("aa")->first == "ab");
  CHECK(b.lower_bound("ab")->first == "ab");
  CHECK(b.upper_bound("ab")->first == "b");
  CHECK(b.lower_bound("")->first == "");
  CHECK(b.upper_bound("")->first == std::string_view("\0x", 2));
  CHECK(b.lower_bound("\xff\xff") == b.end());
  CHECK(b.upper_bound("\xff") == b.end());
  CHECK(std::next(b.begin(), 7) == b.end());
  auto it = b.begin();
  CHECK((it++)->first == "");
  CHECK(it->first == std::string_view("\0x", 2));
}

TEST_CASE("an empty buffer has nothing to find") {
  const WriteBuffer b;
  CHECK(b.empty());
  CHECK(b.entries() == 0);
  CHECK(b.bytes() == 0);
  CHECK(b.begin() == b.end());
  CHECK(b.lower_bound("a") == b.end());
  CHECK(b.upper_bound("") == b.end());
  CHECK(b.find("a") == nullptr);
  CHECK(b.find(std::string_view()) == nullptr);
}

TEST_CASE("keys in ascending order take the append path and stay sorted") {
  WriteBuffer b;
  for (int i = 0; i < 5000; ++i) {
    char k[16];
    std::snprintf(k, sizeof k, "%08d", i);
    b.apply(k, static_cast<std::uint64_t>(i + 1), false, k);
  }
  b.apply("00000100", 6000, false, "again");  // an existing key after the appends
  b.apply("0000050", 6001, false, "between");  // a new key in the middle
  CHECK(b.entries() == 5001);
  auto keys = keys_of(b);
  CHECK(std::is_sorted(keys.begin(), keys.end()));
  CHECK(b.find("00000100")->value == "again");
  CHECK(b.find("0000050")->value == "between");
  CHECK(b.find("00004999")->value == "00004999");
  CHECK(b.upper_bound("00004999") == b.end());
}

TEST_CASE("bytes charge the arena: keys, values, and values that did not fit in place") {
  WriteBuffer b;
  b.apply("key", 1, false, std::string(100, 'x'));
  const std::size_t first = b.bytes();
  CHECK(first >= 3 + 100);
  CHECK(first <= Arena::kMinBlock + Arena::kBlockOverhead);
  // A shorter value reuses the room of the old one: nothing new is held.
  b.apply("key", 2, false, std::string(10, 'y'));
  CHECK(b.bytes() == first);
  CHECK(b.find("key")->value == std::string(10, 'y'));
  // A longer one again fits the 100 bytes of room.
  b.apply("key", 3, false, std::string(100, 'z'));
  CHECK(b.bytes() == first);
  CHECK(b.find("key")->value == std::string(100, 'z'));
  // Values larger than a quarter block get blocks of their own, each charged.
  for (std::uint64_t s = 4; s < 8; ++s) {
    std::size_t before = b.bytes();
    b.apply("key", s, false, std::string(Arena::kMinBlock * s, 'w'));
    CHECK(b.bytes() >= before + Arena::kMinBlock * s);
  }
  CHECK(b.find("key")->value == std::string(Arena::kMinBlock * 7, 'w'));
  CHECK(b.entries() == 1);
}

TEST_CASE("bytes stay an upper bound of what the buffer holds, with bounded slack") {
  WriteBuffer b;
  std::mt19937_64 rng(7);
  std::size_t held = 0;  // key and value bytes ever stored (dead values included)
  std::map<std::string, std::size_t> room;  // the largest value each key held
  for (std::uint64_t i = 1; i <= 20000; ++i) {
    std::string key = std::to_string(rng() % 5000);
    std::string value(rng() % 200, 'v');
    auto [r, fresh] = room.try_emplace(key, 0);
    if (fresh) held += key.size();
    if (fresh || value.size() > r->second) held += value.size(), r->second = value.size();
    b.apply(key, i, false, value);
    CHECK(b.bytes() >= held);
  }
  // Node headers and links aside, the slack is at most the blocks' tails.
  CHECK(b.bytes() <= held + b.entries() * 128 + b.bytes() / 4 + Arena::kMinBlock);
}

TEST_CASE("delta counts records added over the layers below") {
  WriteBuffer b;
  b.apply("new", 1, false, "v");                     // unknown below
  b.apply("old", 2, true, "", Below::present);       // erases an existing key
  b.apply("gone", 3, true, "", Below::absent);       // erases nothing
  CHECK(b.unknown() == 1);
  b.resolve([](std::string_view k) { return k == "other"; });
  CHECK(b.unknown() == 0);
  CHECK(b.delta() == 0);  // +1 new, -1 old, 0 gone
  b.apply("new", 4, true, "");  // known absent below: now contributes 0
  CHECK(b.delta() == -1);
  b.apply("old", 5, false, "back");  // present below and live again: 0
  CHECK(b.delta() == 0);
}

TEST_CASE("a later apply can tell an unknown entry what is below") {
  WriteBuffer b;
  b.apply("k", 1, false, "v");
  CHECK(b.unknown() == 1);
  b.apply("k", 2, true, "", Below::present);
  CHECK(b.unknown() == 0);
  CHECK(b.delta() == -1);
  int looked = 0;
  b.resolve([&](std::string_view) { return ++looked, true; });
  CHECK(looked == 0);
  CHECK(b.find("k")->below == Below::present);
}

TEST_CASE("a moved buffer keeps its entries, iterators and entry pointers") {
  WriteBuffer a;
  for (int i = 0; i < 1000; ++i)
    a.apply(std::string("k").append(std::to_string(i)), static_cast<std::uint64_t>(i + 1), i % 3 == 0,
            std::string(static_cast<std::size_t>(i % 50), 'v'));
  a.apply("extra", 5000, false, "x", Below::absent);
  const std::vector<std::string> keys = keys_of(a);
  const BufferEntry* e = a.find("k500");
  auto it = a.lower_bound("k5");
  const std::size_t bytes = a.bytes();
  const std::int64_t delta = a.delta();

  WriteBuffer b(std::move(a));
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): a moved-from buffer is empty
  CHECK(a.bytes() == 0);
  CHECK(a.begin() == a.end());
  CHECK(keys_of(b) == keys);
  CHECK(b.find("k500") == e);
  CHECK(it->first == "k5");
  CHECK(std::next(it)->first == "k50");
  CHECK(b.bytes() == bytes);
  CHECK(b.delta() == delta);
  CHECK(b.unknown() == 1000);
  CHECK(b.max_seq() == 5000);

  // The moved-from buffer is usable again, and the moved-to one takes appends.
  a.apply("a", 1, false, "1");
  CHECK(keys_of(a) == std::vector<std::string>{"a"});
  b.apply("zzz", 6000, false, "last");
  b.apply("k500", 6001, false, "replaced");
  CHECK(b.find("zzz")->value == "last");
  CHECK(e->value == "replaced");

  // Move assignment, the way the store freezes its buffer.
  WriteBuffer c;
  c.apply("gone", 1, false, "soon");
  c = std::move(b);
  CHECK(c.find("gone") == nullptr);
  CHECK(c.entries() == 1002);
  b = WriteBuffer();  // NOLINT(bugprone-use-after-move)
  CHECK(b.empty());
  b.apply("b", 2, false, "2");
  CHECK(b.entries() == 1);
  c.apply("zzzz", 7000, false, "after the move");  // the append path after a move
  CHECK(std::prev(keys_of(c).end())->compare("zzzz") == 0);
}

TEST_CASE("random keys and sequences match a std::map model") {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 rng(seed);
    WriteBuffer b;
    std::map<std::string, Model, std::less<>> model;
    std::uint64_t max_seq = 0;
    for (int i = 0; i < 20000; ++i) {
      std::string key = random_key(rng);
      if (rng() % 4 == 0) key = std::to_string(rng() % 3000);
      // Sequences mostly rise, sometimes arrive late (out of order commits).
      std::uint64_t seq = static_cast<std::uint64_t>(i) + 100 - (rng() % 8 == 0 ? rng() % 100 : 0);
      bool tombstone = rng() % 5 == 0;
      std::string value = tombstone ? std::string() : std::string(rng() % 40, static_cast<char>('a' + i % 26));
      b.apply(key, seq, tombstone, value);
      auto [it, inserted] = model.try_emplace(key, Model{seq, tombstone, value});
      if (!inserted && it->second.seq < seq) it->second = Model{seq, tombstone, value};
      max_seq = std::max(max_seq, seq);
    }
    REQUIRE(b.entries() == model.size());
    CHECK(b.max_seq() == max_seq);
    CHECK(b.unknown() == model.size());
    auto it = b.begin();
    for (const auto& [k, m] : model) {
      REQUIRE(it != b.end());
      CHECK(it->first == k);
      CHECK(it->second.seq == m.seq);
      CHECK(it->second.tombstone == m.tombstone);
      CHECK(it->second.value == m.value);
      ++it;
    }
    CHECK(it == b.end());
    for (int i = 0; i < 5000; ++i) {
      std::string probe = random_key(rng);
      if (rng() % 2 == 0) probe = std::to_string(rng() % 4000);
      auto lo = model.lower_bound(probe);
      auto hi = model.upper_bound(probe);
      auto blo = b.lower_bound(probe);
      auto bhi = b.upper_bound(probe);
      CHECK((lo == model.end()) == (blo == b.end()));
      if (lo != model.end() && blo != b.end()) CHECK(blo->first == lo->first);
      CHECK((hi == model.end()) == (bhi == b.end()));
      if (hi != model.end() && bhi != b.end()) CHECK(bhi->first == hi->first);
      const BufferEntry* e = b.find(probe);
      auto found = model.find(probe);
      CHECK((e != nullptr) == (found != model.end()));
      if (e && found != model.end()) CHECK(e->seq == found->second.seq);
    }
    // resolve then delta: the live records that are not below.
    std::int64_t expected = 0;
    auto below = [](std::string_view k) { return !k.empty() && k[0] == 'a'; };
    for (const auto& [k, m] : model) expected += (m.tombstone ? 0 : 1) - (below(k) ? 1 : 0);
    b.resolve(below);
    CHECK(b.unknown() == 0);
    CHECK(b.delta() == expected);
  }
}

TEST_CASE("keys alike in their first 16 bytes are ordered by the rest") {
  // Heads tie for all of these: the order comes from lengths and later bytes.
  const std::string p16 = "user:profile:000";  // 16 bytes
  std::vector<std::string> keys = {"ab", std::string("ab\0", 3), std::string("ab\0\0", 4), "a",
                                   p16, p16 + std::string(1, '\0'), p16 + "1", p16 + "10", p16 + "2",
                                   p16.substr(0, 15), p16 + "\xff", p16 + "1" + std::string(1, '\0')};
  std::map<std::string, std::uint64_t> model;
  WriteBuffer b;
  std::mt19937_64 rng(11);
  for (std::uint64_t i = 1; i <= 2000; ++i) {
    std::string k = keys[rng() % keys.size()];
    if (rng() % 2) k += std::to_string(rng() % 100);
    b.apply(k, i, false, k);
    model[k] = i;
  }
  std::vector<std::string> expected;
  for (const auto& [k, s] : model) expected.push_back(k);
  CHECK(keys_of(b) == expected);
  for (const auto& [k, s] : model) {
    REQUIRE(b.find(k));
    CHECK(b.find(k)->seq == s);
    CHECK(b.find(k)->value == k);
    CHECK(b.lower_bound(k)->first == k);
    auto next = model.upper_bound(k);
    auto bnext = b.upper_bound(k);
    if (next == model.end())
      CHECK(bnext == b.end());
    else
      CHECK(bnext->first == next->first);
  }
  CHECK(b.find(std::string("ab\0\0\0", 5)) == nullptr);
  CHECK(b.find(p16 + std::string(2, '\0')) == nullptr);
}

TEST_CASE("descending and interleaved loads split every way and stay sorted") {
  WriteBuffer b;
  std::map<std::string, std::uint64_t> model;
  std::uint64_t seq = 0;
  auto put = [&](int n) {
    char k[16];
    std::snprintf(k, sizeof k, "%07d", n);
    b.apply(k, ++seq, false, "v");
    model[k] = seq;
  };
  for (int i = 60000; i > 30000; --i) put(i);                   // always before the first key
  for (int i = 0; i < 30000; i += 2) put(i);                     // ascending, not at the end
  for (int i = 60001; i < 90000; ++i) put(i);                    // ascending at the end
  for (int i = 1; i < 30000; i += 2) put(i);                     // into the gaps
  for (int i = 0; i < 90000; i += 7) put(i);                     // overwrites
  REQUIRE(b.entries() == model.size());
  auto it = b.begin();
  for (const auto& [k, s] : model) {
    REQUIRE(it != b.end());
    REQUIRE(it->first == k);
    CHECK(it->second.seq == s);
    ++it;
  }
  CHECK(it == b.end());
}

TEST_CASE("many random keys match a std::map model") {
  std::mt19937_64 rng(5);
  WriteBuffer b;
  std::map<std::string, std::uint64_t> model;
  for (std::uint64_t i = 1; i <= 100000; ++i) {
    std::string k = std::to_string(rng() % 1000000);
    k.insert(0, 8 - std::min<std::size_t>(8, k.size()), '0');
    b.apply(k, i, rng() % 10 == 0, "value");
    model[k] = i;
  }
  REQUIRE(b.entries() == model.size());
  std::size_t n = 0;
  auto mit = model.begin();
  for (const auto& [k, e] : b) {
    REQUIRE(k == mit->first);
    CHECK(e.seq == mit->second);
    ++mit, ++n;
  }
  CHECK(n == model.size());
  for (int i = 0; i < 20000; ++i) {
    std::string k = std::to_string(rng() % 1000000);
    k.insert(0, 8 - std::min<std::size_t>(8, k.size()), '0');
    auto lo = model.lower_bound(k);
    auto blo = b.lower_bound(k);
    REQUIRE((lo == model.end()) == (blo == b.end()));
    if (blo != b.end()) CHECK(blo->first == lo->first);
    CHECK((b.find(k) != nullptr) == (model.count(k) == 1));
  }
}

TEST_CASE("split cuts the entries into ranges of about equal counts that cover them in order") {
  std::mt19937_64 rng(11);
  WriteBuffer b;
  for (std::uint64_t i = 1; i <= 50000; ++i) {
    std::string k = std::to_string(rng() % 1000000);
    k.insert(0, 8 - std::min<std::size_t>(8, k.size()), '0');
    b.apply(k, i, false, "value");
  }
  const auto all = keys_of(b);
  for (std::size_t parts : {1, 2, 3, 7}) {
    const auto at = b.split(parts);
    REQUIRE(at.size() == parts + 1);
    CHECK(at.front() == b.begin());
    CHECK(at.back() == b.end());
    std::vector<std::string> joined;
    for (std::size_t i = 0; i < parts; ++i) {
      std::size_t n = 0;
      for (auto it = at[i]; it != at[i + 1]; ++it, ++n) joined.emplace_back(it->first);
      // A cut lands on a leaf boundary: within a leaf (at most kFanout
      // entries) of the exact share.
      const auto share = static_cast<double>(all.size()) / static_cast<double>(parts);
      CHECK(static_cast<double>(n) >= share - WriteBuffer::kFanout);
      CHECK(static_cast<double>(n) <= share + WriteBuffer::kFanout);
    }
    CHECK(joined == all);
  }
  WriteBuffer empty;
  const auto none = empty.split(2);
  REQUIRE(none.size() == 3);
  CHECK(none[0] == empty.end());
  CHECK(none[1] == empty.end());
  SECTION("a buffer smaller than the parts leaves some ranges empty") {
    WriteBuffer one;
    one.apply("k", 1, false, "v");
    const auto at = one.split(4);
    REQUIRE(at.size() == 5);
    std::size_t n = 0;
    for (std::size_t i = 0; i < 4; ++i)
      for (auto it = at[i]; it != at[i + 1]; ++it) ++n;
    CHECK(n == 1);
  }
}

TEST_CASE("rollback takes back every apply of a batch, inserts and updates, at any point") {
  std::mt19937_64 rng(77);
  for (int round = 0; round < 200; ++round) {
    WriteBuffer b;
    std::uint64_t seq = 0;
    const int base = static_cast<int>(rng() % 600);
    for (int i = 0; i < base; ++i) b.apply(random_key(rng), ++seq, rng() % 5 == 0, std::string(rng() % 40, 'b'));
    // A snapshot of everything observable.
    std::vector<std::tuple<std::string, std::uint64_t, bool, std::string, Below>> before;
    for (const auto& [k, e] : b) before.emplace_back(std::string(k), e.seq, e.tombstone, std::string(e.value), e.below);
    const auto entries = b.entries();
    const auto delta = b.delta();
    const auto unknown = b.unknown();
    const auto max_seq = b.max_seq();

    const std::size_t n = 1 + rng() % 120;
    WriteBuffer::Undo undo;
    undo.reserve(n);
    b.begin(undo);
    for (std::size_t i = 0; i < n; ++i) {
      const Below below = rng() % 3 == 0 ? Below::present : Below::unknown;
      b.apply(random_key(rng), ++seq, rng() % 4 == 0, std::string(rng() % 60, 'n'), below, &undo);
    }
    b.rollback(undo);

    std::vector<std::tuple<std::string, std::uint64_t, bool, std::string, Below>> after;
    for (const auto& [k, e] : b) after.emplace_back(std::string(k), e.seq, e.tombstone, std::string(e.value), e.below);
    REQUIRE(after == before);
    REQUIRE(b.entries() == entries);
    REQUIRE(b.delta() == delta);
    REQUIRE(b.unknown() == unknown);
    REQUIRE(b.max_seq() == max_seq);
    for (const auto& t : before) {
      const auto* e = b.find(std::get<0>(t));
      REQUIRE(e != nullptr);
      REQUIRE(e->value == std::get<3>(t));
    }
    // The buffer goes on working: lower_bound over possibly empty leaves, more applies.
    for (int i = 0; i < 50; ++i) {
      std::string k = random_key(rng);
      auto it = b.lower_bound(k);
      auto want = std::lower_bound(before.begin(), before.end(), k,
                                   [](const auto& t, const std::string& key) { return std::get<0>(t) < key; });
      if (want == before.end()) {
        REQUIRE(it == b.end());
      } else {
        REQUIRE(it != b.end());
        REQUIRE(std::string(it->first) == std::get<0>(*want));
      }
    }
    b.apply("zz-after", ++seq, false, "v");
    REQUIRE(b.find("zz-after") != nullptr);
  }
}

TEST_CASE("backward steps, before() and last() match a std::map model, over split and emptied leaves") {
  std::mt19937_64 rng(91);
  for (int round = 0; round < 40; ++round) {
    WriteBuffer b;
    std::map<std::string, std::uint64_t> model;
    std::uint64_t seq = 0;
    CHECK(b.last() == b.end());
    CHECK(b.before("x") == b.end());
    const int n = static_cast<int>(rng() % 3000);
    // Ascending, descending and random inserts split leaves every way.
    for (int i = 0; i < n; ++i) {
      std::string k = round % 3 == 0 ? random_key(rng) : std::to_string(round % 3 == 1 ? 100000 + i : 900000 - i);
      b.apply(k, ++seq, false, "v");
      model[k] = seq;
    }
    // A rolled-back batch can leave leaves empty: backward steps skip them.
    if (round % 2 == 1) {
      WriteBuffer::Undo undo;
      undo.reserve(200);
      b.begin(undo);
      for (int i = 0; i < 200; ++i) b.apply("zz" + std::to_string(i), ++seq, false, "n", Below::unknown, &undo);
      b.rollback(undo);
    }
    REQUIRE(b.entries() == model.size());
    // The whole buffer backwards.
    auto it = b.last();
    for (auto m = model.rbegin(); m != model.rend(); ++m) {
      REQUIRE(it != b.end());
      REQUIRE(it->first == m->first);
      it.retreat();
    }
    CHECK(it == b.end());
    CHECK(it.retreat() == b.end());
    // before(k): the last entry < k.
    for (int i = 0; i < 200; ++i) {
      std::string k = round % 3 == 0 ? random_key(rng) : std::to_string(rng() % 1000000);
      auto want = model.lower_bound(k);
      auto got = b.before(k);
      if (want == model.begin()) {
        CHECK(got == b.end());
      } else {
        REQUIRE(got != b.end());
        CHECK(got->first == std::prev(want)->first);
      }
    }
  }
}

TEST_CASE("versions a snapshot can see are kept and found by visible()") {
  WriteBuffer b;
  b.apply("k", 1, false, "one");
  b.apply("other", 2, false, "x");
  // No snapshot: a replaced version is gone.
  b.apply("other", 3, false, "y");
  CHECK(b.kept_versions() == 0);
  const BufferEntry* e = b.find("other");
  CHECK(b.visible(*e, 2) == nullptr);
  // A snapshot at 3 sees k's version 1: kept when 4 replaces it (in place
  // would overwrite its bytes: the new value fits the old room).
  b.apply("k", 4, false, "ONE", Below::unknown, nullptr, 3);
  // 5 replaces 4, which no snapshot saw: not kept, the chain stays.
  b.apply("k", 5, true, "", Below::unknown, nullptr, 3);
  // A snapshot at 5 sees the erase: kept.
  b.apply("k", 6, false, "six", Below::unknown, nullptr, 5);
  CHECK(b.kept_versions() == 2);
  e = b.find("k");
  REQUIRE(e != nullptr);
  CHECK(e->value == "six");
  CHECK(b.visible(*e, 6) == e);
  const BufferEntry* at5 = b.visible(*e, 5);
  REQUIRE(at5 != nullptr);
  CHECK(at5->tombstone);
  CHECK(at5->seq == 5);
  const BufferEntry* at3 = b.visible(*e, 3);
  REQUIRE(at3 != nullptr);
  CHECK(at3->seq == 1);
  CHECK(at3->value == "one");
  CHECK(b.visible(*e, 4) == at3);  // 4 was not kept: a reader at 4 sees 1 (no such reader lived)
  CHECK(b.visible(*e, 0) == nullptr);
  // A moved buffer keeps the chains.
  WriteBuffer moved = std::move(b);
  e = moved.find("k");
  REQUIRE(e != nullptr);
  REQUIRE(moved.visible(*e, 3) != nullptr);
  CHECK(moved.visible(*e, 3)->value == "one");
  CHECK(moved.kept_versions() == 2);
  CHECK(moved.bytes() > 0);
}

TEST_CASE("a rolled back batch leaves the kept versions a reader sees as they were") {
  WriteBuffer b;
  b.apply("a", 1, false, "a1");
  WriteBuffer::Undo undo;
  undo.reserve(2);
  b.begin(undo);
  b.apply("a", 2, false, "a2", Below::unknown, &undo, 1);
  b.apply("b", 3, false, "b3", Below::unknown, &undo, 1);
  CHECK(b.visible(*b.find("a"), 1)->value == "a1");
  b.rollback(undo);
  const BufferEntry* e = b.find("a");
  REQUIRE(e != nullptr);
  CHECK(e->seq == 1);
  CHECK(e->value == "a1");
  CHECK(b.visible(*e, 1) == e);
  CHECK(b.find("b") == nullptr);
  // Kept again after the rollback, the chain is right.
  b.apply("a", 4, false, "a4", Below::unknown, nullptr, 1);
  e = b.find("a");
  CHECK(e->value == "a4");
  REQUIRE(b.visible(*e, 3) != nullptr);
  CHECK(b.visible(*e, 3)->value == "a1");
}

TEST_CASE("the key filter answers for keys the buffer does not hold and never hides one it does") {
  WriteBuffer b;
  b.set_filter_bytes(64 << 10);
  CHECK_FALSE(b.filtered());  // made at the first apply
  std::mt19937_64 rng(11);
  std::map<std::string, std::uint64_t> model;
  WriteBuffer::Undo undo;
  for (std::uint64_t seq = 1; seq <= 20000; ++seq) {
    const std::string key = numbered_key(rng() % 30000);
    if (seq % 1000 == 0) {  // a batch taken back: its new keys stay in the filter, harmlessly
      undo.reserve(2);
      b.begin(undo);
      b.apply(key + "-rolled", seq, false, "x", Below::unknown, &undo);
      b.rollback(undo);
      continue;
    }
    b.apply(key, seq, seq % 7 == 0, "v", Below::unknown);
    model[key] = seq;
  }
  REQUIRE(b.filtered());
  CHECK(b.filter_charge() >= (64 << 10));
  CHECK(b.filter_charge() <= (64 << 10) + 64);
  for (const auto& [k, seq] : model) {
    const BufferEntry* e = b.find(k, bloom_hash(k));
    REQUIRE(e != nullptr);
    CHECK(e->seq == seq);
  }
  std::size_t walked = 0, absent = 0;
  for (std::uint64_t i = 0; i < 30000; ++i) {
    const std::string k = numbered_key(i);
    if (model.count(k)) continue;
    ++absent;
    CHECK(b.find(k, bloom_hash(k)) == nullptr);
    // A "maybe" from the filter walks the tree.
    walked += b.may_hold(bloom_hash(k)) ? 1 : 0;
  }
  INFO(walked << " of " << absent << " absent keys passed the filter");
  CHECK(absent > 5000);
  CHECK(walked < absent / 20);

  // A move takes the filter with the entries; the moved-from buffer makes a
  // new one (it keeps its size) at its next first key.
  WriteBuffer frozen(std::move(b));
  CHECK(frozen.filtered());
  CHECK_FALSE(b.filtered());  // NOLINT(bugprone-use-after-move): specified
  const std::string some = model.begin()->first;
  CHECK(frozen.find(some, bloom_hash(some)) != nullptr);
  CHECK(b.find(some, bloom_hash(some)) == nullptr);
  b.apply("fresh", 1, false, "v");
  CHECK(b.filtered());
  CHECK(b.find("fresh", bloom_hash("fresh")) != nullptr);
  CHECK(b.find(some, bloom_hash(some)) == nullptr);
}

TEST_CASE("a buffer that held keys before its filter size was set gets no filter") {
  WriteBuffer b;
  b.apply("a", 1, false, "v");
  b.set_filter_bytes(4096);
  b.apply("b", 2, false, "v");
  CHECK_FALSE(b.filtered());
  CHECK(b.find("a", bloom_hash("a")) != nullptr);
  CHECK(b.find("b", bloom_hash("b")) != nullptr);
  WriteBuffer none;  // no size set: no filter
  none.apply("a", 1, false, "v");
  CHECK_FALSE(none.filtered());
  CHECK(none.filter_charge() == 0);
  // The filter is not in bytes(), which decides when the store freezes a
  // buffer: the same keys take the same bytes with a filter and without.
  WriteBuffer with;
  with.set_filter_bytes(4096);
  with.apply("a", 1, false, "v");
  CHECK(with.filtered());
  CHECK(with.bytes() == none.bytes());
  CHECK(none.find("a", 0) != nullptr);  // any hash: nothing is filtered
}
