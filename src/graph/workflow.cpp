// Workflow graphs in ComfyUI's API format: {node_id: {class_type, inputs, _meta}}.
#include "graph/workflow.h"

#include <limits>

#include "core/error.h"

namespace df::graph {
namespace {

// A JSON integer >= 0 that fits int64_t.
std::optional<int64_t> non_negative_integer(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(u);
    }
    return std::nullopt;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return v.get<int64_t>();
  return std::nullopt;
}

std::optional<Link> parse_link(const nlohmann::json& value) {
  if (value.size() != 2) return std::nullopt;
  const auto slot = non_negative_integer(value[1]);
  if (!slot) return std::nullopt;
  if (value[0].is_string()) return Link{value[0].get<std::string>(), *slot};
  if (const auto numeric_id = non_negative_integer(value[0])) {
    return Link{std::to_string(*numeric_id), *slot};
  }
  return std::nullopt;
}

NodeInput parse_input(const nlohmann::json& value) {
  if (value.is_array()) {
    if (auto link = parse_link(value)) return NodeInput{InputKind::kLink, value, *link};
    return NodeInput{InputKind::kMalformedLink, value, {}};
  }
  if (value.is_object() && value.contains("__value__")) {
    return NodeInput{InputKind::kConstant, value["__value__"], {}};
  }
  return NodeInput{InputKind::kConstant, value, {}};
}

[[noreturn]] void malformed(const std::string& message, const std::string& node_id) {
  throw Error(ErrorCode::kInvalidArgument, message, {{"node_id", node_id}});
}

Node parse_node(const std::string& id, const nlohmann::json& data) {
  if (!data.is_object()) {
    malformed("Node '" + id + "' must be a JSON object with class_type and inputs", id);
  }
  Node node;
  node.id = id;
  if (auto it = data.find("class_type"); it != data.end()) {
    if (!it->is_string()) malformed("Node '" + id + "': class_type must be a string", id);
    node.class_type = it->get<std::string>();
  }
  if (auto meta = data.find("_meta"); meta != data.end() && meta->is_object()) {
    if (auto title = meta->find("title"); title != meta->end() && title->is_string()) {
      node.title = title->get<std::string>();
    }
  }
  if (auto inputs = data.find("inputs"); inputs != data.end()) {
    if (!inputs->is_object()) malformed("Node '" + id + "': inputs must be a JSON object", id);
    for (const auto& [name, value] : inputs->items()) node.inputs[name] = parse_input(value);
  }
  return node;
}

}  // namespace

const NodeInput* Node::input(std::string_view name) const {
  auto it = inputs.find(name);
  return it == inputs.end() ? nullptr : &it->second;
}

const Node* Workflow::find(std::string_view node_id) const {
  auto it = nodes.find(node_id);
  return it == nodes.end() ? nullptr : &it->second;
}

Workflow parse_workflow(const nlohmann::json& prompt) {
  if (!prompt.is_object()) {
    throw Error(ErrorCode::kInvalidArgument,
                "A workflow must be a JSON object that maps node ids to nodes");
  }
  if (prompt.size() > kMaxWorkflowNodes) {
    throw Error(ErrorCode::kInvalidArgument,
                "the workflow has " + std::to_string(prompt.size()) + " nodes; at most " +
                    std::to_string(kMaxWorkflowNodes) + " are accepted");
  }
  Workflow workflow;
  workflow.source = prompt;
  for (const auto& [id, data] : prompt.items()) workflow.nodes.emplace(id, parse_node(id, data));
  return workflow;
}

}  // namespace df::graph
