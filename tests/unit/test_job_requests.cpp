// Tests of POST /v1/jobs body parsing: generate defaults from the model's schema, every bad field
// named, unknown models, init images, and ComfyUI workflows validated against the installed models.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "api/job_chain.h"
#include "api/job_requests.h"
#include "registry/routing_table.h"
#include "store/sqlite_store.h"
#include "core/error.h"
#include "core/files.h"
#include "core/ids.h"
#include "core/json_schema.h"
#include "engine/safetensors_file.h"
#include "engine/tiny_model.h"
#include "image/image.h"
#include "test_graph_support.h"
#include "test_support.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<uint8_t> kPngBytes = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                        0,    0,   0,   13,  'I',  'H',  'D',  'R'};

std::string base64(const std::vector<uint8_t>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// The `field` names in an error's details.fields.
std::set<std::string> bad_fields(const Error& error) {
  std::set<std::string> fields;
  for (const auto& entry : error.details().at("fields"))
    fields.insert(entry.at("field").get<std::string>());
  return fields;
}

// The legacy SD 1.5 graph on the tiny model at its native size.
json tiny_workflow() {
  json graph = graph_test::legacy_sd15();
  graph["4"]["inputs"]["ckpt_name"] = "tiny-sd1";
  graph["5"]["inputs"]["width"] = 64;
  graph["5"]["inputs"]["height"] = 64;
  graph["3"]["inputs"]["steps"] = 2;
  return graph;
}

class JobRequestsTest : public ::testing::Test {
 protected:
  // One tiny model for the whole suite; each test's checkpoints folder links to it.
  static void SetUpTestSuite() {
    shared_model_ =
        new fs::path(fs::temp_directory_path() / ("df_job_requests_model_" + random_hex(6)));
    engine::write_tiny_model(shared_model_->string(), engine::Family::kSD1, 1);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*shared_model_);
    delete shared_model_;
    shared_model_ = nullptr;
  }

  void SetUp() override {
    fs::create_directories(checkpoints());
    fs::create_directory_symlink(*shared_model_, checkpoints() / "tiny-sd1");
    settings_.input_dir = (dir_.path() / "inputs").string();
  }

  fs::path checkpoints() const { return dir_.path() / "checkpoints"; }
  void install_second_model() {
    engine::write_safetensors(
        (checkpoints() / "second.safetensors").string(),
        std::vector<engine::RawTensor>{{"model.diffusion_model.input_blocks.0.0.weight",
                                        "F32",
                                        {1},
                                        std::vector<uint8_t>(4, 0)}});
  }
  NewJob parse(const json& body) { return parse_job_request(body, catalog_, settings_); }
  Error parse_error(const json& body, ErrorCode expected) {
    return graph_test::expect_error([&] { parse(body); }, expected);
  }

  static fs::path* shared_model_;
  test::TestDir dir_{"df_job_requests_"};
  store::SqliteStore store_{(dir_.path() / "registry.sqlite3").string()};
  registry::ModelRegistry catalog_{store_, (dir_.path() / "checkpoints").string(),
                                   registry::RegistryScope::kThisMachine};
  JobRequestSettings settings_;
};

fs::path* JobRequestsTest::shared_model_ = nullptr;

TEST_F(JobRequestsTest, GenerateFillsTheModelsDefaults) {
  const NewJob parsed = parse({{"prompt", "a lighthouse"}});
  const Job& job = parsed.job;
  EXPECT_EQ(job.type, "generate");
  EXPECT_EQ(job.spec["model_id"], "tiny-sd1") << "the only installed model";
  EXPECT_EQ(job.spec["prompt"], "a lighthouse");
  EXPECT_EQ(job.spec["negative_prompt"], "");
  EXPECT_EQ(job.spec["width"], 64);
  EXPECT_EQ(job.spec["height"], 64);
  EXPECT_EQ(job.spec["steps"], 20);
  EXPECT_EQ(job.spec["guidance"], 7.0);
  EXPECT_EQ(job.spec["sampler"], "euler");
  EXPECT_EQ(job.spec["scheduler"], "normal");
  EXPECT_EQ(job.spec["count"], 1);
  EXPECT_EQ(job.spec["format"], "png");
  EXPECT_FALSE(job.spec.contains("seed")) << "drawn at run time";
  EXPECT_FALSE(job.spec.contains("priority"));
  EXPECT_EQ(job.id.size(), 36u);
  EXPECT_EQ(job.request_hash.size(), 64u);
  EXPECT_EQ(job.priority, 0);
  EXPECT_EQ(job.max_attempts, 3);
  EXPECT_GT(job.created_ms, 0);
  EXPECT_TRUE(parsed.init_image.empty());
  EXPECT_EQ(parsed.init_image_name, "");
}

