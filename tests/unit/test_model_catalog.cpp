// Tests of the model catalog: diffusers folders and single files recognised by family, unreadable
// and unrelated entries skipped, lookups kept inside the checkpoints folder, parameter schemas.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "core/json_schema.h"
#include "engine/safetensors_file.h"
#include "engine/tiny_model.h"
#include "registry/model_catalog.h"
#include "test_support.h"

namespace df::registry {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A one-tensor-per-name F32 checkpoint: enough for the catalog to tell the family.
void write_marker_checkpoint(const fs::path& path, const std::vector<std::string>& names) {
  std::vector<engine::RawTensor> tensors;
  for (const auto& name : names) tensors.push_back({name, "F32", {1}, std::vector<uint8_t>(4, 0)});
  engine::write_safetensors(path.string(), tensors);
}

std::vector<std::string> ids_of(const std::vector<Model>& models) {
  std::vector<std::string> ids;
  for (const auto& model : models) ids.push_back(model.id);
  return ids;
}

class ModelCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(checkpoints());
    engine::write_tiny_model((checkpoints() / "tiny-sd1").string(), engine::Family::kSD1, 1);
    const std::string unet = "model.diffusion_model.input_blocks.0.0.weight";
    write_marker_checkpoint(checkpoints() / "single-sd1.safetensors", {unet});
    write_marker_checkpoint(checkpoints() / "single-sd2.safetensors",
                            {unet, "cond_stage_model.model.ln_final.weight"});
    write_marker_checkpoint(
        checkpoints() / "single-sdxl.safetensors",
        {unet, "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
         "conditioner.embedders.1.model.ln_final.weight"});
    write_marker_checkpoint(checkpoints() / "refiner.safetensors",
                            {unet, "conditioner.embedders.0.model.ln_final.weight"});
    write_marker_checkpoint(checkpoints() / "lora.safetensors", {"lora_unet_down.lora_up.weight"});
    std::ofstream(checkpoints() / "corrupt.safetensors", std::ios::binary)
        << "this is not a safetensors file";
    std::ofstream(checkpoints() / "notes.txt") << "unrelated";
    fs::create_directories(checkpoints() / "empty-folder");
    fs::create_directories(checkpoints() / "no-unet");
    std::ofstream(checkpoints() / "no-unet" / "model_index.json") << R"({"_class_name": "X"})";
  }

  fs::path checkpoints() const { return dir_.path() / "checkpoints"; }

  test::TestDir dir_{"df_model_catalog_"};
};

TEST_F(ModelCatalogTest, ListsModelsByIdAndSkipsEverythingElse) {
  const ModelCatalog catalog(checkpoints().string());
  EXPECT_EQ(
      ids_of(catalog.list()),
      (std::vector<std::string>{"refiner.safetensors", "single-sd1.safetensors",
                                "single-sd2.safetensors", "single-sdxl.safetensors", "tiny-sd1"}));
}

TEST_F(ModelCatalogTest, SingleFilesAreRecognisedByTheirTensorNames) {
  const ModelCatalog catalog(checkpoints().string());
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"single-sd1.safetensors", "sd1"},
      {"single-sd2.safetensors", "sd2"},
      {"single-sdxl.safetensors", "sdxl"},
      {"refiner.safetensors", "sdxl_refiner"}};
  for (const auto& [id, family] : expected) {
    const auto model = catalog.find(id);
    ASSERT_TRUE(model) << id;
    EXPECT_EQ(model->family, family) << id;
    EXPECT_EQ(model->format, "safetensors") << id;
    EXPECT_FALSE(model->test_model) << id;
    EXPECT_EQ(model->name, id);
    EXPECT_EQ(model->local_path, (checkpoints() / id).string());
  }
  EXPECT_EQ(catalog.find("single-sd1.safetensors")->native_resolution, 512);
  EXPECT_EQ(catalog.find("single-sd2.safetensors")->native_resolution, 768);
  EXPECT_EQ(catalog.find("single-sdxl.safetensors")->native_resolution, 1024);
}

