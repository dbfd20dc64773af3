// quickstart: the library's main job in one page. Opens (or creates) a store
// in a local folder, writes typed records, reads them back, scans them in key
// order, and reopens to show they persisted.
//
//   usage: quickstart [store-directory]   (default: ./stowage-demo)
#include <iostream>
#include <string>
#include <vector>

#include <stowage/stowage.hpp>

struct Reading {
  std::string sensor;
  double celsius = 0;
  std::vector<int> flags;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & sensor & celsius & flags;
  }
};

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "stowage-demo";
  try {
    {
      stowage::Storage<std::uint64_t, Reading> db(dir);  // key: timestamp
      for (std::uint64_t t = 0; t < 1000; ++t) {
        Reading r{"sensor-", 20.0 + static_cast<double>(t % 10) / 10, {}};
        r.sensor += std::to_string(t % 4);
        db.put(1700000000 + t, r);
      }
      db.erase(1700000003);
      db.flush();  // durable even across a power cut
      std::cout << "wrote " << db.size() << " readings to " << dir << "\n";
    }  // closed: checkpointed into chunk files

    stowage::Storage<std::uint64_t, Reading> db(dir);  // reopen
    if (auto r = db.get(1700000042)) std::cout << "t=1700000042: " << r->sensor << " " << r->celsius << " C\n";
    std::cout << "t=1700000003 present: " << std::boolalpha << db.contains(1700000003) << "\n";
    int shown = 0;
    for (const auto& [t, r] : db.scan(1700000998)) {
      std::cout << "scan: " << t << " " << r.sensor << " " << r.celsius << "\n";
      ++shown;
    }
    auto s = db.stats();
    std::cout << s.records << " records in " << s.chunks << " chunk(s), " << s.disk_bytes << " bytes on disk\n";
    return (db.size() >= 999 && shown == 2) ? 0 : 1;
  } catch (const stowage::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
