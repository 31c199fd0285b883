// Upscale models: tiled upscaling against the whole image, the smaller-tile retry on
// out-of-memory, ImageUpscaleWithModel's clamp and channel check, and architecture recognition.
#include <gtest/gtest.h>

#include <c10/util/Exception.h>

#include <vector>

#include "engine/upscale/tiled_upscale.h"
#include "engine/upscale/upscale_model.h"
#include "../test_support.h"

namespace df::engine::upscale {
namespace {

using test::error_code_of;

// A pointwise ×2 upscaler: each output pixel depends on one input pixel only.
at::Tensor pointwise_x2(const at::Tensor& tile) {
  return at::upsample_nearest2d(tile * 2.0 - 0.25, {tile.size(2) * 2, tile.size(3) * 2});
}

// A random compact network (×2, two 3×3 convolutions: each output sees 2 input pixels around it).
UpscaleModel random_compact_x2(int64_t channels = 3) {
  at::manual_seed(0);
  const int64_t features = 8;
  TensorMap tensors = {
      {"body.0.weight", at::randn({features, channels, 3, 3}) * 0.3},
      {"body.0.bias", at::randn({features}) * 0.1},
      {"body.1.weight", at::full({features}, 0.25)},
      {"body.2.weight", at::randn({channels * 4, features, 3, 3}) * 0.3},
      {"body.2.bias", at::randn({channels * 4}) * 0.1}};
  return build_upscale_model(std::move(tensors));
}

// A network that returns the nearest-upsampled input × 3 - 1 (values outside [0, 1]).
class Overshooting : public UpscaleNetwork {
 public:
  at::Tensor forward(const at::Tensor& images) const override {
    return at::upsample_nearest2d(images * 3.0 - 1.0, {images.size(2) * 2, images.size(3) * 2});
  }
};

// The input columns (or rows) of a 40-pixel side that tiles of 16 with overlap 4 cover once, at
// least 4 pixels inside their tile: [0,12), [16,24), [28,40).
at::Tensor single_tile_interior(int64_t scale) {
  at::Tensor keep = at::zeros({40 * scale}, at::kBool);
  for (auto [from, to] : std::vector<std::pair<int64_t, int64_t>>{{0, 12}, {16, 24}, {28, 40}}) {
    keep.narrow(0, from * scale, (to - from) * scale).fill_(true);
  }
  return keep;
}

TEST(TiledUpscale, PointwiseUpscalerGivesTheWholeImageResult) {
  const at::Tensor image = at::rand({2, 3, 45, 38});
  const at::Tensor tiled = tiled_scale(image, pointwise_x2, TileLayout{16, 4, 2, 3});
  EXPECT_EQ(tiled.sizes(), (std::vector<int64_t>{2, 3, 90, 76}));
  EXPECT_LT((tiled - pointwise_x2(image)).abs().max().item<double>(), 1e-5);
}

TEST(TiledUpscale, NetworkMatchesTheWholeImageAwayFromTheSeams) {
  const UpscaleModel model = random_compact_x2();
  const at::Tensor image = at::rand({1, 3, 40, 40});
  const at::Tensor whole = model.forward(image);
  const auto upscale = [&](const at::Tensor& t) { return model.forward(t); };
  const at::Tensor tiled = tiled_scale(image, upscale, TileLayout{16, 4, 2, 3});
  const at::Tensor rows = single_tile_interior(2).view({-1, 1});
  const at::Tensor cols = single_tile_interior(2).view({1, -1});
  const at::Tensor away = (rows & cols).expand_as(whole);
  EXPECT_LT((tiled - whole).abs().masked_select(away).max().item<double>(), 1e-5);
  // Near the seams the tiles saw less context: the blend differs from the whole image there.
  EXPECT_GT((tiled - whole).abs().masked_select(~away).max().item<double>(), 1e-4);
}

TEST(TiledUpscale, OutOfMemoryHalvesTheTileUntilItFits) {
  std::vector<int64_t> attempted;
  const auto fits_128 = [&](const at::Tensor& tile) {
    attempted.push_back(std::max(tile.size(2), tile.size(3)));
    TORCH_CHECK_WITH(OutOfMemoryError, tile.size(2) <= 128 && tile.size(3) <= 128, "out of memory");
    return pointwise_x2(tile);
  };
  const at::Tensor image = at::rand({1, 3, 300, 290});
  const at::Tensor out = upscale_with_tile_fallback(image, fits_128, 2, 3);
  EXPECT_LT((out - pointwise_x2(image)).abs().max().item<double>(), 1e-5);
  ASSERT_GE(attempted.size(), 3u);
  EXPECT_EQ(attempted[0], 300);  // the whole image fits one 512 tile
  EXPECT_EQ(attempted[1], 256);  // then tiles of 256
  for (size_t i = 2; i < attempted.size(); ++i) EXPECT_LE(attempted[i], 128);
}

TEST(TiledUpscale, OutOfMemoryUnderTheSmallestTileIsRethrown) {
  std::vector<int64_t> attempted;
  const auto never_fits = [&](const at::Tensor& tile) -> at::Tensor {
    attempted.push_back(std::max(tile.size(2), tile.size(3)));
    TORCH_CHECK_WITH(OutOfMemoryError, false, "out of memory");
  };
  EXPECT_THROW(upscale_with_tile_fallback(at::rand({1, 3, 600, 600}), never_fits, 2, 3),
               c10::OutOfMemoryError);
  EXPECT_EQ(attempted, (std::vector<int64_t>{512, 256, 128}));
}

TEST(ImageUpscaleWithModel, ClampsToTheUnitRange) {
  UpscaleModel model;
  model.scale = 2;
  model.network = std::make_shared<const Overshooting>();
  const at::Tensor pixels = at::tensor({0.0f, 0.5f, 1.0f}).view({1, 1, 1, 3});
  const at::Tensor out = upscale_image_with_model(model, pixels);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 2, 2, 3}));
  EXPECT_TRUE(at::allclose(out[0][1][1], at::tensor({0.0f, 0.5f, 1.0f})));
}

