// Tests for the custom-sampling nodes: sigma tools on known lists, and SamplerCustom(Advanced)
// with their samplers, schedulers, noises and guiders against KSampler on a tiny SD 1.x model.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <vector>

#include "core/error.h"
#include "node_test_support.h"
#include "engine/ksampler.h"
#include "engine/schedulers.h"
#include "engine/tiny_model.h"
#include "nodes/builtin_nodes.h"
#include "nodes/node_values.h"
#include "nodes/packs/sampling/sigma_ops.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;
using nlohmann::json;
using test::error_code_of;

at::Tensor sigmas_of(std::vector<float> values) { return at::tensor(values, at::kFloat); }

std::vector<float> values_of(const at::Tensor& t) {
  const at::Tensor flat = t.contiguous();
  return std::vector<float>(flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
}

TEST(SigmaTools, SplitSigmasAtAStep) {
  const at::Tensor sigmas = sigmas_of({4, 3, 2, 1, 0});
  auto [high, low] = split_sigmas(sigmas, 2);
  EXPECT_EQ(values_of(high), (std::vector<float>{4, 3, 2}));
  EXPECT_EQ(values_of(low), (std::vector<float>{2, 1, 0}));
  std::tie(high, low) = split_sigmas(sigmas, 0);
  EXPECT_EQ(values_of(high), (std::vector<float>{4}));
  EXPECT_EQ(values_of(low), (std::vector<float>{4, 3, 2, 1, 0}));
  std::tie(high, low) = split_sigmas(sigmas, 9);  // past the end, as Python slices
  EXPECT_EQ(values_of(high), (std::vector<float>{4, 3, 2, 1, 0}));
  EXPECT_EQ(low.numel(), 0);
}

TEST(SigmaTools, SplitSigmasDenoiseKeepsTheLastSteps) {
  const at::Tensor sigmas = sigmas_of({4, 3, 2, 1, 0});  // 4 steps
  auto [high, low] = split_sigmas_denoise(sigmas, 0.5);
  EXPECT_EQ(values_of(high), (std::vector<float>{4, 3, 2}));
  EXPECT_EQ(values_of(low), (std::vector<float>{2, 1, 0}));
  std::tie(high, low) = split_sigmas_denoise(sigmas, 0.625);  // 2.5 rounds to even: 2
  EXPECT_EQ(values_of(low), (std::vector<float>{2, 1, 0}));
  std::tie(high, low) = split_sigmas_denoise(sigmas, 1.0);
  EXPECT_EQ(values_of(high), (std::vector<float>{4}));
  EXPECT_EQ(values_of(low), (std::vector<float>{4, 3, 2, 1, 0}));
  std::tie(high, low) = split_sigmas_denoise(sigmas, 0.0);  // Python's [:-0] is empty
  EXPECT_EQ(high.numel(), 0);
  EXPECT_EQ(values_of(low), (std::vector<float>{0}));
}

TEST(SigmaTools, FlipSigmasRaisesALeadingZero) {
  EXPECT_EQ(values_of(flip_sigmas(sigmas_of({3, 1, 0}))), (std::vector<float>{0.0001f, 1, 3}));
  EXPECT_EQ(values_of(flip_sigmas(sigmas_of({3, 1}))), (std::vector<float>{1, 3}));
  EXPECT_EQ(flip_sigmas(sigmas_of({})).numel(), 0);
}

// A tiny SD 1.x model on the CPU with the node registry over it.
class CustomSamplingNodes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    models_dir = std::filesystem::temp_directory_path() /
                 ("df_custom_sampling_" + std::to_string(::getpid()));
    engine::write_tiny_model((models_dir / "tiny").string(), engine::Family::kSD1, 3);
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    std::filesystem::remove_all(models_dir, ignored);
  }

  void SetUp() override {
    bundle = store.get("tiny");
    registry = builtin_node_impls(NodeResources{store, env});
    model = Value::of("MODEL", ModelValue{engine::ModelPatcher(bundle->model)});
    positive = conditioning("a red cube");
    negative = conditioning("blurry");
    latent = Value::of("LATENT", LatentValue{at::zeros({1, 4, 8, 8})});
  }

  Value conditioning(const std::string& text) const {
    return Value::of("CONDITIONING", ConditioningValue{{bundle->clip->encode(text)}});
  }

  std::vector<Value> run(const char* class_type, const NodeInputs& in) {
    NodeContext ctx("3", progress, canceled, prompt, extra);
    return registry.create(class_type)->execute(in, ctx);
  }

  Value select_sampler(const std::string& name) {
    NodeInputs in("10", "KSamplerSelect");
    in.set_constant("sampler_name", name);
    return run("KSamplerSelect", in)[0];
  }

  Value basic_scheduler(const std::string& scheduler, int steps, double denoise = 1.0) {
    NodeInputs in("11", "BasicScheduler");
    in.set_linked("model", model);
    in.set_constant("scheduler", scheduler);
    in.set_constant("steps", steps);
    in.set_constant("denoise", denoise);
    return run("BasicScheduler", in)[0];
  }

  // SamplerCustom's two latents.
  std::vector<Value> sampler_custom(const Value& sampler, const Value& sigmas, uint64_t seed,
                                    double cfg, bool add_noise = true) {
    NodeInputs in("3", "SamplerCustom");
    in.set_linked("model", model);
    in.set_constant("add_noise", add_noise);
    in.set_constant("noise_seed", seed);
    in.set_constant("cfg", cfg);
    in.set_linked("positive", positive);
    in.set_linked("negative", negative);
    in.set_linked("sampler", sampler);
    in.set_linked("sigmas", sigmas);
    in.set_linked("latent_image", latent);
    return run("SamplerCustom", in);
  }

  Value random_noise(uint64_t seed) {
    NodeInputs in("12", "RandomNoise");
    in.set_constant("noise_seed", seed);
    return run("RandomNoise", in)[0];
  }

  Value cfg_guider(double cfg) {
    NodeInputs in("13", "CFGGuider");
    in.set_linked("model", model);
    in.set_linked("positive", positive);
    in.set_linked("negative", negative);
    in.set_constant("cfg", cfg);
    return run("CFGGuider", in)[0];
  }

  Value dual_cfg_guider(double cfg_conds, double cfg_cond2_negative, const char* style) {
    NodeInputs in("14", "DualCFGGuider");
    in.set_linked("model", model);
    in.set_linked("cond1", positive);
    in.set_linked("cond2", negative);
    in.set_linked("negative", negative);
    in.set_constant("cfg_conds", cfg_conds);
    in.set_constant("cfg_cond2_negative", cfg_cond2_negative);
    in.set_constant("style", style);
    return run("DualCFGGuider", in)[0];
  }

  std::vector<Value> sampler_custom_advanced(const Value& noise, const Value& guider,
                                             const Value& sampler, const Value& sigmas) {
    NodeInputs in("3", "SamplerCustomAdvanced");
    in.set_linked("noise", noise);
    in.set_linked("guider", guider);
    in.set_linked("sampler", sampler);
    in.set_linked("sigmas", sigmas);
    in.set_linked("latent_image", latent);
    return run("SamplerCustomAdvanced", in);
  }

  // KSampler's result for the same settings.
  at::Tensor ksampler(const std::string& sampler, const std::string& scheduler, int steps,
                      uint64_t seed, double cfg, bool add_noise = true) {
    engine::KSamplerParams params;
    params.seed = seed;
    params.steps = steps;
    params.cfg = cfg;
    params.sampler = sampler;
    params.scheduler = scheduler;
    params.add_noise = add_noise;
    return engine::ksample(*bundle->model, positive.as<ConditioningValue>().entries,
                           negative.as<ConditioningValue>().entries,
                           latent.as<LatentValue>().samples, params, {});
  }

  static const at::Tensor& samples(const Value& value) { return value.as<LatentValue>().samples; }

  static inline std::filesystem::path models_dir;
  CheckpointStore store{CheckpointStoreOptions{models_dir.string(), "", "cpu", "float32", ""}};
  RunEnvironment env;
  graph::NodeImplRegistry registry;
  std::shared_ptr<const engine::CheckpointBundle> bundle;
  Value model = Value::of("MODEL", 0), positive = model, negative = model, latent = model;
  json prompt = json::object(), extra = nullptr;
  std::vector<std::pair<int64_t, int64_t>> progress_reports;
  bool cancel_requested = false;
  NodeContext::ProgressCallback progress = [this](int64_t value, int64_t max) {
    progress_reports.emplace_back(value, max);
  };
  NodeContext::CancelCheck canceled = [this] { return cancel_requested; };
};

