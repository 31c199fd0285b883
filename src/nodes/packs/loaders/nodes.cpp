// Loader nodes: checkpoints into MODEL, CLIP and VAE values, diffusion model, text encoder and VAE
// files, LoRAs and hypernetworks as patches.
#include <iostream>

#include "core/error.h"
#include "engine/adapters/lora.h"
#include "engine/family/dit_text_encoders.h"
#include "engine/hypernetwork.h"
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

std::vector<Value> checkpoint_outputs(CheckpointStore& models, const std::string& name) {
  auto bundle = models.get(name);
  if (bundle->prompt_encoder) {
    return {Value::of("MODEL", ModelValue{engine::ModelPatcher(bundle->model)}),
            Value::of("CLIP", ClipValue{bundle->prompt_encoder}),
            Value::of("VAE", VaeValue{bundle->vae})};
  }
  return {Value::of("MODEL", ModelValue{engine::ModelPatcher(bundle->model)}),
          Value::of("CLIP", ClipValue{engine::ClipPatcher(bundle->clip).with_embeddings(
                                models.embedding_finder())}),
          Value::of("VAE", VaeValue{bundle->vae})};
}

// Reads a LoRA file for `model` (and `clip`, null for LoraLoaderModelOnly) and logs the tensors
// that matched nothing, as ComfyUI does. A DiT family's text side takes no LoRA tensors: they are
// logged as not loaded.
engine::LoraPatches read_lora(CheckpointStore& models, const std::string& name,
                              const ModelValue& model, const ClipValue* clip,
                              double strength_model, double strength_clip) {
  const bool sd_clip = clip && clip->clip;
  const engine::LoraTargets targets =
      engine::lora_targets(&model.model.base(), sd_clip ? &clip->clip->base() : nullptr);
  engine::LoraPatches patches =
      engine::load_lora(models.model_file("loras", name), targets, strength_model, strength_clip);
  for (const auto& key : patches.unmatched) std::cerr << "lora key not loaded: " << key << '\n';
  for (const auto& message : patches.rejected) std::cerr << "ERROR " << message << '\n';
  return patches;
}

std::vector<Value> load_lora(CheckpointStore& models, const NodeInputs& in, bool with_clip) {
  const auto& model = in.get<ModelValue>("model");
  const ClipValue* clip = with_clip ? &in.get<ClipValue>("clip") : nullptr;
  const double strength_model = in.get_float("strength_model");
  const double strength_clip = with_clip ? in.get_float("strength_clip") : 0.0;
  std::vector<Value> outputs = {Value::of("MODEL", model)};
  if (clip) outputs.push_back(Value::of("CLIP", *clip));
  if (strength_model == 0 && strength_clip == 0) return outputs;  // ComfyUI skips the file
  const engine::LoraPatches patches =
      read_lora(models, in.get_string("lora_name"), model, clip, strength_model, strength_clip);
  if (strength_model != 0) {
    outputs[0] = Value::of("MODEL", ModelValue{model.model.with_weight_patches(patches.unet)});
  }
  if (clip && clip->clip && strength_clip != 0) {
    outputs[1] = Value::of("CLIP", ClipValue{clip->sd("LoraLoader").with_weight_patches(patches.text_encoders)});
  }
  return outputs;
}

// HypernetworkLoader: the file's patch on every attention's keys and values; ComfyUI leaves the
// model as it is (logging an error) when the activation is one it does not know.
std::vector<Value> load_hypernetwork(CheckpointStore& models, const NodeInputs& in) {
  const auto& model = in.get<ModelValue>("model");
  const std::string path = models.model_file("hypernetworks", in.get_string("hypernetwork_name"));
  auto hypernetwork = std::make_shared<const engine::Hypernetwork>(engine::Hypernetwork::load(path));
  if (!hypernetwork->supported()) {
    std::cerr << "Unsupported Hypernetwork format: " << path << " activation_func "
              << hypernetwork->activation() << '\n';
    return {Value::of("MODEL", model)};
  }
  const auto patches = engine::hypernetwork_patches(hypernetwork, in.get_float("strength"));
  return {Value::of("MODEL", ModelValue{model.model.with_attention_patches(patches)})};
}

// UNETLoader: an fp8 weight_dtype keeps the model's matrix weights in fp8, upcast per operation
// to the runner's dtype ("fp8_e4m3fn_fast" as "fp8_e4m3fn": no fp8 matrix multiplication here).
std::vector<Value> load_unet(CheckpointStore& models, const NodeInputs& in) {
  auto model = models.diffusion_model(in.get_string("unet_name"), in.get_string("weight_dtype"));
  return {Value::of("MODEL", ModelValue{engine::ModelPatcher(std::move(model))})};
}

// CLIPLoader and DualCLIPLoader: the text encoder files named by `name_inputs`.
std::vector<Value> load_clip(CheckpointStore& models, const NodeInputs& in,
                             const std::vector<std::string>& name_inputs) {
  std::vector<std::string> names;
  for (const auto& input : name_inputs) names.push_back(in.get_string(input));
  const std::string device = in.has("device") ? in.get_string("device") : "default";
  const std::string type = in.get_string("type");
  if (engine::dit_text_family(type, names.size())) {
    return {Value::of("CLIP", ClipValue{models.prompt_encoder(names, type, device)})};
  }
  auto clip = models.text_encoders(names, type, device);
  return {Value::of("CLIP", ClipValue{engine::ClipPatcher(std::move(clip))
                                          .with_embeddings(models.embedding_finder())})};
}

}  // namespace

void register_loaders_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  add_function_node(registry, "CheckpointLoaderSimple", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return checkpoint_outputs(resources.models, in.get_string("ckpt_name"));
  });

  // ComfyUI reads the config file and then detects the model anyway; Dream Forge detects it.
  add_function_node(registry, "CheckpointLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return checkpoint_outputs(resources.models, in.get_string("ckpt_name"));
  });

  add_function_node(registry, "VAELoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return std::vector<Value>{
        Value::of("VAE", VaeValue{resources.models.vae(in.get_string("vae_name"))})};
  });

  add_function_node(registry, "LoraLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return load_lora(resources.models, in, true);
  });

  add_function_node(registry, "HypernetworkLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return load_hypernetwork(resources.models, in);
  });

  add_function_node(registry, "UNETLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return load_unet(resources.models, in);
  });

  add_function_node(registry, "CLIPLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return load_clip(resources.models, in, {"clip_name"});
  });

  add_function_node(registry, "DualCLIPLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return load_clip(resources.models, in, {"clip_name1", "clip_name2"});
  });

  // TripleCLIPLoader: SD3's CLIP-L, CLIP-G and T5-XXL, in any order.
  add_function_node(registry, "TripleCLIPLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    std::vector<std::string> names;
    for (const char* input : {"clip_name1", "clip_name2", "clip_name3"}) {
      names.push_back(in.get_string(input));
    }
    return std::vector<Value>{
        Value::of("CLIP", ClipValue{resources.models.prompt_encoder(names, "sd3", "default")})};
  });

  add_function_node(registry, "LoraLoaderModelOnly", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return load_lora(resources.models, in, false);
  });
}

}  // namespace df::nodes
