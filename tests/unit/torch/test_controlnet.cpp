// Unit tests of ControlNets: the step window, chaining, strength, hint batching, ControlNetApply's
// negative copies, the nodes' sharing of links, and the loader's detection and errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../test_support.h"
#include "builtin_nodes_fixture.h"
#include "engine/control/control_chain.h"
#include "engine/control/controlnet_loader.h"
#include "engine/safetensors.h"
#include "engine/tiny_controlnet.h"
#include "tiny_model_fixture.h"

namespace df::engine {
namespace {

constexpr double kTolerance = 1e-5;

class ControlNetTest : public test::TinyModelSuite<ControlNetTest, 11> {
 protected:
  static void SetUpTestSuite() {
    TinyModelSuite::SetUpTestSuite();
    controlnet_file = (dir / "controlnet.safetensors").string();
    write_tiny_controlnet(controlnet_file, Family::kSD1, 3);
    net = load_controlnet(controlnet_file, "cpu", "float32");
  }
  static void TearDownTestSuite() {
    net.reset();
    TinyModelSuite::TearDownTestSuite();
  }

  static std::shared_ptr<const ControlLink> link(double strength,
                                                 std::shared_ptr<const ControlLink> previous = {},
                                                 double start = 0.0, double end = 1.0) {
    const at::Tensor hint = at::rand({1, 3, 32, 24}, at::detail::createCPUGenerator(7));
    return std::make_shared<const ControlLink>(ControlLink{
        net, [hint](int64_t, int64_t) { return hint; }, strength, start, end, std::move(previous)});
  }
  static ControlCall call(double sigma) {
    const at::Generator generator = at::detail::createCPUGenerator(5);
    return {at::randn({2, 4, 4, 3}, generator), at::full({2}, 500.0), at::randn({2, 77, 32}, generator),
            std::nullopt, sigma, 1};
  }
  static const NoiseSchedule& schedule() { return bundle->model->schedule; }

