// Probe commands for SD3's whole pipeline on the tiny split files create-tiny writes: the text
// side's conditionings, the KSampler graph's latents and image, and the MMDiT as diffusers reads it.
#include <string>

#include "engine/checkpoint_bundle.h"
#include "engine/component_loaders.h"
#include "engine/family/dit_text_encoders.h"
#include "engine/family/sd3/sd3_diffusers_writer.h"
#include "engine/family/sd3/sd3_prompt_encoder.h"
#include "engine/family/sd3/sd3_tiny.h"
#include "engine/ksampler.h"
#include "engine/noise_schedule.h"
#include "engine/tiny_model.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

// The CLIP of args["files"] (text_encoders/ names; default CLIP-G, CLIP-L and T5-XXL) in float32
// on the CPU, as TripleCLIPLoader / DualCLIPLoader / CLIPLoader type sd3 load them.
std::shared_ptr<const engine::PromptEncoder> sd3_text(const json& args) {
  const std::string root = args.at("models_dir").get<std::string>() + "/text_encoders/";
  const auto names = args.value("files", std::vector<std::string>{engine::sd3::kClipGFile,
                                                                  engine::sd3::kClipLFile,
                                                                  engine::sd3::kT5File});
  std::vector<std::string> paths;
  for (const auto& name : names) paths.push_back(root + name);
  return engine::load_prompt_encoder(paths, "sd3", "cpu", "float32", "");
}

// args {"models_dir", "prompt", "files"?, "sd3_node"?: {"clip_l", "clip_g", "t5xxl",
// "empty_padding"}} -> "context", "pooled": CLIPTextEncode's (or CLIPTextEncodeSD3's)
// conditioning.
TensorMap sd3_encode(const json& args, const TensorMap&) {
  const auto encoder = sd3_text(args);
  engine::Conditioning cond;
  if (args.contains("sd3_node")) {
    const json& node = args.at("sd3_node");
    cond = dynamic_cast<const engine::sd3::Sd3PromptEncoder&>(*encoder).encode_sd3(
        node.at("clip_l"), node.at("clip_g"), node.at("t5xxl"),
        node.at("empty_padding").get<std::string>() != "none");
  } else {
    cond = encoder->encode(args.at("prompt").get<std::string>());
  }
  return {{"context", cond.context}, {"pooled", cond.pooled}};
}

// args {"models_dir", "prompt", "negative", "seed", "steps", "cfg", "shift", "sampler",
// "scheduler", "width", "height"} -> "latent" (KSampler's result, VAE space), "image" [1, H, W, 3]
// and both conditionings ("context", "pooled", "negative_context", "negative_pooled"): the SD3.5
// split-file graph (UNETLoader, TripleCLIPLoader, ModelSamplingSD3, EmptySD3LatentImage, KSampler,
// VAELoader, VAEDecode) in float32 on the CPU.
TensorMap sd3_pipeline(const json& args, const TensorMap&) {
  const std::string root = args.at("models_dir").get<std::string>();
  engine::DiffusionModel model = *engine::load_diffusion_model(
      root + "/diffusion_models/" + engine::sd3::kDiffusionModelFile, "cpu", "float32");
  model.schedule = engine::NoiseSchedule::discrete_flow(args.at("shift").get<double>(), 1000.0);
  const auto encoder = sd3_text(args);
  const engine::Conditioning positive = encoder->encode(args.at("prompt").get<std::string>());
  const engine::Conditioning negative = encoder->encode(args.at("negative").get<std::string>());
  engine::KSamplerParams params;
  params.seed = args.at("seed").get<uint64_t>();
  params.steps = args.at("steps").get<int>();
  params.cfg = args.at("cfg").get<double>();
  params.sampler = args.at("sampler").get<std::string>();
  params.scheduler = args.at("scheduler").get<std::string>();
  const at::Tensor latent = at::zeros(
      {1, 16, args.at("height").get<int64_t>() / 8, args.at("width").get<int64_t>() / 8});
  const at::Tensor out = engine::ksample(model, {positive}, {negative}, latent, params, {});
  const auto vae = engine::load_vae_codec(root + "/vae/" + engine::sd3::kVaeFile, "cpu");
  return {{"latent", out},
          {"image", vae->decode(out)},
          {"context", positive.context},
          {"pooled", positive.pooled},
          {"negative_context", negative.context},
          {"negative_pooled", negative.pooled}};
}

// args {"dir", "seed"}: the MMDiT create-tiny writes with `seed` as a diffusers
// SD3Transformer2DModel folder in args["dir"].
TensorMap sd3_tiny_diffusers_transformer(const json& args, const TensorMap&) {
  const engine::sd3::Sd3Config config = engine::sd3::tiny_sd3_split_config();
  engine::sd3::write_sd3_diffusers_transformer(
      args.at("dir").get<std::string>(), config,
      engine::tiny_random_tensors(engine::sd3::sd3_transformer_layout(config),
                                  args.at("seed").get<uint64_t>()));
  return {};
}

DF_PROBE_COMMAND("sd3_encode", sd3_encode);
DF_PROBE_COMMAND("sd3_pipeline", sd3_pipeline);
DF_PROBE_COMMAND("sd3_tiny_diffusers_transformer", sd3_tiny_diffusers_transformer);

}  // namespace
}  // namespace df::probe
