// Latent node schemas: empty latents, VAE coding (whole and tiled), resizing, compositing, batches.
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

NodeSchema empty_latent_image() {
  NodeSchema s;
  s.name = "EmptyLatentImage";
  s.display_name = "Empty Latent Image";
  s.description = "Create a new batch of empty latent images to be denoised via sampling.";
  s.category = "latent";
  s.required = {
      typed("width", "INT",
            {{"default", 512},
             {"min", 16},
             {"max", kMaxResolution},
             {"step", 8},
             {"tooltip", "The width of the latent images in pixels."}}),
      typed("height", "INT",
            {{"default", 512},
             {"min", 16},
             {"max", kMaxResolution},
             {"step", 8},
             {"tooltip", "The height of the latent images in pixels."}}),
      typed("batch_size", "INT",
            {{"default", 1},
             {"min", 1},
             {"max", 4096},
             {"tooltip", "The number of latent images in the batch."}})};
  set_outputs(s, {"LATENT"});
  s.output_tooltips = {"The empty latent image batch."};
  return s;
}

NodeSchema vae_decode() {
  NodeSchema s;
  s.name = "VAEDecode";
  s.display_name = "VAE Decode";
  s.description = "Decodes latent images back into pixel space images.";
  s.category = "latent";
  s.required = {typed("samples", "LATENT", tooltip("The latent to be decoded.")),
                typed("vae", "VAE", tooltip("The VAE model used for decoding the latent."))};
  set_outputs(s, {"IMAGE"});
  s.output_tooltips = {"The decoded image."};
  return s;
}

NodeSchema vae_encode() {
  NodeSchema s;
  s.name = "VAEEncode";
  s.display_name = "VAE Encode";
  s.category = "latent";
  s.required = {typed("pixels", "IMAGE"), typed("vae", "VAE")};
  set_outputs(s, {"LATENT"});
  return s;
}

const std::vector<std::string> kLatentUpscaleMethods = {"nearest-exact", "bilinear", "area",
                                                        "bicubic", "bislerp"};
const char* const kMaskModule = "comfy_extras.nodes_mask";
const char* const kLatentModule = "comfy_extras.nodes_latent";

// A latent position or size in pixels: 0..MAX_RESOLUTION in steps of 8.
graph::InputSpec pixel_offset(std::string name, int64_t default_value = 0) {
  return int_input(std::move(name), default_value, 0, kMaxResolution, 8);
}

NodeSchema latent_upscale() {
  NodeSchema s;
  s.name = "LatentUpscale";
  s.display_name = "Upscale Latent";
  s.category = "latent";
  s.required = {typed("samples", "LATENT"), combo("upscale_method", kLatentUpscaleMethods),
                pixel_offset("width", 512), pixel_offset("height", 512),
                combo("crop", {"disabled", "center"})};
  set_outputs(s, {"LATENT"});
  return s;
}

NodeSchema latent_upscale_by() {
  NodeSchema s;
  s.name = "LatentUpscaleBy";
  s.display_name = "Upscale Latent By";
  s.category = "latent";
  s.required = {typed("samples", "LATENT"), combo("upscale_method", kLatentUpscaleMethods),
                float_input("scale_by", 1.5, 0.01, 8.0, 0.01)};
  set_outputs(s, {"LATENT"});
  return s;
}

NodeSchema latent_composite() {
  NodeSchema s;
  s.name = "LatentComposite";
  s.display_name = "Latent Composite";
  s.category = "latent";
  s.required = {typed("samples_to", "LATENT"), typed("samples_from", "LATENT"),
                pixel_offset("x"), pixel_offset("y"), pixel_offset("feather")};
  set_outputs(s, {"LATENT"});
  return s;
}

NodeSchema latent_composite_masked() {
  NodeSchema s;
  s.name = "LatentCompositeMasked";
  s.display_name = "Latent Composite Masked";
  s.description =
      "Composites a source latent into a destination latent using an optional mask and offset "
      "coordinates.";
  s.category = "latent";
  s.python_module = kMaskModule;
  graph::InputSpec x = pixel_offset("x"), y = pixel_offset("y");
  x.options["tooltip"] = "Horizontal pixel offset (in 8-pixel steps) for positioning the source latent.";
  y.options["tooltip"] = "Vertical pixel offset (in 8-pixel steps) for positioning the source latent.";
  s.required = {
      typed("destination", "LATENT",
            tooltip("The background latent image into which the source latent will be composited.")),
      typed("source", "LATENT",
            tooltip("The foreground latent image to composite onto the destination latent.")),
      x,
      y,
      typed("resize_source", "BOOLEAN",
            {{"default", false},
             {"tooltip",
              "If enabled, resizes the source latent to match the dimensions of the destination "
              "latent."}})};
  s.optional = {typed(
      "mask", "MASK",
      tooltip("Optional mask specifying blending intensity (1.0 = source, 0.0 = destination)."))};
  set_outputs(s, {"LATENT"});
  s.output_tooltips = {"The composited latent output."};
  return s;
}

