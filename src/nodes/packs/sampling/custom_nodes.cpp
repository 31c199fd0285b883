// Custom-sampling nodes (ComfyUI's comfy_extras/nodes_custom_sampler.py): samplers, schedulers,
// sigma tools, noises and guiders, combined by SamplerCustom and SamplerCustomAdvanced.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "engine/custom_sampling.h"
#include "engine/ksampler.h"
#include "engine/noise.h"
#include "engine/schedulers.h"
#include "nodes/function_node.h"
#include "nodes/node_values.h"
#include "nodes/packs/sampling/sampler_hooks.h"
#include "nodes/packs/sampling/sigma_ops.h"

namespace df::nodes {
namespace {

// Python's sigmas[start:stop] (negative indices count from the end; out-of-range ones clamp).
at::Tensor python_slice(const at::Tensor& sigmas, int64_t start, int64_t stop) {
  const int64_t size = sigmas.size(0);
  auto clamp = [size](int64_t index) {
    return std::clamp<int64_t>(index < 0 ? index + size : index, 0, size);
  };
  const int64_t from = clamp(start), to = std::max(from, clamp(stop));
  return sigmas.narrow(0, from, to - from).clone();
}

}  // namespace

std::pair<at::Tensor, at::Tensor> split_sigmas(const at::Tensor& sigmas, int64_t step) {
  const int64_t size = sigmas.size(0);
  return {python_slice(sigmas, 0, step + 1), python_slice(sigmas, step, size)};
}

std::pair<at::Tensor, at::Tensor> split_sigmas_denoise(const at::Tensor& sigmas, double denoise) {
  const int64_t size = sigmas.size(0);
  const int64_t steps = std::max<int64_t>(size - 1, 0);
  const auto kept = static_cast<int64_t>(std::nearbyint(static_cast<double>(steps) * denoise));
  return {python_slice(sigmas, 0, -kept), python_slice(sigmas, -(kept + 1), size)};
}

at::Tensor flip_sigmas(const at::Tensor& sigmas) {
  if (sigmas.numel() == 0) return sigmas;
  at::Tensor flipped = sigmas.flip(0);
  if (flipped[0].item<double>() == 0.0) flipped[0] = 0.0001;
  return flipped;
}

namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

Value sigmas_value(at::Tensor sigmas) { return Value::of("SIGMAS", SigmasValue{std::move(sigmas)}); }

const at::Tensor& input_sigmas(const NodeInputs& in) { return in.get<SigmasValue>("sigmas").sigmas; }

int input_steps(const NodeInputs& in) { return static_cast<int>(in.get_int("steps")); }

SamplerValue select_sampler(const std::string& name) {
  const auto& names = engine::sampler_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    throw Error(ErrorCode::kInvalidArgument, "unknown sampler '" + name + "'");
  }
  return SamplerValue{name};
}

// The noise a sample starts from: ComfyUI's seeded initial noise for each latent of the batch
// (batch_index respected), or zeros.
at::Tensor initial_noise(const NoiseValue& noise, const LatentValue& latent) {
  if (!noise.random) return at::zeros(latent.samples.sizes(), at::kFloat);
  return engine::comfy_initial_noise(latent.samples.sizes().vec(), noise.seed, latent.batch_index);
}

// The pixel size the denoiser conditions on (SDXL's size conditioning, areas).
std::pair<int64_t, int64_t> pixel_size(const LatentValue& latent) {
  return {latent.samples.size(2) * 8, latent.samples.size(3) * 8};
}

// SamplerCustom(Advanced)'s run: the latent sampled along the sigmas with `denoise`; outputs the
// result and the last step's x0 estimate, both keeping the latent's noise mask and batch index.
std::vector<Value> sample_with(const NodeInputs& in, NodeContext& ctx, NodeResources resources,
                               const engine::DiffusionModel& model,
                               const engine::Denoiser& denoise, const NoiseValue& noise) {
  LatentValue latent = in.get<LatentValue>("latent_image");
  latent.samples = engine::fix_empty_latent_channels(model.latent_format, latent.samples);
  engine::CustomSampleResult result = engine::sample_custom(
      model, denoise, in.get<SamplerValue>("sampler").name, input_sigmas(in), latent.samples,
      initial_noise(noise, latent), noise.seed, sampler_hooks(ctx, resources, model.family),
      latent.noise_mask);
  LatentValue output = latent, denoised = latent;
  output.samples = result.samples;
  denoised.samples = result.denoised.defined() ? result.denoised : result.samples;
  return {Value::of("LATENT", std::move(output)), Value::of("LATENT", std::move(denoised))};
}