TEST(ImageUpscaleWithModel, RefusesAnImageOfOtherChannels) {
  const UpscaleModel model = random_compact_x2(1);
  EXPECT_EQ(error_code_of([&] { upscale_image_with_model(model, at::rand({1, 8, 8, 3})); }),
            ErrorCode::kInvalidArgument);
}

TEST(UpscaleModelRecognition, UnwrapsParamsEmaBeforeParams) {
  TensorMap tensors = {{"params_ema.body.0.weight", at::zeros({1})},
                       {"params.other", at::zeros({1})},
                       {"params_ema.body.1.weight", at::zeros({1})}};
  const TensorMap canonical = canonical_upscaler_tensors(std::move(tensors));
  EXPECT_EQ(canonical.size(), 2u);
  EXPECT_TRUE(canonical.count("body.0.weight") && canonical.count("body.1.weight"));
}

TEST(UpscaleModelRecognition, StripsACommonModulePrefix) {
  TensorMap tensors = {{"module.conv_first.weight", at::zeros({1})},
                       {"module.conv_last.weight", at::zeros({1})}};
  const TensorMap canonical = canonical_upscaler_tensors(std::move(tensors));
  EXPECT_TRUE(canonical.count("conv_first.weight") && canonical.count("conv_last.weight"));
}

TEST(UpscaleModelRecognition, OtherArchitecturesAreUnsupported) {
  const auto swin_like = [] {
    build_upscale_model({{"layers.0.attn.qkv.weight", at::zeros({3})}});
  };
  EXPECT_EQ(error_code_of(swin_like), ErrorCode::kUnsupported);
  EXPECT_EQ(error_code_of([] { build_upscale_model({}); }), ErrorCode::kCorruptFile);
}

TEST(UpscaleModelRecognition, EsrganWithAnOddLayerCountIsUnsupported) {
  TensorMap tensors = {{"model.0.weight", at::zeros({4, 3, 3, 3})},
                       {"model.1.sub.0.RDB1.conv1.0.weight", at::zeros({2, 4, 3, 3})},
                       {"model.5.weight", at::zeros({3, 4, 3, 3})}};
  EXPECT_EQ(error_code_of([&] { build_upscale_model(tensors); }), ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace df::engine::upscale
