// Tests of fp8 weights: reading float8 safetensors, ComfyUI's scaled fp8 files, fp8 storage and
// nn_ops computing from fp8 weights.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "core/error.h"
#include "engine/family/dit_models.h"
#include "engine/family/flux/flux_config.h"
#include "engine/family/flux/flux_layout.h"
#include "engine/family/sd3/sd3_config.h"
#include "engine/family/zimage/zimage_config.h"
#include "engine/family/zimage/zimage_layout.h"
#include "engine/fp8_weights.h"
#include "engine/model_config.h"
#include "engine/tiny_model.h"
#include "engine/nn_ops.h"
#include "engine/safetensors.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

class Fp8WeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("df_fp8_weights_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string save(const TensorMap& tensors) {
    const std::string path = (dir_ / "w.safetensors").string();
    save_safetensors(path, tensors);
    return path;
  }
  TensorMap load(const std::string& path, at::ScalarType dtype) {
    return load_tensors_as(TensorFile::open(path), dtype,
                           [](const std::string& name) { return name; });
  }
  fs::path dir_;
};

// Values every fp8 dtype holds exactly.
at::Tensor exact_values() { return at::tensor({0.5f, -1.0f, 2.0f, 0.25f, -8.0f, 3.0f}).view({2, 3}); }

TEST_F(Fp8WeightsTest, ReadsBothFp8DtypesAsStoredAndConverted) {
  for (const at::ScalarType fp8 : {at::kFloat8_e4m3fn, at::kFloat8_e5m2}) {
    const std::string path = save({{"w", exact_values().to(fp8)}});
    EXPECT_EQ(TensorFile::open(path).find("w")->dtype,
              fp8 == at::kFloat8_e4m3fn ? "F8_E4M3" : "F8_E5M2");
    const TensorMap stored = load_tensors(path);
    EXPECT_EQ(stored.at("w").scalar_type(), fp8);
    const TensorMap as_float = load(path, at::kFloat);
    EXPECT_EQ(as_float.at("w").scalar_type(), at::kFloat);
    EXPECT_TRUE(as_float.at("w").equal(exact_values()));
    EXPECT_TRUE(load(path, at::kBFloat16).at("w").to(at::kFloat).equal(exact_values()));
  }
}

TEST_F(Fp8WeightsTest, ScaledFp8FileLoadsDequantizedWithoutItsCompanions) {
  // ComfyUI's format: a "scaled_fp8" marker, per-weight float32 "scale_weight" (and
  // "scale_input"); the real weight is fp8 · scale_weight.
  const at::Tensor q = exact_values().to(at::kFloat8_e4m3fn);
  const std::string path = save({{"scaled_fp8", at::empty({0}, at::kFloat8_e4m3fn)},
                                 {"a.weight", q},
                                 {"a.scale_weight", at::scalar_tensor(0.125, at::kFloat)},
                                 {"a.scale_input", at::scalar_tensor(1.0, at::kFloat)},
                                 {"a.bias", at::tensor({1.0f, 2.0f})}});
  const TensorMap loaded = load(path, at::kFloat);
  ASSERT_EQ(loaded.size(), 2u);
  // By hand: 0.5·0.125 = 0.0625, -1·0.125 = -0.125, 2·0.125 = 0.25, ...
  const at::Tensor expected =
      at::tensor({0.0625f, -0.125f, 0.25f, 0.03125f, -1.0f, 0.375f}).view({2, 3});
  EXPECT_TRUE(loaded.at("a.weight").equal(expected));
  EXPECT_TRUE(loaded.at("a.bias").equal(at::tensor({1.0f, 2.0f})));
}

TEST_F(Fp8WeightsTest, NewerQuantizedFormatLoadsDequantized) {
  const std::string path =
      save({{"m.a.weight", exact_values().to(at::kFloat8_e5m2)},
            {"m.a.weight_scale", at::tensor({4.0f})},
            {"m.a.comfy_quant", at::tensor({123, 125}, at::kByte)},
            {"m.a.input_scale", at::tensor({1.0f})}});
  const TensorMap loaded = load(path, at::kFloat);
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_TRUE(loaded.at("m.a.weight").equal(exact_values() * 4));
}

TEST_F(Fp8WeightsTest, QuantizedWeightsDtypeOfAFile) {
  const std::string scaled = save({{"a.weight", exact_values().to(at::kFloat8_e5m2)},
                                   {"a.scale_weight", at::tensor({1.0f})}});
  EXPECT_EQ(quantized_weights_dtype(TensorFile::open(scaled)), at::kFloat8_e5m2);
  const std::string plain = save({{"a.weight", exact_values().to(at::kFloat8_e4m3fn)}});
  EXPECT_EQ(quantized_weights_dtype(TensorFile::open(plain)), std::nullopt);
}

TEST_F(Fp8WeightsTest, ScaleOfANonFp8WeightIsUnsupported) {
  const std::string path = save({{"a.weight", at::zeros({2, 2}, at::kByte)},
                                 {"a.weight_scale", at::tensor({1.0f})}});
  EXPECT_THROW(
      try { load(path, at::kFloat); } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
        throw;
      },
      Error);
}

