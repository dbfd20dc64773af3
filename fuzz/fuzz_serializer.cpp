// fuzz_serializer: BinarySerializer::deserialize<T> over arbitrary bytes.
//
// Input: one selector byte (T = Big, Node or Mixed, see serializer_types.hpp),
// then the encoded value. A value that decodes is re-serialized; those bytes
// must decode to an equal value (bitwise for floating point), and must
// re-serialize to the same bytes (skipped for Big, which holds an
// unordered_map whose iteration order may legitimately differ).
//
// Expected outcome of bad bytes: stowage::CorruptionError (ValidationError is
// tolerated from deserialize, though it never throws one). A ValidationError
// while re-serializing a decoded value is a finding: the decoder accepted
// something the encoder refuses.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <stowage/serializer.hpp>

#include "fuzz_util.hpp"
#include "serializer_types.hpp"

namespace {

using stowage::BinarySerializer;
constexpr const char* kTarget = "fuzz_serializer";

template <class T>
void round_trip(std::string_view bytes, bool same_bytes) {
  T v1;
  try {
    v1 = BinarySerializer::deserialize<T>(bytes);
  } catch (const stowage::CorruptionError&) {
    return;
  } catch (const stowage::ValidationError&) {
    return;
  }
  std::string b1;
  try {
    BinarySerializer::serialize(v1, b1);
  } catch (const stowage::Error& e) {
    stowage_fuzz::finding(kTarget, std::string("a decoded value does not serialize: ") + e.what());
  }
  T v2;
  try {
    v2 = BinarySerializer::deserialize<T>(b1);
  } catch (const stowage::Error& e) {
    stowage_fuzz::finding(kTarget, std::string("a re-serialized value does not decode: ") + e.what());
  }
  if (!stowage_fuzz::eq(v1, v2)) stowage_fuzz::finding(kTarget, "round trip decodes to a different value");
  if (same_bytes) {
    std::string b2;
    BinarySerializer::serialize(v2, b2);
    if (b1 != b2) stowage_fuzz::finding(kTarget, "re-serializing the re-decoded value gives different bytes");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      round_trip<stowage_fuzz::Big>(bytes, false);
      break;
    case 1:
      round_trip<stowage_fuzz::Node>(bytes, true);
      break;
    default:
      round_trip<stowage_fuzz::Mixed>(bytes, false);  // holds an unordered_set
      break;
  }
  return 0;
}
