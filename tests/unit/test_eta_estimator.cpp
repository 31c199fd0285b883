// Tests of the ETA estimator: same-size history, scaling from other sizes, no history, outliers.
#include <gtest/gtest.h>

#include "registry/eta_estimator.h"

namespace df::registry {
namespace {

using nlohmann::json;

store::RunTiming run(const std::string& model, int side, int steps, int items, int64_t duration_ms) {
  return {model, side, side, steps, items, duration_ms};
}

TEST(EtaEstimator, NoHistoryForTheModelGivesNoEstimate) {
  EXPECT_FALSE(estimate_eta({}, {"sd15", 512, 512, 20, 1}));
  EXPECT_FALSE(estimate_eta({run("sdxl", 512, 20, 1, 10000)}, {"sd15", 512, 512, 20, 1}));
}

TEST(EtaEstimator, SameModelAndSizeScalesByStepsAndItems) {
  // 100 ms per item and step.
  const std::vector<store::RunTiming> history = {run("sd15", 512, 20, 1, 2000),
                                          run("sd15", 512, 10, 2, 2000),
                                          run("sd15", 768, 20, 1, 9000)};
  const auto estimate = estimate_eta(history, {"sd15", 512, 512, 30, 4});
  ASSERT_TRUE(estimate);
  EXPECT_DOUBLE_EQ(estimate->seconds, 12.0);
  EXPECT_EQ(estimate->samples_used, 2);
  EXPECT_EQ(estimate->basis, "Estimated from 2 earlier runs of this model at 512x512.");
}

TEST(EtaEstimator, OtherSizesOfTheModelAreScaledByPixelCount) {
  // 4 s for 20 steps at 1024x1024.
  const std::vector<store::RunTiming> history = {run("sdxl", 1024, 20, 1, 4000)};
  const auto estimate = estimate_eta(history, {"sdxl", 512, 512, 40, 1});
  ASSERT_TRUE(estimate);
  EXPECT_DOUBLE_EQ(estimate->seconds, 2.0);  // a quarter of the pixels, twice the steps
  EXPECT_EQ(estimate->samples_used, 1);
  EXPECT_EQ(estimate->basis,
            "Estimated from 1 earlier run of this model at other sizes, scaled to 512x512 by "
            "pixel count and steps.");
}

TEST(EtaEstimator, TheMedianIgnoresOutliers) {
  std::vector<store::RunTiming> history = {run("sd15", 512, 20, 1, 2000), run("sd15", 512, 20, 1, 60000),
                                    run("sd15", 512, 20, 1, 2200), run("sd15", 512, 20, 1, 1800),
                                    run("sd15", 512, 20, 1, 10)};
  auto estimate = estimate_eta(history, {"sd15", 512, 512, 20, 1});
  ASSERT_TRUE(estimate);
  EXPECT_DOUBLE_EQ(estimate->seconds, 2.0);
  history.pop_back();  // an even count takes the mean of the middle two
  estimate = estimate_eta(history, {"sd15", 512, 512, 20, 1});
  EXPECT_DOUBLE_EQ(estimate->seconds, 2.1);
}

TEST(EtaEstimator, OnlyTheMostRecentRunsCount) {
  std::vector<store::RunTiming> history(kEtaMaxSamples, run("sd15", 512, 20, 1, 1000));
  for (int i = 0; i < 30; ++i) history.push_back(run("sd15", 512, 20, 1, 9000));
  const auto estimate = estimate_eta(history, {"sd15", 512, 512, 20, 1});
  ASSERT_TRUE(estimate);
  EXPECT_DOUBLE_EQ(estimate->seconds, 1.0);
  EXPECT_EQ(estimate->samples_used, static_cast<int>(kEtaMaxSamples));
}

TEST(EtaEstimator, UnusableSamplesAndJobsAreIgnored) {
  const std::vector<store::RunTiming> history = {
      run("sd15", 512, 0, 1, 1000), run("sd15", 512, 20, 0, 1000), run("sd15", 512, 20, 1, 0),
      run("sd15", 0, 20, 1, 1000)};
  EXPECT_FALSE(estimate_eta(history, {"sd15", 512, 512, 20, 1}));
  EXPECT_FALSE(estimate_eta({run("sd15", 512, 20, 1, 1000)}, {"sd15", 512, 512, 0, 1}));
}

TEST(EtaEstimator, JsonFormRoundsToATenthOfASecond) {
  EXPECT_EQ(eta_to_json({12.345, "Estimated from 3 earlier runs.", 3}),
            json({{"seconds", 12.3}, {"basis", "Estimated from 3 earlier runs."},
                  {"samples_used", 3}}));
}

}  // namespace
}  // namespace df::registry
