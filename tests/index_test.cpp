// Tests of the chunk index: lookups, seeks and routing over key ranges.
#include <catch2/catch.hpp>

#include <stowage/index.hpp>

#include <string>
#include <vector>

using stowage::detail::ChunkIndex;
using stowage::detail::ChunkRef;

namespace {
ChunkIndex three_chunks() {
  ChunkIndex idx;
  idx.add(ChunkRef{1, 10, 100, 5, "b", "d"});
  idx.add(ChunkRef{2, 20, 200, 6, "f", "h"});
  idx.add(ChunkRef{3, 30, 300, 7, "m", "p"});
  return idx;
}
}  // namespace

TEST_CASE("find returns the chunk whose range holds the key") {
  auto idx = three_chunks();
  CHECK(idx.find("a") == nullptr);
  CHECK(idx.find("b")->file == 1);
  CHECK(idx.find("c")->file == 1);
  CHECK(idx.find("e") == nullptr);  // between chunks
  CHECK(idx.find("g")->file == 2);
  CHECK(idx.find("p")->file == 3);
  CHECK(idx.find("q") == nullptr);
  CHECK(idx.records() == 60);
  CHECK(idx.bytes() == 600);
}

TEST_CASE("seek finds the first chunk that may hold keys >= the target") {
  auto idx = three_chunks();
  CHECK(idx.seek("")->second.file == 1);
  CHECK(idx.seek("c")->second.file == 1);
  CHECK(idx.seek("e")->second.file == 2);
  CHECK(idx.seek("z") == idx.end());
}

TEST_CASE("route sends keys before the first chunk to it") {
  auto idx = three_chunks();
  CHECK(idx.route("a")->second.file == 1);
  CHECK(idx.route("e")->second.file == 1);
  CHECK(idx.route("z")->second.file == 3);
  ChunkIndex empty;
  CHECK(empty.route("a") == empty.end());
}

TEST_CASE("remove keeps the totals right") {
  auto idx = three_chunks();
  idx.remove("f");
  CHECK(idx.chunks() == 2);
  CHECK(idx.records() == 40);
  CHECK(idx.find("g") == nullptr);
}

TEST_CASE("a sealed index finds what the map finds; changes unseal it; copies and moves keep it right") {
  ChunkIndex idx;
  std::vector<std::string> firsts;
  for (int i = 0; i < 200; ++i) {
    // 16-digit keys sharing their first 12 bytes, like db_bench's, plus a terminator.
    std::string first = std::string(10, '0') + std::to_string(100000 + i * 10) + std::string(2, '\0');
    std::string last = std::string(10, '0') + std::to_string(100000 + i * 10 + 5) + std::string(2, '\0');
    idx.add(ChunkRef{static_cast<std::uint64_t>(i + 1), 1, 1, 0, first, last});
    firsts.push_back(first);
  }
  std::vector<std::string> probes;
  for (int v = 99990; v < 102010; ++v) {
    probes.push_back(std::string(10, '0') + std::to_string(v) + std::string(2, '\0'));
    probes.push_back(std::string(10, '0') + std::to_string(v));
  }
  probes.push_back("");
  probes.push_back(std::string(40, '\xff'));
  std::vector<const ChunkRef*> want;
  CHECK_FALSE(idx.sealed());
  for (const auto& p : probes) want.push_back(idx.find(p));
  idx.seal();
  REQUIRE(idx.sealed());
  for (std::size_t i = 0; i < probes.size(); ++i) REQUIRE(idx.find(probes[i]) == want[i]);

  ChunkIndex copy = idx;
  REQUIRE(copy.sealed());
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const ChunkRef* c = copy.find(probes[i]);
    REQUIRE((c == nullptr) == (want[i] == nullptr));
    if (c) {
      REQUIRE(c != want[i]);  // the copy's own entries
      REQUIRE(c->file == want[i]->file);
    }
  }
  ChunkIndex moved = std::move(copy);
  CHECK(moved.sealed());
  CHECK_FALSE(copy.sealed());
  CHECK(copy.find(probes[100]) == nullptr);
  for (std::size_t i = 0; i < probes.size(); i += 7)
    REQUIRE((moved.find(probes[i]) ? moved.find(probes[i])->file : 0) == (want[i] ? want[i]->file : 0));

  idx.remove(firsts[50]);
  CHECK_FALSE(idx.sealed());
  CHECK(idx.find(firsts[50]) == nullptr);
  idx.seal();
  CHECK(idx.find(firsts[50]) == nullptr);
  CHECK(idx.find(firsts[51])->file == 52);
  idx.add(ChunkRef{999, 1, 1, 0, firsts[50], firsts[50]});
  CHECK_FALSE(idx.sealed());
  CHECK(idx.find(firsts[50])->file == 999);
}
