// fuzz_wal: a WAL segment file (number 1) through detail::replay_wal, each
// replayed payload through detail::decode_wal_batch.
//
// The input is the whole segment. It is replayed as given, then again with
// the checksum of every record found by walking the records from offset 0
// recomputed, so mutations of headers and payloads reach the batch decoder
// and the torn-tail / synced-damage judgement.
//
// Expected outcome of bad bytes: stowage::CorruptionError (from replay_wal
// for damage inside synced bytes, from decode_wal_batch for a bad payload).
// Zeros after the last valid record (preallocated space) are a clean end:
// WalReplay::zero_bytes, never part of a cut.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <stowage/wal.hpp>

#include "fuzz_util.hpp"

namespace {

namespace sd = stowage::detail;
constexpr const char* kTarget = "fuzz_wal";
constexpr std::uint64_t kSegment = 1;

void require(bool ok, const char* what) {
  if (!ok) stowage_fuzz::finding(kTarget, what);
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void replay(std::string_view segment) {
  const std::filesystem::path path = "/fuzz/" + sd::wal_file_name(kSegment);
  stowage_fuzz::OneFileSystem fs(path, segment);
  std::uint64_t calls = 0, last_offset = 0, payload_bytes = 0;
  sd::WalReplay r;
  try {
    r = sd::replay_wal(fs, path, kSegment, [&](std::string_view payload, std::uint64_t offset) {
      require(calls == 0 || offset > last_offset, "replayed record offsets do not increase");
      require(offset + sd::kWalHeaderBytes + payload.size() <= segment.size(), "a replayed record lies past the file");
      last_offset = offset;
      ++calls;
      payload_bytes += sd::kWalHeaderBytes + payload.size();
      std::uint64_t ops = 0, first = 0;
      try {
        sd::decode_wal_batch(payload, path, offset, [&](const sd::WalOp& op) {
          require(op.kind == sd::kOpPut || op.kind == sd::kOpErase, "decoded op of unknown kind");
          require(inside(op.key, payload) && inside(op.value, payload), "decoded op views lie outside the payload");
          require(op.kind == sd::kOpPut || op.value.empty(), "an erase carries a value");
          if (ops == 0) first = op.seq;
          require(op.seq == first + ops, "op sequence numbers are not consecutive");
          ++ops;
        });
      } catch (const stowage::CorruptionError&) {
        // a bad payload: the store would stop here; replay goes on to exercise the rest
      }
    });
  } catch (const stowage::CorruptionError&) {
    return;
  }
  require(r.records == calls, "WalReplay::records differs from the records replayed");
  require(r.valid_bytes == payload_bytes, "WalReplay::valid_bytes differs from the records replayed");
  require(r.valid_bytes + r.cut_bytes + r.zero_bytes == segment.size(),
          "valid + cut + zero bytes differ from the segment size");
  require(r.cut_bytes == 0 || segment[r.valid_bytes + r.cut_bytes - 1] != 0, "a cut ends in a zero byte");
  for (std::uint64_t i = r.valid_bytes + r.cut_bytes; i < segment.size(); ++i)
    if (segment[i] != 0) {
      stowage_fuzz::finding(kTarget, "the zero tail holds a non-zero byte");
      break;
    }
}

// Recomputes the checksum of each record met walking from offset 0 (the
// records' own log number field and type are left as they are).
void repair_checksums(std::string& s) {
  std::size_t pos = 0;
  while (s.size() - pos >= sd::kWalHeaderBytes) {
    const std::uint32_t len = sd::decode_fixed32(s.data() + pos);
    if (len > s.size() - pos - sd::kWalHeaderBytes) break;
    const std::string_view head(s.data() + pos, 17);
    const std::string_view payload(s.data() + pos + sd::kWalHeaderBytes, len);
    sd::encode_fixed64(s.data() + pos + 17, sd::record_checksum(head, payload, static_cast<std::uint32_t>(kSegment)));
    pos += sd::kWalHeaderBytes + len;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  replay(bytes);
  std::string fixed(bytes);
  repair_checksums(fixed);
  if (fixed != bytes) replay(fixed);
  return 0;
}
