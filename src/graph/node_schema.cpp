// Node schemas: the inputs and outputs of a node class, as GET /object_info shows them.
#include "graph/node_schema.h"

#include "core/error.h"

namespace df::graph {
namespace {

const std::vector<std::string>& choices_of(const InputSpec& spec, const SchemaContext& context) {
  static const std::vector<std::string> kNone;
  switch (spec.choices_from) {
    case ComboSource::kCheckpoints:
      return context.checkpoints;
    case ComboSource::kInputImages:
      return context.input_images;
    case ComboSource::kSamplers:
      return context.samplers;
    case ComboSource::kSchedulers:
      return context.schedulers;
    case ComboSource::kModelFolder: {
      auto it = context.model_files.find(spec.model_folder);
      return it == context.model_files.end() ? kNone : it->second;
    }
    case ComboSource::kFixed:
      break;
  }
  throw Error(ErrorCode::kInternal, "a fixed combo has no context list");
}

void add_input_group(nlohmann::json& input, nlohmann::json& input_order, const char* group,
                     const std::vector<InputSpec>& specs) {
  nlohmann::json entries = nlohmann::json::object();
  nlohmann::json order = nlohmann::json::array();
  for (const auto& spec : specs) {
    entries[spec.name] = spec.to_object_info();
    order.push_back(spec.name);
  }
  input[group] = std::move(entries);
  input_order[group] = std::move(order);
}

}  // namespace

bool InputSpec::is_widget() const {
  return type == "INT" || type == "FLOAT" || type == "STRING" || type == "BOOLEAN" || is_combo();
}

nlohmann::json InputSpec::to_object_info() const {
  nlohmann::json spec = nlohmann::json::array();
  spec.push_back(is_combo() ? nlohmann::json(choices) : nlohmann::json(type));
  if (!options.is_null()) spec.push_back(options);
  return spec;
}

nlohmann::json InputSpec::input_config() const {
  return nlohmann::json::array({is_combo() ? nlohmann::json(choices) : nlohmann::json(type),
                                options.is_null() ? nlohmann::json::object() : options});
}

const InputSpec* NodeSchema::find_input(std::string_view input_name) const {
  for (const auto* group : {&required, &optional}) {
    for (const auto& spec : *group) {
      if (spec.name == input_name) return &spec;
    }
  }
  return nullptr;
}

NodeSchema NodeSchema::with_context(const SchemaContext& context) const {
  NodeSchema resolved = *this;
  for (auto* group : {&resolved.required, &resolved.optional}) {
    for (auto& spec : *group) {
      if (spec.choices_from != ComboSource::kFixed) {
        spec.choices = choices_of(spec, context);
      }
    }
  }
  return resolved;
}

nlohmann::json NodeSchema::to_object_info() const {
  nlohmann::json input = nlohmann::json::object();
  nlohmann::json input_order = nlohmann::json::object();
  add_input_group(input, input_order, "required", required);
  if (!optional.empty()) add_input_group(input, input_order, "optional", optional);
  if (!hidden.empty()) {
    nlohmann::json entries = nlohmann::json::object();
    nlohmann::json order = nlohmann::json::array();
    for (const auto& h : hidden) {
      entries[h.name] = h.kind;
      order.push_back(h.name);
    }
    input["hidden"] = std::move(entries);
    input_order["hidden"] = std::move(order);
  }

  nlohmann::json info = {
      {"input", std::move(input)},
      {"input_order", std::move(input_order)},
      {"is_input_list", false},
      {"output", output},
      {"output_is_list", output_is_list},
      {"output_name", output_name},
      {"name", name},
      {"display_name", display_name},
      {"description", description},
      {"python_module", python_module},
      {"category", category},
      {"output_node", output_node},
      {"search_aliases", nlohmann::json::array()},
  };
  if (!output_tooltips.empty()) info["output_tooltips"] = output_tooltips;
  if (deprecated) info["deprecated"] = true;
  if (experimental) info["experimental"] = true;
  return info;
}

void NodeSchemaRegistry::add(NodeSchema schema) {
  if (find(schema.name) != nullptr) {
    throw Error(ErrorCode::kInvalidArgument,
                "node class '" + schema.name + "' is registered twice");
  }
  schemas_.push_back(std::move(schema));
}

const NodeSchema* NodeSchemaRegistry::find(std::string_view class_type) const {
  for (const auto& schema : schemas_) {
    if (schema.name == class_type) return &schema;
  }
  return nullptr;
}

NodeSchemaRegistry NodeSchemaRegistry::with_context(const SchemaContext& context) const {
  NodeSchemaRegistry resolved;
  for (const auto& schema : schemas_) resolved.schemas_.push_back(schema.with_context(context));
  return resolved;
}

nlohmann::json object_info(const NodeSchemaRegistry& registry, const SchemaContext& context) {
  nlohmann::json info = nlohmann::json::object();
  for (const auto& schema : registry.schemas()) {
    info[schema.name] = schema.with_context(context).to_object_info();
  }
  return info;
}

}  // namespace df::graph
