// Downloaded models' folders and registry entries.
#include <gtest/gtest.h>

#include <fstream>

#include "download/model_layout.h"
#include "registry/model_catalog.h"
#include "test_support.h"

namespace df::download {
namespace {

Release tiny_release() {
  Release release;
  release.source_uri = "hf:org/tiny@main";
  release.revision = "0123456789abcdef0123456789abcdef01234567";
  release.name = "tiny";
  release.version = "0123456789ab";
  release.extra = {{"source", "huggingface"}};
  return release;
}

TEST(DownloadLayout, FoldersByKindAndId) {
  const ModelLayout layout("/m");
  EXPECT_EQ(layout.model_dir("loras", "x@1"), "/m/loras/x@1");
  EXPECT_EQ(layout.staging_dir("loras", "x@1"), "/m/.staging/loras/x@1");
  EXPECT_EQ(layout.quarantine_dir("checkpoints", "x@1"), "/m/.quarantine/checkpoints/x@1");
  EXPECT_EQ(model_id(tiny_release()), "tiny@0123456789ab");
}

TEST(DownloadLayout, DiffusersFolderIsLoadedWholeAndHashedByItsUnet) {
  const auto model = describe_download(
      tiny_release(),
      {{"unet/diffusion_pytorch_model.safetensors", 10, "u"}, {"model_index.json", 2, "i"}},
      "/m/checkpoints/tiny@0123456789ab", "/m/checkpoints");
  EXPECT_EQ(model.id, "tiny@0123456789ab");
  EXPECT_EQ(model.format, "diffusers");
  EXPECT_EQ(model.local_path, "/m/checkpoints/tiny@0123456789ab");
  EXPECT_EQ(model.ckpt_name, "tiny@0123456789ab");
  EXPECT_EQ(model.checkpoint_hash, "u");
  EXPECT_EQ(model.source_uri, "hf:org/tiny@main");
  EXPECT_EQ(model.revision, tiny_release().revision);
  ASSERT_EQ(model.files.size(), 2u);
  EXPECT_EQ(model.files[0].path, "model_index.json");  // sorted
}

TEST(DownloadLayout, SingleWeightsFileIsWhatTheRunnerLoads) {
  auto release = tiny_release();
  release.kind = "loras";
  const auto model = describe_download(
      release, {{"ink.safetensors", 10, "w"}, {"notes.txt", 1, "n"}}, "/m/loras/ink@1", "/m/loras");
  EXPECT_EQ(model.format, "safetensors");
  EXPECT_EQ(model.local_path, "/m/loras/ink@1/ink.safetensors");
  EXPECT_EQ(model.ckpt_name, "ink@1/ink.safetensors");
  EXPECT_EQ(model.checkpoint_hash, "w");
  EXPECT_EQ(model.kind, "loras");
}

class DownloadInstalledFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.path() / "a.json") << "{}";
    Model model;
    model.id = "tiny@1";
    model.name = "tiny";
    model.local_path = ".";
    model.source_uri = "hf:org/tiny@main";
    model.files = {
        {"a.json", 2, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}};
    std::ofstream(dir_.path() / registry::kModelDescriptorFile) << model_to_json(model).dump();
  }
  test::TestDir dir_{"df_download_layout_"};
};

TEST_F(DownloadInstalledFiles, DescriptorIsReadWithAnAbsolutePath) {
  const auto model = read_descriptor(dir_.path().string());
  ASSERT_TRUE(model.has_value());
  EXPECT_EQ(model->local_path, dir_.path().string());
  EXPECT_EQ(model->source_uri, "hf:org/tiny@main");
  EXPECT_FALSE(read_descriptor((dir_.path() / "absent").string()).has_value());
}

TEST_F(DownloadInstalledFiles, ChecksPresenceSizesAndHashes) {
  const auto dir = dir_.path().string();
  const auto model = *read_descriptor(dir);
  EXPECT_TRUE(check_model_files(dir, model, /*rehash=*/true).empty());

  std::ofstream(dir_.path() / "a.json") << "[]";  // same size, other bytes
  EXPECT_TRUE(check_model_files(dir, model, /*rehash=*/false).empty());
  const auto problems = check_model_files(dir, model, /*rehash=*/true);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("a.json: sha256"), std::string::npos);

  std::ofstream(dir_.path() / "a.json") << "{ }";
  EXPECT_NE(check_model_files(dir, model, false).at(0).find("3 bytes, expected 2"),
            std::string::npos);
  std::filesystem::remove(dir_.path() / "a.json");
  EXPECT_EQ(check_model_files(dir, model, false), std::vector<std::string>{"a.json: missing"});
}

}  // namespace
}  // namespace df::download
