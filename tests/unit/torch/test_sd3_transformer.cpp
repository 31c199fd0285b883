// The SD3 MMDiT on tiny random weights: shape checks naming the tensor, input checks, odd sizes,
// batching, dtypes, and loading single files and diffusers folders.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../test_support.h"
#include "core/error.h"
#include "engine/family/sd3/sd3_keys.h"
#include "engine/family/sd3/sd3_transformer.h"
#include "engine/family/sd3/sd3_weights.h"
#include "engine/safetensors.h"
#include "engine/tiny_model.h"

namespace df::engine::sd3 {
namespace {

class Sd3TransformerTest : public ::testing::Test {
 protected:
  static std::vector<RawTensor> raw_weights(const Sd3Config& config) {
    return tiny_random_tensors(sd3_transformer_layout(config), 7, 0.2);
  }
  std::string write(const std::vector<RawTensor>& tensors, const std::string& name) {
    const std::string path = (dir_.path() / name).string();
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    write_safetensors(path, tensors);
    return path;
  }
  TensorMap tiny_weights(const Sd3Config& config) {
    return load_safetensors(write(raw_weights(config), "original.safetensors"));
  }
  Sd3Transformer tiny_model(const Sd3Config& config) {
    return Sd3Transformer(config, Weights(tiny_weights(config)));
  }
  static NetworkInputs inputs(int64_t batch) {
    NetworkInputs in;
    in.context = at::randn({batch, 7, 32});
    in.pooled = at::randn({batch, 64});
    return in;
  }