TEST_F(CustomSamplingNodes, SamplerCustomMatchesKSampler) {
  for (const char* sampler : {"euler", "euler_ancestral", "dpmpp_2m"}) {
    const auto outputs = sampler_custom(select_sampler(sampler), basic_scheduler("karras", 3), 11, 6.0);
    ASSERT_EQ(outputs.size(), 2u);
    EXPECT_TRUE(at::allclose(samples(outputs[0]), ksampler(sampler, "karras", 3, 11, 6.0), 1e-5, 1e-5))
        << sampler;
  }
  EXPECT_EQ(progress_reports.back(), (std::pair<int64_t, int64_t>{3, 3}));
}

TEST_F(CustomSamplingNodes, SamplerCustomWithoutNoiseMatchesKSamplerWithoutNoise) {
  const auto outputs =
      sampler_custom(select_sampler("euler"), basic_scheduler("normal", 2), 5, 3.0, false);
  EXPECT_TRUE(at::allclose(samples(outputs[0]), ksampler("euler", "normal", 2, 5, 3.0, false),
                           1e-5, 1e-5));
}

TEST_F(CustomSamplingNodes, SamplerCustomAdvancedWithCfgGuiderMatchesKSampler) {
  const auto outputs = sampler_custom_advanced(random_noise(21), cfg_guider(7.5),
                                               select_sampler("euler_ancestral"),
                                               basic_scheduler("normal", 3));
  EXPECT_TRUE(at::allclose(samples(outputs[0]), ksampler("euler_ancestral", "normal", 3, 21, 7.5),
                           1e-5, 1e-5));
}

