// Probe commands for T2I adapters: the adapter's features for a hint, and one UNet call with an
// adapter (optionally after a ControlNet) applied through the control chain.
#include <string>

#include "engine/checkpoint_bundle.h"
#include "engine/control/control_chain.h"
#include "engine/control/controlnet_loader.h"
#include "engine/control/t2i_adapter.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::ControlLink;
using engine::TensorMap;
using nlohmann::json;

// args: adapter (a file); inputs: hint [B, C, H, W]. outputs: "feature_N" per stage.
TensorMap t2i_adapter_features(const json& args, const TensorMap& in) {
  at::InferenceMode guard;
  const auto adapter =
      engine::load_t2i_adapter(args.at("adapter").get<std::string>(), "cpu", "float32");
  TensorMap out;
  const auto features = adapter->features(in.at("hint"));
  for (size_t i = 0; i < features.size(); ++i) {
    out.emplace("feature_" + std::to_string(i), features[i]);
  }
  return out;
}

std::shared_ptr<const ControlLink> link_of(const std::string& path, const at::Tensor& hint,
                                           double strength, double start, double end,
                                           std::shared_ptr<const ControlLink> previous) {
  return std::make_shared<const ControlLink>(ControlLink{
      engine::load_control_model(path, "cpu", "float32"),
      [hint](int64_t, int64_t) { return hint; }, strength, start, end, std::move(previous)});
}

// inputs: sample, timesteps, context, hint, SDXL's text_embeds and time_ids; args: pipeline,
// adapter, strength, start_percent, end_percent, sigma (default 1) and optionally controlnet (with
// controlnet_strength) applied before the adapter. outputs: "out", the UNet's output.
TensorMap t2i_adapter_unet(const json& args, const TensorMap& in) {
  at::InferenceMode guard;
  const engine::CheckpointBundle bundle = engine::load_checkpoint_bundle(
      {args.at("pipeline").get<std::string>(), "cpu", "float32", ""});
  std::optional<engine::UNetAddedConditioning> added;
  if (in.count("text_embeds")) {
    added = engine::UNetAddedConditioning{in.at("text_embeds"), in.at("time_ids")};
  }
  const double sigma = args.value("sigma", 1.0);
  const engine::ControlCall call{in.at("sample"), in.at("timesteps"), in.at("context"),
                                 added, sigma, 1};
  std::shared_ptr<const ControlLink> chain;
  if (args.contains("controlnet")) {
    chain = link_of(args.at("controlnet").get<std::string>(), in.at("hint"),
                    args.value("controlnet_strength", 1.0), 0.0, 1.0, nullptr);
  }
  chain = link_of(args.at("adapter").get<std::string>(), in.at("hint"), args.value("strength", 1.0),
                  args.value("start_percent", 0.0), args.value("end_percent", 1.0), chain);
  engine::UNetStep step{sigma};
  step.control = engine::control_residuals(*chain, call, bundle.model->schedule);
  return {{"out", bundle.model->unet->forward(call.sample, call.timesteps, call.context, added,
                                             step)}};
}

DF_PROBE_COMMAND("t2i_adapter_features", t2i_adapter_features);
DF_PROBE_COMMAND("t2i_adapter_unet", t2i_adapter_unet);

}  // namespace
}  // namespace df::probe
