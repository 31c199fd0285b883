// Output node schemas beyond single images: SaveAnimatedWEBP (comfy_extras/nodes_images.py) and
// SaveImageWebsocket (custom_nodes/websocket_image_save.py).
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using nlohmann::json;
using namespace schema;

NodeSchema save_animated_webp() {
  NodeSchema s;
  s.name = "SaveAnimatedWEBP";
  s.display_name = "Save Animated WEBP";
  s.category = "image";
  s.python_module = "comfy_extras.nodes_images";
  s.required = {typed("images", "IMAGE", json::object()),
                typed("filename_prefix", "STRING", {{"default", "ComfyUI"}, {"multiline", false}}),
                float_input("fps", 6.0, 0.01, 1000.0, 0.01),
                typed("lossless", "BOOLEAN", {{"default", true}}),
                typed("quality", "INT", {{"default", 80}, {"min", 0}, {"max", 100}}),
                combo("method", {"default", "fastest", "slowest"}, json::object())};
  s.hidden = image_metadata_inputs();
  s.output_node = true;
  set_named_outputs(s, {"IMAGE"}, {"images"});
  return s;
}

// ComfyUI's bundled custom node: no display name of its own, no hidden inputs, no outputs.
NodeSchema save_image_websocket() {
  NodeSchema s;
  s.name = "SaveImageWebsocket";
  s.display_name = "SaveImageWebsocket";
  s.category = "image";
  s.python_module = "custom_nodes.websocket_image_save";
  s.required = {typed("images", "IMAGE")};
  s.output_node = true;
  return s;
}

}  // namespace

void add_output_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(save_animated_webp());
  registry.add(save_image_websocket());
}

}  // namespace df::nodes
