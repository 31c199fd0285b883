// Probe command "load_model": every component's tensors of a loaded model, configs on stdout.
#include <iostream>

#include "core/error.h"
#include "core/sha256.h"
#include "engine/checkpoint.h"
#include "probe.h"

namespace df::probe {
namespace {

at::ScalarType dtype_from_name(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  throw Error(ErrorCode::kInvalidArgument, "unknown dtype '" + name + "'");
}

void add_component(engine::TensorMap& out, const std::string& prefix,
                   const engine::Weights& weights) {
  for (const auto& key : weights.keys()) out.emplace(prefix + "." + key, weights.get(key));
}

nlohmann::json describe(const engine::LoadedModel& model) {
  nlohmann::json encoders = nlohmann::json::array();
  for (const auto& encoder : model.config.text_encoders) encoders.push_back(encoder.to_json());
  return {{"family", engine::family_name(model.config.family)},
          {"prediction", engine::prediction_name(model.config.schedule.prediction)},
          {"requires_aesthetics_score", model.config.requires_aesthetics_score},
          {"unet", model.config.unet.to_json()},
          {"vae", model.config.vae.to_json()},
          {"text_encoders", encoders},
          {"schedule", model.config.schedule.to_json()},
          {"tokenizer_dirs", model.tokenizer_dirs},
          {"pad_tokens", model.pad_tokens},
          {"name", model.name},
          {"sha256", df::sha256_file(model.identity_file)}};
}

DF_PROBE_COMMAND("load_model", [](const nlohmann::json& args, const engine::TensorMap&) {
  engine::LoadOptions options;
  options.clip_vocab_dir = args.value("clip_vocab_dir", "");
  options.dtype = dtype_from_name(args.value("dtype", "float32"));
  const engine::LoadedModel model = engine::load_model(args.at("path").get<std::string>(), options);
  engine::TensorMap out;
  add_component(out, "unet", model.unet);
  add_component(out, "vae", model.vae);
  for (size_t i = 0; i < model.text_encoders.size(); ++i) {
    add_component(out, i == 0 ? "text_encoder" : "text_encoder_2", model.text_encoders[i]);
  }
  std::cout << describe(model).dump() << '\n';
  return out;
});

}  // namespace
}  // namespace df::probe
