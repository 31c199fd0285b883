// The routing table: for each function and quality tier, the ordered models and presets to try.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "registry/presets.h"

namespace df::registry {

// What a job asks for instead of a model: the functions ("create_image": text to image,
// "transform_image": image to image) and the quality tiers ("low", "standard", "high").
const std::vector<std::string>& routing_functions();
const std::vector<std::string>& routing_qualities();
// The model families a route may name (those of df::Model::family).
const std::vector<std::string>& routing_families();

// One model to try: a model id, or any model of a family; and the preset to run it with.
struct RouteCandidate {
  std::string model;   // a model id; "" when `family` is set
  std::string family;  // one of routing_families(); "" when `model` is set
  std::string preset;  // a preset of the table
  // Among a family's models, prefer those whose diffusion weights are stored so: "fp8", "full"
  // (bf16, fp16 or fp32), or "" (no preference).
  std::string weights = {};
  bool operator==(const RouteCandidate&) const = default;
};

// The table: presets by name, and for every function and quality a non-empty chain of candidates,
// first choice first. A parsed table is complete (every function x quality) and its chains name
// only its own presets.
struct RoutingTable {
  PresetCatalog presets;
  // function -> quality -> chain
  std::map<std::string, std::map<std::string, std::vector<RouteCandidate>>> routes;
  // Model ids each native runner loads when it starts, to keep them warm (`prewarm:`; none by
  // default).
  std::vector<std::string> prewarm;

  // The chain for `function` at `quality`. Throws Error(kInvalidArgument) for an unknown function
  // or quality, naming the valid ones (details.field: "function" or "quality").
  const std::vector<RouteCandidate>& chain(std::string_view function,
                                           std::string_view quality) const;

  bool operator==(const RoutingTable&) const = default;
};

// The built-in table, used when the data directory has no routing file. docs/routing.example.yaml
// spells out the same table (a unit test holds them equal):
//   create_image and transform_image alike:
//     low:      FLUX.1 schnell with flux-schnell, else sd1 with sd15-fast, else sdxl with sdxl-fast
//     standard: FLUX.1 dev (fp8 weights preferred) with flux-dev-fp8, else sd1 with
//               sd15-standard, else sdxl with sdxl-fast
//     high:     FLUX.1 dev (full weights preferred) with flux-dev, else sdxl with sdxl-high,
//               else sd1 with sd15-high
//   (FLUX presets need more memory than a CPU machine usually has: CPUs fall back to SD.)
const RoutingTable& default_routing_table();

// Where the service looks for the table: <data dir>/config/routing.yaml.
std::filesystem::path routing_table_path(const std::filesystem::path& data_dir);

// Parses a routing table (the format of docs/routing.example.yaml). `source` names the text in
// errors (the file's path). Throws Error(kInvalidArgument) for YAML syntax errors and for
// anything missing, unknown or out of range; the message reads "<source>:<line>: <what is
// wrong>" and details carry {file, line, column} (1-based).
RoutingTable parse_routing_table(std::string_view yaml, const std::string& source);

// The table in `file`; Error(kIo) when it cannot be read, parse errors as above.
RoutingTable load_routing_table(const std::filesystem::path& file);

// The table in `file` when that file exists, else default_routing_table(). Call it once at start
// with routing_table_path(data_dir): a bad file fails the start with the parse error.
RoutingTable load_routing_table_or_default(const std::filesystem::path& file);

}  // namespace df::registry
