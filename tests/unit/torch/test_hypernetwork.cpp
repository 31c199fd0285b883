// Tests of A1111 hypernetworks: loading the flattened layout and ComfyUI's key/value patch math.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "../pickle_test_bytes.h"
#include "core/error.h"
#include "engine/hypernetwork.h"
#include "engine/safetensors.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

class HypernetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("df_hypernetwork_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    at::manual_seed(7);
    for (const char* side : {"0", "1"}) {
      const std::string p = std::string("4.") + side + ".linear.";
      tensors_[p + "0.weight"] = at::randn({8, 4});
      tensors_[p + "0.bias"] = at::randn({8});
      tensors_[p + "2.weight"] = at::randn({4, 8});
      tensors_[p + "2.bias"] = at::randn({4});
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string save(const std::map<std::string, std::string>& metadata) {
    const std::string path = (dir_ / "hn.safetensors").string();
    save_safetensors(path, tensors_, metadata);
    return path;
  }
  at::Tensor mlp(const std::string& side, const at::Tensor& x, bool activate) {
    const std::string p = "4." + side + ".linear.";
    at::Tensor h = at::linear(x, tensors_[p + "0.weight"], tensors_[p + "0.bias"]);
    if (activate) h = at::tanh(h);
    return at::linear(h, tensors_[p + "2.weight"], tensors_[p + "2.bias"]);
  }

  fs::path dir_;
  TensorMap tensors_;
};

TEST_F(HypernetworkTest, KeysAndValuesGetTheirMlpTimesStrength) {
  const auto hn = Hypernetwork::load(save({{"activation_func", "tanh"}}));
  EXPECT_EQ(hn.widths(), std::vector<int64_t>{4});
  const at::Tensor query = at::randn({2, 5, 6});
  const at::Tensor key = at::randn({2, 3, 4});
  const at::Tensor value = at::randn({2, 3, 4});
  AttentionInputs inputs{query, key, value};
  hn.apply(inputs, 0.7);
  EXPECT_TRUE(inputs.query.equal(query));
  EXPECT_TRUE(at::allclose(inputs.key, key + mlp("0", key, true) * 0.7, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(inputs.value, value + mlp("1", value, true) * 0.7, 1e-5, 1e-6));
}

TEST_F(HypernetworkTest, LinearActivationAndOtherWidthsLeaveInputsAlone) {
  const auto hn = Hypernetwork::load(save({}));
  EXPECT_EQ(hn.activation(), "linear");
  const at::Tensor key = at::randn({1, 3, 4});
  AttentionInputs inputs{key, key, key};
  hn.apply(inputs, -2.0);
  EXPECT_TRUE(at::allclose(inputs.key, key + mlp("0", key, false) * -2.0, 1e-5, 1e-6));
  const at::Tensor wide = at::randn({1, 3, 6});
  AttentionInputs other{wide, wide, wide};
  hn.apply(other, 1.0);
  EXPECT_TRUE(other.key.equal(wide));
  EXPECT_TRUE(other.value.equal(wide));
}

TEST_F(HypernetworkTest, UnknownActivationsAreReportedUnsupported) {
  EXPECT_FALSE(Hypernetwork::load(save({{"activation_func", "gelu"}})).supported());
}

TEST_F(HypernetworkTest, BrokenFilesAreRefusedClearly) {
  tensors_.erase("4.1.linear.2.weight");
  EXPECT_THROW(Hypernetwork::load(save({})), Error);
  const std::string pickle = (dir_ / "hn.pt").string();
  test::write_file(pickle, test::hostile_pickle());
  try {
    Hypernetwork::load(pickle);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsafeFormat);
  }
}

}  // namespace
}  // namespace df::engine
