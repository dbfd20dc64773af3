// A Key with no KeyCodec: one error, from Storage's check.
// expect: stowage: Key has no order-preserving codec
#include <stowage/stowage.hpp>
struct Point {
  int x = 0;
  bool operator<(const Point& o) const { return x < o.x; }
};
int main() {
  stowage::Storage<Point, int> db("never-opened");
  db.put(Point{1}, 1);
  (void)db.get(Point{1});
  for (const auto& kv : db.scan()) (void)kv;
}
