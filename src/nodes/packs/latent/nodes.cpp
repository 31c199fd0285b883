// Latent nodes: empty latents, VAE coding (whole and tiled), resizing, compositing and batches.
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/latent_ops.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

std::vector<Value> latent_output(LatentValue latent) {
  return {Value::of("LATENT", std::move(latent))};
}

// `latent` with its samples replaced (ComfyUI's samples.copy() then a new "samples").
std::vector<Value> with_samples(const LatentValue& latent, at::Tensor samples) {
  LatentValue out = latent;
  out.samples = std::move(samples);
  return latent_output(std::move(out));
}

const LatentValue& latent_input(const NodeInputs& in, const char* name = "samples") {
  return in.get<LatentValue>(name);
}

void register_vae_nodes(graph::NodeImplRegistry& registry, const RunEnvironment& env) {
  add_function_node(registry, "VAEDecode", [&env](const NodeInputs& in, NodeContext& ctx) {
    report_stage(env, ctx, "decode");
    const auto& vae = in.get<VaeValue>("vae");
    return std::vector<Value>{
        Value::of("IMAGE", ImageValue{vae.vae->decode(latent_input(in).samples)})};
  });

  add_function_node(registry, "VAEEncode", [&env](const NodeInputs& in, NodeContext& ctx) {
    report_stage(env, ctx, "encode_image");
    const auto& vae = in.get<VaeValue>("vae");
    return latent_output(LatentValue{vae.vae->encode(in.get<ImageValue>("pixels").pixels)});
  });

  add_function_node(registry, "VAEEncodeForInpaint", [&env](const NodeInputs& in, NodeContext& ctx) {
    report_stage(env, ctx, "encode_image");
    const auto& vae = in.get<VaeValue>("vae");
    InpaintEncodeInputs inputs =
        inpaint_encode_inputs(in.get<ImageValue>("pixels").pixels, in.get<MaskValue>("mask").mask,
                              in.get_int("grow_mask_by"), vae.vae->downscale());
    LatentValue latent{vae.vae->encode(inputs.pixels)};
    latent.noise_mask = std::move(inputs.noise_mask);
    return latent_output(std::move(latent));
  });

  add_function_node(registry, "VAEDecodeTiled", [&env](const NodeInputs& in, NodeContext& ctx) {
    report_stage(env, ctx, "decode");
    const auto& vae = in.get<VaeValue>("vae");
    at::Tensor pixels = decode_tiled(*vae.vae, latent_input(in).samples, in.get_int("tile_size"),
                                     in.get_int("overlap"), [&ctx] { ctx.throw_if_canceled(); });
    return std::vector<Value>{Value::of("IMAGE", ImageValue{std::move(pixels)})};
  });

  add_function_node(registry, "VAEEncodeTiled", [&env](const NodeInputs& in, NodeContext& ctx) {
    report_stage(env, ctx, "encode_image");
    const auto& vae = in.get<VaeValue>("vae");
    return latent_output(LatentValue{
        encode_tiled(*vae.vae, in.get<ImageValue>("pixels").pixels, in.get_int("tile_size"),
                     in.get_int("overlap"), [&ctx] { ctx.throw_if_canceled(); })});
  });
}

void register_resize_and_composite_nodes(graph::NodeImplRegistry& registry) {
  add_function_node(registry, "LatentUpscale", [](const NodeInputs& in, NodeContext&) {
    return latent_output(upscale_latent(latent_input(in), in.get_string("upscale_method"),
                                        in.get_int("width"), in.get_int("height"),
                                        in.get_string("crop")));
  });

  add_function_node(registry, "LatentUpscaleBy", [](const NodeInputs& in, NodeContext&) {
    return latent_output(upscale_latent_by(latent_input(in), in.get_string("upscale_method"),
                                           in.get_float("scale_by")));
  });

  add_function_node(registry, "LatentComposite", [](const NodeInputs& in, NodeContext&) {
    const LatentValue& to = latent_input(in, "samples_to");
    return with_samples(to, composite_latents(to.samples, latent_input(in, "samples_from").samples,
                                              in.get_int("x"), in.get_int("y"),
                                              in.get_int("feather")));
  });

  add_function_node(registry, "LatentCompositeMasked", [](const NodeInputs& in, NodeContext&) {
    const LatentValue& destination = latent_input(in, "destination");
    const at::Tensor mask = in.has("mask") ? in.get<MaskValue>("mask").mask : at::Tensor();
    return with_samples(destination,
                        composite_latents_masked(destination.samples,
                                                 latent_input(in, "source").samples,
                                                 in.get_int("x"), in.get_int("y"),
                                                 in.get_bool("resize_source"), mask));
  });

  add_function_node(registry, "LatentBlend", [](const NodeInputs& in, NodeContext&) {
    const LatentValue& first = latent_input(in, "samples1");
    return with_samples(first, blend_latents(first.samples, latent_input(in, "samples2").samples,
                                             in.get_float("blend_factor")));
  });
}

void register_batch_nodes(graph::NodeImplRegistry& registry) {
  add_function_node(registry, "EmptyLatentImage", [](const NodeInputs& in, NodeContext&) {
    const int64_t width = in.get_int("width"), height = in.get_int("height");
    const int64_t batch = in.get_int("batch_size");
    return latent_output(LatentValue{at::zeros({batch, 4, height / 8, width / 8}, at::kFloat)});
  });

  add_function_node(registry, "RepeatLatentBatch", [](const NodeInputs& in, NodeContext&) {
    return latent_output(repeat_latent_batch(latent_input(in), in.get_int("amount")));
  });

  add_function_node(registry, "LatentFromBatch", [](const NodeInputs& in, NodeContext&) {
    return latent_output(
        latent_from_batch(latent_input(in), in.get_int("batch_index"), in.get_int("length")));
  });

  add_function_node(registry, "LatentBatch", [](const NodeInputs& in, NodeContext&) {
    return latent_output(
        batch_latents(latent_input(in, "samples1"), latent_input(in, "samples2")));
  });
  // ComfyUI keeps the mask as [N, 1, H, W]; sampling resizes it to the latent.
  add_function_node(registry, "SetLatentNoiseMask", [](const NodeInputs& in, NodeContext&) {
    LatentValue latent = latent_input(in);
    const at::Tensor& mask = in.get<MaskValue>("mask").mask;
    latent.noise_mask = mask.reshape({-1, 1, mask.size(-2), mask.size(-1)});
    return latent_output(std::move(latent));
  });
}

}  // namespace

void register_latent_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  register_vae_nodes(registry, resources.env);
  register_resize_and_composite_nodes(registry);
  register_batch_nodes(registry);
}

}  // namespace df::nodes
