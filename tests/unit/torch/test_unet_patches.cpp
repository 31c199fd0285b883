// Unit tests for the UNet patches: FreeU's Fourier filter and backbone scaling against their
// formulas, the block patch points and attention replacement of the UNet, Perturbed-Attention
// Guidance, Deep Shrink, the continuous EDM schedule and the latent formats.
#include <gtest/gtest.h>


#include <cmath>
#include <complex>
#include <numbers>

#include "core/error.h"
#include "engine/checkpoint_bundle.h"
#include "engine/ksampler.h"
#include "engine/nn_ops.h"
#include "engine/noise_schedule.h"
#include "engine/schedulers.h"
#include "engine/unet_patches/deep_shrink.h"
#include "engine/unet_patches/free_u.h"
#include "engine/unet_patches/perturbed_attention.h"
#include "tiny_model_fixture.h"

namespace df::engine {
namespace {

void expect_close(const at::Tensor& a, const at::Tensor& b, double tolerance = 1e-5) {
  ASSERT_EQ(a.sizes(), b.sizes());
  const double scale = std::max(1.0, b.abs().max().item<double>());
  EXPECT_LE((a - b).abs().max().item<double>(), tolerance * scale);
}

double max_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// ---- FreeU ----

// The filter by its definition: the input minus (1 - scale) times its projection onto the Fourier
// modes in the centred window. After an fftshift over n entries, position i holds frequency
// index (i - n / 2) mod n; the window covers positions [n/2 - 1, n/2 + 1) (threshold 1), the
// start wrapping to n - 1 when negative and the end clipped to n, as Python slices do.
at::Tensor filtered_by_definition(const at::Tensor& x, double scale) {
  const int64_t height = x.size(2), width = x.size(3);
  const auto window = [](int64_t n) {
    std::vector<int64_t> frequencies;
    int64_t start = n / 2 - 1;
    if (start < 0) start += n;
    for (int64_t i = start; i < std::min(n, n / 2 + 1); ++i) frequencies.push_back(((i - n / 2) % n + n) % n);
    return frequencies;
  };
  at::Tensor out = x.clone();
  const double two_pi = 2.0 * std::numbers::pi;
  for (int64_t b = 0; b < x.size(0); ++b) {
    for (int64_t c = 0; c < x.size(1); ++c) {
      const at::Tensor plane = x[b][c].to(at::kDouble);
      for (int64_t u : window(height)) {
        for (int64_t v : window(width)) {
          std::complex<double> coefficient = 0;
          for (int64_t m = 0; m < height; ++m) {
            for (int64_t n = 0; n < width; ++n) {
              coefficient += plane[m][n].item<double>() *
                             std::polar(1.0, -two_pi * (double(u * m) / height + double(v * n) / width));
            }
          }
          for (int64_t m = 0; m < height; ++m) {
            for (int64_t n = 0; n < width; ++n) {
              const std::complex<double> mode =
                  coefficient * std::polar(1.0, two_pi * (double(u * m) / height + double(v * n) / width));
              out[b][c][m][n] -= (1.0 - scale) * mode.real() / double(height * width);
            }
          }
        }
      }
    }
  }
  return out;
}

TEST(FourierFilter, DampsTheCentredLowFrequenciesAsDefined) {
  at::manual_seed(3);
  for (const auto& size : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {5, 6}, {1, 3}, {8, 7}}) {
    const at::Tensor x = at::randn({2, 3, size.first, size.second});
    for (double scale : {0.2, 0.0, 1.7}) {
      expect_close(fourier_filter(x, 1, scale), filtered_by_definition(x, scale), 1e-5);
    }
  }
}

TEST(FourierFilter, ScaleOneKeepsTheInputAndTheDtype) {
  const at::Tensor x = at::randn({1, 2, 6, 6}).to(at::kDouble);
  const at::Tensor filtered = fourier_filter(x, 1, 1.0);
  EXPECT_EQ(filtered.scalar_type(), at::kDouble);
  expect_close(filtered, x, 1e-6);
}

TEST(FourierFilter, ScaleZeroRemovesAConstantImage) {
  // A constant plane is all DC, which sits inside the window.
  const at::Tensor filtered = fourier_filter(at::full({1, 1, 8, 8}, 3.0), 1, 0.0);
  EXPECT_LE(filtered.abs().max().item<double>(), 1e-5);
}

TEST(FreeUBackbone, V1ScalesTheFirstHalfOfTheChannels) {
  const at::Tensor h = at::randn({2, 6, 3, 3});
  const at::Tensor scaled = scale_backbone(h, 1.5);
  expect_close(scaled.narrow(1, 0, 3), h.narrow(1, 0, 3) * 1.5);
  EXPECT_TRUE(at::equal(scaled.narrow(1, 3, 3), h.narrow(1, 3, 3)));
}

TEST(FreeUBackbone, V2ScalesByTheNormalisedChannelMean) {
  const at::Tensor h = at::randn({2, 4, 3, 5});
  const double b = 1.4;
  const at::Tensor scaled = scale_backbone_by_mean(h, b);
  for (int64_t i = 0; i < 2; ++i) {
    const at::Tensor mean = h[i].mean(0);  // [3, 5]
    const at::Tensor m = (mean - mean.min()) / (mean.max() - mean.min());
    for (int64_t c = 0; c < 4; ++c) {
      const at::Tensor expected = c < 2 ? h[i][c] * ((b - 1.0) * m + 1.0) : h[i][c];
      expect_close(scaled[i][c], expected);
    }
  }
}

// Runs FreeU's output block patch on h and skip.
std::pair<at::Tensor, at::Tensor> run_free_u(at::Tensor h, at::Tensor skip, FreeUFactors factors,
                                             FreeUVersion version) {
  const UNetPatches patches = free_u_patches(32, factors, version);
  EXPECT_EQ(patches.output_block.size(), 1u);
  patches.output_block.front()(h, skip, {{UNetStage::kOutput, 0}, std::nullopt});
  return {h, skip};
}

TEST(FreeUPatch, PicksFactorsByTheHiddenStateWidth) {
  const FreeUFactors factors{1.1, 1.2, 0.9, 0.2};
  const at::Tensor skip = at::randn({1, 8, 4, 4});
  const at::Tensor wide = at::randn({1, 128, 4, 4});
  auto [h1, s1] = run_free_u(wide, skip, factors, FreeUVersion::kV1);
  expect_close(h1, scale_backbone(wide, 1.1));
  expect_close(s1, fourier_filter(skip, 1, 0.9));
  const at::Tensor narrow = at::randn({1, 64, 4, 4});
  auto [h2, s2] = run_free_u(narrow, skip, factors, FreeUVersion::kV1);
  expect_close(h2, scale_backbone(narrow, 1.2));
  expect_close(s2, fourier_filter(skip, 1, 0.2));
  const at::Tensor other = at::randn({1, 32, 4, 4});
  auto [h3, s3] = run_free_u(other, skip, factors, FreeUVersion::kV2);
  EXPECT_TRUE(at::equal(h3, other));
  EXPECT_TRUE(at::equal(s3, skip));
}

TEST(FreeUPatch, FactorsOfOneChangeNothing) {
  const at::Tensor h = at::randn({2, 64, 5, 4}), skip = at::randn({2, 64, 5, 4});
  for (FreeUVersion version : {FreeUVersion::kV1, FreeUVersion::kV2}) {
    auto [out_h, out_skip] = run_free_u(h, skip, {1.0, 1.0, 1.0, 1.0}, version);
    expect_close(out_h, h, 1e-6);
    expect_close(out_skip, skip, 1e-5);
  }
}

// ---- Deep Shrink ----

TEST(DeepShrink, ShrunkSizesRoundHalfToEven) {
  EXPECT_EQ(shrunk_size(64, 2.0), 32);
  EXPECT_EQ(shrunk_size(5, 2.0), 2);  // 2.5
  EXPECT_EQ(shrunk_size(7, 2.0), 4);  // 3.5
  EXPECT_EQ(shrunk_size(96, 1.5), 64);
  EXPECT_EQ(shrunk_size(1, 9.0), 1);  // never empty
}

FeatureResize nearest() {
  return [](const at::Tensor& features, int64_t width, int64_t height) {
    return at::upsample_nearest2d(features, {height, width});
  };
}

TEST(DeepShrink, ShrinksItsBlockInsideTheSigmaRangeOnly) {
  DeepShrinkOptions options;
  options.block_number = 3;
  options.sigma_start = 10.0;
  options.sigma_end = 2.0;
  const UNetPatches patches = deep_shrink_patches(options, nearest(), nearest());
  ASSERT_EQ(patches.input_block_after_skip.size(), 1u);
  EXPECT_TRUE(patches.input_block.empty());
  const InputBlockPatch& shrink = patches.input_block_after_skip.front();
  const at::Tensor h = at::randn({1, 4, 8, 6});
  EXPECT_EQ(shrink(h, {{UNetStage::kInput, 3}, 5.0}).sizes(), (std::vector<int64_t>{1, 4, 4, 3}));
  EXPECT_EQ(shrink(h, {{UNetStage::kInput, 3}, 10.0}).size(2), 4);  // the ends are inside
  EXPECT_EQ(shrink(h, {{UNetStage::kInput, 3}, 2.0}).size(2), 4);
  EXPECT_TRUE(at::equal(shrink(h, {{UNetStage::kInput, 3}, 10.5}), h));
  EXPECT_TRUE(at::equal(shrink(h, {{UNetStage::kInput, 3}, 1.5}), h));
  EXPECT_TRUE(at::equal(shrink(h, {{UNetStage::kInput, 2}, 5.0}), h));
  EXPECT_TRUE(at::equal(shrink(h, {{UNetStage::kInput, 3}, std::nullopt}), h));

  options.after_skip = false;
  EXPECT_EQ(deep_shrink_patches(options, nearest(), nearest()).input_block.size(), 1u);
}

TEST(DeepShrink, TheOutputPatchResizesToTheSkipWhereHeightsDiffer) {
  const UNetPatches patches = deep_shrink_patches({}, nearest(), nearest());
  ASSERT_EQ(patches.output_block.size(), 1u);
  at::Tensor h = at::randn({1, 4, 4, 3}), skip = at::randn({1, 2, 8, 6});
  patches.output_block.front()(h, skip, {{UNetStage::kOutput, 0}, 1.0});
  EXPECT_EQ(h.sizes(), (std::vector<int64_t>{1, 4, 8, 6}));
  at::Tensor same = at::randn({1, 4, 8, 6});
  const at::Tensor before = same.clone();
  patches.output_block.front()(same, skip, {{UNetStage::kOutput, 0}, 1.0});
  EXPECT_TRUE(at::equal(same, before));
}

// ---- PAG guidance formula ----

TEST(PerturbedAttentionGuidance, AddsScaleTimesCondMinusPerturbed) {
  const at::Tensor guided = at::randn({1, 4, 2, 2}), cond = at::randn({1, 4, 2, 2}),
                   perturbed = at::randn({1, 4, 2, 2});
  expect_close(perturbed_attention_guidance(guided, cond, perturbed, 3.0),
               guided + (cond - perturbed) * 3.0);
  EXPECT_TRUE(at::equal(value_passthrough(cond, guided, perturbed, 4), perturbed));
}

TEST(PerturbedAttentionGuidance, PostCfgHookRecomputesTheCondUnderTheMiddlePatch) {
  const at::Tensor denoised = at::randn({1, 4, 2, 2}), cond = at::randn({1, 4, 2, 2}),
                   perturbed = at::randn({1, 4, 2, 2});
  int calls = 0;
  CfgArgs args{cond, at::Tensor(), 7.0, at::randn({1, 4, 2, 2}), 3.0};
  args.cond_with_patches = [&](const UNetPatches& extra) {
    ++calls;
    EXPECT_EQ(extra.self_attention_replacements.size(), 1u);
    EXPECT_TRUE(extra.self_attention_replacements.front().block ==
                (UNetBlock{UNetStage::kMiddle, 0}));
    EXPECT_FALSE(extra.self_attention_replacements.front().transformer_index.has_value());
    return perturbed;
  };
  expect_close(perturbed_attention_guidance_function(2.5)(args, denoised),
               denoised + (cond - perturbed) * 2.5);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(at::equal(perturbed_attention_guidance_function(0.0)(args, denoised), denoised));
  EXPECT_EQ(calls, 1);  // scale 0: no extra pass

  args.cond_with_patches = nullptr;
  try {
    perturbed_attention_guidance_function(1.0)(args, denoised);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
  }
}

// ---- The UNet's patch points, on a tiny SD 1.x model ----

class UNetPatchPoints : public test::TinyModelSuite<UNetPatchPoints, 11> {
 protected:


