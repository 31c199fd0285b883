// LoRA / LoCon deltas, alpha scaling and DoRA renormalisation, after ComfyUI's weight adapters.
#include "engine/adapters/lora_adapters.h"

#include <limits>

#include "core/error.h"

namespace df::engine {
namespace {

// down [rank, in, 1, 1] through the Tucker core mid [rank, rank, kh, kw] -> [rank, in, kh, kw].
at::Tensor down_through_mid(const at::Tensor& down, const at::Tensor& mid) {
  const std::vector<int64_t> shape = {down.size(1), down.size(0), mid.size(2), mid.size(3)};
  return at::mm(down.transpose(0, 1).flatten(1), mid.transpose(0, 1).flatten(1))
      .reshape(shape)
      .transpose(0, 1);
}

}  // namespace

void refuse_lora_factors(const std::string& what) {
  throw Error(ErrorCode::kCorruptFile, "LoRA factors do not fit together: " + what);
}

int64_t leading_size(const at::Tensor& tensor) {
  return tensor.defined() && tensor.dim() > 0 ? tensor.size(0) : 0;
}

at::Tensor float_on(const at::Tensor& tensor, const at::Device& device) {
  return tensor.to(device, at::kFloat);
}

double lora_alpha_scale(const std::optional<double>& alpha, int64_t rank) {
  return alpha && rank > 0 ? *alpha / static_cast<double>(rank) : 1.0;
}

at::Tensor dora_delta(const at::Tensor& weight, const at::Tensor& scaled_diff,
                      const at::Tensor& dora_scale) {
  const at::Tensor patched = weight + scaled_diff;
  std::vector<int64_t> norm_shape(static_cast<size_t>(weight.dim()), 1);
  at::Tensor norm;
  if (dora_scale.size(0) == patched.size(0)) {
    norm_shape[0] = weight.size(0);
    norm = weight.reshape({weight.size(0), -1}).norm(2, {1}, /*keepdim=*/true).reshape(norm_shape);
  } else {
    norm_shape[0] = patched.size(1);
    norm = patched.transpose(0, 1)
               .reshape({patched.size(1), -1})
               .norm(2, {1}, /*keepdim=*/true)
               .reshape(norm_shape)
               .transpose(0, 1);
  }
  norm = norm + std::numeric_limits<float>::epsilon();
  return patched * (dora_scale / norm) - weight;
}

at::Tensor FactorizedAdapter::delta(const at::Tensor& weight) const {
  at::Tensor scaled = diff(weight.device()).reshape(weight.sizes()) * scale_;
  if (!dora_scale_.defined()) return scaled;
  return dora_delta(weight.to(at::kFloat), scaled, float_on(dora_scale_, weight.device()));
}

LoraAdapter::LoraAdapter(LoraFactors factors, std::optional<double> alpha, at::Tensor dora_scale)
    : FactorizedAdapter(lora_alpha_scale(alpha, leading_size(factors.down)),
                        std::move(dora_scale)),
      factors_(std::move(factors)) {
  const auto& [up, down, mid] = factors_;
  if (!up.defined() || !down.defined() || up.dim() < 2 || down.dim() < 2) {
    refuse_lora_factors("up and down must be matrices or convolution kernels");
  }
  if (mid.defined() && (mid.dim() != 4 || mid.size(0) != down.size(0) ||
                        down.numel() / down.size(1) != mid.size(1))) {
    refuse_lora_factors("the mid kernel " + c10::str(mid.sizes()) + " does not fit down " +
                   c10::str(down.sizes()));
  }
  if (up.numel() / up.size(0) != down.size(0)) {
    refuse_lora_factors("up " + c10::str(up.sizes()) + " and down " + c10::str(down.sizes()) +
                   " have different ranks");
  }
}

int64_t LoraAdapter::diff_numel() const {
  const auto& [up, down, mid] = factors_;
  const int64_t inputs = mid.defined() ? down.size(1) * mid.size(2) * mid.size(3)
                                       : down.numel() / down.size(0);
  return up.size(0) * inputs;
}

at::Tensor LoraAdapter::diff(const at::Device& device) const {
  at::Tensor down = float_on(factors_.down, device);
  if (factors_.mid.defined()) down = down_through_mid(down, float_on(factors_.mid, device));
  return at::mm(float_on(factors_.up, device).flatten(1), down.flatten(1));
}

}  // namespace df::engine
