// A Compression without decompress(): one error, from Storage's check.
// expect: stowage: Compression must provide
#include <stowage/stowage.hpp>
struct NoDecompress {
  static constexpr std::uint8_t id = 9;
  static constexpr std::string_view name = "bad";
  static void compress(std::string_view in, std::string& out) { out.assign(in); }
};
int main() {
  stowage::Storage<int, int, stowage::BinarySerializer, NoDecompress> db("never-opened");
  db.put(1, 1);
}
