// An Eviction policy whose queue has no victim(): one error, from Storage's check.
// expect: stowage: Eviction must provide
#include <stowage/stowage.hpp>
#include <boost/intrusive/list.hpp>
struct NoVictim {
  static constexpr std::string_view name = "bad";
  using hook = boost::intrusive::list_member_hook<>;
  template <class Entry>
  struct queue {
    void insert(Entry&) {}
    void touch(Entry&) {}
    void erase(Entry&) {}
  };
};
int main() {
  stowage::Storage<int, int, stowage::BinarySerializer, stowage::Lz4Compression, NoVictim> db("never-opened");
  db.put(1, 1);
}
