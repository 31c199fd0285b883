// Unit tests for ComfyUI's guidance semantics over conditioning lists (areas, masks, strengths,
// step ranges), RescaleCFG, and ModelSamplingDiscrete's schedules.
#include <gtest/gtest.h>


#include <algorithm>

#include "engine/checkpoint_bundle.h"
#include "engine/guidance/rescale_cfg.h"
#include "engine/ksampler.h"
#include "engine/noise_schedule.h"
#include "tiny_model_fixture.h"

namespace df::engine {
namespace {

// A tiny SD 1.x model on the CPU in float32, shared by the tests of a suite.
class GuidedDenoiser : public test::TinyModelSuite<GuidedDenoiser, 7> {
 protected:


  // The positive side's prediction alone (cfg 1) for a 16x16-cell latent.
  at::Tensor predict(const ConditioningList& positive, double sigma = 5.0) const {
    Denoiser denoise = make_guided_denoiser(*bundle->model, positive, {}, 1.0, 128, 128);
    return denoise(x, sigma);
  }
  Conditioning encode(const std::string& text) const { return bundle->clip->encode(text); }

  at::Tensor x = at::randn({1, 4, 16, 16}, at::TensorOptions().dtype(at::kFloat)) * 5.0;
};

// Within `tolerance` relative to the larger magnitude (a batched UNet call may round differently
// from a single one, depending on the CPU's kernels).
void expect_close(const at::Tensor& a, const at::Tensor& b, double tolerance = 1e-5) {
  ASSERT_EQ(a.sizes(), b.sizes());
  const double scale = std::max(1.0, b.abs().max().item<double>());
  EXPECT_LE((a - b).abs().max().item<double>(), tolerance * scale);
}

TEST_F(GuidedDenoiser, TwoIdenticalEntriesPredictWhatOneDoes) {
  const Conditioning cond = encode("a red boat");
  expect_close(predict({cond, cond}), predict({cond}), 1e-4);
}

TEST_F(GuidedDenoiser, AnEntryOutsideItsStepRangeIsLeftOut) {
  const Conditioning boat = encode("a red boat");
  Conditioning forest = encode("a green forest");
  forest.start_percent = 0.9;  // only the last tenth of the steps: far below sigma 5
  forest.end_percent = 1.0;
  expect_close(predict({boat, forest}), predict({boat}));
  EXPECT_GT((predict({boat, encode("a green forest")}) - predict({boat})).abs().max().item<double>(),
            1e-4);
}

TEST_F(GuidedDenoiser, AFullMaskOfOnesAndAFullAreaChangeNothing) {
  const Conditioning boat = encode("a red boat");
  Conditioning masked = boat;
  masked.mask = at::ones({1, 64, 64});  // pixel-sized: resized to the latent
  expect_close(predict({masked}), predict({boat}));
  Conditioning area = boat;
  area.area = ConditioningArea{false, 16, 16, 0, 0};
  expect_close(predict({area}), predict({boat}));
}

TEST_F(GuidedDenoiser, CellsOutsideAnAreaTakeOnlyTheOtherEntries) {
  const Conditioning boat = encode("a red boat");
  Conditioning left = encode("a green forest");
  left.area = ConditioningArea{false, 16, 8, 0, 0};  // the left half
  const at::Tensor both = predict({boat, left});
  const at::Tensor alone = predict({boat});
  expect_close(both.narrow(3, 8, 8), alone.narrow(3, 8, 8));
  EXPECT_GT((both.narrow(3, 0, 8) - alone.narrow(3, 0, 8)).abs().max().item<double>(), 1e-4);
}

TEST_F(GuidedDenoiser, AnAreaOutsideTheLatentIsLeftOut) {
  const Conditioning boat = encode("a red boat");
  Conditioning outside = encode("a green forest");
  outside.area = ConditioningArea{false, 8, 8, 40, 40};
  expect_close(predict({boat, outside}), predict({boat}));
}

TEST(RescaleCfg, MultiplierZeroIsPlainCfgAndOneRescalesTheStandardDeviation) {
  at::manual_seed(3);
  const at::Tensor x = at::randn({2, 4, 6, 6});
  const at::Tensor cond = at::randn({2, 4, 6, 6}), uncond = at::randn({2, 4, 6, 6});
  const double sigma = 2.5, cfg = 6.0;
  const CfgArgs args{cond, uncond, cfg, x, sigma};
  expect_close(rescale_cfg(0.0)(args), uncond + (cond - uncond) * cfg, 1e-4);

  // The same rule written out in v terms: v = (x / (s^2+1) - x0) * sqrt(s^2+1) / s.
  const double s2 = sigma * sigma + 1.0;
  auto v_of = [&](const at::Tensor& x0) { return (x / s2 - x0) * std::sqrt(s2) / sigma; };
  const at::Tensor v_cfg = v_of(uncond) + (v_of(cond) - v_of(uncond)) * cfg;
  const at::Tensor ratio = v_of(cond).std({1, 2, 3}, true, true) / v_cfg.std({1, 2, 3}, true, true);
  const at::Tensor expected = x / s2 - v_cfg * ratio * sigma / std::sqrt(s2);
  expect_close(rescale_cfg(1.0)(args), expected, 1e-4);
}

NoiseScheduleConfig sd_schedule() { return NoiseScheduleConfig{}; }  // SD's: scaled_linear

TEST(ModelSamplingSchedules, LcmKeepsEveryTwentiethSigmaAndMapsTimestepsBack) {
  const NoiseSchedule base(sd_schedule());
  const NoiseSchedule lcm = base.with_lcm_distillation();
  ASSERT_EQ(lcm.size(), 50);
  EXPECT_TRUE(lcm.lcm_boundary());
  EXPECT_FLOAT_EQ(lcm.sigma_max(), base.sigma_max());
  EXPECT_FLOAT_EQ(lcm.sigma_min(), base.sigmas()[19].item<float>());
  for (int64_t k : {0, 10, 49}) {
    const double sigma = lcm.sigmas()[k].item<double>();
    EXPECT_EQ(lcm.timestep_nearest(sigma), double(k * 20 + 19));
    EXPECT_NEAR(lcm.sigma_at(double(k * 20 + 19)), sigma, 1e-4 * sigma);
  }
}

TEST(ModelSamplingSchedules, ZeroTerminalSnrEndsAtComfyUisLastAlphaAndKeepsTheFirst) {
  const NoiseSchedule base(sd_schedule());
  const NoiseSchedule zsnr = base.with_zero_terminal_snr();
  const double last_alpha = 4.8973451890853435e-08;
  EXPECT_NEAR(zsnr.sigma_max(), std::sqrt((1.0 - last_alpha) / last_alpha), 1.0);
  // The rescale runs in float32 through a cumulative product of a thousand alphas: the first sigma
  // stays within a few parts in 1e5 (1.7e-6 absolute on some CPUs' kernels), not bit for bit.
  EXPECT_NEAR(zsnr.sigma_min(), base.sigma_min(), 5e-4 * base.sigma_min());
  EXPECT_EQ(base.with_prediction(Prediction::kVPrediction).prediction(), Prediction::kVPrediction);
}

}  // namespace
}  // namespace df::engine
