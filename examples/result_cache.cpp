// result_cache: a content-addressed cache of computed results on
// stowage::ContentStore. The key of a computation is the SHA-256 of its input
// (ContentStore::key_of); get_or_compute runs the computation only when no
// result is stored under that key, and only once however many threads ask at
// the same time (the others wait for its result). Results are stored as
// content (named by the digest of their bytes, stored once); a root keeps a
// result through collect(), which removes the rest.
//
//   usage: result_cache [directory]   (the store goes in directory/cache)
// Link stowage::content (OpenSSL's libcrypto computes the digests).
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <stowage/content_store.hpp>

struct WordCount {  // the result of the "expensive" computation
  std::uint64_t words = 0;
  std::string longest;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & words & longest;
  }
};

WordCount count_words(const std::string& text) {
  WordCount r;
  std::istringstream in(text);
  for (std::string w; in >> w; ++r.words)
    if (w.size() > r.longest.size()) r.longest = w;
  return r;
}

using Cache = stowage::ContentStore<WordCount>;

int main(int argc, char** argv) {
  const std::filesystem::path dir = std::filesystem::path(argc > 1 ? argv[1] : "result-cache-demo") / "cache";
  const std::vector<std::string> inputs = {"the quick brown fox", "jumps over the lazy dog",
                                           "the quick brown fox", "content addressed storage",
                                           "jumps over the lazy dog"};  // 3 distinct inputs
  try {
    std::filesystem::remove_all(dir);  // start from an empty store on every run
    std::atomic<int> first{0};
    {
      Cache cache(dir);
      // Four threads ask for every input at once: each distinct input is computed once.
      std::vector<std::thread> threads;
      for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
          for (const auto& in : inputs)
            cache.get_or_compute(Cache::key_of(in), [&] {
              ++first;
              return count_words(in);
            });
        });
      for (auto& t : threads) t.join();
      auto s = cache.stats();
      std::cout << "run 1: " << s.computations << " computations, " << s.waits << " waits, " << s.hits
                << " hits\n";
    }  // closed
    Cache cache(dir);  // reopened, as a later run of the program would
    int second = 0;
    for (const auto& in : inputs) {
      WordCount r = cache.get_or_compute(Cache::key_of(in), [&] {
        ++second;
        return count_words(in);
      });
      std::cout << '"' << in << "\": " << r.words << " words, longest \"" << r.longest << "\"\n";
    }
    // Keep the result of the first input; collect the others.
    cache.pin("keep", Cache::digest_of(count_words(inputs[0])));
    const auto gc = cache.collect();
    std::cout << "computed " << first << " times in run 1, " << second << " in run 2; collect kept "
              << gc.reachable << " and removed " << gc.removed << "\n";
    return (first == 3 && second == 0 && gc.reachable == 1 && gc.removed == 2 && cache.count() == 1) ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
