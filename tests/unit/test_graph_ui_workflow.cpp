// Tests for API prompt -> frontend (UI) workflow conversion.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "nodes/packs/node_packs.h"
#include "graph/ui_workflow.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using nlohmann::json;
using nodes::builtin_node_schemas;
using graph_test::expect_error;

const json& node_with_id(const json& ui, int id) {
  for (const auto& node : ui["nodes"]) {
    if (node["id"] == id) return node;
  }
  throw std::runtime_error("no node " + std::to_string(id));
}

// What the frontend sends back to POST /prompt for a UI workflow: link inputs from the link
// table, widget values in schema order skipping the widgets that are not inputs (the seed's
// control and the upload button).
json prompt_from_ui(const json& ui, const NodeSchemaRegistry& schemas) {
  std::map<int64_t, json> links;
  for (const auto& link : ui["links"]) links[link[0].get<int64_t>()] = link;
  json prompt = json::object();
  for (const auto& node : ui["nodes"]) {
    const NodeSchema* schema = schemas.find(node["type"].get<std::string>());
    json inputs = json::object();
    for (const auto& slot : node["inputs"]) {
      if (slot["link"].is_null()) continue;
      const json& link = links.at(slot["link"].get<int64_t>());
      inputs[slot["name"].get<std::string>()] = {std::to_string(link[1].get<int64_t>()), link[2]};
    }
    size_t widget = 0;
    for (const auto* group : {&schema->required, &schema->optional}) {
      for (const auto& spec : *group) {
        if (!spec.is_widget()) continue;
        inputs[spec.name] = node["widgets_values"].at(widget++);
        if (spec.options.is_object() && spec.options.value("control_after_generate", false)) ++widget;
        if (spec.options.is_object() && spec.options.value("image_upload", false)) ++widget;
      }
    }
    EXPECT_EQ(widget, node["widgets_values"].size()) << node["type"];
    json entry = {{"class_type", node["type"]}, {"inputs", inputs}};
    if (node.contains("title")) entry["_meta"] = {{"title", node["title"]}};
    prompt[std::to_string(node["id"].get<int64_t>())] = entry;
  }
  return prompt;
}

