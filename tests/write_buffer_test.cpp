// Tests of the write buffer: ordering by sequence, tombstones, byte charge,
// and the exact record delta.
#include <catch2/catch.hpp>

#include <stowage/write_buffer.hpp>

using stowage::detail::Below;
using stowage::detail::WriteBuffer;

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
}

TEST_CASE("iteration is in byte order") {
  WriteBuffer b;
  std::uint64_t seq = 1;
  for (const std::string& k : std::vector<std::string>{"b", "a", "c", "ab", std::string("\0x", 2)})
    b.apply(k, seq++, false, "v");
  std::vector<std::string> keys;
  for (auto& [k, e] : b) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{std::string("\0x", 2), "a", "ab", "b", "c"});
  CHECK(b.lower_bound("aa")->first == "ab");
  CHECK(b.upper_bound("ab")->first == "b");
}

TEST_CASE("bytes track keys and values") {
  WriteBuffer b;
  b.apply("key", 1, false, std::string(100, 'x'));
  CHECK(b.bytes() == 3 + 100 + WriteBuffer::kEntryOverhead);
  b.apply("key", 2, false, std::string(10, 'x'));
  CHECK(b.bytes() == 3 + 10 + WriteBuffer::kEntryOverhead);
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
