// Unit tests of image prompts: ComfyUI's CLIP preprocessing on known pixels, the tiny CLIP vision
// model's detected config, unclip_adm's strength / noise level / sum rules, and unCLIP inputs on a
// model without an image input (ignored, as ComfyUI ignores them).
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/clip_vision.h"
#include "engine/ksampler.h"
#include "engine/noise.h"
#include "engine/safetensors.h"
#include "engine/tiny_clip_vision.h"
#include "engine/unclip.h"
#include "node_test_support.h"
#include "tiny_model_fixture.h"

namespace df::engine {
namespace {

constexpr double kTol = 1e-5;
const double kMean[3] = {0.48145466, 0.4578275, 0.40821073};
const double kStd[3] = {0.26862954, 0.26130258, 0.27577711};

// [1, H, W, 3] where every channel of column x holds x / 255 (or row y holds y / 255).
at::Tensor ramp_image(int64_t height, int64_t width, bool along_columns) {
  at::Tensor ramp = at::arange(along_columns ? width : height, at::kFloat) / 255.0;
  at::Tensor plane = along_columns ? ramp.view({1, width}).expand({height, width})
                                   : ramp.view({height, 1}).expand({height, width});
  return plane.unsqueeze(-1).expand({height, width, 3}).unsqueeze(0).contiguous();
}

double normalised(double value, int channel) { return (value - kMean[channel]) / kStd[channel]; }

TEST(ClipPreprocess, ImageOfTheModelSizeIsOnlyRoundedAndNormalised) {
  at::Tensor image = at::full({1, 4, 4, 3}, 0.5f);
  image.select(3, 1).fill_(0.2f);
  const at::Tensor pixels = clip_preprocess(image, 4, true);
  ASSERT_EQ(pixels.sizes(), (at::IntArrayRef{1, 3, 4, 4}));
  // 0.5 * 255 = 127.5 rounds to 128 (half to even), 0.2 * 255 = 51.
  EXPECT_NEAR(pixels[0][0][0][0].item<double>(), normalised(128.0 / 255, 0), kTol);
  EXPECT_NEAR(pixels[0][1][2][3].item<double>(), normalised(51.0 / 255, 1), kTol);
  EXPECT_NEAR(pixels[0][2][3][3].item<double>(), normalised(128.0 / 255, 2), kTol);
}

TEST(ClipPreprocess, CenterCropKeepsTheMiddleColumnsOfAWideImage) {
  // The short side already has the model's size: no resampling, columns 8..23 of 32 remain.
  const at::Tensor pixels = clip_preprocess(ramp_image(16, 32, true), 16, true);
  ASSERT_EQ(pixels.sizes(), (at::IntArrayRef{1, 3, 16, 16}));
  for (int64_t x : {0, 7, 15}) {
    EXPECT_NEAR(pixels[0][0][5][x].item<double>(), normalised((x + 8) / 255.0, 0), 1e-4) << x;
  }
}

TEST(ClipPreprocess, NoCropSquashesTheWholeImage) {
  // Rows keep their values when only the width is squashed.
  const at::Tensor pixels = clip_preprocess(ramp_image(16, 48, false), 16, false);
  ASSERT_EQ(pixels.sizes(), (at::IntArrayRef{1, 3, 16, 16}));
  for (int64_t y : {0, 9, 15}) {
    for (int64_t x : {0, 15}) {
      EXPECT_NEAR(pixels[0][2][y][x].item<double>(), normalised(y / 255.0, 2), 1e-4);
    }
  }
}

TEST(ClipPreprocess, DropsAlphaAndRefusesNonImages) {
  EXPECT_EQ(clip_preprocess(at::rand({2, 8, 8, 4}), 8, true).sizes(), (at::IntArrayRef{2, 3, 8, 8}));
  test::expect_invalid([] { clip_preprocess(at::rand({8, 8, 3}), 8, true); });
  test::expect_invalid([] { clip_preprocess(at::rand({1, 8, 8, 1}), 8, true); });
}

class TinyClipVision : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path = (std::filesystem::temp_directory_path() /
            ("df_clip_vision_" + std::to_string(::getpid()) + ".safetensors"))
               .string();
    write_tiny_clip_vision(path, Family::kSDXL, 3);
  }
  static void TearDownTestSuite() { std::filesystem::remove(path); }
  static inline std::string path;
};

TEST_F(TinyClipVision, ConfigComesFromTheWeights) {
  const auto model = load_clip_vision(path, "cpu", "float32");
  const ClipVisionConfig& c = model->config();
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.num_attention_heads, 2);
  EXPECT_EQ(c.num_hidden_layers, 3);
  EXPECT_EQ(c.intermediate_size, 256);
  EXPECT_EQ(c.image_size, 16);
  EXPECT_EQ(c.patch_size, 4);
  EXPECT_EQ(c.projection_dim, 32);
  EXPECT_EQ(c.hidden_act, "quick_gelu");
}

TEST_F(TinyClipVision, EncodesImagesOfAnySize) {
  const auto model = load_clip_vision(path, "cpu", "float32");
  const ClipVisionOutput out = model->encode_image(at::rand({2, 30, 21, 3}), true);
  EXPECT_EQ(out.image_embeds.sizes(), (at::IntArrayRef{2, 32}));
  EXPECT_EQ(out.last_hidden_state.sizes(), (at::IntArrayRef{2, 17, 128}));
  EXPECT_EQ(out.penultimate_hidden_states.sizes(), (at::IntArrayRef{2, 17, 128}));
  EXPECT_EQ(out.image_embeds.scalar_type(), at::kFloat);
}

