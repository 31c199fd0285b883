// Probe commands for FLUX.1's whole pipeline: create-tiny's split files through DualCLIPLoader's text
// side, UNETLoader's model with ModelSamplingFlux's shift, KSampler and VAEDecode; and the BFL
// transformer file as a diffusers folder for the reference pipeline.
#include <string>

#include "engine/checkpoint_bundle.h"
#include "engine/component_loaders.h"
#include "engine/family/dit_text_encoders.h"
#include "engine/family/flux/flux_config.h"
#include "engine/family/flux/flux_diffusers_writer.h"
#include "engine/family/flux/flux_prompt_encoder.h"
#include "engine/family/flux/flux_tiny.h"
#include "engine/ksampler.h"
#include "engine/noise_schedule.h"
#include "engine/safetensors_file.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

// args {"models_dir", "clip_l", "t5xxl", "files_order"?: "t5_first"|"clip_first"} -> "context"
// and "pooled": CLIPTextEncodeFlux's conditioning of the two texts (CLIPTextEncode's when equal).
engine::Conditioning encode(const json& args, const std::string& root) {
  std::vector<std::string> files = {root + "/text_encoders/" + engine::flux::kT5File,
                                    root + "/text_encoders/" + engine::flux::kClipLFile};
  if (args.value("files_order", "t5_first") == "clip_first") std::swap(files[0], files[1]);
  const auto encoder = engine::load_prompt_encoder(files, "flux", "cpu", "float32", "");
  const auto& flux = dynamic_cast<const engine::flux::FluxPromptEncoder&>(*encoder);
  return flux.encode_parts(args.at("clip_l").get<std::string>(), args.at("t5xxl").get<std::string>());
}

TensorMap flux_text(const json& args, const TensorMap&) {
  const engine::Conditioning cond = encode(args, args.at("models_dir").get<std::string>());
  return {{"context", cond.context}, {"pooled", cond.pooled}};
}

// args {"models_dir", "dev": bool, "clip_l", "t5xxl", "guidance" (dev), "seed", "steps", "shift"
// (ModelSamplingFlux's), "width", "height"} -> "context", "pooled", "latent" (KSampler euler /
// simple / cfg 1, VAE space) and "image" [1, H, W, 3] in [0, 1], float32 on the CPU.
TensorMap flux_pipeline(const json& args, const TensorMap&) {
  const std::string root = args.at("models_dir").get<std::string>();
  const bool dev = args.at("dev").get<bool>();
  const auto loaded = engine::load_diffusion_model(
      root + "/diffusion_models/" + (dev ? engine::flux::kDevModelFile : engine::flux::kSchnellModelFile),
      "cpu", "float32");
  engine::DiffusionModel model = *loaded;
  model.schedule = engine::NoiseSchedule::flux_flow(args.at("shift").get<double>());
  engine::Conditioning cond = encode(args, root);
  if (dev) cond.guidance = args.at("guidance").get<double>();
  engine::KSamplerParams params;
  params.seed = args.at("seed").get<uint64_t>();
  params.steps = args.at("steps").get<int>();
  params.cfg = 1.0;
  params.sampler = "euler";
  params.scheduler = "simple";
  const at::Tensor latent = at::zeros(
      {1, 16, args.at("height").get<int64_t>() / 8, args.at("width").get<int64_t>() / 8});
  const at::Tensor out = engine::ksample(model, {cond}, {cond}, latent, params, {});
  const auto vae = engine::load_vae_codec(root + "/vae/" + engine::flux::kVaeFile, "cpu");
  return {{"context", cond.context}, {"pooled", cond.pooled}, {"latent", out},
          {"image", vae->decode(out)}};
}

// args {"bfl" (a BFL-named transformer file), "out"}: writes it as a diffusers
// FluxTransformer2DModel folder (config inferred from the tensors).
TensorMap flux_diffusers_folder(const json& args, const TensorMap&) {
  const auto file = engine::SafetensorsFile::open(args.at("bfl").get<std::string>());
  engine::flux::KeyShapes shapes;
  std::vector<engine::RawTensor> tensors;
  for (const auto& info : file.tensors()) {
    shapes[info.name] = info.shape;
    const uint8_t* data = file.data(info);
    tensors.push_back({info.name, info.dtype, info.shape,
                       std::vector<uint8_t>(data, data + (info.end - info.begin))});
  }
  engine::flux::write_flux_diffusers_transformer(
      args.at("out").get<std::string>(), engine::flux::FluxConfig::infer_from_keys(shapes), tensors);
  return {};
}

}  // namespace

DF_PROBE_COMMAND("flux_diffusers_folder", flux_diffusers_folder);
DF_PROBE_COMMAND("flux_text", flux_text);
DF_PROBE_COMMAND("flux_pipeline", flux_pipeline);

}  // namespace df::probe
