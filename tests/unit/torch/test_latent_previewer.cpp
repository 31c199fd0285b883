// LatentPreviewer: which tiny autoencoder previews which family, the preview size cap, and the
// latent2rgb fallback when models/vae_approx holds no TAESD (the TAESD path: tests/e2e/test_taesd.py).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../test_support.h"
#include "image/image.h"
#include "nodes/latent_previewer.h"

namespace df::nodes {
namespace {

TEST(LatentPreviewer, PreviewsEachFamilyWithComfyUIsTinyAutoencoder) {
  EXPECT_EQ(preview_autoencoder_name(engine::Family::kSD1), "taesd");
  EXPECT_EQ(preview_autoencoder_name(engine::Family::kSD2), "taesd");
  EXPECT_EQ(preview_autoencoder_name(engine::Family::kSDXL), "taesdxl");
  EXPECT_EQ(preview_autoencoder_name(engine::Family::kSDXLRefiner), "taesdxl");
  EXPECT_EQ(preview_autoencoder_name(engine::Family::kFlux), "");
  EXPECT_EQ(preview_autoencoder_name(engine::Family::kSD3), "");
  EXPECT_EQ(preview_autoencoder_name(engine::Family::kZImage), "");
}

TEST(LatentPreviewer, DecodesAtMost64LatentPixelsOnTheLongerSideKeepingTheAspectRatio) {
  using Size = std::pair<int64_t, int64_t>;
  EXPECT_EQ(preview_latent_size(64, 64), Size(64, 64));  // 512x512: decoded whole, as ComfyUI
  EXPECT_EQ(preview_latent_size(8, 12), Size(8, 12));
  EXPECT_EQ(preview_latent_size(128, 128), Size(64, 64));  // 1024x1024: a 512x512 preview
  EXPECT_EQ(preview_latent_size(96, 168), Size(36, 64));
  EXPECT_EQ(preview_latent_size(512, 1), Size(64, 1));
}

class LatentPreviewerFolders : public ::testing::Test {
 protected:
  LatentPreviewerFolders() : dir("df_previewer_") {
    std::filesystem::create_directories(dir.path() / "models" / "checkpoints");
    std::filesystem::create_directories(dir.path() / "models" / "vae_approx");
  }
  CheckpointStore store() {
    CheckpointStoreOptions options;
    options.models_dir = (dir.path() / "models" / "checkpoints").string();
    options.device = "cpu";
    return CheckpointStore(options);
  }
  void touch(const std::string& name) {
    std::ofstream(dir.path() / "models" / "vae_approx" / name) << "not loaded";
  }
  test::TestDir dir;
};

TEST_F(LatentPreviewerFolders, WithoutTaesdPreviewsTheLatentWithLatent2rgb) {
  CheckpointStore models = store();
  const LatentPreviewer previewer(models, engine::Family::kSD1);
  EXPECT_FALSE(previewer.uses_tiny_autoencoder());
  const Image8 image = decode_image(previewer.jpeg(at::zeros({2, 4, 8, 12})));
  EXPECT_EQ(image.width, 12);
  EXPECT_EQ(image.height, 8);
}

TEST_F(LatentPreviewerFolders, NeedsBothHalvesAndTheFamilysAutoencoder) {
  touch("taesd_decoder.safetensors");  // only one half, as VAELoader would not offer it either
  touch("taesdxl_encoder.safetensors");
  touch("taesdxl_decoder.safetensors");
  CheckpointStore models = store();
  // SD's previewer finds no complete taesd, and FLUX has none to look for: neither loads a file.
  EXPECT_FALSE(LatentPreviewer(models, engine::Family::kSD1).uses_tiny_autoencoder());
  EXPECT_FALSE(LatentPreviewer(models, engine::Family::kFlux).uses_tiny_autoencoder());
}

}  // namespace
}  // namespace df::nodes