NodeSchema latent_blend() {
  NodeSchema s;
  s.name = "LatentBlend";
  s.display_name = "Latent Blend";
  s.category = "_for_testing";
  s.required = {typed("samples1", "LATENT"), typed("samples2", "LATENT"),
                // ComfyUI writes this range with integer bounds: {"min": 0, "max": 1}.
                typed("blend_factor", "FLOAT",
                      {{"default", 0.5}, {"min", 0}, {"max", 1}, {"step", 0.01}})};
  set_outputs(s, {"LATENT"});
  return s;
}

NodeSchema repeat_latent_batch() {
  NodeSchema s;
  s.name = "RepeatLatentBatch";
  s.display_name = "Repeat Latent Batch";
  s.category = "latent/batch";
  s.required = {typed("samples", "LATENT"), int_input("amount", 1, 1, 64)};
  set_outputs(s, {"LATENT"});
  return s;
}

NodeSchema latent_from_batch() {
  NodeSchema s;
  s.name = "LatentFromBatch";
  s.display_name = "Latent From Batch";
  s.category = "latent/batch";
  s.required = {typed("samples", "LATENT"), int_input("batch_index", 0, 0, 63),
                int_input("length", 1, 1, 64)};
  set_outputs(s, {"LATENT"});
  return s;
}

NodeSchema latent_batch() {
  NodeSchema s;
  s.name = "LatentBatch";
  s.display_name = "LatentBatch";  // ComfyUI names none; the frontend shows the class name
  s.description = "Combine two latent representations into a single batch.";
  s.category = "latent/batch";
  s.python_module = kLatentModule;
  s.required = {typed("samples1", "LATENT", tooltip("First latent input for the batch.")),
                typed("samples2", "LATENT", tooltip("Second latent input to append to the batch."))};
  set_outputs(s, {"LATENT"});
  s.output_tooltips = {"Batched latent representation."};
  return s;
}

// The spatial and (video-only) temporal tiling inputs of VAEDecodeTiled and VAEEncodeTiled.
std::vector<graph::InputSpec> tiling_inputs(int64_t tile_step, const char* verb) {
  const std::string frames = std::string("Only used for video VAEs: Amount of frames to ") + verb +
                             " at a time.";
  return {int_input("tile_size", 512, 64, 4096, tile_step),
          int_input("overlap", 64, 0, 4096, 32),
          typed("temporal_size", "INT",
                {{"default", 64}, {"min", 8}, {"max", 4096}, {"step", 4}, {"tooltip", frames}}),
          typed("temporal_overlap", "INT",
                {{"default", 8},
                 {"min", 4},
                 {"max", 4096},
                 {"step", 4},
                 {"tooltip", "Only used for video VAEs: Amount of frames to overlap."}})};
}

NodeSchema vae_decode_tiled() {
  NodeSchema s;
  s.name = "VAEDecodeTiled";
  s.display_name = "VAE Decode (Tiled)";
  s.category = "_for_testing";
  s.required = {typed("samples", "LATENT"), typed("vae", "VAE")};
  for (auto& spec : tiling_inputs(32, "decode")) s.required.push_back(std::move(spec));
  set_outputs(s, {"IMAGE"});
  return s;
}

NodeSchema vae_encode_tiled() {
  NodeSchema s;
  s.name = "VAEEncodeTiled";
  s.display_name = "VAE Encode (Tiled)";
  s.category = "_for_testing";
  s.required = {typed("pixels", "IMAGE"), typed("vae", "VAE")};
  for (auto& spec : tiling_inputs(64, "encode")) s.required.push_back(std::move(spec));
  set_outputs(s, {"LATENT"});
  return s;
}

NodeSchema vae_encode_for_inpaint() {
  NodeSchema s;
  s.name = "VAEEncodeForInpaint";
  s.display_name = "VAE Encode (for Inpainting)";
  s.category = "latent/inpaint";
  s.required = {typed("pixels", "IMAGE"), typed("vae", "VAE"), typed("mask", "MASK"),
                typed("grow_mask_by", "INT", {{"default", 6}, {"min", 0}, {"max", 64}, {"step", 1}})};
  set_outputs(s, {"LATENT"});
  return s;
}

NodeSchema set_latent_noise_mask() {
  NodeSchema s;
  s.name = "SetLatentNoiseMask";
  s.display_name = "Set Latent Noise Mask";
  s.category = "latent/inpaint";
  s.required = {typed("samples", "LATENT"), typed("mask", "MASK")};
  set_outputs(s, {"LATENT"});
  return s;
}

}  // namespace

void add_latent_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(empty_latent_image());
  registry.add(vae_decode());
  registry.add(vae_encode());
  registry.add(latent_upscale());
  registry.add(latent_upscale_by());
  registry.add(latent_composite());
  registry.add(latent_composite_masked());
  registry.add(latent_blend());
  registry.add(repeat_latent_batch());
  registry.add(latent_from_batch());
  registry.add(latent_batch());
  registry.add(vae_decode_tiled());
  registry.add(vae_encode_tiled());
  registry.add(vae_encode_for_inpaint());
  registry.add(set_latent_noise_mask());
}

}  // namespace df::nodes
