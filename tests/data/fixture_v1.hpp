// fixture_v1.hpp: the records of the format-version-1 fixture store
// (tests/data/format-v1/), shared by its generator (make_format_v1.cpp, built
// against the format-1 headers) and by migration_test.cpp, which opens it
// with today's headers.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace stowage_fixture {

/// The fixture's value type, at schema version 1.
struct ReadingV1 {
  static constexpr unsigned version = 1;
  std::string entity;
  double mean = 0;
  std::uint64_t count = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & entity & mean & count;
  }
  friend bool operator==(const ReadingV1&, const ReadingV1&) = default;
};

inline std::string fixture_key(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "entity-%04d", i);
  return buf;
}

/// 300 records put and checkpointed, then 50 overwritten and 10 erased
/// (these last 60 operations live only in the WAL).
inline constexpr int kFixturePuts = 300;
inline constexpr int kFixtureOverwrites = 50;
inline constexpr int kFixtureErasedFrom = 290;

inline ReadingV1 fixture_first_value(int i) { return {fixture_key(i), i * 0.5, static_cast<std::uint64_t>(i)}; }
inline ReadingV1 fixture_overwrite_value(int i) {
  return {fixture_key(i), i * 0.5 + 1000, static_cast<std::uint64_t>(i) + 1};
}

/// What the fixture holds: 290 records.
inline std::map<std::string, ReadingV1> fixture_expected() {
  std::map<std::string, ReadingV1> m;
  for (int i = 0; i < kFixturePuts; ++i) m[fixture_key(i)] = fixture_first_value(i);
  for (int i = 0; i < kFixtureOverwrites; ++i) m[fixture_key(i)] = fixture_overwrite_value(i);
  for (int i = kFixtureErasedFrom; i < kFixturePuts; ++i) m.erase(fixture_key(i));
  return m;
}

}  // namespace stowage_fixture
