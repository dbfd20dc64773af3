// A Database whose Compression lacks decompress(): one error, from the
// policy check Database shares with Collection.
// expect: stowage: Compression must provide
#include <stowage/stowage.hpp>
struct HalfCompression {
  static constexpr std::uint8_t id = 40;
  static constexpr std::string_view name = "half";
  static void compress(std::string_view in, std::string& out) { out.assign(in); }
};
int main() {
  stowage::Database<HalfCompression> db("never-opened");
  auto c = db.collection<int, int>("c");
  c.put(1, 1);
  db.batch().put(c, 2, 2).commit();
}
