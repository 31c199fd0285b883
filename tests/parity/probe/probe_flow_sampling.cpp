// Probe commands for the flow-matching model samplings: their tables and maps, the schedulers on
// them, the samplers' flow (CONST) forms driven by a synthetic velocity model, and the tiny
// Z-Image model's whole KSampler pipeline.
#include <cmath>
#include <string>
#include <vector>

#include "engine/checkpoint_bundle.h"
#include "engine/component_loaders.h"
#include "engine/family/dit_text_encoders.h"
#include "engine/family/zimage/zimage_tiny.h"
#include "engine/ksampler.h"
#include "engine/noise_schedule.h"
#include "engine/samplers.h"
#include "engine/schedulers.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

// args {"kind": "discrete_flow"|"flux_flow", "shift", "multiplier"?}: the model sampling.
engine::NoiseSchedule flow_schedule(const json& args) {
  const double shift = args.at("shift").get<double>();
  if (args.at("kind").get<std::string>() == "flux_flow") {
    return engine::NoiseSchedule::flux_flow(shift);
  }
  return engine::NoiseSchedule::discrete_flow(shift, args.value("multiplier", 1000.0));
}

at::Tensor doubles(const std::vector<double>& values) { return at::tensor(values, at::kDouble); }

// args {kind, shift, multiplier?, "sigmas": [...], "timesteps": [...], "percents": [...]} ->
// "table" (the float32 sigma table), "timestep" of each sigma, "sigma" of each timestep and
// "percent_to_sigma" of each percent.
TensorMap flow_model_sampling(const json& args, const TensorMap&) {
  const engine::NoiseSchedule schedule = flow_schedule(args);
  std::vector<double> timesteps;
  for (double sigma : args.at("sigmas").get<std::vector<double>>()) {
    timesteps.push_back(schedule.timestep_nearest(sigma));
  }
  std::vector<double> sigmas;
  for (double t : args.at("timesteps").get<std::vector<double>>()) {
    sigmas.push_back(schedule.sigma_at(t));
  }
  std::vector<double> percent_sigmas;
  for (double percent : args.at("percents").get<std::vector<double>>()) {
    percent_sigmas.push_back(schedule.percent_to_sigma(percent));
  }
  return {{"table", schedule.sigmas()},
          {"timestep", doubles(timesteps)},
          {"sigma", doubles(sigmas)},
          {"percent_to_sigma", doubles(percent_sigmas)}};
}

// args {kind, shift, multiplier?, "scheduler", "steps"} -> "sigmas": the scheduler's sigmas.
TensorMap flow_scheduler(const json& args, const TensorMap&) {
  const engine::NoiseSchedule schedule = flow_schedule(args);
  return {{"sigmas", engine::compute_sigmas(schedule, args.at("scheduler").get<std::string>(),
                                            args.at("steps").get<int>())}};
}

// The synthetic flow model both sides of the parity test evaluate: the velocity
// v(x, t) = 0.1 sin(x) + 0.001 t x at timestep t = sigma * multiplier, read as ComfyUI's CONST
// prediction: denoised = x - v * sigma.
at::Tensor synthetic_flow_denoised(const at::Tensor& x, double sigma, double t) {
  const at::Tensor v = at::sin(x) * 0.1 + x * (1e-3 * t);
  return x - v * sigma;
}

// args {kind, shift, multiplier?, "sampler", "sigmas": [...], "noise_seed", "cfg"?}, inputs "x"
// -> "out". With "cfg" the model is guided: the unconditional model sees 0.8 * x, the result is
// uncond + (cond - uncond) * cfg and the unconditional estimate is reported.
TensorMap flow_sample(const json& args, const TensorMap& inputs) {
  const engine::NoiseSchedule schedule = flow_schedule(args);
  const at::Tensor sigmas =
      at::tensor(args.at("sigmas").get<std::vector<double>>(), at::kDouble).to(at::kFloat);
  const bool guided = args.contains("cfg");
  const double cfg = args.value("cfg", 1.0);
  const engine::Denoiser denoise = [&](const at::Tensor& x, double sigma) {
    const double t = schedule.timestep_nearest(sigma);
    const at::Tensor cond = synthetic_flow_denoised(x, sigma, t);
    if (!guided) return cond;
    const at::Tensor uncond = x - (x - synthetic_flow_denoised(x * 0.8, sigma, t)) / 0.8;
    engine::report_uncond_denoised(uncond);
    return uncond + (cond - uncond) * cfg;
  };
  engine::SamplerHooks hooks;
  hooks.model_sampling = &schedule;
  const at::Tensor out = engine::run_sampler(args.at("sampler").get<std::string>(), denoise,
                                             inputs.at("x"), sigmas,
                                             args.at("noise_seed").get<uint64_t>(), hooks);
  return {{"out", out}};
}

// args {"models_dir" (create-tiny's split Z-Image files), "prompt", "seed", "steps", "shift",
// "sampler", "scheduler", "width", "height", "mask"?: bool} -> "latent" (KSampler's result, VAE
// space) and "image" [1, H, W, 3] in [0, 1]: the frontend's Z-Image graph (UNETLoader,
// CLIPLoader lumina2, ModelSamplingAuraFlow, EmptySD3LatentImage, KSampler cfg 1, VAEDecode) in
// float32 on the CPU. With "mask" the latent carries a noise mask (SetLatentNoiseMask) keeping
// the left half of a latent given as input "latent".
TensorMap zimage_pipeline(const json& args, const TensorMap& inputs) {
  const std::string root = args.at("models_dir").get<std::string>();
  const auto loaded = engine::load_diffusion_model(root + "/diffusion_models/" +
                                                       engine::zimage::kDiffusionModelFile,
                                                   "cpu", "float32");
  engine::DiffusionModel model = *loaded;
  model.schedule = engine::NoiseSchedule::discrete_flow(args.at("shift").get<double>(), 1.0);
  const auto encoder = engine::load_prompt_encoder(
      {root + "/text_encoders/" + engine::zimage::kTextEncoderFile}, "lumina2", "cpu", "float32",
      "");
  const engine::ConditioningList positive = {encoder->encode(args.at("prompt").get<std::string>())};
  engine::KSamplerParams params;
  params.seed = args.at("seed").get<uint64_t>();
  params.steps = args.at("steps").get<int>();
  params.cfg = 1.0;
  params.sampler = args.at("sampler").get<std::string>();
  params.scheduler = args.at("scheduler").get<std::string>();
  const int64_t height = args.at("height").get<int64_t>() / 8;
  const int64_t width = args.at("width").get<int64_t>() / 8;
  at::Tensor latent = at::zeros({1, 16, height, width});
  if (args.value("mask", false)) {
    latent = inputs.at("latent");
    params.noise_mask = at::ones({1, height, width});
    params.noise_mask.narrow(2, 0, width / 2).zero_();
  }
  const at::Tensor out = engine::ksample(model, positive, positive, latent, params, {});
  const auto vae = engine::load_vae_codec(root + "/vae/" + engine::zimage::kVaeFile, "cpu");
  return {{"latent", out}, {"image", vae->decode(out)}};
}

DF_PROBE_COMMAND("zimage_pipeline", zimage_pipeline);
DF_PROBE_COMMAND("flow_model_sampling", flow_model_sampling);
DF_PROBE_COMMAND("flow_scheduler", flow_scheduler);
DF_PROBE_COMMAND("flow_sample", flow_sample);

}  // namespace
}  // namespace df::probe
