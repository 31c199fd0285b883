// Loading the DiT families' all-in-one single files.
#include "engine/family/dit_checkpoints.h"

#include <filesystem>

#include "core/error.h"
#include "engine/family/dit_models.h"
#include "engine/family/dit_text_encoders.h"
#include "engine/family/flux/flux_prompt_encoder.h"
#include "engine/family/sd3/sd3_prompt_encoder.h"
#include "engine/ldm_keys.h"
#include "engine/safetensors.h"
#include "engine/tensor_file.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModelPrefix = "model.diffusion_model.";
constexpr const char* kClipPadToken = "<|endoftext|>";
constexpr const char* kOpenClipPadToken = "!";

// The text side of a checkpoint that has none (ComfyUI gives CLIP None).
class AbsentTextEncoder : public PromptEncoder {
 public:
  explicit AbsentTextEncoder(Family family) : family_(family) {}
  Family family() const override { return family_; }
  Conditioning encode(const std::string&) const override {
    throw Error(ErrorCode::kInvalidArgument,
                "clip input is invalid: None. If the clip is from a checkpoint loader node your "
                "checkpoint does not contain a valid clip or text encoder model.");
  }

 private:
  Family family_;
};

bool has_prefix(const TensorFile& file, const std::string& prefix) {
  for (const TensorInfo& tensor : file.tensors()) {
    if (tensor.name.starts_with(prefix)) return true;
  }
  return false;
}

// A CLIP's config: the engine's metadata where present, else inferred from the shapes (CLIP-G:
// GELU and the text projection).
ClipTextConfig sd3_clip_config(const TensorFile& file, const std::string& prefix, bool clip_g) {
  const std::string key = clip_g ? "dreamforge.clip_g_config" : "dreamforge.clip_l_config";
  const auto stored = file.metadata().find(key);
  if (stored != file.metadata().end()) {
    return ClipTextConfig::from_json(nlohmann::json::parse(stored->second));
  }
  ClipTextConfig config = infer_clip_text_config(file, prefix);
  if (clip_g) {
    const TensorInfo* projection = file.find(prefix + "text_projection.weight");
    config.hidden_act = "gelu";
    config.with_projection = projection != nullptr;
    if (projection) config.projection_dim = static_cast<int>(projection->shape.at(0));
  }
  return config;
}

// The CLIP under `prefix` (transformers names), its weights in `placement`; CLIP-L without its
// projection (SD3 reads its pooler output).
TextEncoder load_prefixed_clip(const TensorFile& file, const std::string& prefix, bool clip_g,
                               const std::string& vocab_dir, const RuntimePlacement& placement) {
  if (vocab_dir.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "the checkpoint '" + file.path() + "' carries no CLIP tokenizer, and no CLIP "
                "vocabulary is installed: set DREAMFORGE_CLIP_VOCAB_DIR (or the runner's "
                "--clip-vocab-dir) to a folder with the CLIP vocab.json and merges.txt");
  }
  const ClipTextConfig config = sd3_clip_config(file, prefix, clip_g);
  TensorMap tensors = load_tensors_as(
      file, placement.dtype, [&](const std::string& name) -> std::optional<std::string> {
        if (!name.starts_with(prefix) || name.ends_with("position_ids")) return std::nullopt;
        std::string own = name.substr(prefix.size());
        if (own.starts_with("text_model.")) own = own.substr(std::string("text_model.").size());
        if (own.starts_with("text_projection") && !config.with_projection) return std::nullopt;
        return own;
      });
  Weights weights(std::move(tensors));
  weights.to(placement.dtype, placement.device);
  return TextEncoder{ClipTokenizer::load(vocab_dir, clip_g ? kOpenClipPadToken : kClipPadToken),
                     ClipTextModel(config, weights)};
}