TEST_F(JobRequestsTest, GenerateKeepsGivenValuesAndTheEnvelope) {
  const json body = {{"type", "generate"},
                     {"model_id", "tiny-sd1"},
                     {"prompt", "a fox"},
                     {"width", 128},
                     {"height", 72},
                     {"steps", 4},
                     {"seed", 18446744073709551615ULL},
                     {"count", 3},
                     {"format", "webp"},
                     {"priority", 9},
                     {"max_attempts", 1}};
  const Job job = parse(body).job;
  EXPECT_EQ(job.spec["width"], 128);
  EXPECT_EQ(job.spec["height"], 72);
  EXPECT_EQ(job.spec["steps"], 4);
  EXPECT_EQ(job.spec["seed"].get<uint64_t>(), 18446744073709551615ULL);
  EXPECT_EQ(job.spec["count"], 3);
  EXPECT_EQ(job.spec["format"], "webp");
  EXPECT_EQ(job.priority, 9);
  EXPECT_EQ(job.max_attempts, 1);
  EXPECT_FALSE(job.spec.contains("type"));
  EXPECT_FALSE(job.spec.contains("max_attempts"));
}

TEST_F(JobRequestsTest, SettingsChooseTheDefaultModelAndAttempts) {
  install_second_model();
  settings_.default_model = "second.safetensors";
  settings_.default_max_attempts = 5;
  const Job job = parse({{"prompt", "x"}}).job;
  EXPECT_EQ(job.spec["model_id"], "second.safetensors");
  EXPECT_EQ(job.spec["checkpoint"], "second.safetensors") << "what the runner loads";
  EXPECT_EQ(job.spec["width"], 512);
  EXPECT_EQ(job.max_attempts, 5);
}

TEST_F(JobRequestsTest, ADisabledModelIsNotUsedAndTheErrorSaysWhy) {
  install_second_model();
  catalog_.set_enabled("second.safetensors", false);
  const Error error = parse_error({{"prompt", "x"}, {"model_id", "second.safetensors"}},
                                  ErrorCode::kModelNotFound);
  EXPECT_NE(std::string(error.what()).find("disabled"), std::string::npos) << error.what();
  EXPECT_EQ(error.details()["models"], json::array({"tiny-sd1"}));
  EXPECT_EQ(parse({{"prompt", "x"}}).job.spec["model_id"], "tiny-sd1") << "the only one offered";
}

TEST_F(JobRequestsTest, FunctionAndQualityRouteToAnInstalledModelWithItsPreset) {
  settings_.routing = &registry::default_routing_table();
  settings_.device = {registry::DeviceClass::kCpu, 16384};
  const Job low = parse({{"prompt", "x"}, {"function", "create_image"}, {"quality", "low"}}).job;
  EXPECT_EQ(low.spec["model_id"], "tiny-sd1");
  EXPECT_EQ(low.spec["steps"], 12) << "sd15-fast on a CPU";
  EXPECT_EQ(low.spec["sampler"], "euler_ancestral");
  EXPECT_EQ(low.spec["routing"]["preset"], "sd15-fast");
  // The tier's first choice, FLUX.1 schnell, is not installed: the job says so.
  EXPECT_EQ(low.spec["routing"]["fell_back"], true);
  EXPECT_EQ(low.spec["routing"]["skipped"][0]["family"], "flux_schnell");

  // High asks for FLUX.1 dev, then SDXL; neither is installed, so the job falls back and says why.
  const Job high = parse({{"prompt", "x"}, {"function", "create_image"}, {"quality", "high"},
                          {"steps", 3}}).job;
  EXPECT_EQ(high.spec["model_id"], "tiny-sd1");
  EXPECT_EQ(high.spec["steps"], 3) << "the job's own fields win over the preset";
  EXPECT_EQ(high.spec["width"], 768);
  EXPECT_EQ(high.spec["routing"]["fell_back"], true);
  EXPECT_EQ(high.spec["routing"]["skipped"][0]["reason"], "not_installed");
  EXPECT_EQ(high.spec["routing"]["skipped"][1]["family"], "sdxl");
  EXPECT_FALSE(high.spec["routing"]["message"].get<std::string>().empty());
}

