// Tests of the model file details: safetensors metadata and ComfyUI's choice of preview image.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "api/comfy_model_files.h"
#include "core/base64.h"
#include "core/error.h"
#include "core/files.h"
#include "engine/safetensors_file.h"
#include "image/image.h"
#include "test_support.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> png_of_size(int width, int height) {
  Image8 image{width, height, 3, std::vector<uint8_t>(size_t(width) * height * 3, 90)};
  return encode_image(image, ImageFormat::kPng, {});
}

class ComfyModelFilesTest : public ::testing::Test {
 protected:
  ComfyModelFilesTest() : dir_("df_comfy_models_"), folder_(dir_.path() / "checkpoints") {
    fs::create_directories(folder_ / "sub");
  }
  void model(const fs::path& relative, const std::map<std::string, std::string>& metadata = {}) {
    const std::vector<engine::RawTensor> tensors = {{"w", "F32", {1}, {0, 0, 0, 0}}};
    engine::write_safetensors((folder_ / relative).string(), tensors, metadata);
  }
  void image(const fs::path& relative, int width, int height) {
    write_file_atomically((folder_ / relative).string(), png_of_size(width, height));
  }
  // The size of the preview of `name` (decoded from the WebP it is served as).
  std::pair<int, int> preview_size(const std::string& name) {
    const std::vector<uint8_t> webp = model_preview_webp(folder_, name);
    EXPECT_EQ(std::string(webp.begin() + 8, webp.begin() + 12), "WEBP");
    const Image8 decoded = decode_image(webp);
    return {decoded.width, decoded.height};
  }

  test::TestDir dir_;
  fs::path folder_;
};

TEST_F(ComfyModelFilesTest, MetadataOfASafetensorsModel) {
  model("sub/styled.safetensors", {{"ss_base_model", "sd15"}, {"modelspec.title", "Styled"}});
  EXPECT_EQ(safetensors_metadata(folder_, "sub/styled.safetensors"),
            (nlohmann::json{{"modelspec.title", "Styled"}, {"ss_base_model", "sd15"}}));
}

TEST_F(ComfyModelFilesTest, MetadataIsNotFoundWithoutASafetensorsFileOrMetadata) {
  model("bare.safetensors");
  image("picture.png", 2, 2);
  write_file_atomically((folder_ / "fake.safetensors").string(), {1, 2, 3});
  model("../outside.safetensors", {{"a", "b"}});
  for (const char* name : {"bare.safetensors", "missing.safetensors", "picture.png",
                           "fake.safetensors", "../outside.safetensors", "sub"}) {
    EXPECT_EQ(test::error_code_of([&] { safetensors_metadata(folder_, name); }),
              ErrorCode::kNotFound)
        << name;
  }
}

TEST_F(ComfyModelFilesTest, PreviewIsTheImageNamedLikeTheModel) {
  model("a.safetensors");
  image("a.preview.png", 3, 2);
  EXPECT_EQ(preview_size("a.safetensors"), std::make_pair(3, 2));
  image("a.png", 5, 4);  // sorts before a.preview.png
  EXPECT_EQ(preview_size("a.safetensors"), std::make_pair(5, 4));
  image("ab.png", 7, 7);  // another model's name
  image("a.other.png", 7, 7);
  EXPECT_EQ(preview_size("a.safetensors"), std::make_pair(5, 4));
  model("sub/b.safetensors");
  image("sub/b.preview.png", 6, 1);
  EXPECT_EQ(preview_size("sub/b.safetensors"), std::make_pair(6, 1));
}

TEST_F(ComfyModelFilesTest, PreviewOfAFolderModelAndFromCoverImages) {
  fs::create_directories(folder_ / "diffusers-model");
  image("diffusers-model.png", 4, 4);
  EXPECT_EQ(preview_size("diffusers-model"), std::make_pair(4, 4));
  const std::string cover = encode_base64(png_of_size(9, 3));
  model("covered.safetensors", {{"ssmd_cover_images", "[\"" + cover + "\"]"}});
  EXPECT_EQ(preview_size("covered.safetensors"), std::make_pair(9, 3));
}

TEST_F(ComfyModelFilesTest, PreviewErrors) {
  model("plain.safetensors");
  write_file_atomically((folder_ / "broken.safetensors").string(), {1});
  write_file_atomically((folder_ / "broken.png").string(), {1, 2, 3});
  auto code = [&](const std::string& name) {
    return test::error_code_of([&] { model_preview_webp(folder_, name); });
  };
  EXPECT_EQ(code(""), ErrorCode::kBadRequest);
  EXPECT_EQ(code("../../etc/passwd"), ErrorCode::kForbidden);
  EXPECT_EQ(code("plain.safetensors"), ErrorCode::kNotFound);
  EXPECT_EQ(code("missing.safetensors"), ErrorCode::kNotFound);
  EXPECT_EQ(code("broken.safetensors"), ErrorCode::kNotFound);
}

TEST_F(ComfyModelFilesTest, PreviewLinkedFromOutsideIsRefused) {
  model("linked.safetensors");
  write_file_atomically((dir_.path() / "secret.png").string(), png_of_size(2, 2));
  fs::create_symlink(dir_.path() / "secret.png", folder_ / "linked.png");
  EXPECT_EQ(test::error_code_of([&] { model_preview_webp(folder_, "linked.safetensors"); }),
            ErrorCode::kForbidden);
}

}  // namespace
}  // namespace df::api
