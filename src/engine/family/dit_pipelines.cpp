// Loading the DiT families' diffusers pipeline folders.
#include "engine/family/dit_pipelines.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/family/dit_models.h"
#include "engine/family/families.h"
#include "engine/family/flux/flux_prompt_encoder.h"
#include "engine/family/sd3/sd3_prompt_encoder.h"
#include "engine/family/zimage/zimage_prompt_encoder.h"
#include "engine/text/clip_prompt_encoding.h"
#include "engine/text/qwen3_encoder.h"
#include "engine/text/t5_encoder.h"
#include "engine/text/t5_tokenizer.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

// The weights files of the transformers component folder `root`/`component`: model.safetensors,
// else the shards its model.safetensors.index.json names.
std::vector<std::string> text_encoder_files(const fs::path& root, const std::string& component) {
  const fs::path dir = root / component;
  const fs::path single = dir / "model.safetensors";
  if (fs::is_regular_file(single)) return {single.string()};
  const fs::path index_path = dir / "model.safetensors.index.json";
  std::ifstream in(index_path);
  if (!in) {
    throw Error(ErrorCode::kModelNotFound, "no text encoder weights in '" + dir.string() +
                                               "' (model.safetensors or its index)");
  }
  const nlohmann::json index = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw Error(ErrorCode::kCorruptFile, "'" + index_path.string() + "' has no weight_map");
  }
  std::set<std::string> shards;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string() || shard.get<std::string>().find('/') != std::string::npos) {
      throw Error(ErrorCode::kCorruptFile,
                  "'" + index_path.string() + "' names an invalid shard for '" + name + "'");
    }
    shards.insert((dir / shard.get<std::string>()).string());
  }
  return {shards.begin(), shards.end()};
}

// The one weights file of a CLIP text encoder folder (CLIPs are never sharded).
std::string clip_weights(const fs::path& root, const std::string& component) {
  const std::vector<std::string> files = text_encoder_files(root, component);
  if (files.size() != 1) {
    throw Error(ErrorCode::kUnsupported, "the CLIP text encoder in '" + (root / component).string() +
                                             "' is sharded; merge it into one model.safetensors");
  }
  return files.front();
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
  const T5Encoder loaded = load_t5_encoder(text_encoder_files(root, encoder), placement.dtype);
  Weights weights = loaded.weights();
  weights.to(placement.dtype, placement.device);
  return sd3::Sd3T5{T5Tokenizer::from_file(tokenizer_folder(root, tokenizer)),
                    T5Encoder(loaded.config(), weights)};
}

TextEncoder load_clip(const fs::path& root, const std::string& encoder,
                      const std::string& tokenizer, const CheckpointLoadRequest& request) {
  return load_clip_text_encoder(clip_weights(root, encoder),
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
  return std::make_shared<const zimage::ZImagePromptEncoder>(
      ByteBpeTokenizer::from_file(tokenizer.string()),
      Qwen3Encoder::load(text_encoder_files(root, "text_encoder"), placement.dtype));
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
  const fs::path given = fs::path(request.path).lexically_normal();
  const fs::path root = given.has_filename() ? given : given.parent_path();  // "dir/" names dir
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
