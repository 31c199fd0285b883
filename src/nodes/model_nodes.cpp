// Node implementations for loading, prompting, latents and sampling.
#include "core/error.h"
#include "engine/ksampler.h"
#include "engine/latent_preview.h"
#include "image/image.h"
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

void stage(const RunEnvironment& env, const NodeContext& ctx, const char* name) {
  if (env.on_stage) env.on_stage(ctx.node_id(), name);
}

// The latent after a sampler step as a small JPEG (latent2rgb), for live previews.
std::vector<uint8_t> preview_jpeg(const at::Tensor& denoised, engine::Family family) {
  const engine::PreviewPixels pixels = engine::latent_preview(denoised, family);
  Image8 image;
  image.width = pixels.width;
  image.height = pixels.height;
  image.channels = 3;
  image.pixels = pixels.rgb;
  return encode_image(image, ImageFormat::kJpeg, EmbeddedMetadata{}, 90);
}

engine::SamplerHooks hooks_for(NodeContext& ctx, const RunEnvironment& env, engine::Family family) {
  engine::SamplerHooks hooks;
  hooks.on_step = [&ctx](int step, int total) { ctx.report_progress(step, total); };
  hooks.should_cancel = [&ctx] { return ctx.canceled(); };
  if (env.on_preview) {
    hooks.on_denoised = [&ctx, &env, family](const at::Tensor& denoised) {
      env.on_preview(ctx.node_id(), preview_jpeg(denoised, family));
    };
  }
  return hooks;
}

std::vector<Value> sample_latent(const NodeInputs& in, NodeContext& ctx, const RunEnvironment& env,
                                 const engine::KSamplerParams& params) {
  const auto& model = in.get<ModelValue>("model");
  const auto& positive = in.get<ConditioningValue>("positive");
  const auto& negative = in.get<ConditioningValue>("negative");
  const auto& latent = in.get<LatentValue>("latent_image");
  at::Tensor out = engine::ksample(*model.model, positive.conditioning, negative.conditioning,
                                   latent.samples, params, hooks_for(ctx, env, model.model->family));
  return {Value::of("LATENT", LatentValue{out})};
}

bool enabled(const NodeInputs& in, const char* name) {
  const std::string value = in.get_string(name);
  if (value != "enable" && value != "disable") {
    throw Error(ErrorCode::kInvalidArgument, std::string(name) + " must be enable or disable");
  }
  return value == "enable";
}

}  // namespace

void register_model_nodes(graph::NodeImplRegistry& registry, CheckpointStore& store,
                          const RunEnvironment& env) {
  add_function_node(registry, "CheckpointLoaderSimple", [&store, &env](const NodeInputs& in, NodeContext& ctx) {
    stage(env, ctx, "load_model");
    auto bundle = store.get(in.get_string("ckpt_name"));
    return std::vector<Value>{Value::of("MODEL", ModelValue{bundle->model}),
                              Value::of("CLIP", ClipValue{bundle->clip}),
                              Value::of("VAE", VaeValue{bundle->vae})};
  });

  add_function_node(registry, "CLIPTextEncode", [&env](const NodeInputs& in, NodeContext& ctx) {
    stage(env, ctx, "encode_prompt");
    const auto& clip = in.get<ClipValue>("clip");
    return std::vector<Value>{
        Value::of("CONDITIONING", ConditioningValue{clip.clip->encode(in.get_string("text"))})};
  });

  add_function_node(registry, "EmptyLatentImage", [](const NodeInputs& in, NodeContext&) {
    const int64_t width = in.get_int("width"), height = in.get_int("height");
    const int64_t batch = in.get_int("batch_size");
    at::Tensor zeros = at::zeros({batch, 4, height / 8, width / 8}, at::kFloat);
    return std::vector<Value>{Value::of("LATENT", LatentValue{zeros})};
  });

  add_function_node(registry, "KSampler", [&env](const NodeInputs& in, NodeContext& ctx) {
    stage(env, ctx, "sample");
    engine::KSamplerParams params;
    params.seed = in.get_uint("seed");
    params.steps = static_cast<int>(in.get_int("steps"));
    params.cfg = in.get_float("cfg");
    params.sampler = in.get_string("sampler_name");
    params.scheduler = in.get_string("scheduler");
    params.denoise = in.get_float("denoise");
    return sample_latent(in, ctx, env, params);
  });

  add_function_node(registry, "KSamplerAdvanced", [&env](const NodeInputs& in, NodeContext& ctx) {
    stage(env, ctx, "sample");
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
    return sample_latent(in, ctx, env, params);
  });

  add_function_node(registry, "VAEDecode", [&env](const NodeInputs& in, NodeContext& ctx) {
    stage(env, ctx, "decode");
    const auto& vae = in.get<VaeValue>("vae");
    return std::vector<Value>{
        Value::of("IMAGE", ImageValue{vae.vae->decode(in.get<LatentValue>("samples").samples)})};
  });

  add_function_node(registry, "VAEEncode", [&env](const NodeInputs& in, NodeContext& ctx) {
    stage(env, ctx, "encode_image");
    const auto& vae = in.get<VaeValue>("vae");
    return std::vector<Value>{
        Value::of("LATENT", LatentValue{vae.vae->encode(in.get<ImageValue>("pixels").pixels)})};
  });
}

}  // namespace df::nodes
