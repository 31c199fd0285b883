// Workflow validation with ComfyUI's error shapes (POST /prompt's "error" and "node_errors").
#include "graph/validate.h"

#include <algorithm>

#include "core/error.h"
#include "graph/graph_topology.h"
#include "graph/python_values.h"

namespace df::graph {
namespace {

using nlohmann::json;

// Above this many choices, value_not_in_list leaves the list out of its details.
constexpr size_t kMaxListedChoices = 20;

json error_object(std::string type, std::string message, std::string details, json extra_info) {
  return {{"type", std::move(type)},
          {"message", std::move(message)},
          {"details", std::move(details)},
          {"extra_info", std::move(extra_info)}};
}

std::vector<std::string> split_types(std::string_view types) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= types.size()) {
    size_t end = types.find(',', start);
    if (end == std::string_view::npos) end = types.size();
    std::string_view part = types.substr(start, end - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    parts.emplace_back(part);
    start = end + 1;
  }
  return parts;
}

// How ComfyUI prints an input type in messages: the type name, or the list of choices.
std::string printed_type(const InputSpec& spec) {
  return spec.is_combo() ? python_repr(json(spec.choices)) : spec.type;
}

// ComfyUI's validate_node_input: equal types, "*" on either side, or overlapping "A,B" lists.
bool types_compatible(const std::string& received, const std::string& accepted) {
  if (received == accepted || received == "*" || accepted == "*") return true;
  const auto received_parts = split_types(received);
  const auto accepted_parts = split_types(accepted);
  return std::any_of(received_parts.begin(), received_parts.end(), [&](const std::string& t) {
    return std::find(accepted_parts.begin(), accepted_parts.end(), t) != accepted_parts.end();
  });
}

// A constant after ComfyUI's coercion, with what the range checks need.
struct Coerced {
  json value;        // the coerced value (received_value of range errors)
  std::string text;  // Python's str() of it
  std::optional<PyInt> integer;
  std::optional<double> real;
};

Coerced coerce(const InputSpec& spec, const json& raw) {
  if (spec.type == "INT") {
    PyInt i = python_int(raw);
    return {py_int_to_json(i), i.text, i, std::nullopt};
  }
  if (spec.type == "FLOAT") {
    const double d = python_float(raw);
    return {d, python_float_repr(d), std::nullopt, d};
  }
  if (spec.type == "STRING") {
    std::string s = python_str(raw);
    return {s, s, std::nullopt, std::nullopt};
  }
  if (spec.type == "BOOLEAN") {
    const bool b = python_bool(raw);
    return {b, b ? "True" : "False", std::nullopt, std::nullopt};
  }
  if (spec.is_combo()) return {raw, python_str(raw), std::nullopt, std::nullopt};
  throw Error(ErrorCode::kInvalidArgument,
              "a " + spec.type + " input must be linked to the output of another node");
}

// Python's comparison of the coerced value with a JSON bound: -1, 0 or 1.
int compare_with_bound(const Coerced& v, const json& bound) {
  if (v.integer && bound.is_number_integer()) {
    const __int128 b = bound.is_number_unsigned() ? static_cast<__int128>(bound.get<uint64_t>())
                                                  : static_cast<__int128>(bound.get<int64_t>());
    return v.integer->value < b ? -1 : (v.integer->value > b ? 1 : 0);
  }
  const long double value = v.integer ? static_cast<long double>(v.integer->value)
                                      : static_cast<long double>(*v.real);
  const long double b = bound.get<long double>();
  return value < b ? -1 : (value > b ? 1 : 0);  // NaN compares neither way, as in Python
}

class Validator {
 public:
  Validator(const Workflow& workflow, NodeSchemaRegistry schemas, const ValidationHooks& hooks)
      : workflow_(workflow), schemas_(std::move(schemas)), hooks_(hooks) {}

