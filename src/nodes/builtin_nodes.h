// Registers the implementations of the built-in node packs (src/nodes/packs/<pack>/nodes.cpp).
#pragma once

#include "graph/node_impl.h"
#include "graph/validate.h"
#include "nodes/checkpoint_store.h"
#include "nodes/run_environment.h"

namespace df::nodes {

// What node implementations share: the model files and caches, and the run's environment. Both
// must outlive the registry and the executor using it; the environment may change between runs.
struct NodeResources {
  CheckpointStore& models;
  const RunEnvironment& env;
};

// Every class of builtin_node_schemas().
graph::NodeImplRegistry builtin_node_impls(NodeResources resources);

// One function a pack exports.
void register_loaders_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_conditioning_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_sampling_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_latent_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_image_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_primitives_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_output_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_mask_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_model_patches_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_controlnet_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_upscale_models_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_image_prompts_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_inpaint_nodes(graph::NodeImplRegistry& registry, NodeResources resources);
void register_flow_nodes(graph::NodeImplRegistry& registry, NodeResources resources);

// Checks beyond the schemas (LoadImage's file must exist in the input folder).
graph::ValidationHooks builtin_validation_hooks(const RunEnvironment& env);

// The image files LoadImage offers (sorted, relative to the input folder).
std::vector<std::string> list_input_images(const std::string& input_dir);

}  // namespace df::nodes
