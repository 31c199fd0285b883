// Workflows in the ComfyUI web frontend's own format, made from an API-format prompt.
#include "graph/ui_workflow.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/numbers.h"
#include "graph/workflow.h"

namespace df::graph {
namespace {

using nlohmann::json;

constexpr double kMargin = 50;
constexpr double kColumnGap = 80;
constexpr double kRowGap = 40;
constexpr double kNodeWidth = 315;
constexpr double kTextNodeWidth = 400;
constexpr double kSlotHeight = 20;
constexpr double kWidgetHeight = 24;
constexpr double kMultilineHeight = 120;

[[noreturn]] void invalid(const std::string& node_id, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, "node " + node_id + ": " + message,
              {{"node_id", node_id}});
}

// A prompt node with what the layout needs to know about it.
struct PlacedNode {
  const Node* node = nullptr;
  const NodeSchema* schema = nullptr;
  int64_t number = 0;  // the UI id
  int depth = 0;       // longest chain of links from a node without link inputs
  double width = kNodeWidth;
  double height = 0;
  double x = 0;
  double y = 0;
};

std::vector<const InputSpec*> inputs_of(const NodeSchema& schema) {
  std::vector<const InputSpec*> inputs;
  for (const auto& spec : schema.required) inputs.push_back(&spec);
  for (const auto& spec : schema.optional) inputs.push_back(&spec);
  return inputs;
}

bool option_flag(const InputSpec& spec, const char* name) {
  return spec.options.is_object() && spec.options.value(name, false);
}

bool is_multiline(const InputSpec& spec) { return option_flag(spec, "multiline"); }

json widget_value(const Node& node, const InputSpec& spec) {
  if (const NodeInput* input = node.input(spec.name)) {
    if (input->kind != InputKind::kConstant) {
      invalid(node.id, "input '" + spec.name + "' takes a value, not a link");
    }
    return input->value;
  }
  if (spec.options.is_object() && spec.options.contains("default")) return spec.options["default"];
  if (spec.is_combo() && !spec.choices.empty()) return spec.choices.front();
  invalid(node.id, "input '" + spec.name + "' is missing");
}

// The widget values in the order the frontend creates the widgets, with the extra widgets it adds
// after seed inputs (control after generate) and upload combos (the upload button).
json widgets_values(const Node& node, const NodeSchema& schema) {
  json values = json::array();
  for (const InputSpec* spec : inputs_of(schema)) {
    if (!spec->is_widget()) continue;
    values.push_back(widget_value(node, *spec));
    if (option_flag(*spec, "control_after_generate")) values.push_back("randomize");
    if (option_flag(*spec, "image_upload")) values.push_back("image");
  }
  return values;
}

void size_node(PlacedNode& placed) {
  int link_inputs = 0;
  int widgets = 0;
  bool multiline = false;
  for (const InputSpec* spec : inputs_of(*placed.schema)) {
    if (!spec->is_widget()) {
      ++link_inputs;
      continue;
    }
    widgets += 1 + option_flag(*spec, "control_after_generate") + option_flag(*spec, "image_upload");
    multiline = multiline || is_multiline(*spec);
  }
  const int slots = std::max({1, link_inputs, static_cast<int>(placed.schema->output.size())});
  placed.width = multiline ? kTextNodeWidth : kNodeWidth;
  placed.height = slots * kSlotHeight + 6 + widgets * kWidgetHeight + (multiline ? kMultilineHeight : 0);
}

// Every prompt node with its schema, UI id and size; ids must be positive integers.
std::map<std::string, PlacedNode, std::less<>> place_nodes(const Workflow& workflow,
                                                           const NodeSchemaRegistry& schemas) {
  std::map<std::string, PlacedNode, std::less<>> placed;
  for (const auto& [id, node] : workflow.nodes) {
    const auto number = parse_integer(id);
    if (!number || *number < 1) invalid(id, "the frontend's format needs positive integer ids");
    const NodeSchema* schema = schemas.find(node.class_type);
    if (schema == nullptr) invalid(id, "unknown node class '" + node.class_type + "'");
    PlacedNode entry{&node, schema, *number};
    size_node(entry);
    placed.emplace(id, entry);
  }
  return placed;
}

// The link feeding `spec` of `node`, checked against the prompt; nullopt when the input is
// optional and left out.
std::optional<Link> link_input(const Node& node, const InputSpec& spec, bool required,
                               const std::map<std::string, PlacedNode, std::less<>>& placed) {
  const NodeInput* input = node.input(spec.name);
  if (input == nullptr) {
    if (required) invalid(node.id, "input '" + spec.name + "' is missing");
    return std::nullopt;
  }
  if (input->kind != InputKind::kLink) {
    invalid(node.id, "input '" + spec.name + "' must be a link to another node");
  }
  const auto origin = placed.find(input->link.node_id);
  if (origin == placed.end()) {
    invalid(node.id, "input '" + spec.name + "' links to missing node " + input->link.node_id);
  }
  if (input->link.slot >= static_cast<int64_t>(origin->second.schema->output.size())) {
    invalid(node.id, "input '" + spec.name + "' links to a missing output slot");
  }
  return input->link;
}

bool is_required(const NodeSchema& schema, const InputSpec* spec) {
  return spec >= schema.required.data() && spec < schema.required.data() + schema.required.size();
}

int depth_of(const std::string& id, std::map<std::string, PlacedNode, std::less<>>& placed,
             std::set<std::string>& visiting) {
  PlacedNode& entry = placed.at(id);
  if (entry.depth > 0) return entry.depth;
  if (!visiting.insert(id).second) invalid(id, "the links form a cycle");
  int depth = 0;
  for (const InputSpec* spec : inputs_of(*entry.schema)) {
    if (spec->is_widget()) continue;
    if (auto link = link_input(*entry.node, *spec, is_required(*entry.schema, spec), placed)) {
      depth = std::max(depth, depth_of(link->node_id, placed, visiting) + 1);
    }
  }
  visiting.erase(id);
  entry.depth = depth;
  return depth;
}

// The nodes in drawing order (columns by depth, then id), with their positions set.
std::vector<PlacedNode*> lay_out(std::map<std::string, PlacedNode, std::less<>>& placed) {
  std::vector<PlacedNode*> order;
  for (auto& [id, entry] : placed) {
    std::set<std::string> visiting;
    depth_of(id, placed, visiting);
    order.push_back(&entry);
  }
  std::sort(order.begin(), order.end(), [](const PlacedNode* a, const PlacedNode* b) {
    return std::pair(a->depth, a->number) < std::pair(b->depth, b->number);
  });
  double column_x = kMargin;
  double column_width = 0;
  double next_y = kMargin;
  int column = 0;
  for (PlacedNode* entry : order) {
    if (entry->depth != column) {
      column_x += column_width + kColumnGap;
      column_width = 0;
      next_y = kMargin;
      column = entry->depth;
    }
    entry->x = column_x;
    entry->y = next_y;
    next_y += entry->height + kRowGap;
    column_width = std::max(column_width, entry->width);
  }
  return order;
}

}  // namespace

