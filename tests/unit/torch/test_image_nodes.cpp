// Unit tests for ComfyUI's image operations on known pixels (image_ops).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "node_test_support.h"
#include "nodes/image_ops.h"

namespace df::nodes {
namespace {

using test::expect_invalid;
using test::expect_values;

constexpr double kTol = 1e-5;

// A one-image batch [1,H,W,3] whose three channels all hold the row-major `gray` values.
at::Tensor gray_image(const std::vector<float>& gray, int64_t height, int64_t width) {
  return at::tensor(gray, at::kFloat).reshape({1, height, width, 1}).expand({1, height, width, 3}).contiguous();
}

// The first channel of the first image, [H,W].
at::Tensor red_plane(const at::Tensor& pixels) { return pixels[0].select(2, 0); }

TEST(ImageOps, ScaledSizesRoundLikePython) {
  const at::Tensor image = at::zeros({1, 2, 3, 3});
  const PixelSize by = scaled_size(image, 1.5);  // 4.5 -> 4 (ties to even), 3
  EXPECT_EQ(by.width, 4);
  EXPECT_EQ(by.height, 3);
  // int(0.01 * 2^20) = 10485 pixels at 2:1 -> sqrt(10485 / 2) = 72.405 -> 145 x 72.
  const PixelSize total = total_pixels_size(at::zeros({1, 1, 2, 3}), 0.01);
  EXPECT_EQ(total.width, 145);
  EXPECT_EQ(total.height, 72);
  expect_invalid([&] { scaled_size(image, 0.1); });  // 0 x 0 pixels
}

TEST(ImageOps, InvertSubtractsFromOne) {
  expect_values(invert_image(gray_image({0.25f, 1.0f}, 1, 2)), {0.75, 0.75, 0.75, 0, 0, 0}, kTol);
}

TEST(ImageOps, BlurSpreadsAnImpulseWithReflectedBorders) {
  // 3x3 kernel over a [-1,1] grid: weights 1, e^-0.5 (edges), e^-1 (corners), normalised by 4.8976.
  // The border pixels see the impulse twice (edges) or four times (corners) through the reflection.
  const at::Tensor out = blur_image(gray_image({0, 0, 0, 0, 1, 0, 0, 0, 0}, 3, 3), 1, 1.0);
  const double c = 0.2041800, e = 0.2476828, k = 0.3004544;
  expect_values(red_plane(out), {k, e, k, e, c, e, k, e, k}, kTol);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 3, 3, 3}));
}

TEST(ImageOps, BlurNeedsAnImageLargerThanTheRadius) {
  expect_invalid([] { blur_image(at::zeros({1, 2, 2, 3}), 2, 1.0); });
}

TEST(ImageOps, SharpenKeepsFlatAreasAndClamps) {
  // Kernel: -10 x the blur kernel, centre raised so it sums to 1 (8.958). A 0.6 pixel on 0.5:
  // centre 0.5 + 0.1 * 8.958 -> clamped to 1; edge neighbours 0.5 - 0.1 * 2 * 1.2384 = 0.25232.
  const at::Tensor out = sharpen_image(gray_image({0.5, 0.5, 0.5, 0.5, 0.6f, 0.5, 0.5, 0.5, 0.5}, 3, 3), 1, 1.0, 1.0);
  const at::Tensor plane = red_plane(out);
  EXPECT_NEAR(plane[1][1].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(plane[0][1].item<double>(), 0.2523172, 1e-5);
  expect_values(sharpen_image(gray_image({0.3f, 0.3f, 0.3f, 0.3f}, 2, 2), 1, 2.0, 0.5), std::vector<double>(12, 0.3), kTol);
}

TEST(ImageOps, BlendModesOnKnownPixels) {
  const at::Tensor a = gray_image({0.25f, 0.75f}, 1, 2), b = gray_image({0.75f, 0.25f}, 1, 2);
  const auto first_channel = [&](const char* mode, double factor) {
    return blend_images(a, b, factor, mode).select(3, 0).flatten();
  };
  expect_values(first_channel("normal", 1.0), {0.75, 0.25}, kTol);
  expect_values(first_channel("normal", 0.5), {0.5, 0.5}, kTol);
  expect_values(first_channel("multiply", 1.0), {0.1875, 0.1875}, kTol);
  expect_values(first_channel("screen", 1.0), {0.8125, 0.8125}, kTol);
  expect_values(first_channel("overlay", 1.0), {0.375, 0.625}, kTol);
  // soft_light: b > 0.5 -> a + (2b-1)(g(a)-a) with g(0.25) = 0.5; b <= 0.5 -> a - (1-2b)a(1-a).
  expect_values(first_channel("soft_light", 1.0), {0.375, 0.65625}, kTol);
  expect_values(first_channel("difference", 1.0), {0.0, 0.5}, kTol);  // -0.5 clamps to 0
  expect_invalid([&] { blend_images(a, b, 0.5, "dodge"); });
}

TEST(ImageOps, BlendResizesTheSecondImageToTheFirst) {
  const at::Tensor out = blend_images(at::full({1, 4, 6, 3}, 0.2f), at::full({1, 2, 2, 3}, 0.6f), 0.5, "normal");
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 4, 6, 3}));
  EXPECT_NEAR(out.mean().item<double>(), 0.4, 1e-5);
}

