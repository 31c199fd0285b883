// Image prompt node schemas (CLIP vision loading and encoding, unCLIP), as ComfyUI shows them.
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

NodeSchema clip_vision_loader() {
  NodeSchema s;
  s.name = "CLIPVisionLoader";
  s.display_name = "Load CLIP Vision";
  s.category = "loaders";
  s.required = {model_file_combo("clip_name", "clip_vision")};
  set_outputs(s, {"CLIP_VISION"});
  return s;
}

NodeSchema clip_vision_encode() {
  NodeSchema s;
  s.name = "CLIPVisionEncode";
  s.display_name = "CLIP Vision Encode";
  s.category = "conditioning";
  s.required = {typed("clip_vision", "CLIP_VISION"), typed("image", "IMAGE"),
                combo("crop", {"center", "none"})};
  set_outputs(s, {"CLIP_VISION_OUTPUT"});
  return s;
}

NodeSchema unclip_conditioning() {
  NodeSchema s;
  s.name = "unCLIPConditioning";
  s.display_name = "unCLIPConditioning";
  s.category = "conditioning";
  s.required = {typed("conditioning", "CONDITIONING"),
                typed("clip_vision_output", "CLIP_VISION_OUTPUT"),
                float_input("strength", 1.0, -10.0, 10.0, 0.01),
                float_input("noise_augmentation", 0.0, 0.0, 1.0, 0.01)};
  set_outputs(s, {"CONDITIONING"});
  return s;
}

NodeSchema unclip_checkpoint_loader() {
  NodeSchema s;
  s.name = "unCLIPCheckpointLoader";
  s.display_name = "unCLIPCheckpointLoader";
  s.category = "loaders";
  s.required = {context_combo("ckpt_name", graph::ComboSource::kCheckpoints)};
  set_outputs(s, {"MODEL", "CLIP", "VAE", "CLIP_VISION"});
  return s;
}

}  // namespace

void add_image_prompts_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(clip_vision_loader());
  registry.add(clip_vision_encode());
  registry.add(unclip_conditioning());
  registry.add(unclip_checkpoint_loader());
}

}  // namespace df::nodes
