// SD3's text side on the tiny split files: ComfyUI's shapes, zero padding and missing encoders.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/error.h"
#include "engine/family/dit_text_encoders.h"
#include "engine/family/sd3/sd3_prompt_encoder.h"
#include "engine/family/sd3/sd3_tiny.h"

namespace df::engine::sd3 {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kTinyClipWidth = 32;  // the tiny CLIP-L's hidden size and CLIP-G's projection

class Sd3PromptEncoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() /
            ("df_sd3_prompt_encoder_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    write_tiny_sd3_files(root_.string(), 5);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static std::shared_ptr<const PromptEncoder> load(const std::vector<std::string>& names) {
    std::vector<std::string> paths;
    for (const auto& name : names) paths.push_back((root_ / "text_encoders" / name).string());
    return load_prompt_encoder(paths, "sd3", "cpu", "float32", "");
  }
  static const Sd3PromptEncoder& sd3(const std::shared_ptr<const PromptEncoder>& encoder) {
    return dynamic_cast<const Sd3PromptEncoder&>(*encoder);
  }

  static fs::path root_;
};

fs::path Sd3PromptEncoderTest::root_;

TEST_F(Sd3PromptEncoderTest, AllThreeGiveClipThenT5TokensAndBothPooledVectors) {
  const auto encoder = load({kT5File, kClipLFile, kClipGFile});
  EXPECT_EQ(encoder->family(), Family::kSD3);
  const Conditioning cond = encoder->encode("a red fox in the snow");
  ASSERT_EQ(cond.context.sizes(), (std::vector<int64_t>{1, 77 + 77, kContextWidth}));
  ASSERT_EQ(cond.pooled.sizes(), (std::vector<int64_t>{1, 2 * kTinyClipWidth}));
  const at::Tensor clip_padding = cond.context.narrow(1, 0, 77).narrow(
      2, 2 * kTinyClipWidth, kContextWidth - 2 * kTinyClipWidth);
  EXPECT_TRUE(clip_padding.eq(0).all().item<bool>());
  EXPECT_GT(cond.context.narrow(1, 77, 77).abs().sum().item<double>(), 0.0);
}

TEST_F(Sd3PromptEncoderTest, LongPromptsTakeMoreClipChunks) {
  std::string prompt;
  for (int i = 0; i < 40; ++i) prompt += "red fox, ";
  const Conditioning cond = load({kClipLFile, kClipGFile})->encode(prompt);
  EXPECT_EQ(cond.context.size(1), 2 * 77);
}

TEST_F(Sd3PromptEncoderTest, MissingClipLLeavesZerosInItsColumnsAndPooledEntries) {
  const Conditioning cond = load({kClipGFile})->encode("a red fox");
  ASSERT_EQ(cond.context.sizes(), (std::vector<int64_t>{1, 77, kContextWidth}));
  ASSERT_EQ(cond.pooled.sizes(), (std::vector<int64_t>{1, kClipLWidth + kTinyClipWidth}));
  EXPECT_TRUE(cond.context.narrow(2, 0, kClipLWidth).eq(0).all().item<bool>());
  EXPECT_TRUE(cond.pooled.narrow(1, 0, kClipLWidth).eq(0).all().item<bool>());
}

TEST_F(Sd3PromptEncoderTest, NoTokensAnywhereGiveComfyUIsZeroConditioning) {
  const Conditioning cond =
      sd3(load({kClipLFile, kClipGFile, kT5File})).encode_sd3("", "", "", /*pad_empty=*/false);
  // T5 alone still encodes its lone end token; without T5 the context is 77 zero tokens.
  EXPECT_EQ(cond.context.size(1), 1);
  EXPECT_TRUE(cond.pooled.eq(0).all().item<bool>());
  EXPECT_EQ(cond.pooled.size(1), kClipLWidth + kClipGWidth);
  const Conditioning clips_only =
      sd3(load({kClipLFile, kClipGFile})).encode_sd3("", "", "", /*pad_empty=*/false);
  EXPECT_EQ(clips_only.context.sizes(), (std::vector<int64_t>{1, 77, kContextWidth}));
  EXPECT_TRUE(clips_only.context.eq(0).all().item<bool>());
}

TEST_F(Sd3PromptEncoderTest, EmptyPromptPaddingEncodesEmptyTexts) {
  const auto encoder = load({kClipLFile, kClipGFile, kT5File});
  const Conditioning padded = sd3(encoder).encode_sd3("", "", "", /*pad_empty=*/true);
  const Conditioning plain = encoder->encode("");
  EXPECT_TRUE(padded.context.equal(plain.context));
  EXPECT_TRUE(padded.pooled.equal(plain.pooled));
}

TEST_F(Sd3PromptEncoderTest, TwoFilesOfOneKindAreRefused) {
  try {
    load({kClipLFile, kClipLFile});
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(error.what()).find("two CLIP-L"), std::string::npos);
  }
}

}  // namespace
}  // namespace df::engine::sd3
