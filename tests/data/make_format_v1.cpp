// make_format_v1.cpp: writes the format-version-1 fixture store. Built by
// make_format_v1.sh against the headers of the commit tagged `format-v1`
// (the last one that wrote format 1), never against today's headers.
//
//   usage: make_format_v1 <empty-directory>
#include <cstdio>
#include <stowage/stowage.hpp>

#include "fixture_v1.hpp"

int main(int argc, char** argv) {
  using namespace stowage_fixture;
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_format_v1 <empty-directory>\n");
    return 2;
  }
  stowage::Options opt;
  opt.cache_bytes = 256 << 10;
  opt.block_bytes = 512;
  opt.chunk_bytes = 4096;            // several chunk files
  opt.checkpoint_on_close = false;   // leave the last operations in the WAL
  stowage::Storage<std::string, ReadingV1> db(argv[1], opt);
  for (int i = 0; i < kFixturePuts; ++i) db.put(fixture_key(i), fixture_first_value(i));
  db.checkpoint();
  for (int i = 0; i < kFixtureOverwrites; ++i) db.put(fixture_key(i), fixture_overwrite_value(i));
  for (int i = kFixtureErasedFrom; i < kFixturePuts; ++i) db.erase(fixture_key(i));
  db.flush();
  std::printf("format-1 fixture: %zu records, %llu chunks\n", db.size(),
              static_cast<unsigned long long>(db.stats().chunks));
  return 0;
}
