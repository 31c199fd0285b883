// Probe commands for the flow-matching model samplings: their tables and maps, the schedulers on
// them, and the samplers' flow (CONST) forms driven by a synthetic velocity model.
#include <cmath>
#include <string>
#include <vector>

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

DF_PROBE_COMMAND("flow_model_sampling", flow_model_sampling);
DF_PROBE_COMMAND("flow_scheduler", flow_scheduler);
DF_PROBE_COMMAND("flow_sample", flow_sample);

}  // namespace
}  // namespace df::probe
