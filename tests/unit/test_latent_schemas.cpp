// The /object_info entries of the latent, primitive and animated-WebP nodes against ComfyUI's.
#include <gtest/gtest.h>

#include "nodes/packs/node_packs.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using nlohmann::json;

class LatentSchemas : public ::testing::Test {
 protected:
  json info = object_info(nodes::builtin_node_schemas(), SchemaContext{});

  // Expects the node's inputs to be exactly `inputs`: {group: [[name, spec], ...]} in order.
  void expect_inputs(const char* node, const char* inputs) {
    ASSERT_TRUE(info.contains(node)) << node;
    const json expected = json::parse(inputs);
    json by_name = json::object(), order = json::object();
    for (const auto& [group, entries] : expected.items()) {
      by_name[group] = json::object();
      order[group] = json::array();
      for (const auto& entry : entries) {
        by_name[group][entry[0].get<std::string>()] = entry[1];
        order[group].push_back(entry[0]);
      }
    }
    EXPECT_EQ(info[node]["input"], by_name) << node;
    EXPECT_EQ(info[node]["input_order"], order) << node;
  }

  // Expects the node's header fields.
  void expect_node(const char* node, const char* display_name, const char* category,
                   const char* python_module, const char* outputs, const char* output_names) {
    ASSERT_TRUE(info.contains(node)) << node;
    const json& n = info[node];
    EXPECT_EQ(n["name"], node);
    EXPECT_EQ(n["display_name"], display_name) << node;
    EXPECT_EQ(n["category"], category) << node;
    EXPECT_EQ(n["python_module"], python_module) << node;
    EXPECT_EQ(n["output"], json::parse(outputs)) << node;
    EXPECT_EQ(n["output_name"], json::parse(output_names)) << node;
    EXPECT_EQ(n["output_is_list"].size(), n["output"].size()) << node;
  }
};

TEST_F(LatentSchemas, LatentUpscaleNodes) {
  expect_node("LatentUpscale", "Upscale Latent", "latent", "nodes", R"(["LATENT"])",
              R"(["LATENT"])");
  expect_inputs("LatentUpscale", R"({"required": [
      ["samples", ["LATENT"]],
      ["upscale_method", [["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]]],
      ["width", ["INT", {"default": 512, "min": 0, "max": 16384, "step": 8}]],
      ["height", ["INT", {"default": 512, "min": 0, "max": 16384, "step": 8}]],
      ["crop", [["disabled", "center"]]]]})");
  expect_node("LatentUpscaleBy", "Upscale Latent By", "latent", "nodes", R"(["LATENT"])",
              R"(["LATENT"])");
  expect_inputs("LatentUpscaleBy", R"({"required": [
      ["samples", ["LATENT"]],
      ["upscale_method", [["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]]],
      ["scale_by", ["FLOAT", {"default": 1.5, "min": 0.01, "max": 8.0, "step": 0.01}]]]})");
  EXPECT_EQ(info["LatentUpscale"]["output_node"], false);
  EXPECT_EQ(info["LatentUpscale"]["description"], "");
  EXPECT_FALSE(info["LatentUpscale"].contains("output_tooltips"));
}

TEST_F(LatentSchemas, CompositeAndBlendNodes) {
  expect_node("LatentComposite", "Latent Composite", "latent", "nodes", R"(["LATENT"])",
              R"(["LATENT"])");
  expect_inputs("LatentComposite", R"({"required": [
      ["samples_to", ["LATENT"]], ["samples_from", ["LATENT"]],
      ["x", ["INT", {"default": 0, "min": 0, "max": 16384, "step": 8}]],
      ["y", ["INT", {"default": 0, "min": 0, "max": 16384, "step": 8}]],
      ["feather", ["INT", {"default": 0, "min": 0, "max": 16384, "step": 8}]]]})");

  expect_node("LatentCompositeMasked", "Latent Composite Masked", "latent",
              "comfy_extras.nodes_mask", R"(["LATENT"])", R"(["LATENT"])");
  expect_inputs("LatentCompositeMasked", R"({
    "required": [
      ["destination", ["LATENT", {"tooltip": "The background latent image into which the source latent will be composited."}]],
      ["source", ["LATENT", {"tooltip": "The foreground latent image to composite onto the destination latent."}]],
      ["x", ["INT", {"default": 0, "min": 0, "max": 16384, "step": 8, "tooltip": "Horizontal pixel offset (in 8-pixel steps) for positioning the source latent."}]],
      ["y", ["INT", {"default": 0, "min": 0, "max": 16384, "step": 8, "tooltip": "Vertical pixel offset (in 8-pixel steps) for positioning the source latent."}]],
      ["resize_source", ["BOOLEAN", {"default": false, "tooltip": "If enabled, resizes the source latent to match the dimensions of the destination latent."}]]],
    "optional": [
      ["mask", ["MASK", {"tooltip": "Optional mask specifying blending intensity (1.0 = source, 0.0 = destination)."}]]]})");
  EXPECT_EQ(info["LatentCompositeMasked"]["output_tooltips"],
            json::parse(R"(["The composited latent output."])"));

  expect_node("LatentBlend", "Latent Blend", "_for_testing", "nodes", R"(["LATENT"])",
              R"(["LATENT"])");
  expect_inputs("LatentBlend", R"({"required": [
      ["samples1", ["LATENT"]], ["samples2", ["LATENT"]],
      ["blend_factor", ["FLOAT", {"default": 0.5, "min": 0, "max": 1, "step": 0.01}]]]})");
  // ComfyUI's bounds are Python ints here.
  EXPECT_EQ(info["LatentBlend"]["input"]["required"]["blend_factor"][1].dump(),
            R"({"default":0.5,"max":1,"min":0,"step":0.01})");
}

