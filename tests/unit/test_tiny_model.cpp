// Tests of the tiny test-model writer: files, labels, safetensors contents, determinism, refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "engine/safetensors_file.h"
#include "engine/tiny_model.h"
#include "engine/tiny_tokenizer.h"
#include "engine/weight_layout.h"
#include "test_support.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class TinyModelTest : public ::testing::Test {
 protected:
  std::string dir(const std::string& name) const { return (root_.path() / name).string(); }

  test::TestDir root_{"df_tiny_model_"};
};

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Every layout tensor is in the file as F32 with the layout's shape, and nothing else is.
void expect_file_holds_layout(const fs::path& path, const std::vector<TensorShape>& layout) {
  const SafetensorsFile file = SafetensorsFile::open(path.string());
  EXPECT_EQ(file.tensors().size(), layout.size()) << path;
  for (const auto& entry : layout) {
    const SafetensorsTensorInfo* info = file.find(entry.name);
    ASSERT_NE(info, nullptr) << entry.name << " missing from " << path;
    EXPECT_EQ(info->dtype, "F32") << entry.name;
    EXPECT_EQ(info->shape, entry.shape) << entry.name;
  }
  EXPECT_EQ(file.metadata().at("format"), "pt");
}

std::vector<float> floats_of(const SafetensorsFile& file, const std::string& name) {
  const SafetensorsTensorInfo* info = file.find(name);
  EXPECT_NE(info, nullptr) << name;
  if (info == nullptr) return {};
  std::vector<float> values((info->end - info->begin) / sizeof(float));
  std::memcpy(values.data(), file.data(*info), values.size() * sizeof(float));
  return values;
}

TEST_F(TinyModelTest, Sd1WritesLabelledDiffusersLayout) {
  const std::string path = dir("sd1");
  write_tiny_model(path, Family::kSD1, 0);
  const PipelineConfig config = tiny_pipeline_config(Family::kSD1);

  const json index = read_json(fs::path(path) / "model_index.json");
  EXPECT_EQ(index["_class_name"], "StableDiffusionPipeline");
  EXPECT_EQ(index["unet"], json({"diffusers", "UNet2DConditionModel"}));
  EXPECT_EQ(index["text_encoder"], json({"transformers", "CLIPTextModel"}));
  EXPECT_EQ(index["scheduler"], json({"diffusers", "EulerDiscreteScheduler"}));
  EXPECT_EQ(index["dreamforge_test_model"], true);
  EXPECT_FALSE(index.contains("text_encoder_2"));
  EXPECT_TRUE(is_tiny_model(path));
  EXPECT_TRUE(fs::exists(fs::path(path) / "README.txt"));
  EXPECT_FALSE(fs::exists(fs::path(path) / "text_encoder_2"));

  EXPECT_EQ(read_json(fs::path(path) / "scheduler" / "scheduler_config.json")["beta_schedule"],
            "scaled_linear");
  const auto text =
      ClipTextConfig::from_json(read_json(fs::path(path) / "text_encoder" / "config.json"));
  EXPECT_EQ(text.vocab_size, tiny_clip_vocab_size());
  EXPECT_EQ(text.eos_token_id, tiny_clip_vocab_size() - 1);
  EXPECT_EQ(text.hidden_act, "quick_gelu");
  for (const char* file : {"vocab.json", "merges.txt"}) {
    EXPECT_TRUE(fs::exists(fs::path(path) / "tokenizer" / file)) << file;
  }

  expect_file_holds_layout(fs::path(path) / "unet" / "diffusion_pytorch_model.safetensors",
                           unet_tensor_layout(config.unet));
  expect_file_holds_layout(fs::path(path) / "vae" / "diffusion_pytorch_model.safetensors",
                           vae_tensor_layout(config.vae));
  expect_file_holds_layout(fs::path(path) / "text_encoder" / "model.safetensors",
                           clip_text_tensor_layout(config.text_encoders[0]));
}

