// Tests of import_json: legacy single-file JSON stores (an object of records,
// optionally below a pointer; an array) and JSON lines, batching, skipped
// records and clear errors for bad input.
#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <string>

#include <stowage/json_import.hpp>
#include <stowage/stowage.hpp>

#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;
using nlohmann::json;

namespace {

struct EntityStats {
  double mean = 0;
  std::uint64_t count = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & mean & count;
  }
};

using Store = Storage<std::string, EntityStats>;

Options small_options() {
  Options o;
  o.cache_bytes = 256 << 10;
  o.chunk_bytes = 8 << 10;
  return o;
}

std::pair<std::string, EntityStats> entity(const std::string& id, const json& r) {
  return {id, EntityStats{r.at("mean").get<double>(), r.at("count").get<std::uint64_t>()}};
}

void write_text(const std::filesystem::path& p, const std::string& text) { stowage_test::write_all(p, text); }

}  // namespace

TEST_CASE("a legacy single-file JSON store (records below a pointer) imports into a store") {
  TempDir tmp("json");
  json doc;
  doc["version"] = "1.0.0";
  for (int i = 0; i < 3000; ++i)
    doc["entities"]["sensor." + std::to_string(i)] = {{"mean", i * 0.25}, {"count", i}};
  write_text(tmp / "stats.json", doc.dump());
  Store db(tmp / "db", small_options());
  int progress_calls = 0;
  auto stats = import_json(db, tmp / "stats.json", entity,
                           {.records_at = "/entities", .batch = 1000, .progress = [&](std::uint64_t n, std::uint64_t) {
                              ++progress_calls;
                              CHECK(n % 1000 == 0);
                            }});
  CHECK(stats.records == 3000);
  CHECK(stats.skipped == 0);
  CHECK(stats.batches == 3);
  CHECK(progress_calls == 3);
  CHECK(db.size() == 3000);
  auto e = db.get("sensor.1234");
  REQUIRE(e);
  CHECK(e->mean == 1234 * 0.25);
  CHECK(e->count == 1234);
}

TEST_CASE("JSON lines are detected and streamed; std::nullopt skips a record; arrays import too") {
  TempDir tmp("json");
  {
    std::ofstream out(tmp / "stats.jsonl");
    for (int i = 0; i < 2500; ++i) {
      std::string id = "e";
      id += std::to_string(i);
      out << json{{"id", id}, {"mean", i}, {"count", i % 7}}.dump() << "\n";
      if (i % 500 == 0) out << "   \n";  // blank lines are skipped
    }
  }
  Store db(tmp / "db", small_options());
  auto stats = import_json(db, tmp / "stats.jsonl",
                           [](const std::string& name, const json& r) -> std::optional<std::pair<std::string, EntityStats>> {
                             CHECK(name.empty());
                             if (r.at("count").get<int>() == 0) return std::nullopt;
                             return entity(r.at("id").get<std::string>(), r);
                           });
  CHECK(stats.skipped == 358);  // i % 7 == 0 for 358 of 0..2499
  CHECK(stats.records == 2500 - 358);
  CHECK(db.size() == 2500 - 358);
  CHECK_FALSE(db.contains("e0"));
  CHECK(db.get("e1")->count == 1);

  write_text(tmp / "array.json", R"([{"id": "x", "mean": 1.5, "count": 2}, {"id": "y", "mean": 2.5, "count": 3}])");
  auto arr = import_json(db, tmp / "array.json", [](const std::string&, const json& r) { return entity(r.at("id"), r); });
  CHECK(arr.records == 2);
  CHECK(db.get("y")->mean == 2.5);
}

TEST_CASE("bad JSON input gives a ValidationError naming the file and the place") {
  TempDir tmp("json");
  Store db(tmp / "db", small_options());
  auto by_id = [](const std::string&, const json& r) { return entity(r.at("id").get<std::string>(), r); };

  write_text(tmp / "broken.jsonl",
             "{\"id\": \"a\", \"mean\": 1, \"count\": 1}\n{\"id\": \"b\", \"mean\": 2, \"count\": 2}\n{\"id\": \"c\", \n");
  CHECK_THROWS_WITH(import_json(db, tmp / "broken.jsonl", by_id, {.layout = JsonLayout::lines, .batch = 2}),
                    Catch::Contains("broken.jsonl, line 3") && Catch::Contains("not valid JSON"));
  CHECK(db.size() == 2);  // the batch before the bad line was written

  write_text(tmp / "wrong_type.jsonl", "{\"id\": \"d\", \"mean\": \"high\", \"count\": 1}\n{\"id\": \"e\"}\n");
  CHECK_THROWS_WITH(import_json(db, tmp / "wrong_type.jsonl", by_id),
                    Catch::Contains("line 1") && Catch::Contains("does not convert"));

  write_text(tmp / "doc.json", R"({"version": "1.0.0", "entities": 7})");
  CHECK_THROWS_WITH(import_json(db, tmp / "doc.json", entity, {.records_at = "/entities"}),
                    Catch::Contains("neither an object nor an array"));
  CHECK_THROWS_WITH(import_json(db, tmp / "doc.json", entity, {.records_at = "/missing"}),
                    Catch::Contains("nothing at /missing"));
  write_text(tmp / "truncated.json", R"({"a": {"mean": 1, "count": 1}, "b": {"mean")");
  CHECK_THROWS_WITH(import_json(db, tmp / "truncated.json", entity), Catch::Contains("is not valid JSON"));
  write_text(tmp / "bad_record.json", R"({"a": {"mean": 1, "count": 1}, "b": {"mean": 1}})");
  CHECK_THROWS_WITH(import_json(db, tmp / "bad_record.json", entity), Catch::Contains("record \"b\""));
  CHECK_THROWS_AS(import_json(db, tmp / "absent.json", entity), IoError);
  CHECK_THROWS_AS(import_json(db, tmp / "doc.json", entity, {.batch = 0}), ValidationError);
  CHECK(db.size() == 2);
}