TEST_F(LatentSchemas, BatchNodes) {
  expect_node("RepeatLatentBatch", "Repeat Latent Batch", "latent/batch", "nodes",
              R"(["LATENT"])", R"(["LATENT"])");
  expect_inputs("RepeatLatentBatch", R"({"required": [
      ["samples", ["LATENT"]], ["amount", ["INT", {"default": 1, "min": 1, "max": 64}]]]})");
  expect_node("LatentFromBatch", "Latent From Batch", "latent/batch", "nodes", R"(["LATENT"])",
              R"(["LATENT"])");
  expect_inputs("LatentFromBatch", R"({"required": [
      ["samples", ["LATENT"]],
      ["batch_index", ["INT", {"default": 0, "min": 0, "max": 63}]],
      ["length", ["INT", {"default": 1, "min": 1, "max": 64}]]]})");
  expect_node("LatentBatch", "LatentBatch", "latent/batch", "comfy_extras.nodes_latent",
              R"(["LATENT"])", R"(["LATENT"])");
  expect_inputs("LatentBatch", R"({"required": [
      ["samples1", ["LATENT", {"tooltip": "First latent input for the batch."}]],
      ["samples2", ["LATENT", {"tooltip": "Second latent input to append to the batch."}]]]})");
  EXPECT_EQ(info["LatentBatch"]["description"],
            "Combine two latent representations into a single batch.");
  EXPECT_EQ(info["LatentBatch"]["output_tooltips"],
            json::parse(R"(["Batched latent representation."])"));
  EXPECT_EQ(info["EmptyLatentImage"]["input"]["required"]["batch_size"][1]["max"], 4096);
}

