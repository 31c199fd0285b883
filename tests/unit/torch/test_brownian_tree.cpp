// Tests for the port of numpy's SeedSequence and torchsde's BrownianTree (values printed by them).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "engine/sampling/brownian_tree.h"
#include "engine/sampling/seed_sequence.h"

namespace df::engine::sampling {
namespace {

void expect_values(const at::Tensor& actual, const std::vector<double>& expected, double tol) {
  const at::Tensor flat = actual.flatten().to(at::kDouble);
  ASSERT_EQ(flat.numel(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(flat[i].item<double>(), expected[i], tol) << "index " << i;
  }
}

TEST(SeedSequence, MatchesNumpy) {
  // numpy.random.SeedSequence(entropy=42, spawn_key=(5, 3), pool_size=24).generate_state(4)
  EXPECT_EQ(seed_sequence_state(42, {5, 3}, 24, 4),
            (std::vector<uint32_t>{3084123560u, 468215949u, 242942938u, 2650128260u}));
  // SeedSequence(entropy=2**64 - 1, pool_size=24).generate_state(3): a two-word entropy.
  EXPECT_EQ(seed_sequence_state(UINT64_MAX, {}, 24, 3),
            (std::vector<uint32_t>{1186816001u, 310380770u, 3217591682u}));
}

TEST(BrownianTree, MatchesTorchsdeFloat32) {
  // torchsde.BrownianTree(tensor(0.5), zeros(2, 3), tensor(10.0), entropy=42)
  const BrownianTree tree(0.5, 10.0, 42, {2, 3}, at::TensorOptions().dtype(at::kFloat));
  expect_values(tree.increment(1.25, 7.5),
                {-2.2912731170654297, -1.8016594648361206, -0.07427485287189484,
                 1.5624703168869019, 0.49588197469711304, -0.33083778619766235},
                1e-7);
  expect_values(tree.increment(0.5, 10.0),
                {-1.4085899591445923, -4.198409557342529, 1.7195109128952026,
                 -0.46110859513282776, 1.4237933158874512, 0.42807725071907043},
                1e-7);
}

TEST(BrownianTree, MatchesTorchsdeFloat64WithTwoWordEntropy) {
  const BrownianTree tree(0.5, 10.0, UINT64_MAX, {4}, at::TensorOptions().dtype(at::kDouble));
  expect_values(tree.increment(3.0, 3.5),
                {-0.6713838011512044, -0.7488563717424186, 1.2355527262627624,
                 0.15740822464631218},
                1e-12);
}

TEST(BrownianTree, IncrementsAddUpAndDoNotDependOnQueryOrder) {
  const auto options = at::TensorOptions().dtype(at::kDouble);
  const BrownianTree tree(0.03, 14.6, 7, {3, 5}, options);
  const at::Tensor late = tree.increment(2.5, 9.0);
  const at::Tensor whole = tree.increment(0.4, 9.0);
  const at::Tensor early = tree.increment(0.4, 2.5);
  EXPECT_TRUE(at::allclose(early + late, whole, 1e-9, 1e-9));
  const BrownianTree fresh(0.03, 14.6, 7, {3, 5}, options);
  EXPECT_TRUE(at::equal(fresh.increment(0.4, 2.5), early));
}

TEST(BrownianTree, IncrementsHaveTheVarianceOfTheirLength) {
  const BrownianTree tree(0.1, 10.0, 3, {64, 64, 16}, at::TensorOptions().dtype(at::kFloat));
  for (const auto& [ta, tb] : std::vector<std::pair<double, double>>{{0.1, 10.0}, {1.0, 1.5}}) {
    const at::Tensor w = tree.increment(ta, tb) / std::sqrt(tb - ta);
    EXPECT_NEAR(w.std().item<double>(), 1.0, 0.02) << ta << " " << tb;
    EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.02) << ta << " " << tb;
  }
}

TEST(BrownianTree, ClampsQueriesAndRejectsBadInput) {
  const BrownianTree tree(1.0, 2.0, 0, {2}, at::TensorOptions().dtype(at::kFloat));
  EXPECT_TRUE(at::equal(tree.increment(0.0, 3.0), tree.increment(1.0, 2.0)));
  EXPECT_TRUE(at::equal(tree.increment(1.5, 1.5), at::zeros({2})));
  EXPECT_THROW(tree.increment(1.8, 1.2), Error);
  EXPECT_THROW(BrownianTree(2.0, 1.0, 0, {2}, at::TensorOptions().dtype(at::kFloat)), Error);
  EXPECT_THROW(BrownianTree(1.0, 2.0, 0, {2}, at::TensorOptions().dtype(at::kLong)), Error);
}

}  // namespace
}  // namespace df::engine::sampling