  void set_cycles(const std::vector<std::vector<std::string>>& cycles) {
    for (const auto& cycle : cycles) {
      for (const auto& id : cycle) cycle_of_[id] = cycle;
    }
  }

  // Returns whether the node and everything upstream of it are valid; records the node's own
  // reasons (a node that is invalid only because of an upstream node has none).
  bool validate(const std::string& id) {
    if (auto it = results_.find(id); it != results_.end()) return it->second.valid;
    const Node& node = *workflow_.find(id);
    const NodeSchema& schema = *schemas_.find(node.class_type);
    const auto hook = hooks_.by_class_type.find(node.class_type);
    const CustomValidator* custom = hook == hooks_.by_class_type.end() ? nullptr : &hook->second;

    json reasons = json::array();
    bool upstream_valid = true;
    for (const auto* group : {&schema.required, &schema.optional}) {
      const bool required = group == &schema.required;
      for (const auto& spec : *group) {
        const NodeInput* input = node.input(spec.name);
        if (input == nullptr) {
          if (required) {
            reasons.push_back(error_object("required_input_missing", "Required input is missing",
                                           spec.name, {{"input_name", spec.name}}));
          }
          continue;
        }
        const bool self_checked =
            custom != nullptr && std::find(custom->inputs.begin(), custom->inputs.end(),
                                           spec.name) != custom->inputs.end();
        if (input->kind == InputKind::kConstant) {
          check_constant(spec, input->value, self_checked, reasons);
        } else if (!check_link(node, spec, *input, reasons)) {
          continue;
        } else if (!validate(input->link.node_id)) {
          upstream_valid = false;
        }
      }
    }
    if (custom != nullptr) run_custom_check(node, *custom, reasons);

    const bool valid = upstream_valid && reasons.empty();
    results_[id] = Result{valid, std::move(reasons)};
    return valid;
  }

  // The node's own reasons, or nullptr when it has none or was not validated.
  const json* reasons_of(const std::string& id) const {
    auto it = results_.find(id);
    if (it == results_.end() || it->second.reasons.empty()) return nullptr;
    return &it->second.reasons;
  }

 private:
  struct Result {
    bool valid = false;
    json reasons;
  };

  // Checks a link input; returns whether validation should follow it upstream.
  bool check_link(const Node& node, const InputSpec& spec, const NodeInput& input,
                  json& reasons) const {
    const std::string& x = spec.name;
    const json bad_link_info = {
        {"input_name", x}, {"input_config", spec.input_config()}, {"received_value", input.value}};
    if (input.kind == InputKind::kMalformedLink) {
      reasons.push_back(error_object(
          "bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]",
          x, bad_link_info));
      return false;
    }
    const Node* source = workflow_.find(input.link.node_id);
    if (source == nullptr) {
      reasons.push_back(error_object("bad_linked_input", "Linked node does not exist",
                                     x + ": node '" + input.link.node_id + "' is not in the prompt",
                                     bad_link_info));
      return false;
    }
    const NodeSchema& source_schema = *schemas_.find(source->class_type);
    if (input.link.slot >= static_cast<int64_t>(source_schema.output.size())) {
      reasons.push_back(error_object(
          "bad_linked_input", "Linked output slot does not exist",
          x + ": node '" + source->id + "' (" + source->class_type + ") has no output slot " +
              std::to_string(input.link.slot),
          bad_link_info));
      return false;
    }
    if (auto cycle = cycle_of_.find(node.id); cycle != cycle_of_.end() &&
                                              std::binary_search(cycle->second.begin(),
                                                                 cycle->second.end(), source->id)) {
      std::string members;
      for (const auto& id : cycle->second) members += (members.empty() ? "'" : ", '") + id + "'";
      const std::string details =
          cycle->second.size() == 1 ? x + ": node " + members + " depends on its own output"
                                    : x + ": nodes " + members + " depend on each other";
      reasons.push_back(error_object(
          "dependency_cycle", "Dependency cycle detected", details,
          {{"input_name", x}, {"linked_node", input.value}, {"cycle_nodes", cycle->second}}));
      return false;
    }
    const std::string& received = source_schema.output[static_cast<size_t>(input.link.slot)];
    if (!types_compatible(received, spec.type)) {
      reasons.push_back(error_object(
          "return_type_mismatch", "Return type mismatch between linked nodes",
          x + ", received_type(" + received + ") mismatch input_type(" + printed_type(spec) + ")",
          {{"input_name", x},
           {"input_config", spec.input_config()},
           {"received_type", received},
           {"linked_node", input.value}}));
      return false;
    }
    return true;
  }

