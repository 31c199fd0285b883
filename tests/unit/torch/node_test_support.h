// Assertions shared by the tests of node operations: tensor values and invalid arguments.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "../test_support.h"
#include "core/error.h"

namespace df::test {

// Expects `actual` (any shape) to hold `expected` in row-major order, within `tol`.
inline void expect_values(const at::Tensor& actual, const std::vector<double>& expected,
                          double tol) {
  const at::Tensor flat = actual.flatten().to(at::kDouble).contiguous();
  ASSERT_EQ(flat.numel(), static_cast<int64_t>(expected.size()));
  const double* values = flat.data_ptr<double>();
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(values[i], expected[i], tol) << "index " << i;
  }
}

// Expects `run` to throw a df::Error with ErrorCode::kInvalidArgument.
inline void expect_invalid(const std::function<void()>& run) {
  EXPECT_EQ(error_code_of(run), ErrorCode::kInvalidArgument);
}

}  // namespace df::test
