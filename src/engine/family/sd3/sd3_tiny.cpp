// Tiny SD3.5 split files.
#include "engine/family/sd3/sd3_tiny.h"

#include <filesystem>

#include "engine/family/flow_vae.h"
#include "engine/text/t5_config.h"
#include "engine/text/t5_tiny_tokenizer.h"
#include "engine/tiny_addons.h"
#include "engine/tiny_model.h"
#include "engine/tiny_tokenizer.h"
#include "engine/weight_layout.h"

namespace df::engine::sd3 {
namespace {

namespace fs = std::filesystem;

// Where the engine reads a standalone CLIP file's config (component_detection, ldm_keys.h).
constexpr const char* kTextEncoderConfigKey = "dreamforge.text_encoder_config";

fs::path tokenizer_dir(const fs::path& weights) {
  return weights.parent_path() / (weights.stem().string() + ".tokenizer");
}

// The tiny pipelines' CLIP-L (SD1's) and CLIP-G (SDXL's second, with its projection).
ClipTextConfig tiny_clip_config(bool clip_g) {
  return clip_g ? tiny_pipeline_config(Family::kSDXL).text_encoders.at(1)
                : tiny_pipeline_config(Family::kSD1).text_encoders.at(0);
}

// As wide as T5-XXL (T5Config's defaults), which SD3 pads its CLIP states to.
T5Config tiny_wide_t5_config() {
  T5Config config = tiny_t5_config(tiny_t5_vocab_size());
  config.d_model = T5Config{}.d_model;
  return config;
}

void write_tiny_clip(const fs::path& path, bool clip_g, uint64_t seed) {
  const ClipTextConfig config = tiny_clip_config(clip_g);
  write_test_file(path.string(), clip_g ? "CLIP-G text encoder" : "CLIP-L text encoder",
                  tiny_random_tensors(clip_text_tensor_layout(config), seed),
                  {{kTextEncoderConfigKey, config.to_json().dump()}});
  write_tiny_clip_tokenizer(tokenizer_dir(path).string(), clip_g ? "!" : "<|endoftext|>");
}

void write_tiny_t5(const fs::path& path, uint64_t seed) {
  write_test_file(path.string(), "T5-XXL text encoder",
                  tiny_random_tensors(t5_encoder_layout(tiny_wide_t5_config()), seed), {});
  write_tiny_t5_tokenizer(tokenizer_dir(path).string());
}

}  // namespace

Sd3Config tiny_sd3_split_config() {
  Sd3Config config = tiny_sd3_config(/*qk_norm=*/true, /*dual_attention=*/true);
  config.joint_attention_dim = tiny_wide_t5_config().d_model;
  config.pooled_projection_dim =
      tiny_clip_config(false).hidden_size + tiny_clip_config(true).projection_dim;
  return config;
}

std::string write_tiny_sd3_files(const std::string& models_dir, uint64_t seed) {
  const fs::path root(models_dir);
  write_test_file((root / "diffusion_models" / kDiffusionModelFile).string(), "SD3.5 MMDiT",
                  tiny_random_tensors(sd3_transformer_layout(tiny_sd3_split_config()), seed), {});
  write_tiny_clip(root / "text_encoders" / kClipLFile, false, seed + 1);
  write_tiny_clip(root / "text_encoders" / kClipGFile, true, seed + 2);
  write_tiny_t5(root / "text_encoders" / kT5File, seed + 3);
  write_tiny_vae_file((root / "vae" / kVaeFile).string(), tiny_flow_vae_config(Family::kSD3),
                      seed + 4);
  return models_dir;
}

}  // namespace df::engine::sd3