TEST(ImageOps, BatchResizesTheSecondImage) {
  const at::Tensor out = batch_images(at::zeros({1, 2, 2, 3}), at::full({2, 4, 4, 3}, 0.3f));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 2, 2, 3}));
  expect_values(out.narrow(0, 1, 2), std::vector<double>(24, 0.3), kTol);
}

TEST(ImageOps, EmptyImageTakesTheHexColour) {
  const at::Tensor out = empty_image(4, 3, 2, 0xFF8000);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 3, 4, 3}));
  expect_values(out[1][2][3], {1.0, 128.0 / 255.0, 0.0}, kTol);
}

TEST(ImageOps, CropKeepsItsOriginInsideTheImage) {
  const at::Tensor ramp = at::arange(16, at::kFloat).reshape({1, 4, 4, 1}).expand({1, 4, 4, 3});
  const at::Tensor out = crop_image(ramp, 2, 2, 3, 1);  // x=3 leaves one column
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 2, 1, 3}));
  expect_values(out.select(3, 0), {7, 11}, kTol);
  expect_values(crop_image(ramp, 5, 5, 9, 9).select(3, 0), {15}, kTol);  // x, y limited to the last pixel
}

TEST(ImageOps, PadForOutpaintFeathersThePaddedSide) {
  const PaddedImage padded = pad_for_outpaint(at::ones({1, 6, 6, 3}), 2, 0, 0, 0, 2);
  EXPECT_EQ(padded.pixels.sizes(), (std::vector<int64_t>{1, 6, 8, 3}));
  expect_values(padded.pixels[0][3].select(1, 0), {0.5, 0.5, 1, 1, 1, 1, 1, 1}, kTol);
  EXPECT_EQ(padded.mask.sizes(), (std::vector<int64_t>{1, 6, 8}));
  // d = distance to the left edge: d=0 -> 1, d=1 -> (1/2)^2, d >= 2 -> 0.
  expect_values(padded.mask[0][4], {1, 1, 1, 0.25, 0, 0, 0, 0}, kTol);
  // Feathering of 3 is not below half of 6: no feathering.
  expect_values(pad_for_outpaint(at::ones({1, 6, 6, 3}), 2, 0, 0, 0, 3).mask[0][0],
                {1, 1, 0, 0, 0, 0, 0, 0}, kTol);
}

TEST(ImageOps, PadForOutpaintMeasuresEveryPaddedSide) {
  const PaddedImage padded = pad_for_outpaint(at::ones({1, 5, 5, 3}), 0, 1, 1, 0, 2);
  // Row 1 of the output is image row 0 (d = 0 from the top): 1 everywhere, plus the pad column.
  expect_values(padded.mask[0][1], {1, 1, 1, 1, 1, 1}, kTol);
  // Image row 3: top distance 3; right distance 5 - j -> j=4: d=1 -> 0.25.
  expect_values(padded.mask[0][4], {0, 0, 0, 0, 0.25, 1}, kTol);
}

TEST(ImageOps, CompositePastesInsideTheDestination) {
  const at::Tensor out = composite_images(at::zeros({1, 3, 3, 3}), at::ones({1, 2, 2, 3}), 2, 1, false, {});
  expect_values(red_plane(out), {0, 0, 0, 0, 0, 1, 0, 0, 1}, kTol);
  const at::Tensor half = composite_images(at::zeros({1, 3, 3, 3}), at::ones({1, 2, 2, 3}), 0, 0, false,
                                           at::full({1, 2, 2}, 0.5f));
  expect_values(red_plane(half), {0.5, 0.5, 0, 0.5, 0.5, 0, 0, 0, 0}, kTol);
}

