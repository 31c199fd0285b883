// The link structure of a workflow: upstream closures and dependency cycles.
#include "graph/graph_topology.h"

#include <algorithm>
#include <map>

namespace df::graph {
namespace {

// Tarjan's strongly connected components over the links between the given nodes.
class CycleFinder {
 public:
  CycleFinder(const Workflow& workflow, const std::set<std::string>& nodes)
      : workflow_(workflow), nodes_(nodes) {}

  std::vector<std::vector<std::string>> run() {
    for (const auto& id : nodes_) {
      if (!index_.contains(id)) visit(id);
    }
    std::sort(cycles_.begin(), cycles_.end());
    return cycles_;
  }

 private:
  std::vector<std::string> sources_of(const std::string& id) const {
    std::vector<std::string> sources;
    if (const Node* node = workflow_.find(id)) {
      for (const auto& [name, input] : node->inputs) {
        if (input.kind == InputKind::kLink && nodes_.contains(input.link.node_id)) {
          sources.push_back(input.link.node_id);
        }
      }
    }
    return sources;
  }

  void visit(const std::string& id) {
    index_[id] = low_[id] = next_index_++;
    stack_.push_back(id);
    on_stack_.insert(id);
    bool self_linked = false;
    for (const auto& source : sources_of(id)) {
      if (source == id) self_linked = true;
      if (!index_.contains(source)) {
        visit(source);
        low_[id] = std::min(low_[id], low_[source]);
      } else if (on_stack_.contains(source)) {
        low_[id] = std::min(low_[id], index_[source]);
      }
    }
    if (low_[id] != index_[id]) return;
    std::vector<std::string> component;
    std::string member;
    do {
      member = stack_.back();
      stack_.pop_back();
      on_stack_.erase(member);
      component.push_back(member);
    } while (member != id);
    if (component.size() > 1 || self_linked) {
      std::sort(component.begin(), component.end());
      cycles_.push_back(std::move(component));
    }
  }

  const Workflow& workflow_;
  const std::set<std::string>& nodes_;
  std::map<std::string, int> index_;
  std::map<std::string, int> low_;
  int next_index_ = 0;
  std::vector<std::string> stack_;
  std::set<std::string> on_stack_;
  std::vector<std::vector<std::string>> cycles_;
};

}  // namespace

std::set<std::string> upstream_closure(const Workflow& workflow,
                                       const std::vector<std::string>& roots) {
  std::set<std::string> seen;
  std::vector<std::string> pending(roots.begin(), roots.end());
  while (!pending.empty()) {
    std::string id = std::move(pending.back());
    pending.pop_back();
    const Node* node = workflow.find(id);
    if (node == nullptr || !seen.insert(id).second) continue;
    for (const auto& [name, input] : node->inputs) {
      if (input.kind == InputKind::kLink) pending.push_back(input.link.node_id);
    }
  }
  return seen;
}

std::vector<std::vector<std::string>> dependency_cycles(const Workflow& workflow,
                                                        const std::set<std::string>& nodes) {
  return CycleFinder(workflow, nodes).run();
}

}  // namespace df::graph
