// Probe commands for image prompts: the CLIP vision tower, ComfyUI's CLIP preprocessing, the
// unCLIP noise augmentation and a UNet taking image embeddings as class labels.
#include <fstream>
#include <string>

#include "engine/clip_vision.h"
#include "engine/safetensors.h"
#include "engine/unclip.h"
#include "engine/unet.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

// The float32 CPU tower of args["path"] (transformers or open_clip names).
engine::ClipVisionModel clip_vision(const json& args) {
  const auto file = engine::TensorFile::open(args.at("path").get<std::string>());
  engine::Weights weights(engine::read_clip_vision_weights(file, at::kFloat));
  return engine::ClipVisionModel(engine::detect_clip_vision_config(weights), weights);
}

TensorMap outputs(const engine::ClipVisionOutput& out) {
  return {{"last_hidden_state", out.last_hidden_state},
          {"penultimate_hidden_states", out.penultimate_hidden_states},
          {"image_embeds", out.image_embeds}};
}

// Normalised pixel_values [B,3,S,S] -> the tower's outputs.
TensorMap clip_vision_forward(const json& args, const TensorMap& in) {
  return outputs(clip_vision(args).forward(in.at("pixel_values")));
}

// CLIPVisionEncode: images [B,H,W,3] with args["crop"] ("center" or "none") -> the outputs.
TensorMap clip_vision_encode(const json& args, const TensorMap& in) {
  const bool center = args.at("crop").get<std::string>() == "center";
  return outputs(clip_vision(args).encode_image(in.at("images"), center));
}

// images [B,H,W,C] -> "pixels" for args["size"] and args["crop"].
TensorMap clip_preprocess(const json& args, const TensorMap& in) {
  const bool center = args.at("crop").get<std::string>() == "center";
  return {{"pixels", engine::clip_preprocess(in.at("images"), args.at("size").get<int64_t>(), center)}};
}

// embeds [N,D] and noise [N,D] (optional mean/std [D]) at args["noise_level"] with
// args["schedule"] -> "augmented" [N, 2D].
TensorMap unclip_augment(const json& args, const TensorMap& in) {
  const at::Tensor& embeds = in.at("embeds");
  auto optional = [&](const char* name) { return in.count(name) ? in.at(name) : at::Tensor(); };
  const engine::EmbeddingNoiseAugmentor augmentor(args.at("schedule").get<std::string>(),
                                                  embeds.size(1), optional("mean"), optional("std"));
  return {{"augmented",
           augmentor.augment(embeds, args.at("noise_level").get<int64_t>(), in.at("noise"))}};
}

// A diffusers UNet folder (args["path"]) with class_embed_type "projection": sample, timesteps,
// context and class_labels -> "out".
TensorMap unet_with_class_labels(const json& args, const TensorMap& in) {
  const std::string dir = args.at("path").get<std::string>();
  std::ifstream config(dir + "/config.json");
  const engine::UNet model(engine::UNetConfig::from_json(json::parse(config)),
                           engine::Weights(engine::load_safetensors(dir + "/diffusion_pytorch_model.safetensors")));
  const engine::UNetAddedConditioning added{{}, {}, in.at("class_labels")};
  return {{"out", model.forward(in.at("sample"), in.at("timesteps"), in.at("context"), added)}};
}

}  // namespace

DF_PROBE_COMMAND("clip_vision_forward", clip_vision_forward);
DF_PROBE_COMMAND("clip_vision_encode", clip_vision_encode);
DF_PROBE_COMMAND("clip_preprocess", clip_preprocess);
DF_PROBE_COMMAND("unclip_augment", unclip_augment);
DF_PROBE_COMMAND("unet_with_class_labels", unet_with_class_labels);

}  // namespace df::probe
