// ComfyUI's mask operations on MASK tensors ([B,H,W] or [H,W] float); tensors in, [B,H,W] out.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

namespace df::nodes {

// InvertMask: 1 - mask.
at::Tensor invert_mask(const at::Tensor& mask);

// SolidMask: [1,H,W] filled with `value`.
at::Tensor solid_mask(double value, int64_t width, int64_t height);

// ThresholdMask: 1 where mask > value, else 0.
at::Tensor threshold_mask(const at::Tensor& mask, double value);

// CropMask: rows y..y+height and columns x..x+width, cut at the mask's edges (may be empty).
at::Tensor crop_mask(const at::Tensor& mask, int64_t x, int64_t y, int64_t width, int64_t height);

// GrowMask: |expand| rounds of grey dilation (expand > 0) or erosion (expand < 0) over a 3x3
// cross (tapered_corners) or square; pixels outside the mask repeat the edge.
at::Tensor grow_mask(const at::Tensor& mask, int64_t expand, bool tapered_corners);

// FeatherMask as ComfyUI computes it: column x < left scaled by (x+1)/left, row y < top by
// (y+1)/top; for right and bottom the k-th factor (k+1)/n goes to index -k, so index 0 (the first
// column or row) takes 1/n and the last n-1 columns or rows take 2/n .. n/n from the edge inwards.
at::Tensor feather_mask(const at::Tensor& mask, int64_t left, int64_t top, int64_t right,
                        int64_t bottom);

// MaskComposite: source combined into destination at (x, y) by `operation` (multiply, add,
// subtract, and, or, xor; the logical ones on rounded values), clamped to [0,1]. A single source
// mask applies to every destination mask; otherwise the batches must match.
at::Tensor composite_masks(const at::Tensor& destination, const at::Tensor& source, int64_t x,
                           int64_t y, const std::string& operation);

}  // namespace df::nodes
