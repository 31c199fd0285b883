// Probe command for LoRAs on the DiT families: a LoRA file applied through lora_targets, load_lora
// and ModelPatcher to a FLUX.1, SD3 or Z-Image network, and the network run with and without it.
#include <iostream>
#include <string>

#include "core/error.h"
#include "engine/adapters/lora.h"
#include "engine/family/dit_models.h"
#include "engine/model_patcher.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

std::shared_ptr<const engine::DiffusionModel> load_model(const std::string& path) {
  const auto family = engine::detect_dit_family(path);
  if (!family) throw Error(ErrorCode::kInvalidArgument, "not a DiT model: " + path);
  return engine::load_dit_model(path, *family, engine::RuntimePlacement{});
}

engine::NetworkInputs network_inputs(const TensorMap& in) {
  engine::NetworkInputs inputs;
  inputs.context = in.at("context");
  if (in.count("context_mask")) inputs.context_mask = in.at("context_mask").to(at::kBool);
  if (in.count("pooled")) inputs.pooled = in.at("pooled");
  if (in.count("guidance")) inputs.guidance = in.at("guidance");
  return inputs;
}

// args: weights (a DiT model file or folder), lora (a LoRA file), strength. Inputs as the family's
// forward probe takes them. Returns "out" (the patched network's output), "base" (the cached
// model's network run afterwards) and "unmatched" (how many file tensors matched nothing, each
// logged).
TensorMap dit_lora_forward(const json& args, const TensorMap& in) {
  const auto base = load_model(args.at("weights").get<std::string>());
  const auto targets = engine::lora_targets(base.get(), nullptr);
  const auto lora = engine::load_lora(args.at("lora").get<std::string>(), targets,
                                      args.at("strength").get<double>(), 0.0);
  for (const auto& key : lora.unmatched) std::cerr << "lora key not loaded: " << key << '\n';
  for (const auto& message : lora.rejected) std::cerr << "ERROR " << message << '\n';
  const auto patched = engine::ModelPatcher(base).with_weight_patches(lora.unet).patched();
  const engine::NetworkInputs inputs = network_inputs(in);
  TensorMap out;
  out.emplace("out", patched->network->forward(in.at("x"), in.at("timestep"), inputs));
  out.emplace("base", base->network->forward(in.at("x"), in.at("timestep"), inputs));
  out.emplace("unmatched", at::tensor(static_cast<int64_t>(lora.unmatched.size() +
                                                           lora.rejected.size())));
  return out;
}

}  // namespace

DF_PROBE_COMMAND("dit_lora_forward", dit_lora_forward);

}  // namespace df::probe