TEST(ImageOps, CompositeResizesAndRepeatsTheSource) {
  const at::Tensor resized = composite_images(at::zeros({1, 3, 3, 3}), at::full({1, 1, 1, 3}, 0.7f), 0, 0, true, {});
  expect_values(resized, std::vector<double>(27, 0.7), kTol);
  const at::Tensor sources = at::arange(2, at::kFloat).reshape({2, 1, 1, 1}).expand({2, 1, 1, 3});
  const at::Tensor batch = composite_images(at::full({3, 1, 1, 3}, 0.5f), sources, 0, 0, false, {});
  expect_values(batch.select(3, 0).flatten(), {0, 1, 0}, kTol);
}

TEST(ImageOps, CannyFindsBothSidesOfALine) {
  // A one-pixel line at column 4: blurred columns 0.0545, 0.2442, 0.4026, ...; the Sobel magnitude
  // peaks at columns 3 and 5 (4 * 0.348 = 1.39 > high) and the line's own column has none.
  std::vector<float> gray(5 * 9, 0.0f);
  for (int row = 0; row < 5; ++row) gray[row * 9 + 4] = 1.0f;
  const at::Tensor edges = canny_edges(gray_image(gray, 5, 9), 0.4, 0.8);
  EXPECT_EQ(edges.sizes(), (std::vector<int64_t>{1, 5, 9, 3}));
  for (int row = 0; row < 5; ++row) expect_values(red_plane(edges)[row], {0, 0, 0, 1, 0, 1, 0, 0, 0}, kTol);
  EXPECT_TRUE(at::equal(edges.select(3, 0), edges.select(3, 2)));
}

TEST(ImageOps, CannyDropsWeakEdgesWithoutAStrongNeighbour) {
  // At half intensity the peak magnitude (0.70) is only weak: nothing promotes it.
  std::vector<float> gray(5 * 9, 0.0f);
  for (int row = 0; row < 5; ++row) gray[row * 9 + 4] = 0.5f;
  EXPECT_EQ(canny_edges(gray_image(gray, 5, 9), 0.4, 0.8).sum().item<double>(), 0.0);
  // With a lower high threshold the same edges are strong.
  EXPECT_EQ(canny_edges(gray_image(gray, 5, 9), 0.4, 0.6).select(3, 0).sum().item<double>(), 10.0);
  expect_invalid([] { canny_edges(at::zeros({1, 5, 5, 3}), 0.8, 0.4); });
}

TEST(ImageOps, ChannelMasksAndMaskImages) {
  const at::Tensor image = at::tensor({0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}).reshape({1, 1, 2, 3});
  expect_values(image_channel_mask(image, "green"), {0.2, 0.5}, kTol);
  expect_invalid([&] { image_channel_mask(image, "alpha"); });
  expect_invalid([&] { image_channel_mask(image, "cyan"); });
  const at::Tensor rgb = mask_to_image(at::tensor({0.25f, 0.5f}).reshape({1, 2}));
  EXPECT_EQ(rgb.sizes(), (std::vector<int64_t>{1, 1, 2, 3}));
  expect_values(rgb, {0.25, 0.25, 0.25, 0.5, 0.5, 0.5}, kTol);
}

TEST(ImageOps, Image8ChannelMasks) {
  const Image8 rgba{2, 1, 4, {255, 0, 51, 255, 0, 102, 0, 0}};
  expect_values(image8_channel_mask(rgba, "alpha"), {0.0, 1.0}, kTol);
  expect_values(image8_channel_mask(rgba, "red"), {1.0, 0.0}, kTol);
  expect_values(image8_channel_mask(rgba, "blue"), {0.2, 0.0}, kTol);
  const Image8 rgb{2, 1, 3, {255, 0, 0, 0, 0, 0}};
  const at::Tensor opaque = image8_channel_mask(rgb, "alpha");
  EXPECT_EQ(opaque.sizes(), (std::vector<int64_t>{1, 1, 2}));
  expect_values(opaque, {0.0, 0.0}, kTol);
  expect_invalid([&] { image8_channel_mask(rgb, "luma"); });
}

}  // namespace
}  // namespace df::nodes
