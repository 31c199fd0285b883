// The built-in node packs' schemas (no libtorch): what /object_info lists and validation checks.
#pragma once

#include <string>
#include <vector>

#include "graph/node_schema.h"

namespace df::nodes {

// The sampler names the engine implements, in ComfyUI's KSampler.SAMPLERS order.
const std::vector<std::string>& supported_samplers();
// The scheduler names the engine implements, in ComfyUI's KSampler.SCHEDULERS order.
const std::vector<std::string>& supported_schedulers();

// Every built-in node class with ComfyUI's texts, defaults and limits, pack by pack. Model
// files, input images, samplers and schedulers come from the SchemaContext.
graph::NodeSchemaRegistry builtin_node_schemas();

// One function a pack (src/nodes/packs/<pack>/schemas.cpp) exports.
void add_loaders_schemas(graph::NodeSchemaRegistry& registry);
void add_conditioning_schemas(graph::NodeSchemaRegistry& registry);
void add_sampling_schemas(graph::NodeSchemaRegistry& registry);
void add_latent_schemas(graph::NodeSchemaRegistry& registry);
void add_image_schemas(graph::NodeSchemaRegistry& registry);
void add_primitives_schemas(graph::NodeSchemaRegistry& registry);
void add_output_schemas(graph::NodeSchemaRegistry& registry);
void add_mask_schemas(graph::NodeSchemaRegistry& registry);
void add_model_patches_schemas(graph::NodeSchemaRegistry& registry);
void add_controlnet_schemas(graph::NodeSchemaRegistry& registry);
void add_upscale_models_schemas(graph::NodeSchemaRegistry& registry);
void add_image_prompts_schemas(graph::NodeSchemaRegistry& registry);
void add_inpaint_schemas(graph::NodeSchemaRegistry& registry);
void add_flow_schemas(graph::NodeSchemaRegistry& registry);

}  // namespace df::nodes
