// Image node schemas: load, scale, save and preview, and ComfyUI's pixel operations on images.
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

const char* const kSaveDescription = "Saves the input images to your ComfyUI output directory.";
const std::vector<std::string> kUpscaleMethods = {"nearest-exact", "bilinear", "area", "bicubic",
                                                  "lanczos"};
const char* const kPostProcessing = "comfy_extras.nodes_post_processing";

NodeSchema image_node(const char* name, const char* display_name, const char* category,
                      const char* python_module = "nodes") {
  NodeSchema s;
  s.name = name;
  s.display_name = display_name;
  s.category = category;
  s.python_module = python_module;
  return s;
}

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
      combo("upscale_method", kUpscaleMethods),
      typed("width", "INT", {{"default", 512}, {"min", 0}, {"max", kMaxResolution}, {"step", 1}}),
      typed("height", "INT", {{"default", 512}, {"min", 0}, {"max", kMaxResolution}, {"step", 1}}),
      combo("crop", {"disabled", "center"})};
  set_outputs(s, {"IMAGE"});
  return s;
}

NodeSchema load_image_mask() {
  NodeSchema s = image_node("LoadImageMask", "Load Image (as Mask)", "mask");
  s.required = {context_combo("image", graph::ComboSource::kInputImages, {{"image_upload", true}}),
                combo("channel", {"alpha", "red", "green", "blue"})};
  set_outputs(s, {"MASK"});
  return s;
}

NodeSchema image_scale_by() {
  NodeSchema s = image_node("ImageScaleBy", "Upscale Image By", "image/upscaling");
  s.required = {typed("image", "IMAGE"), combo("upscale_method", kUpscaleMethods),
                float_input("scale_by", 1.0, 0.01, 8.0, 0.01)};
  set_outputs(s, {"IMAGE"});
  return s;
}

NodeSchema image_invert() {
  NodeSchema s = image_node("ImageInvert", "Invert Image", "image");
  s.required = {typed("image", "IMAGE")};
  set_outputs(s, {"IMAGE"});
  return s;
}

NodeSchema image_batch() {
  NodeSchema s = image_node("ImageBatch", "Batch Images", "image");
  s.required = {typed("image1", "IMAGE"), typed("image2", "IMAGE")};
  set_outputs(s, {"IMAGE"});
  return s;
}

NodeSchema image_pad_for_outpaint() {
  NodeSchema s = image_node("ImagePadForOutpaint", "Pad Image for Outpainting", "image");
  s.required = {typed("image", "IMAGE"),
                int_stepped("left", 0, 0, kMaxResolution, 8),
                int_stepped("top", 0, 0, kMaxResolution, 8),
                int_stepped("right", 0, 0, kMaxResolution, 8),
                int_stepped("bottom", 0, 0, kMaxResolution, 8),
                int_stepped("feathering", 40, 0, kMaxResolution)};
  set_outputs(s, {"IMAGE", "MASK"});
  return s;
}

NodeSchema empty_image() {
  NodeSchema s = image_node("EmptyImage", "EmptyImage", "image");
  s.required = {int_stepped("width", 512, 1, kMaxResolution),
                int_stepped("height", 512, 1, kMaxResolution),
                int_input("batch_size", 1, 1, 4096),
                typed("color", "INT",
                      {{"default", 0}, {"min", 0}, {"max", 0xFFFFFF}, {"step", 1}, {"display", "color"}})};
  set_outputs(s, {"IMAGE"});
  return s;
}

NodeSchema image_composite_masked() {
  NodeSchema s = image_node("ImageCompositeMasked", "ImageCompositeMasked", "image",
                            "comfy_extras.nodes_mask");
  s.required = {typed("destination", "IMAGE"), typed("source", "IMAGE"),
                int_stepped("x", 0, 0, kMaxResolution), int_stepped("y", 0, 0, kMaxResolution),
                typed("resize_source", "BOOLEAN", {{"default", false}})};
  s.optional = {typed("mask", "MASK")};
  set_outputs(s, {"IMAGE"});
  return s;
}

NodeSchema image_blend() {
  NodeSchema s = image_node("ImageBlend", "ImageBlend", "image/postprocessing", kPostProcessing);
  s.required = {typed("image1", "IMAGE"), typed("image2", "IMAGE"),
                float_input("blend_factor", 0.5, 0.0, 1.0, 0.01),
                combo("blend_mode", {"normal", "multiply", "screen", "overlay", "soft_light", "difference"})};
  set_outputs(s, {"IMAGE"});
  return s;
}

NodeSchema image_blur() {
  NodeSchema s = image_node("ImageBlur", "ImageBlur", "image/postprocessing", kPostProcessing);
  s.required = {typed("image", "IMAGE"), int_stepped("blur_radius", 1, 1, 31),
                float_input("sigma", 1.0, 0.1, 10.0, 0.1)};
  set_outputs(s, {"IMAGE"});
  return s;
}

NodeSchema image_sharpen() {
  NodeSchema s = image_node("ImageSharpen", "ImageSharpen", "image/postprocessing", kPostProcessing);
  s.required = {typed("image", "IMAGE"), int_stepped("sharpen_radius", 1, 1, 31),
                float_input("sigma", 1.0, 0.1, 10.0, 0.01),
                float_input("alpha", 1.0, 0.0, 5.0, 0.01)};
  set_outputs(s, {"IMAGE"});
  return s;
}

NodeSchema image_scale_to_total_pixels() {
  NodeSchema s = image_node("ImageScaleToTotalPixels", "ImageScaleToTotalPixels", "image/upscaling",
                            kPostProcessing);
  s.required = {typed("image", "IMAGE"), combo("upscale_method", kUpscaleMethods),
                float_input("megapixels", 1.0, 0.01, 16.0, 0.01)};
  set_outputs(s, {"IMAGE"});
  return s;
}

NodeSchema canny() {
  NodeSchema s = image_node("Canny", "Canny", "image/preprocessors", "comfy_extras.nodes_canny");
  s.required = {typed("image", "IMAGE"), float_input("low_threshold", 0.4, 0.01, 0.99, 0.01),
                float_input("high_threshold", 0.8, 0.01, 0.99, 0.01)};
  set_outputs(s, {"IMAGE"});
  return s;
}

NodeSchema image_crop() {
  NodeSchema s = image_node("ImageCrop", "ImageCrop", "image/transform", "comfy_extras.nodes_images");
  s.required = {typed("image", "IMAGE"), int_stepped("width", 512, 1, kMaxResolution),
                int_stepped("height", 512, 1, kMaxResolution), int_stepped("x", 0, 0, kMaxResolution),
                int_stepped("y", 0, 0, kMaxResolution)};
  set_outputs(s, {"IMAGE"});
  return s;
}

}  // namespace

void add_image_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(load_image());
  registry.add(save_image());
  registry.add(preview_image());
  registry.add(image_scale());
  registry.add(load_image_mask());
  registry.add(image_scale_by());
  registry.add(image_invert());
  registry.add(image_batch());
  registry.add(image_pad_for_outpaint());
  registry.add(empty_image());
  registry.add(image_composite_masked());
  registry.add(image_blend());
  registry.add(image_blur());
  registry.add(image_sharpen());
  registry.add(image_scale_to_total_pixels());
  registry.add(canny());
  registry.add(image_crop());
}

}  // namespace df::nodes