TEST_F(CustomSamplingNodes, BasicGuiderAndDisabledNoiseMatchKSamplerAtCfgOne) {
  NodeInputs guider("13", "BasicGuider");
  guider.set_linked("model", model);
  guider.set_linked("conditioning", positive);
  const Value basic = run("BasicGuider", guider)[0];
  const Value none = run("DisableNoise", NodeInputs("12", "DisableNoise"))[0];
  const auto outputs = sampler_custom_advanced(none, basic, select_sampler("euler"),
                                               basic_scheduler("normal", 2));
  EXPECT_TRUE(at::allclose(samples(outputs[0]), ksampler("euler", "normal", 2, 0, 1.0, false),
                           1e-5, 1e-5));
}

TEST_F(CustomSamplingNodes, DualCfgGuiderWithTheNegativeAsCond2IsPlainCfg) {
  const Value sampler = select_sampler("euler");
  const Value sigmas = basic_scheduler("normal", 2);
  const at::Tensor expected = ksampler("euler", "normal", 2, 4, 5.0);
  const auto regular =
      sampler_custom_advanced(random_noise(4), dual_cfg_guider(5.0, 3.0, "regular"), sampler, sigmas);
  EXPECT_TRUE(at::allclose(samples(regular[0]), expected, 1e-4, 1e-4));
  const auto nested =
      sampler_custom_advanced(random_noise(4), dual_cfg_guider(5.0, 1.0, "nested"), sampler, sigmas);
  EXPECT_TRUE(at::allclose(samples(nested[0]), expected, 1e-4, 1e-4));
}

