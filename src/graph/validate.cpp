// Workflow validation with ComfyUI's error shapes (POST /prompt's "error" and "node_errors").
#include "graph/validate.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "graph/graph_topology.h"
#include "graph/python_values.h"

namespace df::graph {
namespace {

using nlohmann::json;

// Above this many choices, value_not_in_list leaves the list out of its details.
constexpr size_t kMaxListedChoices = 20;
// A dependency_cycle error's details name this many of the cycle's nodes (extra_info has all).
constexpr size_t kMaxListedCycleNodes = 20;
// node_errors name at most this many failed outputs, so that the answer to a hostile graph stays
// small; every failed output still fails.
constexpr size_t kMaxReportedFailedOutputs = 100;

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
    if (s.find('\0') != std::string::npos) {
      throw Error(ErrorCode::kInvalidArgument,
                  "the text holds a NUL character, which image metadata cannot store");
    }
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

  void set_cycles(std::vector<std::vector<std::string>> cycles) {
    cycles_ = std::move(cycles);
    for (size_t i = 0; i < cycles_.size(); ++i) {
      for (const auto& id : cycles_[i]) cycle_of_[id] = i;
    }
  }

  // Returns whether the node and everything upstream of it are valid; records the reasons of each
  // node (a node that is invalid only because of an upstream node has none). Walks upstream with
  // an explicit stack: a chain of thousands of nodes must not overflow the stack.
  bool validate(const std::string& root) {
    if (!results_.contains(root)) {
      std::vector<std::pair<std::string, size_t>> pending;  // node, next upstream node to visit
      examine(root);
      pending.emplace_back(root, 0);
      while (!pending.empty()) {
        const std::string id = pending.back().first;
        Result& result = results_.at(id);
        const size_t next = pending.back().second++;
        if (next < result.upstream.size()) {
          const std::string& source = result.upstream[next];
          if (!results_.contains(source)) {
            examine(source);
            pending.emplace_back(source, 0);
          }
          continue;
        }
        // Followed links never close a cycle, so every upstream node is finished here.
        result.valid = result.valid && std::all_of(
            result.upstream.begin(), result.upstream.end(),
            [this](const std::string& source) { return results_.at(source).valid; });
        pending.pop_back();
      }
    }
    return results_.at(root).valid;
  }

  // The node's own reasons, or nullptr when it has none or was not validated.
  const json* reasons_of(const std::string& id) const {
    auto it = results_.find(id);
    if (it == results_.end() || it->second.reasons.empty()) return nullptr;
    return &it->second.reasons;
  }

 private:
  struct Result {
    bool valid = false;  // own checks passed (then, once finished, also everything upstream)
    json reasons;
    std::vector<std::string> upstream;  // nodes whose validity this node's depends on
  };

  // What check_link found.
  enum class LinkCheck { kFollow, kRefused, kInCycle };

  // Checks the node itself: its inputs and its custom check; records which links lead upstream.
  void examine(const std::string& id) {
    const Node& node = *workflow_.find(id);
    const NodeSchema& schema = *schemas_.find(node.class_type);
    const auto hook = hooks_.by_class_type.find(node.class_type);
    const CustomValidator* custom = hook == hooks_.by_class_type.end() ? nullptr : &hook->second;

    Result result;
    result.reasons = json::array();
    bool in_cycle = false;
    for (const auto* group : {&schema.required, &schema.optional}) {
      const bool required = group == &schema.required;
      for (const auto& spec : *group) {
        const NodeInput* input = node.input(spec.name);
        if (input == nullptr) {
          if (required) {
            result.reasons.push_back(error_object("required_input_missing",
                                                  "Required input is missing", spec.name,
                                                  {{"input_name", spec.name}}));
          }
          continue;
        }
        const bool self_checked =
            custom != nullptr && std::find(custom->inputs.begin(), custom->inputs.end(),
                                           spec.name) != custom->inputs.end();
        if (input->kind == InputKind::kConstant) {
          check_constant(spec, input->value, self_checked, result.reasons);
          continue;
        }
        switch (check_link(node, spec, *input, result.reasons)) {
          case LinkCheck::kFollow:
            result.upstream.push_back(input->link.node_id);
            break;
          case LinkCheck::kInCycle:
            in_cycle = true;
            break;
          case LinkCheck::kRefused:
            break;
        }
      }
    }
    check_undeclared_links(node, schema, result.reasons);
    if (custom != nullptr) run_custom_check(node, *custom, result.reasons);
    result.valid = !in_cycle && result.reasons.empty();
    results_[id] = std::move(result);
  }

  // Inputs the schema does not declare are ignored, as in ComfyUI, except well-formed links that
  // cannot be resolved when the graph runs (a missing node or output slot): those fail here, not
  // mid-run. (A malformed link is no link to ComfyUI: an undeclared one is ignored like any value.)
  void check_undeclared_links(const Node& node, const NodeSchema& schema, json& reasons) {
    for (const auto& [name, input] : node.inputs) {
      if (input.kind != InputKind::kLink || schema.find_input(name) != nullptr) continue;
      const InputSpec any{name, "*", nullptr, {}, ComboSource::kFixed};
      check_link(node, any, input, reasons);
    }
  }

