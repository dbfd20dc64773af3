// SPDX-License-Identifier: BSL-1.0
// Tests of the opt-in separate compilation mode: this file is built with
// STOWAGE_SEPARATE_COMPILATION (as is separate_compilation_engine.cpp, the
// one file of this program that includes <stowage/engine_src.hpp>). It
// includes only <stowage/stowage.hpp>, which then must not define the engine:
// every Storage call here goes through EngineHandle to the other file.
#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <stowage/stowage.hpp>

#include "test_util.hpp"

#ifndef STOWAGE_SEPARATE_COMPILATION
#error "separate_compilation_test must be built with STOWAGE_SEPARATE_COMPILATION"
#endif

using namespace stowage;
using stowage_test::TempDir;

namespace {

template <class T, class = void>
struct is_complete : std::false_type {};
template <class T>
struct is_complete<T, std::void_t<decltype(sizeof(T))>> : std::true_type {};

using Store = Storage<std::uint64_t, std::string>;

static_assert(std::is_same_v<Store::engine_type, EngineHandle<Lz4Compression, LruEviction, ThreadLock>>);
// The light include really is light: the engine and the policies are only
// declared here (a change that pulls engine.hpp into stowage.hpp fails this).
// Not in the pass against the single header, which holds every part.
#ifndef STOWAGE_SINGLE_HEADER
static_assert(!is_complete<Engine<Lz4Compression, LruEviction, ThreadLock>>::value,
              "stowage.hpp defined the engine in a STOWAGE_SEPARATE_COMPILATION file");
static_assert(!is_complete<LruEviction>::value && !is_complete<Lz4Compression>::value,
              "stowage.hpp defined the policies in a STOWAGE_SEPARATE_COMPILATION file");
static_assert(!is_complete<Migrator>::value, "stowage.hpp defined Migrator in a STOWAGE_SEPARATE_COMPILATION file");
#endif

Options small_options() {
  Options o;
  o.cache_bytes = 1 << 20;
  o.chunk_bytes = 16 << 10;
  return o;
}

}  // namespace

TEST_CASE("a store used from a file that only declares the engine reads, writes, scans and reopens") {
  TempDir tmp("separate");
  const auto dir = tmp / "db";
  std::map<std::uint64_t, std::string> model;
  {
    Store db(dir, small_options());
    for (std::uint64_t i = 0; i < 3000; ++i) {
      db.put(i * 7 % 3001, "value " + std::to_string(i));
      model[i * 7 % 3001] = "value " + std::to_string(i);
    }
    CHECK(db.erase(7));
    model.erase(7);
    CHECK_FALSE(db.erase(7));
    db.discard(14);
    model.erase(14);
    // The conditional and range operations, through the handle.
    CHECK_FALSE(db.insert(21, "not stored"));
    CHECK(db.insert(4000, "inserted"));
    model[4000] = "inserted";
    CHECK(db.update(21, [](std::string& v) { v += "+"; }));
    model[21] += "+";
    CHECK(db.update(28, [](std::optional<std::string>& v) { v.reset(); }));
    model.erase(28);
    const auto in_range = std::distance(model.lower_bound(2900), model.lower_bound(2910));
    CHECK(db.erase_range(2900, 2910) == static_cast<std::size_t>(in_range));
    model.erase(model.lower_bound(2900), model.lower_bound(2910));
    CHECK(db.count(0, 100) == static_cast<std::size_t>(std::distance(model.begin(), model.lower_bound(100))));
    std::vector<std::pair<std::uint64_t, std::string>> batch{{5000, "a"}, {5001, "b"}};
    db.put_batch(batch);
    model[5000] = "a";
    model[5001] = "b";
    db.checkpoint();  // chunk files, so scans and gets read blocks through the other file's engine
    CHECK(db.get(21) == model[21]);
    CHECK_FALSE(db.get(7).has_value());
    CHECK(db.contains(5001));
    CHECK(db.get_batch(std::vector<std::uint64_t>{0, 7, 5000}) ==
          std::vector<std::optional<std::string>>{model[0], std::nullopt, "a"});
    CHECK(db.size() == model.size());
    CHECK(db.stats().records == model.size());
    CHECK(db.path() == dir);
    CHECK(db.options().chunk_bytes == small_options().chunk_bytes);
    CHECK_FALSE(db.last_migration().has_value());

    // A snapshot through the handle: reads at its moment after later writes.
    {
      auto snap = db.snapshot();
      db.put(21, "later");
      db.erase(5000);
      CHECK(snap.get(21) == model[21]);
      CHECK(snap.contains(5000));
      CHECK(snap.size() == model.size());
      std::size_t seen = 0;
      for (const auto& [k, v] : snap.scan()) seen += model.at(k) == v ? 1 : 0;
      CHECK(seen == model.size());
      db.put(21, model[21]);
      db.put(5000, "a");
    }

    // A full scan, and a bounded one whose iterator is copied midway.
    std::map<std::uint64_t, std::string> seen;
    for (const auto& [k, v] : db.scan()) seen[k] = v;
    CHECK(seen == model);
    auto range = db.scan(100, 200);
    auto it = range.begin();
    std::advance(it, 10);
    auto copy = it;
    std::size_t rest = 0, rest_of_copy = 0;
    for (; it != range.end(); ++it) ++rest;
    for (; copy != range.end(); ++copy) ++rest_of_copy;
    CHECK(rest == rest_of_copy);
    CHECK(rest + 10 == static_cast<std::size_t>(std::distance(model.lower_bound(100), model.lower_bound(200))));
    db.flush();
    db.compact();
    CHECK(db.size() == model.size());
    db.close();
    CHECK_THROWS_AS(db.put(1, "closed"), ValidationError);
  }
  const MigrationStatus status = Store::migration_status(dir);
  CHECK(status.up_to_date());
  CHECK(status.format_version == status.current_format_version);
  Store again(dir, small_options());
  CHECK(again.size() == model.size());
  CHECK(again.get(5000) == std::optional<std::string>("a"));
}

TEST_CASE("errors thrown by the engine in the other file reach this one with their types") {
  TempDir tmp("separate-errors");
  const auto dir = tmp / "db";
  Store db(dir, small_options());
  Options at_once = small_options();
  at_once.lock_timeout = std::chrono::milliseconds(0);  // fail at once instead of waiting for db
  CHECK_THROWS_AS(Store(dir, at_once), LockError);
  db.close();
  Storage<std::string, std::string> named(tmp / "named", small_options());
  CHECK_THROWS_AS(named.put(std::string(kMaxKeyBytes + 1, 'k'), "v"), ValidationError);
  // Other types over the same directory: the manifest records the first ones.
  CHECK_THROWS_AS((Storage<std::string, std::string>(dir, small_options())), MigrationError);
}

TEST_CASE("a store over other policies works when the engine file compiles them (STOWAGE_COMPILE_ENGINE)") {
  using Plain = Storage<std::uint64_t, std::string, BinarySerializer, NoCompression, LruEviction, NoLock>;
  static_assert(std::is_same_v<Plain::engine_type, EngineHandle<NoCompression, LruEviction, NoLock>>);
  TempDir tmp("separate-policies");
  {
    Plain db(tmp / "db", small_options());
    for (std::uint64_t i = 0; i < 500; ++i) db.put(i, std::to_string(i));
    db.checkpoint();
    CHECK(db.get(499) == std::optional<std::string>("499"));
    CHECK(db.size() == 500);
  }
  // The policies are recorded: the default ones (LZ4) do not open it.
  CHECK_THROWS_AS(Store(tmp / "db", small_options()), MigrationError);
}