TEST_F(Fp8WeightsTest, MismatchedScaleIsACorruptFile) {
  const std::string path = save({{"a.weight", exact_values().to(at::kFloat8_e4m3fn)},
                                 {"a.scale_weight", at::ones({5}, at::kFloat)}});
  EXPECT_THROW(
      try { load(path, at::kFloat); } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kCorruptFile);
        throw;
      },
      Error);
}

TEST(Fp8Storage, WeightDtypeNames) {
  EXPECT_EQ(fp8_weight_storage("default"), std::nullopt);
  EXPECT_EQ(fp8_weight_storage("fp8_e4m3fn"), at::kFloat8_e4m3fn);
  EXPECT_EQ(fp8_weight_storage("fp8_e4m3fn_fast"), at::kFloat8_e4m3fn);
  EXPECT_EQ(fp8_weight_storage("fp8_e5m2"), at::kFloat8_e5m2);
  EXPECT_THROW(fp8_weight_storage("int4"), Error);
}

TEST(Fp8Storage, StoresOnlyMatrixWeightsWithAScale) {
  at::manual_seed(0);
  TensorMap tensors = {{"l.weight", at::randn({8, 4}) * 0.02},
                       {"l.bias", at::randn({8})},
                       {"conv.weight", at::randn({2, 2, 3, 3})},
                       {"norm.weight", at::randn({4})},
                       {"pad_token", at::randn({1, 4})}};
  const at::Tensor original = tensors.at("l.weight");
  store_matrix_weights_in_fp8(tensors, at::kFloat8_e4m3fn);
  EXPECT_EQ(tensors.at("l.weight").scalar_type(), at::kFloat8_e4m3fn);
  for (const char* kept : {"l.bias", "conv.weight", "norm.weight", "pad_token"}) {
    EXPECT_EQ(tensors.at(kept).scalar_type(), at::kFloat) << kept;
  }
  const at::Tensor scale = tensors.at("l.weight_scale");
  EXPECT_NEAR(scale.item<double>(), original.abs().max().item<double>() / 448.0, 1e-9);
  // e4m3 keeps 3 mantissa bits: relative rounding error at most 2^-4 in the normal range.
  const at::Tensor restored = tensors.at("l.weight").to(at::kFloat) * scale;
  EXPECT_TRUE(at::allclose(restored, original, 1.0 / 16, 1e-6));
}

TEST(Fp8Storage, WeightsToKeepsFp8StorageAndMovesIt) {
  TensorMap tensors = {{"l.weight", at::randn({3, 2})}, {"l.bias", at::randn({3})}};
  store_matrix_weights_in_fp8(tensors, at::kFloat8_e5m2);
  Weights weights(std::move(tensors));
  weights.to(at::kBFloat16, at::kCPU);
  EXPECT_EQ(weights.get("l.weight").scalar_type(), at::kFloat8_e5m2);
  // The scale follows the compute dtype, as ComfyUI multiplies it in the compute dtype.
  EXPECT_EQ(weights.get("l.weight_scale").scalar_type(), at::kBFloat16);
  EXPECT_EQ(weights.get("l.bias").scalar_type(), at::kBFloat16);
}

TEST(Fp8NnOps, LinearWithFp8WeightsMatchesFloat32Weights) {
  at::manual_seed(1);
  const at::Tensor x = at::randn({2, 5, 16});
  const at::Tensor weight = at::randn({8, 16}) * 0.05, bias = at::randn({8});
  const at::Tensor reference = nn::linear(Weights({{"weight", weight}, {"bias", bias}}), x);
  for (const at::ScalarType fp8 : {at::kFloat8_e4m3fn, at::kFloat8_e5m2}) {
    TensorMap tensors = {{"weight", weight}, {"bias", bias}};
    store_matrix_weights_in_fp8(tensors, fp8);
    const at::Tensor out = nn::linear(Weights(tensors), x);
    EXPECT_EQ(out.scalar_type(), at::kFloat);
    // Each weight is off by at most 2^-4 (e4m3) or 2^-3 (e5m2) of itself; the products' errors
    // partly cancel. A bound of that order relative to the output's scale:
    const double tolerance = (fp8 == at::kFloat8_e4m3fn ? 0.0625 : 0.125) * reference.abs().max().item<double>();
    EXPECT_LT((out - reference).abs().max().item<double>(), tolerance);
    EXPECT_GT((out - reference).abs().max().item<double>(), 0.0);  // really rounded
  }
}

TEST(Fp8NnOps, LinearOfExactFp8WeightsIsExact) {
  const at::Tensor x = at::tensor({1.0f, 2.0f, 3.0f}).view({1, 3});
  const Weights plain({{"weight", exact_values().to(at::kFloat8_e4m3fn)}});
  EXPECT_TRUE(nn::linear(plain, x).equal(at::linear(x, exact_values())));
  const Weights scaled({{"weight", exact_values().to(at::kFloat8_e4m3fn)},
                        {"weight_scale", at::scalar_tensor(0.5, at::kFloat)}});
  EXPECT_TRUE(nn::linear(scaled, x).equal(at::linear(x, exact_values() * 0.5)));
  EXPECT_EQ(nn::linear(plain, x.to(at::kBFloat16)).scalar_type(), at::kBFloat16);
}

