// Mask nodes: ComfyUI's comfy_extras/nodes_mask operations and the image/mask conversions.
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/image_ops.h"
#include "nodes/mask_ops.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

std::vector<Value> mask_output(at::Tensor mask) {
  return {Value::of("MASK", MaskValue{std::move(mask)})};
}

const at::Tensor& mask_input(const NodeInputs& in, const char* name = "mask") {
  return in.get<MaskValue>(name).mask;
}

}  // namespace

void register_mask_nodes(graph::NodeImplRegistry& registry, NodeResources) {
  add_function_node(registry, "MaskToImage", [](const NodeInputs& in, NodeContext&) {
    return std::vector<Value>{Value::of("IMAGE", ImageValue{mask_to_image(mask_input(in))})};
  });
  add_function_node(registry, "ImageToMask", [](const NodeInputs& in, NodeContext&) {
    return mask_output(image_channel_mask(in.get<ImageValue>("image").pixels, in.get_string("channel")));
  });
  add_function_node(registry, "SolidMask", [](const NodeInputs& in, NodeContext&) {
    return mask_output(solid_mask(in.get_float("value"), in.get_int("width"), in.get_int("height")));
  });
  add_function_node(registry, "InvertMask", [](const NodeInputs& in, NodeContext&) {
    return mask_output(invert_mask(mask_input(in)));
  });
  add_function_node(registry, "CropMask", [](const NodeInputs& in, NodeContext&) {
    return mask_output(crop_mask(mask_input(in), in.get_int("x"), in.get_int("y"),
                                 in.get_int("width"), in.get_int("height")));
  });
  add_function_node(registry, "MaskComposite", [](const NodeInputs& in, NodeContext&) {
    return mask_output(composite_masks(mask_input(in, "destination"), mask_input(in, "source"),
                                       in.get_int("x"), in.get_int("y"), in.get_string("operation")));
  });
  add_function_node(registry, "FeatherMask", [](const NodeInputs& in, NodeContext&) {
    return mask_output(feather_mask(mask_input(in), in.get_int("left"), in.get_int("top"),
                                    in.get_int("right"), in.get_int("bottom")));
  });
  add_function_node(registry, "GrowMask", [](const NodeInputs& in, NodeContext&) {
    return mask_output(grow_mask(mask_input(in), in.get_int("expand"), in.get_bool("tapered_corners")));
  });
  add_function_node(registry, "ThresholdMask", [](const NodeInputs& in, NodeContext&) {
    return mask_output(threshold_mask(mask_input(in), in.get_float("value")));
  });
}

}  // namespace df::nodes
