// Tests of the chunk index: lookups, seeks and routing over key ranges.
#include <catch2/catch.hpp>

#include <stowage/index.hpp>

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
