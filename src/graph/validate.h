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

struct ValidationResult {
  bool ok = false;
  nlohmann::json error;  // ComfyUI's ErrorObj {type, message, details, extra_info}; null when ok
  // {node_id: {"errors": [ErrorObj...], "dependent_outputs": [ids], "class_type": str}}; may be
  // non-empty when ok (some outputs failed, the others run).
  nlohmann::json node_errors = nlohmann::json::object();
  std::vector<std::string> outputs_to_execute;  // the output nodes that passed, sorted by id
};

// Validates the way ComfyUI's validate_prompt does: every class_type must be known; the output
// nodes (restricted to `partial_targets` unless empty) are validated with everything upstream of
// them, and nodes that no output depends on are ignored. Dependency cycles are reported as
// "dependency_cycle" errors on every node of the cycle.
ValidationResult validate_workflow(const Workflow& workflow, const NodeSchemaRegistry& schemas,
                                   const SchemaContext& context,
                                   const std::vector<std::string>& partial_targets = {},
                                   const ValidationHooks& hooks = {});

}  // namespace df::graph
