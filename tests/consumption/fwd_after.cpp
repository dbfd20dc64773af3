// The definitions first, stowage_fwd.hpp after: its redeclarations must be
// accepted too (a default template argument given twice would not be).
#include <stowage/boost_serializer.hpp>
#include <stowage/stowage.hpp>
#include <stowage/stowage_fwd.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace fwd_check {
using Store = stowage::Storage<std::uint64_t, std::string, stowage::BinarySerializer, stowage::Lz4Compression,
                               stowage::LruEviction, stowage::ThreadLock>;
struct Holder {
  Store* store = nullptr;
  const stowage::Options* options = nullptr;
  stowage::Durability durability{};
};
bool use(Holder&, const stowage::Error*);
}  // namespace fwd_check

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "fwd-check-store";
  std::filesystem::remove_all(dir);
  bool ok = false;
  {
    stowage::Storage<std::uint64_t, std::string> db(dir);
    stowage::Options options;
    fwd_check::Holder h{&db, &options, options.durability};
    ok = fwd_check::use(h, nullptr);
  }
  std::filesystem::remove_all(dir);
  std::puts(ok ? "stowage_fwd_check: ok" : "stowage_fwd_check: FAILED");
  return ok ? 0 : 1;
}
