// knowledge_graph: nodes keyed by id, edges keyed by (from, relation, to).
// Keys sort element by element, so a node's outgoing edges are one contiguous
// key range: scan_prefix(n) lists them, grouped by relation.
// Shows a 2-hop breadth-first traversal and deleting a node with its edges.
//
//   usage: knowledge_graph [directory]   (stores go in directory/nodes, directory/edges)
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <stowage/stowage.hpp>

using NodeId = std::uint64_t;
struct Node {
  std::string name, type;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) { ar & name & type; }
};
struct Edge {  // what an edge carries besides its key
  double weight = 1.0;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) { ar & weight; }
};
using EdgeKey = std::tuple<NodeId, std::string, NodeId>;  // (from, relation, to)
using Nodes = stowage::Storage<NodeId, Node>;
using Edges = stowage::Storage<EdgeKey, Edge>;

// Every outgoing edge of `from`: the keys whose first element is from.
Edges::range outgoing(const Edges& edges, NodeId from) { return edges.scan_prefix(from); }

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "knowledge-graph-demo";
  try {
    std::filesystem::remove_all(dir / "nodes");  // start empty on every run
    std::filesystem::remove_all(dir / "edges");
    Nodes nodes(dir / "nodes");
    Edges edges(dir / "edges");
    nodes.put_batch(std::vector<std::pair<NodeId, Node>>{
        {1, {"alice", "person"}}, {2, {"bob", "person"}}, {3, {"carol", "person"}},
        {4, {"dave", "person"}}, {5, {"acme", "company"}}, {6, {"erin", "person"}}});
    edges.put({1, "knows", 2}, {0.9});
    edges.put({1, "knows", 3}, {0.5});
    edges.put({2, "knows", 4}, {0.7});
    edges.put({3, "works_at", 5}, {1.0});
    edges.put({4, "knows", 6}, {0.8});  // 3 hops from alice: outside the traversal
    edges.put({1, "works_at", 5}, {1.0});

    for (const auto& [key, e] : outgoing(edges, 1)) {
      const auto& [from, relation, to] = key;
      std::cout << nodes.get(from).value().name << " -" << relation << "-> " << nodes.get(to).value().name << " ("
                << e.weight << ")\n";
    }

    std::set<NodeId> seen{1};  // breadth-first, 2 hops from alice
    std::vector<NodeId> frontier{1};
    for (int hop = 1; hop <= 2; ++hop) {
      std::vector<NodeId> next;
      for (NodeId n : frontier)
        for (const auto& [key, e] : outgoing(edges, n))
          if (seen.insert(std::get<2>(key)).second) next.push_back(std::get<2>(key));
      for (NodeId n : next) std::cout << "hop " << hop << ": " << nodes.get(n).value().name << "\n";
      frontier = std::move(next);
    }

    // Deleting a node and its outgoing edges (erase_prefix; erasing inside a
    // scan is allowed too). Incoming edges, here 1 -knows-> 3, need a second
    // store keyed (to, relation, from).
    const std::size_t erased = edges.erase_prefix(NodeId{3});
    nodes.erase(3);
    const bool ok = seen == std::set<NodeId>{1, 2, 3, 4, 5} && erased == 1 && edges.size() == 5 &&
                    outgoing(edges, 3).begin() == outgoing(edges, 3).end() && !nodes.contains(3);
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
