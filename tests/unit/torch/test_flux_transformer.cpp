// The FLUX.1 transformer on tiny random weights: shape checks, inputs, guidance handling, odd
// sizes and loading each supported weights layout.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../test_support.h"
#include "core/error.h"
#include "engine/family/flux/flux_diffusers_writer.h"
#include "engine/family/flux/flux_layout.h"
#include "engine/family/flux/flux_transformer.h"
#include "engine/family/flux/flux_weights.h"
#include "engine/safetensors.h"
#include "engine/tiny_model.h"

namespace df::engine::flux {
namespace {

class FluxTransformerTest : public ::testing::Test {
 protected:
  // Random tiny weights in BFL naming (written and read back, as a file would be).
  TensorMap tiny_weights(const FluxConfig& config, const std::string& prefix = "") {
    std::vector<RawTensor> raw = tiny_random_tensors(flux_transformer_layout(config), 11, 0.2);
    for (RawTensor& t : raw) t.name = prefix + t.name;
    return load_safetensors(write(raw, "bfl.safetensors"));
  }
  std::string write(const std::vector<RawTensor>& tensors, const std::string& name) {
    const std::string path = (dir_.path() / name).string();
    write_safetensors(path, tensors);
    return path;
  }
  FluxTransformer tiny_model(bool guidance) {
    const FluxConfig config = tiny_flux_config(guidance);
    return FluxTransformer(config, Weights(tiny_weights(config)));
  }
  static NetworkInputs inputs(int64_t batch, bool with_guidance) {
    NetworkInputs in;
    in.context = at::randn({batch, 5, 32});
    in.pooled = at::randn({batch, 32});
    if (with_guidance) in.guidance = at::full({batch}, 3.5);
    return in;
  }

