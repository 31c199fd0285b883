// The Z-Image transformer on tiny random weights: shape checks naming the tensor, input checks,
// per-entry caption lengths, odd sizes, and loading ComfyUI files and diffusers folders alike.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "../test_support.h"
#include "core/error.h"
#include "engine/family/zimage/zimage_layout.h"
#include "engine/family/zimage/zimage_transformer.h"
#include "engine/family/zimage/zimage_weights.h"
#include "engine/safetensors.h"
#include "engine/tiny_model.h"

namespace df::engine::zimage {
namespace {

class ZImageTransformerTest : public ::testing::Test {
 protected:
  const ZImageConfig config_ = tiny_zimage_config();

  std::vector<RawTensor> raw_weights() const {
    return tiny_random_tensors(zimage_transformer_layout(config_), 7, 0.2);
  }
  std::string write(const std::vector<RawTensor>& tensors, const std::string& name) {
    const std::string path = (dir_.path() / name).string();
    write_safetensors(path, tensors);
    return path;
  }
  TensorMap tiny_weights() { return load_safetensors(write(raw_weights(), "comfy.safetensors")); }
  ZImageTransformer tiny_model() { return ZImageTransformer(config_, Weights(tiny_weights())); }

  // Captions of `lengths` tokens in one [B, max, C] batch; the padding rows are random too.
  static NetworkInputs captions(const std::vector<int64_t>& lengths, int64_t width = 32) {
    const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
    NetworkInputs in;
    in.context = at::randn({static_cast<int64_t>(lengths.size()), longest, width});
    in.context_mask = at::arange(longest).unsqueeze(0) <
                      at::tensor(lengths, at::kLong).unsqueeze(1);
    return in;
  }

  static void expect_close(const at::Tensor& a, const at::Tensor& b) {
    ASSERT_EQ(a.sizes(), b.sizes());
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-4 * b.abs().max().item<double>());
  }

