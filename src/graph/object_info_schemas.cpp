// Node schemas read back from a ComfyUI GET /object_info document.
#include "graph/object_info_schemas.h"

#include <algorithm>

#include "core/error.h"

namespace df::graph {
namespace {

using nlohmann::json;

[[noreturn]] void malformed(const std::string& class_type, const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument,
              "object_info: node '" + class_type + "': " + what,
              {{"class_type", class_type}});
}

std::string string_field(const json& info, const std::string& class_type, const char* field,
                         const std::string& fallback) {
  if (!info.contains(field) || info[field].is_null()) return fallback;
  if (!info[field].is_string()) malformed(class_type, std::string(field) + " is not a string");
  return info[field].get<std::string>();
}

bool bool_field(const json& info, const std::string& class_type, const char* field) {
  if (!info.contains(field) || info[field].is_null()) return false;
  if (!info[field].is_boolean()) malformed(class_type, std::string(field) + " is not a boolean");
  return info[field].get<bool>();
}

// A combo choice as the validator compares it: strings as they are, other values as JSON text.
std::string choice_text(const json& choice) {
  return choice.is_string() ? choice.get<std::string>() : choice.dump();
}

std::vector<std::string> choice_list(const json& list, const std::string& where,
                                     const std::string& class_type) {
  if (!list.is_array()) malformed(class_type, where + " is not a list of choices");
  std::vector<std::string> choices;
  for (const auto& choice : list) choices.push_back(choice_text(choice));
  return choices;
}

// ComfyUI's image upload widget on the input folder: its choices are this service's uploads.
bool is_input_image_upload(const json& options) {
  if (!options.is_object() || !options.value("image_upload", false)) return false;
  const auto folder = options.find("image_folder");
  return folder == options.end() || (folder->is_string() && folder->get<std::string>() == "input");
}

InputSpec input_spec(const std::string& name, const json& entry, const std::string& class_type) {
  const std::string where = "input '" + name + "'";
  if (!entry.is_array() || entry.empty()) malformed(class_type, where + " is not a [type, options] list");
  InputSpec spec;
  spec.name = name;
  if (entry.size() > 1 && !entry[1].is_null()) {
    if (!entry[1].is_object()) malformed(class_type, where + ": its options are not an object");
    spec.options = entry[1];
  }
  const json& type = entry[0];
  if (type.is_array()) {
    spec.type = "COMBO";
    spec.choices = choice_list(type, where, class_type);
  } else if (type.is_string()) {
    spec.type = type.get<std::string>();
    if (spec.is_combo()) {
      const json options = spec.options.is_object() ? spec.options.value("options", json::array())
                                                    : json::array();
      spec.choices = choice_list(options, where + "'s options.options", class_type);
    }
  } else {
    malformed(class_type, where + ": its type is neither a name nor a list of choices");
  }
  if (spec.is_combo() && is_input_image_upload(spec.options)) {
    spec.choices.clear();
    spec.choices_from = ComboSource::kInputImages;
  }
  return spec;
}

// The names of an input group in the document's input_order (then any it leaves out).
std::vector<std::string> group_order(const json& entries, const json& info, const char* group,
                                     const std::string& class_type) {
  std::vector<std::string> names;
  const json order = info.contains("input_order") && info["input_order"].is_object()
                         ? info["input_order"].value(group, json::array())
                         : json::array();
  if (!order.is_array()) malformed(class_type, std::string("input_order.") + group + " is not a list");
  for (const auto& name : order) {
    if (!name.is_string() || !entries.contains(name.get<std::string>())) {
      malformed(class_type, std::string("input_order.") + group + " names an input it lacks");
    }
    names.push_back(name.get<std::string>());
  }
  for (const auto& [name, entry] : entries.items()) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

const json* input_group(const json& input, const char* group, const std::string& class_type) {
  const auto found = input.find(group);
  if (found == input.end() || found->is_null()) return nullptr;
  if (!found->is_object()) malformed(class_type, std::string("input.") + group + " is not an object");
  return &*found;
}

void read_inputs(NodeSchema& schema, const json& info) {
  const std::string& class_type = schema.name;
  const json input = info.value("input", json::object());
  if (!input.is_object()) malformed(class_type, "input is not an object");
  for (const auto& [group, specs] :
       {std::pair{"required", &schema.required}, std::pair{"optional", &schema.optional}}) {
    const json* entries = input_group(input, group, class_type);
    if (entries == nullptr) continue;
    for (const auto& name : group_order(*entries, info, group, class_type)) {
      specs->push_back(input_spec(name, (*entries)[name], class_type));
    }
  }
  if (const json* hidden = input_group(input, "hidden", class_type)) {
    for (const auto& name : group_order(*hidden, info, "hidden", class_type)) {
      const json& kind = (*hidden)[name];
      schema.hidden.push_back({name, kind.is_string() ? kind.get<std::string>() : kind.dump()});
    }
  }
}

void read_outputs(NodeSchema& schema, const json& info) {
  const std::string& class_type = schema.name;
  const json output = info.value("output", json::array());
  if (!output.is_array()) malformed(class_type, "output is not a list");
  for (const auto& type : output) {
    if (type.is_string()) {
      schema.output.push_back(type.get<std::string>());
    } else if (type.is_array()) {
      schema.output.push_back("COMBO");  // an output offering a list of choices
    } else {
      malformed(class_type, "an output type is neither a name nor a list of choices");
    }
  }
  const size_t count = schema.output.size();
  auto list_of = [&](const char* field, auto element_ok) {
    const json list = info.value(field, json::array());
    if (!list.is_array() || !std::all_of(list.begin(), list.end(), element_ok)) {
      malformed(class_type, std::string(field) + " is not a list of the outputs");
    }
    return list;
  };
  const json names = list_of("output_name", [](const json& e) { return e.is_string(); });
  schema.output_name = names.empty() ? schema.output : names.get<std::vector<std::string>>();
  const json is_list = list_of("output_is_list", [](const json& e) { return e.is_boolean(); });
  schema.output_is_list =
      is_list.empty() ? std::vector<bool>(count, false) : is_list.get<std::vector<bool>>();
  if (schema.output_name.size() != count || schema.output_is_list.size() != count) {
    malformed(class_type, "output_name and output_is_list do not match output");
  }
  // ComfyUI's V3 nodes write null for an output without a tooltip.
  const json tooltips =
      list_of("output_tooltips", [](const json& e) { return e.is_string() || e.is_null(); });
  schema.output_tooltips.clear();
  for (const auto& tooltip : tooltips) {
    schema.output_tooltips.push_back(tooltip.is_null() ? "" : tooltip.get<std::string>());
  }
}

NodeSchema node_schema(const std::string& class_type, const json& info) {
  if (!info.is_object()) malformed(class_type, "its definition is not an object");
  NodeSchema schema;
  schema.name = class_type;
  schema.display_name = string_field(info, class_type, "display_name", class_type);
  schema.description = string_field(info, class_type, "description", "");
  schema.category = string_field(info, class_type, "category", schema.category);
  schema.python_module = string_field(info, class_type, "python_module", schema.python_module);
  schema.output_node = bool_field(info, class_type, "output_node");
  schema.deprecated = bool_field(info, class_type, "deprecated");
  schema.experimental = bool_field(info, class_type, "experimental");
  read_inputs(schema, info);
  read_outputs(schema, info);
  return schema;
}

}  // namespace

NodeSchemaRegistry schemas_from_object_info(const json& object_info) {
  if (!object_info.is_object()) {
    throw Error(ErrorCode::kInvalidArgument, "object_info is not an object of node definitions");
  }
  NodeSchemaRegistry registry;
  for (const auto& [class_type, info] : object_info.items()) {
    registry.add(node_schema(class_type, info));
  }
  return registry;
}

}  // namespace df::graph
