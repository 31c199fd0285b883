// Tests of the tiny DiT all-in-one checkpoint writer: the single file holds each split file's
// tensors under ComfyUI's prefixes, the text encoders' configs and T5's tokenizer beside it; other
// families are refused.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "engine/family/dit_tiny_checkpoints.h"
#include "engine/family/flux/flux_tiny.h"
#include "engine/safetensors_file.h"
#include "test_support.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

class DitTinyCheckpointsTest : public ::testing::Test {
 protected:
  test::TestDir root_{"df_dit_tiny_checkpoints_"};
};

// How many tensors of `file` start with `prefix`.
size_t count_under(const SafetensorsFile& file, const std::string& prefix) {
  size_t count = 0;
  for (const SafetensorsTensorInfo& info : file.tensors()) count += info.name.starts_with(prefix);
  return count;
}

TEST_F(DitTinyCheckpointsTest, FluxCheckpointHoldsTheSplitFilesUnderComfyPrefixes) {
  const fs::path split = root_.path() / "split";
  flux::write_tiny_flux_files(split.string(), true, 3);
  const std::string path = (root_.path() / "flux1-dev-fp8.safetensors").string();
  write_tiny_dit_checkpoint(path, "flux", 3);

  const SafetensorsFile whole = SafetensorsFile::open(path);
  for (const auto& [file, prefix] :
       {std::pair{"diffusion_models/flux1-dev.safetensors", "model.diffusion_model."},
        std::pair{"vae/ae.safetensors", "vae."},
        std::pair{"text_encoders/clip_l.safetensors", "text_encoders.clip_l.transformer."},
        std::pair{"text_encoders/t5xxl_fp16.safetensors", "text_encoders.t5xxl.transformer."}}) {
    const SafetensorsFile part = SafetensorsFile::open((split / file).string());
    EXPECT_EQ(count_under(whole, prefix), part.tensors().size()) << prefix;
    for (const SafetensorsTensorInfo& info : part.tensors()) {
      const SafetensorsTensorInfo* copied = whole.find(prefix + info.name);
      ASSERT_NE(copied, nullptr) << prefix << info.name;
      EXPECT_EQ(copied->shape, info.shape);
      EXPECT_EQ(0, std::memcmp(whole.data(*copied), part.data(info), info.end - info.begin));
    }
  }
  EXPECT_TRUE(whole.metadata().contains("dreamforge.clip_l_config"));
  EXPECT_TRUE(fs::is_directory(root_.path() / "flux1-dev-fp8.tokenizer"));
  EXPECT_FALSE(fs::exists(root_.path() / "flux1-dev-fp8.safetensors.parts"));
}

TEST_F(DitTinyCheckpointsTest, Sd3CheckpointHasItsThreeTextEncodersAndFirstStageVae) {
  const std::string path = (root_.path() / "sd3.5_medium.safetensors").string();
  write_tiny_dit_checkpoint(path, "sd3", 0);
  const SafetensorsFile whole = SafetensorsFile::open(path);
  for (const char* prefix :
       {"model.diffusion_model.joint_blocks.", "first_stage_model.",
        "text_encoders.clip_l.transformer.", "text_encoders.clip_g.transformer.",
        "text_encoders.t5xxl.transformer."}) {
    EXPECT_GT(count_under(whole, prefix), 0u) << prefix;
  }
  EXPECT_TRUE(whole.metadata().contains("dreamforge.clip_g_config"));
}

TEST_F(DitTinyCheckpointsTest, OtherFamiliesAreRefused) {
  const std::string path = (root_.path() / "x.safetensors").string();
  EXPECT_EQ(test::error_code_of([&] { write_tiny_dit_checkpoint(path, "sdxl", 0); }),
            ErrorCode::kUnsupported);
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace df::engine
