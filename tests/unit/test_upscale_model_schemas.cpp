// The /object_info entries of UpscaleModelLoader and ImageUpscaleWithModel against ComfyUI's
// (comfy_extras/nodes_upscale_model.py).
#include <gtest/gtest.h>

#include "graph/validate.h"
#include "nodes/packs/node_packs.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using nlohmann::json;

json upscale_object_info() {
  SchemaContext context;
  context.model_files["upscale_models"] = {"4x-UltraSharp.pth", "RealESRGAN_x2plus.safetensors"};
  return object_info(nodes::builtin_node_schemas(), context);
}

void expect_header(const json& node, const char* display_name, const char* category,
                   const char* output) {
  EXPECT_EQ(node["display_name"], display_name);
  EXPECT_EQ(node["category"], category);
  EXPECT_EQ(node["python_module"], "comfy_extras.nodes_upscale_model");
  EXPECT_EQ(node["output"], json({output}));
  EXPECT_EQ(node["output_name"], json({output}));
  EXPECT_EQ(node["output_is_list"], json({false}));
  EXPECT_EQ(node["output_node"], false);
}

TEST(UpscaleModelSchemas, UpscaleModelLoaderOffersTheUpscaleModelsFolder) {
  const json info = upscale_object_info();
  ASSERT_TRUE(info.contains("UpscaleModelLoader"));
  const json& node = info["UpscaleModelLoader"];
  expect_header(node, "Load Upscale Model", "loaders", "UPSCALE_MODEL");
  EXPECT_EQ(node["input"]["required"]["model_name"][0],
            json({"4x-UltraSharp.pth", "RealESRGAN_x2plus.safetensors"}));
  EXPECT_EQ(node["input_order"], json({{"required", {"model_name"}}}));
}

TEST(UpscaleModelSchemas, ImageUpscaleWithModelTakesAModelAndAnImage) {
  const json info = upscale_object_info();
  ASSERT_TRUE(info.contains("ImageUpscaleWithModel"));
  const json& node = info["ImageUpscaleWithModel"];
  expect_header(node, "Upscale Image (using Model)", "image/upscaling", "IMAGE");
  EXPECT_EQ(node["input"], json({{"required", {{"upscale_model", {"UPSCALE_MODEL"}},
                                               {"image", {"IMAGE"}}}}}));
  EXPECT_EQ(node["input_order"], json({{"required", {"upscale_model", "image"}}}));
}

}  // namespace
}  // namespace df::graph