  static inline std::string controlnet_file;
  static inline std::shared_ptr<const ControlNet> net;
};

double max_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST_F(ControlNetTest, WindowIsPercentToSigmaOfTheModelsSchedule) {
  const double middle = schedule().percent_to_sigma(0.5);
  const auto early = link(1.0, {}, 0.0, 0.5);
  const auto late = link(1.0, {}, 0.5, 1.0);
  EXPECT_TRUE(control_active(*early, schedule(), schedule().sigma_max()));
  EXPECT_FALSE(control_active(*late, schedule(), schedule().sigma_max()));
  EXPECT_TRUE(control_active(*early, schedule(), middle));
  EXPECT_TRUE(control_active(*late, schedule(), middle));
  EXPECT_FALSE(control_active(*early, schedule(), middle * 0.99));
  EXPECT_TRUE(control_active(*late, schedule(), 0.0));
}

TEST_F(ControlNetTest, OutsideItsWindowAControlAddsNothing) {
  const UNetControl residuals = control_residuals(*link(1.0, {}, 0.5, 1.0), call(14.0), schedule());
  EXPECT_FALSE(residuals.middle.defined());
  EXPECT_TRUE(residuals.output.empty());
}

TEST_F(ControlNetTest, ChainedControlsAddUp) {
  const ControlCall c = call(1.0);
  const auto first = link(0.3);
  const UNetControl alone = control_residuals(*first, c, schedule());
  const UNetControl chained = control_residuals(*link(0.5, first), c, schedule());
  const UNetControl second = control_residuals(*link(0.5), c, schedule());
  ASSERT_EQ(chained.output.size(), alone.output.size());
  for (size_t i = 0; i < alone.output.size(); ++i) {
    EXPECT_LT(max_difference(chained.output[i], alone.output[i] + second.output[i]), kTolerance);
  }
  EXPECT_LT(max_difference(chained.middle, alone.middle + second.middle), kTolerance);
  EXPECT_GT(alone.middle.abs().max().item<double>(), 1e-3);
}

TEST_F(ControlNetTest, AnInactiveLinkKeepsTheEarlierOnesResiduals) {
  const ControlCall c = call(14.0);
  const auto early = link(1.0);
  const UNetControl chained = control_residuals(*link(1.0, early, 0.5, 1.0), c, schedule());
  const UNetControl alone = control_residuals(*early, c, schedule());
  EXPECT_LT(max_difference(chained.middle, alone.middle), kTolerance);
}

TEST_F(ControlNetTest, StrengthZeroLeavesTheUNetOutputUnchanged) {
  const ControlCall c = call(1.0);
  UNetStep step{1.0};
  step.control = control_residuals(*link(0.0), c, schedule());
  const UNet& unet = *bundle->model->unet;
  const at::Tensor plain = unet.forward(c.sample, c.timesteps, c.context);
  EXPECT_LT(max_difference(unet.forward(c.sample, c.timesteps, c.context, std::nullopt, step), plain),
            kTolerance);
  step.control = control_residuals(*link(1.0), c, schedule());
  EXPECT_GT(max_difference(unet.forward(c.sample, c.timesteps, c.context, std::nullopt, step), plain),
            1e-3);
}

TEST_F(ControlNetTest, AHintOfTheWrongSizeIsRefused) {
  const ControlCall c = call(1.0);
  const auto wrong = std::make_shared<const ControlLink>(ControlLink{
      net, [](int64_t, int64_t) { return at::zeros({1, 3, 16, 16}); }, 1.0, 0.0, 1.0, {}});
  EXPECT_EQ(test::error_code_of([&] { control_residuals(*wrong, c, schedule()); }),
            ErrorCode::kInvalidArgument);
}

TEST_F(ControlNetTest, AControlNetOfAnotherFamilyIsRefusedClearly) {
  test::TestDir out("df_controlnet_");
  const std::string sdxl = (out.path() / "sdxl.safetensors").string();
  write_tiny_controlnet(sdxl, Family::kSDXL, 1);
  const auto other = std::make_shared<const ControlLink>(ControlLink{
      load_controlnet(sdxl, "cpu", "float32"),
      [](int64_t width, int64_t height) { return at::zeros({1, 3, height, width}); }, 1.0, 0.0, 1.0,
      {}});
  const Error error = test::error_of([&] { control_residuals(*other, call(1.0), schedule()); });
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(error.what()).find("another model family"), std::string::npos);
}

TEST(ControlHint, BatchesLikeComfyUI) {
  const at::Tensor one = at::arange(1).reshape({1, 1, 1, 1}).to(at::kFloat);
  EXPECT_EQ(hint_for_batch(one, 6, 2).size(0), 1);  // broadcast by the network
  const at::Tensor two = at::arange(2).reshape({2, 1, 1, 1}).to(at::kFloat);
  // Two conditionings of three latents each: each run takes the hints in turn: 0 1 0 | 0 1 0.
  const at::Tensor batched = hint_for_batch(two, 6, 2);
  EXPECT_TRUE(at::equal(batched.flatten(), at::tensor({0.f, 1.f, 0.f, 0.f, 1.f, 0.f})));
  const at::Tensor five = at::arange(5).reshape({5, 1, 1, 1}).to(at::kFloat);
  EXPECT_TRUE(at::equal(hint_for_batch(five, 4, 2).flatten(), at::tensor({0.f, 1.f, 0.f, 1.f})));
}

TEST(ControlsForNegative, NegativesWithoutAControlTakeApplyNodesControls) {
  const auto control = std::make_shared<const ControlLink>();
  Conditioning positive;
  positive.control = control;
  positive.control_applies_to_negative = true;
  const ConditioningList negative = with_controls_for_negative({positive}, {Conditioning{}});
  EXPECT_EQ(negative.at(0).control, control);
  // ControlNetApplyAdvanced's controls stay on their side; a negative with its own keeps it.
  positive.control_applies_to_negative = false;
  EXPECT_EQ(with_controls_for_negative({positive}, {Conditioning{}}).at(0).control, nullptr);
  positive.control_applies_to_negative = true;
  Conditioning own;
  own.control = std::make_shared<const ControlLink>();
  EXPECT_EQ(with_controls_for_negative({positive}, {own}).at(0).control, own.control);
}

TEST_F(ControlNetTest, LoaderDetectsLayoutsAndFamilies) {
  const ControlNetFile file = read_controlnet(controlnet_file, at::kFloat);
  EXPECT_EQ(file.family, Family::kSD1);
  EXPECT_FALSE(file.difference);
  EXPECT_TRUE(file.weights.count("controlnet_cond_embedding.conv_out.weight"));
  EXPECT_TRUE(file.weights.count("controlnet_down_blocks.5.weight"));  // conv_in + 2 + 1 + 2
  EXPECT_FALSE(file.weights.count("controlnet_down_blocks.6.weight"));
  EXPECT_TRUE(file.weights.count("down_blocks.1.attentions.1.proj_in.weight"));

  test::TestDir out("df_controlnet_");
  const std::string sdxl = (out.path() / "sdxl.safetensors").string();
  write_tiny_controlnet(sdxl, Family::kSDXL, 1);
  EXPECT_EQ(read_controlnet(sdxl, at::kFloat).family, Family::kSDXL);

  // The same tensors without the "control_model." prefix (the bare original layout).
  TensorMap bare;
  for (auto& [name, tensor] : load_safetensors(controlnet_file)) bare.emplace(name.substr(14), tensor);
  const std::string bare_file = (out.path() / "bare.safetensors").string();
  save_safetensors(bare_file, bare,
                   SafetensorsFile::open(controlnet_file).metadata());
  const ControlNetFile loaded = read_controlnet(bare_file, at::kFloat);
  EXPECT_TRUE(at::equal(loaded.weights.at("controlnet_mid_block.weight"),
                        file.weights.at("controlnet_mid_block.weight")));
}

TEST_F(ControlNetTest, DifferenceFilesAddTheModelsWeights) {
  TensorMap tensors = load_safetensors(controlnet_file);
  tensors.emplace("difference", at::zeros({1}));
  test::TestDir out("df_controlnet_");
  const std::string diff = (out.path() / "diff.safetensors").string();
  save_safetensors(diff, tensors, SafetensorsFile::open(controlnet_file).metadata());
  const Weights& unet = bundle->model->unet->weights();
  const auto added = load_controlnet(diff, "cpu", "float32", &unet);
  const auto plain = load_controlnet(controlnet_file, "cpu", "float32", &unet);
  const std::string name = "down_blocks.0.resnets.0.conv1.weight";
  EXPECT_LT(max_difference(added->weights().get(name),
                           plain->weights().get(name) + unet.get(name)), kTolerance);
  // A ControlNet without the marker ignores the model.
  EXPECT_LT(max_difference(plain->weights().get(name), net->weights().get(name)), kTolerance);
}

TEST(ControlNetLoader, RefusesOtherFilesClearly) {
  test::TestDir out("df_controlnet_");
  const auto write = [&](const std::string& name, TensorMap tensors) {
    const std::string path = (out.path() / name).string();
    save_safetensors(path, tensors);
    return path;
  };
  const Error other = test::error_of([&] {
    read_controlnet(write("vae.safetensors", {{"encoder.conv_in.weight", at::zeros({1})}}), at::kFloat);
  });
  EXPECT_EQ(other.code(), ErrorCode::kUnsupported);
  EXPECT_NE(std::string(other.what()).find("holds no ControlNet"), std::string::npos);
  EXPECT_NE(std::string(other.what()).find("encoder"), std::string::npos);

  const Error adapter = test::error_of([&] {
    read_controlnet(write("t2i.safetensors", {{"body.0.in_conv.weight", at::zeros({1})}}), at::kFloat);
  });
  EXPECT_EQ(adapter.code(), ErrorCode::kUnsupported);
  EXPECT_NE(std::string(adapter.what()).find("T2I"), std::string::npos);

  EXPECT_EQ(test::error_code_of([&] {
              read_controlnet(write("lora.safetensors", {{"lora_controlnet", at::zeros({1})}}),
                              at::kFloat);
            }),
            ErrorCode::kUnsupported);

  // Missing tensors of a ControlNet-looking file: a corrupt file, not a crash.
  const std::string partial =
      write("partial.safetensors", {{"zero_convs.0.0.weight", at::zeros({32, 32, 1, 1})}});
  const ErrorCode partial_code = test::error_code_of([&] { load_controlnet(partial, "cpu", "float32"); });
  EXPECT_TRUE(partial_code == ErrorCode::kCorruptFile || partial_code == ErrorCode::kUnsupported);

  const std::string truncated = (out.path() / "truncated.safetensors").string();
  std::ofstream(truncated) << "\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":";
  EXPECT_EQ(test::error_code_of([&] { read_controlnet(truncated, at::kFloat); }),
            ErrorCode::kCorruptFile);
  EXPECT_EQ(test::error_code_of([&] {
              read_controlnet((out.path() / "missing.safetensors").string(), at::kFloat);
            }),
            ErrorCode::kModelNotFound);
}

// The apply nodes on conditionings (the ControlNet itself is not run, so none is loaded).
class ControlNetApplyNodes : public test::BuiltinNodesTest {
 protected:
  ControlNetApplyNodes()
      : BuiltinNodesTest("df_controlnet_nodes_", "5",
                         nlohmann::json::parse(R"({"5": {"class_type": "ControlNetApplyAdvanced", "inputs": {}}})"),
                         nlohmann::json::object()) {}

