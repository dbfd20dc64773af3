// stowage_fwd.hpp first, the definitions after: every forward declaration must
// agree with its definition (kind, template parameters, enum base).
#include <stowage/stowage_fwd.hpp>

#include <cstdint>
#include <string>

namespace fwd_check {
// A header that only names stowage types, as stowage_fwd.hpp is meant for.
using Store = stowage::Storage<std::uint64_t, std::string, stowage::BinarySerializer, stowage::Lz4Compression,
                               stowage::LruEviction, stowage::ThreadLock>;
struct Holder {
  Store* store = nullptr;
  const stowage::Options* options = nullptr;
  stowage::Durability durability{};
};
bool use(Holder&, const stowage::Error*);
}  // namespace fwd_check

#include <stowage/boost_serializer.hpp>
#include <stowage/stowage.hpp>

#include <filesystem>
#include <type_traits>

static_assert(std::is_same_v<fwd_check::Store, stowage::Storage<std::uint64_t, std::string>>,
              "the forward-declared Storage must take the same defaults");
static_assert(std::is_base_of_v<stowage::Error, stowage::ValidationError>);

bool fwd_check::use(Holder& h, const stowage::Error* e) {
  if (e != nullptr) return false;
  h.store->put(1, "one");
  return h.store->get(1).value_or("") == "one" && h.durability == stowage::Durability::none;
}
