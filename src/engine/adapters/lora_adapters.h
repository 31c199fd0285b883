// LoRA-family weight adapters (LoRA/LoCon, LoHa, LoKr) with ComfyUI's alpha scaling and optional
// DoRA weight decomposition, computed in float32 on the weight's device.
#pragma once

#include <optional>
#include <string>

#include "engine/adapters/weight_patch.h"

namespace df::engine {

// What the LoRA-family adapters share: a difference built from factors, scaled by alpha / rank
// (1 without alpha), and with a DoRA magnitude (`dora_scale`) the patched weight is renormalised
// as ComfyUI's weight_decompose does, which makes the delta depend on the weight.
class FactorizedAdapter : public WeightAdapter {
 public:
  at::Tensor delta(const at::Tensor& weight) const final;
  // How many elements the difference has (it must equal the weight's).
  virtual int64_t diff_numel() const = 0;

 protected:
  FactorizedAdapter(double scale, at::Tensor dora_scale)
      : scale_(scale), dora_scale_(std::move(dora_scale)) {}
  // The unscaled difference in float32 on `device`, in any shape with diff_numel() elements.
  virtual at::Tensor diff(const at::Device& device) const = 0;

 private:
  double scale_;
  at::Tensor dora_scale_;  // undefined without DoRA
};

// Helpers of the adapters: Error(kCorruptFile) for factors that do not fit together; size(0), or
// 0 for a missing or scalar tensor; a factor in float32 on `device`.
[[noreturn]] void refuse_lora_factors(const std::string& what);
int64_t leading_size(const at::Tensor& tensor);
at::Tensor float_on(const at::Tensor& tensor, const at::Device& device);

// alpha / rank, or 1 when the file has no alpha (ComfyUI's scale).
double lora_alpha_scale(const std::optional<double>& alpha, int64_t rank);

// DoRA (ComfyUI's weight_decompose): the patched weight is (weight + scaled_diff) renormalised to
// the magnitude `dora_scale`, along the output axis when dora_scale.size(0) matches the weight's
// (normalised by the unpatched weight's row norms, as ComfyUI does) and else along the input axis.
// Returns patched - weight. All float32 tensors on one device.
at::Tensor dora_delta(const at::Tensor& weight, const at::Tensor& scaled_diff,
                      const at::Tensor& dora_scale);

// LoRA / LoCon: up @ down, where 4-D factors are flattened from dim 1 and an optional Tucker core
// `mid` [rank, rank, kh, kw] turns down [rank, in, 1, 1] into [rank, in, kh, kw].
struct LoraFactors {
  at::Tensor up;    // [out, rank(, 1, 1)]
  at::Tensor down;  // [rank, in(, kh, kw)]
  at::Tensor mid;   // undefined, or [rank, rank, kh, kw]
};

class LoraAdapter : public FactorizedAdapter {
 public:
  // Throws Error(kCorruptFile) when the factors' ranks or dimensions do not fit together.
  LoraAdapter(LoraFactors factors, std::optional<double> alpha, at::Tensor dora_scale = {});
  int64_t diff_numel() const override;

 private:
  at::Tensor diff(const at::Device& device) const override;
  LoraFactors factors_;
};

}  // namespace df::engine
