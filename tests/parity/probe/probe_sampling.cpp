// Probe commands for schedulers, seeded noise and samplers driven by a synthetic model.
#include <cmath>
#include <string>
#include <vector>

#include "engine/noise.h"
#include "engine/noise_schedule.h"
#include "engine/samplers.h"
#include "engine/sampling/brownian_tree.h"
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

// args {"function": "karras"|"exponential"|"polyexponential"|"kl_optimal"|"linear_quadratic"|
// "sd_turbo"|"basic", "steps", "sigma_min"?, "sigma_max"?, "rho"?, "denoise"?, "scheduler"?}
// -> "sigmas": the schedule functions the custom-sampling nodes call.
TensorMap schedule_function(const json& args, const TensorMap&) {
  const engine::NoiseSchedule schedule{engine::NoiseScheduleConfig{}};
  const auto function = args.at("function").get<std::string>();
  const int steps = args.at("steps").get<int>();
  const double sigma_min = args.value("sigma_min", schedule.sigma_min());
  const double sigma_max = args.value("sigma_max", schedule.sigma_max());
  at::Tensor sigmas;
  if (function == "karras") {
    sigmas = engine::karras_sigmas(steps, sigma_min, sigma_max, args.value("rho", 7.0));
  } else if (function == "exponential") {
    sigmas = engine::exponential_sigmas(steps, sigma_min, sigma_max);
  } else if (function == "polyexponential") {
    sigmas = engine::polyexponential_sigmas(steps, sigma_min, sigma_max, args.value("rho", 1.0));
  } else if (function == "kl_optimal") {
    sigmas = engine::kl_optimal_sigmas(steps, sigma_min, sigma_max);
  } else if (function == "linear_quadratic") {
    sigmas = engine::linear_quadratic_sigmas(steps, sigma_max);
  } else if (function == "sd_turbo") {
    sigmas = engine::sd_turbo_sigmas(schedule, steps, args.at("denoise").get<double>());
  } else {
    sigmas = engine::basic_scheduler_sigmas(schedule, args.at("scheduler").get<std::string>(),
                                            steps, args.at("denoise").get<double>());
  }
  return {{"sigmas", sigmas}};
}

// args {"t0", "t1", "seed", "shape", "dtype": "float32"|"float64", "queries": [[ta, tb], ...]}
// -> "w0", "w1", ...: the Brownian tree's increments over the queried intervals, in order.
TensorMap brownian(const json& args, const TensorMap&) {
  const auto dtype = args.value("dtype", std::string("float32")) == "float64" ? at::kDouble
                                                                              : at::kFloat;
  const engine::sampling::BrownianTree tree(
      args.at("t0").get<double>(), args.at("t1").get<double>(), args.at("seed").get<uint64_t>(),
      args.at("shape").get<std::vector<int64_t>>(), at::TensorOptions().dtype(dtype));
  TensorMap out;
  const auto queries = args.at("queries").get<std::vector<std::vector<double>>>();
  for (size_t i = 0; i < queries.size(); ++i) {
    out.emplace("w" + std::to_string(i), tree.increment(queries[i][0], queries[i][1]));
  }
  return out;
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

// args {"sampler", "sigmas": [...], "timesteps": [...]?, "noise_seed", "prediction",
// "cfg"?}, inputs "x" -> "out". The model timestep of a sigma is the entry of "timesteps" at that
// sigma's position, diffusers' interpolated timestep for other sigmas (solver midpoints), or
// ComfyUI's nearest timestep when no "timesteps" are given. With "cfg" the model is guided: the
// synthetic model is the conditional one, the unconditional one sees 0.8 * x_in instead of x_in,
// and the result is uncond + (cond - uncond) * cfg, the unconditional estimate being reported.
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
  const bool guided = args.contains("cfg");
  const double cfg = args.value("cfg", 1.0);
  const engine::Denoiser denoise = [&](const at::Tensor& x, double sigma) {
    const at::Tensor cond = synthetic_denoised(x, sigma, timestep_of(sigma), prediction);
    if (!guided) return cond;
    const at::Tensor uncond =
        x - (x - synthetic_denoised(x * 0.8, sigma, timestep_of(sigma), prediction)) / 0.8;
    engine::report_uncond_denoised(uncond);
    return uncond + (cond - uncond) * cfg;
  };
  const at::Tensor out =
      engine::run_sampler(args.at("sampler").get<std::string>(), denoise, inputs.at("x"), sigmas,
                          args.at("noise_seed").get<uint64_t>(), {});
  return {{"out", out}};
}

DF_PROBE_COMMAND("schedule", schedule);
DF_PROBE_COMMAND("schedule_function", schedule_function);
DF_PROBE_COMMAND("brownian", brownian);
DF_PROBE_COMMAND("noise", noise);
DF_PROBE_COMMAND("sample", sample);

}  // namespace
}  // namespace df::probe
