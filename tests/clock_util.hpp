// SPDX-License-Identifier: BSL-1.0
// clock_util.hpp: helpers for tests of what time decides (history_test,
// expiry_test): a wall clock the test moves by hand (Options::clock), so
// nothing sleeps; small Options that read it; and the records a store's
// files hold.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include <stowage/stowage.hpp>

namespace stowage_test {

// A wall clock tests move by hand; copies share the time.
struct ManualClock {
  std::shared_ptr<std::chrono::system_clock::time_point> t =
      std::make_shared<std::chrono::system_clock::time_point>(std::chrono::sys_days(std::chrono::year(2026) / 1 / 1));
  void advance(std::chrono::seconds s) const { *t += s; }
  std::chrono::system_clock::time_point now() const { return *t; }
  std::function<std::chrono::system_clock::time_point()> fn() const {
    auto p = t;
    return [p] { return *p; };
  }
};

// Small files and buffers (many flushes and compactions) on clock.
inline stowage::Options clocked_options(const ManualClock& clock) {
  return stowage::Options{.cache_bytes = 256 << 10,
                          .chunk_bytes = 8 << 10,
                          .block_bytes = 512,
                          .write_buffer_bytes = 16 << 10,
                          .clock = clock.fn()};
}

// Records in every level of the store's files (tombstones included).
inline std::uint64_t stored_records(const stowage::Database<>& db) {
  std::uint64_t n = 0;
  for (const auto& l : db.stats().levels) n += l.records;
  return n;
}

}  // namespace stowage_test
