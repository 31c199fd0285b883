// Reads the settings that produced a SaveImage node's images out of the API-format graph.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "image/generation_parameters.h"

namespace df::nodes {

// Follows the save node's images back through VAEDecode to the sampler that made the latent and
// collects prompt, negative prompt, seed, steps, sampler, scheduler, cfg, denoise and checkpoint
// name. Fields it cannot trace (a graph of other shape) are left empty. Width/height and the
// model hash are not in the graph: the caller fills them.
GenerationParameters trace_generation(const nlohmann::json& graph, const std::string& save_node_id);

}  // namespace df::nodes
