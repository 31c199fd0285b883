// LyCORIS weight adapters: LoHa (Hadamard product of two low-rank products) and LoKr (Kronecker
// product), with ComfyUI's alpha scaling and optional DoRA.
#pragma once

#include "engine/adapters/lora_adapters.h"

namespace df::engine {

// LoHa: (w1_a @ w1_b) * (w2_a @ w2_b); with Tucker cores t1/t2 [rank, rank, kh, kw] each factor
// is einsum("ijkl,jr,ip->prkl", t, w_b, w_a) instead. Scale alpha / w1_b.size(0).
struct LohaFactors {
  at::Tensor w1_a, w1_b, w2_a, w2_b;
  at::Tensor t1, t2;  // both undefined, or both defined
};

class LohaAdapter : public FactorizedAdapter {
 public:
  // Throws Error(kCorruptFile) when the factors do not fit together.
  LohaAdapter(LohaFactors factors, std::optional<double> alpha, at::Tensor dora_scale = {});
  int64_t diff_numel() const override;

 private:
  at::Tensor diff(const at::Device& device) const override;
  LohaFactors factors_;
};

// LoKr: kron(w1, w2), each side given whole (w1, w2) or as a low-rank product (w1_a @ w1_b;
// w2_a @ w2_b, or with the Tucker core t2 einsum("ijkl,jr,ip->prkl", t2, w2_b, w2_a)). A 4-D w2
// makes w1 [a, b, 1, 1]. Alpha scales by the rank of the factorised side (w2's when both are),
// and not at all when neither is.
struct LokrFactors {
  at::Tensor w1, w1_a, w1_b;
  at::Tensor w2, w2_a, w2_b, t2;
};

class LokrAdapter : public FactorizedAdapter {
 public:
  // Throws Error(kCorruptFile) when a side is missing or the factors do not fit together.
  LokrAdapter(LokrFactors factors, std::optional<double> alpha, at::Tensor dora_scale = {});
  int64_t diff_numel() const override;

 private:
  at::Tensor diff(const at::Device& device) const override;
  at::Tensor w1(const at::Device& device) const;
  at::Tensor w2(const at::Device& device) const;
  std::vector<int64_t> w1_shape() const;
  std::vector<int64_t> w2_shape() const;
  LokrFactors factors_;
};

}  // namespace df::engine
