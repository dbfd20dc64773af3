// Opens a store, writes a record, reads it back: the package's headers, LZ4,
// xxHash and Boost are all found and link. The store is removed afterwards
// unless the second argument is --keep (for the packaged tool to read it).
#include <stowage/stowage.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "stowage-test-package-store";
  const bool keep = argc > 2 && std::string_view(argv[2]) == "--keep";
  std::filesystem::remove_all(dir);
  bool ok = false;
  {
    stowage::Storage<std::string, std::string> db(dir);
    db.put("hello", "stowage");
    auto v = db.get("hello");
    ok = v && *v == "stowage" && db.size() == 1;
  }
  if (!keep) std::filesystem::remove_all(dir);
  std::puts(ok ? "stowage test_package: ok" : "stowage test_package: FAILED");
  return ok ? 0 : 1;
}
