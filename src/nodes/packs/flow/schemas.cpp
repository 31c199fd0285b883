// Flow-matching family node schemas (FLUX.1, SD3, Z-Image): model sampling (ModelSamplingFlux,
// ModelSamplingSD3, ModelSamplingAuraFlow), FluxGuidance, CLIPTextEncodeFlux, CLIPTextEncodeSD3
// and EmptySD3LatentImage.
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

NodeSchema node(const char* name, const char* display_name, const char* category,
                const char* module, std::vector<graph::InputSpec> inputs, const char* output) {
  NodeSchema s;
  s.name = name;
  s.display_name = display_name;
  s.category = category;
  s.python_module = module;
  s.required = std::move(inputs);
  set_outputs(s, {output});
  return s;
}

constexpr const char* kModelAdvanced = "comfy_extras.nodes_model_advanced";

NodeSchema model_sampling_shift(const char* name, double default_shift) {
  return node(name, name, "advanced/model", kModelAdvanced,
              {typed("model", "MODEL"), float_input("shift", default_shift, 0.0, 100.0, 0.01)},
              "MODEL");
}

NodeSchema model_sampling_flux() {
  return node("ModelSamplingFlux", "ModelSamplingFlux", "advanced/model", kModelAdvanced,
              {typed("model", "MODEL"), float_input("max_shift", 1.15, 0.0, 100.0, 0.01),
               float_input("base_shift", 0.5, 0.0, 100.0, 0.01),
               int_stepped("width", 1024, 16, kMaxResolution, 8),
               int_stepped("height", 1024, 16, kMaxResolution, 8)},
              "MODEL");
}

NodeSchema flux_guidance() {
  return node("FluxGuidance", "FluxGuidance", "advanced/conditioning/flux",
              "comfy_extras.nodes_flux",
              {typed("conditioning", "CONDITIONING"),
               float_input("guidance", 3.5, 0.0, 100.0, 0.1)},
              "CONDITIONING");
}

NodeSchema clip_text_encode_flux() {
  const nlohmann::json prompt = {{"multiline", true}, {"dynamicPrompts", true}};
  return node("CLIPTextEncodeFlux", "CLIPTextEncodeFlux", "advanced/conditioning/flux",
              "comfy_extras.nodes_flux",
              {typed("clip", "CLIP"), typed("clip_l", "STRING", prompt),
               typed("t5xxl", "STRING", prompt), float_input("guidance", 3.5, 0.0, 100.0, 0.1)},
              "CONDITIONING");
}

NodeSchema clip_text_encode_sd3() {
  const nlohmann::json prompt = {{"multiline", true}, {"dynamicPrompts", true}};
  return node("CLIPTextEncodeSD3", "CLIPTextEncodeSD3", "advanced/conditioning",
              "comfy_extras.nodes_sd3",
              {typed("clip", "CLIP"), typed("clip_l", "STRING", prompt),
               typed("clip_g", "STRING", prompt), typed("t5xxl", "STRING", prompt),
               combo("empty_padding", {"none", "empty_prompt"})},
              "CONDITIONING");
}

NodeSchema empty_sd3_latent_image() {
  return node("EmptySD3LatentImage", "EmptySD3LatentImage", "latent/sd3", "comfy_extras.nodes_sd3",
              {int_stepped("width", 1024, 16, kMaxResolution, 16),
               int_stepped("height", 1024, 16, kMaxResolution, 16),
               int_input("batch_size", 1, 1, 4096)},
              "LATENT");
}

// CFGNorm (comfy_extras/nodes_cfg.py): an experimental post-CFG patch; its output is named
// patched_model.
NodeSchema cfg_norm() {
  NodeSchema s = node("CFGNorm", "CFGNorm", "advanced/guidance", "comfy_extras.nodes_cfg",
                      {typed("model", "MODEL"), float_input("strength", 1.0, 0.0, 100.0, 0.01)},
                      "MODEL");
  s.output_name = {"patched_model"};
  s.experimental = true;
  return s;
}

}  // namespace

void add_flow_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(model_sampling_flux());
  registry.add(model_sampling_shift("ModelSamplingSD3", 3.0));
  registry.add(model_sampling_shift("ModelSamplingAuraFlow", 1.73));
  registry.add(flux_guidance());
  registry.add(clip_text_encode_flux());
  registry.add(clip_text_encode_sd3());
  registry.add(empty_sd3_latent_image());
  registry.add(cfg_norm());
}

}  // namespace df::nodes
