// The /object_info entries of the ControlNet nodes against ComfyUI's (inputs, bounds, order,
// outputs, categories, deprecation).
#include <gtest/gtest.h>

#include "nodes/packs/node_packs.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using nlohmann::json;

class ControlNetSchemas : public ::testing::Test {
 protected:
  json info = object_info(nodes::builtin_node_schemas(), SchemaContext{});

  static json strength() {
    return json::parse(R"(["FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}])");
  }
  static json percent(double value) {
    return json::array({"FLOAT", {{"default", value}, {"min", 0.0}, {"max", 1.0}, {"step", 0.001}}});
  }
};

TEST_F(ControlNetSchemas, Loaders) {
  const json& loader = info.at("ControlNetLoader");
  EXPECT_EQ(loader["display_name"], "Load ControlNet Model");
  EXPECT_EQ(loader["category"], "loaders");
  EXPECT_EQ(loader["input_order"], json::parse(R"({"required": ["control_net_name"]})"));
  EXPECT_EQ(loader["output"], json({"CONTROL_NET"}));
  EXPECT_EQ(loader["output_name"], json({"CONTROL_NET"}));
  const json& diff = info.at("DiffControlNetLoader");
  EXPECT_EQ(diff["display_name"], "Load ControlNet Model (diff)");
  EXPECT_EQ(diff["category"], "loaders");
  EXPECT_EQ(diff["input"]["required"]["model"], json({"MODEL"}));
  EXPECT_EQ(diff["input_order"], json::parse(R"({"required": ["model", "control_net_name"]})"));
  EXPECT_EQ(diff["output"], json({"CONTROL_NET"}));
}

TEST_F(ControlNetSchemas, T2IAdapterLoader) {
  const json& loader = info.at("T2IAdapterLoader");
  EXPECT_EQ(loader["display_name"], "T2IAdapterLoader");
  EXPECT_EQ(loader["category"], "loaders");
  EXPECT_EQ(loader["input_order"], json::parse(R"({"required": ["t2i_adapter_name"]})"));
  EXPECT_EQ(loader["output"], json({"CONTROL_NET"}));
  EXPECT_EQ(loader["output_name"], json({"CONTROL_NET"}));
}

TEST_F(ControlNetSchemas, ApplyOld) {
  const json& n = info.at("ControlNetApply");
  EXPECT_EQ(n["display_name"], "Apply ControlNet (OLD)");
  EXPECT_EQ(n["category"], "conditioning/controlnet");
  EXPECT_EQ(n["python_module"], "nodes");
  EXPECT_EQ(n["deprecated"], true);
  EXPECT_EQ(n["input"], json({{"required", {{"conditioning", {"CONDITIONING"}},
                                            {"control_net", {"CONTROL_NET"}},
                                            {"image", {"IMAGE"}},
                                            {"strength", strength()}}}}));
  EXPECT_EQ(n["input_order"],
            json::parse(R"({"required": ["conditioning", "control_net", "image", "strength"]})"));
  EXPECT_EQ(n["output"], json({"CONDITIONING"}));
  EXPECT_EQ(n["output_name"], json({"CONDITIONING"}));
}

TEST_F(ControlNetSchemas, ApplyAdvancedAndItsSd3Name) {
  const json required = {{"positive", {"CONDITIONING"}}, {"negative", {"CONDITIONING"}},
                         {"control_net", {"CONTROL_NET"}}, {"image", {"IMAGE"}},
                         {"strength", strength()}, {"start_percent", percent(0.0)},
                         {"end_percent", percent(1.0)}};
  const json& advanced = info.at("ControlNetApplyAdvanced");
  EXPECT_EQ(advanced["display_name"], "Apply ControlNet");
  EXPECT_EQ(advanced["category"], "conditioning/controlnet");
  EXPECT_FALSE(advanced.value("deprecated", false));
  EXPECT_EQ(advanced["input"], json({{"required", required}, {"optional", {{"vae", {"VAE"}}}}}));
  EXPECT_EQ(advanced["input_order"], json::parse(R"({"required": ["positive", "negative",
      "control_net", "image", "strength", "start_percent", "end_percent"], "optional": ["vae"]})"));
  EXPECT_EQ(advanced["output"], json({"CONDITIONING", "CONDITIONING"}));
  EXPECT_EQ(advanced["output_name"], json({"positive", "negative"}));

  const json& sd3 = info.at("ControlNetApplySD3");
  EXPECT_EQ(sd3["display_name"], "Apply Controlnet with VAE");
  EXPECT_EQ(sd3["python_module"], "comfy_extras.nodes_sd3");
  EXPECT_EQ(sd3["deprecated"], true);
  json with_vae = required;
  with_vae["vae"] = {"VAE"};
  EXPECT_EQ(sd3["input"], json({{"required", with_vae}}));
  EXPECT_EQ(sd3["input_order"], json::parse(R"({"required": ["positive", "negative",
      "control_net", "vae", "image", "strength", "start_percent", "end_percent"]})"));
  EXPECT_EQ(sd3["output_name"], json({"positive", "negative"}));
}

}  // namespace
}  // namespace df::graph
