// fuzz_manifest: detail::decode_manifest over arbitrary MANIFEST bytes.
//
// The input is the whole file. It is decoded as given, then again with the
// envelope repaired (body length = file size - 32, trailing XXH3 recomputed)
// so mutations of the body get past the checksum. A decoded manifest must
// re-encode (encode_manifest) to bytes that decode to the same manifest.
//
// Expected outcomes of bad bytes: stowage::CorruptionError, and
// stowage::MigrationError for a format major newer than this build's.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <stowage/manifest.hpp>

#include "fuzz_util.hpp"

namespace {

namespace sd = stowage::detail;
constexpr const char* kTarget = "fuzz_manifest";

void require(bool ok, const char* what) {
  if (!ok) stowage_fuzz::finding(kTarget, what);
}

bool same(const sd::Manifest& a, const sd::Manifest& b) {
  if (a.format_major != b.format_major || a.format_minor != b.format_minor || a.serializer != b.serializer ||
      a.compression != b.compression || a.compression_id != b.compression_id || a.last_seq != b.last_seq ||
      a.next_file != b.next_file || a.wal_start != b.wal_start || a.keyspaces.size() != b.keyspaces.size())
    return false;
  for (std::size_t i = 0; i < a.keyspaces.size(); ++i) {
    const auto& x = a.keyspaces[i];
    const auto& y = b.keyspaces[i];
    if (x.name != y.name || x.key_order != y.key_order || x.value_type != y.value_type ||
        x.schema_version != y.schema_version || x.live != y.live || x.chunks.size() != y.chunks.size())
      return false;
    for (std::size_t j = 0; j < x.chunks.size(); ++j) {
      const auto& c = x.chunks[j];
      const auto& d = y.chunks[j];
      if (c.file != d.file || c.records != d.records || c.bytes != d.bytes || c.max_seq != d.max_seq ||
          c.first_key != d.first_key || c.last_key != d.last_key || c.level != d.level || c.run != d.run ||
          c.uncounted != d.uncounted)
        return false;
    }
  }
  return true;
}

void decode(std::string_view bytes) {
  sd::Manifest m;
  try {
    m = sd::decode_manifest(bytes, "MANIFEST");
  } catch (const stowage::CorruptionError&) {
    return;
  } catch (const stowage::MigrationError&) {
    return;
  }
  // What the decoder accepted, it promises: check the invariants it enforces.
  for (const auto& ks : m.keyspaces) {
    for (std::size_t j = 0; j < ks.chunks.size(); ++j) {
      const auto& c = ks.chunks[j];
      require(c.file < m.next_file, "accepted a chunk file number >= next_file");
      require(c.records != 0 && !(c.last_key < c.first_key), "accepted an empty or inverted chunk range");
      require(c.level < sd::kLevels, "accepted a level that does not exist");
      require(c.level == 0 || c.run == 0, "accepted a run number below level 0");
      require(c.uncounted <= c.records, "accepted more uncounted records than records");
      require(m.format_major >= 4 || c.uncounted == 0, "accepted uncounted records before format 4");
      if (j > 0) {
        const auto& p = ks.chunks[j - 1];
        require(!sd::manifest_order(c, p), "accepted chunks out of order");
        if (p.level == c.level && p.run == c.run) require(p.last_key < c.first_key, "accepted overlapping chunks in a run");
      }
    }
  }
  // Round trip: encode what was decoded; it must decode to the same thing.
  const std::string again = sd::encode_manifest(m);
  sd::Manifest m2;
  try {
    m2 = sd::decode_manifest(again, "MANIFEST");
  } catch (const stowage::Error& e) {
    stowage_fuzz::finding(kTarget, std::string("re-encoded manifest does not decode: ") + e.what());
  }
  require(same(m, m2), "re-encoded manifest decodes to a different manifest");
  require(again.size() <= bytes.size(), "re-encoding is longer than the accepted input (non-minimal re-encode)");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  decode(bytes);
  if (size >= 32) {
    std::string fixed(bytes);
    sd::encode_fixed64(fixed.data() + 16, size - 32);
    sd::encode_fixed64(fixed.data() + size - 8, sd::checksum(std::string_view(fixed).substr(0, size - 8), 0x4d414e49));
    if (fixed != bytes) decode(fixed);
  }
  return 0;
}