void register_samplers(graph::NodeImplRegistry& registry, NodeResources resources) {
  add_function_node(registry, "KSamplerSelect", [](const NodeInputs& in, NodeContext&) {
    return std::vector<Value>{Value::of("SAMPLER", select_sampler(in.get_string("sampler_name")))};
  });

  add_function_node(registry, "SamplerCustom", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "sample");
    const auto model = in.get<ModelValue>("model").model.patched();
    const auto& latent = in.get<LatentValue>("latent_image");
    const auto [height, width] = pixel_size(latent);
    const engine::Denoiser denoise = engine::make_guided_denoiser(
        *model, in.get<ConditioningValue>("positive").entries,
        in.get<ConditioningValue>("negative").entries, in.get_float("cfg"), height, width,
        engine::TimestepMapping::kNearest, {latent.samples, latent.noise_mask},
        in.get_uint("noise_seed"));
    const NoiseValue noise{in.get_bool("add_noise"), in.get_uint("noise_seed")};
    return sample_with(in, ctx, resources, *model, denoise, noise);
  });

  add_function_node(registry, "SamplerCustomAdvanced",
                    [resources](const NodeInputs& in, NodeContext& ctx) {
                      report_stage(resources.env, ctx, "sample");
                      const auto& guider = in.get<GuiderValue>("guider");
                      const auto model = guider.model.patched();
                      const auto& latent = in.get<LatentValue>("latent_image");
                      const auto [height, width] = pixel_size(latent);
                      const auto& noise = in.get<NoiseValue>("noise");
                      const engine::Denoiser denoise = guider.denoiser(
                          *model, height, width, {latent.samples, latent.noise_mask}, noise.seed);
                      return sample_with(in, ctx, resources, *model, denoise, noise);
                    });
}

void register_schedulers(graph::NodeImplRegistry& registry) {
  auto add_scheduler = [&registry](const char* name, auto sigmas_of) {
    add_function_node(registry, name, [sigmas_of](const NodeInputs& in, NodeContext&) {
      return std::vector<Value>{sigmas_value(sigmas_of(in))};
    });
  };
  add_scheduler("BasicScheduler", [](const NodeInputs& in) {
    const auto model = in.get<ModelValue>("model").model.patched();
    return engine::basic_scheduler_sigmas(model->schedule, in.get_string("scheduler"),
                                          input_steps(in), in.get_float("denoise"));
  });
  add_scheduler("KarrasScheduler", [](const NodeInputs& in) {
    return engine::karras_sigmas(input_steps(in), in.get_float("sigma_min"),
                                 in.get_float("sigma_max"), in.get_float("rho"));
  });
  add_scheduler("ExponentialScheduler", [](const NodeInputs& in) {
    return engine::exponential_sigmas(input_steps(in), in.get_float("sigma_min"),
                                      in.get_float("sigma_max"));
  });
  add_scheduler("PolyexponentialScheduler", [](const NodeInputs& in) {
    return engine::polyexponential_sigmas(input_steps(in), in.get_float("sigma_min"),
                                          in.get_float("sigma_max"), in.get_float("rho"));
  });
  add_scheduler("SDTurboScheduler", [](const NodeInputs& in) {
    const auto model = in.get<ModelValue>("model").model.patched();
    return engine::sd_turbo_sigmas(model->schedule, input_steps(in), in.get_float("denoise"));
  });
}

