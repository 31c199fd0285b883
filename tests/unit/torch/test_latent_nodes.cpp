// Tests for ComfyUI's latent operations: resizing, compositing, blending, batches and tiling.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "node_test_support.h"
#include "nodes/latent_ops.h"

namespace df::nodes {
namespace {

using test::error_code_of;
using test::expect_values;


std::vector<int64_t> shape_of(const at::Tensor& t) { return t.sizes().vec(); }

LatentValue latent_of(std::vector<int64_t> shape) {
  return LatentValue{at::randn(shape, at::TensorOptions().dtype(at::kFloat))};
}

TEST(LatentUpscale, PixelSizesBecomeCellsWithAspectAndMinimum) {
  const LatentValue latent = latent_of({1, 4, 8, 12});
  EXPECT_EQ(shape_of(upscale_latent(latent, "nearest-exact", 0, 128, "disabled").samples),
            (std::vector<int64_t>{1, 4, 16, 24}));  // width = round(12 * 128 / 8) = 192 px
  EXPECT_EQ(shape_of(upscale_latent(latent, "bilinear", 160, 0, "disabled").samples),
            (std::vector<int64_t>{1, 4, 13, 20}));  // height = round(8 * 160 / 12) = 107 px
  EXPECT_EQ(shape_of(upscale_latent(latent, "area", 16, 16, "center").samples),
            (std::vector<int64_t>{1, 4, 8, 8}));  // both raised to 64 px
  EXPECT_TRUE(upscale_latent(latent, "bicubic", 0, 0, "disabled").samples.equal(latent.samples));
}

TEST(LatentUpscale, KeepsMaskAndBatchIndex) {
  LatentValue latent = latent_of({2, 4, 8, 8});
  latent.noise_mask = at::ones({2, 1, 64, 64});
  latent.batch_index = {3, 4};
  const LatentValue out = upscale_latent_by(latent, "bislerp", 1.5);
  EXPECT_EQ(shape_of(out.samples), (std::vector<int64_t>{2, 4, 12, 12}));
  EXPECT_TRUE(out.noise_mask.equal(latent.noise_mask));
  EXPECT_EQ(out.batch_index, latent.batch_index);
}

TEST(LatentUpscale, ScaleRoundsHalvesToEven) {
  const LatentValue latent = latent_of({1, 4, 6, 10});
  // 10 * 1.25 = 12.5 -> 12 and 6 * 1.25 = 7.5 -> 8, as Python's round() gives.
  EXPECT_EQ(shape_of(upscale_latent_by(latent, "nearest-exact", 1.25).samples),
            (std::vector<int64_t>{1, 4, 8, 12}));
}

TEST(LatentUpscale, CenterCropCutsToTheTargetAspect) {
  // 4 wide, 2 tall -> 1:1 keeps the middle two columns; nearest-exact at the same size copies.
  const at::Tensor samples = at::arange(8, at::kFloat).reshape({1, 1, 2, 4});
  expect_values(upscale_latents(samples, "nearest-exact", 2, 2, "center"), {1, 2, 5, 6}, 0.0);
}

TEST(LatentUpscale, UnknownChoicesAndEmptySizesAreErrors) {
  const at::Tensor samples = at::zeros({1, 4, 8, 8});
  EXPECT_EQ(error_code_of([&] { upscale_latents(samples, "lanczos", 8, 8, "disabled"); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { upscale_latents(samples, "bilinear", 8, 8, "left"); }),
            ErrorCode::kInvalidArgument);
  const LatentValue tiny = latent_of({1, 4, 1, 1});
  EXPECT_EQ(error_code_of([&] { upscale_latent_by(tiny, "bilinear", 0.01); }),
            ErrorCode::kInvalidArgument);
}

TEST(Bislerp, InterpolatesDirectionsAndKeepsEnds) {
  // Two cells along the width: unit vectors e1 and e2 over two channels.
  const at::Tensor samples = at::tensor({1.0f, 0.0f, 0.0f, 1.0f}).reshape({1, 2, 1, 2});
  const at::Tensor out = bislerp(samples, 4, 1);
  ASSERT_EQ(shape_of(out), (std::vector<int64_t>{1, 2, 1, 4}));
  // Bilinear sources: cell 0, 0+0.25, 0+0.75, cell 1 -> angles 0, pi/8, 3pi/8, pi/2.
  const double c = std::cos(M_PI / 8), s = std::sin(M_PI / 8);
  expect_values(out.select(1, 0), {1.0, c, s, 0.0}, 1e-5);
  expect_values(out.select(1, 1), {0.0, s, c, 1.0}, 1e-5);
}

TEST(Bislerp, InterpolatesLengthsLinearly) {
  // Parallel vectors of lengths 1 and 3: dot = 1, so the first is kept as ComfyUI does.
  const at::Tensor samples = at::tensor({1.0f, 3.0f}).reshape({1, 1, 1, 2});
  expect_values(bislerp(samples, 4, 1), {1.0, 1.0, 1.0, 3.0}, 1e-6);
  // Opposite vectors interpolate linearly.
  const at::Tensor opposite = at::tensor({2.0f, -2.0f}).reshape({1, 1, 1, 2});
  expect_values(bislerp(opposite, 4, 1), {2.0, 1.0, -1.0, -2.0}, 1e-6);
}

TEST(Bislerp, ZeroVectorsStayFinite) {
  const at::Tensor out = bislerp(at::zeros({1, 4, 3, 3}), 6, 6);
  EXPECT_TRUE(at::isfinite(out).all().item<bool>());
}

TEST(LatentComposite, PastesAtTheCellOfTheOffset) {
  const at::Tensor destination = at::zeros({1, 1, 4, 4});
  const at::Tensor source = at::ones({1, 1, 2, 2});
  const at::Tensor out = composite_latents(destination, source, 8, 16, 0);
  expect_values(out, {0, 0, 0, 0,  //
                      0, 0, 0, 0,  //
                      0, 1, 1, 0,  //
                      0, 1, 1, 0},
                0.0);
  EXPECT_EQ(destination.sum().item<float>(), 0.0f);  // the input is not changed
}

TEST(LatentComposite, CutsTheSourceAtTheEdgeAndIgnoresOffsetsOutside) {
  const at::Tensor destination = at::zeros({1, 1, 3, 3});
  const at::Tensor source = at::ones({1, 1, 3, 3});
  EXPECT_EQ(composite_latents(destination, source, 16, 16, 0).sum().item<float>(), 1.0f);
  EXPECT_EQ(composite_latents(destination, source, 24, 0, 0).sum().item<float>(), 0.0f);
}

TEST(LatentComposite, FeatherFadesEdgesInsideTheDestination) {
  const at::Tensor destination = at::zeros({1, 1, 6, 6});
  const at::Tensor source = at::ones({1, 1, 4, 4});
  // Two cells of feather: weights 1/2 then 1 from each inner edge.
  const at::Tensor out = composite_latents(destination, source, 8, 8, 16);
  const std::vector<double> ramp = {0.5, 1.0, 1.0, 0.5};
  std::vector<double> expected(36, 0.0);
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c) expected[(r + 1) * 6 + c + 1] = ramp[r] * ramp[c];
  }
  expect_values(out, expected, 1e-6);
  // At the destination's top-left corner those sides are not faded.
  const at::Tensor corner = composite_latents(destination, source, 0, 0, 16);
  expect_values(corner.select(2, 0).narrow(2, 0, 4), {1.0, 1.0, 1.0, 0.5}, 1e-6);
}

TEST(LatentComposite, BatchesMustMatch) {
  EXPECT_EQ(error_code_of([] {
              composite_latents(at::zeros({2, 4, 4, 4}), at::zeros({3, 4, 2, 2}), 0, 0, 0);
            }),
            ErrorCode::kInvalidArgument);
  // One source latent goes into every destination latent.
  const at::Tensor out = composite_latents(at::zeros({2, 1, 2, 2}), at::ones({1, 1, 2, 2}), 0, 0, 0);
  EXPECT_EQ(out.sum().item<float>(), 8.0f);
}

TEST(LatentCompositeMasked, PastesThroughTheMask) {
  const at::Tensor destination = at::zeros({1, 4, 4, 4});
  const at::Tensor source = at::ones({1, 4, 2, 2});
  const at::Tensor out = composite_latents_masked(destination, source, 8, 8, false, at::Tensor());
  EXPECT_EQ(out.sum().item<float>(), 16.0f);
  EXPECT_EQ(out[0][0][1][1].item<float>(), 1.0f);
  const at::Tensor half = at::full({1, 16, 16}, 0.5f);
  const at::Tensor masked = composite_latents_masked(destination, source, 0, 0, false, half);
  EXPECT_NEAR(masked[0][2][1][1].item<float>(), 0.5f, 1e-6);
  const at::Tensor resized = composite_latents_masked(destination, source, 0, 0, true, at::Tensor());
  EXPECT_EQ(resized.sum().item<float>(), 64.0f);
}

TEST(LatentBlend, MixesByTheFactorAfterResizing) {
  const at::Tensor ones = at::ones({1, 4, 4, 4});
  expect_values(blend_latents(ones, at::zeros({1, 4, 4, 4}), 0.25).flatten().narrow(0, 0, 3),
                {0.25, 0.25, 0.25}, 1e-6);
  const at::Tensor blended = blend_latents(ones, at::full({1, 4, 2, 2}, 3.0f), 0.5);
  EXPECT_EQ(shape_of(blended), (std::vector<int64_t>{1, 4, 4, 4}));
  EXPECT_NEAR(blended.mean().item<float>(), 2.0f, 1e-5);
}

TEST(RepeatLatentBatch, RepeatsSamplesMasksAndOffsetsIndices) {
  LatentValue latent = latent_of({2, 4, 2, 2});
  latent.noise_mask = at::stack({at::zeros({1, 2, 2}), at::ones({1, 2, 2})});
  latent.batch_index = {2, 3};
  const LatentValue out = repeat_latent_batch(latent, 3);
  EXPECT_EQ(shape_of(out.samples), (std::vector<int64_t>{6, 4, 2, 2}));
  EXPECT_TRUE(out.samples[4].equal(latent.samples[0]));
  EXPECT_EQ(shape_of(out.noise_mask), (std::vector<int64_t>{6, 1, 2, 2}));
  EXPECT_EQ(out.noise_mask[5].sum().item<float>(), 4.0f);
  EXPECT_EQ(out.batch_index, (std::vector<int>{2, 3, 4, 5, 6, 7}));
}

TEST(RepeatLatentBatch, KeepsASingleMaskAndNoIndices) {
  LatentValue latent = latent_of({1, 4, 2, 2});
  latent.noise_mask = at::ones({1, 1, 2, 2});
  const LatentValue out = repeat_latent_batch(latent, 4);
  EXPECT_EQ(out.noise_mask.size(0), 1);
  EXPECT_TRUE(out.batch_index.empty());
  EXPECT_EQ(error_code_of([&] { repeat_latent_batch(latent, 0); }), ErrorCode::kInvalidArgument);
}

TEST(LatentFromBatch, TakesASliceAndNumbersIt) {
  LatentValue latent = latent_of({4, 4, 2, 2});
  const LatentValue out = latent_from_batch(latent, 1, 2);
  EXPECT_TRUE(out.samples.equal(latent.samples.narrow(0, 1, 2)));
  EXPECT_EQ(out.batch_index, (std::vector<int>{1, 2}));
  EXPECT_FALSE(out.noise_mask.defined());
}

TEST(LatentFromBatch, LimitsIndexAndLengthToTheBatch) {
  LatentValue latent = latent_of({4, 4, 2, 2});
  latent.batch_index = {5, 6, 7, 8};
  EXPECT_EQ(latent_from_batch(latent, 2, 5).batch_index, (std::vector<int>{7, 8}));
  const LatentValue last = latent_from_batch(latent, 10, 3);
  EXPECT_EQ(last.samples.size(0), 1);
  EXPECT_EQ(last.batch_index, (std::vector<int>{8}));
}

TEST(LatentFromBatch, SlicesMasksRepeatedToTheBatch) {
  LatentValue latent = latent_of({4, 4, 2, 2});
  latent.noise_mask = at::arange(2, at::kFloat).reshape({2, 1, 1, 1}).expand({2, 1, 2, 2});
  const LatentValue out = latent_from_batch(latent, 2, 2);  // masks 0,1,0,1 -> 0,1
  expect_values(out.noise_mask.amax({1, 2, 3}), {0.0, 1.0}, 0.0);
  latent.noise_mask = at::ones({1, 1, 2, 2});
  EXPECT_EQ(latent_from_batch(latent, 3, 1).noise_mask.size(0), 1);
}

TEST(LatentFromBatch, EmptyBatchIsAnError) {
  const LatentValue empty{at::zeros({0, 4, 2, 2})};
  EXPECT_EQ(error_code_of([&] { latent_from_batch(empty, 0, 1); }), ErrorCode::kInvalidArgument);
}

TEST(LatentBatch, ResizesTheSecondAndJoinsIndices) {
  LatentValue first = latent_of({2, 4, 8, 8});
  LatentValue second = latent_of({1, 4, 4, 4});
  second.batch_index = {7};
  const LatentValue out = batch_latents(first, second);
  EXPECT_EQ(shape_of(out.samples), (std::vector<int64_t>{3, 4, 8, 8}));
  EXPECT_TRUE(out.samples.narrow(0, 0, 2).equal(first.samples));
  EXPECT_EQ(out.batch_index, (std::vector<int>{0, 1, 7}));
  EXPECT_EQ(error_code_of([&] { batch_latents(first, latent_of({1, 3, 8, 8})); }),
            ErrorCode::kInvalidArgument);
}

// A cell-local function: each cell becomes a scale x scale block of its value (decoding's shape).
at::Tensor blow_up(const at::Tensor& tile, int64_t scale) {
  return tile.repeat_interleave(scale, 2).repeat_interleave(scale, 3);
}

TEST(TiledApply, CellLocalFunctionsMatchTheWholeRun) {
  const at::Tensor input = at::randn({2, 3, 20, 28});
  const TileFunction up = [](const at::Tensor& tile) { return blow_up(tile, 8); };
  const at::Tensor tiled = tiled_apply(input, up, TileGrid{8, 6, 2, 1, 8});
  EXPECT_TRUE(at::allclose(tiled, blow_up(input, 8), 1e-5, 1e-6));

  const TileFunction down = [](const at::Tensor& tile) { return at::avg_pool2d(tile, {8, 8}); };
  const at::Tensor pixels = at::randn({1, 3, 80, 120});
  const at::Tensor encoded = tiled_apply(pixels, down, TileGrid{4, 6, 1, 8, 1});
  EXPECT_TRUE(at::allclose(encoded, at::avg_pool2d(pixels, {8, 8}), 1e-5, 1e-6));
}

TEST(TiledApply, OverlapsBlendWithFeatherWeights) {
  // Tiles of 4 cells overlapping by 2 start at 0 and 2; each returns its start as a constant.
  const at::Tensor input = at::arange(6, at::kFloat).reshape({1, 1, 1, 6});
  const TileFunction start = [](const at::Tensor& tile) {
    return at::full_like(tile, tile[0][0][0][0].item<float>());
  };
  // Columns 2 and 3: tile 0 weighs 1 and 1/2, tile 1 weighs 1/2 and 1.
  expect_values(tiled_apply(input, start, TileGrid{1, 4, 2, 1, 1}),
                {0, 0, 2.0 / 3.0, 4.0 / 3.0, 2, 2}, 1e-6);
}

TEST(TiledApply, SmallInputRunsWholeAndBadOverlapIsAnError) {
  int calls = 0;
  const TileFunction count = [&calls](const at::Tensor& tile) {
    ++calls;
    return tile;
  };
  tiled_apply(at::zeros({1, 1, 4, 4}), count, TileGrid{4, 4, 2, 1, 1});
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(error_code_of([&] { tiled_apply(at::zeros({1, 1, 9, 9}), count, TileGrid{4, 4, 4}); }),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace df::nodes
