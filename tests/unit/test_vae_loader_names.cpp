// Unit tests for VAELoader's choices: the vae files, then ComfyUI's Tiny AutoEncoders "taesd" and
// "taesdxl" when models/vae_approx holds both halves of one, and the files they load from.
#include <gtest/gtest.h>

#include <fstream>

#include "nodes/model_folders.h"
#include "test_support.h"

namespace df::nodes {
namespace {

namespace fs = std::filesystem;

class VaeLoaderNames : public ::testing::Test {
 protected:
  void touch(const std::string& relative) {
    const fs::path path = dir.path() / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << "x";
  }
  std::string root() const { return dir.path().string(); }

  test::TestDir dir{"df_vae_loader_names_"};
};

TEST_F(VaeLoaderNames, ListsOnlyTheVaeFilesWithoutTinyAutoencoders) {
  touch("vae/ft-mse.safetensors");
  touch("vae_approx/taesd_decoder.safetensors");  // the encoder is missing
  EXPECT_EQ(vae_loader_names(root()), (std::vector<std::string>{"ft-mse.safetensors"}));
  EXPECT_EQ(model_combo_names(root(), "vae"), vae_loader_names(root()));
}

TEST_F(VaeLoaderNames, AddsEachTinyAutoencoderWithBothHalvesInComfyUisOrder) {
  touch("vae/ft-mse.safetensors");
  touch("vae_approx/taesdxl_encoder.safetensors");
  touch("vae_approx/taesdxl_decoder.pth");
  touch("vae_approx/taesd_encoder.safetensors");
  touch("vae_approx/taesd_decoder.safetensors");
  EXPECT_EQ(vae_loader_names(root()),
            (std::vector<std::string>{"ft-mse.safetensors", "taesd", "taesdxl"}));
}

TEST_F(VaeLoaderNames, IgnoresSubfoldersAndOtherNamesInVaeApprox) {
  touch("vae_approx/sub/taesd_encoder.safetensors");
  touch("vae_approx/sub/taesd_decoder.safetensors");
  touch("vae_approx/taesd_encoderx.safetensors");
  touch("vae_approx/taesd_decoder.txt");
  EXPECT_TRUE(vae_loader_names(root()).empty());
}

TEST_F(VaeLoaderNames, FindsEachHalfsFileAndTheLatentScales) {
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

TEST_F(VaeLoaderNames, OtherKindsListTheirFiles) {
  touch("loras/style.safetensors");
  EXPECT_EQ(model_combo_names(root(), "loras"), list_model_files(root(), "loras"));
}

}  // namespace
}  // namespace df::nodes
