// migration_util.hpp: a version-1 store and its version-2 upgrade, shared by
// the crash tests that interrupt migrations (crash_test: kill -9;
// power_loss_test: power cuts), and the check that a store so interrupted
// holds the old version or the new one, never something between.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include <stowage/stowage.hpp>

namespace stowage_test {

/// The values at schema version 1...
struct MigV1 {
  static constexpr unsigned version = 1;
  std::string text;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & text;
  }
};
/// ...and at version 2.
struct MigV2 {
  static constexpr unsigned version = 2;
  std::string text;
  std::uint32_t length = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & text & length;
  }
};
inline MigV2 upgrade(const MigV1& v) { return {v.text + "!", static_cast<std::uint32_t>(v.text.size())}; }

/// The one step 1 -> 2, with backups under `backups`.
inline stowage::Migrator mig_steps(const std::filesystem::path& backups) {
  stowage::Migrator m;
  m.add<MigV1, MigV2>(upgrade);
  m.backup_to(backups);
  return m;
}

inline std::string mig_text(int key, int round) {
  std::string v = "k" + std::to_string(key) + "/r" + std::to_string(round) + "/";
  v.append(static_cast<std::size_t>((key * 37 + round * 11) % 150), static_cast<char>('a' + (key + round) % 26));
  return v;
}

/// A version-1 store: 500 records in chunks, then 60 puts and 20 erases only
/// in its flushed WAL. Returns the texts it holds.
inline std::map<int, std::string> make_v1_store(const std::filesystem::path& dir, stowage::Options o) {
  std::map<int, std::string> model;
  o.checkpoint_on_close = false;
  stowage::Storage<int, MigV1> db(dir, o);
  for (int k = 0; k < 500; ++k) {
    model[k] = mig_text(k, 1);
    db.put(k, MigV1{model[k]});
  }
  db.checkpoint();
  for (int k = 480; k < 540; ++k) {
    model[k] = mig_text(k, 2);
    db.put(k, MigV1{model[k]});
  }
  for (int k = 0; k < 400; k += 20) {
    model.erase(k);
    db.erase(k);
  }
  db.flush();
  return model;
}

/// Checks that the store at dir is at version 1 holding exactly `model`, or
/// at version 2 holding exactly `model` upgraded; then that a migrating open
/// brings it to version 2 with every record. Returns the version found.
inline unsigned check_old_or_new(const std::filesystem::path& dir, const std::map<int, std::string>& model,
                                 const stowage::Options& o, const std::filesystem::path& backups,
                                 const std::string& context) {
  INFO(context);
  unsigned found = 0;
  try {
    found = stowage::migration_status(dir).schema_version;
    std::map<int, std::string> got;
    if (found == 1) {
      stowage::Storage<int, MigV1> db(dir, o);
      for (const auto& [k, v] : db.scan()) got[k] = v.text;
      CHECK(db.size() == got.size());
      CHECK(got == model);
    } else {
      REQUIRE(found == 2);
      stowage::Storage<int, MigV2> db(dir, o);
      std::size_t bad = 0;
      for (const auto& [k, v] : db.scan()) {
        got[k] = v.text.substr(0, v.text.size() - 1);
        if (v.length + 1 != v.text.size() || v.text.back() != '!') ++bad;
      }
      CHECK(bad == 0);
      CHECK(db.size() == got.size());
      CHECK(got == model);
    }
    stowage::Storage<int, MigV2> done(dir, o, mig_steps(backups));
    CHECK(done.size() == model.size());
    for (const auto& [k, text] : model) {
      auto v = done.get(k);
      if (!v || v->text != text + "!") {
        FAIL_CHECK("record " << k << " is wrong after completing the migration");
        break;
      }
    }
  } catch (const std::exception& e) {
    FAIL_CHECK("reopening threw: " << e.what());
  }
  return found;
}

}  // namespace stowage_test
