// Probe commands for inpainting and InstructPix2Pix models: one guided model call with the
// conditioning's extra inputs, and the extra inputs the conditioning nodes build.
#include "core/error.h"
#include "engine/checkpoint_bundle.h"
#include "engine/concat_conditioning.h"
#include "engine/ksampler.h"
#include "nodes/inpaint_ops.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

engine::CheckpointBundle load_bundle(const json& args) {
  engine::CheckpointLoadRequest request;
  request.path = args.at("path").get<std::string>();
  request.device = "cpu";
  request.dtype = "float32";
  request.clip_vocab_dir = args.value("clip_vocab_dir", "");
  return engine::load_checkpoint_bundle(request);
}

at::Tensor optional_input(const TensorMap& in, const char* name) {
  const auto found = in.find(name);
  return found == in.end() ? at::Tensor() : found->second;
}

// "concat_denoise": the model's denoised estimate of x at args.sigma (cfg 1) for one entry with
// the given context (and SDXL's pooled embedding) and optional concat_latent_image /
// concat_mask; optional "latent" and "noise_mask" are the sampled latent's (the inpainting
// fallback).
TensorMap concat_denoise(const json& args, const TensorMap& in) {
  const engine::CheckpointBundle bundle = load_bundle(args);
  engine::Conditioning cond;
  cond.context = in.at("context");
  cond.pooled = optional_input(in, "pooled");
  cond.concat_latent_image = optional_input(in, "concat_latent_image");
  cond.concat_mask = optional_input(in, "concat_mask");
  const at::Tensor& x = in.at("x");
  const engine::ConcatFallback fallback{optional_input(in, "latent"),
                                        optional_input(in, "noise_mask")};
  const engine::Denoiser denoise = engine::make_guided_denoiser(
      *bundle.model, {cond}, {}, 1.0, x.size(2) * 8, x.size(3) * 8,
      engine::TimestepMapping::kNearest, fallback);
  return {{"denoised", denoise(x, args.at("sigma").get<double>()).contiguous()}};
}

// The extra channels a model reads for `cond` over a latent of `latent`'s size, in order.
at::Tensor model_concat(const engine::DiffusionModel& model, const engine::Conditioning& cond,
                        const at::Tensor& latent) {
  const std::vector<at::Tensor> parts =
      engine::concat_inputs(model, cond, {}, latent.size(2), latent.size(3));
  return at::cat(parts, 1).contiguous();
}

// "inpaint_conditioning": InpaintModelConditioning on pixels [B,H,W,3] and mask [N,H,W] with the
// model's VAE; returns the concat channels the model then reads, the latent and its noise mask.
TensorMap inpaint_conditioning(const json& args, const TensorMap& in) {
  const engine::CheckpointBundle bundle = load_bundle(args);
  const nodes::InpaintConditioning made = nodes::inpaint_model_conditioning(
      *bundle.vae, in.at("pixels"), in.at("mask"), args.value("noise_mask", true));
  engine::Conditioning cond;
  cond.concat_latent_image = made.concat_latent_image;
  cond.concat_mask = made.concat_mask;
  TensorMap out = {{"concat", model_concat(*bundle.model, cond, made.latent.samples)},
                   {"latent", made.latent.samples.contiguous()}};
  if (made.latent.noise_mask.defined()) {
    out.emplace("noise_mask", made.latent.noise_mask.contiguous());
  }
  return out;
}

// "ip2p_conditioning": InstructPixToPixConditioning on pixels [B,H,W,3]; returns the concat
// channels the model reads and the latent.
TensorMap ip2p_conditioning(const json& args, const TensorMap& in) {
  const engine::CheckpointBundle bundle = load_bundle(args);
  const nodes::InstructPix2PixConditioning made =
      nodes::instruct_pix2pix_conditioning(*bundle.vae, in.at("pixels"));
  engine::Conditioning cond;
  cond.concat_latent_image = made.concat_latent_image;
  return {{"concat", model_concat(*bundle.model, cond, made.latent.samples)},
          {"latent", made.latent.samples.contiguous()}};
}

DF_PROBE_COMMAND("concat_denoise", concat_denoise);
DF_PROBE_COMMAND("inpaint_conditioning", inpaint_conditioning);
DF_PROBE_COMMAND("ip2p_conditioning", ip2p_conditioning);

}  // namespace
}  // namespace df::probe