  test::TestDir dir_{"df_flux_"};
};

void expect_same_tensors(const TensorMap& actual, const TensorMap& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& [name, tensor] : expected) {
    ASSERT_TRUE(actual.count(name)) << name;
    EXPECT_TRUE(at::equal(actual.at(name), tensor)) << name;
  }
}

TEST_F(FluxTransformerTest, OutputHasTheLatentShape) {
  at::manual_seed(0);
  const FluxTransformer model = tiny_model(true);
  for (const auto& size : {std::vector<int64_t>{1, 16, 8, 8}, {2, 16, 6, 10}, {1, 16, 5, 7}}) {
    const at::Tensor x = at::randn(size);
    const at::Tensor out = model.forward(x, at::full({size[0]}, 0.7), inputs(size[0], true));
    EXPECT_EQ(out.sizes(), x.sizes());
    EXPECT_EQ(out.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::isfinite(out).all().item<bool>());
  }
}

TEST_F(FluxTransformerTest, OddSizesPadCircularlyAndCrop) {
  at::manual_seed(1);
  const FluxTransformer model = tiny_model(false);
  const at::Tensor x = at::randn({1, 16, 5, 7});
  const NetworkInputs in = inputs(1, false);
  const at::Tensor padded = at::pad(x, {0, 1, 0, 1}, "circular");
  const at::Tensor t = at::full({1}, 0.4);
  const at::Tensor expected = model.forward(padded, t, in).narrow(2, 0, 5).narrow(3, 0, 7);
  EXPECT_TRUE(at::allclose(model.forward(x, t, in), expected, 1e-5, 1e-6));
}

TEST_F(FluxTransformerTest, GuidanceFollowsComfyUI) {
  at::manual_seed(2);
  const at::Tensor x = at::randn({1, 16, 4, 4});
  const at::Tensor t = at::full({1}, 0.5);
  const NetworkInputs with = inputs(1, true);
  NetworkInputs without = with;
  without.guidance = at::Tensor();
  // schnell has no guidance_in: guidance is ignored.
  const FluxTransformer schnell = tiny_model(false);
  EXPECT_TRUE(at::equal(schnell.forward(x, t, with), schnell.forward(x, t, without)));
  // dev embeds it; without it the guidance term is skipped.
  const FluxTransformer dev = tiny_model(true);
  EXPECT_FALSE(at::allclose(dev.forward(x, t, with), dev.forward(x, t, without)));
}

TEST_F(FluxTransformerTest, MissingPooledReadsZeros) {
  at::manual_seed(3);
  const FluxTransformer model = tiny_model(false);
  const at::Tensor x = at::randn({1, 16, 4, 4});
  NetworkInputs in = inputs(1, false);
  in.pooled = at::Tensor();
  NetworkInputs zeros = in;
  zeros.pooled = at::zeros({1, 32});
  const at::Tensor t = at::full({1}, 0.5);
  EXPECT_TRUE(at::equal(model.forward(x, t, in), model.forward(x, t, zeros)));
}

TEST_F(FluxTransformerTest, Bfloat16WeightsGiveFloat32CloseToFloat32Weights) {
  at::manual_seed(4);
  const FluxConfig config = tiny_flux_config(true);
  const TensorMap tensors = tiny_weights(config);
  Weights half(tensors);
  half.to(at::kBFloat16, at::kCPU);
  const FluxTransformer reference(config, Weights(tensors));
  const FluxTransformer model(config, half);
  const at::Tensor x = at::randn({1, 16, 6, 6});
  const at::Tensor t = at::full({1}, 0.3);
  const NetworkInputs in = inputs(1, true);
  const at::Tensor expected = reference.forward(x, t, in);
  const at::Tensor out = model.forward(x, t, in);
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  EXPECT_LT((out - expected).abs().max().item<double>(),
            0.05 * expected.abs().max().item<double>());
}

TEST_F(FluxTransformerTest, WrongShapeNamesTheTensor) {
  const FluxConfig config = tiny_flux_config(true);
  TensorMap tensors = tiny_weights(config);
  tensors["single_blocks.0.linear1.weight"] = at::zeros({10, 32});
  const Error error = test::error_of([&] { FluxTransformer(config, Weights(tensors)); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find("single_blocks.0.linear1.weight"), std::string::npos);
}

TEST_F(FluxTransformerTest, MissingTensorIsNamed) {
  const FluxConfig config = tiny_flux_config(true);
  TensorMap tensors = tiny_weights(config);
  tensors.erase("guidance_in.out_layer.bias");
  const Error error = test::error_of([&] { FluxTransformer(config, Weights(tensors)); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find("guidance_in.out_layer.bias"), std::string::npos);
}

TEST_F(FluxTransformerTest, ExtraInputChannelsAreUnsupported) {
  FluxConfig fill = tiny_flux_config(true);
  fill.in_channels = 384;  // FLUX.1 Fill: latents, masked image latents and mask patches
  EXPECT_EQ(test::error_code_of([&] { FluxTransformer(fill, Weights(tiny_weights(fill))); }),
            ErrorCode::kUnsupported);
}

TEST_F(FluxTransformerTest, BadInputsAreRefused) {
  const FluxTransformer model = tiny_model(true);
  const at::Tensor t = at::full({1}, 0.5);
  EXPECT_EQ(
      test::error_code_of([&] { model.forward(at::zeros({1, 4, 8, 8}), t, inputs(1, true)); }),
      ErrorCode::kInvalidArgument);
  NetworkInputs narrow = inputs(1, true);
  narrow.context = at::zeros({1, 5, 16});
  EXPECT_EQ(test::error_code_of([&] { model.forward(at::zeros({1, 16, 8, 8}), t, narrow); }),
            ErrorCode::kInvalidArgument);
  const at::Tensor two_timesteps = at::full({2}, 0.5);
  EXPECT_EQ(test::error_code_of([&] {
              model.forward(at::zeros({1, 16, 8, 8}), two_timesteps, inputs(1, true));
            }),
            ErrorCode::kInvalidArgument);
}

TEST_F(FluxTransformerTest, LoadsPrefixedAndDiffusersFilesAlike) {
  const FluxConfig config = tiny_flux_config(true);
  const auto bfl = tiny_random_tensors(flux_transformer_layout(config), 5);
  std::vector<RawTensor> checkpoint = bfl;
  for (RawTensor& t : checkpoint) t.name = "model.diffusion_model." + t.name;
  checkpoint.push_back({"first_stage_model.decoder.conv_in.weight", "F32", {1}, {0, 0, 0, 0}});
  const auto diffusers = assemble_raw(bfl, flux_diffusers_from_bfl(config));

  const auto plain = flux_keys_from_file(write(bfl, "plain.safetensors"), at::kFloat);
  const auto prefixed = flux_keys_from_file(write(checkpoint, "ckpt.safetensors"), at::kFloat);
  const auto from_diffusers =
      flux_keys_from_file(write(diffusers, "diffusers.safetensors"), at::kFloat);
  for (const auto* loaded : {&prefixed, &from_diffusers}) {
    EXPECT_EQ(loaded->config.to_diffusers_json(), config.to_diffusers_json());
    expect_same_tensors(loaded->tensors, plain.tensors);
  }
}

TEST_F(FluxTransformerTest, LoadsDiffusersFoldersSingleAndSharded) {
  const FluxConfig config = tiny_flux_config(false);
  const auto bfl = tiny_random_tensors(flux_transformer_layout(config), 8);
  const auto expected = flux_keys_from_file(write(bfl, "bfl.safetensors"), at::kFloat);

  const auto pipeline = dir_.path() / "pipeline";
  write_flux_diffusers_transformer((pipeline / "transformer").string(), config, bfl);
  const auto single = load_flux_transformer(pipeline.string(), at::kFloat);
  EXPECT_EQ(single.config.to_diffusers_json(), config.to_diffusers_json());
  expect_same_tensors(single.tensors, expected.tensors);

  const auto sharded = dir_.path() / "sharded";
  std::filesystem::create_directories(sharded);
  const auto diffusers = assemble_raw(bfl, flux_diffusers_from_bfl(config));
  const size_t half = diffusers.size() / 2;
  nlohmann::json index = {{"weight_map", nlohmann::json::object()}};
  for (size_t i = 0; i < diffusers.size(); ++i) {
    index["weight_map"][diffusers[i].name] = i < half ? "part-1.safetensors" : "part-2.safetensors";
  }
  const auto middle = diffusers.begin() + static_cast<ptrdiff_t>(half);
  write_safetensors((sharded / "part-1.safetensors").string(),
                    std::vector<RawTensor>(diffusers.begin(), middle));
  write_safetensors((sharded / "part-2.safetensors").string(),
                    std::vector<RawTensor>(middle, diffusers.end()));
  std::ofstream(sharded / "diffusion_pytorch_model.safetensors.index.json") << index.dump();
  std::ofstream(sharded / "config.json") << config.to_diffusers_json().dump();
  expect_same_tensors(load_flux_transformer(sharded.string(), at::kFloat).tensors,
                      expected.tensors);
}

TEST_F(FluxTransformerTest, RefusesFilesWithoutAFluxTransformer) {
  const std::vector<RawTensor> other = {{"conv_in.weight", "F32", {1}, {0, 0, 0, 0}}};
  EXPECT_EQ(test::error_code_of(
                [&] { flux_keys_from_file(write(other, "other.safetensors"), at::kFloat); }),
            ErrorCode::kCorruptFile);
}

TEST_F(FluxTransformerTest, RefusesFluxLikeTransformersWithoutVectorIn) {
  auto tensors = tiny_random_tensors(flux_transformer_layout(tiny_flux_config(true)), 2);
  std::erase_if(tensors, [](const RawTensor& t) { return t.name.starts_with("vector_in."); });
  EXPECT_EQ(test::error_code_of(
                [&] { flux_keys_from_file(write(tensors, "chroma.safetensors"), at::kFloat); }),
            ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace df::engine::flux
