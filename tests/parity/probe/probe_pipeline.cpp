// Probe command "txt2img": the engine's whole text-to-image path (conditioning, guided denoiser,
// sampler, VAE decode) from given initial latents and sigmas, for comparison with diffusers.
#include "engine/checkpoint_bundle.h"
#include "engine/ksampler.h"
#include "probe.h"

namespace {

// args: {"path", "prompt", "negative", "cfg", "sampler", "noise_seed", "timesteps": "nearest" |
// "interpolated", "dtype": "float32" (default) | "bfloat16"}; inputs: "latents" (the
// noised start x at sigmas[0], [B,4,h,w]), "sigmas" (descending, ending in 0).
// outputs: "latents" (final, sampler space), "image" ([B,3,H,W] in [0,1]), "context", "pooled".
df::engine::TensorMap txt2img(const nlohmann::json& args, const df::engine::TensorMap& inputs) {
  at::InferenceMode guard;
  df::engine::CheckpointBundle bundle = df::engine::load_checkpoint_bundle(
      {args.at("path").get<std::string>(), "cpu", args.value("dtype", std::string("float32")),
       args.value("clip_vocab_dir", "")});
  const df::engine::Conditioning positive = bundle.clip->encode(args.at("prompt").get<std::string>());
  const df::engine::Conditioning negative = bundle.clip->encode(args.value("negative", ""));
  const at::Tensor& x = inputs.at("latents");
  df::engine::Denoiser denoise = df::engine::make_guided_denoiser(
      *bundle.model, {positive}, {negative}, args.value("cfg", 7.0), x.size(2) * 8, x.size(3) * 8,
      args.value("timesteps", "nearest") == "interpolated"
          ? df::engine::TimestepMapping::kInterpolated
          : df::engine::TimestepMapping::kNearest);
  at::Tensor out = df::engine::run_sampler(args.value("sampler", "euler"), denoise, x,
                                           inputs.at("sigmas").to(at::kFloat),
                                           args.value("noise_seed", uint64_t{0}), {});
  at::Tensor image = bundle.vae->decode(out / bundle.model->latent_format.scale).permute({0, 3, 1, 2});
  df::engine::TensorMap result{{"latents", out}, {"image", image.contiguous()},
                               {"context", positive.context}};
  if (positive.pooled.defined()) result.emplace("pooled", positive.pooled);
  return result;
}

DF_PROBE_COMMAND("txt2img", txt2img);

}  // namespace
