// Unit tests: the image and mask node schemas match ComfyUI's GET /object_info entries.
#include <gtest/gtest.h>

#include <string>

#include "graph/node_schema.h"
#include "nodes/packs/node_packs.h"

namespace df::nodes {
namespace {

using nlohmann::json;

struct ExpectedNode {
  const char* name;
  const char* display_name;
  const char* category;
  const char* python_module;
  const char* required;  // JSON object in ComfyUI's order
  const char* outputs;   // JSON array of output types
  const char* optional = "{}";
};

const char* const kMethods = R"(["nearest-exact", "bilinear", "area", "bicubic", "lanczos"])";

// The JSON text with the METHODS placeholder (if any) replaced by the upscale methods.
std::string with_methods_if_any(const char* text) {
  std::string out = text;
  const std::string key = "METHODS";
  if (const size_t at = out.find(key); at != std::string::npos) out.replace(at, key.size(), kMethods);
  return out;
}

const ExpectedNode kNodes[] = {
    {"ImageScaleBy", "Upscale Image By", "image/upscaling", "nodes",
     R"({"image": ["IMAGE"], "upscale_method": [METHODS],
         "scale_by": ["FLOAT", {"default": 1.0, "min": 0.01, "max": 8.0, "step": 0.01}]})",
     R"(["IMAGE"])"},
    {"ImageScaleToTotalPixels", "ImageScaleToTotalPixels", "image/upscaling",
     "comfy_extras.nodes_post_processing",
     R"({"image": ["IMAGE"], "upscale_method": [METHODS],
         "megapixels": ["FLOAT", {"default": 1.0, "min": 0.01, "max": 16.0, "step": 0.01}]})",
     R"(["IMAGE"])"},
    {"ImageInvert", "Invert Image", "image", "nodes", R"({"image": ["IMAGE"]})", R"(["IMAGE"])"},
    {"ImageBatch", "Batch Images", "image", "nodes", R"({"image1": ["IMAGE"], "image2": ["IMAGE"]})",
     R"(["IMAGE"])"},
    {"EmptyImage", "EmptyImage", "image", "nodes",
     R"({"width": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
         "height": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
         "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
         "color": ["INT", {"default": 0, "min": 0, "max": 16777215, "step": 1, "display": "color"}]})",
     R"(["IMAGE"])"},
    {"ImagePadForOutpaint", "Pad Image for Outpainting", "image", "nodes",
     R"({"image": ["IMAGE"],
         "left": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 8}],
         "top": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 8}],
         "right": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 8}],
         "bottom": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 8}],
         "feathering": ["INT", {"default": 40, "min": 0, "max": 16384, "step": 1}]})",
     R"(["IMAGE", "MASK"])"},
    {"LoadImageMask", "Load Image (as Mask)", "mask", "nodes",
     R"({"image": [["cat.png", "dog.jpg"], {"image_upload": true}],
         "channel": [["alpha", "red", "green", "blue"]]})",
     R"(["MASK"])"},
    {"ImageCompositeMasked", "ImageCompositeMasked", "image", "comfy_extras.nodes_mask",
     R"({"destination": ["IMAGE"], "source": ["IMAGE"],
         "x": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 1}],
         "y": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 1}],
         "resize_source": ["BOOLEAN", {"default": false}]})",
     R"(["IMAGE"])", R"({"mask": ["MASK"]})"},
    {"ImageBlend", "ImageBlend", "image/postprocessing", "comfy_extras.nodes_post_processing",
     R"({"image1": ["IMAGE"], "image2": ["IMAGE"],
         "blend_factor": ["FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01}],
         "blend_mode": [["normal", "multiply", "screen", "overlay", "soft_light", "difference"]]})",
     R"(["IMAGE"])"},
    {"ImageBlur", "ImageBlur", "image/postprocessing", "comfy_extras.nodes_post_processing",
     R"({"image": ["IMAGE"],
         "blur_radius": ["INT", {"default": 1, "min": 1, "max": 31, "step": 1}],
         "sigma": ["FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1}]})",
     R"(["IMAGE"])"},
    {"ImageSharpen", "ImageSharpen", "image/postprocessing", "comfy_extras.nodes_post_processing",
     R"({"image": ["IMAGE"],
         "sharpen_radius": ["INT", {"default": 1, "min": 1, "max": 31, "step": 1}],
         "sigma": ["FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.01}],
         "alpha": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 5.0, "step": 0.01}]})",
     R"(["IMAGE"])"},
    {"Canny", "Canny", "image/preprocessors", "comfy_extras.nodes_canny",
     R"({"image": ["IMAGE"],
         "low_threshold": ["FLOAT", {"default": 0.4, "min": 0.01, "max": 0.99, "step": 0.01}],
         "high_threshold": ["FLOAT", {"default": 0.8, "min": 0.01, "max": 0.99, "step": 0.01}]})",
     R"(["IMAGE"])"},
    {"ImageCrop", "ImageCrop", "image/transform", "comfy_extras.nodes_images",
     R"({"image": ["IMAGE"],
         "width": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
         "height": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
         "x": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 1}],
         "y": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 1}]})",
     R"(["IMAGE"])"},
    {"MaskToImage", "Convert Mask to Image", "mask", "comfy_extras.nodes_mask",
     R"({"mask": ["MASK"]})", R"(["IMAGE"])"},
    {"ImageToMask", "Convert Image to Mask", "mask", "comfy_extras.nodes_mask",
     R"({"image": ["IMAGE"], "channel": [["red", "green", "blue", "alpha"]]})", R"(["MASK"])"},
    {"SolidMask", "SolidMask", "mask", "comfy_extras.nodes_mask",
     R"({"value": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}],
         "width": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
         "height": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}]})",
     R"(["MASK"])"},
    {"InvertMask", "InvertMask", "mask", "comfy_extras.nodes_mask", R"({"mask": ["MASK"]})",
     R"(["MASK"])"},
    {"CropMask", "CropMask", "mask", "comfy_extras.nodes_mask",
     R"({"mask": ["MASK"],
         "x": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 1}],
         "y": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 1}],
         "width": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
         "height": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}]})",
     R"(["MASK"])"},
    {"MaskComposite", "MaskComposite", "mask", "comfy_extras.nodes_mask",
     R"({"destination": ["MASK"], "source": ["MASK"],
         "x": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 1}],
         "y": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 1}],
         "operation": [["multiply", "add", "subtract", "and", "or", "xor"]]})",
     R"(["MASK"])"},
    {"FeatherMask", "FeatherMask", "mask", "comfy_extras.nodes_mask",
     R"({"mask": ["MASK"],
         "left": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 1}],
         "top": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 1}],
         "right": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 1}],
         "bottom": ["INT", {"default": 0, "min": 0, "max": 16384, "step": 1}]})",
     R"(["MASK"])"},
    {"GrowMask", "GrowMask", "mask", "comfy_extras.nodes_mask",
     R"({"mask": ["MASK"],
         "expand": ["INT", {"default": 0, "min": -16384, "max": 16384, "step": 1}],
         "tapered_corners": ["BOOLEAN", {"default": true}]})",
     R"(["MASK"])"},
    {"ThresholdMask", "ThresholdMask", "mask", "comfy_extras.nodes_mask",
     R"({"mask": ["MASK"],
         "value": ["FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01}]})",
     R"(["MASK"])"},
};