  void check_constant(const InputSpec& spec, const json& raw, bool self_checked,
                      json& reasons) const {
    const std::string& x = spec.name;
    Coerced v;
    try {
      v = coerce(spec, raw);
    } catch (const Error& e) {
      reasons.push_back(error_object(
          "invalid_input_type", "Failed to convert an input value to a " + spec.type + " value",
          x + ", " + python_str(raw) + ", " + e.what(),
                                     {{"input_name", x},
                                      {"input_config", spec.input_config()},
                                      {"received_value", raw},
                                      {"exception_message", e.what()}}));
      return;
    }
    if (self_checked) return;
    const json& options = spec.options;
    const json range_info = {
        {"input_name", x}, {"input_config", spec.input_config()}, {"received_value", v.value}};
    const bool numeric = v.integer.has_value() || v.real.has_value();
    if (numeric && options.is_object() && options.contains("min") &&
        compare_with_bound(v, options["min"]) < 0) {
      reasons.push_back(error_object(
          "value_smaller_than_min",
          "Value " + v.text + " smaller than min of " + python_str(options["min"]), x, range_info));
      return;
    }
    if (numeric && options.is_object() && options.contains("max") &&
        compare_with_bound(v, options["max"]) > 0) {
      reasons.push_back(error_object(
          "value_bigger_than_max",
          "Value " + v.text + " bigger than max of " + python_str(options["max"]), x, range_info));
      return;
    }
    if (spec.is_combo() &&
        !(raw.is_string() && std::find(spec.choices.begin(), spec.choices.end(),
                                       raw.get<std::string>()) != spec.choices.end())) {
      const bool long_list = spec.choices.size() > kMaxListedChoices;
      const std::string list_info =
          long_list ? "(list of length " + std::to_string(spec.choices.size()) + ")"
                    : python_repr(json(spec.choices));
      reasons.push_back(error_object(
          "value_not_in_list", "Value not in list", x + ": '" + v.text + "' not in " + list_info,
          {{"input_name", x},
           {"input_config", long_list ? json(nullptr) : spec.input_config()},
           {"received_value", raw}}));
    }
  }

  void run_custom_check(const Node& node, const CustomValidator& custom, json& reasons) const {
    for (const auto& name : custom.inputs) {
      if (node.input(name) == nullptr) return;  // already reported as missing
    }
    std::optional<std::string> failure;
    try {
      failure = custom.check(node);
    } catch (const std::exception& e) {
      reasons.push_back(error_object(
          "exception_during_validation", "Exception when validating node", e.what(),
          {{"exception_type", dynamic_cast<const Error*>(&e) != nullptr ? "df::Error"
                                                                        : "std::exception"},
           {"traceback", json::array()}}));
      return;
    }
    if (!failure) return;
    for (const auto& name : custom.inputs) {
      reasons.push_back(error_object("custom_validation_failed",
                                     "Custom validation failed for node", name + " - " + *failure,
                                     {{"input_name", name}}));
    }
  }

