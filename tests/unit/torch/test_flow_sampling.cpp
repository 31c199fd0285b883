// Unit tests of the flow-matching model samplings (ComfyUI's ModelSamplingDiscreteFlow and
// ModelSamplingFlux) and their nodes, of the samplers' and inpainting's flow (CONST) forms, and of
// CFGNorm and its node.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include "core/error.h"
#include "engine/checkpoint_bundle.h"
#include "engine/guidance/cfg_norm.h"
#include "engine/inpaint_mask.h"
#include "engine/noise_schedule.h"
#include "engine/samplers.h"
#include "engine/model_patcher.h"
#include "engine/sampling/sampler_run.h"
#include "nodes/builtin_nodes.h"
#include "nodes/node_values.h"

namespace df::engine {
namespace {

// ComfyUI's time_snr_shift and flux_time_shift, in double.
double snr_shift(double shift, double t) { return shift * t / (1.0 + (shift - 1.0) * t); }
double flux_shift(double mu, double t) {
  return std::exp(mu) / (std::exp(mu) + (1.0 / t - 1.0));
}

at::Tensor sigma_tensor(std::vector<double> values) {
  return at::tensor(values, at::kDouble).to(at::kFloat);
}

TEST(FlowSchedule, DiscreteFlowTableIsTheShiftedTimeGrid) {
  const NoiseSchedule schedule = NoiseSchedule::discrete_flow(3.0, 1000.0);
  ASSERT_EQ(schedule.size(), 1000);
  EXPECT_TRUE(schedule.flow());
  EXPECT_EQ(schedule.prediction(), Prediction::kFlow);
  for (int64_t i : {0, 1, 249, 499, 998, 999}) {
    const double t = static_cast<double>(i + 1) / 1000.0;
    EXPECT_NEAR(schedule.sigmas()[i].item<double>(), snr_shift(3.0, t), 1e-7) << i;
  }
  EXPECT_NEAR(schedule.sigmas()[499].item<double>(), 0.75, 1e-7);  // 3 * 0.5 / (1 + 2 * 0.5)
  EXPECT_EQ(schedule.sigma_max(), 1.0);
  EXPECT_NEAR(schedule.sigma_min(), 0.003 / 1.002, 1e-9);
}

TEST(FlowSchedule, UnshiftedTableIsTheTimeGridItself) {
  const NoiseSchedule schedule = NoiseSchedule::discrete_flow(1.0, 1000.0);
  for (int64_t i : {0, 499, 999}) {
    EXPECT_FLOAT_EQ(schedule.sigmas()[i].item<float>(), static_cast<float>(i + 1) / 1000.0f);
  }
}

TEST(FlowSchedule, DiscreteFlowTimestepIsSigmaTimesMultiplier) {
  const NoiseSchedule sd3 = NoiseSchedule::discrete_flow(3.0, 1000.0);
  const NoiseSchedule aura = NoiseSchedule::discrete_flow(3.0, 1.0);
  EXPECT_DOUBLE_EQ(sd3.timestep_nearest(0.25), 250.0);
  EXPECT_DOUBLE_EQ(sd3.timestep_interpolated(0.25), 250.0);
  EXPECT_DOUBLE_EQ(aura.timestep_nearest(0.25), 0.25);
  // sigma(timestep) = time_snr_shift(shift, timestep / multiplier), the inverse of the sigma of t.
  EXPECT_NEAR(sd3.sigma_at(500.0), 0.75, 1e-12);
  EXPECT_NEAR(aura.sigma_at(0.5), 0.75, 1e-12);
  EXPECT_NEAR(sd3.sigma_at(sd3.timestep_nearest(0.4)), snr_shift(3.0, 0.4), 1e-12);
}

TEST(FlowSchedule, PercentToSigmaRunsFromOneToZero) {
  const NoiseSchedule schedule = NoiseSchedule::discrete_flow(3.0, 1.0);
  EXPECT_EQ(schedule.percent_to_sigma(0.0), 1.0);
  EXPECT_EQ(schedule.percent_to_sigma(-0.5), 1.0);
  EXPECT_EQ(schedule.percent_to_sigma(1.0), 0.0);
  EXPECT_NEAR(schedule.percent_to_sigma(0.5), 0.75, 1e-12);
  EXPECT_NEAR(schedule.percent_to_sigma(0.25), snr_shift(3.0, 0.75), 1e-12);
  EXPECT_NEAR(schedule.percent_to_sigma(1e-4), snr_shift(3.0, 1.0 - 1e-4), 1e-12);
  const NoiseSchedule flux = NoiseSchedule::flux_flow(1.15);
  EXPECT_EQ(flux.percent_to_sigma(0.0), 1.0);
  EXPECT_EQ(flux.percent_to_sigma(1.0), 0.0);
  EXPECT_NEAR(flux.percent_to_sigma(0.3), flux_shift(1.15, 0.7), 1e-12);
}

TEST(FlowSchedule, FluxTableHasTenThousandExponentiallyShiftedSigmas) {
  const NoiseSchedule schedule = NoiseSchedule::flux_flow(1.15);
  ASSERT_EQ(schedule.size(), 10000);
  EXPECT_TRUE(schedule.flow());
  for (int64_t i : {0, 1, 4999, 9998, 9999}) {
    const double t = static_cast<double>(i + 1) / 10000.0;
    EXPECT_NEAR(schedule.sigmas()[i].item<double>(), flux_shift(1.15, t), 2e-7) << i;
  }
  EXPECT_NEAR(schedule.sigmas()[4999].item<double>(), std::exp(1.15) / (std::exp(1.15) + 1.0),
              1e-7);
  EXPECT_EQ(schedule.sigma_max(), 1.0);
  // ModelSamplingFlux's timestep is sigma itself.
  EXPECT_DOUBLE_EQ(schedule.timestep_nearest(0.3), 0.3);
  EXPECT_NEAR(schedule.sigma_at(0.5), flux_shift(1.15, 0.5), 1e-12);
}

TEST(FlowSchedule, RejectsNegativeShiftAndNonPositiveMultiplier) {
  for (auto make : {+[] { return NoiseSchedule::discrete_flow(-1.0, 1000.0); },
                    +[] { return NoiseSchedule::discrete_flow(3.0, 0.0); }}) {
    try {
      make();
      FAIL() << "expected an error";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
    }
  }
}

TEST(FlowSampling, FlowAncestralStepLandsOnTheNextSigma) {
  // The deterministic part at sigma_down rescaled by (1 - next) / (1 - down) plus noise of scale
  // renoise has the marginal of x at `next`: signal 1 - next, noise variance next^2.
  for (auto [from, to] : {std::pair{1.0, 0.5}, std::pair{0.8, 0.3}, std::pair{0.3, 0.05}}) {
    const sampling::FlowAncestralStep step = sampling::flow_ancestral_step(from, to);
    EXPECT_NEAR(step.down, to * to / from, 1e-15);
    EXPECT_NEAR((1.0 - step.down) * step.rescale, 1.0 - to, 1e-15);
    const double noise = step.down * step.rescale;
    EXPECT_NEAR(noise * noise + step.renoise * step.renoise, to * to, 1e-12);
  }
  const sampling::FlowAncestralStep eta_zero = sampling::flow_ancestral_step(0.8, 0.3, 0.0);
  EXPECT_DOUBLE_EQ(eta_zero.down, 0.3);
  EXPECT_DOUBLE_EQ(eta_zero.rescale, 1.0);
  EXPECT_NEAR(eta_zero.renoise, 0.0, 1e-12);
}

TEST(FlowSampling, HalfLogSnrOfFlowsIsTheNegatedLogit) {
  const NoiseSchedule schedule = NoiseSchedule::discrete_flow(3.0, 1.0);
  const Denoiser unused = [](const at::Tensor& x, double) { return x; };
  SamplerHooks hooks;
  hooks.model_sampling = &schedule;
  sampling::SamplerRun flow(unused, {1.0, 0.25, 0.0}, 0, hooks);
  EXPECT_TRUE(flow.flow());
  EXPECT_NEAR(flow.half_log_snr(0.25), std::log(3.0), 1e-6);
  EXPECT_NEAR(flow.sigma_of_half_log_snr(std::log(3.0)), 0.25, 1e-7);
  EXPECT_NEAR(flow.alpha(0.25), 0.75, 1e-6);
  flow.offset_first_sigma_for_snr();
  EXPECT_FLOAT_EQ(static_cast<float>(flow.sigma(0)),
                  static_cast<float>(snr_shift(3.0, 1.0 - 1e-4)));

  sampling::SamplerRun ve(unused, {14.6, 1.0, 0.0}, 0, {});
  EXPECT_FALSE(ve.flow());
  EXPECT_NEAR(ve.half_log_snr(0.25), -std::log(0.25), 1e-12);
  EXPECT_EQ(ve.alpha(0.25), 1.0);
  ve.offset_first_sigma_for_snr();
  EXPECT_EQ(ve.sigma(0), 14.6);
}

TEST(FlowSampling, EulerAncestralTakesTheRectifiedFlowStep) {
  // A zero estimate: x moves to down / sigma * x, is rescaled, and gets the seeded noise.
  const NoiseSchedule schedule = NoiseSchedule::discrete_flow(3.0, 1.0);
  const Denoiser zero = [](const at::Tensor& x, double) { return at::zeros_like(x); };
  SamplerHooks hooks;
  hooks.model_sampling = &schedule;
  const at::Tensor x = at::ones({1, 2, 3, 3});
  const at::Tensor out = run_sampler("euler_ancestral", zero, x, sigma_tensor({0.8, 0.4}), 7, hooks);
  const sampling::FlowAncestralStep step = sampling::flow_ancestral_step(0.8, 0.4);
  at::Generator generator = sampling::seeded_generator(at::kCPU, 8);
  const at::Tensor noise = at::randn(x.sizes(), generator, x.options());
  const at::Tensor expected = x * (step.down / 0.8 * step.rescale) + noise * step.renoise;
  EXPECT_TRUE(at::allclose(out, expected, 1e-5, 1e-6));
  // Without the model sampling the VE ancestral step runs, which differs.
  const at::Tensor ve = run_sampler("euler_ancestral", zero, x, sigma_tensor({0.8, 0.4}), 7, {});
  EXPECT_FALSE(at::allclose(out, ve, 1e-3, 1e-4));
}

TEST(FlowSampling, LcmRenoisesWithTheFlowNoiseScaling) {
  const NoiseSchedule schedule = NoiseSchedule::discrete_flow(3.0, 1.0);
  const Denoiser half = [](const at::Tensor& x, double) { return x * 0.5; };
  SamplerHooks hooks;
  hooks.model_sampling = &schedule;
  const at::Tensor x = at::ones({1, 2, 3, 3});
  const at::Tensor out = run_sampler("lcm", half, x, sigma_tensor({0.9, 0.3}), 3, hooks);
  at::Generator generator = sampling::seeded_generator(at::kCPU, 4);
  const at::Tensor noise = at::randn(x.sizes(), generator, x.options());
  EXPECT_TRUE(at::allclose(out, x * 0.5 * (1.0 - 0.3) + noise * 0.3, 1e-5, 1e-6));
}

TEST(FlowSampling, DeterministicSamplersIgnoreTheModelSampling) {
  const NoiseSchedule schedule = NoiseSchedule::discrete_flow(3.0, 1.0);
  const Denoiser shrink = [](const at::Tensor& x, double sigma) { return x * (1.0 - sigma); };
  SamplerHooks hooks;
  hooks.model_sampling = &schedule;
  const at::Tensor x = at::linspace(-1.0, 1.0, 18).reshape({1, 2, 3, 3});
  const at::Tensor sigmas = sigma_tensor({1.0, 0.7, 0.3, 0.0});
  for (const char* name : {"euler", "heun", "dpmpp_2m", "lms"}) {
    EXPECT_TRUE(at::equal(run_sampler(name, shrink, x, sigmas, 0, hooks),
                          run_sampler(name, shrink, x, sigmas, 0, {})))
        << name;
  }
}

DiffusionModel flow_model() {
  return DiffusionModel{Family::kZImage, std::nullopt, nullptr,
                        NoiseSchedule::discrete_flow(3.0, 1.0), LatentFormat{}, false,
                        RuntimePlacement{}};
}

TEST(FlowSampling, InpaintingNoisesTheKeptLatentByTheFlowRule) {
  // KSamplerX0Inpaint with CONST's noise_scaling: the kept cells enter the model as
  // sigma * noise + (1 - sigma) * latent.
  const DiffusionModel model = flow_model();
  at::Tensor seen;
  const Denoiser record = [&seen](const at::Tensor& x, double) {
    seen = x.clone();
    return x;
  };
  const at::Tensor mask = at::zeros({1, 1, 2, 2});  // keep everything
  const at::Tensor latent = at::full({1, 1, 2, 2}, 2.0);
  const at::Tensor noise = at::full({1, 1, 2, 2}, -1.0);
  const Denoiser masked = masked_denoiser(model, record, mask, latent, noise,
                                          sigma_tensor({1.0, 0.25, 0.0}));
  const at::Tensor out = masked(at::zeros({1, 1, 2, 2}), 0.25);
  EXPECT_TRUE(at::allclose(seen, at::full({1, 1, 2, 2}, 0.25 * -1.0 + 0.75 * 2.0)));
  EXPECT_TRUE(at::allclose(out, latent));
}

TEST(CfgNorm, CapsTheGuidedChannelNormAtTheConditionalOne) {
  // Pixel 0: cond norm 5, guided norm 10 -> halved; pixel 1: guided norm below cond's -> kept.
  CfgArgs args;
  args.cond_denoised = at::tensor({3.0f, 1.0f, 4.0f, 0.0f}).reshape({1, 2, 1, 2});
  const at::Tensor guided = at::tensor({6.0f, 0.5f, 8.0f, 0.0f}).reshape({1, 2, 1, 2});
  const at::Tensor expected = at::tensor({3.0f, 0.5f, 4.0f, 0.0f}).reshape({1, 2, 1, 2});
  EXPECT_TRUE(at::allclose(cfg_norm(1.0)(args, guided), expected, 1e-6, 1e-7));
  EXPECT_TRUE(at::allclose(cfg_norm(0.5)(args, guided), expected * 0.5, 1e-6, 1e-7));
}

}  // namespace
}  // namespace df::engine

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

