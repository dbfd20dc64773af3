// result_cache: a content-addressed cache of computed results. The key is the
// SHA-256 of the input (OpenSSL's libcrypto), the value is the typed result.
// A result is computed only when its input's digest is not stored yet, so
// identical inputs are computed once, in this run and in every later run.
//
//   usage: result_cache [directory]   (the store goes in directory/cache)
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <stowage/stowage.hpp>

using Digest = std::array<std::uint8_t, 32>;  // std::array of integers is a valid Key

Digest sha256(const std::string& input) {
  Digest d{};
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), d.data(), &len, EVP_sha256(), nullptr) != 1 || len != d.size())
    throw std::runtime_error("EVP_Digest(SHA-256) failed");
  return d;
}

struct WordCount {  // the result of the "expensive" computation
  std::uint64_t words = 0;
  std::string longest;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) { ar & words & longest; }
};

WordCount compute(const std::string& text) {
  WordCount r;
  std::istringstream in(text);
  for (std::string w; in >> w; ++r.words)
    if (w.size() > r.longest.size()) r.longest = w;
  return r;
}

using Cache = stowage::Storage<Digest, WordCount>;

// Compute-if-missing. Equal inputs give equal results, so two threads racing
// on the same input both put the same value: harmless.
WordCount cached(Cache& cache, const std::string& input, int& computed) {
  const Digest key = sha256(input);
  if (auto hit = cache.get(key)) return *hit;
  ++computed;
  WordCount result = compute(input);
  cache.put(key, result);
  return result;
}

int main(int argc, char** argv) {
  const std::filesystem::path dir = std::filesystem::path(argc > 1 ? argv[1] : "result-cache-demo") / "cache";
  const std::vector<std::string> inputs = {"the quick brown fox", "jumps over the lazy dog",
                                           "the quick brown fox", "content addressed storage",
                                           "jumps over the lazy dog"};  // 3 distinct inputs
  try {
    std::filesystem::remove_all(dir);  // start from an empty store on every run
    int first = 0, second = 0;
    std::vector<WordCount> before;
    {
      Cache cache(dir);
      for (const auto& in : inputs) before.push_back(cached(cache, in, first));
    }  // closed
    Cache cache(dir);  // reopened, as a later run of the program would
    bool same = true;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      WordCount r = cached(cache, inputs[i], second);
      same = same && r.words == before[i].words && r.longest == before[i].longest;
      std::cout << '"' << inputs[i] << "\": " << r.words << " words, longest \"" << r.longest << "\"\n";
    }
    std::cout << "computed " << first << " times in run 1, " << second << " in run 2; " << cache.size()
              << " results stored\n";
    return (first == 3 && second == 0 && same && cache.size() == 3 && before[3].words == 3) ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
