// Probe commands for ControlNets: one UNet call with a ControlNet chain's residuals, the residuals
// themselves, and a whole guided sampling run with a ControlNet on both sides.
#include <string>

#include "engine/checkpoint_bundle.h"
#include "engine/control/control_chain.h"
#include "engine/control/controlnet_loader.h"
#include "engine/ksampler.h"
#include "engine/samplers.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::ControlLink;
using engine::TensorMap;
using nlohmann::json;

engine::CheckpointBundle load_pipeline(const json& args) {
  return engine::load_checkpoint_bundle(
      {args.at("pipeline").get<std::string>(), "cpu", "float32", args.value("clip_vocab_dir", "")});
}

// args["controlnet"] applied `args["chain"]` times (default 1) with args["strength"] and the window
// args["start_percent"]..args["end_percent"], each link after the previous one; the hint is used
// as given.
std::shared_ptr<const ControlLink> control_chain(const json& args, const at::Tensor& hint) {
  const auto net = engine::load_controlnet(args.at("controlnet").get<std::string>(), "cpu", "float32");
  std::shared_ptr<const ControlLink> chain;
  for (int i = 0; i < args.value("chain", 1); ++i) {
    chain = std::make_shared<const ControlLink>(ControlLink{
        net, [hint](int64_t, int64_t) { return hint; }, args.value("strength", 1.0),
        args.value("start_percent", 0.0), args.value("end_percent", 1.0), chain});
  }
  return chain;
}

// inputs: sample, timesteps, context, hint ([B,3,8h,8w] in [0,1]), SDXL's text_embeds and time_ids;
// args: pipeline (a diffusers pipeline folder), controlnet (file or folder), strength, chain,
// sigma (the noise level the window is checked at, default 1). outputs: "out" (the UNet's output
// with the residuals), "mid" and "down_N" (the summed, scaled residuals; absent when inactive).
TensorMap controlnet_unet(const json& args, const TensorMap& in) {
  at::InferenceMode guard;
  const engine::CheckpointBundle bundle = load_pipeline(args);
  std::optional<engine::UNetAddedConditioning> added;
  if (in.count("text_embeds")) added = engine::UNetAddedConditioning{in.at("text_embeds"), in.at("time_ids")};
  const double sigma = args.value("sigma", 1.0);
  const engine::ControlCall call{in.at("sample"), in.at("timesteps"), in.at("context"), added, sigma, 1};
  engine::UNetStep step{sigma};
  step.control = engine::control_residuals(*control_chain(args, in.at("hint")), call,
                                           bundle.model->schedule);
  TensorMap out{{"out", bundle.model->unet->forward(call.sample, call.timesteps, call.context,
                                                   added, step)}};
  if (step.control.middle.defined()) out.emplace("mid", step.control.middle);
  for (size_t i = 0; i < step.control.output.size(); ++i) {
    out.emplace("down_" + std::to_string(i), step.control.output[i]);
  }
  return out;
}

// txt2img with the ControlNet chain on the positive and the negative prompt (ComfyUI's
// ControlNetApplyAdvanced). args as txt2img plus controlnet/strength/chain/start/end; inputs:
// "latents" (noised start), "sigmas", "hint".
TensorMap controlnet_txt2img(const json& args, const TensorMap& in) {
  at::InferenceMode guard;
  const engine::CheckpointBundle bundle = load_pipeline(args);
  engine::Conditioning positive = bundle.clip->encode(args.at("prompt").get<std::string>());
  engine::Conditioning negative = bundle.clip->encode(args.value("negative", ""));
  positive.control = negative.control = control_chain(args, in.at("hint"));
  const at::Tensor& x = in.at("latents");
  const engine::Denoiser denoise = engine::make_guided_denoiser(
      *bundle.model, {positive}, {negative}, args.value("cfg", 7.0), x.size(2) * 8, x.size(3) * 8);
  const at::Tensor out = engine::run_sampler(args.value("sampler", "euler"), denoise, x,
                                             in.at("sigmas").to(at::kFloat), 0, {});
  return {{"latents", out}};
}

// Loads args["controlnet"]; "family": the detected family as a 1-element tensor of the engine's
// Family value (0 SD1, 1 SD2, 2 SDXL).
TensorMap controlnet_detect(const json& args, const TensorMap&) {
  const engine::ControlNetFile file =
      engine::read_controlnet(args.at("controlnet").get<std::string>(), at::kFloat);
  return {{"family", at::tensor({static_cast<int64_t>(file.family)})}};
}

}  // namespace

DF_PROBE_COMMAND("controlnet_unet", controlnet_unet);
DF_PROBE_COMMAND("controlnet_txt2img", controlnet_txt2img);
DF_PROBE_COMMAND("controlnet_detect", controlnet_detect);

}  // namespace df::probe