// The flow nodes run on a Z-Image model value (no network: the nodes only patch the model).
class FlowNodes : public ::testing::Test {
 protected:
  std::vector<Value> run(const char* class_type, const NodeInputs& in) {
    NodeContext ctx("1", progress, canceled, prompt, extra);
    return registry.create(class_type)->execute(in, ctx);
  }

  const engine::ModelPatcher& patched(const char* class_type, NodeInputs in) {
    in.set_linked("model", model);
    result = run(class_type, in);
    return result[0].as<ModelValue>().model;
  }

  CheckpointStore store{CheckpointStoreOptions{"", "", "cpu", "float32", ""}};
  RunEnvironment env;
  graph::NodeImplRegistry registry = builtin_node_impls(NodeResources{store, env});
  Value model = Value::of(
      "MODEL", ModelValue{engine::ModelPatcher(std::make_shared<const engine::DiffusionModel>(
                   engine::flow_model()))});
  std::vector<Value> result;
  nlohmann::json prompt = nlohmann::json::object(), extra = nullptr;
  NodeContext::ProgressCallback progress = [](int64_t, int64_t) {};
  NodeContext::CancelCheck canceled = [] { return false; };
};

TEST_F(FlowNodes, ModelSamplingFluxShiftIsLinearInThePatchCount) {
  // ComfyUI: shift = patches * m + b with m = (max - base) / (4096 - 256), b = base - 256 m,
  // patches = width * height / (8 * 8 * 2 * 2).
  const auto flux_shift_at = [&](int64_t width, int64_t height) {
    NodeInputs in("2", "ModelSamplingFlux");
    in.set_constant("max_shift", 1.15);
    in.set_constant("base_shift", 0.5);
    in.set_constant("width", width);
    in.set_constant("height", height);
    const engine::NoiseSchedule& schedule = patched("ModelSamplingFlux", in).schedule();
    EXPECT_EQ(schedule.size(), 10000);
    // At t = 1/2 the sigma is e^shift / (e^shift + 1): the logit of the sigma is the shift.
    const double sigma = schedule.percent_to_sigma(0.5);
    return std::log(sigma / (1.0 - sigma));
  };
  EXPECT_NEAR(flux_shift_at(1024, 1024), 1.15, 1e-12);  // 4096 patches: max_shift
  EXPECT_NEAR(flux_shift_at(256, 256), 0.5, 1e-12);     // 256 patches: base_shift
  EXPECT_NEAR(flux_shift_at(512, 512), 0.5 + 768.0 * 0.65 / 3840.0, 1e-12);
  EXPECT_NEAR(flux_shift_at(1920, 1088), 0.5 + (8160.0 - 256.0) * 0.65 / 3840.0, 1e-12);
}

