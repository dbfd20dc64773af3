// Tests of the block compression policies: round trips, and that decoding
// garbage or the wrong size is a CorruptionError, never a crash.
#include <stowage/compression.hpp>

#include <catch2/catch.hpp>

#include <random>
#include <string>

namespace {

// A policy a user might write: ids >= 16 are theirs.
struct ReverseCompression {
  static constexpr std::uint8_t id = 42;
  static constexpr std::string_view name = "reverse";
  static void compress(std::string_view in, std::string& out) { out.assign(in.rbegin(), in.rend()); }
  static void decompress(std::string_view in, std::size_t raw_size, char* out) {
    if (in.size() != raw_size) throw stowage::CorruptionError("size mismatch");
    std::copy(in.rbegin(), in.rend(), out);
  }
};
// Same, but squatting on an id reserved for built-in policies.
struct SquattingCompression : ReverseCompression {
  static constexpr std::uint8_t id = 3;
};
// id of the wrong type.
struct WideIdCompression : ReverseCompression {
  static constexpr int id = 300;
};
// id that is not a constant expression.
struct MutableIdCompression : ReverseCompression {
  static inline std::uint8_t id = 20;
};
struct MissingDecompress {
  static constexpr std::uint8_t id = 17;
  static constexpr std::string_view name = "x";
  static void compress(std::string_view, std::string&) {}
};

static_assert(stowage::CompressionPolicy<stowage::NoCompression>);
static_assert(stowage::CompressionPolicy<stowage::Lz4Compression>);
static_assert(stowage::CompressionPolicy<ReverseCompression>);
static_assert(!stowage::CompressionPolicy<SquattingCompression>);
static_assert(!stowage::CompressionPolicy<WideIdCompression>);
static_assert(!stowage::CompressionPolicy<MutableIdCompression>);
static_assert(!stowage::CompressionPolicy<MissingDecompress>);

std::string random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string compressible(std::size_t n) {
  std::string s;
  while (s.size() < n) s += "key:" + std::to_string(s.size() % 1000) + " value=abcabcabc ";
  s.resize(n);
  return s;
}

template <class C>
void round_trip(const std::string& in) {
  std::string stored = "junk that compress must replace";
  C::compress(in, stored);
  std::string out(in.size(), '\0');
  C::decompress(stored, in.size(), out.data());
  CHECK(out == in);
}

}  // namespace

TEMPLATE_TEST_CASE("compression round trips", "[compression]", stowage::NoCompression, stowage::Lz4Compression,
                   ReverseCompression) {
  round_trip<TestType>("");
  round_trip<TestType>("a");
  round_trip<TestType>("hello, world");
  round_trip<TestType>(random_bytes(1 << 20, 7));
  round_trip<TestType>(compressible(1 << 20));
  round_trip<TestType>(std::string(100000, '\0'));
}

TEST_CASE("lz4 actually compresses compressible data", "[compression]") {
  std::string stored;
  stowage::Lz4Compression::compress(compressible(1 << 16), stored);
  CHECK(stored.size() < (1 << 16) / 4);
  stowage::NoCompression::compress("abc", stored);
  CHECK(stored == "abc");
}

TEST_CASE("ids and names", "[compression]") {
  STATIC_REQUIRE(stowage::NoCompression::id == 0);
  STATIC_REQUIRE(stowage::Lz4Compression::id == 1);
  CHECK(stowage::NoCompression::name == "none");
  CHECK(stowage::Lz4Compression::name == "lz4");
  using stowage::detail::can_decompress;
  STATIC_REQUIRE(can_decompress<stowage::NoCompression>(0));
  STATIC_REQUIRE(can_decompress<stowage::NoCompression>(1));
  STATIC_REQUIRE(!can_decompress<stowage::NoCompression>(42));
  STATIC_REQUIRE(can_decompress<ReverseCompression>(42));
  STATIC_REQUIRE(!can_decompress<ReverseCompression>(2));
}

TEST_CASE("decompress_by_id dispatches and rejects unknown ids", "[compression]") {
  const std::string in = compressible(5000);
  std::string lz, rev;
  stowage::Lz4Compression::compress(in, lz);
  ReverseCompression::compress(in, rev);
  std::string out(in.size(), '\0');
  CHECK(stowage::detail::decompress_by_id<ReverseCompression>(1, lz, out.size(), out.data()));
  CHECK(out == in);
  out.assign(in.size(), '\0');
  CHECK(stowage::detail::decompress_by_id<ReverseCompression>(42, rev, out.size(), out.data()));
  CHECK(out == in);
  out.assign(in.size(), '\0');
  CHECK(stowage::detail::decompress_by_id<ReverseCompression>(0, in, out.size(), out.data()));
  CHECK(out == in);
  CHECK_FALSE(stowage::detail::decompress_by_id<stowage::Lz4Compression>(42, rev, out.size(), out.data()));
  CHECK_FALSE(stowage::detail::decompress_by_id<stowage::Lz4Compression>(7, rev, out.size(), out.data()));
}