TEST_F(ModelCatalogTest, TinyDiffusersFolderIsATestModel) {
  const auto model = ModelCatalog(checkpoints().string()).find("tiny-sd1");
  ASSERT_TRUE(model);
  EXPECT_EQ(model->family, "sd1");
  EXPECT_EQ(model->format, "diffusers");
  EXPECT_TRUE(model->test_model);
  EXPECT_EQ(model->native_resolution, 64);
  EXPECT_NE(model->name.find("test model"), std::string::npos) << model->name;
  EXPECT_EQ(model->capabilities, (std::vector<std::string>{"txt2img", "img2img"}));
  EXPECT_EQ(model->parameters_schema["properties"]["width"]["default"], 64);
}

TEST_F(ModelCatalogTest, TinySdxlFolderIsSdxl) {
  engine::write_tiny_model((checkpoints() / "tiny-sdxl").string(), engine::Family::kSDXL, 2);
  const auto model = ModelCatalog(checkpoints().string()).find("tiny-sdxl");
  ASSERT_TRUE(model);
  EXPECT_EQ(model->family, "sdxl");
  EXPECT_TRUE(model->test_model);
}

TEST_F(ModelCatalogTest, FindRefusesUnreadableUnrelatedAndEscapingNames) {
  const ModelCatalog catalog(checkpoints().string());
  for (const std::string id :
       {"corrupt.safetensors", "notes.txt", "lora.safetensors", "empty-folder", "no-unet",
        "missing", "", ".", "..", "../checkpoints/tiny-sd1", "tiny-sd1/unet"}) {
    EXPECT_FALSE(catalog.find(id)) << "found '" << id << "'";
  }
}

TEST_F(ModelCatalogTest, MissingFolderListsNothing) {
  const ModelCatalog catalog((dir_.path() / "nowhere").string());
  EXPECT_TRUE(catalog.list().empty());
  EXPECT_FALSE(catalog.find("tiny-sd1"));
}

TEST_F(ModelCatalogTest, EntriesNameWhatTheRunnerLoads) {
  const ModelCatalog catalog(checkpoints().string());
  const auto folder = catalog.find("tiny-sd1");
  EXPECT_EQ(folder->ckpt_name, "tiny-sd1");
  EXPECT_EQ(folder->local_path, (checkpoints() / "tiny-sd1").string());
  EXPECT_EQ(catalog.find("single-sd1.safetensors")->ckpt_name, "single-sd1.safetensors");
}

TEST_F(ModelCatalogTest, ADownloadedFolderIsDescribedByItsDescriptorAndItsWeights) {
  const fs::path folder = checkpoints() / "base@v2";
  fs::create_directories(folder);
  fs::copy_file(checkpoints() / "single-sdxl.safetensors", folder / "base.safetensors");
  std::ofstream(folder / kModelDescriptorFile) << json{
      {"id", "base@v2"}, {"name", "Base"}, {"family", "sd1"}, {"version", "v2"},
      {"source_uri", "civitai:1@2"}, {"revision", "2"}, {"local_path", "base.safetensors"},
      {"files", {{{"path", "base.safetensors"}, {"size", 1}, {"sha256", "ab"}}}}};
  const auto model = ModelCatalog(checkpoints().string()).find("base@v2");
  ASSERT_TRUE(model);
  EXPECT_EQ(model->name, "Base");
  EXPECT_EQ(model->family, "sdxl") << "the weights say what they are";
  EXPECT_EQ(model->source_uri, "civitai:1@2");
  EXPECT_EQ(model->ckpt_name, "base@v2/base.safetensors");
  EXPECT_EQ(model->files.at(0).sha256, "ab");
  EXPECT_EQ(model->parameters_schema["properties"]["width"]["default"], 1024);

  std::ofstream(folder / kModelDescriptorFile, std::ios::trunc)
      << json{{"id", "base@v2"}, {"family", "sd1"}, {"local_path", "../single-sd1.safetensors"}};
  EXPECT_FALSE(ModelCatalog(checkpoints().string()).find("base@v2")) << "weights outside the folder";
}

