// Sampling nodes: KSampler and KSamplerAdvanced over the engine's samplers and schedulers, and the
// custom-sampling nodes (custom_nodes.cpp).
#include "core/error.h"
#include "engine/ksampler.h"
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/latent_previewer.h"
#include "nodes/node_values.h"
#include "nodes/packs/sampling/sampler_hooks.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

std::vector<Value> sample_latent(const NodeInputs& in, NodeContext& ctx, NodeResources resources,
                                 engine::KSamplerParams params) {
  const auto model = in.get<ModelValue>("model").model.patched();
  const auto& positive = in.get<ConditioningValue>("positive");
  const auto& negative = in.get<ConditioningValue>("negative");
  LatentValue latent = in.get<LatentValue>("latent_image");
  params.batch_index = latent.batch_index;
  params.noise_mask = latent.noise_mask;
  latent.samples = engine::fix_empty_latent_channels(model->latent_format, latent.samples);
  latent.samples = engine::ksample(*model, positive.entries, negative.entries, latent.samples,
                                   params, sampler_hooks(ctx, resources, model->family));
  return {Value::of("LATENT", std::move(latent))};
}

bool enabled(const NodeInputs& in, const char* name) {
  const std::string value = in.get_string(name);
  if (value != "enable" && value != "disable") {
    throw Error(ErrorCode::kInvalidArgument, std::string(name) + " must be enable or disable");
  }
  return value == "enable";
}

}  // namespace

engine::SamplerHooks sampler_hooks(NodeContext& ctx, NodeResources resources,
                                   engine::Family family) {
  engine::SamplerHooks hooks;
  hooks.on_step = [&ctx](int step, int total) { ctx.report_progress(step, total); };
  hooks.should_cancel = [&ctx] { return ctx.canceled(); };
  if (resources.env.on_preview) {
    auto previewer = std::make_shared<const LatentPreviewer>(resources.models, family);
    hooks.on_denoised = [&ctx, &env = resources.env, previewer](const at::Tensor& denoised) {
      env.on_preview(ctx.node_id(), previewer->jpeg(denoised));
    };
  }
  return hooks;
}

void register_sampling_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  add_function_node(registry, "KSampler", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "sample");
    engine::KSamplerParams params;
    params.seed = in.get_uint("seed");
    params.steps = static_cast<int>(in.get_int("steps"));
    params.cfg = in.get_float("cfg");
    params.sampler = in.get_string("sampler_name");
    params.scheduler = in.get_string("scheduler");
    params.denoise = in.get_float("denoise");
    return sample_latent(in, ctx, resources, params);
  });

  add_function_node(registry, "KSamplerAdvanced", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "sample");
    engine::KSamplerParams params;
    params.add_noise = enabled(in, "add_noise");
    params.seed = in.get_uint("noise_seed");
    params.steps = static_cast<int>(in.get_int("steps"));
    params.cfg = in.get_float("cfg");
    params.sampler = in.get_string("sampler_name");
    params.scheduler = in.get_string("scheduler");
    params.start_at_step = static_cast<int>(in.get_int("start_at_step"));
    params.end_at_step = static_cast<int>(in.get_int("end_at_step"));
    params.return_with_leftover_noise = enabled(in, "return_with_leftover_noise");
    return sample_latent(in, ctx, resources, params);
  });

  register_custom_sampling_nodes(registry, resources);
}

}  // namespace df::nodes
