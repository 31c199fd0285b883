// Unit tests for inpainting (9-channel) and InstructPix2Pix (8-channel) models: how their UNets are
// told apart, the extra inputs each model call reads (ComfyUI's c_concat and its fallbacks), and
// the conditioning nodes that set them.
#include <gtest/gtest.h>

#include "engine/concat_conditioning.h"
#include "engine/ksampler.h"
#include "engine/unet_inputs.h"
#include "node_test_support.h"
#include "nodes/inpaint_ops.h"
#include "tiny_model_fixture.h"

namespace df::engine {
namespace {

using test::expect_invalid;
using test::expect_values;

constexpr double kTol = 1e-5;
constexpr double kSdScale = 0.18215;

class InpaintModel : public test::TinyModelSuite<InpaintModel, 5, 9> {
 protected:
  static const DiffusionModel& model() { return *bundle->model; }
};

class InstructPix2PixModel : public test::TinyModelSuite<InstructPix2PixModel, 6, 8> {
 protected:
  static const DiffusionModel& model() { return *bundle->model; }
};

// Values in [-1, 1] that vary from element to element, the same on every machine.
at::Tensor wave(at::IntArrayRef shape) {
  int64_t count = 1;
  for (int64_t size : shape) count *= size;
  return at::sin(at::arange(count, at::kFloat) * 0.731).reshape(shape);
}

UNetConfig channels(int in, int out) {
  UNetConfig config;
  config.in_channels = in;
  config.out_channels = out;
  return config;
}

TEST(UNetExtraInputs, InputChannelsTellTheModelType) {
  EXPECT_EQ(unet_extra_inputs(channels(4, 4)), UNetExtraInputs::kNone);
  EXPECT_EQ(unet_extra_inputs(channels(9, 4)), UNetExtraInputs::kInpaint);
  EXPECT_EQ(unet_extra_inputs(channels(8, 4)), UNetExtraInputs::kInstructPix2Pix);
  for (int in : {5, 6, 7, 12}) {
    EXPECT_EQ(test::error_code_of([&] { unet_extra_inputs(channels(in, 4)); }),
              ErrorCode::kUnsupported)
        << in << " input channels";
  }
}

TEST(UNetExtraInputs, ACheckpointWithAnotherInputChannelCountIsRefusedAtLoading) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("df_unet_inputs_" + std::to_string(::getpid()));
  write_tiny_model((dir / "six").string(), Family::kSD1, 1, 6);
  const Error error = test::error_of(
      [&] { load_checkpoint_bundle({(dir / "six").string(), "cpu", "float32", ""}); });
  EXPECT_EQ(error.code(), ErrorCode::kUnsupported);
  EXPECT_NE(std::string(error.what()).find("6 input channels"), std::string::npos) << error.what();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

TEST(ResizeToBatch, PicksEntriesEvenlyAsComfyUiDoes) {
  const at::Tensor three = at::arange(3, at::kFloat);
  expect_values(resize_to_batch(three, 5), {0, 0, 1, 2, 2}, kTol);
  expect_values(resize_to_batch(three, 2), {0, 2}, kTol);
  expect_values(resize_to_batch(three, 1), {0}, kTol);
  expect_values(resize_to_batch(three, 3), {0, 1, 2}, kTol);
}

TEST_F(InpaintModel, TheTinyCheckpointHasANineChannelUNet) {
  EXPECT_EQ(model().unet->config().in_channels, 9);
  EXPECT_EQ(unet_extra_inputs(model().unet->config()), UNetExtraInputs::kInpaint);
}

TEST_F(InpaintModel, WithoutAnyMaskTheModelReadsOnesAndABlackImage) {
  const std::vector<at::Tensor> parts = concat_inputs(model(), Conditioning{}, {}, 4, 6);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_TRUE(at::equal(parts[0], at::ones({1, 1, 4, 6})));
  ASSERT_EQ(parts[1].sizes(), at::IntArrayRef({1, 4, 4, 6}));
  expect_values(parts[1].select(3, 5).select(2, 3), {0.8223, -0.6876, 0.6364, 0.1380}, kTol);
}

TEST_F(InpaintModel, TheEntrysMaskIsResizedAndRoundedAndItsImageScaled) {
  Conditioning cond;
  cond.concat_mask = at::zeros({1, 1, 32, 48});
  cond.concat_mask.narrow(3, 0, 24).fill_(1.0);
  cond.concat_mask.narrow(3, 24, 24).fill_(0.4);  // rounds to 0
  cond.concat_latent_image = at::ones({1, 4, 4, 6});
  const std::vector<at::Tensor> parts = concat_inputs(model(), cond, {}, 4, 6);
  expect_values(parts[0][0][0][2], {1, 1, 1, 0, 0, 0}, kTol);
  EXPECT_TRUE(at::allclose(parts[1], at::full({1, 4, 4, 6}, kSdScale)));
}

TEST_F(InpaintModel, WithoutConcatInputsTheLatentAndItsNoiseMaskStandIn) {
  const ConcatFallback fallback{at::full({1, 4, 4, 6}, 2.0), at::full({1, 1, 4, 6}, 0.7)};
  const std::vector<at::Tensor> parts = concat_inputs(model(), Conditioning{}, fallback, 4, 6);
  EXPECT_TRUE(at::equal(parts[0], at::ones({1, 1, 4, 6})));
  EXPECT_TRUE(at::allclose(parts[1], at::full({1, 4, 4, 6}, 2.0 * kSdScale)));
  // An empty latent is not scaled; without a noise mask the latent is not read at all.
  const ConcatFallback empty{at::zeros({1, 4, 4, 6}), at::full({1, 1, 4, 6}, 0.7)};
  EXPECT_TRUE(
      at::equal(concat_inputs(model(), Conditioning{}, empty, 4, 6)[1], at::zeros({1, 4, 4, 6})));
  const ConcatFallback unmasked{at::full({1, 4, 4, 6}, 2.0), {}};
  EXPECT_NEAR(concat_inputs(model(), Conditioning{}, unmasked, 4, 6)[1][0][0][0][0].item<double>(),
              0.8223, kTol);
}

TEST_F(InpaintModel, ConcatImagesOfAnotherSizeAreResizedAndOthersRefused) {
  Conditioning cond;
  cond.concat_mask = at::ones({1, 4, 6});
  cond.concat_latent_image = at::ones({1, 4, 8, 12});
  EXPECT_EQ(concat_inputs(model(), cond, {}, 4, 6)[1].sizes(), at::IntArrayRef({1, 4, 4, 6}));
  cond.concat_latent_image = at::ones({1, 3, 4, 6});
  expect_invalid([&] { concat_inputs(model(), cond, {}, 4, 6); });
}

// cfg 1 and two full-size entries of strength 1: their estimates are averaged, so one call with
// both (their extra inputs batched) must equal the mean of a call with each.
TEST_F(InpaintModel, EntriesWithDifferentConcatInputsKeepTheirOwnInTheSharedCall) {
  Conditioning first = bundle->clip->encode("a");
  first.concat_mask = at::ones({1, 32, 32});
  first.concat_latent_image = at::full({1, 4, 4, 4}, 0.5);
  Conditioning second = first;
  second.concat_mask = at::zeros({1, 32, 32});
  second.concat_latent_image = at::full({1, 4, 4, 4}, -1.0);
  const at::Tensor x = wave({2, 4, 4, 4}) * 2;
  const double sigma = 1.0;
  auto denoise = [&](const ConditioningList& positive) {
    return make_guided_denoiser(model(), positive, {}, 1.0, 32, 32)(x, sigma);
  };
  const at::Tensor both = denoise({first, second});
  const at::Tensor each = (denoise({first}) + denoise({second})) / 2;
  EXPECT_TRUE(at::allclose(both, each, 1e-4, 1e-5)) << (both - each).abs().max().item<double>();
  EXPECT_FALSE(at::allclose(denoise({first}), denoise({second}), 1e-3, 1e-3));
}

TEST_F(InstructPix2PixModel, TheModelReadsTheEntrysImageAsEncodedOrZeros) {
  EXPECT_EQ(unet_extra_inputs(model().unet->config()), UNetExtraInputs::kInstructPix2Pix);
  std::vector<at::Tensor> parts = concat_inputs(model(), Conditioning{}, {}, 4, 6);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_TRUE(at::equal(parts[0], at::zeros({1, 4, 4, 6})));
  Conditioning cond;
  cond.concat_latent_image = at::full({1, 4, 4, 6}, 3.0);
  // SD 1.x InstructPix2Pix reads the VAE's latent unscaled; the latent's fallback is not used.
  const ConcatFallback fallback{at::ones({1, 4, 4, 6}), at::ones({1, 1, 4, 6})};
  EXPECT_TRUE(at::equal(concat_inputs(model(), cond, fallback, 4, 6)[0], cond.concat_latent_image));
}

TEST_F(InpaintModel, InpaintModelConditioningMasksGreyAndKeepsTheWholeImageAsTheLatent) {
  const at::Tensor pixels = wave({1, 18, 20, 3}) * 0.5 + 0.5;
  at::Tensor mask = at::zeros({1, 9, 10});
  mask.narrow(2, 0, 5).fill_(1.0);  // the left half, at half the image's size
  const nodes::InpaintConditioning made =
      nodes::inpaint_model_conditioning(*bundle->vae, pixels, mask, true);
  // The mask is resized to the pixels, then both are cropped by (1, 2) to 16x16.
  ASSERT_EQ(made.concat_mask.sizes(), at::IntArrayRef({1, 1, 16, 16}));
  EXPECT_TRUE(at::equal(made.latent.noise_mask, made.concat_mask));
  at::Tensor grey = pixels.narrow(1, 1, 16).narrow(2, 2, 16).clone();
  const at::Tensor masked = made.concat_mask[0][0].round().to(at::kBool);
  grey.select(0, 0).index_put_({masked}, 0.5);
  EXPECT_TRUE(at::allclose(made.concat_latent_image, bundle->vae->encode(grey), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(made.latent.samples, bundle->vae->encode(pixels), 1e-5, 1e-6));
  EXPECT_FALSE(nodes::inpaint_model_conditioning(*bundle->vae, pixels, mask, false)
                   .latent.noise_mask.defined());
  expect_invalid(
      [&] { nodes::inpaint_model_conditioning(*bundle->vae, pixels, at::zeros({3}), true); });
  const at::Tensor two_masks = at::zeros({2, 9, 10});  // for one image
  expect_invalid(
      [&] { nodes::inpaint_model_conditioning(*bundle->vae, pixels, two_masks, true); });
  expect_invalid([&] {
    nodes::inpaint_model_conditioning(*bundle->vae, at::zeros({1, 4, 4, 3}), mask, true);
  });
}

TEST_F(InstructPix2PixModel, InstructPixToPixConditioningEncodesThePixelsAndZeroesTheLatent) {
  const at::Tensor pixels = wave({1, 16, 24, 3}) * 0.5 + 0.5;
  const nodes::InstructPix2PixConditioning made =
      nodes::instruct_pix2pix_conditioning(*bundle->vae, pixels);
  EXPECT_TRUE(at::allclose(made.concat_latent_image, bundle->vae->encode(pixels), 1e-5, 1e-6));
  EXPECT_TRUE(at::equal(made.latent.samples, at::zeros({1, 4, 2, 3})));
}

}  // namespace
}  // namespace df::engine
