// entity_stats: statistics per entity in a chunked store, imported from a
// legacy single-file JSON store, then upgraded by the next release of the
// program (schema version 1 -> 2) with a migration that runs once, at open.
//
//   usage: entity_stats [work-directory]   (default: ./entity-stats-demo)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <stowage/json_import.hpp>
#include <stowage/stowage.hpp>

struct StatsV1 {  // what release 1 stored
  static constexpr unsigned version = 1;
  double mean = 0;
  std::uint64_t count = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) { ar & mean & count; }
};

struct Stats {  // release 2 keeps the sum and adds a unit
  static constexpr unsigned version = 2;
  double sum = 0;
  std::uint64_t count = 0;
  std::string unit;
  template <class Archive>
  void serialize(Archive& ar, unsigned) { ar & sum & count & unit; }
};

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path work = argc > 1 ? argv[1] : "entity-stats-demo";
  fs::remove_all(work);
  fs::create_directories(work);
  {  // The legacy file: {"version": "1.0.0", "entities": {id: {mean, count}}}.
    std::ofstream legacy(work / "stats.json");
    legacy << R"({"version": "1.0.0", "entities": {)";
    for (int i = 0; i < 5000; ++i)
      legacy << (i ? "," : "") << "\"sensor." << i << "\": {\"mean\": " << i % 40 << ".5, \"count\": " << i % 9 + 1 << "}";
    legacy << "}}";
  }
  const fs::path dir = work / "store";
  {  // Release 1 imports it.
    stowage::Storage<std::string, StatsV1> db(dir);
    auto imported = stowage::import_json(db, work / "stats.json", [](const std::string& id, const nlohmann::json& r) {
      return std::pair{id, StatsV1{r.at("mean").get<double>(), r.at("count").get<std::uint64_t>()}};
    }, {.records_at = "/entities"});
    std::printf("imported %llu entities\n", static_cast<unsigned long long>(imported.records));
  }
  // Release 2 registers the step from version 1 and opens the same store.
  stowage::Migrator migrations;
  migrations.add<StatsV1, Stats>([](const StatsV1& s) {
    return Stats{s.mean * static_cast<double>(s.count), s.count, "celsius"};
  });
  const auto status = stowage::Storage<std::string, Stats>::migration_status(dir, migrations);
  std::printf("on disk: schema version %u, %zu step(s) pending\n", status.schema_version, status.pending.size());

  stowage::Storage<std::string, Stats> db(dir, {}, migrations);
  if (const auto& m = db.last_migration())
    std::printf("migrated %llu records %u -> %u in %.3f s; backup at %s\n", static_cast<unsigned long long>(m->records),
                m->from_version, m->to_version, m->seconds, m->backup.c_str());
  const auto s = db.get("sensor.42");  // mean 2.5, count 7
  if (!s || s->sum != 17.5 || s->count != 7 || s->unit != "celsius" || db.size() != 5000) {
    std::fprintf(stderr, "entity_stats: unexpected contents after the migration\n");
    return 1;
  }
  std::printf("sensor.42: sum %.1f over %llu readings (%s)\n", s->sum, static_cast<unsigned long long>(s->count),
              s->unit.c_str());
  return 0;
}
