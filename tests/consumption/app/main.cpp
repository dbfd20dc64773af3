// A downstream program: opens a store, puts, gets, scans, reopens, and checks
// what it reads back. Built by each consumption test (see ../CMakeLists.txt).
#include <stowage/stowage.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace {
struct Reading {
  std::string sensor;
  double celsius = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & sensor & celsius;
  }
};

int fail(const char* what) {
  std::fprintf(stderr, "consumer: FAILED: %s\n", what);
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "consumer-store";
  std::filesystem::remove_all(dir);
  {
    stowage::Storage<std::uint64_t, Reading> db(dir);
    db.put(1700000000, Reading{"roof", 21.5});
    db.put(1700000060, Reading{"cellar", 12.0});
    auto r = db.get(1700000000);
    if (!r || r->sensor != "roof" || r->celsius != 21.5) return fail("get after put");
    if (db.get(42)) return fail("a missing key was found");
    db.flush();
  }
  {
    stowage::Storage<std::uint64_t, Reading> db(dir, stowage::Options{.cache_bytes = 1 << 20});
    if (db.size() != 2) return fail("size after reopen");
    std::uint64_t expect[] = {1700000000, 1700000060};
    int i = 0;
    for (auto const& [t, r] : db.scan()) {
      if (i >= 2 || t != expect[i]) return fail("scan order");
      ++i;
    }
    if (i != 2) return fail("scan length");
  }
  std::filesystem::remove_all(dir);
  std::printf("consumer: ok\n");
  return 0;
}
