// torchsde's BrownianTree: a seeded Brownian motion on [t0, t1] whose increments are found by
// bisecting the interval, each split drawing its noise from a seed derived from the tree's entropy.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace df::engine::sampling {

// torchsde.BrownianTree(t0, w0=zeros(shape), t1, entropy) with its defaults (tol 1e-6: times are
// rounded to 6 decimals; pool_size 24; the halfway tree): the same increments for the same
// entropy, shape, dtype and device. Each query recomputes its intervals from the root, so the
// values never depend on earlier queries (torchsde's cache only saves time).
class BrownianTree {
 public:
  // Throws Error(kInvalidArgument) when t0 > t1 or the dtype is not floating point.
  BrownianTree(double t0, double t1, uint64_t entropy, std::vector<int64_t> shape,
               at::TensorOptions options);

  // W(tb) - W(ta) for t0 <= ta <= tb <= t1 (times outside are clamped, as torchsde does).
  at::Tensor increment(double ta, double tb) const;

 private:
  struct Node;
  at::Tensor standard_normal(uint32_t seed) const;
  at::Tensor left_part(const Node& node, const at::Tensor& w) const;
  void collect(const Node& node, const at::Tensor& w, double ta, double tb, at::Tensor& sum) const;

  double start_;
  double end_;
  uint64_t entropy_;
  std::vector<int64_t> shape_;
  at::TensorOptions options_;
  at::Tensor w_;  // the increment over the whole interval
};

}  // namespace df::engine::sampling
