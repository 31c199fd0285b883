// Unit tests for VAEEncodeForInpaint's inputs: masked pixels set to grey, the crop to whole VAE
// cells, and the noise mask grown as ComfyUI grows it.
#include <gtest/gtest.h>

#include "core/error.h"
#include "nodes/latent_ops.h"

namespace df::nodes {
namespace {

at::Tensor square_mask(int64_t size, int64_t from, int64_t length) {
  at::Tensor mask = at::zeros({1, size, size});
  mask.narrow(1, from, length).narrow(2, from, length).fill_(1.0);
  return mask;
}

TEST(InpaintEncodeInputs, MaskedPixelsTurnGreyAndTheMaskBecomesTheNoiseMask) {
  const at::Tensor pixels = at::full({1, 16, 16, 3}, 0.8);
  const InpaintEncodeInputs inputs = inpaint_encode_inputs(pixels, square_mask(16, 4, 4), 0, 8);
  ASSERT_EQ(inputs.pixels.sizes(), at::IntArrayRef({1, 16, 16, 3}));
  EXPECT_FLOAT_EQ(inputs.pixels[0][5][5][1].item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(inputs.pixels[0][0][0][1].item<float>(), 0.8f);
  ASSERT_EQ(inputs.noise_mask.sizes(), at::IntArrayRef({1, 1, 16, 16}));
  EXPECT_TRUE(at::equal(inputs.noise_mask[0][0], square_mask(16, 4, 4)[0]));
}

TEST(InpaintEncodeInputs, GrowingTheMaskWidensItTowardsTheBottomRightFirst) {
  const at::Tensor pixels = at::full({1, 16, 16, 3}, 0.8);
  // A 2x2 box filter padded by ceil(1/2) = 1 cell: each masked cell also covers the next one.
  const InpaintEncodeInputs inputs = inpaint_encode_inputs(pixels, square_mask(16, 4, 4), 2, 8);
  EXPECT_TRUE(at::equal(inputs.noise_mask[0][0], square_mask(16, 4, 5)[0]));
  EXPECT_FLOAT_EQ(inputs.pixels[0][8][8][0].item<float>(), 0.8f);  // pixels follow the ungrown mask
}

TEST(InpaintEncodeInputs, ImagesAreCroppedToWholeCellsAroundTheirCentre) {
  at::Tensor pixels = at::zeros({1, 18, 20, 3});
  pixels[0][1][2][0] = 1.0;  // the first kept pixel: offsets (18 % 8) / 2 and (20 % 8) / 2
  const InpaintEncodeInputs inputs = inpaint_encode_inputs(pixels, at::zeros({1, 18, 20}), 6, 8);
  ASSERT_EQ(inputs.pixels.sizes(), at::IntArrayRef({1, 16, 16, 3}));
  EXPECT_FLOAT_EQ(inputs.pixels[0][0][0][0].item<float>(), 1.0f);
  EXPECT_EQ(inputs.noise_mask.sizes(), at::IntArrayRef({1, 1, 16, 16}));
  EXPECT_THROW(inpaint_encode_inputs(at::zeros({1, 4, 4, 3}), at::zeros({1, 4, 4}), 0, 8), df::Error);
}

}  // namespace
}  // namespace df::nodes
