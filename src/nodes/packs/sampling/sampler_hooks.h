// The sampling pack's shared pieces: sampler hooks that report progress, honour cancellation and
// send latent previews, and the custom-sampling nodes' registration.
#pragma once

#include "engine/model_config.h"
#include "engine/samplers.h"
#include "graph/node_impl.h"
#include "nodes/builtin_nodes.h"
#include "nodes/run_environment.h"

namespace df::nodes {

// Hooks for a sampler run inside node `ctx`: progress per step, cancellation, and (when the
// environment wants them) a JPEG preview of each step's denoised estimate (LatentPreviewer: TAESD
// when installed in the models' vae_approx folder, else latent2rgb).
engine::SamplerHooks sampler_hooks(graph::NodeContext& ctx, NodeResources resources,
                                   engine::Family family);

// KSamplerSelect, the schedulers, sigma tools, noises, guiders and SamplerCustom(Advanced).
void register_custom_sampling_nodes(graph::NodeImplRegistry& registry, NodeResources resources);

}  // namespace df::nodes
