// Tests of the arena: alignment, disjoint pieces, blocks of their own for
// large requests, and the charge of every block.
#include <catch2/catch.hpp>

#include <stowage/detail/arena.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

using stowage::detail::Arena;

TEST_CASE("pieces are aligned and disjoint, every block is charged aligned, disjoint pieces and charges every block") {
  Arena a;
  CHECK(a.reserved() == 0);
  std::vector<std::pair<std::byte*, std::size_t>> pieces;
  std::mt19937_64 rng(3);
  std::size_t asked = 0;
  for (int i = 0; i < 3000; ++i) {
    std::size_t n = 1 + rng() % (i % 100 == 0 ? 100000 : 300);
    std::size_t align = std::size_t{1} << (rng() % 4);
    std::byte* p = a.allocate(n, align);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % align == 0);
    std::memset(p, i & 0xff, n);
    pieces.emplace_back(p, n);
    asked += n;
  }
  for (std::size_t i = 0; i < pieces.size(); ++i)
    CHECK(std::to_integer<int>(pieces[i].first[pieces[i].second - 1]) == static_cast<int>(i & 0xff));
  CHECK(a.reserved() >= asked);
  CHECK(a.reserved() <= asked + asked / 3 + Arena::kMaxBlock + a.blocks() * (Arena::kBlockOverhead + 8));
  Arena b(std::move(a));
  CHECK(a.reserved() == 0);  // NOLINT(bugprone-use-after-move)
  CHECK(b.reserved() >= asked);
}

TEST_CASE("blocks grow with the arena, large requests get their own") {
  Arena a;
  a.allocate(10);
  CHECK(a.blocks() == 1);
  CHECK(a.reserved() == Arena::kMinBlock + Arena::kBlockOverhead);
  a.allocate(Arena::kMinBlock);  // over a quarter of the next block: its own block
  CHECK(a.blocks() == 2);
  CHECK(a.reserved() == 2 * (Arena::kMinBlock + Arena::kBlockOverhead));
  std::byte* p = a.allocate(10);  // still from the first block
  CHECK(a.blocks() == 2);
  CHECK(p != nullptr);
  while (a.reserved() < 8 * Arena::kMaxBlock) a.allocate(1000);
  std::size_t before = a.reserved();
  std::size_t blocks = a.blocks();
  while (a.blocks() == blocks) a.allocate(1000);
  CHECK(a.reserved() - before == Arena::kMaxBlock + Arena::kBlockOverhead);  // capped
}