json ui_workflow_from_prompt(const json& prompt, const NodeSchemaRegistry& schemas) {
  const Workflow workflow = parse_workflow(prompt);
  auto placed = place_nodes(workflow, schemas);
  const std::vector<PlacedNode*> order = lay_out(placed);

  json links = json::array();
  std::map<std::pair<int64_t, int64_t>, json> output_links;  // (node, slot) -> link ids
  std::map<int64_t, json> node_inputs;
  for (const PlacedNode* entry : order) {
    json inputs = json::array();
    for (const InputSpec* spec : inputs_of(*entry->schema)) {
      if (spec->is_widget()) continue;
      json slot = {{"name", spec->name}, {"type", spec->type}, {"link", nullptr}};
      if (auto link = link_input(*entry->node, *spec, is_required(*entry->schema, spec), placed)) {
        const PlacedNode& origin = placed.at(link->node_id);
        const int64_t link_id = static_cast<int64_t>(links.size()) + 1;
        links.push_back({link_id, origin.number, link->slot, entry->number,
                         static_cast<int64_t>(inputs.size()), origin.schema->output[link->slot]});
        output_links[{origin.number, link->slot}].push_back(link_id);
        slot["link"] = link_id;
      }
      inputs.push_back(std::move(slot));
    }
    node_inputs[entry->number] = std::move(inputs);
  }

  json nodes = json::array();
  int64_t last_node_id = 0;
  for (size_t index = 0; index < order.size(); ++index) {
    const PlacedNode& entry = *order[index];
    json outputs = json::array();
    for (size_t slot = 0; slot < entry.schema->output.size(); ++slot) {
      const auto found = output_links.find({entry.number, static_cast<int64_t>(slot)});
      outputs.push_back({{"name", entry.schema->output_name.at(slot)},
                         {"type", entry.schema->output[slot]},
                         {"links", found == output_links.end() ? json::array() : found->second},
                         {"slot_index", slot}});
    }
    json node = {{"id", entry.number},
                 {"type", entry.schema->name},
                 {"pos", {entry.x, entry.y}},
                 {"size", {entry.width, entry.height}},
                 {"flags", json::object()},
                 {"order", index},
                 {"mode", 0},
                 {"inputs", node_inputs.at(entry.number)},
                 {"outputs", std::move(outputs)},
                 {"properties", {{"Node name for S&R", entry.schema->name}}},
                 {"widgets_values", widgets_values(*entry.node, *entry.schema)}};
    if (entry.node->title) node["title"] = *entry.node->title;
    nodes.push_back(std::move(node));
    last_node_id = std::max(last_node_id, entry.number);
  }
  return {{"last_node_id", last_node_id},
          {"last_link_id", links.size()},
          {"nodes", std::move(nodes)},
          {"links", std::move(links)},
          {"groups", json::array()},
          {"config", json::object()},
          {"extra", json::object()},
          {"version", 0.4}};
}

}  // namespace df::graph