TEST(ClipVisionLoading, FileWithoutATowerIsCorrupt) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("df_not_vision_" + std::to_string(::getpid()) + ".safetensors");
  save_safetensors(path.string(), {{"model.diffusion_model.out.2.weight", at::zeros({2, 2})}});
  EXPECT_EQ(test::error_code_of([&] { load_clip_vision(path.string(), "cpu", "float32"); }),
            ErrorCode::kCorruptFile);
  std::filesystem::remove(path);
}

// ComfyUI rounds (max level - 1) * augmentation half to even.
TEST(UnclipAdm, NoiseLevelIsTheRoundedScaledAugmentation) {
  EXPECT_EQ(unclip_noise_level(0.0), 0);
  EXPECT_EQ(unclip_noise_level(0.5), 500);  // 499.5
  EXPECT_EQ(unclip_noise_level(0.4000000000000002), 400);
  EXPECT_EQ(unclip_noise_level(1.0), 999);
}

TEST(UnclipAdm, OneEntryIsItsAugmentedEmbeddingTimesItsStrength) {
  const EmbeddingNoiseAugmentor augmentor("squaredcos_cap_v2", 8);
  const at::Tensor embeds = at::randn({1, 8});
  const at::Tensor expected =
      augmentor.augment(embeds, 300, comfy_initial_noise({1, 8}, 42)) * 2.5;
  const at::Tensor adm = unclip_adm({{embeds, 2.5, 0.3}}, augmentor, 0.05, 42);
  ASSERT_EQ(adm.sizes(), (at::IntArrayRef{1, 16}));
  EXPECT_TRUE(at::allclose(adm, expected, 1e-6, 1e-6));
}

TEST(UnclipAdm, SeveralRowsAreSummedAndAugmentedAgainAtTheMergeLevel) {
  const EmbeddingNoiseAugmentor augmentor("squaredcos_cap_v2", 8);
  const at::Tensor a = at::randn({1, 8}), b = at::randn({2, 8});
  const at::Tensor noise = comfy_initial_noise({1, 8}, 7);
  const at::Tensor sum = augmentor.augment(a, 0, noise) * 0.5 +
                         augmentor.augment(b.narrow(0, 0, 1), 999, noise) * 2.0 +
                         augmentor.augment(b.narrow(0, 1, 1), 999, noise) * 2.0;
  const at::Tensor expected = augmentor.augment(sum.narrow(1, 0, 8), 50, noise);
  const at::Tensor adm = unclip_adm({{a, 0.5, 0.0}, {b, 2.0, 1.0}}, augmentor, 0.05, 7);
  EXPECT_TRUE(at::allclose(adm, expected, 1e-5, 1e-5));
}

TEST(UnclipAdm, RefusesEmbeddingsOfAnotherWidthAndNoEmbeddings) {
  const EmbeddingNoiseAugmentor augmentor("squaredcos_cap_v2", 8);
  test::expect_invalid([&] { unclip_adm({{at::randn({1, 6}), 1.0, 0.0}}, augmentor, 0.0, 0); });
  test::expect_invalid([&] { unclip_adm({}, augmentor, 0.0, 0); });
  EXPECT_EQ(test::error_code_of([] { EmbeddingNoiseAugmentor("cosine", 8); }),
            ErrorCode::kUnsupported);
}

TEST(UnclipAdm, SdxlPooledIsTheAdmOfTheSeedMinusTenCutToTheWidth) {
  const at::Tensor embeds = at::randn({1, 8});
  const EmbeddingNoiseAugmentor augmentor("squaredcos_cap_v2", 8);
  const at::Tensor expected = unclip_adm({{embeds, 1.0, 0.2}}, augmentor, 0.0, 90).narrow(1, 0, 8);
  const at::Tensor pooled = sdxl_unclip_pooled({{embeds, 1.0, 0.2}}, 8, 100);
  EXPECT_TRUE(at::allclose(pooled, expected, 1e-6, 1e-6));
}

// A tiny SD 1.x model has no image input: ComfyUI's BaseModel ignores unclip_conditioning.
class UnclipOnTextOnlyModel : public test::TinyModelSuite<UnclipOnTextOnlyModel, 11> {};

TEST_F(UnclipOnTextOnlyModel, ImageEmbeddingsChangeNothing) {
  const Conditioning plain = bundle->clip->encode("a boat");
  Conditioning with_image = plain;
  with_image.unclip.push_back({at::randn({1, 32}), 1.0, 0.0});
  const at::Tensor x = at::randn({1, 4, 8, 8}) * 3.0;
  const at::Tensor a = make_guided_denoiser(*bundle->model, {plain}, {}, 1.0, 64, 64)(x, 3.0);
  const at::Tensor b = make_guided_denoiser(*bundle->model, {with_image}, {}, 1.0, 64, 64)(x, 3.0);
  EXPECT_TRUE(at::equal(a, b));
}

}  // namespace
}  // namespace df::engine
