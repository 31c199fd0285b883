// Unit tests for ComfyUI's model folders: listing (legacy folder names, subfolders, extensions,
// bundled config names), safe resolution of a chosen name, and VAELoader's choices (the vae files,
// then the Tiny AutoEncoders "taesd"/"taesdxl" when models/vae_approx holds both halves of one).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "nodes/model_folders.h"
#include "test_support.h"

namespace df::nodes {
namespace {

namespace fs = std::filesystem;

class ModelFolders : public ::testing::Test {
 protected:
  void touch(const std::string& relative) {
    const fs::path path = dir.path() / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << "x";
  }
  std::string root() const { return dir.path().string(); }

  test::TestDir dir{"df_model_folders_"};
};

TEST_F(ModelFolders, ListsEveryFolderOfAKindWithSubfoldersAndWeightFilesOnly) {
  touch("vae/sdxl/fixed.safetensors");
  touch("vae/ft-mse.safetensors");
  touch("vae/readme.txt");
  touch("unet/flux.safetensors");
  touch("diffusion_models/sd15-unet.safetensors");
  EXPECT_EQ(list_model_files(root(), "vae"),
            (std::vector<std::string>{"ft-mse.safetensors", "sdxl/fixed.safetensors"}));
  EXPECT_EQ(list_model_files(root(), "diffusion_models"),
            (std::vector<std::string>{"flux.safetensors", "sd15-unet.safetensors"}));
  EXPECT_TRUE(list_model_files(root(), "loras").empty());
  EXPECT_TRUE(list_model_files(root(), "no-such-kind").empty());
}

TEST_F(ModelFolders, OffersComfyUisBundledConfigNamesBesideTheUsersFiles) {
  touch("configs/my-model.yaml");
  const auto names = list_model_files(root(), "configs");
  EXPECT_NE(std::find(names.begin(), names.end(), "v1-inference.yaml"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "my-model.yaml"), names.end());
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

TEST_F(ModelFolders, ResolvesInsideTheFoldersOnly) {
  touch("clip/clip_l.safetensors");
  touch("secret.safetensors");
  EXPECT_EQ(resolve_model_file(root(), "text_encoders", "clip_l.safetensors"),
            (dir.path() / "clip" / "clip_l.safetensors").string());
  EXPECT_EQ(test::error_code_of([&] { resolve_model_file(root(), "text_encoders", "../secret.safetensors"); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([&] { resolve_model_file(root(), "loras", "missing.safetensors"); }),
            ErrorCode::kModelNotFound);
  EXPECT_EQ(test::error_code_of([&] { resolve_model_file(root(), "loras", ""); }),
            ErrorCode::kInvalidArgument);
}

TEST_F(ModelFolders, ListsOnlyTheVaeFilesWithoutTinyAutoencoders) {
  touch("vae/ft-mse.safetensors");
  touch("vae_approx/taesd_decoder.safetensors");  // the encoder is missing
  EXPECT_EQ(vae_loader_names(root()), (std::vector<std::string>{"ft-mse.safetensors"}));
  EXPECT_EQ(model_combo_names(root(), "vae"), vae_loader_names(root()));
}

TEST_F(ModelFolders, AddsEachTinyAutoencoderWithBothHalvesInComfyUisOrder) {
  touch("vae/ft-mse.safetensors");
  touch("vae_approx/taesdxl_encoder.safetensors");
  touch("vae_approx/taesdxl_decoder.pth");
  touch("vae_approx/taesd_encoder.safetensors");
  touch("vae_approx/taesd_decoder.safetensors");
  EXPECT_EQ(vae_loader_names(root()),
            (std::vector<std::string>{"ft-mse.safetensors", "taesd", "taesdxl"}));
}

TEST_F(ModelFolders, IgnoresSubfoldersAndOtherNamesInVaeApprox) {
  touch("vae_approx/sub/taesd_encoder.safetensors");
  touch("vae_approx/sub/taesd_decoder.safetensors");
  touch("vae_approx/taesd_encoderx.safetensors");
  touch("vae_approx/taesd_decoder.txt");
  EXPECT_TRUE(vae_loader_names(root()).empty());
}

TEST_F(ModelFolders, FindsEachHalfsFileAndTheLatentScales) {
  touch("vae_approx/taesd_encoder.safetensors");
  touch("vae_approx/taesdxl_decoder.safetensors");
  EXPECT_EQ(find_tiny_autoencoder_file(root(), "taesd", "encoder"), "taesd_encoder.safetensors");
  EXPECT_EQ(find_tiny_autoencoder_file(root(), "taesd", "decoder"), "");
  EXPECT_EQ(find_tiny_autoencoder_file(root(), "taesdxl", "decoder"), "taesdxl_decoder.safetensors");
  ASSERT_NE(find_tiny_autoencoder_kind("taesd"), nullptr);
  EXPECT_DOUBLE_EQ(find_tiny_autoencoder_kind("taesd")->latent_scale, 0.18215);
  EXPECT_DOUBLE_EQ(find_tiny_autoencoder_kind("taesdxl")->latent_scale, 0.13025);
  EXPECT_EQ(find_tiny_autoencoder_kind("taesd3"), nullptr);
}

TEST_F(ModelFolders, OtherKindsListTheirFiles) {
  touch("loras/style.safetensors");
  EXPECT_EQ(model_combo_names(root(), "loras"), list_model_files(root(), "loras"));
}

}  // namespace
}  // namespace df::nodes