TEST_F(TinyModelTest, SdxlHasSecondTextEncoderAndTokenizer) {
  const std::string path = dir("sdxl");
  write_tiny_model(path, Family::kSDXL, 3);
  const PipelineConfig config = tiny_pipeline_config(Family::kSDXL);

  const json index = read_json(fs::path(path) / "model_index.json");
  EXPECT_EQ(index["_class_name"], "StableDiffusionXLPipeline");
  EXPECT_EQ(index["text_encoder_2"], json({"transformers", "CLIPTextModelWithProjection"}));
  EXPECT_EQ(index["tokenizer_2"], json({"transformers", "CLIPTokenizer"}));
  EXPECT_EQ(read_json(fs::path(path) / "vae" / "config.json")["scaling_factor"], 0.13025);
  EXPECT_EQ(read_json(fs::path(path) / "unet" / "config.json")["addition_embed_type"], "text_time");
  EXPECT_TRUE(fs::exists(fs::path(path) / "tokenizer_2" / "vocab.json"));

  ASSERT_EQ(config.text_encoders.size(), 2u);
  EXPECT_TRUE(config.text_encoders[1].with_projection);
  expect_file_holds_layout(fs::path(path) / "unet" / "diffusion_pytorch_model.safetensors",
                           unet_tensor_layout(config.unet));
  expect_file_holds_layout(fs::path(path) / "text_encoder_2" / "model.safetensors",
                           clip_text_tensor_layout(config.text_encoders[1]));
}

TEST_F(TinyModelTest, Sd2PredictsVelocity) {
  const std::string path = dir("sd2");
  write_tiny_model(path, Family::kSD2, 0);
  EXPECT_EQ(read_json(fs::path(path) / "scheduler" / "scheduler_config.json")["prediction_type"],
            "v_prediction");
  EXPECT_EQ(read_json(fs::path(path) / "unet" / "config.json")["use_linear_projection"], true);
}

TEST_F(TinyModelTest, WeightsAreRandomMatricesUnitNormsAndZeroBiases) {
  const std::string path = dir("sd1");
  write_tiny_model(path, Family::kSD1, 0);
  const SafetensorsFile unet = SafetensorsFile::open(
      (fs::path(path) / "unet" / "diffusion_pytorch_model.safetensors").string());

  for (float v : floats_of(unet, "conv_norm_out.weight")) EXPECT_EQ(v, 1.0f);
  for (float v : floats_of(unet, "conv_in.bias")) EXPECT_EQ(v, 0.0f);

  const std::vector<float> weights = floats_of(unet, "up_blocks.0.resnets.0.conv1.weight");
  double sum = 0.0, squares = 0.0;
  for (float v : weights) {
    ASSERT_TRUE(std::isfinite(v));
    sum += v;
    squares += double{v} * v;
  }
  const double mean = sum / weights.size();
  const double stddev = std::sqrt(squares / weights.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.002);
  EXPECT_NEAR(stddev, 0.02, 0.002);
}

TEST_F(TinyModelTest, SameSeedSameBytesOtherSeedOtherWeights) {
  write_tiny_model(dir("a"), Family::kSD1, 7);
  write_tiny_model(dir("b"), Family::kSD1, 7);
  write_tiny_model(dir("c"), Family::kSD1, 8);
  for (const char* file :
       {"unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors"}) {
    EXPECT_EQ(read_bytes(root_.path() / "a" / file), read_bytes(root_.path() / "b" / file)) << file;
    EXPECT_NE(read_bytes(root_.path() / "a" / file), read_bytes(root_.path() / "c" / file)) << file;
  }
}

TEST_F(TinyModelTest, ReplacesAnEarlierTinyModel) {
  const std::string path = dir("model");
  write_tiny_model(path, Family::kSDXL, 0);
  write_tiny_model(path, Family::kSD1, 0);
  EXPECT_EQ(read_json(fs::path(path) / "model_index.json")["_class_name"],
            "StableDiffusionPipeline");
  EXPECT_FALSE(fs::exists(fs::path(path) / "text_encoder_2"));
  EXPECT_FALSE(fs::exists(fs::path(path) / "tokenizer_2"));
}

TEST_F(TinyModelTest, RefusesNonEmptyDirectoryThatIsNotATinyModel) {
  const fs::path path = root_.path() / "precious";
  fs::create_directories(path);
  std::ofstream(path / "model_index.json") << R"({"_class_name": "StableDiffusionPipeline"})";
  try {
    write_tiny_model(path.string(), Family::kSD1, 0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("refusing to overwrite"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(is_tiny_model(path.string()));
  EXPECT_FALSE(fs::exists(path / "unet"));
}

TEST_F(TinyModelTest, RefusesAFileAsDirectory) {
  const fs::path path = root_.path() / "file";
  std::ofstream(path) << "x";
  try {
    write_tiny_model(path.string(), Family::kSD1, 0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST_F(TinyModelTest, NoTinyRefiner) {
  try {
    write_tiny_model(dir("refiner"), Family::kSDXLRefiner, 0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
  }
  EXPECT_FALSE(fs::exists(root_.path() / "refiner"));
}

}  // namespace
}  // namespace df::engine
