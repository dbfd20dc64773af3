// SPDX-License-Identifier: BSL-1.0
// compaction.hpp: which compaction a store runs next (the picking; the engine
// runs it). Leveled, with level sizes set from the bottom (as RocksDB's
// dynamic level sizing): the last level is as large as it is, each level
// above targets a tenth of the one below, and levels whose target would fall
// under the base size stay empty, so a small store has few levels and each
// record is rewritten about once per level, O(log N) times in all.
//
//  - Level 0 (one run per flush, runs may overlap) is merged, every run at
//    once, into the base level when it holds kL0Trigger runs.
//  - A level over its target has one file merged into the level below (the
//    files after the last one it compacted, round robin, so the whole key
//    space is visited).
//  - A level above the base level that holds files (the base moved down as
//    the store grew smaller, or an older layout) is emptied downward first.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "version.hpp"

namespace stowage::detail {

/// Level-0 runs that start a level-0 compaction.
inline constexpr std::size_t kL0Trigger = 4;
/// Level-0 runs from which each commit is slowed a little (back-pressure).
/// RocksDB's default; LevelDB slows from 8. Each L0 merge then takes more
/// runs at once, so the base level is rewritten less often per byte put.
inline constexpr std::size_t kL0Slowdown = 20;
/// Level-0 runs from which commits wait for compaction.
inline constexpr std::size_t kL0Stop = 36;
/// Each level targets this many times the bytes of the level above it.
inline constexpr std::uint64_t kLevelFanout = 10;

/// Target size per level and the base level (where level 0 is merged into).
struct LevelTargets {
  std::uint32_t base = kLastLevel;
  std::array<std::uint64_t, kLevels> bytes{};  ///< 0 for levels above the base
};

/// Targets for v: the last level's size (at least base_bytes), a tenth of
/// it per level up, down to base_bytes.
inline LevelTargets level_targets(const Version& v, std::uint64_t base_bytes) {
  LevelTargets t;
  std::uint64_t size = v.levels[kLastLevel].bytes > base_bytes ? v.levels[kLastLevel].bytes : base_bytes;
  t.bytes[kLastLevel] = size;
  for (std::uint32_t l = kLastLevel - 1; l >= 1; --l) {
    size /= kLevelFanout;
    if (size < base_bytes) break;
    t.bytes[l] = size;
    t.base = l;
  }
  return t;
}

/// Bytes the levels hold beyond their targets (what compaction still owes).
inline std::uint64_t pending_compaction_bytes(const Version& v, const LevelTargets& t) {
  std::uint64_t owed = 0;
  if (v.l0.size() >= kL0Trigger)
    for (const auto& r : v.l0) owed += r.bytes;
  for (std::uint32_t l = 1; l < kLastLevel; ++l)
    if (v.levels[l].bytes > t.bytes[l]) owed += v.levels[l].bytes - t.bytes[l];
  return owed;
}

/// One compaction to run.
struct CompactionPick {
  std::uint32_t level = 0;   ///< input level (0: every level-0 run)
  std::uint32_t output = 0;  ///< the level the output goes to
  std::size_t file = 0;      ///< level > 0: the input file's index in that level
  double score = 0;          ///< > 1: how far past its trigger the level is
};

/// The most urgent compaction of v, if any is due. after[l] is the last key
/// compacted out of level l (the round-robin position).
inline std::optional<CompactionPick> pick_compaction(const Version& v, const LevelTargets& t,
                                                     const std::array<std::string, kLevels>& after) {
  std::optional<CompactionPick> best;
  auto consider = [&](std::uint32_t level, std::uint32_t output, double score) {
    if (score >= 1.0 && (!best || score > best->score)) best = CompactionPick{level, output, 0, score};
  };
  if (!v.l0.empty()) {
    // Into the base level, or a level above it that still holds files:
    // newer records never go below older ones.
    std::uint32_t out = t.base;
    for (std::uint32_t l = 1; l < t.base; ++l)
      if (!v.levels[l].empty()) {
        out = l;
        break;
      }
    consider(0, out, static_cast<double>(v.l0.size()) / static_cast<double>(kL0Trigger));
  }
  for (std::uint32_t l = 1; l < kLastLevel; ++l) {
    const Run& r = v.levels[l];
    if (r.empty()) continue;
    const double score =
        l < t.base ? 1e6 : static_cast<double>(r.bytes) / static_cast<double>(t.bytes[l] == 0 ? 1 : t.bytes[l]);
    consider(l, l + 1, score);
  }
  if (best && best->level > 0) {
    const Run& r = v.levels[best->level];
    std::size_t i = 0;
    // An empty after[] means "from the start" (a file may begin with the
    // empty key, which no key is below).
    const std::string& from = after[best->level];
    while (!from.empty() && i < r.files.size() && !(std::string_view(from) < r.files[i]->ref().first_key)) ++i;
    best->file = i == r.files.size() ? 0 : i;
  }
  return best;
}

}  // namespace stowage::detail
