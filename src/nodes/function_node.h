// A NodeImpl made of a function, for nodes that keep no state of their own.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "graph/node_impl.h"

namespace df::nodes {

using NodeFunction =
    std::function<std::vector<graph::Value>(const graph::NodeInputs&, graph::NodeContext&)>;
using FingerprintFunction = std::function<std::optional<std::string>(const graph::NodeInputs&)>;

class FunctionNode : public graph::NodeImpl {
 public:
  explicit FunctionNode(NodeFunction run, FingerprintFunction fingerprint = {})
      : run_(std::move(run)), fingerprint_(std::move(fingerprint)) {}
  std::vector<graph::Value> execute(const graph::NodeInputs& inputs, graph::NodeContext& ctx) override {
    return run_(inputs, ctx);
  }
  std::optional<std::string> fingerprint(const graph::NodeInputs& inputs) const override {
    return fingerprint_ ? fingerprint_(inputs) : std::nullopt;
  }

 private:
  NodeFunction run_;
  FingerprintFunction fingerprint_;
};

inline void add_function_node(graph::NodeImplRegistry& registry, const std::string& class_type,
                              NodeFunction run, FingerprintFunction fingerprint = {}) {
  registry.add(class_type, [run, fingerprint] { return std::make_unique<FunctionNode>(run, fingerprint); });
}

}  // namespace df::nodes
