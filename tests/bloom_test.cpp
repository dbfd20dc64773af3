// Tests of the chunk Bloom filter: no false negatives, a bounded false-positive
// rate at 10 bits per key, and rejection of malformed serialized filters; and
// of the in-memory BlockedBloomFilter (the write buffer's key filter).
#include <stowage/bloom.hpp>

#include <catch2/catch.hpp>

#include <string>

using stowage::CorruptionError;
using stowage::detail::BlockedBloomFilter;
using stowage::detail::bloom_hash;
using stowage::detail::BloomFilter;
using stowage::detail::BloomFilterBuilder;

namespace {
std::string key_of(std::uint64_t i) { return "user:" + std::to_string(i * 2654435761u) + ":" + std::to_string(i); }

// The share of keys key_of(from .. from + n - 1) that filter f (either kind)
// may contain.
template <class Filter>
double positive_rate(const Filter& f, std::uint64_t from, std::uint64_t n) {
  std::uint64_t yes = 0;
  for (std::uint64_t i = from; i < from + n; ++i) yes += f.may_contain(bloom_hash(key_of(i)));
  return static_cast<double>(yes) / static_cast<double>(n);
}
}  // namespace

TEST_CASE("Bloom filter has no false negatives and few false positives", "[bloom]") {
  constexpr std::uint64_t n = 100000;
  BloomFilterBuilder b;
  CHECK(b.probes() == 7);
  for (std::uint64_t i = 0; i < n; ++i) b.add(bloom_hash(key_of(i)));
  CHECK(b.size() == n);
  const std::string bytes = b.finish();
  CHECK(bytes.size() == n * 10 / 8 + 1);
  const BloomFilter f(bytes);
  CHECK(f.probes() == 7);
  CHECK(f.bytes() == bytes);
  for (std::uint64_t i = 0; i < n; ++i) REQUIRE(f.may_contain(bloom_hash(key_of(i))));
  const double rate = positive_rate(f, n, n);
  INFO("false-positive rate " << rate);
  CHECK(rate < 0.02);
}

TEST_CASE("Bloom filter sizes and probes follow bits per key", "[bloom]") {
  for (unsigned bpk : {1u, 4u, 10u, 16u, 64u}) {
    BloomFilterBuilder b(bpk);
    CHECK(b.probes() >= 1);
    CHECK(b.probes() <= 30);
    for (std::uint64_t i = 0; i < 1000; ++i) b.add(bloom_hash(key_of(i)));
    const BloomFilter f(b.finish());
    for (std::uint64_t i = 0; i < 1000; ++i) REQUIRE(f.may_contain(bloom_hash(key_of(i))));
  }
  CHECK_THROWS_AS(BloomFilterBuilder(0), stowage::ValidationError);
  CHECK_THROWS_AS(BloomFilterBuilder(65), stowage::ValidationError);
}

TEST_CASE("small and empty Bloom filters", "[bloom]") {
  SECTION("no keys: minimal filter that rejects (almost) everything") {
    const std::string bytes = BloomFilterBuilder().finish();
    CHECK(bytes.size() == 9);
    const BloomFilter f(bytes);
    for (std::uint64_t i = 0; i < 100; ++i) CHECK_FALSE(f.may_contain(bloom_hash(key_of(i))));
  }
  SECTION("one key") {
    BloomFilterBuilder b;
    b.add(bloom_hash(""));
    const BloomFilter f(b.finish());
    CHECK(f.may_contain(bloom_hash("")));
  }
  SECTION("a default filter holds no information") {
    const BloomFilter f;
    CHECK(f.may_contain(1));
    CHECK(f.probes() == 0);
  }
  SECTION("duplicates are harmless") {
    BloomFilterBuilder b;
    for (int i = 0; i < 10; ++i) b.add(42);
    const BloomFilter f(b.finish());
    CHECK(f.may_contain(42));
  }
}

TEST_CASE("bloom_hash is stable", "[bloom]") {
  // The hash is part of the file format: it must never change.
  CHECK(bloom_hash("abc") == stowage::detail::checksum("abc", stowage::detail::kBloomHashSeed));
  CHECK(bloom_hash("abc") == bloom_hash(std::string("abc")));
  CHECK(bloom_hash("abc") != bloom_hash("abd"));
}

