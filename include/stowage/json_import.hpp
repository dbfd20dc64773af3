// SPDX-License-Identifier: BSL-1.0
// json_import.hpp: moves legacy JSON data into a store: a JSON-lines file
// (one record per line, streamed with bounded memory), or one JSON document
// whose records are the members of an object (`{"id": {...}, ...}`, the
// single-file layout many hand-rolled stores start with) or the elements of
// an array, optionally below a JSON pointer (`{"version": "1.0.0",
// "entities": {...}}` with records_at = "/entities").
//
// Needs nlohmann/json (Debian: nlohmann-json3-dev), header-only; link the
// CMake target stowage::json_import, which adds it. Not part of stowage.hpp
// or the single header.
//
//     auto stats = stowage::import_json(db, "entities.json",
//         [](const std::string& id, const nlohmann::json& r) {
//           return std::pair{id, Entity{r.at("mean").get<double>(), r.at("count").get<std::uint64_t>()}};
//         },
//         {.records_at = "/entities"});
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "error.hpp"

namespace stowage {

/// How a JSON file holds its records.
enum class JsonLayout {
  automatic,  ///< JSON lines if the file's first two non-blank lines are both complete JSON values, else one document
  lines,      ///< one JSON value per line (blank lines skipped); the record's name is ""
  document,   ///< one JSON document: records are the members of an object (named) or the elements of an array
};

/// Options of import_json (designated initialisers read well).
struct JsonImportOptions {
  JsonLayout layout = JsonLayout::automatic;
  /// For documents: a JSON pointer to the object or array of records
  /// ("" is the whole document).
  std::string records_at = "";
  /// Records written per atomic put_batch.
  std::size_t batch = 1000;
  /// Called after each batch with the totals so far.
  std::function<void(std::uint64_t records, std::uint64_t skipped)> progress{};
};

/// What import_json did.
struct JsonImportStats {
  std::uint64_t records = 0;  ///< records written (a name seen twice counts twice; the last one wins)
  std::uint64_t skipped = 0;  ///< records the conversion returned std::nullopt for
  std::uint64_t batches = 0;  ///< put_batch calls
};

namespace detail {

inline bool json_line_is_blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

inline JsonLayout detect_json_layout(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line;
  int complete = 0;
  while (complete < 2 && std::getline(in, line)) {
    if (json_line_is_blank(line)) continue;
    if (!nlohmann::json::accept(line)) return JsonLayout::document;
    ++complete;
  }
  // One complete value on one line is a document of one line, or JSON lines
  // with one record: both read the same way unless it is an object or array
  // of records, so prefer the document reading.
  return complete >= 2 ? JsonLayout::lines : JsonLayout::document;
}

}  // namespace detail

/// Imports the records of a JSON file into `store` through
/// `convert(const std::string& name, const nlohmann::json& record)`, which
/// returns std::pair<Key, Value> or std::optional of it (std::nullopt skips
/// the record). `name` is the member name for records of an object, "" for
/// JSON lines and array elements. Records are written in atomic batches of
/// options.batch; on an error the batches before it stay written.
///
/// Throws ValidationError naming the file and the line (JSON lines) or the
/// record when the JSON is malformed, when records_at does not lead to an
/// object or array, or when convert throws; IoError when the file cannot be
/// read; whatever the store throws.
template <class Store, class Convert>
JsonImportStats import_json(Store& store, const std::filesystem::path& file, Convert&& convert,
                            JsonImportOptions options = {}) {
  using Key = typename Store::key_type;
  using Value = typename Store::mapped_type;
  static_assert(std::is_invocable_v<Convert&, const std::string&, const nlohmann::json&>,
                "stowage: import_json needs convert(const std::string& name, const nlohmann::json& record)");
  using R = std::invoke_result_t<Convert&, const std::string&, const nlohmann::json&>;
  if (options.batch == 0) throw ValidationError("stowage: import_json: batch must be at least 1");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw IoError("stowage: import_json: cannot read " + file.string() + " (not a regular file)");

  JsonImportStats stats;
  std::vector<std::pair<Key, Value>> pending;
  pending.reserve(options.batch);
  auto write = [&] {
    if (pending.empty()) return;
    store.put_batch(pending);
    stats.records += pending.size();
    ++stats.batches;
    pending.clear();
    if (options.progress) options.progress(stats.records, stats.skipped);
  };
  auto take = [&](const std::string& name, const nlohmann::json& record, const std::string& where) {
    try {
      if constexpr (requires { requires std::is_same_v<R, std::optional<typename R::value_type>>; }) {
        auto r = convert(name, record);
        if (!r) {
          ++stats.skipped;
          return;
        }
        pending.emplace_back(std::move(r->first), std::move(r->second));
      } else {
        auto r = convert(name, record);
        pending.emplace_back(std::move(r.first), std::move(r.second));
      }
    } catch (const nlohmann::json::exception& e) {
      throw ValidationError("stowage: import_json: " + file.string() + ", " + where +
                            ": the record does not convert: " + e.what());
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw ValidationError("stowage: import_json: " + file.string() + ", " + where +
                            ": the record does not convert: " + e.what());
    }
    if (pending.size() >= options.batch) write();
  };

  JsonLayout layout = options.layout;
  if (layout == JsonLayout::automatic) layout = detail::detect_json_layout(file);
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError("stowage: import_json: cannot open " + file.string());

  if (layout == JsonLayout::lines) {
    std::string line;
    std::uint64_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      if (detail::json_line_is_blank(line)) continue;
      const std::string where = "line " + std::to_string(number);
      nlohmann::json record;
      try {
        record = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error& e) {
        throw ValidationError("stowage: import_json: " + file.string() + ", " + where + ": not valid JSON: " + e.what());
      }
      take("", record, where);
    }
    if (in.bad()) throw IoError("stowage: import_json: reading " + file.string() + " failed");
  } else {
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
      throw ValidationError("stowage: import_json: " + file.string() + " is not valid JSON: " + e.what());
    }
    const nlohmann::json* records = &doc;
    if (!options.records_at.empty()) {
      try {
        records = &doc.at(nlohmann::json::json_pointer(options.records_at));
      } catch (const nlohmann::json::exception& e) {
        throw ValidationError("stowage: import_json: " + file.string() + " has nothing at " + options.records_at +
                              ": " + e.what());
      }
    }
    if (records->is_object()) {
      for (const auto& [name, record] : records->items()) take(name, record, "record \"" + name + "\"");
    } else if (records->is_array()) {
      std::size_t i = 0;
      for (const auto& record : *records) take("", record, "element " + std::to_string(i++));
    } else {
      throw ValidationError("stowage: import_json: " + file.string() + ": the records" +
                            (options.records_at.empty() ? std::string() : " at " + options.records_at) +
                            " are neither an object nor an array");
    }
  }
  write();
  return stats;
}

}  // namespace stowage
