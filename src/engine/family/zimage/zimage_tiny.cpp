// Tiny Z-Image split files.
#include "engine/family/zimage/zimage_tiny.h"

#include <filesystem>

#include "engine/family/flow_vae.h"
#include "engine/family/zimage/zimage_config.h"
#include "engine/family/zimage/zimage_layout.h"
#include "engine/text/qwen3_config.h"
#include "engine/text/tokenizers/byte_bpe_tiny.h"
#include "engine/tiny_addons.h"
#include "engine/tiny_model.h"

namespace df::engine::zimage {

namespace fs = std::filesystem;

ZImageConfig tiny_zimage_split_config() {
  return tiny_zimage_config(tiny_qwen3_config(tiny_qwen_vocab_size()).hidden_size);
}

std::string write_tiny_zimage_files(const std::string& models_dir, uint64_t seed) {
  const fs::path root(models_dir);
  const Qwen3Config text = tiny_qwen3_config(tiny_qwen_vocab_size());
  const ZImageConfig transformer = tiny_zimage_split_config();
  write_test_file((root / "diffusion_models" / kDiffusionModelFile).string(), "Z-Image transformer",
                  tiny_random_tensors(zimage_transformer_layout(transformer), seed), {});
  const fs::path text_file = root / "text_encoders" / kTextEncoderFile;
  write_test_file(text_file.string(), "Qwen3 text encoder",
                  tiny_random_tensors(qwen3_layout(text), seed + 1), {});
  write_tiny_qwen_tokenizer(
      (text_file.parent_path() / (text_file.stem().string() + ".tokenizer")).string());
  write_tiny_vae_file((root / "vae" / kVaeFile).string(), tiny_flow_vae_config(Family::kZImage),
                      seed + 2);
  return models_dir;
}

}  // namespace df::engine::zimage
