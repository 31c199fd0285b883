// Tests for Dream Forge's workflows in the user's ComfyUI workflow library.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "api/comfy_workflow_library.h"
#include "nodes/packs/node_packs.h"
#include "graph/validate.h"
#include "test_support.h"

namespace df::api {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

Model model(const std::string& id, const std::string& family, bool test_model) {
  Model info;
  info.id = id;
  info.ckpt_name = id;
  info.family = family;
  info.test_model = test_model;
  return info;
}

const LibraryWorkflow& workflow_named(const std::vector<LibraryWorkflow>& workflows,
                                      const std::string& name) {
  for (const auto& workflow : workflows) {
    if (workflow.file_name == name) return workflow;
  }
  throw std::runtime_error("no workflow " + name);
}

std::string checkpoint_of(const LibraryWorkflow& workflow) {
  return workflow.prompt["4"]["inputs"]["ckpt_name"];
}

TEST(ComfyWorkflowLibrary, OffersTextAndImageToImageForSd1AndSdxl) {
  const auto workflows = library_workflows({});
  std::set<std::string> names;
  for (const auto& workflow : workflows) names.insert(workflow.file_name);
  EXPECT_EQ(names, (std::set<std::string>{"dreamforge_sd1_txt2img.json", "dreamforge_sd1_img2img.json",
                                          "dreamforge_sdxl_txt2img.json",
                                          "dreamforge_sdxl_img2img.json"}));
  const auto& sdxl = workflow_named(workflows, "dreamforge_sdxl_txt2img.json");
  EXPECT_EQ(sdxl.prompt["5"]["inputs"]["width"], 1024);
  const auto& img2img = workflow_named(workflows, "dreamforge_sd1_img2img.json");
  EXPECT_EQ(img2img.prompt["10"]["class_type"], "LoadImage");
  EXPECT_EQ(img2img.prompt["3"]["inputs"]["latent_image"], json::array({"11", 0}));
  EXPECT_LT(img2img.prompt["3"]["inputs"]["denoise"].get<double>(), 1.0);
  EXPECT_FALSE(img2img.prompt.contains("5"));
}

TEST(ComfyWorkflowLibrary, EveryWorkflowPassesValidationWithItsCheckpointInstalled) {
  const auto models = std::vector{model("base15", "sd1", false), model("xl", "sdxl", false)};
  const graph::NodeSchemaRegistry schemas = nodes::builtin_node_schemas();
  graph::SchemaContext context{{"base15", "xl"}, {"example.png"},
                               nodes::supported_samplers(), nodes::supported_schedulers()};
  for (const auto& workflow : library_workflows(models)) {
    const auto result =
        graph::validate_workflow(graph::parse_workflow(workflow.prompt), schemas, context);
    EXPECT_TRUE(result.ok) << workflow.file_name << ": " << result.error.dump()
                           << result.node_errors.dump();
    EXPECT_EQ(result.outputs_to_execute, std::vector<std::string>{"9"}) << workflow.file_name;
  }
}

TEST(ComfyWorkflowLibrary, PicksAnInstalledCheckpointOfTheFamilyPreferringRealModels) {
  const auto workflows = library_workflows(
      {model("tiny", "sd1", true), model("dreamshaper", "sd1", false), model("xl-tiny", "sdxl", true)});
  EXPECT_EQ(checkpoint_of(workflow_named(workflows, "dreamforge_sd1_txt2img.json")), "dreamshaper");
  EXPECT_EQ(checkpoint_of(workflow_named(workflows, "dreamforge_sdxl_img2img.json")), "xl-tiny");
  const auto fallback = library_workflows({model("sd2model", "sd2", false)});
  EXPECT_EQ(checkpoint_of(workflow_named(fallback, "dreamforge_sd1_txt2img.json")),
            "v1-5-pruned-emaonly.safetensors");
}

TEST(ComfyWorkflowLibrary, InstallsMissingWorkflowsInTheFrontendsFormatAndKeepsUserEdits) {
  const test::TestDir dir("workflow_library");
  const fs::path user = dir.path() / "user" / "default";
  fs::create_directories(user / "workflows");
  { std::ofstream(user / "workflows" / "dreamforge_sd1_img2img.json") << "{\"edited\": true}"; }

  const auto written = install_workflow_library(user, {model("tiny", "sd1", true)});
  EXPECT_EQ(written.size(), 3u);
  std::ifstream edited(user / "workflows" / "dreamforge_sd1_img2img.json");
  EXPECT_EQ(json::parse(edited), json({{"edited", true}}));

  std::ifstream file(user / "workflows" / "dreamforge_sd1_txt2img.json");
  const json ui = json::parse(file);
  EXPECT_EQ(ui["version"], 0.4);
  EXPECT_EQ(ui["nodes"].size(), 7u);
  bool found_loader = false;
  for (const auto& node : ui["nodes"]) {
    if (node["type"] != "CheckpointLoaderSimple") continue;
    found_loader = true;
    EXPECT_EQ(node["widgets_values"], json::array({"tiny"}));
  }
  EXPECT_TRUE(found_loader);
  EXPECT_TRUE(install_workflow_library(user, {}).empty());  // nothing missing: nothing rewritten
}

}  // namespace
}  // namespace df::api
