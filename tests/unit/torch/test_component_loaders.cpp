// Tests of UNETLoader's and CLIPLoader's engine side: a tiny model's UNet and text encoder files,
// loaded alone, equal the components of the whole model; types and pairs it cannot run are refused.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "../pickle_test_bytes.h"
#include "../test_support.h"
#include "core/error.h"
#include "engine/checkpoint.h"
#include "engine/component_loaders.h"
#include "engine/ldm_keys.h"
#include "engine/safetensors.h"
#include "engine/tiny_model.h"

namespace df::engine {
namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class ComponentLoadersTest : public ::testing::Test {
 protected:
  // The tiny model of `family` in diffusers layout.
  std::filesystem::path tiny(Family family) {
    const auto path = dir_.path() / family_name(family);
    if (!std::filesystem::exists(path)) write_tiny_model(path.string(), family, 7);
    return path;
  }

  // A copy of the tiny model's `component` weights with `metadata`.
  std::string component_file(Family family, const std::string& component, const std::string& file,
                             const std::map<std::string, std::string>& metadata,
                             const TensorMap& extra = {}) {
    TensorMap tensors = load_safetensors((tiny(family) / component / file).string());
    for (const auto& [name, tensor] : extra) tensors[name] = tensor;
    const std::string path =
        (dir_.path() / (family_name(family) + "_" + component + ".safetensors")).string();
    save_safetensors(path, tensors, metadata);
    return path;
  }

  std::string unet_file(Family family, bool with_configs, const TensorMap& extra = {}) {
    std::map<std::string, std::string> metadata;
    if (with_configs) {
      metadata[kUNetConfigMetadata] = read_text(tiny(family) / "unet" / "config.json");
      metadata[kSchedulerConfigMetadata] =
          read_text(tiny(family) / "scheduler" / "scheduler_config.json");
    }
    return component_file(family, "unet", "diffusion_pytorch_model.safetensors", metadata, extra);
  }

  std::string encoder_file(Family family, const std::string& component, const TensorMap& extra = {}) {
    return component_file(
        family, component, "model.safetensors",
        {{kTextEncoderConfigMetadata, read_text(tiny(family) / component / "config.json")}}, extra);
  }

  LoadedModel whole(Family family) { return load_model(tiny(family).string(), LoadOptions{}); }

  test::TestDir dir_{"df_component_loaders_"};
};

void expect_same_weights(const TensorMap& loaded, const Weights& reference) {
  ASSERT_EQ(loaded.size(), reference.size());
  for (const auto& key : reference.keys()) {
    ASSERT_TRUE(loaded.count(key)) << key;
    EXPECT_TRUE(at::equal(loaded.at(key), reference.get(key))) << key;
  }
}

TEST_F(ComponentLoadersTest, ADiffusersNamedUNetLoadsLikeTheWholeModelsUNet) {
  const auto file = TensorFile::open(unet_file(Family::kSD1, false));
  const StandaloneUNet unet = load_standalone_unet(file, at::kFloat);
  const LoadedModel model = whole(Family::kSD1);
  EXPECT_EQ(unet.family, Family::kSD1);
  auto inferred = unet.config.to_json();
  auto stored = model.config.unet.to_json();
  inferred.erase("sample_size");  // a default size, which shapes cannot tell
  stored.erase("sample_size");
  EXPECT_EQ(inferred, stored);
  EXPECT_EQ(unet.schedule.prediction, Prediction::kEpsilon);
  expect_same_weights(unet.weights, model.unet);
}

TEST_F(ComponentLoadersTest, StoredConfigsAndTheVPredMarkerSetThePrediction) {
  const auto sd2 = TensorFile::open(unet_file(Family::kSD2, true));
  const StandaloneUNet unet = load_standalone_unet(sd2, at::kFloat);
  EXPECT_EQ(unet.family, Family::kSD2);
  EXPECT_EQ(unet.config.to_json(), whole(Family::kSD2).config.unet.to_json());
  EXPECT_EQ(unet.schedule.prediction, whole(Family::kSD2).config.schedule.prediction);

  const auto marked =
      TensorFile::open(unet_file(Family::kSD1, false, {{"v_pred", at::zeros({0})}}));
  EXPECT_EQ(load_standalone_unet(marked, at::kFloat).schedule.prediction, Prediction::kVPrediction);
}

TEST_F(ComponentLoadersTest, SdxlUNetsGetTheirSchedulesLatentScaleAndPlacement) {
  const auto model = load_diffusion_model(unet_file(Family::kSDXL, true), "cpu", "float32");
  EXPECT_EQ(model->family, Family::kSDXL);
  EXPECT_DOUBLE_EQ(model->latent_format.scale, 0.13025);
  EXPECT_FALSE(model->requires_aesthetics_score);
  EXPECT_EQ(model->placement.dtype, at::kFloat);
}

TEST_F(ComponentLoadersTest, ClipLoaderGivesTheWholeModelsConditioning) {
  const auto vocabulary = (tiny(Family::kSD1) / "tokenizer").string();
  // A whole CLIP model's file: its image tower and logit scale are left out.
  const TensorMap image_tower = {{"vision_model.embeddings.class_embedding", at::zeros({32})},
                                 {"visual_projection.weight", at::zeros({32, 32})},
                                 {"logit_scale", at::zeros({})}};
  const auto clip = load_text_conditioner(
      {{encoder_file(Family::kSD1, "text_encoder", image_tower)}, "stable_diffusion", "cpu",
       "float32", vocabulary});
  const auto bundle =
      load_checkpoint_bundle({tiny(Family::kSD1).string(), "cpu", "float32", ""});
  EXPECT_EQ(clip->family(), Family::kSD1);
  const Conditioning a = clip->encode("a red (boat:1.2)");
  const Conditioning b = bundle.clip->encode("a red (boat:1.2)");
  EXPECT_TRUE(at::allclose(a.context, b.context, 1e-5, 1e-6));
}

TEST_F(ComponentLoadersTest, DualClipLoaderTakesSdxlsPairInEitherOrder) {
  const auto vocabulary = (tiny(Family::kSDXL) / "tokenizer").string();
  const std::string l = encoder_file(Family::kSDXL, "text_encoder");
  const std::string g = encoder_file(Family::kSDXL, "text_encoder_2");
  const auto clip = load_text_conditioner({{g, l}, "sdxl", "cpu", "float32", vocabulary});
  const auto bundle =
      load_checkpoint_bundle({tiny(Family::kSDXL).string(), "cpu", "float32", ""});
  EXPECT_EQ(clip->family(), Family::kSDXL);
  const Conditioning a = clip->encode("a lighthouse");
  const Conditioning b = bundle.clip->encode("a lighthouse");
  EXPECT_TRUE(at::allclose(a.context, b.context, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(a.pooled, b.pooled, 1e-5, 1e-6));

  // CLIP-G alone is the SDXL refiner's CLIP, as in ComfyUI.
  const auto refiner =
      load_text_conditioner({{g}, "stable_diffusion", "cpu", "float32", vocabulary});
  EXPECT_EQ(refiner->family(), Family::kSDXLRefiner);
}

TEST_F(ComponentLoadersTest, TypesAndPairsTheEngineCannotRunAreRefusedByName) {
  const auto vocabulary = (tiny(Family::kSDXL) / "tokenizer").string();
  const std::string l = encoder_file(Family::kSDXL, "text_encoder");
  const Error sd3 = test::error_of(
      [&] { load_text_conditioner({{l}, "sd3", "cpu", "float32", vocabulary}); });
  EXPECT_EQ(sd3.code(), ErrorCode::kUnsupported);
  EXPECT_NE(std::string(sd3.what()).find("type 'sd3'"), std::string::npos) << sd3.what();
  const Error pair = test::error_of(
      [&] { load_text_conditioner({{l, l}, "sdxl", "cpu", "float32", vocabulary}); });
  EXPECT_EQ(pair.code(), ErrorCode::kUnsupported);
  EXPECT_NE(std::string(pair.what()).find("got CLIP-L and CLIP-L"), std::string::npos)
      << pair.what();
  const Error flux = test::error_of(
      [&] { load_text_conditioner({{l, l}, "flux", "cpu", "float32", vocabulary}); });
  EXPECT_NE(std::string(flux.what()).find("DualCLIPLoader type 'flux'"), std::string::npos);
  const Error no_vocabulary =
      test::error_of([&] { load_text_conditioner({{l}, "stable_diffusion", "cpu", "float32", ""}); });
  EXPECT_EQ(no_vocabulary.code(), ErrorCode::kInvalidArgument);
}

TEST_F(ComponentLoadersTest, FilesOfOtherKindsAreRefused) {
  const std::string l = encoder_file(Family::kSD1, "text_encoder");
  EXPECT_EQ(test::error_code_of([&] { load_diffusion_model(l, "cpu", "float32"); }),
            ErrorCode::kUnsupported);
  const std::string unet = unet_file(Family::kSD1, false);
  EXPECT_EQ(test::error_code_of([&] {
              load_text_conditioner({{unet}, "stable_diffusion", "cpu", "float32", ""});
            }),
            ErrorCode::kUnsupported);
  test::write_file(l + ".ckpt", test::hostile_pickle());
  EXPECT_EQ(test::error_code_of([&] { load_diffusion_model(l + ".ckpt", "cpu", "float32"); }),
            ErrorCode::kUnsafeFormat);
}

}  // namespace
}  // namespace df::engine
