// The link structure of a workflow: upstream closures and dependency cycles.
#include "graph/graph_topology.h"

#include <algorithm>
#include <map>

namespace df::graph {
namespace {

// Tarjan's strongly connected components over the links between the given nodes, with an
// explicit stack instead of recursion: a chain of thousands of nodes must not overflow the stack.
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
  // A node being visited and how far through its sources the visit got.
  struct Frame {
    std::string id;
    std::vector<std::string> sources;
    size_t next = 0;
    bool self_linked = false;
  };

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

  void enter(const std::string& id, std::vector<Frame>& frames) {
    index_[id] = low_[id] = next_index_++;
    stack_.push_back(id);
    on_stack_.insert(id);
    frames.push_back(Frame{id, sources_of(id)});
  }

  void visit(const std::string& root) {
    std::vector<Frame> frames;
    enter(root, frames);
    while (!frames.empty()) {
      Frame& frame = frames.back();
      if (frame.next < frame.sources.size()) {
        const std::string source = frame.sources[frame.next++];
        if (source == frame.id) frame.self_linked = true;
        if (!index_.contains(source)) {
          enter(source, frames);  // `frame` is not used after this
        } else if (on_stack_.contains(source)) {
          low_[frame.id] = std::min(low_[frame.id], index_[source]);
        }
        continue;
      }
      const Frame done = std::move(frame);
      frames.pop_back();
      if (!frames.empty()) {
        low_[frames.back().id] = std::min(low_[frames.back().id], low_[done.id]);
      }
      if (low_[done.id] == index_[done.id]) pop_component(done);
    }
  }

  void pop_component(const Frame& root) {
    std::vector<std::string> component;
    std::string member;
    do {
      member = stack_.back();
      stack_.pop_back();
      on_stack_.erase(member);
      component.push_back(member);
    } while (member != root.id);
    if (component.size() > 1 || root.self_linked) {
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