TEST_CASE("malformed filter bytes are rejected", "[bloom]") {
  CHECK_THROWS_AS(BloomFilter(std::string()), CorruptionError);
  CHECK_THROWS_AS(BloomFilter(std::string(1, '\x07')), CorruptionError);
  CHECK_THROWS_AS(BloomFilter(std::string(8, '\xff')), CorruptionError);  // 7 bytes of bits: too few
  std::string ok = BloomFilterBuilder().finish();
  CHECK_NOTHROW(BloomFilter(ok));
  std::string bad = ok;
  bad.back() = 0;
  CHECK_THROWS_AS(BloomFilter(bad), CorruptionError);
  bad.back() = 31;
  CHECK_THROWS_AS(BloomFilter(bad), CorruptionError);
  bad.back() = static_cast<char>(0xff);
  CHECK_THROWS_AS(BloomFilter(bad), CorruptionError);
  bad.back() = 30;
  CHECK_NOTHROW(BloomFilter(bad));
  try {
    BloomFilter(std::string(3, '\0'), "some/chunk", 1234);
    FAIL("no exception");
  } catch (const CorruptionError& e) {
    CHECK(e.file() == "some/chunk");
    CHECK(e.offset() == 1234);
  }
}

TEST_CASE("every probe count and size answers without false negatives", "[bloom]") {
  // Hand-made filters with odd sizes (not multiples of 8 bytes) still work.
  for (std::size_t bytes : {8u, 9u, 13u, 100u, 1001u}) {
    for (unsigned k = 1; k <= 30; k += 7) {
      std::string raw(bytes, '\xff');
      raw.push_back(static_cast<char>(k));
      const BloomFilter f(raw);
      for (std::uint64_t h = 0; h < 100; ++h) CHECK(f.may_contain(h * 0x9e3779b97f4a7c15ULL));
    }
  }
}

TEST_CASE("blocked Bloom filter has no false negatives and few false positives at 12 bits per key",
          "[bloom]") {
  constexpr std::uint64_t n = 100000;
  BlockedBloomFilter f(n * 12 / 8);
  REQUIRE(f.enabled());
  CHECK(f.charge() >= n * 12 / 8);
  CHECK(f.charge() <= n * 12 / 8 + 2 * BlockedBloomFilter::kBlockBytes);
  CHECK(positive_rate(f, 0, n) == 0);  // an empty filter answers "no" to everything
  for (std::uint64_t i = 0; i < n; ++i) f.add(bloom_hash(key_of(i)));
  CHECK(positive_rate(f, 0, n) == 1);  // no false negatives
  const double rate = positive_rate(f, n, n);
  INFO("false-positive rate " << rate);
  CHECK(rate < 0.02);
  CHECK(rate > 0);  // the filter is not exact: the check above measures something
}

TEST_CASE("blocked Bloom filter past its size, empty, tiny and moved", "[bloom]") {
  // Three times the keys it was sized for: more "maybe", never a false "no".
  BlockedBloomFilter over(1000 * 12 / 8);
  for (std::uint64_t i = 0; i < 3000; ++i) over.add(bloom_hash(key_of(i)));
  CHECK(positive_rate(over, 0, 3000) == 1);
  CHECK(positive_rate(over, 3000, 10000) < 0.5);
  // Under one block: no filter, every answer "maybe".
  const BlockedBloomFilter none(63), defaulted;
  for (const BlockedBloomFilter* f : {&none, &defaulted}) {
    CHECK_FALSE(f->enabled());
    CHECK(f->charge() == 0);
    CHECK(f->may_contain(0));
    CHECK(f->may_contain(bloom_hash("anything")));
  }
  // One block: every hash lands in it.
  BlockedBloomFilter one(64);
  CHECK(one.enabled());
  one.add(~std::uint64_t{0});
  one.add(0);
  CHECK(one.may_contain(~std::uint64_t{0}));
  CHECK(one.may_contain(0));
  // A move takes the blocks and leaves an empty filter behind.
  BlockedBloomFilter moved(std::move(one));
  CHECK(moved.may_contain(0));
  CHECK_FALSE(one.enabled());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  CHECK(one.may_contain(12345));
  BlockedBloomFilter assigned(4096);
  assigned = std::move(moved);
  CHECK(assigned.charge() == 2 * BlockedBloomFilter::kBlockBytes);
  CHECK(assigned.may_contain(~std::uint64_t{0}));
}
