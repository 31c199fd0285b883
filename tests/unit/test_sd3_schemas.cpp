// The /object_info entries of SD3's text nodes against ComfyUI's (TripleCLIPLoader,
// CLIPTextEncodeSD3).
#include <gtest/gtest.h>

#include "nodes/packs/node_packs.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using nlohmann::json;

class Sd3Schemas : public ::testing::Test {
 protected:
  json info = object_info(nodes::builtin_node_schemas(), SchemaContext{});
};

TEST_F(Sd3Schemas, TripleClipLoader) {
  const json& node = info.at("TripleCLIPLoader");
  EXPECT_EQ(node["category"], "advanced/loaders");
  EXPECT_EQ(node["python_module"], "comfy_extras.nodes_sd3");
  EXPECT_EQ(node["description"], "[Recipes]\n\nsd3: clip-l, clip-g, t5");
  EXPECT_EQ(node["input_order"],
            json::parse(R"({"required": ["clip_name1", "clip_name2", "clip_name3"]})"));
  EXPECT_EQ(node["output"], json({"CLIP"}));
}

TEST_F(Sd3Schemas, ClipTextEncodeSd3) {
  const json& node = info.at("CLIPTextEncodeSD3");
  EXPECT_EQ(node["category"], "advanced/conditioning");
  EXPECT_EQ(node["python_module"], "comfy_extras.nodes_sd3");
  EXPECT_EQ(node["input_order"], json::parse(R"({"required": ["clip", "clip_l", "clip_g",
                                                                 "t5xxl", "empty_padding"]})"));
  const json& required = node["input"]["required"];
  for (const char* prompt : {"clip_l", "clip_g", "t5xxl"}) {
    EXPECT_EQ(required[prompt],
              json::parse(R"(["STRING", {"multiline": true, "dynamicPrompts": true}])"));
  }
  EXPECT_EQ(required["empty_padding"][0], json({"none", "empty_prompt"}));
  EXPECT_EQ(node["output"], json({"CONDITIONING"}));
}

}  // namespace
}  // namespace df::graph
