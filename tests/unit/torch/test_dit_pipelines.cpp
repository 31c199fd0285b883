// Tests of the DiT families' diffusers pipeline folders: which folders count as one, and the clear
// errors for a folder that is incomplete or whose files are broken.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../test_support.h"
#include "core/error.h"
#include "engine/checkpoint_bundle.h"
#include "engine/family/dit_pipeline_writer.h"
#include "engine/family/dit_pipelines.h"
#include "engine/tiny_model.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

class DitPipelineFolderTest : public ::testing::Test {
 protected:
  test::TestDir dir{"df_dit_pipeline_"};

  fs::path written(const std::string& family) {
    const fs::path folder = dir.path() / family;
    write_tiny_dit_pipeline(folder.string(), family, 3);
    return folder;
  }

  static Error load_error(const fs::path& folder) {
    return test::error_of([&] { load_checkpoint_bundle({folder.string(), "cpu", "float32", ""}); });
  }
};

TEST_F(DitPipelineFolderTest, FoldersOfEachFamilyAreRecognised) {
  EXPECT_EQ(dit_pipeline_family(written("flux").string()), Family::kFlux);
  EXPECT_EQ(dit_pipeline_family(written("flux-schnell").string()), Family::kFlux);
  EXPECT_EQ(dit_pipeline_family(written("sd3").string()), Family::kSD3);
  EXPECT_EQ(dit_pipeline_family(written("zimage").string()), Family::kZImage);
}

TEST_F(DitPipelineFolderTest, SdFoldersFilesAndTransformerFoldersAreNotPipelines) {
  const fs::path sd = dir.path() / "sd1";
  write_tiny_model(sd.string(), Family::kSD1, 1);
  EXPECT_EQ(dit_pipeline_family(sd.string()), std::nullopt);
  EXPECT_EQ(dit_pipeline_family((sd / "model_index.json").string()), std::nullopt);
  EXPECT_EQ(dit_pipeline_family((written("zimage") / "transformer").string()), std::nullopt);
}

TEST_F(DitPipelineFolderTest, ALoadedFolderHasTheWholeBundle) {
  const CheckpointBundle bundle =
      load_checkpoint_bundle({written("zimage").string(), "cpu", "float32", ""});
  EXPECT_EQ(bundle.family, Family::kZImage);
  EXPECT_EQ(bundle.name, "zimage");
  ASSERT_TRUE(bundle.model && bundle.model->network && bundle.prompt_encoder && bundle.vae);
}

TEST_F(DitPipelineFolderTest, AFolderPathWithATrailingSlashKeepsItsName) {
  const std::string path = written("flux-schnell").string() + "/";
  EXPECT_EQ(load_checkpoint_bundle({path, "cpu", "float32", ""}).name, "flux-schnell");
}

TEST_F(DitPipelineFolderTest, AMissingTokenizerIsNamed) {
  const fs::path folder = written("flux-schnell");
  fs::remove_all(folder / "tokenizer_2");
  const Error error = load_error(folder);
  EXPECT_EQ(error.code(), ErrorCode::kModelNotFound);
  EXPECT_NE(std::string(error.what()).find("tokenizer_2"), std::string::npos) << std::string(error.what());
}

TEST_F(DitPipelineFolderTest, AMissingTextEncoderIsNamed) {
  const fs::path folder = written("zimage");
  fs::remove(folder / "text_encoder" / "model.safetensors");
  const Error error = load_error(folder);
  EXPECT_EQ(error.code(), ErrorCode::kModelNotFound);
  EXPECT_NE(std::string(error.what()).find("text_encoder"), std::string::npos) << std::string(error.what());
}

TEST_F(DitPipelineFolderTest, ABrokenShardIndexIsACorruptFile) {
  const fs::path folder = written("zimage");
  fs::remove(folder / "text_encoder" / "model.safetensors");
  std::ofstream(folder / "text_encoder" / "model.safetensors.index.json") << R"({"weight_map": 3})";
  EXPECT_EQ(load_error(folder).code(), ErrorCode::kCorruptFile);
}

TEST_F(DitPipelineFolderTest, AShardedClipIsRefusedNamingTheFolder) {
  const fs::path folder = written("flux-schnell");
  const fs::path clip = folder / "text_encoder";
  fs::rename(clip / "model.safetensors", clip / "model-00001-of-00002.safetensors");
  fs::copy_file(clip / "model-00001-of-00002.safetensors", clip / "model-00002-of-00002.safetensors");
  std::ofstream(clip / "model.safetensors.index.json")
      << R"({"weight_map": {"a": "model-00001-of-00002.safetensors",)"
      << R"( "b": "model-00002-of-00002.safetensors"}})";
  const Error error = load_error(folder);
  EXPECT_EQ(error.code(), ErrorCode::kUnsupported);
  EXPECT_NE(std::string(error.what()).find(clip.string()), std::string::npos) << std::string(error.what());
}

TEST_F(DitPipelineFolderTest, TheWriterRefusesAFolderHoldingSomethingElse) {
  const fs::path folder = dir.path() / "mine";
  fs::create_directories(folder);
  std::ofstream(folder / "notes.txt") << "keep";
  EXPECT_EQ(test::error_of([&] { write_tiny_dit_pipeline(folder.string(), "sd3", 1); }).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(fs::exists(folder / "notes.txt"));
  EXPECT_EQ(test::error_of([&] { write_tiny_dit_pipeline((dir.path() / "x").string(), "sd1", 1); })
                .code(),
            ErrorCode::kUnsupported);
}

TEST_F(DitPipelineFolderTest, TheWriterReplacesAnEarlierTestModel) {
  const fs::path folder = written("zimage");
  write_tiny_dit_pipeline(folder.string(), "sd3", 4);
  EXPECT_EQ(dit_pipeline_family(folder.string()), Family::kSD3);
  EXPECT_FALSE(fs::exists(folder.parent_path() / ".sd3.split"));
}

}  // namespace
}  // namespace df::engine
