// Small builders for node schemas, shared by every node pack's schemas.cpp.
#include "nodes/packs/schema_builders.h"

namespace df::nodes::schema {

using nlohmann::json;

graph::InputSpec typed(std::string name, std::string type, json options) {
  return graph::InputSpec{std::move(name), std::move(type), std::move(options), {},
                          graph::ComboSource::kFixed};
}

graph::InputSpec combo(std::string name, std::vector<std::string> choices, json options) {
  return graph::InputSpec{std::move(name), "COMBO", std::move(options), std::move(choices),
                          graph::ComboSource::kFixed};
}

graph::InputSpec context_combo(std::string name, graph::ComboSource source, json options) {
  return graph::InputSpec{std::move(name), "COMBO", std::move(options), {}, source};
}

graph::InputSpec model_file_combo(std::string name, std::string folder, json options) {
  graph::InputSpec spec = context_combo(std::move(name), graph::ComboSource::kModelFolder,
                                        std::move(options));
  spec.model_folder = std::move(folder);
  return spec;
}

json tooltip(const char* text) { return {{"tooltip", text}}; }

graph::InputSpec int_input(std::string name, int64_t default_value, int64_t min, int64_t max,
                           int64_t step) {
  json options = {{"default", default_value}, {"min", min}, {"max", max}};
  if (step != 1) options["step"] = step;
  return typed(std::move(name), "INT", std::move(options));
}

graph::InputSpec int_stepped(std::string name, int64_t default_value, int64_t min, int64_t max,
                             int64_t step) {
  return typed(std::move(name), "INT",
               {{"default", default_value}, {"min", min}, {"max", max}, {"step", step}});
}

graph::InputSpec float_input(std::string name, double default_value, double min, double max,
                             double step) {
  return typed(std::move(name), "FLOAT",
               {{"default", default_value}, {"min", min}, {"max", max}, {"step", step}});
}

void set_outputs(graph::NodeSchema& schema, std::vector<std::string> types) {
  schema.output = std::move(types);
  schema.output_name = schema.output;
  schema.output_is_list.assign(schema.output.size(), false);
}

void set_named_outputs(graph::NodeSchema& schema, std::vector<std::string> types,
                       std::vector<std::string> names) {
  schema.output = std::move(types);
  schema.output_name = std::move(names);
  schema.output_is_list.assign(schema.output.size(), false);
}

std::vector<graph::HiddenInput> image_metadata_inputs() {
  return {{"prompt", "PROMPT"}, {"extra_pnginfo", "EXTRA_PNGINFO"}};
}

}  // namespace df::nodes::schema
