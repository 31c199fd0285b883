// Unit tests of T2I adapters: ComfyUI's placement of the features, strength and step window,
// chaining after a ControlNet, and the loader's errors (feature values: tests/parity).
#include <gtest/gtest.h>

#include "../test_support.h"
#include "engine/control/control_chain.h"
#include "engine/control/controlnet_loader.h"
#include "engine/control/t2i_adapter.h"
#include "engine/safetensors.h"
#include "engine/tiny_controlnet.h"
#include "engine/tiny_t2i_adapter.h"
#include "tiny_model_fixture.h"

namespace df::engine {
namespace {

constexpr double kTolerance = 1e-5;

class T2IAdapterTest : public test::TinyModelSuite<T2IAdapterTest, 13> {
 protected:
  static void SetUpTestSuite() {
    TinyModelSuite::SetUpTestSuite();
    write_tiny_t2i_adapter((dir / "adapter.safetensors").string(), Family::kSD1, 4);
    adapter = load_t2i_adapter((dir / "adapter.safetensors").string(), "cpu", "float32");
  }
  static void TearDownTestSuite() {
    adapter.reset();
    TinyModelSuite::TearDownTestSuite();
  }

  static std::shared_ptr<const ControlLink> link(std::shared_ptr<const ControlModel> model,
                                                 double strength, double start = 0.0,
                                                 std::shared_ptr<const ControlLink> previous = {}) {
    return std::make_shared<const ControlLink>(ControlLink{
        std::move(model),
        [](int64_t width, int64_t height) {
          return at::rand({1, 3, height, width}, at::detail::createCPUGenerator(7));
        },
        strength, start, 1.0, std::move(previous)});
  }
  static ControlCall call(double sigma) {
    const at::Generator generator = at::detail::createCPUGenerator(5);
    return {at::randn({2, 4, 4, 3}, generator), at::full({2}, 500.0),
            at::randn({2, 77, 32}, generator), std::nullopt, sigma, 1};
  }
  static at::Tensor unet_output(const ControlCall& c, UNetControl control) {
    UNetStep step{c.sigma};
    step.control = std::move(control);
    return bundle->model->unet->forward(c.sample, c.timesteps, c.context, std::nullopt, step);
  }
  static const NoiseSchedule& schedule() { return bundle->model->schedule; }