TEST_F(JobRequestsTest, APresetsMemoryNeedIsRecordedOutsideTheRequestHash) {
  settings_.routing = &registry::default_routing_table();
  settings_.device = {registry::DeviceClass::kCpu, 16384};
  const json body = {{"prompt", "x"}, {"preset", "sd15-high"}};
  const Job named = parse(body).job;
  const auto preset = registry::default_routing_table().presets.preset_for("sd15-high",
                                                                           registry::DeviceClass::kCpu);
  EXPECT_EQ(named.spec["memory_need"],
            json({{"preset", "sd15-high"}, {"memory_mb", preset.memory_mb}, {"device_class", "cpu"}}));
  EXPECT_EQ(named.request_hash, parse(body).job.request_hash) << "the same body, the same hash";

  const Job routed = parse({{"prompt", "x"}, {"function", "create_image"}, {"quality", "low"}}).job;
  EXPECT_EQ(routed.spec["memory_need"]["preset"], "sd15-fast") << "the routed candidate's preset";
  EXPECT_FALSE(parse({{"prompt", "x"}}).job.spec.contains("memory_need")) << "no preset, no need";
}

TEST_F(JobRequestsTest, AnExplicitModelIsNeverRoutedAndPresetsAreDefaults) {
  settings_.routing = &registry::default_routing_table();
  const Error both = parse_error(
      {{"prompt", "x"}, {"model_id", "tiny-sd1"}, {"quality", "high"}}, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad_fields(both), std::set<std::string>{"model_id"});
  const Job preset = parse({{"prompt", "x"}, {"preset", "sd15-high"}, {"width", 256}}).job;
  EXPECT_EQ(preset.spec["width"], 256);
  EXPECT_EQ(preset.spec["height"], 768);
  EXPECT_EQ(preset.spec["scheduler"], "karras");
  EXPECT_FALSE(preset.spec.contains("routing"));
  EXPECT_FALSE(preset.spec.contains("preset"));
  const Error unknown = parse_error({{"prompt", "x"}, {"preset", "nope"}}, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad_fields(unknown), std::set<std::string>{"preset"});
  EXPECT_NE(std::string(unknown.what()).find("sd15-fast"), std::string::npos) << unknown.what();
  const Error tier = parse_error({{"prompt", "x"}, {"quality", "ultra"}}, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad_fields(tier), std::set<std::string>{"quality"});
}

TEST_F(JobRequestsTest, RoutingWithNothingThatCanRunSaysWhyForEachCandidate) {
  settings_.routing = &registry::default_routing_table();
  catalog_.set_enabled("tiny-sd1", false);
  const Error error = parse_error({{"prompt", "x"}, {"function", "create_image"}},
                                  ErrorCode::kModelNotFound);
  ASSERT_TRUE(error.details().contains("skipped")) << error.details().dump();
  EXPECT_EQ(error.details()["skipped"][0]["reason"], "not_installed");  // FLUX.1 schnell
  EXPECT_EQ(error.details()["skipped"][1]["reason"], "disabled");       // the tiny SD 1.5
}

TEST_F(JobRequestsTest, RequestHashIsTheCanonicalBody) {
  const json body = json::parse(R"({"prompt": "x", "width": 64, "seed": 1})");
  const json reordered = json::parse(R"({"seed": 1, "width": 64, "prompt": "x"})");
  const NewJob first = parse(body);
  const NewJob second = parse(reordered);
  EXPECT_EQ(first.job.request_hash, second.job.request_hash);
  EXPECT_NE(first.job.id, second.job.id);
  EXPECT_NE(parse({{"prompt", "x"}, {"width", 64}, {"seed", 2}}).job.request_hash,
            first.job.request_hash);
}