TEST_F(CustomSamplingNodes, DenoisedOutputIsTheLastEstimate) {
  // Euler's last step to sigma 0 lands on its estimate.
  const auto full = sampler_custom(select_sampler("euler"), basic_scheduler("normal", 3), 1, 4.0);
  EXPECT_TRUE(at::allclose(samples(full[1]), samples(full[0]), 1e-5, 1e-5));
  // Stopping early leaves the output short of the estimate.
  NodeInputs split("15", "SplitSigmas");
  split.set_linked("sigmas", basic_scheduler("normal", 3));
  split.set_constant("step", 2);
  const auto parts = run("SplitSigmas", split);
  const auto early = sampler_custom(select_sampler("euler"), parts[0], 1, 4.0);
  EXPECT_FALSE(at::allclose(samples(early[1]), samples(early[0]), 1e-3, 1e-3));
}

TEST_F(CustomSamplingNodes, EmptySigmasReturnTheLatentAndKeepItsMaskAndBatchIndex) {
  LatentValue value{at::randn({2, 4, 8, 8})};
  value.noise_mask = at::ones({1, 1, 64, 64});
  value.batch_index = {3, 5};
  latent = Value::of("LATENT", value);
  const auto outputs = sampler_custom(select_sampler("euler"), basic_scheduler("normal", 3, 0.0), 1, 4.0);
  for (const Value& output : outputs) {
    const auto& out = output.as<LatentValue>();
    EXPECT_TRUE(out.samples.equal(value.samples));
    EXPECT_TRUE(out.noise_mask.equal(value.noise_mask));
    EXPECT_EQ(out.batch_index, value.batch_index);
  }
  // With steps the batch index picks the seeded noise, as KSampler does.
  const auto sampled = sampler_custom(select_sampler("euler"), basic_scheduler("normal", 2), 9, 4.0);
  engine::KSamplerParams params;
  params.seed = 9;
  params.steps = 2;
  params.cfg = 4.0;
  params.batch_index = value.batch_index;
  const at::Tensor expected =
      engine::ksample(*bundle->model, positive.as<ConditioningValue>().entries,
                      negative.as<ConditioningValue>().entries, value.samples, params, {});
  EXPECT_TRUE(at::allclose(samples(sampled[0]), expected, 1e-5, 1e-5));
  EXPECT_EQ(sampled[0].as<LatentValue>().batch_index, value.batch_index);
}

TEST_F(CustomSamplingNodes, ParametricSchedulersAndFlip) {
  NodeInputs karras("16", "KarrasScheduler");
  karras.set_constant("steps", 4);
  karras.set_constant("sigma_max", 14.614642);
  karras.set_constant("sigma_min", 0.0291675);
  karras.set_constant("rho", 7.0);
  const at::Tensor sigmas = run("KarrasScheduler", karras)[0].as<SigmasValue>().sigmas;
  EXPECT_TRUE(sigmas.equal(engine::karras_sigmas(4, 0.0291675, 14.614642, 7.0)));
  NodeInputs flip("17", "FlipSigmas");
  flip.set_linked("sigmas", Value::of("SIGMAS", SigmasValue{sigmas}));
  const at::Tensor flipped = run("FlipSigmas", flip)[0].as<SigmasValue>().sigmas;
  EXPECT_FLOAT_EQ(flipped[0].item<float>(), 0.0001f);
  EXPECT_FLOAT_EQ(flipped[4].item<float>(), sigmas[0].item<float>());
}

TEST_F(CustomSamplingNodes, BadNamesAreClearErrors) {
  EXPECT_EQ(error_code_of([&] { select_sampler("euler_fancy"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { basic_scheduler("fancy", 3); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { dual_cfg_guider(1.0, 1.0, "sideways"); }),
            ErrorCode::kInvalidArgument);
}

TEST_F(CustomSamplingNodes, CancellationStopsSampling) {
  const Value sampler = select_sampler("euler");
  const Value sigmas = basic_scheduler("normal", 3);
  cancel_requested = true;
  EXPECT_EQ(error_code_of([&] { sampler_custom(sampler, sigmas, 1, 4.0); }), ErrorCode::kCanceled);
}

}  // namespace
}  // namespace df::nodes
