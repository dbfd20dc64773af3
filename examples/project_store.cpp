// project_store: projects and their files, two collections of one Database.
// A unique index on the project name stands in for a hand-kept name -> id
// store: its entries are written in the same commit as the records, so no
// crash can leave the two disagreeing, and the store itself refuses a second
// project with a taken name. Shows lookup by name, a prefix scan over names,
// a project's files by key prefix, a range scan over ids, and creating and
// deleting a project with its files as one commit.
//
//   usage: project_store [directory]   (the store goes in directory/workspace)
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <stowage/stowage.hpp>

struct Project {
  std::string name;
  std::string path;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) { ar & name & path; }
};
struct File {
  std::uint64_t bytes = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) { ar & bytes; }
};

using Db = stowage::Database<>;
using Projects = Db::collection_type<std::uint64_t, Project>;  // id -> project
// (project id, file name) -> file: a project's files are one key range.
using FileKey = std::pair<std::uint64_t, std::string>;
using Files = Db::collection_type<FileKey, File>;
using ByName = Projects::Index<std::string, true>;  // name -> project, unique

// The open store. Opening it only through this struct declares the index in
// every session before any write, as it must be: every write then keeps it.
struct Workspace {
  explicit Workspace(const std::filesystem::path& dir) : db(dir) {}
  Db db;
  Projects projects = db.collection<std::uint64_t, Project>("projects");
  Files files = db.collection<FileKey, File>("files");
  ByName by_name = projects.index("by_name", &Project::name, stowage::unique);
};

using Contents = std::vector<std::pair<std::string, std::uint64_t>>;  // (file name, bytes)

// Creates a project with its files as one commit: after a crash the project
// is there with all its files, or none of it is. Throws
// stowage::ConstraintError, writing nothing, when the name is taken.
std::uint64_t create_project(Workspace& w, const Project& p, const Contents& files) {
  const std::uint64_t id = w.projects.next_id();  // an id whose commit fails is skipped, never reused
  auto batch = w.db.batch();
  batch.put(w.projects, id, p);
  for (const auto& [name, bytes] : files) batch.put(w.files, FileKey{id, name}, File{bytes});
  batch.commit();
  return id;
}

// Deletes the project called name and its files as one commit; false if
// there is none. (Read-then-write: a file added to it meanwhile would stay,
// so run this from one thread at a time.)
bool remove_project(Workspace& w, const std::string& name) {
  const auto found = w.by_name.find(name);
  if (!found) return false;
  auto batch = w.db.batch();
  batch.erase(w.projects, found->first);
  for (const auto& [key, file] : w.files.scan_prefix(found->first)) batch.erase(w.files, key);
  batch.commit();
  return true;
}

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "project-store-demo";
  try {
    std::filesystem::remove_all(dir / "workspace");  // start empty on every run
    Workspace w(dir / "workspace");

    const auto frontend = create_project(w, {"web-frontend", "/src/web"}, {{"index.html", 1200}, {"app.ts", 5400}});
    const auto backend = create_project(w, {"web-backend", "/src/api"}, {{"main.go", 800}});
    create_project(w, {"docs", "/src/docs"}, {{"README.md", 300}});
    create_project(w, {"webhooks", "/src/hooks"}, {});
    // A rename is an ordinary write: the index entry moves in the same commit.
    w.projects.update(backend, [](Project& p) { p.name = "web-api"; });
    w.files.put({backend, "routes.go"}, {450});

    bool refused = false;
    try {
      create_project(w, {"docs", "/tmp/docs"}, {{"notes.txt", 10}});
    } catch (const stowage::ConstraintError&) {
      refused = true;  // neither the project nor notes.txt was stored
    }
    std::cout << "second \"docs\": " << (refused ? "refused" : "stored") << ", " << w.projects.size()
              << " projects, " << w.files.size() << " files\n";

    const auto api = w.by_name.find("web-api");  // std::optional<std::pair<id, Project>>
    std::cout << "web-api: #" << (api ? api->first : 0) << " " << (api ? api->second.path : "missing") << "\n";
    std::size_t api_files = 0;
    for (const auto& [key, file] : w.files.scan_prefix(backend)) {  // its files, in name order
      std::cout << "  " << key.second << " " << file.bytes << " bytes\n";
      ++api_files;
    }
    const bool old_name_gone = !w.by_name.find("web-backend");

    std::cout << "names starting with web-:\n";
    std::vector<std::string> web;  // in name order
    for (const auto& [id, p] : w.by_name.scan_prefix("web-")) {
      std::cout << "  " << p.name << " -> #" << id << "\n";
      web.push_back(p.name);
    }

    std::cout << "created after web-frontend:\n";
    std::size_t since = 0;  // ids increase as projects are created: a range scan from its id + 1
    for (const auto& [id, p] : w.projects.scan(frontend + 1)) {
      std::cout << "  #" << id << " " << p.name << "\n";
      ++since;
    }

    const bool removed = remove_project(w, "web-frontend");
    std::cout << "web-frontend " << (removed ? "removed" : "not found") << ": " << w.projects.size()
              << " projects, " << w.files.size() << " files\n";

    const bool ok = refused && api && api->first == backend && api_files == 2 && old_name_gone &&
                    web == std::vector<std::string>{"web-api", "web-frontend"} && removed &&
                    !w.by_name.find("web-frontend") && w.files.count_prefix(frontend) == 0 && since == 3 &&
                    w.projects.size() == 3 && w.by_name.size() == 3 && w.files.size() == 3;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