  const UNet& unet() const { return *bundle->model->unet; }
  at::Tensor run(const UNet& net, const at::Tensor& sample, std::optional<double> sigma = 3.0) const {
    return net.forward(sample, at::full({1}, 500.0), context, std::nullopt, {sigma});
  }

  at::Tensor context = at::randn({1, 5, 32});
};

TEST_F(UNetPatchPoints, InputAndOutputBlocksAreNumberedAsComfyUIs) {
  // Two levels of two layers: input blocks 0 (conv_in), 1, 2, 3 (downsampler), 4, 5; six output
  // blocks.
  std::vector<int64_t> inputs, after_skip, outputs;
  UNetPatches patches;
  patches.input_block.push_back([&](const at::Tensor& h, const UNetPatchContext& at) {
    EXPECT_EQ(at.block.stage, UNetStage::kInput);
    EXPECT_EQ(at.sigma, 3.0);
    inputs.push_back(at.block.index);
    return h;
  });
  patches.input_block_after_skip.push_back([&](const at::Tensor& h, const UNetPatchContext& at) {
    after_skip.push_back(at.block.index);
    return h;
  });
  patches.output_block.push_back([&](at::Tensor& h, at::Tensor& skip, const UNetPatchContext& at) {
    EXPECT_EQ(at.block.stage, UNetStage::kOutput);
    EXPECT_EQ(h.size(2), skip.size(2));
    outputs.push_back(at.block.index);
  });
  const at::Tensor sample = at::randn({1, 4, 8, 8});
  expect_close(run(unet().with_patches(patches), sample), run(unet(), sample));
  EXPECT_EQ(inputs, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(after_skip, inputs);
  EXPECT_EQ(outputs, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

TEST_F(UNetPatchPoints, ASelfAttentionReplacementRunsInItsBlockOnly) {
  std::vector<int64_t> heads_seen;
  UNetPatches patches;
  patches.self_attention_replacements.push_back(
      {{UNetStage::kMiddle, 0}, std::nullopt,
       [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads) {
         heads_seen.push_back(heads);
         EXPECT_EQ(q.sizes(), v.sizes());
         return nn::attention(q, k, v, heads, /*causal=*/false);
       }});
  const at::Tensor sample = at::randn({1, 4, 8, 8});
  // The replacement computing attention itself reproduces the UNet: it sits where attention does.
  expect_close(run(unet().with_patches(patches), sample), run(unet(), sample), 1e-5);
  // One transformer block in the middle, with the deepest level's heads.
  EXPECT_EQ(heads_seen, (std::vector<int64_t>{unet().config().num_attention_heads.back()}));
}

TEST_F(UNetPatchPoints, AnIndexedReplacementWinsOverTheWholeBlockOne) {
  int whole = 0, indexed = 0;
  UNetPatches patches;
  const auto counting = [](int& count) {
    return [&count](const at::Tensor&, const at::Tensor&, const at::Tensor& v, int64_t) {
      ++count;
      return v;
    };
  };
  patches.self_attention_replacements.push_back({{UNetStage::kOutput, 2}, 0, counting(indexed)});
  patches.self_attention_replacements.push_back({{UNetStage::kOutput, 2}, std::nullopt, counting(whole)});
  run(unet().with_patches(patches), at::randn({1, 4, 8, 8}));
  EXPECT_EQ(indexed, 1);
  EXPECT_EQ(whole, 0);
}

TEST_F(UNetPatchPoints, PerturbedMiddleAttentionIsTheValuePathForOneToken) {
  // A 2x2 latent has one token in the middle block, where softmax attention weighs its only value
  // by 1: the value passthrough then equals the real attention; on larger latents it does not.
  const UNet perturbed = unet().with_patches(perturbed_middle_self_attention());
  const at::Tensor one_token = at::randn({1, 4, 2, 2});
  expect_close(run(perturbed, one_token), run(unet(), one_token), 1e-5);
  const at::Tensor many = at::randn({1, 4, 8, 8});
  EXPECT_GT(max_difference(run(perturbed, many), run(unet(), many)), 1e-5);
}

TEST_F(UNetPatchPoints, DeepShrinkRunsInsideItsRangeAndChangesNothingOutside) {
  DeepShrinkOptions options;
  options.sigma_start = 10.0;
  options.sigma_end = 1.0;
  const UNet shrunk = unet().with_patches(deep_shrink_patches(options, nearest(), nearest()));
  const at::Tensor sample = at::randn({1, 4, 8, 8});
  const at::Tensor inside = run(shrunk, sample, 5.0);
  EXPECT_EQ(inside.sizes(), sample.sizes());
  EXPECT_GT(max_difference(inside, run(unet(), sample, 5.0)), 1e-5);
  expect_close(run(shrunk, sample, 20.0), run(unet(), sample, 20.0));
}

TEST_F(UNetPatchPoints, PagAtTheDenoiserAddsTheScaledDifference) {
  const Conditioning positive = bundle->clip->encode("a red boat");
  const Conditioning negative = bundle->clip->encode("");
  const at::Tensor x = at::randn({1, 4, 8, 8}) * 3.0;
  const Denoiser plain = make_guided_denoiser(*bundle->model, {positive}, {negative}, 5.0, 64, 64);
  DiffusionModel guided_model = *bundle->model;
  guided_model.guidance.post_cfg_functions.push_back(perturbed_attention_guidance_function(2.0));
  const Denoiser guided = make_guided_denoiser(guided_model, {positive}, {negative}, 5.0, 64, 64);
  DiffusionModel perturbed_model = *bundle->model;
  perturbed_model.unet = bundle->model->unet->with_patches(perturbed_middle_self_attention());
  const Denoiser cond = make_guided_denoiser(*bundle->model, {positive}, {}, 1.0, 64, 64);
  const Denoiser perturbed = make_guided_denoiser(perturbed_model, {positive}, {}, 1.0, 64, 64);
  const double sigma = 3.0;
  expect_close(guided(x, sigma),
               plain(x, sigma) + (cond(x, sigma) - perturbed(x, sigma)) * 2.0, 1e-4);
}

// ---- The continuous EDM schedule ----

TEST(ContinuousEdmSchedule, LogSpacedSigmasAndTheLogTimestep) {
  const NoiseSchedule base(tiny_pipeline_config(Family::kSD1).schedule);
  const NoiseSchedule edm = base.with_continuous_edm(0.002, 120.0, 0.5, Prediction::kEdm);
  EXPECT_TRUE(edm.continuous());
  EXPECT_EQ(edm.size(), 1000);
  EXPECT_EQ(edm.prediction(), Prediction::kEdm);
  EXPECT_DOUBLE_EQ(edm.sigma_data(), 0.5);
  EXPECT_NEAR(edm.sigma_min(), 0.002, 1e-8);
  EXPECT_NEAR(edm.sigma_max(), 120.0, 1e-4);
  const at::Tensor logs = edm.sigmas().log().to(at::kDouble);
  const double step = (std::log(120.0) - std::log(0.002)) / 999.0;
  EXPECT_LE((logs.diff() - step).abs().max().item<double>(), 1e-5);
  for (double sigma : {0.002, 0.5, 1.0, 14.6, 120.0}) {
    EXPECT_NEAR(edm.timestep_nearest(sigma), 0.25 * std::log(sigma), 1e-6);
    EXPECT_NEAR(edm.timestep_interpolated(sigma), 0.25 * std::log(sigma), 1e-6);
    EXPECT_NEAR(edm.sigma_at(0.25 * std::log(sigma)), sigma, 1e-5 * sigma);
  }
}

TEST(ContinuousEdmSchedule, PercentsAreLogInterpolatedBetweenTheEnds) {
  const NoiseSchedule edm = NoiseSchedule(tiny_pipeline_config(Family::kSD1).schedule)
                                .with_continuous_edm(0.002, 120.0, 1.0, Prediction::kVPrediction);
  EXPECT_NEAR(edm.percent_to_sigma(0.5), std::sqrt(0.002 * 120.0), 1e-5);
  EXPECT_NEAR(edm.percent_to_sigma(0.25), std::exp(0.75 * std::log(120.0) + 0.25 * std::log(0.002)), 1e-4);
  EXPECT_DOUBLE_EQ(edm.percent_to_sigma(0.0), 999999999.9);
  EXPECT_DOUBLE_EQ(edm.percent_to_sigma(1.0), 0.0);
}

TEST(ContinuousEdmSchedule, NormalSchedulerStepsEvenlyInLogSigma) {
  const NoiseSchedule edm = NoiseSchedule(tiny_pipeline_config(Family::kSD1).schedule)
                                .with_continuous_edm(0.002, 120.0, 0.5, Prediction::kEdm);
  const at::Tensor sigmas = compute_sigmas(edm, "normal", 10).to(at::kDouble);
  ASSERT_EQ(sigmas.numel(), 11);
  EXPECT_NEAR(sigmas[0].item<double>(), 120.0, 1e-3);
  EXPECT_NEAR(sigmas[9].item<double>(), 0.002, 1e-6);
  EXPECT_EQ(sigmas[10].item<double>(), 0.0);
  const at::Tensor ratios = sigmas.narrow(0, 1, 9) / sigmas.narrow(0, 0, 9);
  EXPECT_LE((ratios - std::pow(0.002 / 120.0, 1.0 / 9.0)).abs().max().item<double>(), 1e-4);
}

TEST_F(UNetPatchPoints, LatentFormatsNormaliseEachChannel) {
  const at::Tensor latent = at::randn({2, 4, 3, 5});
  DiffusionModel model = *bundle->model;
  EXPECT_TRUE(at::equal(latent_to_sampler(model, latent), latent * model.latent_format.scale));
  EXPECT_TRUE(at::equal(latent_from_sampler(model, latent), latent / model.latent_format.scale));
  model.latent_format.scale = 0.5;
  model.latent_format.channel_stats = {{-1.6574f, 1.886f, -1.383f, 2.5155f}, {8.4927f, 5.9022f, 6.5498f, 5.2299f}};
  const at::Tensor mean = at::tensor({-1.6574f, 1.886f, -1.383f, 2.5155f}).view({1, 4, 1, 1});
  const at::Tensor std = at::tensor({8.4927f, 5.9022f, 6.5498f, 5.2299f}).view({1, 4, 1, 1});
  expect_close(latent_to_sampler(model, latent), (latent - mean) * 0.5 / std, 1e-6);
  expect_close(latent_from_sampler(model, latent), latent * std / 0.5 + mean, 1e-6);
  expect_close(latent_from_sampler(model, latent_to_sampler(model, latent)), latent, 1e-5);
  try {
    latent_to_sampler(model, at::randn({1, 3, 2, 2}));
    FAIL() << "expected an error for a 3-channel latent";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST(ContinuousEdmSchedule, RefusesEmptyOrReversedRanges) {
  const NoiseSchedule base(tiny_pipeline_config(Family::kSD1).schedule);
  for (const auto& [low, high] : std::vector<std::pair<double, double>>{{0.0, 120.0}, {5.0, 5.0}, {10.0, 1.0}}) {
    try {
      base.with_continuous_edm(low, high, 1.0, Prediction::kEpsilon);
      FAIL() << "expected an error for " << low << ".." << high;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    }
  }
}

TEST_F(UNetPatchPoints, EdmDenoiserScalesInputsAndOutputsWithSigmaData) {
  // ComfyUI's EDM model sampling: the UNet sees x / sqrt(sigma^2 + sd^2) at timestep
  // 0.25 log(sigma); its output F gives x * sd^2 / (sigma^2 + sd^2) -+ F * sigma * sd /
  // sqrt(sigma^2 + sd^2) (v_prediction subtracts, edm adds) or x - F * sigma (eps).
  const Conditioning boat = bundle->clip->encode("a boat");
  const at::Tensor x = at::randn({1, 4, 8, 8}) * 2.0;
  const double sigma = 2.0;
  for (const auto& [prediction, data] : std::vector<std::pair<Prediction, double>>{
           {Prediction::kEdm, 0.5}, {Prediction::kVPrediction, 1.0}, {Prediction::kEpsilon, 1.0}}) {
    DiffusionModel model = *bundle->model;
    model.schedule = model.schedule.with_continuous_edm(0.002, 120.0, data, prediction);
    const at::Tensor denoised = make_guided_denoiser(model, {boat}, {}, 1.0, 64, 64)(x, sigma);
    const double s2 = sigma * sigma + data * data;
    const at::Tensor out = unet().forward(x / std::sqrt(s2), at::full({1}, 0.25 * std::log(sigma)),
                                          boat.context);
    const at::Tensor skip = x * (data * data / s2), scaled = out * (sigma * data / std::sqrt(s2));
    const at::Tensor expected = prediction == Prediction::kEdm          ? skip + scaled
                                : prediction == Prediction::kVPrediction ? skip - scaled
                                                                         : x - out * sigma;
    expect_close(denoised, expected, 1e-5);
  }
}

}  // namespace
}  // namespace df::engine