void register_sigma_tools(graph::NodeImplRegistry& registry) {
  auto split_outputs = [](std::pair<at::Tensor, at::Tensor> parts) {
    return std::vector<Value>{sigmas_value(std::move(parts.first)),
                              sigmas_value(std::move(parts.second))};
  };
  add_function_node(registry, "SplitSigmas", [split_outputs](const NodeInputs& in, NodeContext&) {
    return split_outputs(split_sigmas(input_sigmas(in), in.get_int("step")));
  });
  add_function_node(registry, "SplitSigmasDenoise",
                    [split_outputs](const NodeInputs& in, NodeContext&) {
                      return split_outputs(
                          split_sigmas_denoise(input_sigmas(in), in.get_float("denoise")));
                    });
  add_function_node(registry, "FlipSigmas", [](const NodeInputs& in, NodeContext&) {
    return std::vector<Value>{sigmas_value(flip_sigmas(input_sigmas(in)))};
  });
}

Value guider_value(const NodeInputs& in, decltype(GuiderValue::denoiser) denoiser) {
  return Value::of("GUIDER", GuiderValue{in.get<ModelValue>("model").model, std::move(denoiser)});
}

void register_guiders(graph::NodeImplRegistry& registry) {
  add_function_node(registry, "CFGGuider", [](const NodeInputs& in, NodeContext&) {
    const auto positive = in.get<ConditioningValue>("positive").entries;
    const auto negative = in.get<ConditioningValue>("negative").entries;
    const double cfg = in.get_float("cfg");
    return std::vector<Value>{guider_value(
        in, [positive, negative, cfg](const engine::DiffusionModel& model, int64_t h, int64_t w,
                                      const engine::ConcatFallback& latent, uint64_t seed) {
          return engine::make_guided_denoiser(model, positive, negative, cfg, h, w,
                                              engine::TimestepMapping::kNearest, latent, seed);
        })};
  });
  add_function_node(registry, "BasicGuider", [](const NodeInputs& in, NodeContext&) {
    const auto conditioning = in.get<ConditioningValue>("conditioning").entries;
    return std::vector<Value>{
        guider_value(in, [conditioning](const engine::DiffusionModel& model, int64_t h, int64_t w,
                                        const engine::ConcatFallback& latent, uint64_t seed) {
          return engine::make_guided_denoiser(model, conditioning, {}, 1.0, h, w,
                                              engine::TimestepMapping::kNearest, latent, seed);
        })};
  });
  add_function_node(registry, "DualCFGGuider", [](const NodeInputs& in, NodeContext&) {
    const auto cond1 = in.get<ConditioningValue>("cond1").entries;
    const auto cond2 = in.get<ConditioningValue>("cond2").entries;
    const auto negative = in.get<ConditioningValue>("negative").entries;
    const double cfg_conds = in.get_float("cfg_conds");
    const double cfg_cond2_negative = in.get_float("cfg_cond2_negative");
    const std::string style = in.get_string("style");
    if (style != "regular" && style != "nested") {
      throw Error(ErrorCode::kInvalidArgument, "style must be regular or nested");
    }
    return std::vector<Value>{guider_value(
        in, [=](const engine::DiffusionModel& model, int64_t h, int64_t w,
                const engine::ConcatFallback& latent, uint64_t seed) {
          return engine::make_dual_cfg_denoiser(model, cond1, cond2, negative, cfg_conds,
                                                cfg_cond2_negative, style == "nested", h, w,
                                                latent, seed);
        })};
  });
}

void register_noises(graph::NodeImplRegistry& registry) {
  add_function_node(registry, "RandomNoise", [](const NodeInputs& in, NodeContext&) {
    return std::vector<Value>{Value::of("NOISE", NoiseValue{true, in.get_uint("noise_seed")})};
  });
  add_function_node(registry, "DisableNoise", [](const NodeInputs&, NodeContext&) {
    return std::vector<Value>{Value::of("NOISE", NoiseValue{false, 0})};
  });
}

}  // namespace

void register_custom_sampling_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  register_samplers(registry, resources);
  register_schedulers(registry);
  register_sigma_tools(registry);
  register_guiders(registry);
  register_noises(registry);
}

}  // namespace df::nodes
