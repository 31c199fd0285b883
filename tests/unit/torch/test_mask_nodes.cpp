// Unit tests for ComfyUI's mask operations on known pixels (mask_ops).
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/error.h"
#include "node_test_support.h"
#include "nodes/mask_ops.h"

namespace df::nodes {
namespace {

using test::expect_invalid;
using test::expect_values;

constexpr double kTol = 1e-6;

at::Tensor mask(const std::vector<float>& values, int64_t height, int64_t width) {
  return at::tensor(values, at::kFloat).reshape({1, height, width});
}

// A 5x5 mask with a single 1 at (row, col).
at::Tensor dot(int64_t row, int64_t col) {
  at::Tensor m = at::zeros({1, 5, 5});
  m[0][row][col] = 1.0;
  return m;
}

TEST(MaskOps, InvertSolidAndThreshold) {
  expect_values(invert_mask(mask({0.0f, 0.25f}, 1, 2)), {1.0, 0.75}, kTol);
  const at::Tensor solid = solid_mask(0.3, 3, 2);
  EXPECT_EQ(solid.sizes(), (std::vector<int64_t>{1, 2, 3}));
  expect_values(solid, std::vector<double>(6, 0.3), kTol);
  expect_values(threshold_mask(mask({0.2f, 0.5f, 0.51f}, 1, 3), 0.5), {0, 0, 1}, kTol);  // strictly greater
}

TEST(MaskOps, CropCutsAtTheEdges) {
  const at::Tensor grid = at::arange(9, at::kFloat).reshape({3, 3});  // a 2-D mask
  const at::Tensor out = crop_mask(grid, 1, 1, 5, 1);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 1, 2}));
  expect_values(out, {4, 5}, kTol);
  EXPECT_EQ(crop_mask(grid, 3, 0, 2, 2).numel(), 0);  // starts past the last column: empty
}

TEST(MaskOps, GrowDilatesWithACrossOrASquare) {
  expect_values(grow_mask(dot(2, 2), 1, true), {0, 0, 0, 0, 0,  //
                                                0, 0, 1, 0, 0,  //
                                                0, 1, 1, 1, 0,  //
                                                0, 0, 1, 0, 0,  //
                                                0, 0, 0, 0, 0}, kTol);
  expect_values(grow_mask(dot(2, 2), 1, false), {0, 0, 0, 0, 0,  //
                                                 0, 1, 1, 1, 0,  //
                                                 0, 1, 1, 1, 0,  //
                                                 0, 1, 1, 1, 0,  //
                                                 0, 0, 0, 0, 0}, kTol);
  expect_values(grow_mask(dot(2, 2), 2, true), {0, 0, 1, 0, 0,  //
                                                0, 1, 1, 1, 0,  //
                                                1, 1, 1, 1, 1,  //
                                                0, 1, 1, 1, 0,  //
                                                0, 0, 1, 0, 0}, kTol);
  expect_values(grow_mask(dot(0, 0), 1, true).flatten().narrow(0, 0, 7), {1, 1, 0, 0, 0, 1, 0}, kTol);
}

TEST(MaskOps, NegativeGrowErodes) {
  const at::Tensor cross = grow_mask(dot(2, 2), 1, true);
  EXPECT_TRUE(at::equal(grow_mask(cross, -1, true), dot(2, 2)));
  // Outside the mask repeats the edge: a full mask stays full; a zero corner grows to a 2x2 block.
  at::Tensor full = at::ones({1, 3, 3});
  expect_values(grow_mask(full, -1, false), std::vector<double>(9, 1.0), kTol);
  full[0][0][0] = 0.0;
  expect_values(grow_mask(full, -1, false), {0, 0, 1, 0, 0, 1, 1, 1, 1}, kTol);
  EXPECT_TRUE(at::equal(grow_mask(full, 0, false), full));
}

TEST(MaskOps, FeatherScalesTheEdgesAsComfyUIDoes) {
  const at::Tensor row = at::ones({1, 1, 4});
  expect_values(feather_mask(row, 4, 0, 0, 0), {0.25, 0.5, 0.75, 1.0}, kTol);
  // right: the factor (k+1)/n goes to index -k, so index 0 takes 1/2 and the last column 2/2.
  expect_values(feather_mask(row, 0, 0, 2, 0), {0.5, 1.0, 1.0, 1.0}, kTol);
  expect_values(feather_mask(row, 0, 0, 3, 0), {1.0 / 3.0, 1.0, 1.0, 2.0 / 3.0}, kTol);
  expect_values(feather_mask(row, 2, 0, 2, 0), {0.25, 1.0, 1.0, 1.0}, kTol);
  const at::Tensor column = at::ones({1, 3, 1});
  expect_values(feather_mask(column, 0, 3, 0, 0), {1.0 / 3.0, 2.0 / 3.0, 1.0}, kTol);
  expect_values(feather_mask(column, 0, 9, 0, 0), {1.0 / 3.0, 2.0 / 3.0, 1.0}, kTol);  // limited to the height
}

TEST(MaskOps, CompositeOperationsOnTheOverlap) {
  const at::Tensor destination = at::full({1, 3, 3}, 0.5f);
  const at::Tensor source = at::ones({1, 2, 2});
  const auto corner = [&](const char* operation) {
    return composite_masks(destination, source, 2, 2, operation);
  };
  const std::vector<double> rest(8, 0.5);
  auto with_corner = [&](double value) {
    std::vector<double> out = rest;
    out.push_back(value);
    return out;
  };
  expect_values(corner("multiply"), with_corner(0.5), kTol);
  expect_values(corner("add"), with_corner(1.0), kTol);  // 1.5 clamped
  expect_values(corner("subtract"), with_corner(0.0), kTol);
  // The logical operations round first: 0.5 rounds to 0 (ties to even).
  expect_values(corner("and"), with_corner(0.0), kTol);
  expect_values(corner("or"), with_corner(1.0), kTol);
  expect_values(corner("xor"), with_corner(1.0), kTol);
  expect_values(composite_masks(destination, source, 3, 0, "add"), std::vector<double>(9, 0.5), kTol);
  expect_invalid([&] { corner("divide"); });
}

TEST(MaskOps, CompositeBatches) {
  const at::Tensor destinations = at::zeros({2, 1, 1});
  expect_values(composite_masks(destinations, at::full({1, 1, 1}, 0.4f), 0, 0, "add"), {0.4, 0.4}, kTol);
  expect_values(composite_masks(destinations, at::tensor({0.1f, 0.2f}).reshape({2, 1, 1}), 0, 0, "add"),
                {0.1, 0.2}, kTol);
  expect_invalid([&] { composite_masks(destinations, at::zeros({3, 1, 1}), 0, 0, "add"); });
}

}  // namespace
}  // namespace df::nodes
