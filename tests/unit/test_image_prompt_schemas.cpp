// The /object_info entries of the image prompt nodes (CLIPVisionLoader, CLIPVisionEncode,
// unCLIPConditioning, unCLIPCheckpointLoader) against ComfyUI's.
#include <gtest/gtest.h>

#include "graph/validate.h"
#include "nodes/packs/node_packs.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using nlohmann::json;

class ImagePromptSchemas : public ::testing::Test {
 protected:
  json info = object_info(nodes::builtin_node_schemas(), SchemaContext{});

  // Expects the node's header, outputs and required inputs ([[name, spec], ...] in order).
  void expect_node(const char* node, const char* display_name, const char* category,
                   const json& outputs, const char* inputs) {
    ASSERT_TRUE(info.contains(node)) << node;
    const json& n = info[node];
    EXPECT_EQ(n["display_name"], display_name) << node;
    EXPECT_EQ(n["category"], category) << node;
    EXPECT_EQ(n["python_module"], "nodes") << node;
    EXPECT_EQ(n["output"], outputs) << node;
    EXPECT_EQ(n["output_name"], outputs) << node;
    EXPECT_EQ(n["output_node"], false) << node;
    json by_name = json::object(), order = json::array();
    for (const auto& entry : json::parse(inputs)) {
      by_name[entry[0].get<std::string>()] = entry[1];
      order.push_back(entry[0]);
    }
    EXPECT_EQ(n["input"]["required"], by_name) << node;
    EXPECT_EQ(n["input_order"]["required"], order) << node;
  }
};

TEST_F(ImagePromptSchemas, CLIPVisionLoaderListsTheClipVisionFolder) {
  ASSERT_TRUE(info.contains("CLIPVisionLoader"));
  const json& n = info["CLIPVisionLoader"];
  EXPECT_EQ(n["display_name"], "Load CLIP Vision");
  EXPECT_EQ(n["category"], "loaders");
  EXPECT_EQ(n["output"], json({"CLIP_VISION"}));
  EXPECT_EQ(n["input_order"]["required"], json({"clip_name"}));
  EXPECT_TRUE(n["input"]["required"]["clip_name"][0].is_array());  // the folder's files
}

TEST_F(ImagePromptSchemas, CLIPVisionEncode) {
  expect_node("CLIPVisionEncode", "CLIP Vision Encode", "conditioning", {"CLIP_VISION_OUTPUT"}, R"([
      ["clip_vision", ["CLIP_VISION"]],
      ["image", ["IMAGE"]],
      ["crop", [["center", "none"]]]])");
}

TEST_F(ImagePromptSchemas, UnCLIPConditioning) {
  expect_node("unCLIPConditioning", "unCLIPConditioning", "conditioning", {"CONDITIONING"}, R"([
      ["conditioning", ["CONDITIONING"]],
      ["clip_vision_output", ["CLIP_VISION_OUTPUT"]],
      ["strength", ["FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}]],
      ["noise_augmentation", ["FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01}]]])");
}

TEST_F(ImagePromptSchemas, UnCLIPCheckpointLoader) {
  ASSERT_TRUE(info.contains("unCLIPCheckpointLoader"));
  const json& n = info["unCLIPCheckpointLoader"];
  EXPECT_EQ(n["category"], "loaders");
  EXPECT_EQ(n["output"], json({"MODEL", "CLIP", "VAE", "CLIP_VISION"}));
  EXPECT_EQ(n["input_order"]["required"], json({"ckpt_name"}));
}

}  // namespace
}  // namespace df::graph
