// Tests for the training noise schedule and ComfyUI's schedulers against reference values.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "core/error.h"
#include "engine/noise_schedule.h"
#include "engine/schedulers.h"

namespace df::engine {
namespace {

// Reference values were computed with ComfyUI's formulas (float64 schedule, float32 sigmas and
// timestep arithmetic) in PyTorch, printed to 9 significant digits.
void expect_sigmas(const at::Tensor& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.scalar_type(), at::kFloat);
  ASSERT_EQ(actual.dim(), 1);
  ASSERT_EQ(actual.size(0), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(actual[i].item<double>(), expected[i], 2e-7 * expected[i] + 1e-9) << "index " << i;
  }
}

class SchedulersTest : public ::testing::Test {
 protected:
  NoiseSchedule schedule_{NoiseScheduleConfig{}};
};

TEST_F(SchedulersTest, TrainingTableMatchesSdSchedule) {
  EXPECT_EQ(schedule_.size(), 1000);
  EXPECT_EQ(schedule_.sigmas().scalar_type(), at::kFloat);
  EXPECT_NEAR(schedule_.sigma_min(), 0.0291671585, 1e-9);
  EXPECT_NEAR(schedule_.sigma_max(), 14.6146412, 1e-6);
  EXPECT_TRUE(at::all(schedule_.sigmas().diff() > 0).item<bool>());
  EXPECT_EQ(schedule_.prediction(), Prediction::kEpsilon);
}

TEST_F(SchedulersTest, VPredictionIsCarriedThrough) {
  NoiseScheduleConfig config;
  config.prediction = Prediction::kVPrediction;
  EXPECT_EQ(NoiseSchedule(config).prediction(), Prediction::kVPrediction);
}

TEST_F(SchedulersTest, RejectsUnknownBetaSchedule) {
  NoiseScheduleConfig config;
  config.beta_schedule = "squaredcos_cap_v2";
  try {
    NoiseSchedule schedule(config);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
  }
}

TEST_F(SchedulersTest, PlainLinearBetasDifferFromScaledLinear) {
  NoiseScheduleConfig config;
  config.beta_schedule = "linear";
  NoiseSchedule linear(config);
  // betas 0.00085..0.012 linear: the first sigma is sqrt(b0 / (1 - b0)) either way.
  EXPECT_NEAR(linear.sigma_min(), schedule_.sigma_min(), 1e-7);
  EXPECT_GT(linear.sigma_max(), 20.0);
}

TEST_F(SchedulersTest, NearestTimestepAsComfyUi) {
  EXPECT_EQ(schedule_.timestep_nearest(schedule_.sigma_max()), 999.0);
  EXPECT_EQ(schedule_.timestep_nearest(schedule_.sigma_min()), 0.0);
  EXPECT_EQ(schedule_.timestep_nearest(4.0), 744.0);
  EXPECT_EQ(schedule_.timestep_nearest(0.5), 169.0);
  EXPECT_EQ(schedule_.timestep_nearest(100.0), 999.0);
}

TEST_F(SchedulersTest, InterpolatedTimestepAsDiffusers) {
  EXPECT_NEAR(schedule_.timestep_interpolated(14.6146), 998.99947, 1e-3);
  EXPECT_NEAR(schedule_.timestep_interpolated(4.0), 744.236267, 1e-4);
  EXPECT_NEAR(schedule_.timestep_interpolated(1.0), 353.890268, 1e-4);
  EXPECT_NEAR(schedule_.timestep_interpolated(0.5), 169.3146, 1e-4);
  EXPECT_EQ(schedule_.timestep_interpolated(0.0291), 0.0);
  EXPECT_EQ(schedule_.timestep_interpolated(0.0), 0.0);
  EXPECT_EQ(schedule_.timestep_interpolated(20.0), 999.0);
}

TEST_F(SchedulersTest, SigmaAtInterpolatesLogSigma) {
  EXPECT_NEAR(schedule_.sigma_at(499.5), 1.61558032, 1e-7);
  EXPECT_NEAR(schedule_.sigma_at(0.25), 0.0318196900, 1e-9);
  EXPECT_NEAR(schedule_.sigma_at(999.0), 14.6146402, 1e-6);
  EXPECT_EQ(schedule_.sigma_at(5000.0), schedule_.sigma_at(999.0));
  EXPECT_EQ(schedule_.sigma_at(-3.0), schedule_.sigma_at(0.0));
}

TEST_F(SchedulersTest, Normal) {
  expect_sigmas(compute_sigmas(schedule_, "normal", 4),
                {14.6146402, 2.91830707, 0.932357967, 0.0291671604, 0});
  expect_sigmas(compute_sigmas(schedule_, "normal", 7),
                {14.6146402, 5.94889927, 2.91830707, 1.61558032, 0.932357967, 0.493551701,
                 0.0291671604, 0});
}

TEST_F(SchedulersTest, SgmUniform) {
  expect_sigmas(compute_sigmas(schedule_, "sgm_uniform", 4),
                {14.6146402, 4.08608103, 1.61558032, 0.695149541, 0});
  expect_sigmas(compute_sigmas(schedule_, "sgm_uniform", 7),
                {14.6146402, 6.6779995, 3.52205634, 2.06064153, 1.2768321, 0.791259825,
                 0.439665735, 0});
}

TEST_F(SchedulersTest, Karras) {
  expect_sigmas(compute_sigmas(schedule_, "karras", 10),
                {14.6146431, 9.10292912, 5.47839212, 3.16860485, 1.74941802, 0.914072692,
                 0.446918368, 0.201398358, 0.0819102973, 0.0291671772, 0});
  expect_sigmas(compute_sigmas(schedule_, "karras", 4),
                {14.6146431, 3.16860485, 0.446918577, 0.0291671772, 0});
}

TEST_F(SchedulersTest, Exponential) {
  expect_sigmas(compute_sigmas(schedule_, "exponential", 7),
                {14.6146402, 5.18568039, 1.84002364, 0.652891815, 0.231664181, 0.0822008997,
                 0.0291671604, 0});
}

TEST_F(SchedulersTest, Simple) {
  expect_sigmas(compute_sigmas(schedule_, "simple", 4),
                {14.6146412, 4.08172941, 1.61288619, 0.69320488, 0});
  expect_sigmas(compute_sigmas(schedule_, "simple", 7),
                {14.6146412, 6.70162964, 3.52820325, 2.06167078, 1.2762351, 0.790060937,
                 0.438061744, 0});
}

TEST_F(SchedulersTest, DdimUniform) {
  expect_sigmas(compute_sigmas(schedule_, "ddim_uniform", 4),
                {4.11669636, 1.62369204, 0.698398113, 0.0413144119, 0});
  // 1000 // 7 = 142 leaves room for an eighth timestep (1, 143, ..., 995).
  expect_sigmas(compute_sigmas(schedule_, "ddim_uniform", 7),
                {14.2651091, 6.57064962, 3.4854548, 2.04731178, 1.2720629, 0.790060937,
                 0.440309018, 0.0413144119, 0});
}

TEST_F(SchedulersTest, Beta) {
  expect_sigmas(compute_sigmas(schedule_, "beta", 4),
                {14.6146412, 5.68659163, 1.61827886, 0.515390635, 0});
  expect_sigmas(compute_sigmas(schedule_, "beta", 10),
                {14.6146412, 11.5427704, 7.37184429, 4.37280178, 2.61523581, 1.61827886,
                 1.02732933, 0.654885352, 0.39550969, 0.199058622, 0});
}

TEST_F(SchedulersTest, BetaDropsRepeatedTimesteps) {
  const at::Tensor sigmas = compute_sigmas(schedule_, "beta", 2000);
  EXPECT_LT(sigmas.size(0), 2001);
  EXPECT_TRUE(at::all(sigmas.diff() < 0).item<bool>());
}

TEST_F(SchedulersTest, BetaQuantileMatchesReference) {
  // Beta(0.6, 0.6) quantiles computed with arbitrary precision.
  EXPECT_NEAR(beta_quantile(0.9, 0.6, 0.6), 0.9604155944112192, 1e-13);
  EXPECT_NEAR(beta_quantile(0.5, 0.6, 0.6), 0.5, 1e-13);
  EXPECT_NEAR(beta_quantile(0.1, 0.6, 0.6), 0.039584405588780854, 1e-13);
  EXPECT_NEAR(beta_quantile(0.25, 0.6, 0.6), 0.175680378652695, 1e-13);
  EXPECT_EQ(beta_quantile(1.0, 0.6, 0.6), 1.0);
  EXPECT_EQ(beta_quantile(0.0, 0.6, 0.6), 0.0);
}

// Reference values from ComfyUI's formulas run in PyTorch (float32).
TEST_F(SchedulersTest, KlOptimal) {
  expect_sigmas(compute_sigmas(schedule_, "kl_optimal", 4),
                {14.614632606506348, 1.5970659255981445, 0.572914183139801, 0.029167158529162407,
                 0.0});
  // One step: tan(atan(sigma_max)) in float32.
  const at::Tensor one = kl_optimal_sigmas(1, 0.03, 14.6);
  ASSERT_EQ(one.size(0), 2);
  EXPECT_NEAR(one[0].item<double>(), 14.6, 1e-4);
}

TEST_F(SchedulersTest, LinearQuadratic) {
  expect_sigmas(compute_sigmas(schedule_, "linear_quadratic", 4),
                {14.614641189575195, 14.431958198547363, 14.249275207519531, 10.59561538696289,
                 0.0});
  expect_sigmas(compute_sigmas(schedule_, "linear_quadratic", 7),
                {14.614641189575195, 14.492852210998535, 14.371064186096191, 14.249275207519531,
                 13.267354011535645, 10.565167427062988, 6.142716407775879, 0.0});
  expect_sigmas(compute_sigmas(schedule_, "linear_quadratic", 1), {14.614641189575195, 0.0});
}

TEST_F(SchedulersTest, NamesInComfyUiOrder) {
  EXPECT_EQ(scheduler_names(),
            (std::vector<std::string>{"simple", "sgm_uniform", "karras", "exponential",
                                      "ddim_uniform", "beta", "normal", "linear_quadratic",
                                      "kl_optimal"}));
}

TEST_F(SchedulersTest, CustomSamplingScheduleFunctions) {
  // KSampler's karras and exponential are these functions over the table's range.
  EXPECT_TRUE(at::equal(karras_sigmas(9, schedule_.sigma_min(), schedule_.sigma_max()),
                        compute_sigmas(schedule_, "karras", 9)));
  EXPECT_TRUE(at::equal(exponential_sigmas(9, schedule_.sigma_min(), schedule_.sigma_max()),
                        compute_sigmas(schedule_, "exponential", 9)));
  // Karras with rho 1 is linear; polyexponential with rho 1 is exponential.
  expect_sigmas(karras_sigmas(3, 1.0, 3.0, 1.0), {3.0, 2.0, 1.0, 0.0});
  const at::Tensor poly = polyexponential_sigmas(5, 0.1, 10.0, 1.0);
  EXPECT_TRUE(at::allclose(poly, exponential_sigmas(5, 0.1, 10.0), 1e-6, 0.0));
  expect_sigmas(polyexponential_sigmas(3, 0.1, 10.0, 2.0),
                {10.0, std::exp(std::log(0.1) + 0.25 * std::log(100.0)), 0.1, 0.0});
}

TEST_F(SchedulersTest, SdTurbo) {
  expect_sigmas(sd_turbo_sigmas(schedule_, 2, 1.0), {14.614640235900879, 8.302803039550781, 0.0});
  expect_sigmas(sd_turbo_sigmas(schedule_, 4, 0.5),
                {1.6128861904144287, 1.1605783700942993, 0.8298595547676086, 0.5692849159240723,
                 0.0});
  // The list of ten timesteps runs out.
  EXPECT_EQ(sd_turbo_sigmas(schedule_, 10, 0.3).size(0), 4);
  EXPECT_EQ(sd_turbo_sigmas(schedule_, 3, 0.0).size(0), 1);
}

TEST_F(SchedulersTest, BasicSchedulerDenoiseRule) {
  EXPECT_TRUE(at::equal(basic_scheduler_sigmas(schedule_, "normal", 6, 1.0),
                        compute_sigmas(schedule_, "normal", 6)));
  // denoise 0.5: the last 5 + 1 sigmas of a 10-step schedule; at 0.99995 (KSampler would take
  // the full schedule) still int(5 / 0.99995) = 5 steps.
  EXPECT_TRUE(at::equal(basic_scheduler_sigmas(schedule_, "karras", 5, 0.5),
                        compute_sigmas(schedule_, "karras", 10).narrow(0, 5, 6)));
  EXPECT_EQ(basic_scheduler_sigmas(schedule_, "karras", 5, 0.0).size(0), 0);
}

TEST_F(SchedulersTest, ScheduleFunctionsRejectBadInput) {
  const std::vector<std::function<void()>> calls = {
      [] { karras_sigmas(0, 0.1, 10.0); },
      [] { karras_sigmas(5, 10.0, 0.1); },
      [] { exponential_sigmas(5, 0.0, 10.0); },
      [] { polyexponential_sigmas(5, -1.0, 10.0); },
      [] { kl_optimal_sigmas(5, NAN, 10.0); },
      [] { linear_quadratic_sigmas(0, 10.0); },
      [this] { sd_turbo_sigmas(schedule_, 2, 1.5); },
      [this] { basic_scheduler_sigmas(schedule_, "nope", 5, 1.0); },
  };
  for (size_t i = 0; i < calls.size(); ++i) {
    try {
      calls[i]();
      FAIL() << "expected an error from call " << i;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << i;
    }
  }
}

TEST_F(SchedulersTest, EverySchedulerEndsAtZeroAndDescends) {
  for (const auto& name : scheduler_names()) {
    for (int steps : {1, 2, 3, 20, 33}) {
      const at::Tensor sigmas = compute_sigmas(schedule_, name, steps);
      ASSERT_GE(sigmas.size(0), 2) << name << " " << steps;
      EXPECT_EQ(sigmas[-1].item<double>(), 0.0) << name;
      EXPECT_TRUE(at::all(sigmas.diff() < 0).item<bool>()) << name << " " << steps;
    }
  }
}

TEST_F(SchedulersTest, RejectsUnknownSchedulerAndBadSteps) {
  for (const auto& [name, steps] :
       std::vector<std::pair<std::string, int>>{{"nope", 10}, {"normal", 0}, {"karras", -2}}) {
    try {
      compute_sigmas(schedule_, name, steps);
      FAIL() << "expected an error for " << name << " " << steps;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace df::engine
