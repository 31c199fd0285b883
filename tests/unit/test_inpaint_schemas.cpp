// Unit tests: InpaintModelConditioning's and InstructPixToPixConditioning's schemas match
// ComfyUI's GET /object_info entries.
#include <gtest/gtest.h>

#include <string>

#include "graph/node_schema.h"
#include "nodes/packs/node_packs.h"

namespace df::nodes {
namespace {

using nlohmann::json;

class InpaintSchemas : public ::testing::Test {
 protected:
  // The node's entry, checked for what both nodes share: three named outputs, no optional or
  // hidden inputs, not an output node.
  json entry(const char* name) {
    const json info = graph::object_info(builtin_node_schemas(), graph::SchemaContext{});
    EXPECT_TRUE(info.contains(name)) << name;
    const json node = info.value(name, json::object());
    EXPECT_EQ(node["name"], name);
    EXPECT_EQ(node["display_name"], name);
    EXPECT_EQ(node["output"], json({"CONDITIONING", "CONDITIONING", "LATENT"}));
    EXPECT_EQ(node["output_name"], json({"positive", "negative", "latent"}));
    EXPECT_EQ(node["output_is_list"], json({false, false, false}));
    EXPECT_EQ(node["output_node"], false);
    EXPECT_FALSE(node["input"].contains("optional"));
    EXPECT_FALSE(node["input"].contains("hidden"));
    return node;
  }
};

TEST_F(InpaintSchemas, InpaintModelConditioning) {
  const json node = entry("InpaintModelConditioning");
  EXPECT_EQ(node["category"], "conditioning/inpaint");
  EXPECT_EQ(node["python_module"], "nodes");
  const json noise_mask = {
      "BOOLEAN",
      {{"default", true},
       {"tooltip",
        "Add a noise mask to the latent so sampling will only happen within the mask. Might "
        "improve results or completely break things depending on the model."}}};
  EXPECT_EQ(node["input"]["required"],
            json({{"positive", {"CONDITIONING"}}, {"negative", {"CONDITIONING"}},
                  {"vae", {"VAE"}}, {"pixels", {"IMAGE"}}, {"mask", {"MASK"}},
                  {"noise_mask", noise_mask}}));
  EXPECT_EQ(node["input_order"]["required"],
            json({"positive", "negative", "vae", "pixels", "mask", "noise_mask"}));
}

TEST_F(InpaintSchemas, InstructPixToPixConditioning) {
  const json node = entry("InstructPixToPixConditioning");
  EXPECT_EQ(node["category"], "conditioning/instructpix2pix");
  EXPECT_EQ(node["python_module"], "comfy_extras.nodes_ip2p");
  EXPECT_EQ(node["input"]["required"],
            json({{"positive", {"CONDITIONING"}}, {"negative", {"CONDITIONING"}},
                  {"vae", {"VAE"}}, {"pixels", {"IMAGE"}}}));
  EXPECT_EQ(node["input_order"]["required"], json({"positive", "negative", "vae", "pixels"}));
}

}  // namespace
}  // namespace df::nodes
