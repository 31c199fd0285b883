// Validating ComfyUI API-format graphs against the node schemas, the installed models and inputs.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/node_schema.h"
#include "graph/validate.h"
#include "registry/model_registry.h"

namespace df::api {

// What combo inputs may hold here: installed checkpoints, images in the input folder, samplers and
// schedulers.
graph::SchemaContext schema_context(registry::ModelRegistry& models, const std::string& input_dir);

// Parses and validates a graph the way ComfyUI's POST /prompt does. A graph that cannot even be
// parsed gives a result with ComfyUI's "invalid_prompt" error.
graph::ValidationResult validate_graph(const nlohmann::json& graph, registry::ModelRegistry& models,
                                       const std::string& input_dir,
                                       const std::vector<std::string>& partial_targets = {});

}  // namespace df::api