  // A cycle is reported once, on its first node (by id), with its members.
  void report_cycle(size_t cycle_index, const std::string& input_name, const json& link,
                    json& reasons) {
    const std::vector<std::string>& cycle = cycles_[cycle_index];
    if (!reported_cycles_.insert(cycle_index).second) return;
    std::string members;
    for (size_t i = 0; i < std::min(cycle.size(), kMaxListedCycleNodes); ++i) {
      members += (members.empty() ? "'" : ", '") + cycle[i] + "'";
    }
    if (cycle.size() > kMaxListedCycleNodes) {
      members += " and " + std::to_string(cycle.size() - kMaxListedCycleNodes) + " more";
    }
    const std::string details =
        cycle.size() == 1
            ? input_name + ": node " + members + " depends on its own output"
            : input_name + ": " + std::to_string(cycle.size()) + " nodes depend on each other: " +
                  members;
    reasons.push_back(error_object(
        "dependency_cycle", "Dependency cycle detected", details,
        {{"input_name", input_name}, {"linked_node", link}, {"cycle_nodes", cycle}}));
  }

  // Checks a link input; says whether validation should follow it upstream.
  LinkCheck check_link(const Node& node, const InputSpec& spec, const NodeInput& input,
                       json& reasons) {
    const std::string& x = spec.name;
    const json bad_link_info = {
        {"input_name", x}, {"input_config", spec.input_config()}, {"received_value", input.value}};
    if (input.kind == InputKind::kMalformedLink) {
      reasons.push_back(error_object(
          "bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]",
          x, bad_link_info));
      return LinkCheck::kRefused;
    }
    const Node* source = workflow_.find(input.link.node_id);
    if (source == nullptr) {
      reasons.push_back(error_object("bad_linked_input", "Linked node does not exist",
                                     x + ": node '" + input.link.node_id + "' is not in the prompt",
                                     bad_link_info));
      return LinkCheck::kRefused;
    }
    const NodeSchema& source_schema = *schemas_.find(source->class_type);
    if (input.link.slot >= static_cast<int64_t>(source_schema.output.size())) {
      reasons.push_back(error_object(
          "bad_linked_input", "Linked output slot does not exist",
          x + ": node '" + source->id + "' (" + source->class_type + ") has no output slot " +
              std::to_string(input.link.slot),
          bad_link_info));
      return LinkCheck::kRefused;
    }
    if (auto cycle = cycle_of_.find(node.id); cycle != cycle_of_.end()) {
      const auto source_cycle = cycle_of_.find(source->id);
      if (source_cycle != cycle_of_.end() && source_cycle->second == cycle->second) {
        if (node.id == cycles_[cycle->second].front()) {
          report_cycle(cycle->second, x, input.value, reasons);
        }
        return LinkCheck::kInCycle;
      }
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
      return LinkCheck::kRefused;
    }
    return LinkCheck::kFollow;
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
  std::vector<std::vector<std::string>> cycles_;
  std::map<std::string, size_t> cycle_of_;  // node id -> index in cycles_
  std::set<size_t> reported_cycles_;
  std::map<std::string, Result> results_;
};

}  // namespace

json missing_node_type_error(const Workflow& workflow,
                             const std::function<bool(std::string_view)>& known) {
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
    if (!known(node.class_type)) {
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

CustomValidator load_image_validator(std::function<bool(std::string_view)> image_exists) {
  return CustomValidator{
      {"image"}, [image_exists = std::move(image_exists)](const Node& node) {
        const json& value = node.input("image")->value;
        const std::string name = python_str(value);
        if (value.is_string() && image_exists(name)) return std::optional<std::string>();
        return std::optional<std::string>("Invalid image file: " + name);
      }};
}

CustomValidator filename_prefix_validator() {
  // "_00001_.png": the counter and extension SaveImage appends to the last part.
  constexpr size_t kAppendedBytes = 12;
  constexpr size_t kMaxNameBytes = 255;
  return CustomValidator{{"filename_prefix"}, [](const Node& node) -> std::optional<std::string> {
    const std::string prefix = python_str(node.input("filename_prefix")->value);
    size_t start = 0;
    while (true) {
      const size_t end = prefix.find('/', start);
      const size_t length = (end == std::string::npos ? prefix.size() : end) - start;
      if (end == std::string::npos) {
        if (length + kAppendedBytes > kMaxNameBytes) {
          return "the file name part is " + std::to_string(length) + " bytes; at most " +
                 std::to_string(kMaxNameBytes - kAppendedBytes) + " fit in a file name";
        }
        return std::nullopt;
      }
      if (length > kMaxNameBytes) {
        return "a folder name is " + std::to_string(length) + " bytes; at most " +
               std::to_string(kMaxNameBytes) + " are possible";
      }
      start = end + 1;
    }
  }};
}

ValidationResult validate_workflow(const Workflow& workflow, const NodeSchemaRegistry& schemas,
                                   const SchemaContext& context,
                                   const std::vector<std::string>& partial_targets,
                                   const ValidationHooks& hooks) {
  ValidationResult result;
  const auto known = [&schemas](std::string_view class_type) {
    return schemas.find(class_type) != nullptr;
  };
  if (json error = missing_node_type_error(workflow, known); !error.is_null()) {
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
  // otherwise the node that reports it might never be reached.
  auto cycles = dependency_cycles(workflow, upstream_closure(workflow, outputs));
  const std::vector<std::string> cycle_heads = [&] {
    std::vector<std::string> heads;
    for (const auto& cycle : cycles) heads.push_back(cycle.front());
    return heads;
  }();
  validator.set_cycles(std::move(cycles));
  for (const auto& head : cycle_heads) validator.validate(head);
  size_t reported_failures = 0;
  for (const auto& output : outputs) {
    if (validator.validate(output)) {
      result.outputs_to_execute.push_back(output);
      continue;
    }
    if (++reported_failures > kMaxReportedFailedOutputs) continue;
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
