// ComfyUI's SIGMAS tools (SplitSigmas, SplitSigmasDenoise, FlipSigmas) on 1-D sigma tensors.
#pragma once

#include <cstdint>
#include <utility>

#include <ATen/ATen.h>

namespace df::nodes {

// SplitSigmas: the sigmas up to and including index `step`, and those from `step` on (Python
// slices: a step past the end gives all of them and an empty list).
std::pair<at::Tensor, at::Tensor> split_sigmas(const at::Tensor& sigmas, int64_t step);

// SplitSigmasDenoise: with steps = len - 1 and n = round-half-even(steps * denoise), the sigmas
// before the last n (empty for n = 0, as Python's [:-0]) and the last n + 1.
std::pair<at::Tensor, at::Tensor> split_sigmas_denoise(const at::Tensor& sigmas, double denoise);

// FlipSigmas: the sigmas reversed, a leading 0 replaced by 0.0001 (empty stays empty).
at::Tensor flip_sigmas(const at::Tensor& sigmas);

}  // namespace df::nodes
