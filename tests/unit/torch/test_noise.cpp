// Tests for seeded initial noise, the noised start latent and KSampler's sigma selection.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "engine/noise.h"
#include "engine/schedulers.h"

namespace df::engine {
namespace {

void expect_values(const at::Tensor& actual, const std::vector<double>& expected, double tol) {
  const at::Tensor flat = actual.flatten().to(at::kDouble);
  ASSERT_GE(flat.numel(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(flat[i].item<double>(), expected[i], tol) << "index " << i;
  }
}

// Values of torch.randn after torch.manual_seed(seed), printed by PyTorch.
TEST(InitialNoise, MatchesTorchManualSeed) {
  const at::Tensor noise = comfy_initial_noise({1, 4, 2, 3}, 42);
  EXPECT_EQ(noise.scalar_type(), at::kFloat);
  EXPECT_EQ(noise.sizes(), at::IntArrayRef({1, 4, 2, 3}));
  expect_values(noise,
                {1.9269152879714966, 1.4872840642929077, 0.9007171988487244, -2.1055209636688232,
                 0.6784184575080872, -1.2345448732376099},
                1e-6);
  expect_values(noise.flatten().narrow(0, 21, 3),
                {-0.06307438015937805, -0.8285542726516724, 0.3308984339237213}, 1e-6);
}

TEST(InitialNoise, SmallTensorsUseTheScalarNormalPath) {
  // Fewer than 16 elements: PyTorch draws each value with its double Box-Muller sampler.
  expect_values(comfy_initial_noise({1, 2, 2, 2}, 7),
                {-0.1467950940132141, 0.7861412763595581, 0.9468216300010681,
                 -1.1143440008163452, 1.6907901763916016, -0.8948279023170471,
                 -0.3556250333786011, 1.2323857545852661},
                1e-6);
}

TEST(InitialNoise, SeedsAliasModulo32Bits) {
  EXPECT_TRUE(at::equal(comfy_initial_noise({1, 4, 8, 8}, 7),
                        comfy_initial_noise({1, 4, 8, 8}, (uint64_t{1} << 32) + 7)));
  EXPECT_FALSE(
      at::equal(comfy_initial_noise({1, 4, 8, 8}, 7), comfy_initial_noise({1, 4, 8, 8}, 8)));
}

TEST(InitialNoise, BatchIndexPicksPerItemDraws) {
  // Draws for items 0, 1, 2 are made in order; the list picks [2, 0, 2].
  const at::Tensor noise = comfy_initial_noise({3, 4, 2, 3}, 42, {2, 0, 2});
  ASSERT_EQ(noise.sizes(), at::IntArrayRef({3, 4, 2, 3}));
  expect_values(noise[0], {0.01086814422160387, -0.33874234557151794, -1.3406795263290405}, 1e-6);
  expect_values(noise[1], {1.9269152879714966, 1.4872840642929077, 0.9007171988487244}, 1e-6);
  EXPECT_TRUE(at::equal(noise[0], noise[2]));
}

TEST(InitialNoise, RejectsBadInput) {
  for (auto call : {+[] { comfy_initial_noise({}, 1); },
                    +[] { comfy_initial_noise({2, 4, 8, 8}, 1, {0, -1}); }}) {
    try {
      call();
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    }
  }
}

TEST(NoiseLatent, StartsAtTheTopWithUnitVarianceScale) {
  const at::Tensor latent = at::full({1, 4, 2, 2}, 0.5);
  const at::Tensor noise = at::ones({1, 4, 2, 2});
  const double sigma_max = 14.614641189575195;
  const double top = std::sqrt(1.0 + sigma_max * sigma_max);
  EXPECT_NEAR(noise_latent(latent, noise, sigma_max, sigma_max)[0][0][0][0].item<double>(),
              top + 0.5, 1e-5);
  // Within the relative tolerance of 1e-5, and above the top, count as the top.
  EXPECT_NEAR(noise_latent(latent, noise, sigma_max * (1 - 5e-6), sigma_max)[0][0][0][0]
                  .item<double>(),
              top + 0.5, 1e-3);
  EXPECT_NEAR(noise_latent(latent, noise, 20.0, sigma_max)[0][0][0][0].item<double>(),
              std::sqrt(401.0) + 0.5, 1e-5);
}

TEST(NoiseLatent, BelowTheTopScalesBySigma) {
  const at::Tensor latent = at::full({1, 4, 2, 2}, 0.5);
  const at::Tensor noise = at::full({1, 4, 2, 2}, 2.0);
  const at::Tensor x = noise_latent(latent, noise, 3.0, 14.6146);
  EXPECT_EQ(x.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(x, at::full({1, 4, 2, 2}, 6.5)));
}

class SigmaSelectionTest : public ::testing::Test {
 protected:
  NoiseSchedule schedule_{NoiseScheduleConfig{}};
  // ComfyUI normal scheduler, 10 steps.
  const std::vector<double> normal10_ = {14.6146402, 7.83988285, 4.60917425, 2.91830707,
                                         1.95016146, 1.34492779, 0.932357967, 0.624976933,
                                         0.368657738, 0.0291671604, 0};

  static void expect_sigmas(const at::Tensor& actual, const std::vector<double>& expected) {
    ASSERT_EQ(actual.size(0), static_cast<int64_t>(expected.size()));
    expect_values(actual, expected, 1e-6);
  }
};

TEST_F(SigmaSelectionTest, FullDenoiseIsTheScheduler) {
  EXPECT_TRUE(at::equal(denoise_sigmas(schedule_, "karras", "euler", 12, 1.0),
                        compute_sigmas(schedule_, "karras", 12)));
}

TEST_F(SigmaSelectionTest, PartialDenoiseKeepsTheTailOfALongerSchedule) {
  // int(4 / 0.5) = 8 steps, the last 5 sigmas kept.
  expect_sigmas(denoise_sigmas(schedule_, "normal", "euler", 4, 0.5),
                {1.2768321, 0.791259825, 0.439665735, 0.0291671604, 0});
  EXPECT_EQ(denoise_sigmas(schedule_, "normal", "euler", 4, 0.0).numel(), 0);
}

TEST_F(SigmaSelectionTest, DropsThePenultimateSigmaForDpm2AndUniPc) {
  // normal with 5 steps is linspace(999, 0, 5); the sigma at t = 0 is dropped.
  for (const char* sampler : {"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"}) {
    expect_sigmas(denoise_sigmas(schedule_, "normal", sampler, 4, 1.0),
                  {14.6146402, 4.08608103, 1.61558032, 0.695149541, 0});
  }
}

TEST_F(SigmaSelectionTest, AdvancedSlicesStartAndEnd) {
  expect_sigmas(advanced_sigmas(schedule_, "normal", "euler", 10, 2, 6, false),
                {normal10_[2], normal10_[3], normal10_[4], normal10_[5], 0});
  expect_sigmas(advanced_sigmas(schedule_, "normal", "euler", 10, 2, 6, true),
                {normal10_[2], normal10_[3], normal10_[4], normal10_[5], normal10_[6]});
  expect_sigmas(advanced_sigmas(schedule_, "normal", "euler", 10, 0, 10000, false), normal10_);
  expect_sigmas(advanced_sigmas(schedule_, "normal", "euler", 10, 8, 10000, true),
                {normal10_[8], normal10_[9], 0});
}

TEST_F(SigmaSelectionTest, AdvancedWithNothingLeftIsEmpty) {
  EXPECT_EQ(advanced_sigmas(schedule_, "normal", "euler", 10, 6, 6, false).numel(), 0);
  EXPECT_EQ(advanced_sigmas(schedule_, "normal", "euler", 10, 10, 10000, false).numel(), 0);
  try {
    advanced_sigmas(schedule_, "normal", "euler", 10, -1, 5, false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace df::engine
