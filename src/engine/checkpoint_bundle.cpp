// Loading a checkpoint into ready-to-run modules, device/dtype choice, VAE image conversion.
#include "engine/checkpoint_bundle.h"

#include <algorithm>
#include <variant>

#include "core/error.h"
#include "engine/checkpoint.h"
#include "engine/family/dit_checkpoints.h"
#include "engine/family/dit_pipelines.h"
#include "engine/family/families.h"
#include "engine/ldm_keys.h"
#include "engine/safetensors.h"
#include "engine/tensor_file.h"
#include "engine/unet_inputs.h"

namespace df::engine {
namespace {

at::ScalarType dtype_from_name(const std::string& name, bool cuda) {
  if (name == "auto") return cuda ? at::kHalf : at::kFloat;
  if (name == "float32" || name == "fp32") return at::kFloat;
  if (name == "float16" || name == "fp16") return at::kHalf;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown dtype '" + name + "' (use auto, float32, float16 or bfloat16)");
}

at::Device device_from_name(const std::string& name) {
  if (name == "auto") return at::hasCUDA() ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  if (name.rfind("cuda", 0) == 0 && !at::hasCUDA()) {
    throw Error(ErrorCode::kUnsupported, "device '" + name + "' requested but no CUDA GPU is usable");
  }
  try {
    return at::Device(name);
  } catch (const std::exception&) {
    throw Error(ErrorCode::kInvalidArgument, "unknown device '" + name + "' (use auto, cpu or cuda)");
  }
}

// The loader names text-encoder tensors as transformers saves them ("text_model.encoder...");
// ClipTextModel takes them relative to the text model, with "text_projection.weight" beside.
Weights text_model_weights(const Weights& loaded) {
  const std::string prefix = "text_model.";
  TensorMap tensors;
  for (const auto& key : loaded.keys()) {
    const bool nested = key.rfind(prefix, 0) == 0;
    tensors.emplace(nested ? key.substr(prefix.size()) : key, loaded.get(key));
  }
  return Weights(std::move(tensors));
}

}  // namespace

RuntimePlacement resolve_placement(const std::string& device, const std::string& dtype,
                                   Family family) {
  RuntimePlacement p;
  p.device = device_from_name(device);
  const bool cuda = p.device.is_cuda();
  p.dtype = dtype_from_name(dtype, cuda);
  if (!cuda && p.dtype == at::kHalf) {
    throw Error(ErrorCode::kUnsupported, "float16 runs only on CUDA; use float32 or bfloat16 on CPU");
  }
  // The DiT families overflow in float16 (ComfyUI runs them in bfloat16 where it can).
  if (dtype == "auto" && cuda && family_traits(family).diffusion_transformer) p.dtype = at::kBFloat16;
  const bool sdxl = family == Family::kSDXL || family == Family::kSDXLRefiner;
  p.vae_dtype = (sdxl && p.dtype == at::kHalf) ? at::kFloat : p.dtype;
  return p;
}

namespace {

int downscale_of(const Vae& vae) {
  return 1 << (static_cast<int>(vae.config().block_out_channels.size()) - 1);
}
int downscale_of(const TinyAutoencoder&) { return TinyAutoencoder::kDownscale; }

at::Tensor latent_mean(const Vae& vae, const at::Tensor& x) { return vae.encode(x).mean; }
at::Tensor latent_mean(const TinyAutoencoder& taesd, const at::Tensor& x) {
  return taesd.encode(x);
}

}  // namespace

int VaeCodec::downscale() const {
  return std::visit([](const auto& autoencoder) { return downscale_of(autoencoder); },
                    autoencoder_);
}

at::Tensor VaeCodec::decode(const at::Tensor& latents) const {
  at::InferenceMode guard;
  at::Tensor z = latents.to(placement_.device, placement_.vae_dtype);
  at::Tensor pixels =
      std::visit([&](const auto& autoencoder) { return autoencoder.decode(z); }, autoencoder_)
          .to(at::kFloat);
  pixels = ((pixels + 1.0) / 2.0).clamp(0.0, 1.0);
  return pixels.permute({0, 2, 3, 1}).contiguous().cpu();
}

at::Tensor VaeCodec::encode(const at::Tensor& images) const {
  at::InferenceMode guard;
  // Like ComfyUI's VAEEncode: crop to a multiple of the VAE's downscale factor, centred.
  const int64_t step = downscale();
  const int64_t h = images.size(1) / step * step;
  const int64_t w = images.size(2) / step * step;
  if (h == 0 || w == 0) {
    throw Error(ErrorCode::kInvalidArgument, "image is smaller than the VAE's " +
                                                 std::to_string(step) + " pixel latent cell");
  }
  at::Tensor cropped = images.narrow(1, (images.size(1) - h) / 2, h)
                           .narrow(2, (images.size(2) - w) / 2, w)
                           .permute({0, 3, 1, 2});
  at::Tensor x = (cropped * 2.0 - 1.0).to(placement_.device, placement_.vae_dtype);
  // Contiguous: the convolutions may have worked channels-last (the image arrives so permuted).
  return std::visit([&](const auto& autoencoder) { return latent_mean(autoencoder, x); }, autoencoder_)
      .to(at::kFloat)
      .contiguous()
      .cpu();
}

namespace {

// The tokenizer of text encoder `i`; refused when there is none (a single-file checkpoint and no
// vocabulary folder) or when its special tokens lie outside the encoder's token embedding (a
// vocabulary other than the one the model was trained with).
ClipTokenizer load_encoder_tokenizer(const LoadedModel& loaded, size_t i, const std::string& path) {
  const std::string& dir = loaded.tokenizer_dirs.at(i);
  if (dir.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + path + "' is a single-file checkpoint, which carries no tokenizer, and no "
                "CLIP vocabulary is installed beside the executables (scripts/setup puts it in "
                "share/dreamforge/clip): set DREAMFORGE_CLIP_VOCAB_DIR (or the runner's "
                "--clip-vocab-dir) to a folder with the CLIP vocab.json and merges.txt (or "
                "tokenizer.json)");
  }
  // pad_tokens already is the pad token a model folder's own tokenizer files name, so the
  // override only changes padding where no file names one: single-file checkpoints (one CLIP-L
  // vocabulary for every encoder), folders without that tokenizer or whose files name no pad.
  ClipTokenizer tokenizer = ClipTokenizer::load(dir, loaded.pad_tokens.at(i));
  const int embedded = loaded.config.text_encoders.at(i).vocab_size;
  const int highest = std::max({tokenizer.bos_id(), tokenizer.eos_id(), tokenizer.pad_id()});
  if (highest >= embedded) {
    throw Error(ErrorCode::kInvalidArgument,
                "the tokenizer in '" + dir + "' has token ids up to " + std::to_string(highest) +
                    " but the text encoder of '" + path + "' embeds only " +
                    std::to_string(embedded) + " tokens: set DREAMFORGE_CLIP_VOCAB_DIR (or the "
                    "runner's --clip-vocab-dir) to the vocabulary the model was trained with");
  }
  return tokenizer;
}

}  // namespace