TEST_F(JobRequestsTest, EveryBadFieldIsNamed) {
  const json body = {{"prompt", ""},    {"width", 60},       {"height", 100000}, {"steps", 0},
                     {"guidance", -1},  {"sampler", "nope"}, {"scheduler", 3},   {"count", 101},
                     {"format", "gif"}, {"colour", "red"},   {"seed", -1}};
  const Error error = parse_error(body, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad_fields(error),
            (std::set<std::string>{"prompt", "width", "height", "steps", "guidance", "sampler",
                                   "scheduler", "count", "format", "colour", "seed"}));
  for (const auto& entry : error.details()["fields"]) {
    EXPECT_FALSE(entry["message"].get<std::string>().empty());
  }
  EXPECT_NE(std::string(error.what()).find("width"), std::string::npos) << error.what();
}

TEST_F(JobRequestsTest, EnvelopeAndImageFieldsAreNamedTogether) {
  const json body = {{"prompt", "x"}, {"priority", 1000}, {"max_attempts", 0}, {"width", 63}};
  EXPECT_EQ(bad_fields(parse_error(body, ErrorCode::kInvalidArgument)),
            (std::set<std::string>{"priority", "max_attempts", "width"}));
}

TEST_F(JobRequestsTest, MissingPromptIsNamed) {
  EXPECT_EQ(bad_fields(parse_error({{"width", 64}}, ErrorCode::kInvalidArgument)),
            (std::set<std::string>{"prompt"}));
}

TEST_F(JobRequestsTest, BodyMustBeAnObject) {
  for (const json& body : {json::array({1}), json("text"), json(nullptr), json(3)}) {
    const Error error = parse_error(body, ErrorCode::kInvalidArgument);
    EXPECT_EQ(bad_fields(error), (std::set<std::string>{""})) << body;
  }
}

TEST_F(JobRequestsTest, UnknownTypeIsNamed) {
  EXPECT_EQ(
      bad_fields(parse_error({{"type", "upscale"}, {"prompt", "x"}}, ErrorCode::kInvalidArgument)),
      (std::set<std::string>{"type"}));
}

TEST_F(JobRequestsTest, UnknownModelIsModelNotFoundListingTheInstalledOnes) {
  const Error error =
      parse_error({{"prompt", "x"}, {"model_id", "sdxl-base"}}, ErrorCode::kModelNotFound);
  EXPECT_EQ(error.details()["field"], "model_id");
  EXPECT_EQ(error.details()["models"], json::array({"tiny-sd1"}));
  EXPECT_NE(std::string(error.what()).find("sdxl-base"), std::string::npos);
  parse_error({{"prompt", "x"}, {"model_id", "../checkpoints/tiny-sd1"}},
              ErrorCode::kModelNotFound);
}

TEST_F(JobRequestsTest, ModelIsRequiredWhenSeveralAreInstalled) {
  install_second_model();
  const Error error = parse_error({{"prompt", "x"}}, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad_fields(error), (std::set<std::string>{"model_id"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"model_id", "tiny-sd1"}}).job.spec["model_id"], "tiny-sd1");
}

TEST_F(JobRequestsTest, ModelIsRequiredWhenNoneIsInstalled) {
  fs::remove_all(checkpoints());
  const Error error = parse_error({{"prompt", "x"}}, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad_fields(error), (std::set<std::string>{"model_id"}));
  EXPECT_NE(error.details()["fields"][0]["message"].get<std::string>().find("no model"),
            std::string::npos);
}

TEST_F(JobRequestsTest, InitImageAsPlainBase64) {
  const NewJob parsed =
      parse({{"prompt", "x"}, {"init_image", base64(kPngBytes)}, {"denoise", 0.6}});
  EXPECT_EQ(parsed.init_image, kPngBytes);
  EXPECT_EQ(parsed.init_image_name, parsed.job.id + ".png");
  EXPECT_EQ(parsed.job.spec["init_image_name"], parsed.init_image_name);
  EXPECT_EQ(parsed.job.spec["denoise"], 0.6);
  EXPECT_FALSE(parsed.job.spec.contains("init_image")) << "the bytes are not kept in the spec";
}

