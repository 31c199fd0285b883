// Node schemas: the inputs and outputs of a node class, as GET /object_info shows them.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::graph {

// The run-time lists that fill the dynamic combo inputs (model files, uploaded images, ...).
struct SchemaContext {
  std::vector<std::string> checkpoints;   // models/checkpoints, relative paths with '/'
  std::vector<std::string> input_images;  // input directory, sorted, images only
  std::vector<std::string> samplers;      // usually supported_samplers()
  std::vector<std::string> schedulers;    // usually supported_schedulers()
  // The files of ComfyUI's other model folders by folder name ("vae", "loras", "embeddings", ...),
  // relative paths with '/'; a folder not listed offers no choices.
  std::map<std::string, std::vector<std::string>, std::less<>> model_files = {};
};

// Where a combo input takes its choices from.
enum class ComboSource { kFixed, kCheckpoints, kInputImages, kSamplers, kSchedulers, kModelFolder };

// One input of a node: ComfyUI's [TYPE, options] pair.
struct InputSpec {
  std::string name;
  // "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO" (a list of choices), or a link-only type such
  // as "MODEL" or "IMAGE".
  std::string type;
  // The options object ({"default", "min", "max", "tooltip", ...}); null when the input
  // declares none (object_info then shows a one-element array such as ["LATENT"]).
  nlohmann::json options;
  std::vector<std::string> choices;  // COMBO only
  ComboSource choices_from = ComboSource::kFixed;
  std::string model_folder = {};  // kModelFolder: the SchemaContext::model_files key

  bool is_combo() const { return type == "COMBO"; }
  // True for the value types the frontend shows as widgets (INT, FLOAT, STRING, BOOLEAN, COMBO);
  // false for link-only types.
  bool is_widget() const;
  // The InputSpec array of /object_info: [type, options] or [[choices...], options].
  nlohmann::json to_object_info() const;
  // The input_config of validation errors: always [type, options-or-{}].
  nlohmann::json input_config() const;
};

// A hidden input, filled by the executor rather than the prompt ("PROMPT", "EXTRA_PNGINFO", ...).
struct HiddenInput {
  std::string name;
  std::string kind;
};

struct NodeSchema {
  std::string name;  // the class_type
  std::string display_name;
  std::string description;
  std::string category = "sd";
  std::string python_module = "nodes";
  std::vector<InputSpec> required;
  std::vector<InputSpec> optional;
  std::vector<HiddenInput> hidden;
  std::vector<std::string> output;  // output types, e.g. {"MODEL", "CLIP", "VAE"}
  std::vector<std::string> output_name;
  std::vector<bool> output_is_list;
  std::vector<std::string> output_tooltips;  // empty when the node documents none
  bool output_node = false;
  bool deprecated = false;    // ComfyUI's DEPRECATED: listed, but hidden from the node search
  bool experimental = false;  // ComfyUI's EXPERIMENTAL

  // The required or optional input called `input_name`, or nullptr.
  const InputSpec* find_input(std::string_view input_name) const;
  // A copy whose dynamic combo inputs hold the lists of `context`.
  NodeSchema with_context(const SchemaContext& context) const;
  // The node definition exactly as ComfyUI's GET /object_info shows it.
  nlohmann::json to_object_info() const;
};

// The node classes known to the server, in registration order.
class NodeSchemaRegistry {
 public:
  // Adds a schema; throws df::Error(kInvalidArgument) when its class is already registered.
  void add(NodeSchema schema);
  const NodeSchema* find(std::string_view class_type) const;
  const std::vector<NodeSchema>& schemas() const { return schemas_; }
  // A copy whose dynamic combo inputs hold the lists of `context`.
  NodeSchemaRegistry with_context(const SchemaContext& context) const;

 private:
  std::vector<NodeSchema> schemas_;
};

// GET /object_info: {class_type: node definition} for every registered node.
nlohmann::json object_info(const NodeSchemaRegistry& registry, const SchemaContext& context);

}  // namespace df::graph