TEST(GenerateParametersSchema, DefaultsAndBoundsFollowTheFamily) {
  const json sd1 = generate_parameters_schema("sd1", 512);
  EXPECT_EQ(sd1["properties"]["width"]["default"], 512);
  EXPECT_EQ(sd1["properties"]["width"]["maximum"], 2048);
  EXPECT_EQ(sd1["properties"]["steps"]["default"], 20);
  EXPECT_EQ(sd1["properties"]["guidance"]["default"], 7.0);
  const json xl = generate_parameters_schema("sdxl", 1024);
  EXPECT_EQ(xl["properties"]["height"]["default"], 1024);
  EXPECT_EQ(xl["properties"]["height"]["maximum"], 4096);
  EXPECT_EQ(xl["properties"]["steps"]["default"], 30);
  EXPECT_EQ(xl["properties"]["guidance"]["default"], 6.0);
}

TEST(GenerateParametersSchema, AcceptsAFullRequestAndFillsDefaults) {
  const json schema = generate_parameters_schema("sd1", 512);
  const json request = {{"prompt", "a fox"},
                        {"negative_prompt", ""},
                        {"width", 768},
                        {"height", 512},
                        {"steps", 30},
                        {"guidance", 5.5},
                        {"sampler", "euler"},
                        {"scheduler", "karras"},
                        {"seed", 18446744073709551615ULL},
                        {"count", 100},
                        {"format", "webp"},
                        {"denoise", 0.5},
                        {"init_image", "aGVsbG8="}};
  EXPECT_TRUE(validate_against_schema(schema, request).empty());
  const json filled = apply_schema_defaults(schema, {{"prompt", "a fox"}});
  EXPECT_EQ(filled["width"], 512);
  EXPECT_EQ(filled["height"], 512);
  EXPECT_EQ(filled["steps"], 20);
  EXPECT_EQ(filled["sampler"], "euler");
  EXPECT_EQ(filled["scheduler"], "normal");
  EXPECT_EQ(filled["count"], 1);
  EXPECT_EQ(filled["format"], "png");
  EXPECT_EQ(filled["denoise"], 1.0);
  EXPECT_EQ(filled["negative_prompt"], "");
  EXPECT_FALSE(filled.contains("seed")) << "a missing seed is drawn at run time";
  EXPECT_FALSE(filled.contains("init_image"));
}

TEST(GenerateParametersSchema, RefusesOutOfRangeAndUnknownFields) {
  const json schema = generate_parameters_schema("sd1", 512);
  const json request = {{"prompt", ""},       {"width", 60},    {"height", 2056}, {"steps", 0},
                        {"count", 101},       {"seed", -1},     {"denoise", 0},   {"format", "gif"},
                        {"sampler", "magic"}, {"colour", "red"}};
  std::set<std::string> fields;
  for (const auto& violation : validate_against_schema(schema, request))
    fields.insert(violation.field);
  EXPECT_EQ(fields, (std::set<std::string>{"prompt", "width", "height", "steps", "count", "seed",
                                           "denoise", "format", "sampler", "colour"}));
}

TEST(GenerateParametersSchema, TakesUpToEightLorasNamedWithStrengthsInRange) {
  const json schema = generate_parameters_schema("sdxl", 1024);
  const json lora = {{"name", "style.safetensors"}, {"strength_model", -10}, {"strength_clip", 0.5}};
  EXPECT_TRUE(validate_against_schema(schema, {{"prompt", "a fox"}, {"loras", json::array()}}).empty());
  EXPECT_TRUE(
      validate_against_schema(schema, {{"prompt", "a fox"}, {"loras", json(8, lora)}}).empty());
  const json bad = {{"prompt", "a fox"},
                    {"loras",
                     {{{"name", ""}},
                      {{"strength_model", 1.0}},
                      {{"name", "a.safetensors"}, {"strength_model", 10.5}, {"strength_clip", "1"}},
                      {{"name", "a.safetensors"}, {"weight", 1.0}}}}};
  std::set<std::string> fields;
  for (const auto& violation : validate_against_schema(schema, bad)) fields.insert(violation.field);
  EXPECT_EQ(fields, (std::set<std::string>{"loras/0/name", "loras/1/name", "loras/2/strength_model",
                                           "loras/2/strength_clip", "loras/3/weight"}));
  EXPECT_FALSE(
      validate_against_schema(schema, {{"prompt", "a fox"}, {"loras", json(9, lora)}}).empty());
}

}  // namespace
}  // namespace df::registry
