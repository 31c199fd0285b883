// Mask node schemas: ComfyUI's comfy_extras/nodes_mask operations on masks and image/mask conversion.
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

// A node of category "mask" from comfy_extras.nodes_mask with one MASK or IMAGE output.
NodeSchema mask_node(const char* name, const char* display_name, std::vector<graph::InputSpec> inputs,
                     const char* output = "MASK") {
  NodeSchema s;
  s.name = name;
  s.display_name = display_name;
  s.category = "mask";
  s.python_module = "comfy_extras.nodes_mask";
  s.required = std::move(inputs);
  set_outputs(s, {output});
  return s;
}

}  // namespace

void add_mask_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(mask_node("MaskToImage", "Convert Mask to Image", {typed("mask", "MASK")}, "IMAGE"));
  registry.add(mask_node("ImageToMask", "Convert Image to Mask",
                         {typed("image", "IMAGE"), combo("channel", {"red", "green", "blue", "alpha"})}));
  registry.add(mask_node("SolidMask", "SolidMask",
                         {float_input("value", 1.0, 0.0, 1.0, 0.01),
                          int_stepped("width", 512, 1, kMaxResolution),
                          int_stepped("height", 512, 1, kMaxResolution)}));
  registry.add(mask_node("InvertMask", "InvertMask", {typed("mask", "MASK")}));
  registry.add(mask_node("CropMask", "CropMask",
                         {typed("mask", "MASK"), int_stepped("x", 0, 0, kMaxResolution),
                          int_stepped("y", 0, 0, kMaxResolution),
                          int_stepped("width", 512, 1, kMaxResolution),
                          int_stepped("height", 512, 1, kMaxResolution)}));
  registry.add(mask_node("MaskComposite", "MaskComposite",
                         {typed("destination", "MASK"), typed("source", "MASK"),
                          int_stepped("x", 0, 0, kMaxResolution), int_stepped("y", 0, 0, kMaxResolution),
                          combo("operation", {"multiply", "add", "subtract", "and", "or", "xor"})}));
  registry.add(mask_node("FeatherMask", "FeatherMask",
                         {typed("mask", "MASK"), int_stepped("left", 0, 0, kMaxResolution),
                          int_stepped("top", 0, 0, kMaxResolution),
                          int_stepped("right", 0, 0, kMaxResolution),
                          int_stepped("bottom", 0, 0, kMaxResolution)}));
  registry.add(mask_node("GrowMask", "GrowMask",
                         {typed("mask", "MASK"),
                          int_stepped("expand", 0, -kMaxResolution, kMaxResolution),
                          typed("tapered_corners", "BOOLEAN", {{"default", true}})}));
  registry.add(mask_node("ThresholdMask", "ThresholdMask",
                         {typed("mask", "MASK"), float_input("value", 0.5, 0.0, 1.0, 0.01)}));
}

}  // namespace df::nodes