  static inline std::shared_ptr<const T2IAdapter> adapter;
};

double max_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

std::vector<size_t> defined_entries(const std::vector<at::Tensor>& residuals) {
  std::vector<size_t> defined;
  for (size_t i = 0; i < residuals.size(); ++i) {
    if (residuals[i].defined()) defined.push_back(i);
  }
  return defined;
}

TEST_F(T2IAdapterTest, FeaturesGoWhereComfyUIPutsThem) {
  const UNetControl sd1 = adapter->control(call(1.0), link(adapter, 1.0)->hint);
  EXPECT_EQ(defined_entries(sd1.input), (std::vector<size_t>{2, 5}));
  EXPECT_FALSE(sd1.middle.defined());
  EXPECT_EQ(sd1.input[2].size(0), 2);  // one hint's features serve the whole batch
  // The next call with the same hint reuses its features; another hint gets its own.
  const UNetControl again = adapter->control(call(0.5), link(adapter, 1.0)->hint);
  EXPECT_TRUE(at::equal(again.input[5], sd1.input[5]));
  const UNetControl other =
      adapter->control(call(1.0), [](int64_t width, int64_t height) {
        return at::zeros({1, 3, height, width});
      });
  EXPECT_GT(max_difference(other.input[5], sd1.input[5]), 1e-4);
  EXPECT_TRUE(at::equal(adapter->control(call(1.0), link(adapter, 1.0)->hint).input[5],
                        sd1.input[5]));

  test::TestDir out("df_t2i_");
  const std::string xl_file = (out.path() / "xl.safetensors").string();
  write_tiny_t2i_adapter(xl_file, Family::kSDXL, 4);
  const auto xl = load_t2i_adapter(xl_file, "cpu", "float32");
  EXPECT_TRUE(xl->config().xl);
  const UNetControl placed = xl->control_of(xl->features(at::rand({1, 3, 64, 32})));
  EXPECT_EQ(defined_entries(placed.input), (std::vector<size_t>{3}));
  EXPECT_TRUE(placed.middle.defined());
}

TEST_F(T2IAdapterTest, NoStrengthOrOutsideItsWindowChangesNothing) {
  const ControlCall c = call(1.0);
  const at::Tensor plain = unet_output(c, {});
  const auto output_at = [&](double strength) {
    return unet_output(c, control_residuals(*link(adapter, strength), c, schedule()));
  };
  EXPECT_LT(max_difference(output_at(0.0), plain), kTolerance);
  EXPECT_GT(max_difference(output_at(1.0), plain), 1e-3);
  const ControlCall early = call(schedule().sigma_max());
  const UNetControl late = control_residuals(*link(adapter, 1.0, 0.5), early, schedule());
  EXPECT_TRUE(defined_entries(late.input).empty());
}

TEST_F(T2IAdapterTest, ChainedAfterAControlNetBothApply) {
  const std::string controlnet_file = (dir / "controlnet.safetensors").string();
  write_tiny_controlnet(controlnet_file, Family::kSD1, 3);
  const auto controlnet = link(load_controlnet(controlnet_file, "cpu", "float32"), 1.0);
  const ControlCall c = call(1.0);
  const UNetControl alone = control_residuals(*link(adapter, 0.5), c, schedule());
  const UNetControl chained =
      control_residuals(*link(adapter, 0.5, 0.0, controlnet), c, schedule());
  const UNetControl net_only = control_residuals(*controlnet, c, schedule());
  ASSERT_EQ(defined_entries(chained.input), (std::vector<size_t>{2, 5}));
  EXPECT_LT(max_difference(chained.input[5], alone.input[5]), kTolerance);
  ASSERT_EQ(chained.output.size(), net_only.output.size());
  EXPECT_LT(max_difference(chained.middle, net_only.middle), kTolerance);
}

TEST(T2IAdapterLoader, StridedConvolutionsDownsampleWhenTheFileHasThem) {
  test::TestDir out("df_t2i_");
  const std::string tiny = (out.path() / "tiny.safetensors").string();
  write_tiny_t2i_adapter(tiny, Family::kSD1, 2);
  TensorMap tensors = load_tensors_as(TensorFile::open(tiny), at::kFloat, [](const std::string& k) {
    return std::optional<std::string>(k);
  });
  tensors.emplace("body.2.down_opt.op.weight", at::randn({32, 32, 3, 3}) * 0.1);
  tensors.emplace("body.2.down_opt.op.bias", at::zeros({32}));
  const std::string strided = (out.path() / "strided.safetensors").string();
  save_safetensors(strided, tensors);
  const auto adapter = load_t2i_adapter(strided, "cpu", "float32");
  EXPECT_TRUE(adapter->config().conv_downsample);
  const auto features = adapter->features(at::rand({1, 3, 32, 48}));
  ASSERT_EQ(features.size(), 2u);
  EXPECT_EQ(features[1].sizes(), (std::vector<int64_t>{1, 64, 2, 3}));

  tensors.erase("body.2.down_opt.op.weight");
  tensors.emplace("body.2.down_opt.op.weight", at::zeros({32, 32, 1, 1}));
  save_safetensors(strided, tensors);
  EXPECT_EQ(test::error_code_of([&] { load_t2i_adapter(strided, "cpu", "float32"); }),
            ErrorCode::kCorruptFile);
}

TEST(T2IAdapterLoader, LoadsAdaptersAndRefusesOthersClearly) {
  test::TestDir out("df_t2i_");
  const std::string light = (out.path() / "light.safetensors").string();
  save_safetensors(light, {{"body.0.in_conv.weight", at::zeros({8, 192, 1, 1})}});
  EXPECT_EQ(test::error_code_of([&] { load_t2i_adapter(light, "cpu", "float32"); }),
            ErrorCode::kCorruptFile);
  const std::string vae = (out.path() / "vae.safetensors").string();
  save_safetensors(vae, {{"encoder.conv_in.weight", at::zeros({1})}});
  EXPECT_EQ(test::error_code_of([&] { load_t2i_adapter(vae, "cpu", "float32"); }),
            ErrorCode::kUnsupported);
  EXPECT_EQ(test::error_code_of([&] {
              load_t2i_adapter((out.path() / "missing.safetensors").string(), "cpu", "float32");
            }),
            ErrorCode::kModelNotFound);
  const std::string partial = (out.path() / "partial.safetensors").string();
  save_safetensors(partial, {{"conv_in.weight", at::zeros({32, 192, 3, 3})},
                             {"body.0.block2.weight", at::zeros({32, 32, 1, 1})}});
  EXPECT_EQ(test::error_code_of([&] { load_t2i_adapter(partial, "cpu", "float32"); }),
            ErrorCode::kCorruptFile);

  const std::string tiny = (out.path() / "tiny.safetensors").string();
  write_tiny_t2i_adapter(tiny, Family::kSD1, 1);
  EXPECT_NE(std::dynamic_pointer_cast<const T2IAdapter>(load_control_model(tiny, "cpu", "float32")),
            nullptr);
}

}  // namespace
}  // namespace df::engine
