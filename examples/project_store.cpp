// project_store: records keyed by id, plus a second store used as a
// name -> id index, kept up to date alongside. Shows lookup by name, a prefix
// scan over names and a range scan over ids.
//
//   usage: project_store [directory]   (stores go in directory/projects, directory/by_name)
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <stowage/stowage.hpp>

struct Project {
  std::string name;
  std::string path;
  std::vector<std::string> files;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) { ar & name & path & files; }
};

using Projects = stowage::Storage<std::uint64_t, Project>;  // id -> record
using ByName = stowage::Storage<std::string, std::uint64_t>;  // name -> id (names are unique)

// The id stored under name, if that project still has that name. The two
// stores are separate, so a crash can come between their writes: save() writes
// the record first, and this check makes a stale index entry harmless (a
// missing one can be rebuilt by scanning the projects).
std::optional<std::uint64_t> id_of(const Projects& projects, const ByName& by_name, const std::string& name) {
  auto id = by_name.get(name);
  auto p = id ? projects.get(*id) : std::nullopt;
  return (p && p->name == name) ? id : std::nullopt;
}

// Creates or updates project id; false if another project has its name.
// (Check-then-write: run saves from one thread at a time.)
bool save(Projects& projects, ByName& by_name, std::uint64_t id, const Project& p) {
  if (auto owner = id_of(projects, by_name, p.name); owner && *owner != id) return false;
  auto old = projects.get(id);
  projects.put(id, p);
  by_name.put(p.name, id);
  if (old && old->name != p.name) by_name.erase(old->name);  // renamed
  return true;
}

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "project-store-demo";
  try {
    std::filesystem::remove_all(dir / "projects");  // start empty on every run
    std::filesystem::remove_all(dir / "by_name");
    Projects projects(dir / "projects");  // one directory per store: each open locks its own
    ByName by_name(dir / "by_name");

    save(projects, by_name, 101, {"web-frontend", "/src/web", {"index.html", "app.ts"}});
    save(projects, by_name, 102, {"web-backend", "/src/api", {"main.go"}});
    save(projects, by_name, 205, {"docs", "/src/docs", {"README.md"}});
    save(projects, by_name, 103, {"webhooks", "/src/hooks", {}});
    save(projects, by_name, 102, {"web-api", "/src/api", {"main.go", "routes.go"}});  // rename
    const bool refused = !save(projects, by_name, 104, {"docs", "/tmp/docs", {}});   // name taken

    auto api_id = id_of(projects, by_name, "web-api");
    auto api = api_id ? projects.get(*api_id) : std::nullopt;
    std::cout << "web-api: #" << api_id.value_or(0) << " " << (api ? api->path : "missing") << "\n";
    const bool old_name_gone = !id_of(projects, by_name, "web-backend");

    std::vector<std::string> web;  // every name starting with "web-", in name order
    for (const auto& [name, id] : by_name.scan_prefix("web-")) {
      std::cout << "  " << name << " -> " << id << "\n";
      web.push_back(name);
    }
    int in_range = 0;  // ids 100..199, in id order
    for (const auto& [id, p] : projects.scan(100, 200)) {
      std::cout << "  #" << id << " " << p.name << "\n";
      ++in_range;
    }
    const bool ok = api && api->files.size() == 2 && old_name_gone && refused && by_name.size() == 4 &&
                    web == std::vector<std::string>{"web-api", "web-frontend"} && in_range == 3;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