sd3::Sd3T5 load_prefixed_t5(const TensorFile& file, const std::string& prefix,
                            const RuntimePlacement& placement) {
  const auto own_name = [&](const std::string& name) -> std::optional<std::string> {
    if (!name.starts_with(prefix)) return std::nullopt;
    std::string own = name.substr(prefix.size());
    if (own != "shared.weight" && !own.starts_with("encoder.")) return std::nullopt;
    return own;
  };
  std::vector<TensorShape> shapes;
  for (const TensorInfo& tensor : file.tensors()) {
    if (auto own = own_name(tensor.name)) shapes.push_back({*own, tensor.shape});
  }
  Weights weights(load_tensors_as(file, placement.dtype, own_name));
  weights.to(placement.dtype, placement.device);
  return sd3::Sd3T5{T5Tokenizer::from_file(t5_tokenizer_beside(file.path())),
                    T5Encoder(T5Config::infer_from_keys(shapes), weights)};
}

// SD3's text encoders under "text_encoders.*.transformer."; an absent encoder where none is.
std::shared_ptr<const PromptEncoder> load_sd3_text(const TensorFile& file,
                                                   const std::string& vocab_dir,
                                                   const RuntimePlacement& placement) {
  const std::string clip_l = "text_encoders.clip_l.transformer.";
  const std::string clip_g = "text_encoders.clip_g.transformer.";
  const std::string t5xxl = "text_encoders.t5xxl.transformer.";
  sd3::Sd3TextEncoders encoders;
  encoders.device = placement.device;
  if (has_prefix(file, clip_l)) {
    encoders.clip_l = load_prefixed_clip(file, clip_l, false, vocab_dir, placement);
  }
  if (has_prefix(file, clip_g)) {
    encoders.clip_g = load_prefixed_clip(file, clip_g, true, vocab_dir, placement);
  }
  if (has_prefix(file, t5xxl)) encoders.t5xxl = load_prefixed_t5(file, t5xxl, placement);
  if (!encoders.clip_l && !encoders.clip_g && !encoders.t5xxl) {
    return std::make_shared<const AbsentTextEncoder>(Family::kSD3);
  }
  return std::make_shared<const sd3::Sd3PromptEncoder>(std::move(encoders));
}

// FLUX.1's text encoders under "text_encoders.{clip_l,t5xxl}.transformer." (Comfy-Org's
// flux1-dev-fp8 layout); an absent encoder unless the file has both.
std::shared_ptr<const PromptEncoder> load_flux_text(const TensorFile& file,
                                                    const std::string& vocab_dir,
                                                    const RuntimePlacement& placement) {
  const std::string clip_l = "text_encoders.clip_l.transformer.";
  const std::string t5xxl = "text_encoders.t5xxl.transformer.";
  if (!has_prefix(file, clip_l) || !has_prefix(file, t5xxl)) {
    return std::make_shared<const AbsentTextEncoder>(Family::kFlux);
  }
  sd3::Sd3T5 t5 = load_prefixed_t5(file, t5xxl, placement);
  return std::make_shared<const flux::FluxPromptEncoder>(
      load_prefixed_clip(file, clip_l, false, vocab_dir, placement), std::move(t5.tokenizer),
      std::move(t5.encoder));
}

}  // namespace

std::optional<Family> dit_checkpoint_family(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  const TensorFile file = TensorFile::open(path);
  for (const auto& [blocks, family] : {std::pair{"joint_blocks.", Family::kSD3},
                                       std::pair{"double_blocks.", Family::kFlux}}) {
    if (has_prefix(file, std::string(kModelPrefix) + blocks)) {
      return detect_dit_family(path) == family ? std::optional(family) : std::nullopt;
    }
  }
  return std::nullopt;
}

CheckpointBundle load_dit_checkpoint_bundle(const CheckpointLoadRequest& request, Family family) {
  if (family != Family::kSD3 && family != Family::kFlux) {
    throw Error(ErrorCode::kUnsupported,
                family_name(family) + " single-file checkpoints are not supported yet");
  }
  const RuntimePlacement placement = resolve_placement(request.device, request.dtype, family);
  const TensorFile file = TensorFile::open(request.path);
  CheckpointBundle bundle;
  bundle.name = fs::path(request.path).stem().string();
  bundle.identity_file = request.path;
  bundle.family = family;
  bundle.model = load_dit_model(request.path, family, placement);
  bundle.prompt_encoder = family == Family::kFlux
                              ? load_flux_text(file, request.clip_vocab_dir, placement)
                              : load_sd3_text(file, request.clip_vocab_dir, placement);
  bundle.vae = load_vae_codec(request.path, request.device);
  return bundle;
}

}  // namespace df::engine
