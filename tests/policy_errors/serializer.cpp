// A Serializer without deserialize(): one error, from Storage's check.
// expect: stowage: Serializer must provide
#include <stowage/stowage.hpp>
struct WriteOnly {
  static std::string_view id() { return "write-only"; }
  template <class T>
  static void serialize(const T&, std::string&) {}
};
int main() {
  stowage::Storage<int, int, WriteOnly> db("never-opened");
  db.put(1, 1);
  (void)db.get(1);
}
