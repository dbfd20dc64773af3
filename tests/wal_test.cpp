// Tests of the write-ahead log: framing, replay, torn tails, damage.
#include <catch2/catch.hpp>

#include <stowage/wal.hpp>

#include "test_util.hpp"

using namespace stowage;
using stowage_test::TempDir;

namespace {

std::string batch_payload(std::uint64_t seq, const std::vector<std::pair<std::string, std::string>>& puts) {
  detail::WalBatch b(seq);
  for (auto& [k, v] : puts) b.put(k, v);
  return b.finish();
}

struct Replayed {
  std::vector<std::string> payloads;
  detail::WalReplay result;
};

Replayed replay(const std::filesystem::path& dir, std::uint64_t number) {
  Replayed r;
  r.result = detail::replay_wal(*default_file_system(), dir / detail::wal_file_name(number), number,
                                [&](std::string_view p, std::uint64_t) { r.payloads.emplace_back(p); });
  return r;
}

std::vector<std::string> write_records(const std::filesystem::path& dir, std::uint64_t number, int n) {
  detail::WalWriter w(*default_file_system(), dir, number);
  std::vector<std::string> payloads;
  for (int i = 0; i < n; ++i) {
    payloads.push_back(batch_payload(static_cast<std::uint64_t>(i + 1),
                                     {{"key" + std::to_string(i), std::string(static_cast<std::size_t>(i * 7), 'v')}}));
    w.append(payloads.back());
  }
  w.sync();
  return payloads;
}

}  // namespace

TEST_CASE("wal file names round trip") {
  CHECK(detail::wal_file_name(7) == "wal-000007.log");
  CHECK(detail::parse_wal_file_name("wal-000007.log") == std::optional<std::uint64_t>(7));
  CHECK_FALSE(detail::parse_wal_file_name("wal-.log"));
  CHECK_FALSE(detail::parse_wal_file_name("wal-12a.log"));
  CHECK_FALSE(detail::parse_wal_file_name("000007.chunk"));
}

TEST_CASE("batch payload encodes and decodes every op") {
  detail::WalBatch b(41);
  b.put("a", "1");
  b.erase("b");
  b.put("c", std::string(1000, 'x'));
  std::string payload = b.finish();
  std::vector<detail::WalOp> ops;
  std::filesystem::path file = "mem";
  detail::decode_wal_batch(payload, file, 0, [&](const detail::WalOp& op) { ops.push_back(op); });
  REQUIRE(ops.size() == 3);
  CHECK(ops[0].kind == detail::kOpPut);
  CHECK(ops[0].seq == 41);
  CHECK(ops[0].key == "a");
  CHECK(ops[0].value == "1");
  CHECK(ops[1].kind == detail::kOpErase);
  CHECK(ops[1].seq == 42);
  CHECK(ops[2].value.size() == 1000);
  // Every truncation of a payload is rejected as corruption, never a crash.
  for (std::size_t n = 0; n < payload.size(); ++n) {
    CHECK_THROWS_AS(detail::decode_wal_batch(payload.substr(0, n), file, 0, [](const detail::WalOp&) {}),
                    CorruptionError);
  }
}

TEST_CASE("records replay in order") {
  TempDir dir("wal");
  auto written = write_records(dir.path(), 3, 50);
  auto r = replay(dir.path(), 3);
  CHECK(r.payloads == written);
  CHECK(r.result.records == 50);
  CHECK(r.result.cut_bytes == 0);
}

TEST_CASE("a torn tail is cut at every length and the prefix recovered") {
  TempDir dir("wal");
  auto written = write_records(dir.path(), 1, 6);
  auto path = dir / detail::wal_file_name(1);
  auto full = stowage_test::read_all(path);
  // Record boundaries.
  std::vector<std::size_t> ends;
  std::size_t pos = 0;
  for (auto& p : written) ends.push_back(pos += detail::kWalHeaderBytes + p.size());
  for (std::size_t len = 0; len <= full.size(); ++len) {
    stowage_test::write_all(path, full.substr(0, len));
    auto r = replay(dir.path(), 1);
    std::size_t complete = static_cast<std::size_t>(std::upper_bound(ends.begin(), ends.end(), len) - ends.begin());
    REQUIRE(r.payloads.size() == complete);
    CHECK(r.result.valid_bytes + r.result.cut_bytes == len);
  }
}

TEST_CASE("a zeroed or garbage tail is cut") {
  TempDir dir("wal");
  auto written = write_records(dir.path(), 2, 4);
  auto path = dir / detail::wal_file_name(2);
  auto full = stowage_test::read_all(path);
  stowage_test::write_all(path, full + std::string(4096, '\0'));
  auto r = replay(dir.path(), 2);
  CHECK(r.payloads == written);
  CHECK(r.result.cut_bytes == 4096);
  std::mt19937 rng(7);
  std::string garbage(10000, '\0');
  for (auto& c : garbage) c = static_cast<char>(rng());
  stowage_test::write_all(path, full + garbage);
  r = replay(dir.path(), 2);
  CHECK(r.payloads == written);
}

TEST_CASE("damage in synced bytes is a CorruptionError, never a silent skip") {
  TempDir dir("wal");
  auto path = dir / detail::wal_file_name(5);
  std::vector<std::string> written;
  std::size_t synced_bytes = 0;
  {
    detail::WalWriter w(*default_file_system(), dir.path(), 5);
    for (int i = 0; i < 10; ++i) {
      written.push_back(batch_payload(static_cast<std::uint64_t>(i + 1), {{"key" + std::to_string(i), "value"}}));
      w.append(written.back());
    }
    w.sync();
    synced_bytes = w.size();
    // Later records say the first ten were durable when they were written.
    for (int i = 10; i < 13; ++i) {
      written.push_back(batch_payload(static_cast<std::uint64_t>(i + 1), {{"key" + std::to_string(i), "value"}}));
      w.append(written.back());
    }
  }
  auto full = stowage_test::read_all(path);
  for (std::size_t off = 0; off < synced_bytes; ++off) {
    stowage_test::write_all(path, full);
    stowage_test::flip_byte(path, off);
    try {
      auto r = replay(dir.path(), 5);
      FAIL("flipping synced byte " << off << " went unnoticed (" << r.payloads.size() << " records)");
    } catch (const CorruptionError& e) {
      CHECK(std::string(e.what()).find(path.string()) != std::string::npos);
    }
  }
}

TEST_CASE("damage in bytes never synced is a torn tail: cut there, the prefix recovered") {
  TempDir dir("wal");
  auto written = write_records(dir.path(), 6, 10);  // synced only at the end: no record claims durability
  auto path = dir / detail::wal_file_name(6);
  auto full = stowage_test::read_all(path);
  std::size_t second = detail::kWalHeaderBytes + written[0].size();
  for (std::size_t off : {second, second + 3, second + detail::kWalHeaderBytes + 1}) {
    stowage_test::write_all(path, full);
    stowage_test::flip_byte(path, off);
    auto r = replay(dir.path(), 6);
    REQUIRE(r.payloads.size() == 1);
    CHECK(r.payloads[0] == written[0]);
    CHECK(r.result.valid_bytes == second);
    CHECK(r.result.cut_bytes == full.size() - second);
  }
}

TEST_CASE("records of another segment number never replay") {
  TempDir dir("wal");
  write_records(dir.path(), 9, 3);
  std::filesystem::rename(dir / detail::wal_file_name(9), dir / detail::wal_file_name(10));
  auto r = replay(dir.path(), 10);
  CHECK(r.payloads.empty());
  CHECK(r.result.cut_bytes > 0);
}
