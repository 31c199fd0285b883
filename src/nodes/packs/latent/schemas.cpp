// Latent node schemas (empty latents, VAE encode/decode, latent transforms).
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

}  // namespace

void add_latent_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(empty_latent_image());
  registry.add(vae_decode());
  registry.add(vae_encode());
}

}  // namespace df::nodes
