// Loading the DiT families' text encoders.
#include "engine/family/dit_text_encoders.h"

#include <filesystem>

#include "core/error.h"
#include "engine/checkpoint_bundle.h"
#include "engine/clip_vocab_location.h"
#include "engine/family/flux/flux_prompt_encoder.h"
#include "engine/family/sd3/sd3_prompt_encoder.h"
#include "engine/family/zimage/zimage_prompt_encoder.h"

namespace df::engine {

namespace fs = std::filesystem;

std::optional<Family> dit_text_family(const std::string& type, size_t file_count) {
  if (type == "lumina2" && file_count == 1) return Family::kZImage;
  if (type == "sd3" && file_count >= 1 && file_count <= 3) return Family::kSD3;
  if (type == "flux" && file_count == 2) return Family::kFlux;
  return std::nullopt;
}

std::string tokenizer_beside(const std::string& weights_path, const std::string& tokenizer_dir) {
  const fs::path weights(weights_path);
  const fs::path beside =
      weights.parent_path() / (weights.stem().string() + ".tokenizer") / "tokenizer.json";
  std::error_code ec;
  if (fs::is_regular_file(beside, ec)) return beside.string();
  const fs::path shared = fs::path(tokenizer_dir) / "tokenizer.json";
  if (!tokenizer_dir.empty() && fs::is_regular_file(shared, ec)) return shared.string();
  throw Error(ErrorCode::kModelNotFound,
              "no tokenizer for the text encoder '" + weights.filename().string() + "': put its "
              "tokenizer.json at '" + beside.string() + "'" +
                  (tokenizer_dir.empty() ? "" : " or '" + shared.string() + "'"));
}

std::string t5_tokenizer_beside(const std::string& weights_path) {
  const fs::path weights(weights_path);
  const fs::path beside = weights.parent_path() / (weights.stem().string() + ".tokenizer");
  std::error_code ec;
  if (fs::is_directory(beside, ec)) return beside.string();
  const fs::path installed = installed_data_dir("t5");
  if (!installed.empty() && fs::is_regular_file(installed / "tokenizer.json", ec)) {
    return installed.string();
  }
  throw Error(ErrorCode::kModelNotFound,
              "no T5 tokenizer for '" + weights.filename().string() + "': put its tokenizer "
              "(tokenizer.json or spiece.model) in '" + beside.string() + "' or install T5's "
              "tokenizer beside the executables (scripts/setup puts it in share/dreamforge/t5)");
}

namespace {

std::shared_ptr<const PromptEncoder> load_flux_text(const std::vector<std::string>& paths,
                                                    const std::string& device,
                                                    const std::string& dtype,
                                                    const std::string& clip_vocab_dir) {
  const bool t5_first = flux::holds_t5_encoder(paths[0]);
  const std::string& t5 = t5_first ? paths[0] : paths[1];
  const std::string& clip_l = t5_first ? paths[1] : paths[0];
  if (!flux::holds_t5_encoder(t5) || flux::holds_t5_encoder(clip_l)) {
    throw Error(ErrorCode::kInvalidArgument,
                "DualCLIPLoader type 'flux' needs one CLIP-L and one T5-XXL file; got '" +
                    fs::path(paths[0]).filename().string() + "' and '" +
                    fs::path(paths[1]).filename().string() + "'");
  }
  return flux::load_flux_prompt_encoder(clip_l, t5, t5_tokenizer_beside(t5), clip_vocab_dir,
                                        device, dtype);
}

}  // namespace

std::shared_ptr<const PromptEncoder> load_prompt_encoder(const std::vector<std::string>& paths,
                                                         const std::string& type,
                                                         const std::string& device,
                                                         const std::string& dtype,
                                                         const std::string& tokenizer_dir,
                                                         const std::string& clip_vocab_dir) {
  const auto family = dit_text_family(type, paths.size());
  if (family == Family::kFlux) return load_flux_text(paths, device, dtype, clip_vocab_dir);
  if (family == Family::kSD3) {
    return sd3::load_sd3_prompt_encoder(paths, device, dtype, clip_vocab_dir);
  }
  if (family == Family::kZImage) {
    const RuntimePlacement placement = resolve_placement(device, dtype, Family::kZImage);
    return zimage::load_zimage_prompt_encoder(
        paths.front(), tokenizer_beside(paths.front(), tokenizer_dir), placement.dtype);
  }
  throw Error(ErrorCode::kUnsupported, "text encoder type '" + type + "' with " +
                                           std::to_string(paths.size()) +
                                           " files is not supported");
}

}  // namespace df::engine
