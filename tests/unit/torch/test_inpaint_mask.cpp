// Unit tests for sampling with a latent noise mask (ComfyUI's KSamplerX0Inpaint rule) and
// DifferentialDiffusion's per-step mask.
#include <gtest/gtest.h>


#include <algorithm>

#include "core/error.h"
#include "engine/checkpoint_bundle.h"
#include "engine/custom_sampling.h"
#include "engine/inpaint_mask.h"
#include "engine/ksampler.h"
#include "engine/model_patcher.h"
#include "engine/noise.h"
#include "engine/schedulers.h"
#include "tiny_model_fixture.h"

namespace df::engine {
namespace {

class NoiseMaskSampling : public test::TinyModelSuite<NoiseMaskSampling, 11> {
 protected:


  // Four euler steps from `latent` (denoise 0.6, so the latent matters) with `mask`.
  at::Tensor sample(const DiffusionModel& model, const at::Tensor& mask) const {
    const ConditioningList positive = {bundle->clip->encode("a red boat")};
    const Denoiser denoise = make_guided_denoiser(model, positive, {}, 1.0, 64, 64);
    KSamplerParams params;
    params.steps = 4;
    params.scheduler = "normal";
    params.denoise = 0.6;
    const at::Tensor sigmas = ksampler_sigmas(model.schedule, params);
    const at::Tensor noise = comfy_initial_noise(latent.sizes().vec(), 5);
    return sample_custom(model, denoise, "euler", sigmas, latent, noise, 5, {}, mask).samples;
  }

  at::Tensor latent = at::linspace(-1.0, 1.0, 4 * 8 * 8).reshape({1, 4, 8, 8});
};

double max_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST_F(NoiseMaskSampling, AMaskOfOnesSamplesEverythingAndZerosKeepTheLatent) {
  const DiffusionModel& model = *bundle->model;
  const at::Tensor plain = sample(model, {});
  EXPECT_LT(max_difference(sample(model, at::ones({1, 64, 64})), plain), 1e-5);
  EXPECT_LT(max_difference(sample(model, at::zeros({1, 64, 64})), latent), 1e-4);
  EXPECT_GT(max_difference(plain, latent), 1e-2);
}

TEST_F(NoiseMaskSampling, OnlyTheMaskedHalfChanges) {
  at::Tensor mask = at::zeros({1, 8, 8});
  mask.narrow(2, 0, 4).fill_(1.0);  // left half of the latent's cells
  const at::Tensor result = sample(*bundle->model, mask);
  EXPECT_LT(max_difference(result.narrow(3, 4, 4), latent.narrow(3, 4, 4)), 1e-4);
  EXPECT_GT(max_difference(result.narrow(3, 0, 4), latent.narrow(3, 0, 4)), 1e-2);
}

TEST_F(NoiseMaskSampling, DifferentialDiffusionOpensTheMaskStepByStep) {
  const auto differential =
      ModelPatcher(bundle->model).with_denoise_mask_function(differential_diffusion()).patched();
  const at::Tensor plain = sample(*bundle->model, {});
  EXPECT_LT(max_difference(sample(*differential, at::ones({1, 8, 8})), plain), 1e-5);
  // A mask of 0.5 is closed for the first half of the run and open for the rest: a result that
  // is neither the latent nor the fully sampled one.
  const at::Tensor half = sample(*differential, at::full({1, 8, 8}, 0.5));
  EXPECT_GT(max_difference(half, latent), 1e-3);
  EXPECT_GT(max_difference(half, plain), 1e-3);

  const NoiseSchedule& schedule = bundle->model->schedule;
  const at::Tensor sigmas = at::tensor({10.0f, 5.0f, 1.0f, 0.0f});
  const at::Tensor mask = at::tensor({0.0f, 0.3f, 0.6f, 1.0f});
  const at::Tensor at_start = differential_diffusion()(schedule, 10.0, mask, sigmas);
  EXPECT_TRUE(at::equal(at_start, at::tensor({0.0f, 0.0f, 0.0f, 1.0f})));
  const at::Tensor at_end = differential_diffusion()(schedule, schedule.sigma_min(), mask, sigmas);
  EXPECT_TRUE(at::equal(at_end, at::ones({4})));
}

TEST(PrepareNoiseMask, ResizesToTheLatentAndRepeatsOverChannelsAndBatch) {
  const at::Tensor mask = prepare_noise_mask(at::ones({1, 1, 64, 32}), at::IntArrayRef({3, 4, 8, 4}));
  EXPECT_EQ(mask.sizes(), at::IntArrayRef({3, 4, 8, 4}));
  EXPECT_TRUE(at::allclose(mask, at::ones({3, 4, 8, 4})));
  EXPECT_THROW(prepare_noise_mask(at::ones({64}), at::IntArrayRef({1, 4, 8, 8})), df::Error);
}

}  // namespace
}  // namespace df::engine
