// document_stream: a collection of 200,000 documents written and streamed back
// with a fixed memory budget. cache_bytes bounds the block cache plus the
// write buffer however large the collection grows; scan() reads one block at a
// time (and keeps it out of the cache), so an aggregate over every document
// needs no more memory than that; point lookups use the bounded block cache.
//
//   usage: document_stream [directory]   (the store goes in directory/docs)
#include <sys/resource.h>  // getrusage: peak memory of this process (POSIX)

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <stowage/stowage.hpp>

struct Document {
  std::string title;
  std::string body;
  std::vector<std::string> tags;
  std::uint32_t words = 0;
  bool operator==(const Document&) const = default;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) { ar & title & body & tags & words; }
};

Document make_document(std::uint64_t id) {  // deterministic test content
  static const char* const vocabulary[] = {"storage", "chunk", "block", "cache", "index", "record", "key"};
  Document d;
  d.title = "document ";
  d.title += std::to_string(id);
  d.words = static_cast<std::uint32_t>(5 + id % 20);
  for (std::uint32_t w = 0; w < d.words; ++w) (d.body += vocabulary[(id * 31 + w * 7) % 7]) += ' ';
  d.tags = {id % 2 ? "odd" : "even"};
  if (id % 10 == 0) d.tags.emplace_back("tenth");
  return d;
}

int main(int argc, char** argv) {
  const std::filesystem::path dir = std::filesystem::path(argc > 1 ? argv[1] : "document-stream-demo") / "docs";
  constexpr std::uint64_t kDocuments = 200'000;
  const stowage::Options options{.cache_bytes = 256 << 10};  // the smallest budget Options accepts
  try {
    std::filesystem::remove_all(dir);  // start empty on every run
    std::uint64_t expected_words = 0;
    {
      stowage::Storage<std::uint64_t, Document> db(dir, options);
      std::vector<std::pair<std::uint64_t, Document>> batch;  // batches: one WAL commit per 1,000
      for (std::uint64_t id = 0; id < kDocuments; ++id) {
        batch.emplace_back(id, make_document(id));
        expected_words += batch.back().second.words;
        if (batch.size() == 1000) db.put_batch(batch), batch.clear();
      }
      db.put_batch(batch);
    }
    stowage::Storage<std::uint64_t, Document> db(dir, options);
    std::uint64_t count = 0, words = 0, tenth = 0, bytes = 0;
    for (const auto& [id, doc] : db.scan()) {  // streams: one document at a time
      ++count;
      words += doc.words;
      bytes += doc.body.size();
      if (doc.tags.size() == 2 && doc.tags[1] == "tenth") ++tenth;
    }
    std::uint64_t window = 0, lookups = 0;  // a range, documents 1000..1999, then random lookups
    for (const auto& [id, doc] : db.scan(1000, 2000)) window += doc == make_document(id);
    for (std::uint64_t i = 0; i < 20'000; ++i) lookups += db.get(i * 7919 % kDocuments).has_value();

    const stowage::Stats s = db.stats();
    std::cout << count << " documents, " << words << " words, " << bytes << " body bytes\n"
              << "disk " << s.disk_bytes << " bytes in " << s.chunks << " chunks; block cache " << s.cache_bytes
              << " of " << s.cache_capacity << " bytes, " << s.cache_misses << " misses, " << s.cache_evictions
              << " evictions\n";
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) == 0) std::cout << "peak RSS " << usage.ru_maxrss / 1024 << " MiB\n";
    const bool ok = count == kDocuments && words == expected_words && tenth == kDocuments / 10 && window == 1000 &&
                    lookups == 20'000 && s.cache_bytes <= s.cache_capacity && db.size() == kDocuments;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
