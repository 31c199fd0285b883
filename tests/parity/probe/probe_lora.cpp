// Probe command "lora_apply": a checkpoint's UNet and text-encoder weights after a LoRA file's
// patches (and, given inputs, the patched modules' outputs), with the unmatched and rejected LoRA
// tensors on stdout.
#include <iostream>
#include <optional>

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

// The patched UNet's output for inputs "sample", "timestep", "context" (and SDXL's "text_embeds",
// "time_ids").
at::Tensor unet_output(const engine::UNetConfig& config, const engine::Weights& weights,
                       const engine::TensorMap& in) {
  std::optional<engine::UNetAddedConditioning> added;
  if (in.count("text_embeds")) {
    added = engine::UNetAddedConditioning{in.at("text_embeds"), in.at("time_ids")};
  }
  return engine::UNet(config, weights)
      .forward(in.at("sample"), in.at("timestep"), in.at("context"), added);
}

engine::TensorMap lora_apply(const nlohmann::json& args, const engine::TensorMap& in) {
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
  const engine::Weights unet = engine::apply_patches(bundle.model->unet->weights(), lora.unet);
  add_weights(out, "unet", unet);
  if (in.count("sample")) out["output.unet"] = unet_output(bundle.model->unet->config(), unet, in);
  const auto& encoders = bundle.clip->encoders();
  for (size_t i = 0; i < encoders.size(); ++i) {
    const std::string name = i == 0 ? "text_encoder" : "text_encoder_2";
    const engine::Weights weights =
        engine::apply_patches(encoders[i].model.weights(), lora.text_encoders.at(i));
    add_weights(out, name, weights);
    if (!in.count("ids")) continue;
    const engine::ClipTextModel model(encoders[i].model.config(), weights);
    const auto encoded = model.forward(in.at("ids"), encoders[i].tokenizer.eos_id());
    out["output." + name + ".last_hidden_state"] = encoded.last_hidden_state;
    out["output." + name + ".pooled"] = encoded.pooled;
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
