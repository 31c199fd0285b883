// Image prompt nodes: CLIP vision models loaded and run on images, and unCLIPConditioning, which
// adds the image embeddings to a conditioning's entries.
#include "core/error.h"
#include "engine/clip_vision.h"
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

Value clip_vision_value(std::shared_ptr<const engine::ClipVisionModel> model) {
  return Value::shared("CLIP_VISION", std::move(model));
}

std::vector<Value> encode(const NodeInputs& in) {
  const auto& model = in.get<engine::ClipVisionModel>("clip_vision");
  const bool center_crop = in.get_string("crop") == "center";
  return {Value::of("CLIP_VISION_OUTPUT",
                    model.encode_image(in.get<ImageValue>("image").pixels, center_crop))};
}

// ComfyUI appends the image to each entry's unclip_conditioning; strength 0 changes nothing.
std::vector<Value> unclip_conditioning(const NodeInputs& in) {
  ConditioningValue conditioning = in.get<ConditioningValue>("conditioning");
  const double strength = in.get_float("strength");
  if (strength == 0) return {Value::of("CONDITIONING", std::move(conditioning))};
  const auto& output = in.get<engine::ClipVisionOutput>("clip_vision_output");
  const engine::UnclipImage image{output.image_embeds, strength,
                                  in.get_float("noise_augmentation")};
  for (engine::Conditioning& entry : conditioning.entries) entry.unclip.push_back(image);
  return {Value::of("CONDITIONING", std::move(conditioning))};
}

// unCLIPCheckpointLoader: a checkpoint's MODEL, CLIP and VAE with the CLIP vision model the same
// file holds.
std::vector<Value> load_unclip_checkpoint(CheckpointStore& models, const std::string& name) {
  auto bundle = models.get(name);
  auto clip_vision = models.clip_vision(engine::checkpoint_clip_vision_file(models.resolve(name)));
  return {Value::of("MODEL", ModelValue{engine::ModelPatcher(bundle->model)}),
          Value::of("CLIP", ClipValue{engine::ClipPatcher(bundle->clip).with_embeddings(
                                models.embedding_finder())}),
          Value::of("VAE", VaeValue{bundle->vae}), clip_vision_value(std::move(clip_vision))};
}

}  // namespace

void register_image_prompts_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  add_function_node(registry, "CLIPVisionLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    const std::string path = resources.models.model_file("clip_vision", in.get_string("clip_name"));
    return std::vector<Value>{clip_vision_value(resources.models.clip_vision(path))};
  });

  add_function_node(registry, "CLIPVisionEncode", [](const NodeInputs& in, NodeContext&) {
    return encode(in);
  });

  add_function_node(registry, "unCLIPConditioning", [](const NodeInputs& in, NodeContext&) {
    return unclip_conditioning(in);
  });

  add_function_node(registry, "unCLIPCheckpointLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return load_unclip_checkpoint(resources.models, in.get_string("ckpt_name"));
  });
}

}  // namespace df::nodes
