// Loader node schemas (checkpoints, VAEs, LoRAs, text encoders), as ComfyUI shows them.
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

NodeSchema checkpoint_loader_simple() {
  NodeSchema s;
  s.name = "CheckpointLoaderSimple";
  s.display_name = "Load Checkpoint";
  s.description =
      "Loads a diffusion model checkpoint, diffusion models are used to denoise latents.";
  s.category = "loaders";
  s.required = {context_combo("ckpt_name", graph::ComboSource::kCheckpoints,
                              tooltip("The name of the checkpoint (model) to load."))};
  set_outputs(s, {"MODEL", "CLIP", "VAE"});
  s.output_tooltips = {
      "The model used for denoising latents.",
      "The CLIP model used for encoding text prompts.",
      "The VAE model used for encoding and decoding images to and from latent space."};
  return s;
}

}  // namespace

void add_loaders_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(checkpoint_loader_simple());
}

}  // namespace df::nodes