  test::TestDir dir_{"df_sd3_"};
};

TEST_F(Sd3TransformerTest, OutputHasTheLatentShape) {
  at::manual_seed(0);
  for (const Sd3Config& config : {tiny_sd3_config(), tiny_sd3_config(true, true)}) {
    const Sd3Transformer model = tiny_model(config);
    for (const auto& size : {std::vector<int64_t>{1, 16, 8, 8}, {2, 16, 6, 10}, {1, 16, 5, 7}}) {
      const at::Tensor x = at::randn(size);
      const at::Tensor out = model.forward(x, at::full({size[0]}, 750.0), inputs(size[0]));
      EXPECT_EQ(out.sizes(), x.sizes());
      EXPECT_EQ(out.scalar_type(), at::kFloat);
      EXPECT_TRUE(at::isfinite(out).all().item<bool>());
    }
  }
}

TEST_F(Sd3TransformerTest, OddSizesPadCircularlyAndCrop) {
  at::manual_seed(1);
  const Sd3Transformer model = tiny_model(tiny_sd3_config(true));
  const at::Tensor x = at::randn({1, 16, 5, 7});
  const at::Tensor padded = at::pad(x, {0, 1, 0, 1}, "circular");
  const NetworkInputs in = inputs(1);
  const at::Tensor t = at::full({1}, 400.0);
  const at::Tensor expected = model.forward(padded, t, in).narrow(2, 0, 5).narrow(3, 0, 7);
  EXPECT_TRUE(at::allclose(model.forward(x, t, in), expected, 1e-5, 1e-6));
}

TEST_F(Sd3TransformerTest, BatchEntriesAreIndependentAndOneTimestepBroadcasts) {
  at::manual_seed(2);
  const Sd3Transformer model = tiny_model(tiny_sd3_config());
  const at::Tensor x = at::randn({2, 16, 6, 6});
  const NetworkInputs in = inputs(2);
  const at::Tensor both = model.forward(x, at::full({1}, 500.0), in);
  NetworkInputs second;
  second.context = in.context.narrow(0, 1, 1);
  second.pooled = in.pooled.narrow(0, 1, 1);
  const at::Tensor alone = model.forward(x.narrow(0, 1, 1), at::full({1}, 500.0), second);
  const float scale = alone.abs().max().item<float>();
  EXPECT_LT((both.narrow(0, 1, 1) - alone).abs().max().item<float>(), 1e-5f * scale) << scale;
}

TEST_F(Sd3TransformerTest, Bfloat16WeightsGiveFloat32Output) {
  at::manual_seed(3);
  const Sd3Config config = tiny_sd3_config(true);
  Weights weights(tiny_weights(config));
  const at::Tensor x = at::randn({1, 16, 4, 4});
  const NetworkInputs in = inputs(1);
  const at::Tensor reference = Sd3Transformer(config, weights).forward(x, at::full({1}, 900.0), in);
  weights.to(at::kBFloat16, at::kCPU);
  const at::Tensor out = Sd3Transformer(config, weights).forward(x, at::full({1}, 900.0), in);
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  EXPECT_LT((out - reference).abs().max().item<float>(),
            0.1f * reference.abs().max().item<float>());
}

TEST_F(Sd3TransformerTest, WrongShapeIsNamed) {
  const Sd3Config config = tiny_sd3_config(true);
  TensorMap tensors = tiny_weights(config);
  tensors["joint_blocks.1.context_block.adaLN_modulation.1.weight"] = at::zeros({192, 32});
  const Error error = test::error_of([&] { Sd3Transformer(config, Weights(tensors)); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(
      std::string(error.what()).find("joint_blocks.1.context_block.adaLN_modulation.1.weight"),
      std::string::npos);
}

TEST_F(Sd3TransformerTest, MissingTensorIsNamed) {
  const Sd3Config config = tiny_sd3_config(true);
  TensorMap tensors = tiny_weights(config);
  tensors.erase("joint_blocks.0.x_block.attn.ln_k.weight");
  const Error error = test::error_of([&] { Sd3Transformer(config, Weights(tensors)); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find("joint_blocks.0.x_block.attn.ln_k.weight"),
            std::string::npos);
}

TEST_F(Sd3TransformerTest, BadInputsAreRefused) {
  const Sd3Transformer model = tiny_model(tiny_sd3_config());
  const at::Tensor t = at::full({1}, 500.0);
  const auto code = [&](const at::Tensor& x, const at::Tensor& timestep, const NetworkInputs& in) {
    return test::error_code_of([&] { model.forward(x, timestep, in); });
  };
  EXPECT_EQ(code(at::randn({1, 4, 8, 8}), t, inputs(1)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(at::randn({1, 16, 8, 8}), at::full({3}, 1.0), inputs(1)),
            ErrorCode::kInvalidArgument);
  NetworkInputs narrow = inputs(1);
  narrow.context = at::randn({1, 7, 16});
  EXPECT_EQ(code(at::randn({1, 16, 8, 8}), t, narrow), ErrorCode::kInvalidArgument);
  NetworkInputs no_context = inputs(1);
  no_context.context = at::Tensor();
  EXPECT_EQ(code(at::randn({1, 16, 8, 8}), t, no_context), ErrorCode::kInvalidArgument);
  NetworkInputs bad_pooled = inputs(1);
  bad_pooled.pooled = at::randn({1, 32});
  EXPECT_EQ(code(at::randn({1, 16, 8, 8}), t, bad_pooled), ErrorCode::kInvalidArgument);
  // The tiny 64x64 position grid holds latents up to 128x128.
  EXPECT_EQ(code(at::randn({1, 16, 8, 130}), t, inputs(1)), ErrorCode::kInvalidArgument);
}

TEST_F(Sd3TransformerTest, SingleFileSkipsOtherComponents) {
  const Sd3Config config = tiny_sd3_config(true, true);
  std::vector<RawTensor> tensors = raw_weights(config);
  for (RawTensor& t : tensors) t.name = kSingleFilePrefix + t.name;
  tensors.push_back({"text_encoders.clip_g.transformer.text_model.final_layer_norm.weight", "F32",
                     {1}, {0, 0, 0, 0}});
  tensors.push_back({"first_stage_model.decoder.conv_in.bias", "F32", {1}, {0, 0, 0, 0}});
  const Sd3Checkpoint checkpoint =
      load_sd3_transformer(write(tensors, "sd3.5_medium.safetensors"), at::kFloat);
  EXPECT_EQ(checkpoint.config.dual_attention_layers, (std::vector<int64_t>{0}));
  EXPECT_EQ(checkpoint.weights.size(), sd3_transformer_layout(config).size());
  EXPECT_TRUE(checkpoint.weights.has("joint_blocks.0.x_block.attn2.qkv.weight"));
}

TEST_F(Sd3TransformerTest, OtherModelFileIsUnsupported) {
  const std::vector<RawTensor> unet = {{"model.diffusion_model.input_blocks.0.0.bias", "F32", {1},
                                        {0, 0, 0, 0}}};
  EXPECT_EQ(test::error_code_of([&] {
              load_sd3_transformer(write(unet, "unet.safetensors"), at::kFloat);
            }),
            ErrorCode::kUnsupported);
}

TEST_F(Sd3TransformerTest, ScaledFp8FilesLoadDequantized) {
  const Sd3Config config = tiny_sd3_config();
  const std::string original = write(raw_weights(config), "original.safetensors");
  TensorMap tensors = load_safetensors(original);
  const std::string qkv = "joint_blocks.0.x_block.attn.qkv.weight";
  const at::Tensor quantized = (tensors.at(qkv) / 0.5).to(at::kFloat8_e4m3fn);
  tensors[qkv] = quantized;
  tensors["joint_blocks.0.x_block.attn.qkv.scale_weight"] = at::scalar_tensor(0.5, at::kFloat);
  tensors["scaled_fp8"] = at::empty({0}, at::kFloat8_e4m3fn);
  const std::string path = (dir_.path() / "sd3.5_large_fp8_scaled.safetensors").string();
  save_safetensors(path, tensors);
  const Sd3Checkpoint checkpoint = load_sd3_transformer(path, at::kFloat);
  EXPECT_EQ(checkpoint.config, load_sd3_transformer(original, at::kFloat).config);
  EXPECT_EQ(checkpoint.weights.size(), tensors.size() - 2);
  EXPECT_TRUE(checkpoint.weights.get(qkv).equal(quantized.to(at::kFloat) * 0.5));
}

TEST_F(Sd3TransformerTest, DiffusersFolderLoadsToTheOriginalTensors) {
  const Sd3Config config = tiny_sd3_config(true, true);
  const std::vector<RawTensor> original = raw_weights(config);
  write(sd3_original_to_diffusers(config, original),
        "pipeline/transformer/diffusion_pytorch_model.safetensors");
  std::ofstream(dir_.path() / "pipeline/transformer/config.json")
      << config.to_diffusers_json().dump();
  const Sd3Checkpoint checkpoint =
      load_sd3_transformer((dir_.path() / "pipeline").string(), at::kFloat);
  EXPECT_EQ(checkpoint.config, config);
  const TensorMap expected = load_safetensors(write(original, "original.safetensors"));
  ASSERT_EQ(checkpoint.weights.size(), expected.size());
  for (const auto& [name, tensor] : expected) {
    EXPECT_TRUE(at::equal(checkpoint.weights.get(name), tensor)) << name;
  }
}

TEST_F(Sd3TransformerTest, DiffusersShardsAreMergedAndVariantsIgnored) {
  const Sd3Config config = tiny_sd3_config(true);
  const std::vector<RawTensor> diffusers = sd3_original_to_diffusers(config, raw_weights(config));
  const auto middle = diffusers.begin() + static_cast<std::ptrdiff_t>(diffusers.size() / 2);
  write({diffusers.begin(), middle}, "t/diffusion_pytorch_model-00001-of-00002.safetensors");
  write({middle, diffusers.end()}, "t/diffusion_pytorch_model-00002-of-00002.safetensors");
  write({{"unrelated", "F32", {1}, {0, 0, 0, 0}}}, "t/diffusion_pytorch_model.fp16.safetensors");
  std::ofstream(dir_.path() / "t/config.json") << config.to_diffusers_json().dump();
  const Sd3Checkpoint checkpoint = load_sd3_transformer((dir_.path() / "t").string(), at::kFloat);
  EXPECT_EQ(checkpoint.weights.size(), sd3_transformer_layout(config).size());
}

TEST_F(Sd3TransformerTest, DiffusersFolderWithoutConfigIsAnIoError) {
  const Sd3Config config = tiny_sd3_config();
  write(sd3_original_to_diffusers(config, raw_weights(config)),
        "transformer/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(test::error_code_of([&] {
              load_sd3_transformer((dir_.path() / "transformer").string(), at::kFloat);
            }),
            ErrorCode::kIo);
}

}  // namespace
}  // namespace df::engine::sd3
