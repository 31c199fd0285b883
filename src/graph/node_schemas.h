// The built-in node classes (ComfyUI's core image-generation nodes) and the sampler lists.
#pragma once

#include <string>
#include <vector>

#include "graph/node_schema.h"

namespace df::graph {

// ComfyUI's MAX_RESOLUTION: the largest width/height a node accepts.
inline constexpr int kMaxResolution = 16384;

// The sampler names the engine implements, in ComfyUI's KSampler.SAMPLERS order.
const std::vector<std::string>& supported_samplers();
// The scheduler names the engine implements, in ComfyUI's KSampler.SCHEDULERS order.
const std::vector<std::string>& supported_schedulers();

// CheckpointLoaderSimple, CLIPTextEncode, EmptyLatentImage, KSampler, KSamplerAdvanced,
// VAEDecode, VAEEncode, LoadImage, SaveImage, PreviewImage and ImageScale with ComfyUI's texts,
// defaults and limits. Checkpoints, input images, samplers and schedulers come from the
// SchemaContext.
NodeSchemaRegistry builtin_node_schemas();

}  // namespace df::graph