json image_to_image_prompt() {
  return {
      {"1", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", "tiny"}}}}},
      {"2", {{"class_type", "LoadImage"}, {"inputs", {{"image", "cat.png"}}}}},
      {"3", {{"class_type", "VAEEncode"}, {"inputs", {{"pixels", {"2", 0}}, {"vae", {"1", 2}}}}}},
      {"4",
       {{"class_type", "CLIPTextEncode"},
        {"_meta", {{"title", "Positive prompt"}}},
        {"inputs", {{"text", "a cat"}, {"clip", {"1", 1}}}}}},
      {"5",
       {{"class_type", "KSampler"},
        {"inputs",
         {{"seed", 42},
          {"steps", 12},
          {"cfg", 6.5},
          {"sampler_name", "euler"},
          {"scheduler", "karras"},
          {"denoise", 0.6},
          {"model", {"1", 0}},
          {"positive", {"4", 0}},
          {"negative", {"4", 0}},
          {"latent_image", {"3", 0}}}}}},
      {"6", {{"class_type", "VAEDecode"}, {"inputs", {{"samples", {"5", 0}}, {"vae", {"1", 2}}}}}},
      {"7",
       {{"class_type", "SaveImage"},
        {"inputs", {{"filename_prefix", "out"}, {"images", {"6", 0}}}}}},
  };
}

TEST(GraphUiWorkflow, WidgetValuesFollowSchemaOrderWithTheFrontendsExtraWidgets) {
  const json ui = ui_workflow_from_prompt(image_to_image_prompt(), builtin_node_schemas());
  EXPECT_EQ(node_with_id(ui, 5)["widgets_values"],
            json::array({42, "randomize", 12, 6.5, "euler", "karras", 0.6}));
  EXPECT_EQ(node_with_id(ui, 2)["widgets_values"], json::array({"cat.png", "image"}));
  EXPECT_EQ(node_with_id(ui, 4)["title"], "Positive prompt");
  EXPECT_EQ(ui["version"], 0.4);
  EXPECT_EQ(ui["last_node_id"], 7);
}

TEST(GraphUiWorkflow, LinksJoinOutputSlotsToInputSlotsWithTheirTypes) {
  const json ui = ui_workflow_from_prompt(image_to_image_prompt(), builtin_node_schemas());
  EXPECT_EQ(ui["links"].size(), 10u);
  EXPECT_EQ(ui["last_link_id"], 10);
  const json& sampler = node_with_id(ui, 5);
  const json& latent_slot = sampler["inputs"][3];
  EXPECT_EQ(latent_slot["name"], "latent_image");
  const json& link = ui["links"][latent_slot["link"].get<int64_t>() - 1];
  EXPECT_EQ(link, json::array({latent_slot["link"], 3, 0, 5, 3, "LATENT"}));
  // The checkpoint's VAE output feeds both the encoder and the decoder.
  EXPECT_EQ(node_with_id(ui, 1)["outputs"][2]["links"].size(), 2u);
  EXPECT_EQ(node_with_id(ui, 1)["outputs"][2]["type"], "VAE");
  EXPECT_EQ(node_with_id(ui, 7)["outputs"], json::array());
}

TEST(GraphUiWorkflow, TheFrontendsConversionGivesTheSamePromptBack) {
  const NodeSchemaRegistry schemas = builtin_node_schemas();
  const json prompt = image_to_image_prompt();
  EXPECT_EQ(prompt_from_ui(ui_workflow_from_prompt(prompt, schemas), schemas), prompt);
  const json legacy = graph_test::legacy_sd15();
  EXPECT_EQ(prompt_from_ui(ui_workflow_from_prompt(legacy, schemas), schemas), legacy);
}

TEST(GraphUiWorkflow, NodesAreLaidOutLeftToRightByLinkDepthWithoutOverlap) {
  const json ui = ui_workflow_from_prompt(image_to_image_prompt(), builtin_node_schemas());
  const auto x = [&](int id) { return node_with_id(ui, id)["pos"][0].get<double>(); };
  EXPECT_EQ(x(1), x(2));  // both have no inputs
  EXPECT_LT(x(2), x(3));
  EXPECT_LT(x(3), x(5));
  EXPECT_LT(x(5), x(6));
  EXPECT_LT(x(6), x(7));
  const json& loader = node_with_id(ui, 1);
  const json& image = node_with_id(ui, 2);
  EXPECT_GE(image["pos"][1].get<double>(),
            loader["pos"][1].get<double>() + loader["size"][1].get<double>());
  for (size_t i = 1; i < ui["nodes"].size(); ++i) {
    EXPECT_EQ(ui["nodes"][i]["order"], i);
  }
}

TEST(GraphUiWorkflow, LeftOutValuesTakeTheSchemaDefault) {
  json prompt = image_to_image_prompt();
  prompt["7"]["inputs"].erase("filename_prefix");
  const json ui = ui_workflow_from_prompt(prompt, builtin_node_schemas());
  EXPECT_EQ(node_with_id(ui, 7)["widgets_values"], json::array({"ComfyUI"}));
}

TEST(GraphUiWorkflow, RejectsPromptsTheFrontendCouldNotShow) {
  const NodeSchemaRegistry schemas = builtin_node_schemas();
  json unknown = image_to_image_prompt();
  unknown["7"]["class_type"] = "NoSuchNode";
  expect_error([&] { ui_workflow_from_prompt(unknown, schemas); }, ErrorCode::kInvalidArgument);

  json named_ids = image_to_image_prompt();
  named_ids["save"] = named_ids["7"];
  expect_error([&] { ui_workflow_from_prompt(named_ids, schemas); }, ErrorCode::kInvalidArgument);

  json dangling = image_to_image_prompt();
  dangling["6"]["inputs"]["samples"] = {"99", 0};
  expect_error([&] { ui_workflow_from_prompt(dangling, schemas); }, ErrorCode::kInvalidArgument);

  json bad_slot = image_to_image_prompt();
  bad_slot["6"]["inputs"]["vae"] = {"1", 3};
  expect_error([&] { ui_workflow_from_prompt(bad_slot, schemas); }, ErrorCode::kInvalidArgument);

  json cycle = image_to_image_prompt();
  cycle["3"]["inputs"]["pixels"] = {"6", 0};
  const Error error =
      expect_error([&] { ui_workflow_from_prompt(cycle, schemas); }, ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(error.what()).find("cycle"), std::string::npos) << error.what();

  json missing = image_to_image_prompt();
  missing["5"]["inputs"].erase("model");
  expect_error([&] { ui_workflow_from_prompt(missing, schemas); }, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace df::graph
