// Loading the DiT families' text encoders.
#include "engine/family/dit_text_encoders.h"

#include <filesystem>

#include "core/error.h"
#include "engine/checkpoint_bundle.h"
#include "engine/family/zimage/zimage_prompt_encoder.h"

namespace df::engine {

namespace fs = std::filesystem;

std::optional<Family> dit_text_family(const std::string& type, size_t file_count) {
  if (type == "lumina2" && file_count == 1) return Family::kZImage;
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

std::shared_ptr<const PromptEncoder> load_prompt_encoder(const std::vector<std::string>& paths,
                                                         const std::string& type,
                                                         const std::string& device,
                                                         const std::string& dtype,
                                                         const std::string& tokenizer_dir) {
  const auto family = dit_text_family(type, paths.size());
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
