// The registry of all built-in node implementations, pack by pack.
#include "nodes/builtin_nodes.h"

namespace df::nodes {

graph::NodeImplRegistry builtin_node_impls(NodeResources resources) {
  graph::NodeImplRegistry registry;
  register_loaders_nodes(registry, resources);
  register_conditioning_nodes(registry, resources);
  register_sampling_nodes(registry, resources);
  register_latent_nodes(registry, resources);
  register_image_nodes(registry, resources);
  register_primitives_nodes(registry, resources);
  register_output_nodes(registry, resources);
  register_mask_nodes(registry, resources);
  register_model_patches_nodes(registry, resources);
  register_controlnet_nodes(registry, resources);
  register_upscale_models_nodes(registry, resources);
  register_image_prompts_nodes(registry, resources);
  register_inpaint_nodes(registry, resources);
  register_flow_nodes(registry, resources);
  return registry;
}

}  // namespace df::nodes