TEST_F(FlowNodes, ModelSamplingSd3AndAuraFlowDifferInTheMultiplier) {
  NodeInputs sd3("2", "ModelSamplingSD3");
  sd3.set_constant("shift", 3.0);
  EXPECT_DOUBLE_EQ(patched("ModelSamplingSD3", sd3).schedule().timestep_nearest(0.5), 500.0);
  NodeInputs aura("3", "ModelSamplingAuraFlow");
  aura.set_constant("shift", 3.0);
  const engine::NoiseSchedule& schedule = patched("ModelSamplingAuraFlow", aura).schedule();
  EXPECT_DOUBLE_EQ(schedule.timestep_nearest(0.5), 0.5);
  EXPECT_NEAR(schedule.percent_to_sigma(0.5), 0.75, 1e-12);
}

TEST_F(FlowNodes, CfgNormAddsItsPostCfgFunction) {
  NodeInputs in("2", "CFGNorm");
  in.set_constant("strength", 0.5);
  const engine::ModelPatcher& out = patched("CFGNorm", in);
  ASSERT_EQ(out.guidance().post_cfg_functions.size(), 1u);
  engine::CfgArgs args;
  args.cond_denoised = at::ones({1, 2, 1, 1});
  const at::Tensor guided = at::full({1, 2, 1, 1}, 4.0);  // norm 4 sqrt 2 against sqrt 2
  EXPECT_TRUE(at::allclose(out.guidance().post_cfg_functions[0](args, guided),
                           at::full({1, 2, 1, 1}, 0.5)));
}

}  // namespace
}  // namespace df::nodes
