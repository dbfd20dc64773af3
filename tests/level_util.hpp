// SPDX-License-Identifier: BSL-1.0
// level_util.hpp: helpers for tests of stores with several levels of chunk
// files (cli_test, verify_test): small Options that make many flushes and
// compactions, and a way to add a middle level to a small store.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <vector>

#include <stowage/stowage.hpp>

namespace stowage_test {

// Small files and buffers: many flushes and compactions, so several levels.
inline const stowage::Options kLevels{.cache_bytes = 256 << 10, .chunk_bytes = 4 << 10, .block_bytes = 512,
                                      .write_buffer_bytes = 16 << 10};

// Moves the first half of the last level's files up to level 5: the same
// records (the files do not overlap), now in one more level, so the store
// has a level between level 0 and the last (a small store grows one only
// past 640 KiB). The store must be closed.
inline void split_last_level(const std::filesystem::path& dir) {
  namespace detail = stowage::detail;
  auto fs = stowage::default_file_system();
  auto m = detail::read_manifest(*fs, dir);
  auto& chunks = m.keyspaces[0].chunks;
  std::vector<std::size_t> last;
  for (std::size_t i = 0; i < chunks.size(); ++i)
    if (chunks[i].level == detail::kLastLevel) last.push_back(i);
  REQUIRE(last.size() >= 2);
  for (std::size_t j = 0; j < last.size() / 2; ++j) chunks[last[j]].level = detail::kLastLevel - 1;
  std::stable_sort(chunks.begin(), chunks.end(), detail::manifest_order);
  detail::write_manifest(*fs, dir, m);
}

}  // namespace stowage_test