  test::TestDir dir_{"df_zimage_"};
};

std::string error_text(const std::function<void()>& action, ErrorCode expected) {
  const Error e = test::error_of(action);
  EXPECT_EQ(e.code(), expected);
  return e.what();
}

TEST_F(ZImageTransformerTest, WrongOrMissingTensorsAreNamed) {
  TensorMap wrong = tiny_weights();
  wrong["layers.1.feed_forward.w3.weight"] = at::zeros({84, 32});
  const std::string wrong_text =
      error_text([&] { ZImageTransformer(config_, Weights(wrong)); }, ErrorCode::kCorruptFile);
  EXPECT_NE(wrong_text.find("layers.1.feed_forward.w3.weight"), std::string::npos);
  TensorMap missing = tiny_weights();
  missing.erase("cap_pad_token");
  const std::string missing_text =
      error_text([&] { ZImageTransformer(config_, Weights(missing)); }, ErrorCode::kCorruptFile);
  EXPECT_NE(missing_text.find("cap_pad_token"), std::string::npos);
}

TEST_F(ZImageTransformerTest, OutputHasTheLatentShape) {
  at::manual_seed(0);
  const ZImageTransformer model = tiny_model();
  for (const auto& size : {std::vector<int64_t>{1, 16, 8, 8}, {2, 16, 6, 10}, {2, 16, 5, 7}}) {
    const at::Tensor x = at::randn(size);
    const NetworkInputs in = captions(std::vector<int64_t>(size[0], 9));
    const at::Tensor out = model.forward(x, at::full({size[0]}, 0.7), in);
    EXPECT_EQ(out.sizes(), x.sizes());
    EXPECT_EQ(out.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::isfinite(out).all().item<bool>());
  }
}

TEST_F(ZImageTransformerTest, EachEntrySeesOnlyItsOwnCaption) {
  at::manual_seed(1);
  const ZImageTransformer model = tiny_model();
  const at::Tensor x = at::randn({2, 16, 6, 6});
  const NetworkInputs batch = captions({40, 6});
  const at::Tensor batched = model.forward(x, at::full({2}, 0.4), batch);
  NetworkInputs alone;
  alone.context = batch.context.narrow(0, 1, 1).narrow(1, 0, 6);
  expect_close(model.forward(x.narrow(0, 1, 1), at::full({1}, 0.4), alone),
               batched.narrow(0, 1, 1));
}

TEST_F(ZImageTransformerTest, Bfloat16WeightsComputeInTheirDtype) {
  at::manual_seed(3);
  Weights half(tiny_weights());
  half.to(at::kBFloat16, at::kCPU);
  const ZImageTransformer reduced(config_, half);
  const at::Tensor x = at::randn({2, 16, 5, 6});
  const NetworkInputs in = captions({3, 35});
  const at::Tensor reference = tiny_model().forward(x, at::full({2}, 0.6), in);
  const at::Tensor out = reduced.forward(x, at::full({2}, 0.6), in);
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  EXPECT_LE((out - reference).abs().max().item<double>(),
            0.05 * reference.abs().max().item<double>());
}

TEST_F(ZImageTransformerTest, BadInputsAreRefused) {
  const ZImageTransformer model = tiny_model();
  const at::Tensor x = at::randn({1, 16, 4, 4});
  const at::Tensor t = at::full({1}, 0.5);
  const auto refused = [&](const at::Tensor& latents, const at::Tensor& timestep,
                           const NetworkInputs& in) {
    EXPECT_EQ(test::error_code_of([&] { model.forward(latents, timestep, in); }),
              ErrorCode::kInvalidArgument);
  };
  refused(at::randn({1, 4, 4, 4}), t, captions({3}));
  refused(x, at::full({2}, 0.5), captions({3}));
  refused(x, t, captions({3}, 16));
  refused(x, t, NetworkInputs{});
  NetworkInputs wrong_mask = captions({3});
  wrong_mask.context_mask = wrong_mask.context_mask.narrow(1, 0, 2);
  refused(x, t, wrong_mask);
  NetworkInputs empty = captions({3});
  empty.context_mask.zero_();
  refused(x, t, empty);
}

TEST_F(ZImageTransformerTest, DiffusersTensorMapRoundTrip) {
  const TensorMap comfy = tiny_weights();
  const TensorMap diffusers = diffusers_weights_from_comfy(comfy, config_);
  EXPECT_EQ(diffusers.size(), zimage_diffusers_layout(config_).size());
  EXPECT_EQ(diffusers.at("layers.0.attention.to_k.weight").sizes(), (std::vector<int64_t>{32, 32}));
  const TensorMap back = comfy_weights_from_diffusers(diffusers);
  ASSERT_EQ(back.size(), comfy.size());
  for (const auto& [name, tensor] : comfy) EXPECT_TRUE(at::equal(back.at(name), tensor)) << name;
  TensorMap incomplete = diffusers;
  incomplete.erase("layers.1.attention.to_v.weight");
  EXPECT_EQ(test::error_code_of([&] { comfy_weights_from_diffusers(incomplete); }),
            ErrorCode::kCorruptFile);
}

TEST_F(ZImageTransformerTest, CheckpointFileAndDiffusersFolderLoadAlike) {
  std::vector<RawTensor> checkpoint = raw_weights();
  const std::vector<RawTensor> diffusers = raw_tensors_to_diffusers(checkpoint, config_);
  for (RawTensor& t : checkpoint) t.name = "model.diffusion_model." + t.name;
  checkpoint.push_back({"first_stage_model.decoder.conv_in.bias", "F32", {1}, {0, 0, 0, 0}});
  const std::string file = write(checkpoint, "z_image.safetensors");
  const auto folder = dir_.path() / "transformer";
  std::filesystem::create_directories(folder);
  write(diffusers, "transformer/diffusion_pytorch_model.safetensors");
  std::ofstream(folder / "config.json") << config_.to_diffusers_json().dump();

  at::manual_seed(2);
  const at::Tensor x = at::randn({1, 16, 6, 8});
  const NetworkInputs in = captions({7});
  const auto from_file = load_zimage_transformer(file, at::kCPU, at::kFloat);
  const auto from_folder = load_zimage_transformer(folder.string(), at::kCPU, at::kFloat);
  EXPECT_EQ(from_file->config().to_diffusers_json(), config_.to_diffusers_json());
  const at::Tensor sigma = at::full({1}, 0.3);
  expect_close(from_folder->forward(x, sigma, in), from_file->forward(x, sigma, in));
}

TEST_F(ZImageTransformerTest, DiffusersFolderReadsShardsAndSkipsVariants) {
  const std::vector<RawTensor> diffusers = raw_tensors_to_diffusers(raw_weights(), config_);
  const size_t half = diffusers.size() / 2;
  std::filesystem::create_directories(dir_.path() / "sharded");
  write({diffusers.begin(), diffusers.begin() + half},
        "sharded/diffusion_pytorch_model-00001-of-00002.safetensors");
  write({diffusers.begin() + half, diffusers.end()},
        "sharded/diffusion_pytorch_model-00002-of-00002.safetensors");
  write(diffusers, "sharded/diffusion_pytorch_model.fp16-00001-of-00001.safetensors");
  const TensorMap sharded = load_zimage_weights((dir_.path() / "sharded").string(), at::kFloat);
  EXPECT_EQ(sharded.size(), zimage_transformer_layout(config_).size());
  std::filesystem::create_directories(dir_.path() / "single");
  write(diffusers, "single/diffusion_pytorch_model.safetensors");
  write(diffusers, "single/diffusion_pytorch_model.fp16.safetensors");
  EXPECT_EQ(load_zimage_weights((dir_.path() / "single").string(), at::kFloat).size(),
            sharded.size());
  std::filesystem::create_directories(dir_.path() / "empty");
  EXPECT_EQ(test::error_code_of([&] {
              load_zimage_weights((dir_.path() / "empty").string(), at::kFloat);
            }),
            ErrorCode::kModelNotFound);
}

}  // namespace
}  // namespace df::engine::zimage
