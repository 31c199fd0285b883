// Tests for IMAGE tensor <-> 8-bit raster conversions and ComfyUI-compatible ImageScale resizing.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "node_test_support.h"
#include "nodes/image_tensors.h"

namespace df::nodes {
namespace {

using test::expect_values;


at::Tensor image_tensor(const std::vector<float>& values, int64_t height, int64_t width) {
  return at::tensor(values, at::kFloat).reshape({1, height, width, 3});
}

// A 2x3 test image whose channels step through multiples of 1/6.
at::Tensor ramp_image() {
  return (at::arange(18, at::kFloat).remainder(7) / 6.0).reshape({1, 2, 3, 3});
}

// An 8-bit image as an IMAGE tensor (exact: k/255 survives the round trip).
at::Tensor from_bytes(const std::vector<uint8_t>& bytes, int height, int width) {
  Image8 image{width, height, 3, bytes};
  return from_image8(image).pixels;
}

void expect_bytes(const at::Tensor& pixels, const std::vector<int>& expected, int tol) {
  const at::Tensor bytes = (pixels * 255.0).round().to(at::kInt).flatten().contiguous();
  ASSERT_EQ(bytes.numel(), static_cast<int64_t>(expected.size()));
  const int* values = bytes.data_ptr<int>();
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(values[i], expected[i], tol) << "index " << i;
  }
}

TEST(ToImage8, TruncatesLikeComfyUiSaveImage) {
  const at::Tensor pixels =
      image_tensor({0.999f, 1.0f, 0.5f, 0.0f, -0.25f, 1.75f, 0.00392f, 0.996f, 0.2f}, 1, 3);
  const Image8 image = to_image8(pixels, 0);
  EXPECT_EQ(image.width, 3);
  EXPECT_EQ(image.height, 1);
  EXPECT_EQ(image.channels, 3);
  EXPECT_EQ(image.pixels, (std::vector<uint8_t>{254, 255, 127, 0, 0, 255, 0, 253, 51}));
}

TEST(ToImage8, PicksTheBatchIndexAndKeepsRowMajorLayout) {
  at::Tensor batch = at::zeros({2, 2, 3, 3}, at::kDouble);
  batch[1][0][2][1] = 1.0;  // row 0, column 2, green
  batch[1][1][0][2] = 1.0;  // row 1, column 0, blue
  const Image8 image = to_image8(batch, 1);
  ASSERT_EQ(image.pixels.size(), 18u);
  EXPECT_EQ(image.width, 3);
  EXPECT_EQ(image.height, 2);
  std::vector<uint8_t> expected(18, 0);
  expected[(0 * 3 + 2) * 3 + 1] = 255;
  expected[(1 * 3 + 0) * 3 + 2] = 255;
  EXPECT_EQ(image.pixels, expected);
  EXPECT_EQ(to_image8(batch, 0).pixels, std::vector<uint8_t>(18, 0));
}

TEST(FromImage8, RgbGivesPixelsAndAnEmptyMask) {
  const Image8 image{3, 2, 3, {0, 51, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 128, 254, 100}};
  const DecodedImage decoded = from_image8(image);
  EXPECT_EQ(decoded.pixels.sizes(), at::IntArrayRef({1, 2, 3, 3}));
  EXPECT_EQ(decoded.pixels.scalar_type(), at::kFloat);
  std::vector<double> expected;
  for (uint8_t byte : image.pixels) expected.push_back(byte / 255.0);
  expect_values(decoded.pixels, expected, 1e-7);
  EXPECT_EQ(decoded.mask.sizes(), at::IntArrayRef({1, 64, 64}));
  EXPECT_EQ(decoded.mask.abs().sum().item<double>(), 0.0);
}

TEST(FromImage8, AlphaBecomesTheInvertedMask) {
  const Image8 image{2, 1, 4, {10, 20, 30, 255, 40, 50, 60, 0}};
  const DecodedImage decoded = from_image8(image);
  EXPECT_EQ(decoded.pixels.sizes(), at::IntArrayRef({1, 1, 2, 3}));
  expect_values(decoded.pixels,
                {10 / 255.0, 20 / 255.0, 30 / 255.0, 40 / 255.0, 50 / 255.0, 60 / 255.0}, 1e-7);
  EXPECT_EQ(decoded.mask.sizes(), at::IntArrayRef({1, 1, 2}));
  expect_values(decoded.mask, {0.0, 1.0}, 1e-7);
}

TEST(FromImage8, EveryByteSurvivesTheRoundTrip) {
  Image8 image{256, 1, 3, std::vector<uint8_t>(256 * 3)};
  for (int i = 0; i < 256 * 3; ++i) image.pixels[i] = static_cast<uint8_t>(i / 3);
  EXPECT_EQ(to_image8(from_image8(image).pixels, 0).pixels, image.pixels);
}

// Reference values: torch.nn.functional.interpolate on the same input, as ComfyUI calls it.
TEST(ScaleImages, InterpolationMethodsMatchComfyUi) {
  const at::Tensor image = ramp_image();
  struct Case {
    const char* method;
    std::vector<double> expected;
  };
  const std::vector<Case> cases = {
      {"nearest-exact",
       {0, 0.16666667, 0.33333334, 1, 0, 0.16666667, 0.33333334, 0.5, 0.66666669, 0.16666667,
        0.33333334, 0.5, 0.33333334, 0.5, 0.66666669, 0.16666667, 0.33333334, 0.5}},
      {"bilinear",
       {0.125, 0.29166669, 0.45833334, 0.875, 0.16666667, 0.33333331, 0.29166666, 0.45833334,
        0.47916669, 0.60416669, 0.33333334, 0.35416666, 0.45833334, 0.62499994, 0.5, 0.33333334,
        0.5, 0.375}},
      {"bicubic",
       {0.063207567, 0.2744503, 0.46762207, 0.95369035, 0.13968463, 0.33285642, 0.28287759,
        0.47005212, 0.48404944, 0.61979169, 0.33528647, 0.34928387, 0.50254762, 0.66565394,
        0.50047702, 0.28589335, 0.53088826, 0.36571142}},
      {"area",
       {0.25, 0.41666669, 0.58333331, 0.75, 0.33333334, 0.5, 0.41666669, 0.58333337, 0.45833331,
        0.625, 0.5, 0.375, 0.58333331, 0.75, 0.33333334, 0.5, 0.66666669, 0.25}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.method);
    const at::Tensor out = scale_images(image, c.method, 2, 3, "disabled");
    EXPECT_EQ(out.sizes(), at::IntArrayRef({1, 3, 2, 3}));
    expect_values(out, c.expected, 1e-6);
  }
}

// ComfyUI's ImageScale returns interpolate's result as is: bicubic overshoot at edges stays.
TEST(ScaleImages, BicubicKeepsItsOvershoot) {
  at::Tensor step = at::zeros({1, 1, 4, 3}, at::kFloat);
  step.narrow(2, 2, 2).fill_(1.0);
  const at::Tensor out = scale_images(step, "bicubic", 8, 1, "disabled");
  expect_values(out.select(3, 0),
                {0, -0.03515625, -0.10546875, 0.2265625, 0.7734375, 1.1054688, 1.0351562, 1},
                1e-6);
}

TEST(ScaleImages, ZeroWidthAndHeightReturnTheInput) {
  const at::Tensor image = ramp_image();
  EXPECT_TRUE(scale_images(image, "bilinear", 0, 0, "disabled").equal(image));
}

TEST(ScaleImages, ZeroSideKeepsTheAspectRatio) {
  EXPECT_EQ(scale_images(at::zeros({1, 4, 6, 3}), "bilinear", 0, 2, "disabled").sizes(),
            at::IntArrayRef({1, 2, 3, 3}));
  EXPECT_EQ(scale_images(at::zeros({1, 4, 6, 3}), "bilinear", 12, 0, "disabled").sizes(),
            at::IntArrayRef({1, 8, 12, 3}));
  EXPECT_EQ(scale_images(at::zeros({1, 100, 3, 3}), "area", 1, 0, "disabled").sizes(),
            at::IntArrayRef({1, 33, 1, 3}));
  EXPECT_EQ(scale_images(at::zeros({1, 3, 100, 3}), "area", 0, 1, "disabled").sizes(),
            at::IntArrayRef({1, 1, 33, 3}));
  EXPECT_EQ(scale_images(at::zeros({1, 1, 100, 3}), "area", 1, 0, "disabled").sizes(),
            at::IntArrayRef({1, 1, 1, 3}));
}

// Python's round() breaks ties to even: 5 * 1 / 2 = 2.5 -> 2.
TEST(ScaleImages, ZeroSideRoundsHalfToEvenLikePython) {
  EXPECT_EQ(scale_images(at::zeros({1, 2, 5, 3}), "nearest-exact", 0, 1, "disabled").sizes(),
            at::IntArrayRef({1, 1, 2, 3}));
  EXPECT_EQ(scale_images(at::zeros({1, 5, 2, 3}), "nearest-exact", 1, 0, "disabled").sizes(),
            at::IntArrayRef({1, 2, 1, 3}));
  EXPECT_EQ(scale_images(at::zeros({1, 2, 7, 3}), "nearest-exact", 0, 1, "disabled").sizes(),
            at::IntArrayRef({1, 1, 4, 3}));
}

// Columns (or rows) numbered 0, 1, 2, ... so the output shows which ones the crop kept.
at::Tensor numbered(int64_t height, int64_t width, int64_t dim) {
  const int64_t count = dim == 2 ? width : height;
  at::Tensor line = at::arange(count, at::kFloat) / static_cast<double>(count - 1);
  at::Tensor image = dim == 2 ? line.reshape({1, 1, width, 1}) : line.reshape({1, height, 1, 1});
  return image.expand({1, height, width, 3}).contiguous();
}

TEST(ScaleImages, CenterCropKeepsTheMiddle) {
  // 6 wide, 4 high to 4x4: one column off each side, then an identity resize.
  const at::Tensor wide = numbered(4, 6, 2);
  const at::Tensor cropped = scale_images(wide, "nearest-exact", 4, 4, "center");
  EXPECT_EQ(cropped.sizes(), at::IntArrayRef({1, 4, 4, 3}));
  EXPECT_TRUE(cropped.equal(wide.narrow(2, 1, 4)));
  // 4 wide, 8 high to 4x4: two rows off top and bottom.
  const at::Tensor tall = numbered(8, 4, 1);
  EXPECT_TRUE(scale_images(tall, "bilinear", 4, 4, "center").equal(tall.narrow(1, 2, 4)));
  // Same aspect ratio: nothing is cropped.
  const at::Tensor same = numbered(4, 4, 2);
  EXPECT_TRUE(scale_images(same, "nearest-exact", 2, 2, "center")
                  .equal(scale_images(same, "nearest-exact", 2, 2, "disabled")));
}

// ComfyUI's crop offset is Python's round((w - w * new/old) / 2), ties to even.
TEST(ScaleImages, CenterCropRoundsHalfToEvenLikePython) {
  // 5 wide to square: offset round(0.5) = 0, so all 5 columns are resized to 4.
  expect_values(scale_images(numbered(4, 5, 2), "nearest-exact", 4, 4, "center")[0][0].select(1, 0),
                {0, 0.25, 0.75, 1}, 1e-6);
  // 9 wide to square: offset round(2.5) = 2, columns 2..6.
  expect_values(scale_images(numbered(4, 9, 2), "nearest-exact", 4, 4, "center")[0][0].select(1, 0),
                {0.25, 0.375, 0.625, 0.75}, 1e-6);
}

// Reference values: Pillow's Image.resize(LANCZOS) on the same 8-bit image, as ComfyUI calls it.
// Pillow rounds to 8 bits after each of its two passes, so values may differ by one step.
TEST(ScaleImages, LanczosMatchesPillow) {
  const std::vector<uint8_t> bytes = {
      139, 74,  229, 241, 169, 65,  6,   160, 149, 106, 38,  175, 188, 205, 175,
      229, 98,  249, 10,  148, 95,  86,  147, 198, 66,  39,  106, 213, 171, 45,
      167, 57,  69,  81,  55,  14,  153, 178, 215, 76,  52,  39,  250, 72,  215,
      50,  161, 223, 112, 172, 161, 233, 38,  17,  89,  1,   221, 6,   242, 127};
  const at::Tensor image = from_bytes(bytes, 4, 5);
  const at::Tensor down = scale_images(image, "lanczos", 3, 2, "disabled");
  EXPECT_EQ(down.sizes(), at::IntArrayRef({1, 2, 3, 3}));
  expect_bytes(
      down, {166, 112, 151, 56, 131, 139, 164, 110, 128, 104, 119, 127, 136, 85, 111, 114, 98, 144},
      1);
  const at::Tensor narrow_tall = scale_images(image, "lanczos", 3, 6, "disabled");
  EXPECT_EQ(narrow_tall.sizes(), at::IntArrayRef({1, 6, 3, 3}));
  expect_bytes(narrow_tall,
               {195, 121, 150, 82,  133, 123, 144, 128, 196, 166, 135, 185, 56,  124,
                140, 146, 126, 127, 135, 113, 163, 42,  122, 151, 169, 99,  69,  140,
                53,  51,  85,  133, 129, 193, 62,  128, 103, 117, 114, 157, 80,  101,
                104, 98,  168, 70,  192, 210, 194, 34,  89,  24,  141, 170},
               1);
  // Upscaling rings past black and white: the first pass must clip like the library's 8 bits.
  const at::Tensor up = scale_images(image, "lanczos", 8, 6, "disabled");
  EXPECT_EQ(up.sizes(), at::IntArrayRef({1, 6, 8, 3}));
  expect_bytes(
      up, {107, 60,  242, 206, 106, 154, 255, 175, 55,  74,  192, 104, 0,   110, 168, 97,  35,
           179, 172, 131, 189, 190, 226, 192, 186, 82,  255, 173, 122, 188, 123, 176, 85,  55,
           179, 129, 35,  98,  181, 79,  33,  159, 157, 130, 117, 201, 224, 92,  255, 88,  227,
           134, 100, 153, 0,   133, 82,  59,  168, 180, 94,  118, 200, 58,  42,  90,  162, 97,
           52,  247, 162, 59,  208, 56,  88,  132, 38,  27,  56,  61,  20,  119, 168, 199, 117,
           166, 192, 66,  62,  29,  189, 47,  108, 255, 71,  221, 95,  109, 143, 90,  109, 115,
           116, 111, 85,  193, 120, 96,  177, 75,  114, 90,  28,  131, 94,  100, 168, 118, 165,
           191, 37,  166, 243, 54,  191, 238, 124, 179, 163, 225, 81,  9,   220, 0,   56,  103,
           0,   233, 7,   161, 187, 0,   255, 94},
      1);
  EXPECT_GE(up.min().item<double>(), 0.0);
  EXPECT_LE(up.max().item<double>(), 1.0);
}

TEST(ScaleImages, ScalesEveryImageOfABatch) {
  const at::Tensor batch = at::cat({ramp_image(), 1.0 - ramp_image()}, 0);
  for (const char* method : {"nearest-exact", "bilinear", "area", "bicubic", "lanczos"}) {
    SCOPED_TRACE(method);
    const at::Tensor out = scale_images(batch, method, 5, 4, "center");
    EXPECT_EQ(out.sizes(), at::IntArrayRef({2, 4, 5, 3}));
    EXPECT_TRUE(out[0].allclose(scale_images(ramp_image(), method, 5, 4, "center")[0]));
  }
}

TEST(ScaleImages, UnknownMethodOrCropIsInvalidArgument) {
  const at::Tensor image = ramp_image();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"bislerp", "disabled"}, {"nearest", "disabled"}, {"", "disabled"}, {"bilinear", "top"}};
  for (const auto& [method, crop] : bad) {
    try {
      scale_images(image, method, 4, 4, crop);
      ADD_FAILURE() << "no error for " << method << "/" << crop;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    }
  }
}

}  // namespace
}  // namespace df::nodes
