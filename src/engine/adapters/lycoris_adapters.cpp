// LoHa and LoKr deltas, after ComfyUI's LyCORIS weight adapters.
#include "engine/adapters/lycoris_adapters.h"

namespace df::engine {
namespace {

constexpr const char* kTucker = "ijkl,jr,ip->prkl";

bool is_matrix(const at::Tensor& tensor) { return tensor.defined() && tensor.dim() == 2; }

// w_a @ w_b, or through the Tucker core t (w_a [rank, out], w_b [rank, in], t [rank, rank, kh, kw]).
at::Tensor low_rank_product(const at::Tensor& w_a, const at::Tensor& w_b, const at::Tensor& t,
                            const at::Device& device) {
  if (!t.defined()) return at::mm(float_on(w_a, device), float_on(w_b, device));
  return at::einsum(kTucker, {float_on(t, device), float_on(w_b, device), float_on(w_a, device)});
}

// The shape low_rank_product gives, after checking that the factors fit together.
std::vector<int64_t> low_rank_shape(const at::Tensor& w_a, const at::Tensor& w_b,
                                    const at::Tensor& t, const std::string& what) {
  if (!is_matrix(w_a) || !is_matrix(w_b)) refuse_lora_factors(what + " needs two matrices");
  if (!t.defined()) {
    if (w_a.size(1) != w_b.size(0)) {
      refuse_lora_factors(what + ": " + c10::str(w_a.sizes()) + " @ " + c10::str(w_b.sizes()));
    }
    return {w_a.size(0), w_b.size(1)};
  }
  if (t.dim() != 4 || t.size(0) != w_a.size(0) || t.size(1) != w_b.size(0)) {
    refuse_lora_factors(what + ": the Tucker core " + c10::str(t.sizes()) + " does not fit " +
                        c10::str(w_a.sizes()) + " and " + c10::str(w_b.sizes()));
  }
  return {w_a.size(1), w_b.size(1), t.size(2), t.size(3)};
}

int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// LoKr's alpha scale: by the rank of w2's factors, else w1's, else none.
double lokr_scale(const LokrFactors& f, const std::optional<double>& alpha) {
  if (!f.w2.defined() && f.w2_b.defined()) return lora_alpha_scale(alpha, leading_size(f.w2_b));
  if (!f.w1.defined() && f.w1_b.defined()) return lora_alpha_scale(alpha, leading_size(f.w1_b));
  return 1.0;
}

}  // namespace

LohaAdapter::LohaAdapter(LohaFactors factors, std::optional<double> alpha, at::Tensor dora_scale)
    : FactorizedAdapter(lora_alpha_scale(alpha, leading_size(factors.w1_b)),
                        std::move(dora_scale)),
      factors_(std::move(factors)) {
  if (factors_.t1.defined() != factors_.t2.defined()) {
    refuse_lora_factors("LoHa needs both Tucker cores or neither");
  }
  const auto first = low_rank_shape(factors_.w1_a, factors_.w1_b, factors_.t1, "LoHa w1");
  const auto second = low_rank_shape(factors_.w2_a, factors_.w2_b, factors_.t2, "LoHa w2");
  if (first != second) {
    refuse_lora_factors("LoHa's two products differ in shape: " + c10::str(first) + " and " +
                        c10::str(second));
  }
}

int64_t LohaAdapter::diff_numel() const {
  return product(low_rank_shape(factors_.w1_a, factors_.w1_b, factors_.t1, "LoHa w1"));
}

at::Tensor LohaAdapter::diff(const at::Device& device) const {
  return low_rank_product(factors_.w1_a, factors_.w1_b, factors_.t1, device) *
         low_rank_product(factors_.w2_a, factors_.w2_b, factors_.t2, device);
}

LokrAdapter::LokrAdapter(LokrFactors factors, std::optional<double> alpha, at::Tensor dora_scale)
    : FactorizedAdapter(lokr_scale(factors, alpha), std::move(dora_scale)),
      factors_(std::move(factors)) {
  const auto left = w1_shape();
  const auto right = w2_shape();
  if (left.size() != 2 || (right.size() != 2 && right.size() != 4)) {
    refuse_lora_factors("LoKr needs a matrix w1 and a matrix or kernel w2");
  }
}

std::vector<int64_t> LokrAdapter::w1_shape() const {
  if (factors_.w1.defined()) return factors_.w1.sizes().vec();
  if (!factors_.w1_a.defined()) refuse_lora_factors("LoKr has neither lokr_w1 nor lokr_w1_a");
  return low_rank_shape(factors_.w1_a, factors_.w1_b, {}, "LoKr w1");
}

std::vector<int64_t> LokrAdapter::w2_shape() const {
  if (factors_.w2.defined()) return factors_.w2.sizes().vec();
  if (!factors_.w2_a.defined()) refuse_lora_factors("LoKr has neither lokr_w2 nor lokr_w2_a");
  return low_rank_shape(factors_.w2_a, factors_.w2_b, factors_.t2, "LoKr w2");
}

int64_t LokrAdapter::diff_numel() const { return product(w1_shape()) * product(w2_shape()); }

at::Tensor LokrAdapter::w1(const at::Device& device) const {
  if (factors_.w1.defined()) return float_on(factors_.w1, device);
  return low_rank_product(factors_.w1_a, factors_.w1_b, {}, device);
}

at::Tensor LokrAdapter::w2(const at::Device& device) const {
  if (factors_.w2.defined()) return float_on(factors_.w2, device);
  return low_rank_product(factors_.w2_a, factors_.w2_b, factors_.t2, device);
}

at::Tensor LokrAdapter::diff(const at::Device& device) const {
  at::Tensor right = w2(device);
  at::Tensor left = w1(device);
  if (right.dim() == 4) left = left.unsqueeze(2).unsqueeze(2);
  return at::kron(left, right);
}

}  // namespace df::engine
