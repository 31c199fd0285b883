// Conditioning node schemas (prompt encoding, combining and shaping conditionings).
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

NodeSchema clip_text_encode() {
  NodeSchema s;
  s.name = "CLIPTextEncode";
  s.display_name = "CLIP Text Encode (Prompt)";
  s.description =
      "Encodes a text prompt using a CLIP model into an embedding that can be used to guide the "
      "diffusion model towards generating specific images.";
  s.category = "conditioning";
  s.required = {
      typed("text", "STRING",
            {{"multiline", true},
             {"dynamicPrompts", true},
             {"tooltip", "The text to be encoded."}}),
      typed("clip", "CLIP", tooltip("The CLIP model used for encoding the text."))};
  set_outputs(s, {"CONDITIONING"});
  s.output_tooltips = {
      "A conditioning containing the embedded text used to guide the diffusion model."};
  return s;
}

// A node of one CONDITIONING output in `category` taking `inputs`.
NodeSchema conditioning_node(const char* name, const char* display_name, const char* category,
                             std::vector<graph::InputSpec> inputs) {
  NodeSchema s;
  s.name = name;
  s.display_name = display_name;
  s.category = category;
  s.required = std::move(inputs);
  set_outputs(s, {"CONDITIONING"});
  return s;
}

graph::InputSpec strength_input() { return float_input("strength", 1.0, 0.0, 10.0, 0.01); }

graph::InputSpec pixel_size(const char* name, int64_t default_value) {
  return int_input(name, default_value, 0, kMaxResolution);
}

graph::InputSpec prompt_text(const char* name) {
  return typed(name, "STRING", {{"multiline", true}, {"dynamicPrompts", true}});
}

NodeSchema clip_set_last_layer() {
  NodeSchema s;
  s.name = "CLIPSetLastLayer";
  s.display_name = "CLIP Set Last Layer";
  s.category = "conditioning";
  s.required = {typed("clip", "CLIP"), int_input("stop_at_clip_layer", -1, -24, -1)};
  s.required[1].options["step"] = 1;
  set_outputs(s, {"CLIP"});
  return s;
}

std::vector<NodeSchema> conditioning_transforms() {
  const graph::InputSpec conditioning = typed("conditioning", "CONDITIONING");
  std::vector<NodeSchema> nodes = {
      conditioning_node("ConditioningCombine", "Conditioning (Combine)", "conditioning",
                        {typed("conditioning_1", "CONDITIONING"),
                         typed("conditioning_2", "CONDITIONING")}),
      conditioning_node("ConditioningAverage", "Conditioning (Average)", "conditioning",
                        {typed("conditioning_to", "CONDITIONING"),
                         typed("conditioning_from", "CONDITIONING"),
                         float_input("conditioning_to_strength", 1.0, 0.0, 1.0, 0.01)}),
      conditioning_node("ConditioningConcat", "Conditioning (Concat)", "conditioning",
                        {typed("conditioning_to", "CONDITIONING"),
                         typed("conditioning_from", "CONDITIONING")}),
      conditioning_node("ConditioningSetArea", "Conditioning (Set Area)", "conditioning",
                        {conditioning, int_input("width", 64, 64, kMaxResolution, 8),
                         int_input("height", 64, 64, kMaxResolution, 8),
                         int_input("x", 0, 0, kMaxResolution, 8),
                         int_input("y", 0, 0, kMaxResolution, 8), strength_input()}),
      conditioning_node("ConditioningSetAreaPercentage",
                        "Conditioning (Set Area with Percentage)", "conditioning",
                        {conditioning, float_input("width", 1.0, 0, 1.0, 0.01),
                         float_input("height", 1.0, 0, 1.0, 0.01),
                         float_input("x", 0, 0, 1.0, 0.01), float_input("y", 0, 0, 1.0, 0.01),
                         strength_input()}),
      conditioning_node("ConditioningSetAreaStrength", "ConditioningSetAreaStrength",
                        "conditioning", {conditioning, strength_input()}),
      conditioning_node("ConditioningSetMask", "Conditioning (Set Mask)", "conditioning",
                        {conditioning, typed("mask", "MASK"), strength_input(),
                         combo("set_cond_area", {"default", "mask bounds"})}),
      conditioning_node("ConditioningZeroOut", "ConditioningZeroOut", "advanced/conditioning",
                        {conditioning}),
      conditioning_node("ConditioningSetTimestepRange", "ConditioningSetTimestepRange",
                        "advanced/conditioning",
                        {conditioning, float_input("start", 0.0, 0.0, 1.0, 0.001),
                         float_input("end", 1.0, 0.0, 1.0, 0.001)}),
      conditioning_node("CLIPTextEncodeSDXLRefiner", "CLIPTextEncodeSDXLRefiner",
                        "advanced/conditioning",
                        {float_input("ascore", 6.0, 0.0, 1000.0, 0.01), pixel_size("width", 1024),
                         pixel_size("height", 1024), prompt_text("text"), typed("clip", "CLIP")}),
      conditioning_node("CLIPTextEncodeSDXL", "CLIPTextEncodeSDXL", "advanced/conditioning",
                        {typed("clip", "CLIP"), pixel_size("width", 1024),
                         pixel_size("height", 1024), pixel_size("crop_w", 0),
                         pixel_size("crop_h", 0), pixel_size("target_width", 1024),
                         pixel_size("target_height", 1024), prompt_text("text_g"),
                         prompt_text("text_l")}),
  };
  for (auto& node : nodes) {
    if (node.name.rfind("CLIPTextEncodeSDXL", 0) == 0) node.python_module = "comfy_extras.nodes_clip_sdxl";
  }
  return nodes;
}

}  // namespace

void add_conditioning_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(clip_text_encode());
  registry.add(clip_set_last_layer());
  for (auto& node : conditioning_transforms()) registry.add(std::move(node));
}

}  // namespace df::nodes