// ComfyUI's order of a group's inputs: the keys of the JSON text as written.
json key_order(const std::string& text) {
  json order = json::array();
  json::parser_callback_t collect = [&order](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key) order.push_back(parsed);
    return true;
  };
  [[maybe_unused]] const json whole = json::parse(text, collect);
  return order;
}

class ImageMaskSchemas : public ::testing::TestWithParam<ExpectedNode> {
 protected:
  graph::SchemaContext context{{}, {"cat.png", "dog.jpg"}, {}, {}};
  json info = graph::object_info(builtin_node_schemas(), context);
};

TEST_P(ImageMaskSchemas, MatchesComfyUIObjectInfo) {
  const ExpectedNode& expected = GetParam();
  ASSERT_TRUE(info.contains(expected.name));
  const json& node = info[expected.name];
  const std::string required = with_methods_if_any(expected.required);
  EXPECT_EQ(node["name"], expected.name);
  EXPECT_EQ(node["display_name"], expected.display_name);
  EXPECT_EQ(node["category"], expected.category);
  EXPECT_EQ(node["python_module"], expected.python_module);
  EXPECT_EQ(node["description"], "");
  EXPECT_EQ(node["output_node"], false);
  EXPECT_EQ(node["input"]["required"], json::parse(required));
  EXPECT_EQ(node["input_order"]["required"], key_order(required));
  const json optional = json::parse(expected.optional);
  if (optional.empty()) {
    EXPECT_FALSE(node["input"].contains("optional"));
  } else {
    EXPECT_EQ(node["input"]["optional"], optional);
    EXPECT_EQ(node["input_order"]["optional"], key_order(expected.optional));
  }
  EXPECT_FALSE(node["input"].contains("hidden"));
  const json outputs = json::parse(expected.outputs);
  EXPECT_EQ(node["output"], outputs);
  EXPECT_EQ(node["output_name"], outputs);
  EXPECT_EQ(node["output_is_list"], json(std::vector<bool>(outputs.size(), false)));
  EXPECT_FALSE(node.contains("output_tooltips"));
}

INSTANTIATE_TEST_SUITE_P(EveryNode, ImageMaskSchemas, ::testing::ValuesIn(kNodes),
                         [](const auto& param) { return std::string(param.param.name); });

}  // namespace
}  // namespace df::nodes
