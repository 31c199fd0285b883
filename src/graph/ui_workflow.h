// Workflows in the ComfyUI web frontend's own format (nodes, links, widget values, positions),
// made from an API-format prompt and the node schemas.
#pragma once

#include <nlohmann/json.hpp>

#include "graph/node_schema.h"

namespace df::graph {

// The UI-format workflow (version 0.4) that the frontend turns back into `prompt`: one node per
// prompt node with integer ids equal to the prompt's, link inputs as slots joined by links,
// constant inputs as widget values in schema order (a seed control widget after each input that
// declares control_after_generate, set to "randomize"; "image" after an upload combo), and nodes
// laid out left to right by link depth. Inputs the prompt leaves out take the schema default.
// Throws df::Error(kInvalidArgument) when the prompt is not valid against `schemas` (unknown
// class, non-integer node id, missing required input, link to a missing node or slot).
nlohmann::json ui_workflow_from_prompt(const nlohmann::json& prompt,
                                       const NodeSchemaRegistry& schemas);

}  // namespace df::graph
