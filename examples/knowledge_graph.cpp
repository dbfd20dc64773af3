// knowledge_graph: nodes and edges, two collections of one Database. Edges
// are keyed (from, relation, to); keys sort element by element, so a node's
// outgoing edges are one contiguous key range: scan_prefix(n) lists them,
// grouped by relation. Incoming edges come from an index on the target, which
// the store keeps in the same commit as each edge: no second store, keyed
// (to, relation, from), to keep in step by hand.
// Shows a 2-hop breadth-first traversal, following edges backwards, and
// deleting a node with every edge that touches it in one commit.
//
//   usage: knowledge_graph [directory]   (the store goes in directory/graph)
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <stowage/stowage.hpp>

using NodeId = std::uint64_t;
struct Node {
  std::string name, type;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) { ar & name & type; }
};
struct Edge {     // what an edge carries besides its key, and
  NodeId to = 0;  // the key's target again: an index's extractor sees only the value
  double weight = 1.0;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) { ar & to & weight; }
};

using Db = stowage::Database<>;
using EdgeKey = std::tuple<NodeId, std::string, NodeId>;  // (from, relation, to)
using Nodes = Db::collection_type<NodeId, Node>;
using Edges = Db::collection_type<EdgeKey, Edge>;
using ByTarget = Edges::Index<NodeId, false>;  // to -> edges, several per target

// The open store. Opening it only through this struct declares the index in
// every session before any write, as it must be: every write then keeps it.
struct Graph {
  explicit Graph(const std::filesystem::path& dir) : db(dir) {}
  Db db;
  Nodes nodes = db.collection<NodeId, Node>("nodes");
  Edges edges = db.collection<EdgeKey, Edge>("edges");
  ByTarget by_target = edges.index("by_target", &Edge::to);

  void link(NodeId from, const std::string& relation, NodeId to, double weight) {
    edges.put({from, relation, to}, {to, weight});
  }
  // Every outgoing edge of n: the keys whose first element is n.
  Edges::range outgoing(NodeId n) const { return edges.scan_prefix(n); }
  // Every incoming edge of n, in (from, relation) order. The range refers to
  // by_target: the Index handle must outlive it.
  ByTarget::range incoming(NodeId n) const { return by_target.find(n); }
  std::string name(NodeId n) const { return nodes.get(n).value().name; }
  // Deletes node n and every edge into or out of it as one commit: after a
  // crash no edge points at a missing node. Returns the edges erased.
  // (Read-then-write: run deletions from one thread at a time.)
  std::size_t remove(NodeId n) {
    auto batch = db.batch();
    batch.erase(nodes, n);
    for (const auto& [key, e] : outgoing(n)) batch.erase(edges, key);
    for (const auto& [key, e] : incoming(n)) batch.erase(edges, key);
    const std::size_t erased = batch.size() - 1;
    batch.commit();
    return erased;
  }
};

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "knowledge-graph-demo";
  try {
    std::filesystem::remove_all(dir / "graph");  // start empty on every run
    Graph g(dir / "graph");
    g.nodes.put_batch(std::vector<std::pair<NodeId, Node>>{
        {1, {"alice", "person"}}, {2, {"bob", "person"}}, {3, {"carol", "person"}},
        {4, {"dave", "person"}}, {5, {"acme", "company"}}, {6, {"erin", "person"}}});
    g.link(1, "knows", 2, 0.9);
    g.link(1, "knows", 3, 0.5);
    g.link(2, "knows", 4, 0.7);
    g.link(3, "works_at", 5, 1.0);
    g.link(4, "knows", 6, 0.8);  // 3 hops from alice: outside the traversal
    g.link(1, "works_at", 5, 1.0);

    for (const auto& [key, e] : g.outgoing(1)) {
      const auto& [from, relation, to] = key;
      std::cout << g.name(from) << " -" << relation << "-> " << g.name(to) << " (" << e.weight << ")\n";
    }

    std::set<NodeId> seen{1};  // breadth-first, 2 hops from alice
    std::vector<NodeId> frontier{1};
    for (int hop = 1; hop <= 2; ++hop) {
      std::vector<NodeId> next;
      for (NodeId n : frontier)
        for (const auto& [key, e] : g.outgoing(n))
          if (seen.insert(std::get<2>(key)).second) next.push_back(std::get<2>(key));
      for (NodeId n : next) std::cout << "hop " << hop << ": " << g.name(n) << "\n";
      frontier = std::move(next);
    }

    for (const auto& [key, e] : g.incoming(5)) {  // following edges backwards, through the index
      const auto& [from, relation, to] = key;
      std::cout << "into " << g.name(to) << ": " << g.name(from) << " -" << relation << "->\n";
    }

    // carol goes with alice's edge into her and hers into acme.
    const std::size_t erased = g.remove(3);
    std::cout << "removed carol and " << erased << " edges\n";

    // erase_prefix takes leading key elements too: alice's works_at edges.
    // Like every write of the collection, it keeps the index.
    const std::size_t left_acme = g.edges.erase_prefix(std::tuple<NodeId, std::string>{1, "works_at"});
    const auto into = g.incoming(5);
    const auto into_acme = std::distance(into.begin(), into.end());
    std::cout << "erased " << left_acme << " works_at edge of alice; " << into_acme << " edges into acme, "
              << g.edges.size() << " edges in all\n";

    const bool ok = seen == std::set<NodeId>{1, 2, 3, 4, 5} && erased == 2 && !g.nodes.contains(3) &&
                    g.outgoing(3).begin() == g.outgoing(3).end() && g.incoming(3).begin() == g.incoming(3).end() &&
                    left_acme == 1 && into_acme == 0 && g.edges.size() == 3 && g.by_target.size() == 3;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
