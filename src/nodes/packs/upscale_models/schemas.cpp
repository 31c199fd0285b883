// Upscale model node schemas (ComfyUI's comfy_extras/nodes_upscale_model.py): load an ESRGAN-style
// model from models/upscale_models and upscale images with it.
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

const char* const kModule = "comfy_extras.nodes_upscale_model";

NodeSchema upscale_model_loader() {
  NodeSchema s;
  s.name = "UpscaleModelLoader";
  s.display_name = "Load Upscale Model";
  s.category = "loaders";
  s.python_module = kModule;
  s.required = {model_file_combo("model_name", "upscale_models")};
  set_outputs(s, {"UPSCALE_MODEL"});
  return s;
}

NodeSchema image_upscale_with_model() {
  NodeSchema s;
  s.name = "ImageUpscaleWithModel";
  s.display_name = "Upscale Image (using Model)";
  s.category = "image/upscaling";
  s.python_module = kModule;
  s.required = {typed("upscale_model", "UPSCALE_MODEL"), typed("image", "IMAGE")};
  set_outputs(s, {"IMAGE"});
  return s;
}

}  // namespace

void add_upscale_models_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(upscale_model_loader());
  registry.add(image_upscale_with_model());
}

}  // namespace df::nodes