CheckpointBundle load_checkpoint_bundle(const CheckpointLoadRequest& request) {
  if (const auto family = dit_checkpoint_family(request.path)) {
    return load_dit_checkpoint_bundle(request, *family);
  }
  if (const auto family = dit_pipeline_family(request.path)) {
    return load_dit_pipeline_bundle(request, *family);
  }
  LoadOptions options;
  options.dtype = at::kFloat;
  options.device = at::kCPU;
  options.clip_vocab_dir = request.clip_vocab_dir;
  LoadedModel loaded = load_model(request.path, options);

  const PipelineConfig& config = loaded.config;
  RuntimePlacement placement = resolve_placement(request.device, request.dtype, config.family);
  loaded.unet.to(placement.dtype, placement.device);
  loaded.vae.to(placement.vae_dtype, placement.device);

  std::vector<TextEncoder> encoders;
  for (size_t i = 0; i < loaded.text_encoders.size(); ++i) {
    ClipTokenizer tokenizer = load_encoder_tokenizer(loaded, i, request.path);
    loaded.text_encoders[i].to(placement.dtype, placement.device);
    encoders.push_back(TextEncoder{std::move(tokenizer),
                                   ClipTextModel(config.text_encoders.at(i),
                                                 text_model_weights(loaded.text_encoders[i]))});
  }

  unet_extra_inputs(config.unet);  // refuses input channel counts no model type has
  CheckpointBundle bundle;
  bundle.name = loaded.name;
  bundle.identity_file = loaded.identity_file;
  bundle.family = config.family;
  LatentFormat latent_format = latent_format_of(config.family);
  latent_format.scale = config.vae.scaling_factor;
  bundle.model = std::make_shared<const DiffusionModel>(DiffusionModel{
      config.family, UNet(config.unet, loaded.unet), nullptr, NoiseSchedule(config.schedule),
      latent_format, config.requires_aesthetics_score, placement});
  bundle.clip =
      std::make_shared<const TextConditioner>(config.family, std::move(encoders), placement.device);
  bundle.vae = std::make_shared<const VaeCodec>(Vae(config.vae, loaded.vae), placement);
  return bundle;
}


const UNet& DiffusionModel::require_unet(const std::string& what) const {
  if (!unet) {
    throw Error(ErrorCode::kUnsupported,
                what + " works on SD 1.x/2.x/SDXL models; this is a " + family_name(family) +
                    " model");
  }
  return *unet;
}

at::Tensor latent_to_sampler(const DiffusionModel& model, const at::Tensor& latent) {
  return latent_to_sampler(model.latent_format, latent);
}

at::Tensor latent_from_sampler(const DiffusionModel& model, const at::Tensor& latent) {
  return latent_from_sampler(model.latent_format, latent);
}

std::shared_ptr<const VaeCodec> load_vae_codec(const std::string& path, const std::string& device) {
  check_weights_path(path, "a VAE (.safetensors, .ckpt, .pt, .pth, .bin)");
  const TensorFile file = TensorFile::open(path);
  StandaloneVae vae = load_standalone_vae(file, at::kFloat);
  RuntimePlacement placement = resolve_placement(device, "float32", Family::kSD1);
  Weights weights(std::move(vae.weights));
  weights.to(placement.vae_dtype, placement.device);
  return std::make_shared<const VaeCodec>(Vae(vae.config, weights), placement);
}

std::shared_ptr<const VaeCodec> load_tiny_vae_codec(const std::string& encoder_path,
                                                    const std::string& decoder_path,
                                                    double latent_scale, const std::string& device) {
  check_weights_path(encoder_path, "a TAESD encoder (.safetensors, .pth)");
  check_weights_path(decoder_path, "a TAESD decoder (.safetensors, .pth)");
  RuntimePlacement placement = resolve_placement(device, "float32", Family::kSD1);
  Weights encoder(load_tensors(encoder_path));
  Weights decoder(load_tensors(decoder_path));
  encoder.to(placement.vae_dtype, placement.device);
  decoder.to(placement.vae_dtype, placement.device);
  TinyAutoencoder taesd(std::move(encoder), std::move(decoder), latent_scale);
  return std::make_shared<const VaeCodec>(std::move(taesd), placement);
}

}  // namespace df::engine