  const Workflow& workflow_;
  const NodeSchemaRegistry schemas_;
  const ValidationHooks& hooks_;
  std::map<std::string, std::vector<std::string>> cycle_of_;
  std::map<std::string, Result> results_;
};

// The prompt-level error when a node has no class_type or an unknown one, else null.
json unknown_class_error(const Workflow& workflow, const NodeSchemaRegistry& schemas) {
  for (const auto& [id, node] : workflow.nodes) {
    if (node.class_type.empty()) {
      return error_object(
          "missing_node_type",
          "Node '" + node.title.value_or("ID #" + id) +
              "' has no class_type. The workflow may be corrupted or a custom node is missing.",
          "Node ID '#" + id + "'",
          {{"node_id", id},
           {"class_type", nullptr},
           {"node_title", node.title ? json(*node.title) : json(nullptr)}});
    }
    if (schemas.find(node.class_type) == nullptr) {
      const std::string title = node.title.value_or(node.class_type);
      return error_object("missing_node_type",
                          "Node '" + title + "' not found. The custom node may not be installed.",
                          "Node ID '#" + id + "'",
                          {{"node_id", id},
                           {"class_type", node.class_type},
                           {"node_title", title}});
    }
  }
  return nullptr;
}

}  // namespace

CustomValidator load_image_validator(std::function<bool(std::string_view)> image_exists) {
  return CustomValidator{
      {"image"}, [image_exists = std::move(image_exists)](const Node& node) {
        const json& value = node.input("image")->value;
        const std::string name = python_str(value);
        if (value.is_string() && image_exists(name)) return std::optional<std::string>();
        return std::optional<std::string>("Invalid image file: " + name);
      }};
}

ValidationResult validate_workflow(const Workflow& workflow, const NodeSchemaRegistry& schemas,
                                   const SchemaContext& context,
                                   const std::vector<std::string>& partial_targets,
                                   const ValidationHooks& hooks) {
  ValidationResult result;
  if (json error = unknown_class_error(workflow, schemas); !error.is_null()) {
    result.error = std::move(error);
    return result;
  }

  std::vector<std::string> outputs;
  for (const auto& [id, node] : workflow.nodes) {
    const bool targeted = partial_targets.empty() || std::find(partial_targets.begin(),
                                                               partial_targets.end(),
                                                               id) != partial_targets.end();
    if (targeted && schemas.find(node.class_type)->output_node) outputs.push_back(id);
  }
  if (outputs.empty()) {
    result.error = error_object("prompt_no_outputs", "Prompt has no outputs", "", json::object());
    return result;
  }

  Validator validator(workflow, schemas.with_context(context), hooks);
  // Nodes in a cycle are validated first: validation never follows the links of a cycle, so
  // otherwise only the first node reached would report it.
  const auto cycles = dependency_cycles(workflow, upstream_closure(workflow, outputs));
  validator.set_cycles(cycles);
  for (const auto& cycle : cycles) {
    for (const auto& id : cycle) validator.validate(id);
  }
  for (const auto& output : outputs) {
    if (validator.validate(output)) {
      result.outputs_to_execute.push_back(output);
      continue;
    }
    for (const auto& id : upstream_closure(workflow, {output})) {
      const json* reasons = validator.reasons_of(id);
      if (reasons == nullptr) continue;
      json& entry = result.node_errors[id];
      if (entry.is_null()) {
        entry = {{"errors", *reasons},
                 {"dependent_outputs", json::array()},
                 {"class_type", workflow.find(id)->class_type}};
      }
      entry["dependent_outputs"].push_back(output);
    }
  }

  result.ok = !result.outputs_to_execute.empty();
  if (!result.ok) {
    std::string details;
    for (const auto& [id, entry] : result.node_errors.items()) {
      for (const auto& reason : entry["errors"]) {
        if (!details.empty()) details += "\n";
        details += reason["message"].get<std::string>() + ": " +
                   reason["details"].get<std::string>();
      }
    }
    result.error = error_object("prompt_outputs_failed_validation",
                                "Prompt outputs failed validation", details, json::object());
  }
  return result;
}

}  // namespace df::graph
