// Probe command "lora_apply": a checkpoint's UNet and text-encoder weights after a LoRA file's
// patches, with the unmatched and rejected LoRA tensors on stdout.
#include <iostream>

#include "engine/adapters/lora.h"
#include "engine/checkpoint_bundle.h"
#include "probe.h"

namespace df::probe {
namespace {

void add_weights(engine::TensorMap& out, const std::string& prefix, const engine::Weights& weights) {
  for (const auto& key : weights.keys()) {
    out.emplace(prefix + "." + key, weights.get(key).to(at::kCPU, at::kFloat));
  }
}

engine::TensorMap lora_apply(const nlohmann::json& args, const engine::TensorMap&) {
  engine::CheckpointLoadRequest request;
  request.path = args.at("model").get<std::string>();
  request.device = "cpu";
  request.dtype = "float32";
  request.clip_vocab_dir = args.value("clip_vocab_dir", "");
  const engine::CheckpointBundle bundle = engine::load_checkpoint_bundle(request);
  const engine::LoraTargets targets = engine::lora_targets(bundle.model.get(), bundle.clip.get());
  const engine::LoraPatches lora =
      engine::load_lora(args.at("lora").get<std::string>(), targets,
                        args.value("strength_model", 1.0), args.value("strength_clip", 1.0));

  engine::TensorMap out;
  add_weights(out, "unet", engine::apply_patches(bundle.model->unet.weights(), lora.unet));
  const auto& encoders = bundle.clip->encoders();
  for (size_t i = 0; i < encoders.size(); ++i) {
    add_weights(out, i == 0 ? "text_encoder" : "text_encoder_2",
                engine::apply_patches(encoders[i].model.weights(), lora.text_encoders.at(i)));
  }
  size_t patched = lora.unet.size();
  for (const auto& encoder : lora.text_encoders) patched += encoder.size();
  std::cout << nlohmann::json{{"unmatched", lora.unmatched},
                              {"rejected", lora.rejected},
                              {"patched", patched}}
                   .dump()
            << '\n';
  return out;
}

DF_PROBE_COMMAND("lora_apply", lora_apply);

}  // namespace
}  // namespace df::probe