TEST_F(JobRequestsTest, InitImageAsDataUrlOfAnyImageType) {
  const NewJob png =
      parse({{"prompt", "x"}, {"init_image", "data:image/png;base64," + base64(kPngBytes)}});
  EXPECT_EQ(png.init_image, kPngBytes);
  const std::vector<uint8_t> jpeg = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F'};
  EXPECT_EQ(parse({{"prompt", "x"}, {"init_image", "data:image/jpeg;base64," + base64(jpeg)}})
                .init_image_name.substr(36),
            ".jpg");
  const std::vector<uint8_t> webp = {'R', 'I', 'F', 'F', 4,   0,   0,   0,
                                     'W', 'E', 'B', 'P', 'V', 'P', '8', ' '};
  EXPECT_EQ(parse({{"prompt", "x"}, {"init_image", base64(webp)}}).init_image_name.substr(36),
            ".webp");
}

TEST_F(JobRequestsTest, InitImagesTheRequestSchemaAllowsAreAcceptedAndOthersAreNot) {
  const json schema = job_request_schema(settings_)["oneOf"][0]["properties"]["init_image"];
  EXPECT_EQ(schema["contentEncoding"], "base64");
  const NewJob example = parse({{"prompt", "x"}, {"init_image", schema["examples"][0]}});
  EXPECT_EQ(decode_image(example.init_image).width, 64) << "the example is a whole image";
  std::vector<std::string> allowed = schema["examples"].get<std::vector<std::string>>();
  const std::vector<uint8_t> jpeg = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F'};
  const std::vector<uint8_t> webp = {'R',  'I',  'F', 'F', 0xff, 0xff,
                                     0xff, 0x0f, 'W', 'E', 'B',  'P'};
  for (std::vector<uint8_t> image : {kPngBytes, jpeg, webp}) {
    for (uint8_t extra : {0x00, 0xff, 0x3e}) {  // every length modulo 3, so every padding
      image.push_back(extra);
      const std::string padded = base64(image);
      allowed.push_back(padded);
      allowed.push_back(padded.substr(0, padded.find('=')));
      allowed.push_back("data:image/webp;base64," + padded);
    }
  }
  for (const auto& text : allowed) {
    EXPECT_TRUE(validate_against_schema(schema, text).empty()) << text;
    EXPECT_NO_THROW(parse({{"prompt", "x"}, {"init_image", text}})) << text;
  }
  for (const std::string& text : {std::string("0"), std::string("not base64!"),
                                  base64({'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0}),
                                  "data:image/png," + base64(kPngBytes)}) {
    EXPECT_FALSE(validate_against_schema(schema, text).empty()) << text;
    EXPECT_THROW(parse({{"prompt", "x"}, {"init_image", text}}), Error) << text;
  }
}

TEST_F(JobRequestsTest, RequestSchemaOffersThePresetsTheParserTakes) {
  const json refused = job_request_schema(settings_)["oneOf"][0]["properties"];
  for (const char* field : {"function", "quality", "preset"}) {
    EXPECT_EQ(refused[field], false) << field << ": no routing table, so not offered";
  }
  parse_error({{"prompt", "x"}, {"preset", "sd15-fast"}}, ErrorCode::kInvalidArgument);
  settings_.routing = &registry::default_routing_table();
  const json preset = job_request_schema(settings_)["oneOf"][0]["properties"]["preset"];
  EXPECT_EQ(preset["enum"], json(settings_.routing->presets.names()));
  for (const auto& name : preset["enum"]) {
    EXPECT_NO_THROW(parse({{"prompt", "x"}, {"preset", name}})) << name;
  }
  EXPECT_FALSE(validate_against_schema(preset, "0").empty());
  parse_error({{"prompt", "x"}, {"preset", "0"}}, ErrorCode::kInvalidArgument);
}

TEST_F(JobRequestsTest, BadInitImagesAreNamed) {
  for (const std::string& text :
       {std::string("not base64 at all!"), "data:image/png," + base64(kPngBytes),
        std::string("data:image/png;base64"), base64({'h', 'e', 'l', 'l', 'o'}),
        std::string("data:image/png;base64,!!!!")}) {
    const Error error =
        parse_error({{"prompt", "x"}, {"init_image", text}}, ErrorCode::kInvalidArgument);
    EXPECT_EQ(bad_fields(error), (std::set<std::string>{"init_image"})) << text;
  }
  EXPECT_EQ(
      bad_fields(parse_error({{"prompt", "x"}, {"init_image", ""}}, ErrorCode::kInvalidArgument)),
      (std::set<std::string>{"init_image"}));
}

TEST_F(JobRequestsTest, DenoiseBelowOneNeedsAnInitImage) {
  const Error error = parse_error({{"prompt", "x"}, {"denoise", 0.5}}, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad_fields(error), (std::set<std::string>{"denoise"}));
  EXPECT_NO_THROW(parse({{"prompt", "x"}, {"denoise", 1.0}}));
  EXPECT_EQ(bad_fields(parse_error({{"prompt", "x"}, {"denoise", 0}}, ErrorCode::kInvalidArgument)),
            (std::set<std::string>{"denoise"}));
}

TEST_F(JobRequestsTest, SaveInitImageWritesItIntoTheInputFolder) {
  const NewJob parsed =
      parse({{"prompt", "x"}, {"init_image", base64(kPngBytes)}, {"denoise", 0.5}});
  save_init_image(parsed, settings_.input_dir);
  EXPECT_EQ(read_file_bytes((fs::path(settings_.input_dir) / parsed.init_image_name).string()),
            kPngBytes);
  const NewJob without = parse({{"prompt", "x"}});
  const fs::path other = dir_.path() / "other-inputs";
  save_init_image(without, other.string());
  EXPECT_FALSE(fs::exists(other)) << "nothing to write";
}

TEST_F(JobRequestsTest, WorkflowOnTheTinyModelIsAccepted) {
  const json body = {{"type", "workflow"},
                     {"workflow", tiny_workflow()},
                     {"count", 2},
                     {"priority", -5},
                     {"max_attempts", 2}};
  const NewJob parsed = parse(body);
  const Job& job = parsed.job;
  EXPECT_EQ(job.type, "workflow");
  EXPECT_EQ(job.spec["workflow"], tiny_workflow());
  EXPECT_EQ(job.spec["count"], 2);
  EXPECT_EQ(job.spec["format"], "png");
  EXPECT_FALSE(job.spec.contains("type"));
  EXPECT_FALSE(job.spec.contains("priority"));
  EXPECT_FALSE(job.spec.contains("max_attempts"));
  EXPECT_EQ(job.priority, -5);
  EXPECT_EQ(job.max_attempts, 2);
  EXPECT_EQ(job.request_hash.size(), 64u);
}

TEST_F(JobRequestsTest, WorkflowTypeFollowsFromTheGraph) {
  EXPECT_EQ(parse({{"workflow", tiny_workflow()}}).job.type, "workflow");
}

TEST_F(JobRequestsTest, WorkflowOnAMissingCheckpointCarriesNodeErrors) {
  json graph = tiny_workflow();
  graph["4"]["inputs"]["ckpt_name"] = "missing.safetensors";
  graph["3"]["inputs"]["steps"] = 0;
  const Error error =
      parse_error({{"type", "workflow"}, {"workflow", graph}}, ErrorCode::kInvalidArgument);
  const json& node_errors = error.details().at("node_errors");
  ASSERT_TRUE(node_errors.contains("4")) << node_errors.dump(2);
  EXPECT_EQ(node_errors["4"]["class_type"], "CheckpointLoaderSimple");
  EXPECT_FALSE(node_errors["4"]["errors"].empty());
  ASSERT_TRUE(node_errors.contains("3")) << node_errors.dump(2);
  EXPECT_EQ(error.details()["error"]["type"], "prompt_outputs_failed_validation");
}

TEST_F(JobRequestsTest, WorkflowWithAnUnknownNodeNamesIt) {
  json graph = tiny_workflow();
  graph["12"] = {{"class_type", "MagicUpscaler"}, {"inputs", json::object()}};
  const Error error =
      parse_error({{"type", "workflow"}, {"workflow", graph}}, ErrorCode::kInvalidArgument);
  EXPECT_EQ(error.details()["error"]["type"], "missing_node_type");
  EXPECT_NE(std::string(error.what()).find("MagicUpscaler"), std::string::npos) << error.what();
}

TEST_F(JobRequestsTest, WorkflowEnvelopeFieldsAreChecked) {
  const json body = {{"type", "workflow"},
                     {"workflow", "not a graph"},
                     {"count", 0},
                     {"prompt", "generate field"}};
  EXPECT_EQ(bad_fields(parse_error(body, ErrorCode::kInvalidArgument)),
            (std::set<std::string>{"workflow", "count", "prompt"}));
  EXPECT_EQ(bad_fields(parse_error({{"type", "workflow"}}, ErrorCode::kInvalidArgument)),
            (std::set<std::string>{"workflow"}));
}

TEST_F(JobRequestsTest, RequestSchemaOffersBothJobTypes) {
  const json schema = job_request_schema(settings_);
  ASSERT_EQ(schema.at("oneOf").size(), 2u);
  EXPECT_EQ(schema["oneOf"][0]["required"], json::array({"prompt"}));
  EXPECT_EQ(schema["oneOf"][1]["properties"]["type"]["const"], "workflow");
}

TEST_F(JobRequestsTest, AChainedUpscaleIsResolvedAgainstTheInstalledUpscaleModels) {
  json spec = parse({{"prompt", "a kite"}, {"chain", {{"upscale", {{"scale", 2}}}}}}).job.spec;
  EXPECT_EQ(spec["chain"]["upscale"]["impl"], "diffusion") << "auto without an upscale model";
  fs::create_directories(dir_.path() / "upscale_models");
  std::ofstream(dir_.path() / "upscale_models" / "x4.safetensors") << "weights";
  spec = parse({{"prompt", "a kite"}, {"chain", {{"upscale", {{"scale", 3}, {"strict_scale", true}}}}}}).job.spec;
  EXPECT_EQ(spec["chain"]["upscale"]["impl"], "gan");
  EXPECT_EQ(spec["chain"]["upscale"]["model"], "x4.safetensors");
  EXPECT_EQ(spec["chain"]["upscale"]["scale"], 3);
  EXPECT_EQ(spec["chain"]["upscale"]["strict_scale"], true);

  for (const json& chain : {json{{"upscale", {{"scale", 2}, {"impl", "gan"}, {"model", "x2.pth"}}}},
                            json{{"upscale", {{"scale", 2}, {"impl", "diffusion"}, {"model", "x4.safetensors"}}}},
                            json{{"upscale", {{"scale", 2}, {"impl", "gan"}, {"denoise", 0.5}}}},
                            json{{"upscale", {{"scale", 1}}}}}) {
    const Error error = parse_error({{"prompt", "a kite"}, {"chain", chain}}, ErrorCode::kInvalidArgument);
    EXPECT_TRUE(is_chain_error(error)) << error.what();
    EXPECT_EQ(error.details()["fields"][0]["field"].get<std::string>().rfind("chain", 0), 0u)
        << error.details().dump();
  }
  EXPECT_FALSE(is_chain_error(parse_error({{"prompt", 3}}, ErrorCode::kInvalidArgument)));
}

TEST(JobStages, AChainedJobWeighsItsUpscale) {
  Job job;
  job.spec = {{"steps", 20}};
  EXPECT_EQ(job_stages(job), json::parse(R"([{"name": "generate", "weight": 1.0}])"));
  job.spec["chain"] = {{"upscale", {{"impl", "diffusion"}, {"steps", 0}}}};
  const json stages = job_stages(job);
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[1]["name"], "upscale");
  EXPECT_NEAR(stages[1]["weight"].get<double>(), 10.0 / 30.0, 1e-12);
  EXPECT_NEAR(stages[0]["weight"].get<double>() + stages[1]["weight"].get<double>(), 1.0, 1e-12);
  job.spec["chain"]["upscale"]["impl"] = "gan";
  EXPECT_NEAR(job_stages(job)[1]["weight"].get<double>(), 0.15, 1e-12);
}

}  // namespace
}  // namespace df::api
