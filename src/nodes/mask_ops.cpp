// ComfyUI's mask operations (invert, solid, threshold, crop, grow, feather, composite) on ATen.
#include "nodes/mask_ops.h"

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace df::nodes {
namespace {

at::Tensor as_batch(const at::Tensor& mask) {
  return mask.reshape({-1, mask.size(-2), mask.size(-1)});
}

// One round of grey dilation (max) or erosion (min) over the 3x3 footprint.
at::Tensor morphology_step(const at::Tensor& masks, bool dilate, bool tapered_corners) {
  const int64_t height = masks.size(1), width = masks.size(2);
  const at::Tensor padded = at::replication_pad2d(masks.unsqueeze(1), {1, 1, 1, 1}).squeeze(1);
  at::Tensor result = masks;
  for (int64_t dy = -1; dy <= 1; ++dy) {
    for (int64_t dx = -1; dx <= 1; ++dx) {
      if (tapered_corners && dy != 0 && dx != 0) continue;
      const at::Tensor shifted = padded.narrow(1, 1 + dy, height).narrow(2, 1 + dx, width);
      result = dilate ? at::maximum(result, shifted) : at::minimum(result, shifted);
    }
  }
  return result;
}

// The factor of each position along an axis of `size` for FeatherMask's near and far edges.
at::Tensor feather_factors(int64_t size, int64_t near, int64_t far) {
  at::Tensor factors = at::ones({size}, at::kFloat);
  for (int64_t i = 0; i < near; ++i) {
    factors[i] *= static_cast<double>(i + 1) / static_cast<double>(near);
  }
  for (int64_t k = 0; k < far; ++k) {
    const int64_t index = k == 0 ? 0 : size - k;
    factors[index] *= static_cast<double>(k + 1) / static_cast<double>(far);
  }
  return factors;
}

void require_known_operation(const std::string& operation) {
  static const std::vector<std::string> known = {"multiply", "add", "subtract", "and", "or", "xor"};
  if (std::find(known.begin(), known.end(), operation) == known.end()) {
    throw Error(ErrorCode::kInvalidArgument, "unknown operation '" + operation + "'");
  }
}

// One of the known operations; the logical ones see values rounded to 0 or 1.
at::Tensor combine(const at::Tensor& a, const at::Tensor& b, const std::string& operation) {
  if (operation == "multiply") return a * b;
  if (operation == "add") return a + b;
  if (operation == "subtract") return a - b;
  const at::Tensor lhs = at::round(a).to(at::kBool), rhs = at::round(b).to(at::kBool);
  if (operation == "and") return at::logical_and(lhs, rhs).to(at::kFloat);
  if (operation == "or") return at::logical_or(lhs, rhs).to(at::kFloat);
  return at::logical_xor(lhs, rhs).to(at::kFloat);
}

void require_source_batch_fits(const at::Tensor& destination, const at::Tensor& source) {
  if (source.size(0) != 1 && source.size(0) != destination.size(0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "MaskComposite: a batch of " + std::to_string(source.size(0)) +
                    " source masks does not fit " + std::to_string(destination.size(0)) +
                    " destination masks");
  }
}

}  // namespace

at::Tensor invert_mask(const at::Tensor& mask) { return 1.0 - mask; }

at::Tensor solid_mask(double value, int64_t width, int64_t height) {
  return at::full({1, height, width}, value, at::kFloat);
}

at::Tensor threshold_mask(const at::Tensor& mask, double value) {
  return (mask > value).to(at::kFloat);
}

at::Tensor crop_mask(const at::Tensor& mask, int64_t x, int64_t y, int64_t width, int64_t height) {
  const at::Tensor masks = as_batch(mask);
  const int64_t rows = masks.size(1), cols = masks.size(2);
  const int64_t top = std::min(y, rows), left = std::min(x, cols);
  return masks.narrow(1, top, std::min(height, rows - top)).narrow(2, left, std::min(width, cols - left));
}

at::Tensor grow_mask(const at::Tensor& mask, int64_t expand, bool tapered_corners) {
  at::Tensor masks = as_batch(mask).contiguous();
  for (int64_t i = 0; i < std::abs(expand); ++i) {
    masks = morphology_step(masks, expand > 0, tapered_corners);
  }
  return masks;
}

at::Tensor feather_mask(const at::Tensor& mask, int64_t left, int64_t top, int64_t right,
                        int64_t bottom) {
  const at::Tensor masks = as_batch(mask);
  const int64_t rows = masks.size(1), cols = masks.size(2);
  const at::Tensor column_factors =
      feather_factors(cols, std::min(left, cols), std::min(right, cols));
  const at::Tensor row_factors = feather_factors(rows, std::min(top, rows), std::min(bottom, rows));
  return masks * row_factors.view({1, rows, 1}) * column_factors.view({1, 1, cols});
}

at::Tensor composite_masks(const at::Tensor& destination, const at::Tensor& source, int64_t x,
                           int64_t y, const std::string& operation) {
  require_known_operation(operation);
  at::Tensor output = as_batch(destination).clone();
  const at::Tensor src = as_batch(source);
  require_source_batch_fits(output, src);
  const int64_t left = std::min(x, output.size(2)), top = std::min(y, output.size(1));
  const int64_t visible_w = std::min(left + src.size(2), output.size(2)) - left;
  const int64_t visible_h = std::min(top + src.size(1), output.size(1)) - top;
  if (visible_w > 0 && visible_h > 0) {
    at::Tensor region = output.narrow(1, top, visible_h).narrow(2, left, visible_w);
    const at::Tensor part = src.narrow(1, 0, visible_h).narrow(2, 0, visible_w);
    region.copy_(combine(region, part, operation));
  }
  return output.clamp(0.0, 1.0);
}

}  // namespace df::nodes
