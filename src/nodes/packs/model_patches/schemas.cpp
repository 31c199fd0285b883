// Model patch node schemas: model sampling overrides, CFG rescaling, and model/CLIP merges.
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

constexpr const char* kMerging = "comfy_extras.nodes_model_merging";
constexpr const char* kModelSpecific = "comfy_extras.nodes_model_merging_model_specific";

NodeSchema patch_node(const char* name, const char* category, const char* module,
                      std::vector<graph::InputSpec> inputs, const char* output) {
  NodeSchema s;
  s.name = name;
  s.display_name = name;
  s.category = category;
  s.python_module = module;
  s.required = std::move(inputs);
  set_outputs(s, {output});
  return s;
}

graph::InputSpec ratio(const std::string& name) { return float_input(name, 1.0, 0.0, 1.0, 0.01); }

NodeSchema model_merge(const char* name, std::vector<graph::InputSpec> extra,
                       const char* category = "advanced/model_merging",
                       const char* module = kMerging) {
  std::vector<graph::InputSpec> inputs = {typed("model1", "MODEL"), typed("model2", "MODEL")};
  inputs.insert(inputs.end(), extra.begin(), extra.end());
  return patch_node(name, category, module, std::move(inputs), "MODEL");
}

NodeSchema clip_merge(const char* name, std::vector<graph::InputSpec> extra) {
  std::vector<graph::InputSpec> inputs = {typed("clip1", "CLIP"), typed("clip2", "CLIP")};
  inputs.insert(inputs.end(), extra.begin(), extra.end());
  return patch_node(name, "advanced/model_merging", kMerging, std::move(inputs), "CLIP");
}

// ModelMergeSD1 / ModelMergeSDXL: one ratio per block of the original UNet layout.
NodeSchema block_merge(const char* name, int input_blocks, int output_blocks, bool label_emb) {
  std::vector<graph::InputSpec> ratios = {ratio("time_embed.")};
  if (label_emb) ratios.push_back(ratio("label_emb."));
  for (int i = 0; i < input_blocks; ++i) ratios.push_back(ratio("input_blocks." + std::to_string(i) + "."));
  for (int i = 0; i < 3; ++i) ratios.push_back(ratio("middle_block." + std::to_string(i) + "."));
  for (int i = 0; i < output_blocks; ++i) ratios.push_back(ratio("output_blocks." + std::to_string(i) + "."));
  ratios.push_back(ratio("out."));
  return model_merge(name, std::move(ratios), "advanced/model_merging/model_specific", kModelSpecific);
}

}  // namespace

void add_model_patches_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(patch_node("ModelSamplingDiscrete", "advanced/model",
                          "comfy_extras.nodes_model_advanced",
                          {typed("model", "MODEL"),
                           combo("sampling", {"eps", "v_prediction", "lcm", "x0"}),
                           typed("zsnr", "BOOLEAN", {{"default", false}})},
                          "MODEL"));
  registry.add(patch_node("RescaleCFG", "advanced/model", "comfy_extras.nodes_model_advanced",
                          {typed("model", "MODEL"), float_input("multiplier", 0.7, 0.0, 1.0, 0.01)},
                          "MODEL"));
  registry.add(model_merge("ModelMergeSimple", {ratio("ratio")}));
  registry.add(model_merge("ModelMergeBlocks", {ratio("input"), ratio("middle"), ratio("out")}));
  registry.add(model_merge("ModelMergeSubtract", {float_input("multiplier", 1.0, -10.0, 10.0, 0.01)}));
  registry.add(model_merge("ModelMergeAdd", {}));
  registry.add(clip_merge("CLIPMergeSimple", {ratio("ratio")}));
  registry.add(clip_merge("CLIPMergeSubtract", {float_input("multiplier", 1.0, -10.0, 10.0, 0.01)}));
  registry.add(clip_merge("CLIPMergeAdd", {}));
  registry.add(block_merge("ModelMergeSD1", 12, 12, false));
  registry.add(block_merge("ModelMergeSD2", 12, 12, false));
  registry.add(block_merge("ModelMergeSDXL", 9, 9, true));
}

}  // namespace df::nodes
