// Tests for digest.hpp: SHA-256 against the NIST test vectors (FIPS 180-2
// appendix B and the SHAVS byte-oriented short messages), incremental hashing
// split at every position, hex round trip and rejection, ordering, hashing,
// and Digest as a Storage key and as a field of a value.
#include <stowage/digest.hpp>
#include <stowage/stowage.hpp>

#include <filesystem>
#include <string>
#include <unordered_set>

#include <catch2/catch.hpp>

namespace {

using stowage::Digest;
using stowage::sha256;

std::string from_hex_bytes(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

struct Vector {
  std::string message;
  const char* digest;
};

std::vector<Vector> nist_vectors() {
  return {
      // FIPS 180-2, appendix B.1 to B.3.
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {std::string(1000000, 'a'), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
      // The empty message (SHAVS Len = 0).
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      // SHAVS SHA256ShortMsg, Len = 8 and Len = 16.
      {from_hex_bytes("d3"), "28969cdfa74a12c82f3bad960b0b000aca2ac329deea5c2328ebc6f2ba9802c1"},
      {from_hex_bytes("11af"), "5ca7133fa735326081558ac312c620eeca9970d1e70a4b95533d956f072d1f98"},
      // FIPS 180-4 examples document, the two-block 896-bit message.
      {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
  };
}

struct Node {
  std::string name;
  std::vector<Digest> children;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & name & children;
  }
};

}  // namespace

TEST_CASE("sha256 matches the NIST test vectors", "[digest]") {
  for (const auto& v : nist_vectors()) {
    INFO("message of " << v.message.size() << " bytes");
    CHECK(sha256(v.message).hex() == v.digest);
  }
}

TEST_CASE("Sha256 fed in pieces equals the one-shot digest", "[digest]") {
  const std::string msg = nist_vectors()[6].message;
  for (std::size_t cut = 0; cut <= msg.size(); ++cut) {
    stowage::Sha256 h;
    h.update(std::string_view(msg).substr(0, cut)).update(std::string_view(msg).substr(cut));
    REQUIRE(h.finish().hex() == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  }
  stowage::Sha256 million;
  const std::string thousand(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(thousand);
  CHECK(million.finish() == sha256(std::string(1000000, 'a')));
}

TEST_CASE("Digest hex round trip and rejection", "[digest]") {
  const Digest d = sha256("abc");
  CHECK(Digest::from_hex(d.hex()) == d);
  std::string upper = d.hex();
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(Digest::from_hex(upper) == d);
  CHECK_FALSE(Digest::parse_hex(d.hex().substr(1)));
  CHECK_FALSE(Digest::parse_hex(d.hex() + "0"));
  std::string bad = d.hex();
  bad[17] = 'g';
  CHECK_FALSE(Digest::parse_hex(bad));
  CHECK_THROWS_AS(Digest::from_hex("xyz"), stowage::ValidationError);
  CHECK_THROWS_AS(Digest::from_bytes("short"), stowage::ValidationError);
  CHECK(Digest::from_bytes(d.raw()) == d);
  CHECK(Digest{}.hex() == std::string(64, '0'));
}

TEST_CASE("Digest orders bytewise and hashes", "[digest]") {
  Digest a, b;
  b.bytes[31] = 1;
  CHECK(a < b);
  a.bytes[0] = 1;
  CHECK(b < a);
  std::unordered_set<Digest> set;
  for (int i = 0; i < 1000; ++i) set.insert(sha256(std::to_string(i)));
  set.insert(sha256("0"));
  CHECK(set.size() == 1000);
}

TEST_CASE("Digest as a Storage key and inside a value", "[digest]") {
  const auto dir = std::filesystem::path(STOWAGE_TEST_BINARY_DIR) / "digest-test-store";
  std::filesystem::remove_all(dir);
  const Digest leaf = sha256("leaf");
  {
    stowage::Storage<Digest, Node> db(dir);
    for (int i = 0; i < 100; ++i) db.put(sha256(std::to_string(i)), Node{std::to_string(i), {leaf, sha256("x")}});
  }
  stowage::Storage<Digest, Node> db(dir);
  auto n = db.get(sha256("42"));
  REQUIRE(n);
  CHECK(n->name == "42");
  REQUIRE(n->children.size() == 2);
  CHECK(n->children[0] == leaf);
  Digest prev{};
  std::size_t count = 0;
  for (const auto& [k, v] : db.scan()) {
    CHECK(prev < k);  // scan order is Digest order
    prev = k;
    ++count;
  }
  CHECK(count == 100);
}
