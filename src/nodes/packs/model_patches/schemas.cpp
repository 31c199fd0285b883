// Model patch node schemas: model sampling overrides, CFG rescaling, UNet patches (FreeU, PAG,
// Deep Shrink), and model/CLIP merges.
#include "nodes/packs/model_patches/merge_blocks.h"
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
NodeSchema block_merge(const char* name, const MergeBlocks& blocks) {
  std::vector<graph::InputSpec> ratios;
  for (const auto& block : merge_block_names(blocks)) ratios.push_back(ratio(block));
  return model_merge(name, std::move(ratios), "advanced/model_merging/model_specific", kModelSpecific);
}

// FreeU / FreeU_V2: four advanced factors with their version's defaults.
NodeSchema free_u(const char* name, double b1, double b2) {
  const auto factor = [](const char* input, double value) {
    return typed(input, "FLOAT",
                 {{"default", value}, {"min", 0.0}, {"max", 10.0}, {"step", 0.01}, {"advanced", true}});
  };
  return patch_node(name, "model_patches/unet", "comfy_extras.nodes_freelunch",
                    {typed("model", "MODEL"), factor("b1", b1), factor("b2", b2), factor("s1", 0.9),
                     factor("s2", 0.2)},
                    "MODEL");
}

NodeSchema patch_model_add_downscale() {
  const std::vector<std::string> methods = {"bicubic", "nearest-exact", "bilinear", "area", "bislerp"};
  NodeSchema s = patch_node(
      "PatchModelAddDownscale", "model_patches/unet", "comfy_extras.nodes_model_downscale",
      {typed("model", "MODEL"), int_stepped("block_number", 3, 1, 32),
       float_input("downscale_factor", 2.0, 0.1, 9.0, 0.001),
       float_input("start_percent", 0.0, 0.0, 1.0, 0.001),
       float_input("end_percent", 0.35, 0.0, 1.0, 0.001),
       typed("downscale_after_skip", "BOOLEAN", {{"default", true}}),
       combo("downscale_method", methods), combo("upscale_method", methods)},
      "MODEL");
  s.display_name = "PatchModelAddDownscale (Kohya Deep Shrink)";
  return s;
}

NodeSchema model_sampling_continuous_edm() {
  const auto sigma = [](const char* input, double value) {
    return typed(input, "FLOAT",
                 {{"default", value}, {"min", 0.0}, {"max", 1000.0}, {"step", 0.001}, {"round", false}});
  };
  return patch_node("ModelSamplingContinuousEDM", "advanced/model",
                    "comfy_extras.nodes_model_advanced",
                    {typed("model", "MODEL"),
                     combo("sampling", {"v_prediction", "edm", "edm_playground_v2.5", "eps", "cosmos_rflow"}),
                     sigma("sigma_max", 120.0), sigma("sigma_min", 0.002)},
                    "MODEL");
}

}  // namespace

void add_model_patches_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(patch_node("ModelSamplingDiscrete", "advanced/model",
                          "comfy_extras.nodes_model_advanced",
                          {typed("model", "MODEL"),
                           combo("sampling", {"eps", "v_prediction", "lcm", "x0"}),
                           typed("zsnr", "BOOLEAN", {{"default", false}})},
                          "MODEL"));
  NodeSchema differential = patch_node("DifferentialDiffusion", "_for_testing",
                                       "comfy_extras.nodes_differential_diffusion",
                                       {typed("model", "MODEL")}, "MODEL");
  differential.display_name = "Differential Diffusion";
  registry.add(differential);
  registry.add(patch_node("RescaleCFG", "advanced/model", "comfy_extras.nodes_model_advanced",
                          {typed("model", "MODEL"), float_input("multiplier", 0.7, 0.0, 1.0, 0.01)},
                          "MODEL"));
  registry.add(model_sampling_continuous_edm());
  registry.add(free_u("FreeU", 1.1, 1.2));
  registry.add(free_u("FreeU_V2", 1.3, 1.4));
  registry.add(patch_node("PerturbedAttentionGuidance", "model_patches/unet", "comfy_extras.nodes_pag",
                          {typed("model", "MODEL"),
                           typed("scale", "FLOAT",
                                 {{"default", 3.0}, {"min", 0.0}, {"max", 100.0}, {"step", 0.01}, {"round", 0.01}})},
                          "MODEL"));
  registry.add(patch_model_add_downscale());
  registry.add(model_merge("ModelMergeSimple", {ratio("ratio")}));
  registry.add(model_merge("ModelMergeBlocks", {ratio("input"), ratio("middle"), ratio("out")}));
  registry.add(model_merge("ModelMergeSubtract", {float_input("multiplier", 1.0, -10.0, 10.0, 0.01)}));
  registry.add(model_merge("ModelMergeAdd", {}));
  registry.add(clip_merge("CLIPMergeSimple", {ratio("ratio")}));
  registry.add(clip_merge("CLIPMergeSubtract", {float_input("multiplier", 1.0, -10.0, 10.0, 0.01)}));
  registry.add(clip_merge("CLIPMergeAdd", {}));
  registry.add(block_merge("ModelMergeSD1", kSd1MergeBlocks));
  registry.add(block_merge("ModelMergeSD2", kSd1MergeBlocks));
  registry.add(block_merge("ModelMergeSDXL", kSdxlMergeBlocks));
}

}  // namespace df::nodes
