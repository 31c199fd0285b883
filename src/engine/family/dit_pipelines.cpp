// Loading the DiT families' diffusers pipeline folders.
#include "engine/family/dit_pipelines.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "engine/family/dit_models.h"
#include "engine/family/families.h"
#include "engine/family/flux/flux_prompt_encoder.h"
#include "engine/family/sd3/sd3_prompt_encoder.h"
#include "engine/family/zimage/zimage_prompt_encoder.h"
#include "engine/text/clip_prompt_encoding.h"
#include "engine/text/t5_encoder.h"
#include "engine/text/t5_tokenizer.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

// The one weights file of the transformers component folder `root`/`component`.
std::string text_encoder_weights(const fs::path& root, const std::string& component) {
  const fs::path dir = root / component;
  const fs::path single = dir / "model.safetensors";
  if (fs::is_regular_file(single)) return single.string();
  if (fs::exists(dir / "model.safetensors.index.json")) {
    throw Error(ErrorCode::kUnsupported,
                "the text encoder in '" + dir.string() + "' is sharded (model.safetensors.index."
                "json); merge its shards into one model.safetensors to load the pipeline folder");
  }
  throw Error(ErrorCode::kModelNotFound, "no text encoder weights '" + single.string() + "'");
}

// A tokenizer folder of the pipeline, checked to exist.
std::string tokenizer_folder(const fs::path& root, const std::string& component) {
  const fs::path dir = root / component;
  if (!fs::is_directory(dir)) {
    throw Error(ErrorCode::kModelNotFound, "the pipeline folder lacks its tokenizer '" +
                                               dir.string() + "'");
  }
  return dir.string();
}

sd3::Sd3T5 load_t5(const fs::path& root, const std::string& encoder, const std::string& tokenizer,
                   const RuntimePlacement& placement) {
  const T5Encoder loaded = load_t5_encoder(text_encoder_weights(root, encoder), placement.dtype);
  Weights weights = loaded.weights();
  weights.to(placement.dtype, placement.device);
  return sd3::Sd3T5{T5Tokenizer::from_file(tokenizer_folder(root, tokenizer)),
                    T5Encoder(loaded.config(), weights)};
}

TextEncoder load_clip(const fs::path& root, const std::string& encoder,
                      const std::string& tokenizer, const CheckpointLoadRequest& request) {
  return load_clip_text_encoder(text_encoder_weights(root, encoder),
                                tokenizer_folder(root, tokenizer), request.device, request.dtype);
}

std::shared_ptr<const PromptEncoder> load_flux_text(const fs::path& root,
                                                    const CheckpointLoadRequest& request) {
  const RuntimePlacement placement = resolve_placement(request.device, request.dtype, Family::kFlux);
  sd3::Sd3T5 t5 = load_t5(root, "text_encoder_2", "tokenizer_2", placement);
  return std::make_shared<const flux::FluxPromptEncoder>(
      load_clip(root, "text_encoder", "tokenizer", request), std::move(t5.tokenizer),
      std::move(t5.encoder));
}

std::shared_ptr<const PromptEncoder> load_sd3_text(const fs::path& root,
                                                   const CheckpointLoadRequest& request) {
  const RuntimePlacement placement = resolve_placement(request.device, request.dtype, Family::kSD3);
  sd3::Sd3TextEncoders encoders;
  encoders.device = placement.device;
  encoders.clip_l = load_clip(root, "text_encoder", "tokenizer", request);
  encoders.clip_g = load_clip(root, "text_encoder_2", "tokenizer_2", request);
  encoders.t5xxl = load_t5(root, "text_encoder_3", "tokenizer_3", placement);
  return std::make_shared<const sd3::Sd3PromptEncoder>(std::move(encoders));
}

std::shared_ptr<const PromptEncoder> load_zimage_text(const fs::path& root,
                                                      const CheckpointLoadRequest& request) {
  const RuntimePlacement placement =
      resolve_placement(request.device, request.dtype, Family::kZImage);
  const fs::path tokenizer = fs::path(tokenizer_folder(root, "tokenizer")) / "tokenizer.json";
  return zimage::load_zimage_prompt_encoder(text_encoder_weights(root, "text_encoder"),
                                            tokenizer.string(), placement.dtype);
}

// The transformer's weights file (its first shard), whose hash identifies the pipeline.
std::string identity_file(const fs::path& root) {
  const fs::path dir = root / "transformer";
  const fs::path single = dir / "diffusion_pytorch_model.safetensors";
  if (fs::exists(single)) return single.string();
  std::vector<std::string> shards;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".safetensors") shards.push_back(entry.path().string());
  }
  std::sort(shards.begin(), shards.end());
  return shards.empty() ? (dir / "config.json").string() : shards.front();
}

std::shared_ptr<const PromptEncoder> load_text(Family family, const fs::path& root,
                                               const CheckpointLoadRequest& request) {
  if (family == Family::kFlux) return load_flux_text(root, request);
  if (family == Family::kSD3) return load_sd3_text(root, request);
  return load_zimage_text(root, request);
}

}  // namespace

std::optional<Family> dit_pipeline_family(const std::string& path) {
  std::error_code ec;
  const fs::path root(path);
  if (!fs::is_directory(root, ec) || !fs::is_regular_file(root / "model_index.json", ec) ||
      !fs::is_regular_file(root / "transformer" / "config.json", ec)) {
    return std::nullopt;
  }
  return detect_dit_family(path);
}

CheckpointBundle load_dit_pipeline_bundle(const CheckpointLoadRequest& request, Family family) {
  const fs::path root(request.path);
  const RuntimePlacement placement = resolve_placement(request.device, request.dtype, family);
  CheckpointBundle bundle;
  bundle.name = root.filename().string();
  bundle.identity_file = identity_file(root);
  bundle.family = family;
  bundle.model = load_dit_model((root / "transformer").string(), family, placement);
  bundle.prompt_encoder = load_text(family, root, request);
  bundle.vae =
      load_vae_codec((root / "vae" / "diffusion_pytorch_model.safetensors").string(), request.device);
  return bundle;
}

}  // namespace df::engine
