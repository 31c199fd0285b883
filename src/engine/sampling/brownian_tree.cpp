// torchsde's BrownianTree increments: Brownian bridge bisection with SeedSequence-derived seeds.
#include "engine/sampling/brownian_tree.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "core/error.h"
#include "engine/sampling/sampler_run.h"
#include "engine/sampling/seed_sequence.h"

namespace df::engine::sampling {
namespace {

constexpr int kPoolSize = 24;
constexpr int kMaxDepth = 256;

// Python's round(x, 6): the correctly rounded 6-decimal value (tol = 1e-6).
double round_to_tolerance(double x) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.6f", x);
  return std::strtod(text, nullptr);
}

}  // namespace

// One interval of the dyadic tree: its ends, where it splits, and its place in the tree
// (spawn key = the path from the root as bits, depth = its length).
struct BrownianTree::Node {
  double start;
  double end;
  uint64_t spawn_key;
  uint64_t depth;

  double midway() const { return round_to_tolerance(0.5 * (end + start)); }
  Node left() const { return {start, midway(), 2 * spawn_key, depth + 1}; }
  Node right() const { return {midway(), end, 2 * spawn_key + 1, depth + 1}; }
};

BrownianTree::BrownianTree(double t0, double t1, uint64_t entropy, std::vector<int64_t> shape,
                           at::TensorOptions options)
    : start_(round_to_tolerance(t0)),
      end_(round_to_tolerance(t1)),
      entropy_(entropy),
      shape_(std::move(shape)),
      options_(options) {
  if (t0 > t1) throw Error(ErrorCode::kInvalidArgument, "Brownian tree needs t0 <= t1");
  if (!at::isFloatingType(options_.dtype().toScalarType())) {
    throw Error(ErrorCode::kInvalidArgument, "Brownian tree needs a floating point dtype");
  }
  const uint32_t w_seed = seed_sequence_state(entropy_, {}, kPoolSize, 3)[0];
  w_ = standard_normal(w_seed) * std::sqrt(t1 - t0);
}

at::Tensor BrownianTree::standard_normal(uint32_t seed) const {
  return at::randn(shape_, seeded_generator(options_.device(), seed), options_);
}

// The increment over the node's left half given the node's own increment w: the Brownian
// bridge's mean plus its spread times the noise seeded for this node.
at::Tensor BrownianTree::left_part(const Node& node, const at::Tensor& w) const {
  const double h_reciprocal = 1.0 / (node.end - node.start);
  const double midway = node.midway();
  const double left_diff = midway - node.start;
  const double right_diff = node.end - midway;
  const double variance = left_diff * right_diff * h_reciprocal;
  const uint32_t seed =
      seed_sequence_state(entropy_, {node.spawn_key, node.depth}, kPoolSize, 4)[0];
  return w * left_diff * h_reciprocal + standard_normal(seed) * std::sqrt(variance);
}

// Adds the increments of the tree intervals that make up [ta, tb] within `node`, left to right.
void BrownianTree::collect(const Node& node, const at::Tensor& w, double ta, double tb,
                           at::Tensor& sum) const {
  if (ta == node.start && tb == node.end) {
    sum = sum.defined() ? sum + w : w;
    return;
  }
  if (node.depth >= kMaxDepth) {
    throw Error(ErrorCode::kInternal, "Brownian tree query did not resolve");
  }
  const double midway = node.midway();
  const at::Tensor left_w = left_part(node, w);
  if (tb <= midway) {
    collect(node.left(), left_w, ta, tb, sum);
  } else if (ta >= midway) {
    collect(node.right(), w - left_w, ta, tb, sum);
  } else {
    collect(node.left(), left_w, ta, midway, sum);
    collect(node.right(), w - left_w, midway, tb, sum);
  }
}

at::Tensor BrownianTree::increment(double ta, double tb) const {
  ta = std::clamp(ta, start_, end_);
  tb = std::clamp(tb, start_, end_);
  if (ta > tb) throw Error(ErrorCode::kInvalidArgument, "Brownian increment needs ta <= tb");
  if (ta == tb) return at::zeros(shape_, options_);
  ta = round_to_tolerance(ta);
  tb = round_to_tolerance(tb);
  if (ta == tb) return at::zeros(shape_, options_);
  at::Tensor sum;
  collect(Node{start_, end_, 0, 0}, w_, ta, tb, sum);
  return sum;
}

}  // namespace df::engine::sampling
