// A Lock without the shared side: one error, from Storage's check.
// expect: stowage: Lock must be default-constructible
#include <stowage/stowage.hpp>
struct NoShared {
  void lock() {}
  void unlock() {}
  static constexpr bool waits_for_other_processes = false;
};
int main() {
  stowage::Storage<int, int, stowage::BinarySerializer, stowage::Lz4Compression, stowage::LruEviction, NoShared> db(
      "never-opened");
  db.put(1, 1);
}