TEST(Fp8NnOps, EmbeddingAndConvUpcastFp8Weights) {
  const Weights table({{"weight", exact_values().to(at::kFloat8_e5m2)}});
  const at::Tensor rows = nn::embedding(table, at::tensor({1, 0}, at::kLong), at::kFloat);
  EXPECT_EQ(rows.scalar_type(), at::kFloat);
  EXPECT_TRUE(rows.equal(exact_values().index_select(0, at::tensor({1, 0}, at::kLong))));
  const at::Tensor kernel = at::tensor({0.5f, -1.0f, 2.0f, 0.25f}).view({1, 1, 2, 2});
  const at::Tensor image = at::randn({1, 1, 3, 3});
  const at::Tensor out = nn::conv2d(Weights({{"weight", kernel.to(at::kFloat8_e4m3fn)}}), image, 1, 0);
  EXPECT_TRUE(at::allclose(out, at::conv2d(image, kernel), 1e-6, 1e-6));
}

TEST(Fp8Storage, ReplacingAStoredWeightRequantizesIt) {
  TensorMap tensors = {{"l.weight", at::randn({4, 3}) * 0.01}};
  store_matrix_weights_in_fp8(tensors, at::kFloat8_e4m3fn);
  const at::Tensor real = real_weight(tensors, "l.weight");
  EXPECT_TRUE(real.equal(tensors.at("l.weight").to(at::kFloat) * tensors.at("l.weight_scale")));
  const at::Tensor patched = real + 1.0;  // e.g. a LoRA's difference: a much larger range
  replace_weight(tensors, "l.weight", patched);
  EXPECT_EQ(tensors.at("l.weight").scalar_type(), at::kFloat8_e4m3fn);
  EXPECT_TRUE(at::allclose(real_weight(tensors, "l.weight"), patched, 1.0 / 16, 0.0));
  TensorMap plain = {{"w", at::ones({2}, at::kBFloat16)}};
  replace_weight(plain, "w", at::full({2}, 3.0));
  EXPECT_EQ(plain.at("w").scalar_type(), at::kBFloat16);
  EXPECT_TRUE(real_weight(plain, "w").equal(at::full({2}, 3.0)));
}

// A tiny random network of each DiT family saved as a file, loaded as UNETLoader loads it.
struct DitCase {
  Family family;
  std::vector<TensorShape> layout;
  NetworkInputs inputs;
  at::Tensor x;
};

std::vector<DitCase> dit_cases() {
  at::manual_seed(3);
  NetworkInputs flux_inputs{at::randn({1, 5, 32}), {}, at::randn({1, 32}), at::full({1}, 3.5)};
  NetworkInputs sd3_inputs{at::randn({1, 5, 32}), {}, at::randn({1, 64}), {}};
  NetworkInputs zimage_inputs{at::randn({1, 5, 32}), {}, {}, {}};
  return {
      {Family::kFlux, flux::flux_transformer_layout(flux::tiny_flux_config(true)), flux_inputs,
       at::randn({1, 16, 4, 4})},
      {Family::kSD3, sd3::sd3_transformer_layout(sd3::tiny_sd3_config()), sd3_inputs,
       at::randn({1, 16, 8, 8})},
      {Family::kZImage, zimage::zimage_transformer_layout(zimage::tiny_zimage_config()),
       zimage_inputs, at::randn({1, 16, 8, 8})},
  };
}

TEST_F(Fp8WeightsTest, EveryDitFamilyRunsWithFp8WeightStorage) {
  for (const DitCase& test : dit_cases()) {
    const std::string path = (dir_ / ("dit_" + family_name(test.family) + ".safetensors")).string();
    write_safetensors(path, tiny_random_tensors(test.layout, 4));
    RuntimePlacement placement;  // float32 on the CPU
    const auto reference = load_dit_model(path, test.family, placement);
    const auto stored = load_dit_model(path, test.family, placement, at::kFloat8_e4m3fn);
    const at::Tensor timestep = at::full({1}, 0.5);
    const at::Tensor expected = reference->network->forward(test.x, timestep, test.inputs);
    const at::Tensor actual = stored->network->forward(test.x, timestep, test.inputs);
    ASSERT_EQ(actual.sizes(), expected.sizes()) << family_name(test.family);
    // Each weight rounded by at most 2^-4 of itself: a few percent of the output (relative RMS;
    // measured 0.039 FLUX, 0.029 SD3, 0.039 Z-Image); a lost scale would be far off.
    const double error = ((actual - expected).norm() / expected.norm()).item<double>();
    EXPECT_GT(error, 0.0) << family_name(test.family);
    EXPECT_LT(error, 0.1) << family_name(test.family);
  }
}

}  // namespace
}  // namespace df::engine
