// Probe commands for component loading: a VAE file through VAELoader's codec, and CLIPSetLastLayer's
// conditioning context with the token ids each encoder was fed.
#include <string>

#include "engine/checkpoint_bundle.h"
#include "engine/clip_patcher.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;

std::shared_ptr<const engine::VaeCodec> vae_file(const nlohmann::json& args) {
  return engine::load_vae_codec(args.at("path").get<std::string>(), "cpu");
}

// args {"path": VAE file}, in "latents" [B,C,h,w] -> "image" [B,H,W,3] in [0,1].
TensorMap vae_file_decode(const nlohmann::json& args, const TensorMap& in) {
  return {{"image", vae_file(args)->decode(in.at("latents"))}};
}

// args {"path": VAE file}, in "image" [B,H,W,3] in [0,1] -> "mean" (the latent mean, unscaled).
TensorMap vae_file_encode(const nlohmann::json& args, const TensorMap& in) {
  return {{"mean", vae_file(args)->encode(in.at("image"))}};
}

// args {"model", "prompt", "stop_at_clip_layer"} -> "context" [1, 77, C] and "ids_<i>" [1, 77]
// (int64), the first chunk's token ids of encoder i.
TensorMap clip_skip_encode(const nlohmann::json& args, const TensorMap&) {
  engine::CheckpointLoadRequest request;
  request.path = args.at("model").get<std::string>();
  request.device = "cpu";
  request.dtype = "float32";
  const engine::CheckpointBundle bundle = engine::load_checkpoint_bundle(request);
  const auto clip =
      engine::ClipPatcher(bundle.clip).with_last_layer(args.at("stop_at_clip_layer").get<int>());
  const auto conditioner = clip.patched();
  const std::string prompt = args.at("prompt").get<std::string>();
  TensorMap out = {{"context", conditioner->encode(prompt).context.to(at::kCPU, at::kFloat)}};
  for (size_t i = 0; i < conditioner->encoder_count(); ++i) {
    const auto chunks = conditioner->tokenize(prompt, i);
    std::vector<int64_t> ids;
    for (const auto& token : chunks.at(0)) ids.push_back(token.id);
    out["ids_" + std::to_string(i)] =
        at::tensor(ids, at::kLong).reshape({1, static_cast<int64_t>(ids.size())});
  }
  return out;
}

DF_PROBE_COMMAND("vae_file_decode", vae_file_decode);
DF_PROBE_COMMAND("vae_file_encode", vae_file_encode);
DF_PROBE_COMMAND("clip_skip_encode", clip_skip_encode);

}  // namespace
}  // namespace df::probe