TEST_F(LatentSchemas, TiledVaeNodes) {
  expect_node("VAEDecodeTiled", "VAE Decode (Tiled)", "_for_testing", "nodes", R"(["IMAGE"])",
              R"(["IMAGE"])");
  expect_inputs("VAEDecodeTiled", R"({"required": [
      ["samples", ["LATENT"]], ["vae", ["VAE"]],
      ["tile_size", ["INT", {"default": 512, "min": 64, "max": 4096, "step": 32}]],
      ["overlap", ["INT", {"default": 64, "min": 0, "max": 4096, "step": 32}]],
      ["temporal_size", ["INT", {"default": 64, "min": 8, "max": 4096, "step": 4, "tooltip": "Only used for video VAEs: Amount of frames to decode at a time."}]],
      ["temporal_overlap", ["INT", {"default": 8, "min": 4, "max": 4096, "step": 4, "tooltip": "Only used for video VAEs: Amount of frames to overlap."}]]]})");
  expect_node("VAEEncodeTiled", "VAE Encode (Tiled)", "_for_testing", "nodes", R"(["LATENT"])",
              R"(["LATENT"])");
  expect_inputs("VAEEncodeTiled", R"({"required": [
      ["pixels", ["IMAGE"]], ["vae", ["VAE"]],
      ["tile_size", ["INT", {"default": 512, "min": 64, "max": 4096, "step": 64}]],
      ["overlap", ["INT", {"default": 64, "min": 0, "max": 4096, "step": 32}]],
      ["temporal_size", ["INT", {"default": 64, "min": 8, "max": 4096, "step": 4, "tooltip": "Only used for video VAEs: Amount of frames to encode at a time."}]],
      ["temporal_overlap", ["INT", {"default": 8, "min": 4, "max": 4096, "step": 4, "tooltip": "Only used for video VAEs: Amount of frames to overlap."}]]]})");
}

TEST_F(LatentSchemas, PrimitiveNodes) {
  const char* module = "comfy_extras.nodes_primitive";
  expect_node("PrimitiveString", "String", "utils/primitive", module, R"(["STRING"])",
              R"(["STRING"])");
  expect_inputs("PrimitiveString", R"({"required": [["value", ["STRING", {"multiline": false}]]]})");
  expect_node("PrimitiveStringMultiline", "String (Multiline)", "utils/primitive", module,
              R"(["STRING"])", R"(["STRING"])");
  expect_inputs("PrimitiveStringMultiline",
                R"({"required": [["value", ["STRING", {"multiline": true}]]]})");
  expect_node("PrimitiveInt", "Int", "utils/primitive", module, R"(["INT"])", R"(["INT"])");
  expect_inputs("PrimitiveInt", R"({"required": [["value", ["INT", {
      "min": -9223372036854775807, "max": 9223372036854775807,
      "control_after_generate": true}]]]})");
  expect_node("PrimitiveFloat", "Float", "utils/primitive", module, R"(["FLOAT"])",
              R"(["FLOAT"])");
  expect_inputs("PrimitiveFloat", R"({"required": [["value", ["FLOAT", {
      "min": -9223372036854775807, "max": 9223372036854775807, "step": 0.1}]]]})");
  expect_node("PrimitiveBoolean", "Boolean", "utils/primitive", module, R"(["BOOLEAN"])",
              R"(["BOOLEAN"])");
  expect_inputs("PrimitiveBoolean", R"({"required": [["value", ["BOOLEAN", {}]]]})");
}

TEST_F(LatentSchemas, SaveAnimatedWebp) {
  expect_node("SaveAnimatedWEBP", "Save Animated WEBP", "image", "comfy_extras.nodes_images",
              R"(["IMAGE"])", R"(["images"])");
  expect_inputs("SaveAnimatedWEBP", R"({
    "required": [
      ["images", ["IMAGE", {}]],
      ["filename_prefix", ["STRING", {"default": "ComfyUI", "multiline": false}]],
      ["fps", ["FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01}]],
      ["lossless", ["BOOLEAN", {"default": true}]],
      ["quality", ["INT", {"default": 80, "min": 0, "max": 100}]],
      ["method", [["default", "fastest", "slowest"], {}]]],
    "hidden": [["prompt", "PROMPT"], ["extra_pnginfo", "EXTRA_PNGINFO"]]})");
  EXPECT_EQ(info["SaveAnimatedWEBP"]["output_node"], true);
}

}  // namespace
}  // namespace df::graph
