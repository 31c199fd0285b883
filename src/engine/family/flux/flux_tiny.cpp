// Tiny FLUX.1 split files.
#include "engine/family/flux/flux_tiny.h"

#include <filesystem>

#include "core/error.h"
#include "engine/family/flow_vae.h"
#include "engine/family/flux/flux_config.h"
#include "engine/family/flux/flux_layout.h"
#include "engine/text/t5_config.h"
#include "engine/text/t5_tiny_tokenizer.h"
#include "engine/tiny_addons.h"
#include "engine/tiny_model.h"
#include "engine/tiny_tokenizer.h"
#include "engine/weight_layout.h"

namespace df::engine::flux {
namespace {

namespace fs = std::filesystem;

// The transformer's and T5's weights are drawn wider than tiny_random_tensors' default so that the
// prompt (T5's states are scaled by its final norm's weights) and the distilled guidance visibly
// change the tiny model's images.
constexpr double kTransformerStddev = 0.08;
constexpr double kT5Stddev = 0.5;

// The metadata key a standalone text encoder's config is read from (load_standalone_text_encoder).
constexpr const char* kTextEncoderConfigKey = "dreamforge.text_encoder_config";

fs::path tokenizer_dir(const fs::path& weights) {
  return weights.parent_path() / (weights.stem().string() + ".tokenizer");
}

// SD1's tiny CLIP-L text encoder, `width` wide.
void write_tiny_clip_l(const fs::path& path, int64_t width, uint64_t seed) {
  ClipTextConfig config = tiny_pipeline_config(Family::kSD1).text_encoders.at(0);
  if (config.hidden_size != width) {
    throw Error(ErrorCode::kInternal, "the tiny CLIP-L is " + std::to_string(config.hidden_size) +
                                          " wide, the tiny FLUX.1 pooled vector " +
                                          std::to_string(width));
  }
  write_test_file(path.string(), "CLIP-L text encoder",
                  tiny_random_tensors(clip_text_tensor_layout(config), seed),
                  {{kTextEncoderConfigKey, config.to_json().dump()}});
  write_tiny_clip_tokenizer(tokenizer_dir(path).string(), "<|endoftext|>");
}

void write_tiny_t5(const fs::path& path, int64_t width, uint64_t seed) {
  const T5Config config = tiny_t5_config(tiny_t5_vocab_size());
  if (config.d_model != width) {
    throw Error(ErrorCode::kInternal, "the tiny T5 is " + std::to_string(config.d_model) +
                                          " wide, the tiny FLUX.1 context " + std::to_string(width));
  }
  write_test_file(path.string(), "T5-XXL text encoder",
                  tiny_random_tensors(t5_encoder_layout(config), seed, kT5Stddev), {});
  write_tiny_t5_tokenizer(tokenizer_dir(path).string());
}

}  // namespace

std::string write_tiny_flux_files(const std::string& models_dir, bool dev, uint64_t seed) {
  const fs::path root(models_dir);
  const FluxConfig transformer = tiny_flux_config(dev);
  write_test_file((root / "diffusion_models" / (dev ? kDevModelFile : kSchnellModelFile)).string(),
                  dev ? "FLUX.1 dev transformer" : "FLUX.1 schnell transformer",
                  tiny_random_tensors(flux_transformer_layout(transformer), seed, kTransformerStddev), {});
  write_tiny_clip_l(root / "text_encoders" / kClipLFile, transformer.vec_in_dim, seed + 1);
  write_tiny_t5(root / "text_encoders" / kT5File, transformer.context_in_dim, seed + 2);
  write_tiny_vae_file((root / "vae" / kVaeFile).string(), tiny_flow_vae_config(Family::kFlux),
                      seed + 3);
  return models_dir;
}

}  // namespace df::engine::flux