TEST_CASE("NoCompression rejects a wrong raw size", "[compression]") {
  std::string out(10, '\0');
  CHECK_THROWS_AS(stowage::NoCompression::decompress("abc", 4, out.data()), stowage::CorruptionError);
  CHECK_THROWS_AS(stowage::NoCompression::decompress("abc", 2, out.data()), stowage::CorruptionError);
  CHECK_NOTHROW(stowage::NoCompression::decompress("abc", 3, out.data()));
}

TEST_CASE("lz4 rejects garbage and wrong raw sizes", "[compression]") {
  using stowage::CorruptionError;
  using stowage::Lz4Compression;
  const std::string in = compressible(10000);
  std::string stored;
  Lz4Compression::compress(in, stored);

  SECTION("declared size too small or too large") {
    std::string out(in.size() + 100, '\0');
    CHECK_THROWS_AS(Lz4Compression::decompress(stored, in.size() - 1, out.data()), CorruptionError);
    CHECK_THROWS_AS(Lz4Compression::decompress(stored, in.size() + 1, out.data()), CorruptionError);
    CHECK_THROWS_AS(Lz4Compression::decompress(stored, 0, out.data()), CorruptionError);
    CHECK_NOTHROW(Lz4Compression::decompress(stored, in.size(), out.data()));
  }
  SECTION("empty input") {
    std::string out(16, '\0');
    CHECK_THROWS_AS(Lz4Compression::decompress("", 0, out.data()), CorruptionError);
    CHECK_THROWS_AS(Lz4Compression::decompress("", 16, out.data()), CorruptionError);
  }
  SECTION("the error carries no path (the caller adds it)") {
    std::string out(in.size(), '\0');
    try {
      Lz4Compression::decompress(stored, in.size() - 1, out.data());
      FAIL("no exception");
    } catch (const CorruptionError& e) {
      CHECK(e.file().empty());
    }
  }
  SECTION("truncated streams") {
    std::string out(in.size(), '\0');
    for (std::size_t n = 0; n < stored.size(); ++n)
      CHECK_THROWS_AS(Lz4Compression::decompress(std::string_view(stored).substr(0, n), in.size(), out.data()),
                      CorruptionError);
  }
  SECTION("random garbage never writes past the buffer") {
    std::mt19937 rng(3);
    for (int i = 0; i < 2000; ++i) {
      const std::string garbage = random_bytes(1 + rng() % 200, static_cast<std::uint32_t>(i));
      const std::size_t raw_size = rng() % 300;
      // Exactly raw_size bytes: ASan reports any write past it.
      std::unique_ptr<char[]> out(new char[raw_size == 0 ? 1 : raw_size]);
      try {
        Lz4Compression::decompress(garbage, raw_size, out.get());
      } catch (const CorruptionError&) {
      }
    }
  }
  SECTION("flipped bytes of a valid stream: exact size or CorruptionError") {
    std::string out(in.size(), '\0');
    for (std::size_t i = 0; i < stored.size(); ++i) {
      std::string bad = stored;
      bad[i] = static_cast<char>(bad[i] ^ 0x5a);
      try {
        Lz4Compression::decompress(bad, in.size(), out.data());
      } catch (const CorruptionError&) {
      }
    }
  }
  SECTION("sizes beyond LZ4's limits") {
    char out[1];
    CHECK_THROWS_AS(Lz4Compression::decompress(stored, std::size_t{1} << 40, out), CorruptionError);
  }
}

TEST_CASE("lz4 rejects inputs over LZ4_MAX_INPUT_SIZE", "[compression]") {
  // A view over a small buffer with a huge length: compress must refuse it
  // from the length alone, without reading the bytes.
  const char c = 0;
  const std::string_view huge(&c, static_cast<std::size_t>(LZ4_MAX_INPUT_SIZE) + 1);
  std::string out;
  CHECK_THROWS_AS(stowage::Lz4Compression::compress(huge, out), stowage::ValidationError);
}
