// Tests of detail/collection_prefix.hpp: every id has one prefix, prefixes
// ascend with their ids, none is the start of another, and a key's prefix
// reads back (or is refused when cut short or not in its shortest form).
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include <stowage/detail/collection_prefix.hpp>

using namespace stowage::detail;

TEST_CASE("collection prefixes ascend with their ids, are prefix-free and read back") {
  std::vector<std::uint32_t> ids;
  for (std::uint32_t i = 0; i < 600; ++i) ids.push_back(i);
  for (std::uint32_t i : {65535u, 65536u, 0xFFFFFFu, 0x1000000u, 0xFFFFFFFFu}) ids.push_back(i);
  std::string prev;
  for (std::size_t n = 0; n < ids.size(); ++n) {
    const std::uint32_t id = ids[n];
    INFO("id " << id);
    const std::string p = collection_prefix(id);
    CHECK(p.size() == (id < 0xF0 ? 1u : id < 0x100 ? 2u : id < 0x10000 ? 3u : id < 0x1000000 ? 4u : 5u));
    if (n > 0) {
      CHECK(prev < p);
      CHECK(p.compare(0, prev.size(), prev) != 0);  // prev does not start p
    }
    const auto parsed = parse_collection_prefix(p + "key");
    REQUIRE(parsed);
    CHECK(parsed->id == id);
    CHECK(parsed->size == p.size());
    if (p.size() > 1) CHECK_FALSE(parse_collection_prefix(p.substr(0, p.size() - 1)));
    prev = p;
  }
  CHECK_FALSE(parse_collection_prefix(""));
  CHECK_FALSE(parse_collection_prefix(std::string("\xF0\x05", 2)));         // 5 fits one byte
  CHECK_FALSE(parse_collection_prefix(std::string("\xF1\x00\xFF", 3)));     // 255 fits two bytes
  CHECK_FALSE(parse_collection_prefix(std::string("\xF4\x01\x02\x03\x04\x05", 6)));  // no five-byte form
}
