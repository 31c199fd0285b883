// Probe commands for schedulers, seeded noise and samplers driven by a synthetic model.
#include <cmath>
#include <string>
#include <vector>

#include "engine/noise.h"
#include "engine/noise_schedule.h"
#include "engine/samplers.h"
#include "engine/schedulers.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

// args {"scheduler", "steps", "sampler"?, "denoise"?} or, for KSamplerAdvanced,
// {..., "start_at_step", "end_at_step", "return_with_leftover_noise"} -> "sigmas" float32 and the
// model timesteps of each nonzero sigma: "nearest" (ComfyUI) and "interpolated" (diffusers).
TensorMap schedule(const json& args, const TensorMap&) {
  const engine::NoiseSchedule schedule{engine::NoiseScheduleConfig{}};
  const auto scheduler = args.at("scheduler").get<std::string>();
  const auto sampler = args.value("sampler", std::string("euler"));
  const int steps = args.at("steps").get<int>();
  const at::Tensor sigmas =
      args.contains("start_at_step")
          ? engine::advanced_sigmas(schedule, scheduler, sampler, steps,
                                    args.at("start_at_step").get<int>(),
                                    args.at("end_at_step").get<int>(),
                                    args.at("return_with_leftover_noise").get<bool>())
          : engine::denoise_sigmas(schedule, scheduler, sampler, steps,
                                   args.value("denoise", 1.0));
  std::vector<double> nearest;
  std::vector<double> interpolated;
  for (int64_t i = 0; i < sigmas.size(0); ++i) {
    const double sigma = sigmas[i].item<double>();
    if (sigma == 0.0) continue;
    nearest.push_back(schedule.timestep_nearest(sigma));
    interpolated.push_back(schedule.timestep_interpolated(sigma));
  }
  return {{"sigmas", sigmas},
          {"nearest", at::tensor(nearest, at::kDouble)},
          {"interpolated", at::tensor(interpolated, at::kDouble)}};
}

// args {"shape", "seed", "batch_index"?} -> "noise": ComfyUI's initial noise.
TensorMap noise(const json& args, const TensorMap&) {
  return {{"noise", engine::comfy_initial_noise(args.at("shape").get<std::vector<int64_t>>(),
                                                args.at("seed").get<uint64_t>(),
                                                args.value("batch_index", std::vector<int>{}))}};
}

// The synthetic model both sides of the parity test evaluate: an output
// m(x_in, t) = 0.1 sin(x_in) + 0.001 t x_in on the scaled input x_in = x / sqrt(sigma^2 + 1),
// read as the given prediction type and turned into the denoised estimate.
at::Tensor synthetic_denoised(const at::Tensor& x, double sigma, double t,
                              engine::Prediction prediction) {
  const double scale = std::sqrt(sigma * sigma + 1.0);
  const at::Tensor x_in = x / scale;
  const at::Tensor m = at::sin(x_in) * 0.1 + x_in * (1e-3 * t);
  if (prediction == engine::Prediction::kEpsilon) return x - m * sigma;
  if (prediction == engine::Prediction::kVPrediction) {
    return x / (scale * scale) - m * (sigma / scale);
  }
  return m;  // the model predicts the sample itself
}

// args {"sampler", "sigmas": [...], "timesteps": [...]?, "noise_seed", "prediction"}, inputs "x"
// -> "out". The model timestep of a sigma is the entry of "timesteps" at that sigma's position,
// diffusers' interpolated timestep for other sigmas (solver midpoints), or ComfyUI's nearest
// timestep when no "timesteps" are given.
TensorMap sample(const json& args, const TensorMap& inputs) {
  const engine::NoiseSchedule schedule{engine::NoiseScheduleConfig{}};
  const at::Tensor sigmas =
      at::tensor(args.at("sigmas").get<std::vector<double>>(), at::kDouble).to(at::kFloat);
  const bool given_timesteps = args.contains("timesteps");
  const auto timesteps = args.value("timesteps", std::vector<double>{});
  const auto prediction = engine::prediction_from_name(args.at("prediction").get<std::string>());

  auto timestep_of = [&](double sigma) {
    if (!given_timesteps) return schedule.timestep_nearest(sigma);
    for (size_t i = 0; i < timesteps.size(); ++i) {
      if (sigmas[static_cast<int64_t>(i)].item<double>() == sigma) return timesteps[i];
    }
    return schedule.timestep_interpolated(sigma);
  };
  const engine::Denoiser denoise = [&](const at::Tensor& x, double sigma) {
    return synthetic_denoised(x, sigma, timestep_of(sigma), prediction);
  };
  const at::Tensor out =
      engine::run_sampler(args.at("sampler").get<std::string>(), denoise, inputs.at("x"), sigmas,
                          args.at("noise_seed").get<uint64_t>(), {});
  return {{"out", out}};
}

DF_PROBE_COMMAND("schedule", schedule);
DF_PROBE_COMMAND("noise", noise);
DF_PROBE_COMMAND("sample", sample);

}  // namespace
}  // namespace df::probe