  static graph::Value conditioning(ConditioningList entries) {
    return graph::Value::of("CONDITIONING", nodes::ConditioningValue{std::move(entries)});
  }
  static graph::NodeInputs advanced(const ConditioningList& positive, const ConditioningList& negative,
                                    double strength) {
    graph::NodeInputs in("5", "ControlNetApplyAdvanced");
    in.set_linked("positive", conditioning(positive));
    in.set_linked("negative", conditioning(negative));
    in.set_linked("control_net", graph::Value::of("CONTROL_NET", nodes::ControlNetValue{}));
    in.set_linked("image", graph::Value::of("IMAGE", nodes::ImageValue{at::rand({1, 16, 16, 3})}));
    in.set_constant("strength", strength);
    in.set_constant("start_percent", 0.25);
    in.set_constant("end_percent", 0.75);
    return in;
  }
  static const ConditioningList& entries(const graph::Value& value) {
    return value.as<nodes::ConditioningValue>().entries;
  }
};

TEST_F(ControlNetApplyNodes, StrengthZeroReturnsTheConditioningsUnchanged) {
  const auto out = run("ControlNetApplyAdvanced", advanced({Conditioning{}}, {Conditioning{}}, 0.0));
  EXPECT_EQ(entries(out.at(0)).at(0).control, nullptr);
  EXPECT_EQ(entries(out.at(1)).at(0).control, nullptr);
}

TEST_F(ControlNetApplyNodes, EntriesWithTheSameEarlierControlsShareOneLink) {
  Conditioning earlier;
  earlier.control = std::make_shared<const ControlLink>();
  const auto out = run("ControlNetApplyAdvanced",
                       advanced({Conditioning{}, earlier}, {Conditioning{}}, 0.5));
  const auto& positive = entries(out.at(0));
  const auto& negative = entries(out.at(1));
  EXPECT_EQ(positive.at(0).control, negative.at(0).control);
  EXPECT_NE(positive.at(0).control, positive.at(1).control);
  EXPECT_EQ(positive.at(1).control->previous, earlier.control);
  EXPECT_EQ(positive.at(0).control->previous, nullptr);
  EXPECT_DOUBLE_EQ(positive.at(0).control->strength, 0.5);
  EXPECT_DOUBLE_EQ(positive.at(0).control->start_percent, 0.25);
  EXPECT_DOUBLE_EQ(positive.at(0).control->end_percent, 0.75);
  EXPECT_FALSE(positive.at(0).control_applies_to_negative);
  // The hint is the image channels first at the latent's pixel size.
  EXPECT_EQ(positive.at(0).control->hint(24, 8).sizes(), (std::vector<int64_t>{1, 3, 8, 24}));
}

TEST_F(ControlNetApplyNodes, OldApplyChainsEachEntryAndAppliesToTheNegative) {
  Conditioning earlier;
  earlier.control = std::make_shared<const ControlLink>();
  graph::NodeInputs in("5", "ControlNetApply");
  in.set_linked("conditioning", conditioning({earlier}));
  in.set_linked("control_net", graph::Value::of("CONTROL_NET", nodes::ControlNetValue{}));
  in.set_linked("image", graph::Value::of("IMAGE", nodes::ImageValue{at::rand({1, 16, 16, 3})}));
  in.set_constant("strength", 0.8);
  const auto& out = entries(run("ControlNetApply", in).at(0));
  EXPECT_TRUE(out.at(0).control_applies_to_negative);
  EXPECT_EQ(out.at(0).control->previous, earlier.control);
  EXPECT_DOUBLE_EQ(out.at(0).control->start_percent, 0.0);
  EXPECT_DOUBLE_EQ(out.at(0).control->end_percent, 1.0);
}

}  // namespace
}  // namespace df::engine
