// Workflow graphs in ComfyUI's API format: {node_id: {class_type, inputs, _meta}}.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace df::graph {

// A link to output `slot` of node `node_id`.
struct Link {
  std::string node_id;
  int64_t slot = 0;
};

enum class InputKind {
  kConstant,       // a widget value
  kLink,           // a well-formed [node_id, slot]
  kMalformedLink,  // any other JSON array; validation reports it as bad_linked_input
};

struct NodeInput {
  InputKind kind = InputKind::kConstant;
  // kConstant: the value, with a {"__value__": v} wrapper removed; otherwise the raw JSON.
  nlohmann::json value;
  Link link;  // kLink only
};

struct Node {
  std::string id;
  std::string class_type;            // empty when the prompt names none
  std::optional<std::string> title;  // _meta.title
  std::map<std::string, NodeInput, std::less<>> inputs;

  const NodeInput* input(std::string_view name) const;
};

struct Workflow {
  std::map<std::string, Node, std::less<>> nodes;
  nlohmann::json source;  // the prompt as received (the hidden PROMPT input)

  const Node* find(std::string_view node_id) const;
};

// The most nodes a prompt may have: real workflows have a few hundred at most, and every check of
// a graph grows with its size.
inline constexpr size_t kMaxWorkflowNodes = 5000;

// Parses a prompt. A JSON array input is a link; a link is well-formed when it is
// [string or integer node id, integer slot >= 0]. Missing "inputs" means none.
// Throws df::Error(kInvalidArgument) when the structure is not a prompt (not an object, a node
// that is not an object, "inputs" not an object, "class_type" not a string, more than
// kMaxWorkflowNodes nodes).
Workflow parse_workflow(const nlohmann::json& prompt);

}  // namespace df::graph
