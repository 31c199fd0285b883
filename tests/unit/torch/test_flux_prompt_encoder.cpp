// FLUX.1's text side on the tiny split files: ComfyUI's shapes, separate prompts, file order, errors.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/error.h"
#include "engine/clip_vocab_location.h"
#include "engine/family/dit_text_encoders.h"
#include "engine/family/flux/flux_prompt_encoder.h"
#include "engine/family/flux/flux_tiny.h"
#include "engine/text/t5_tokenizer.h"

namespace df::engine::flux {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kTinyWidth = 32;  // tiny T5's d_model and tiny CLIP-L's hidden size

class FluxPromptEncoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("df_flux_prompt_encoder_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    write_tiny_flux_files(root_.string(), true, 3);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static std::string text_file(const std::string& name) {
    return (root_ / "text_encoders" / name).string();
  }
  static std::shared_ptr<const PromptEncoder> load(const std::string& first,
                                                   const std::string& second) {
    return load_prompt_encoder({text_file(first), text_file(second)}, "flux", "cpu", "float32", "");
  }
  static const FluxPromptEncoder& flux(const std::shared_ptr<const PromptEncoder>& encoder) {
    return dynamic_cast<const FluxPromptEncoder&>(*encoder);
  }

  static fs::path root_;
};

fs::path FluxPromptEncoderTest::root_;

bool same(const at::Tensor& a, const at::Tensor& b) { return at::equal(a, b); }

TEST_F(FluxPromptEncoderTest, ContextIsT5PaddedTo256AndPooledIsClipL) {
  const auto encoder = load(kT5File, kClipLFile);
  EXPECT_EQ(encoder->family(), Family::kFlux);
  const Conditioning cond = encoder->encode("a red fox in the snow");
  EXPECT_EQ(cond.context.sizes(), (std::vector<int64_t>{1, kFluxT5MinLength, kTinyWidth}));
  EXPECT_EQ(cond.pooled.sizes(), (std::vector<int64_t>{1, kTinyWidth}));
  EXPECT_EQ(cond.context.scalar_type(), at::kFloat);
  EXPECT_EQ(cond.pooled.scalar_type(), at::kFloat);
  EXPECT_FALSE(cond.guidance.has_value());
}

TEST_F(FluxPromptEncoderTest, FilesLoadInEitherOrder) {
  const Conditioning a = load(kT5File, kClipLFile)->encode("a red fox");
  const Conditioning b = load(kClipLFile, kT5File)->encode("a red fox");
  EXPECT_TRUE(same(a.context, b.context));
  EXPECT_TRUE(same(a.pooled, b.pooled));
}

TEST_F(FluxPromptEncoderTest, EachPartReadsItsOwnText) {
  const auto encoder = load(kT5File, kClipLFile);
  const Conditioning both = encoder->encode("a red fox");
  EXPECT_TRUE(same(flux(encoder).encode_parts("a red fox", "a red fox").context, both.context));
  const Conditioning other_t5 = flux(encoder).encode_parts("a red fox", "a blue whale");
  EXPECT_TRUE(same(other_t5.pooled, both.pooled));
  EXPECT_FALSE(same(other_t5.context, both.context));
  const Conditioning other_clip = flux(encoder).encode_parts("a blue whale", "a red fox");
  EXPECT_TRUE(same(other_clip.context, both.context));
  EXPECT_FALSE(same(other_clip.pooled, both.pooled));
}

TEST_F(FluxPromptEncoderTest, LongT5PromptsAreNotCut) {
  std::string prompt;
  for (int i = 0; i < 300; ++i) prompt += "a ";
  const Conditioning cond = load(kT5File, kClipLFile)->encode(prompt);
  EXPECT_GT(cond.context.size(1), kFluxT5MinLength);
}

TEST_F(FluxPromptEncoderTest, TwoFilesOfOneKindAreRefused) {
  try {
    load(kT5File, kT5File);
    FAIL() << "two T5 files loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("one CLIP-L and one T5-XXL"), std::string::npos);
  }
  EXPECT_THROW(load(kClipLFile, kClipLFile), Error);
  EXPECT_FALSE(dit_text_family("flux", 1).has_value());
  EXPECT_EQ(dit_text_family("flux", 2), Family::kFlux);
}

TEST_F(FluxPromptEncoderTest, T5TokenizerIsFoundBesideTheWeights) {
  EXPECT_EQ(t5_tokenizer_beside(text_file(kT5File)),
            (root_ / "text_encoders" / "t5xxl_fp16.tokenizer").string());
  EXPECT_TRUE(holds_t5_encoder(text_file(kT5File)));
  EXPECT_FALSE(holds_t5_encoder(text_file(kClipLFile)));
}

TEST_F(FluxPromptEncoderTest, WithoutATokenizerBesideItT5TakesTheInstalledOne) {
  const std::filesystem::path lone = root_ / "lone" / "t5.safetensors";
  std::filesystem::create_directories(lone.parent_path());
  std::filesystem::copy_file(text_file(kT5File), lone,
                             std::filesystem::copy_options::overwrite_existing);
  const std::filesystem::path installed = installed_data_dir("t5");
  if (std::filesystem::is_regular_file(installed / "tokenizer.json")) {
    EXPECT_EQ(t5_tokenizer_beside(lone.string()), installed.string());
  } else {
    try {
      t5_tokenizer_beside(lone.string());
      ADD_FAILURE() << "no tokenizer anywhere, yet one was found";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kModelNotFound);
    }
  }
}

}  // namespace
}  // namespace df::engine::flux
