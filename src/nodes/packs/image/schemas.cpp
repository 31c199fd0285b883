// Image node schemas (load, scale, save, preview and pixel operations).
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

const char* const kSaveDescription = "Saves the input images to your ComfyUI output directory.";

NodeSchema load_image() {
  NodeSchema s;
  s.name = "LoadImage";
  s.display_name = "Load Image";
  s.category = "image";
  s.required = {context_combo("image", graph::ComboSource::kInputImages, {{"image_upload", true}})};
  set_outputs(s, {"IMAGE", "MASK"});
  return s;
}

NodeSchema save_image() {
  NodeSchema s;
  s.name = "SaveImage";
  s.display_name = "Save Image";
  s.description = kSaveDescription;
  s.category = "image";
  s.required = {
      typed("images", "IMAGE", tooltip("The images to save.")),
      typed("filename_prefix", "STRING",
            {{"default", "ComfyUI"},
             {"tooltip",
              "The prefix for the file to save. This may include formatting information such as "
              "%date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."}})};
  s.hidden = image_metadata_inputs();
  s.output_node = true;
  return s;
}

NodeSchema preview_image() {
  NodeSchema s;
  s.name = "PreviewImage";
  s.display_name = "Preview Image";
  s.description = kSaveDescription;  // ComfyUI's PreviewImage inherits SaveImage's description
  s.category = "image";
  s.required = {typed("images", "IMAGE")};
  s.hidden = image_metadata_inputs();
  s.output_node = true;
  return s;
}

NodeSchema image_scale() {
  NodeSchema s;
  s.name = "ImageScale";
  s.display_name = "Upscale Image";
  s.category = "image/upscaling";
  s.required = {
      typed("image", "IMAGE"),
      combo("upscale_method", {"nearest-exact", "bilinear", "area", "bicubic", "lanczos"}),
      typed("width", "INT", {{"default", 512}, {"min", 0}, {"max", kMaxResolution}, {"step", 1}}),
      typed("height", "INT", {{"default", 512}, {"min", 0}, {"max", kMaxResolution}, {"step", 1}}),
      combo("crop", {"disabled", "center"})};
  set_outputs(s, {"IMAGE"});
  return s;
}

}  // namespace

void add_image_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(load_image());
  registry.add(save_image());
  registry.add(preview_image());
  registry.add(image_scale());
}

}  // namespace df::nodes
