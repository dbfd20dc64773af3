// Tests for detail/prefix_search.hpp: upper_bound against std::upper_bound on
// sorted key sets built to tie within the 8-byte window (long common
// prefixes, zero bytes, keys that are prefixes of others, empty keys).
#include <stowage/detail/prefix_search.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

namespace {

using stowage::detail::PrefixSearch;

std::string random_key(std::mt19937& rng, const std::string& alphabet, std::size_t max_len, const std::string& stem) {
  std::string k = stem;
  const std::size_t n = rng() % (max_len + 1);
  for (std::size_t i = 0; i < n; ++i) k.push_back(alphabet[rng() % alphabet.size()]);
  return k;
}

void check_against_std(const std::vector<std::string>& sorted, const std::vector<std::string>& probes) {
  PrefixSearch s;
  std::size_t tie_lookups = 0;
  auto key_at = [&](std::size_t i) {
    ++tie_lookups;
    return std::string_view(sorted[i]);
  };
  s.build(sorted.size(), key_at);
  for (const auto& p : probes) {
    const auto want = static_cast<std::size_t>(std::upper_bound(sorted.begin(), sorted.end(), p) - sorted.begin());
    REQUIRE(s.upper_bound(p, key_at) == want);
  }
}

}  // namespace

TEST_CASE("PrefixSearch::upper_bound agrees with std::upper_bound", "[prefix_search]") {
  std::mt19937 rng(11);
  const std::vector<std::string> alphabets = {std::string("ab"), std::string("a\0b", 3), std::string("\0\xff", 2),
                                              "0123456789"};
  const std::vector<std::string> stems = {"", "000000000000", std::string("common\0prefix", 13)};
  for (const auto& alphabet : alphabets) {
    for (const auto& stem : stems) {
      for (std::size_t max_len : {std::size_t{2}, std::size_t{9}, std::size_t{20}}) {
        std::vector<std::string> keys;
        for (int i = 0; i < 300; ++i) keys.push_back(random_key(rng, alphabet, max_len, stem));
        std::sort(keys.begin(), keys.end());
        keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
        std::vector<std::string> probes = keys;
        for (int i = 0; i < 300; ++i) probes.push_back(random_key(rng, alphabet, max_len + 2, stem));
        for (int i = 0; i < 50; ++i) probes.push_back(random_key(rng, alphabet, max_len, ""));
        probes.push_back("");
        probes.push_back(std::string(30, '\xff'));
        check_against_std(keys, probes);
        // Ties allowed (non-strict order) and tiny sets.
        std::vector<std::string> dup = keys;
        dup.insert(dup.end(), keys.begin(), keys.begin() + static_cast<long>(std::min<std::size_t>(keys.size(), 40)));
        std::sort(dup.begin(), dup.end());
        check_against_std(dup, probes);
        check_against_std({keys.front()}, probes);
      }
    }
  }
  check_against_std({}, {"", "a"});
}

TEST_CASE("PrefixSearch decides distinct 8-byte windows without reading keys", "[prefix_search]") {
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back(std::string("stem-").append(std::to_string(100000 + i)));
  PrefixSearch s;
  s.build(keys.size(), [&](std::size_t i) { return std::string_view(keys[i]); });
  std::size_t reads = 0;
  auto counting = [&](std::size_t i) {
    ++reads;
    return std::string_view(keys[i]);
  };
  CHECK(s.upper_bound("stem-100500", counting) == 501);
  CHECK(s.upper_bound("stem-1005000", counting) == 501);
  CHECK(s.upper_bound("stem-0", counting) == 0);
  CHECK(s.upper_bound("zzz", counting) == 1000);
  CHECK(reads <= 2);  // at most the tie on "100500" itself
  CHECK(s.charge() >= 8 * keys.size());
}
