// Small builders for node schemas, shared by every node pack's schemas.cpp (no libtorch).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/node_schema.h"

namespace df::nodes::schema {

// ComfyUI's MAX_RESOLUTION: the largest width/height a node accepts.
inline constexpr int kMaxResolution = 16384;
// The largest seed ComfyUI's seed widgets take (0xffffffffffffffff).
inline const nlohmann::json kSeedMax = std::numeric_limits<uint64_t>::max();

// An input of a value or link type ("INT", "MODEL", ...) with its options (null: none).
graph::InputSpec typed(std::string name, std::string type, nlohmann::json options = nullptr);
// A combo with fixed choices.
graph::InputSpec combo(std::string name, std::vector<std::string> choices,
                       nlohmann::json options = nullptr);
// A combo whose choices come from the run-time context (checkpoints, images, samplers, ...).
graph::InputSpec context_combo(std::string name, graph::ComboSource source,
                               nlohmann::json options = nullptr);
// A combo of the files in a ComfyUI model folder ("vae", "loras", "embeddings", ...).
graph::InputSpec model_file_combo(std::string name, std::string folder,
                                  nlohmann::json options = nullptr);
// {"tooltip": text}
nlohmann::json tooltip(const char* text);
// An INT input with default, min, max (and step when not 1).
graph::InputSpec int_input(std::string name, int64_t default_value, int64_t min, int64_t max,
                           int64_t step = 1);
// An INT input whose options always name the step (most of ComfyUI's write "step": 1 too).
graph::InputSpec int_stepped(std::string name, int64_t default_value, int64_t min, int64_t max,
                             int64_t step = 1);
// A FLOAT input with default, min, max and step (ComfyUI's widget options in that order).
graph::InputSpec float_input(std::string name, double default_value, double min, double max,
                             double step);

// Fills output, output_name (same as the types) and output_is_list (all false).
void set_outputs(graph::NodeSchema& schema, std::vector<std::string> types);
// Outputs with names of their own.
void set_named_outputs(graph::NodeSchema& schema, std::vector<std::string> types,
                       std::vector<std::string> names);
// PROMPT and EXTRA_PNGINFO: the hidden inputs of nodes that embed the workflow in their files.
std::vector<graph::HiddenInput> image_metadata_inputs();

}  // namespace df::nodes::schema
