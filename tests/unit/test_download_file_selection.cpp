// Download file rules: weights and config types, a diffusers pipeline's files, globs.
#include <gtest/gtest.h>

#include "download/file_selection.h"
#include "test_support.h"

namespace df::download {
namespace {

using Files = std::vector<std::string>;

TEST(DownloadFileSelection, WeightsAndConfigTypesOnly) {
  for (const char* safe : {"a.safetensors", "x/config.json", "merges.txt", "v1-inference.yaml",
                           "b.yml", "UPPER.SAFETENSORS", "model.ckpt", "w.pt", "w.pth",
                           "pytorch_model.bin", "x.pkl"}) {
    EXPECT_TRUE(is_safe_file_type(safe)) << safe;
    EXPECT_NO_THROW(check_safe_file_type(safe));
  }
  for (const char* unsafe : {"x.pickle", "model.onnx", "run.py", "noextension", "dir.json/file"}) {
    EXPECT_FALSE(is_safe_file_type(unsafe)) << unsafe;
    EXPECT_EQ(test::error_code_of([&] { check_safe_file_type(unsafe); }), ErrorCode::kUnsafeFormat)
        << unsafe;
  }
  const auto error = test::error_of([] { check_safe_file_type("run.py"); });
  EXPECT_NE(std::string(error.what()).find("run.py"), std::string::npos);
  EXPECT_TRUE(is_pickle_file_type("v1-5.CKPT"));
  EXPECT_FALSE(is_pickle_file_type("v1-5.safetensors"));
}

nlohmann::json sd_index() {
  return {{"_class_name", "StableDiffusionPipeline"},
          {"_diffusers_version", "0.30.0"},
          {"feature_extractor", {"transformers", "CLIPImageProcessor"}},
          {"image_encoder", {nullptr, nullptr}},
          {"requires_safety_checker", true},
          {"safety_checker", {"stable_diffusion", "StableDiffusionSafetyChecker"}},
          {"scheduler", {"diffusers", "PNDMScheduler"}},
          {"text_encoder", {"transformers", "CLIPTextModel"}},
          {"tokenizer", {"transformers", "CLIPTokenizer"}},
          {"unet", {"diffusers", "UNet2DConditionModel"}},
          {"vae", {"diffusers", "AutoencoderKL"}}};
}

Files sd_repo() {
  return {"README.md",
          "model_index.json",
          "v1-5-pruned.ckpt",
          "v1-5-pruned.safetensors",
          "feature_extractor/preprocessor_config.json",
          "safety_checker/config.json",
          "safety_checker/model.safetensors",
          "scheduler/scheduler_config.json",
          "text_encoder/config.json",
          "text_encoder/model.safetensors",
          "text_encoder/model.fp16.safetensors",
          "text_encoder/pytorch_model.bin",
          "tokenizer/merges.txt",
          "tokenizer/special_tokens_map.json",
          "tokenizer/tokenizer_config.json",
          "tokenizer/vocab.json",
          "unet/config.json",
          "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
          "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
          "unet/diffusion_pytorch_model.safetensors.index.json",
          "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
          "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
          "unet/diffusion_pytorch_model.bin",
          "unet/diffusion_flax_model.msgpack",
          "vae/config.json",
          "vae/diffusion_pytorch_model.safetensors",
          "vae/diffusion_pytorch_model.fp16.safetensors",
          "vae_decoder/model.onnx"};
}

TEST(DownloadFileSelection, PipelineTakesConfigsTokenizerAndPlainSafetensorsOnly) {
  const Files expected = {"model_index.json",
                          "scheduler/scheduler_config.json",
                          "text_encoder/config.json",
                          "text_encoder/model.safetensors",
                          "tokenizer/merges.txt",
                          "tokenizer/special_tokens_map.json",
                          "tokenizer/tokenizer_config.json",
                          "tokenizer/vocab.json",
                          "unet/config.json",
                          "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
                          "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
                          "unet/diffusion_pytorch_model.safetensors.index.json",
                          "vae/config.json",
                          "vae/diffusion_pytorch_model.safetensors"};
  EXPECT_EQ(select_pipeline_files(sd_index(), sd_repo()), expected);
}

TEST(DownloadFileSelection, PipelineTakesPyTorchWeightsWhereAComponentHasNoSafetensors) {
  nlohmann::json index = {{"_class_name", "StableDiffusionPipeline"},
                          {"unet", {"diffusers", "UNet2DConditionModel"}},
                          {"text_encoder", {"transformers", "CLIPTextModel"}}};
  const Files repo = {"model_index.json",
                      "unet/config.json",
                      "unet/diffusion_pytorch_model.bin",
                      "unet/diffusion_pytorch_model.fp16.bin",
                      "text_encoder/config.json",
                      "text_encoder/pytorch_model-00001-of-00002.bin",
                      "text_encoder/pytorch_model-00002-of-00002.bin",
                      "text_encoder/pytorch_model.bin.index.json",
                      "text_encoder/model.safetensors.index.json"};
  const Files expected = {"model_index.json",
                          "text_encoder/config.json",
                          "text_encoder/pytorch_model-00001-of-00002.bin",
                          "text_encoder/pytorch_model-00002-of-00002.bin",
                          "text_encoder/pytorch_model.bin.index.json",
                          "unet/config.json",
                          "unet/diffusion_pytorch_model.bin"};
  EXPECT_EQ(select_pipeline_files(index, repo), expected);
}

TEST(DownloadFileSelection, PipelineRefusesComponentsWithVariantOrOtherWeightsOnly) {
  nlohmann::json index = {{"_class_name", "StableDiffusionPipeline"},
                          {"unet", {"diffusers", "UNet2DConditionModel"}}};
  Files flax_only = {"model_index.json", "unet/config.json", "unet/diffusion_flax_model.msgpack"};
  const auto refused = test::error_of([&] { select_pipeline_files(index, flax_only); });
  EXPECT_EQ(refused.code(), ErrorCode::kUnsupported);
  EXPECT_NE(std::string(refused.what()).find("unet"), std::string::npos);

  Files variants_only = {"model_index.json", "unet/config.json",
                         "unet/diffusion_pytorch_model.fp16.safetensors"};
  EXPECT_EQ(test::error_code_of([&] { select_pipeline_files(index, variants_only); }),
            ErrorCode::kUnsupported);
}

TEST(DownloadFileSelection, PipelineNeedsEveryComponentAndAPipelineIndex) {
  nlohmann::json index = {{"_class_name", "StableDiffusionPipeline"},
                          {"vae", {"diffusers", "AutoencoderKL"}}};
  EXPECT_EQ(test::error_code_of([&] { select_pipeline_files(index, {"model_index.json"}); }),
            ErrorCode::kCorruptFile);
  EXPECT_EQ(test::error_code_of([] { select_pipeline_files(nlohmann::json::array(), {}); }),
            ErrorCode::kCorruptFile);
  nlohmann::json escaping = {{"_class_name", "X"}, {"../x", {"diffusers", "AutoencoderKL"}}};
  EXPECT_EQ(test::error_code_of([&] { select_pipeline_files(escaping, {"../x/a.json"}); }),
            ErrorCode::kCorruptFile);
}

TEST(DownloadFileSelection, SelectorsNameOneFileOrAGlob) {
  EXPECT_EQ(select_matching_files("v1-5-pruned.safetensors", sd_repo()),
            Files{"v1-5-pruned.safetensors"});
  EXPECT_EQ(select_matching_files("*.safetensors", sd_repo()), Files{"v1-5-pruned.safetensors"});
  EXPECT_EQ(select_matching_files("vae/*", sd_repo()),
            (Files{"vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors",
                   "vae/diffusion_pytorch_model.safetensors"}));
  EXPECT_EQ(test::error_code_of([] { select_matching_files("nope.safetensors", sd_repo()); }),
            ErrorCode::kNotFound);
  EXPECT_EQ(test::error_code_of([] { select_matching_files("*.gguf", sd_repo()); }),
            ErrorCode::kNotFound);
}

}  // namespace
}  // namespace df::download
