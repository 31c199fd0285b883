// Workflow validation with ComfyUI's error shapes (POST /prompt's "error" and "node_errors").
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/node_schema.h"
#include "graph/workflow.h"

namespace df::graph {

// A per-class check beyond the schema, like ComfyUI's VALIDATE_INPUTS.
struct CustomValidator {
  // The inputs the check covers: the standard min/max and combo-list checks are skipped for
  // them, and a failure is reported once for each of them (custom_validation_failed).
  std::vector<std::string> inputs;
  // Returns the reason when the node is invalid, e.g. "Invalid image file: cat.png".
  std::function<std::optional<std::string>(const Node&)> check;
};

struct ValidationHooks {
  std::map<std::string, CustomValidator, std::less<>> by_class_type;
};

// LoadImage's check: the "image" input must name an existing file ("Invalid image file: X").
// `image_exists` receives the value as sent, possibly with a " [input]"-style annotation.
CustomValidator load_image_validator(std::function<bool(std::string_view)> image_exists);

// SaveImage's check: "filename_prefix" must make file names: each folder name at most 255 bytes,
// the last part short enough for the counter and extension appended to it (a NUL is refused as
// in every STRING input).
CustomValidator filename_prefix_validator();

struct ValidationResult {
  bool ok = false;
  nlohmann::json error;  // ComfyUI's ErrorObj {type, message, details, extra_info}; null when ok
  // {node_id: {"errors": [ErrorObj...], "dependent_outputs": [ids], "class_type": str}}; may be
  // non-empty when ok (some outputs failed, the others run).
  nlohmann::json node_errors = nlohmann::json::object();
  std::vector<std::string> outputs_to_execute;  // the output nodes that passed, sorted by id
};

// ComfyUI's prompt-level "missing_node_type" error for the first node (by id) that names no
// class_type or one `known` refuses; null when every node's class is known.
nlohmann::json missing_node_type_error(const Workflow& workflow,
                                       const std::function<bool(std::string_view)>& known);

// Validates the way ComfyUI's validate_prompt does: every class_type must be known; the output
// nodes (restricted to `partial_targets` unless empty) are validated with everything upstream of
// them, and nodes that no output depends on are ignored. A dependency cycle is reported once, as a
// "dependency_cycle" error on its first node. A STRING input holding a NUL character is refused
// (image metadata and file names cannot hold one).
ValidationResult validate_workflow(const Workflow& workflow, const NodeSchemaRegistry& schemas,
                                   const SchemaContext& context,
                                   const std::vector<std::string>& partial_targets = {},
                                   const ValidationHooks& hooks = {});

}  // namespace df::graph
