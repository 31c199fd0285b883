// Tests of which graph inputs name files to upload to a ComfyUI server, by its node definitions.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "runner/comfy_remote/comfy_uploads.h"

namespace df::runner {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const json kObjectInfo = json::parse(R"({
  "LoadImage": {"input": {"required": {"image": [["a.png"], {"image_upload": true}]}}},
  "LoadImageMask": {"input": {"required": {"image": [["a.png"], {"image_upload": true}],
                                           "channel": [["alpha", "red"]]}}},
  "MyLoader": {"input": {"optional": {"clip": ["COMBO", {"upload": "image"}]}}},
  "CLIPTextEncode": {"input": {"required": {"text": ["STRING", {"multiline": true}]}}}
})");

class ComfyUploadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / ("comfy_uploads_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "sub");
    for (const char* name : {"photo.png", "sub/mask.png", "clip.png", "prompt.txt"}) std::ofstream(dir_ / name) << "x";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ComfyUploadsTest, InputsWithUploadOptionsNamingPresentFilesAreUploaded) {
  const json graph = {
      {"1", {{"class_type", "LoadImage"}, {"inputs", {{"image", "photo.png [input]"}}}}},
      {"2", {{"class_type", "LoadImageMask"}, {"inputs", {{"image", "sub/mask.png"}, {"channel", "alpha"}}}}},
      {"3", {{"class_type", "MyLoader"}, {"inputs", {{"clip", "clip.png"}}}}},
      {"4", {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", "prompt.txt"}}}}},
      {"5", {{"class_type", "LoadImage"}, {"inputs", {{"image", "the server's own.png"}}}}},
      {"6", {{"class_type", "LoadImage"}, {"inputs", {{"image", "../photo.png"}}}}},
      {"7", {{"class_type", "UnknownNode"}, {"inputs", {{"image", "photo.png"}}}}}};
  const std::vector<InputFile> files = input_files(graph, kObjectInfo, dir_.string());
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].node_id, "1");
  EXPECT_EQ(files[0].relative, "photo.png");
  EXPECT_EQ(files[1].node_id, "2");
  EXPECT_EQ(files[1].relative, "sub/mask.png");
  EXPECT_EQ(files[2].input, "clip");
}

}  // namespace
}  // namespace df::runner
