// The model router: picks the model and preset for a function and quality tier, falling back
// along the routing table's chain and saying why in plain words.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "registry/device_profile.h"
#include "registry/presets.h"
#include "registry/routing_table.h"

namespace df::registry {

// Why a candidate of the chain was passed over. The codes are stable (API and events).
enum class SkipReason {
  kNotInstalled,     // "not_installed": no such model, or its files are missing
  kDisabled,         // "disabled": installed but switched off
  kNeedsMoreMemory,  // "needs_more_memory": its preset needs more memory than the device has
};
std::string_view skip_reason_code(SkipReason reason);

struct SkippedCandidate {
  RouteCandidate candidate;
  std::string model_id;  // the model that was looked at; "" when none was found
  SkipReason reason = SkipReason::kNotInstalled;
  std::string message;   // one plain sentence, e.g. "No SDXL model is installed."
};

struct RoutingDecision {
  std::string function;
  std::string quality;
  Model model;              // the chosen model (id, ckpt_name, parameters_schema, ...)
  std::string preset_name;  // the chosen candidate's preset
  Preset preset;            // that preset resolved for the device's class
  std::vector<SkippedCandidate> skipped;  // candidates before the chosen one, in chain order
  // One plain summary: "Using SD 1.5 with the sd15-standard preset." or, after a fallback,
  // "SDXL Base needs about 9 GB but this device has 8 GB; using SD 1.5 instead."
  std::string message;
  bool fell_back() const { return !skipped.empty(); }
};

// Picks the first candidate of table.chain(function, quality) whose model is installed, enabled
// and whose preset (resolved for device.device_class) fits in device.memory_mb. A "family"
// candidate takes an installed, enabled checkpoint of that family, preferring real models over
// test models, then the smallest id. `models` should be every registry entry
// (ModelRegistry::all()): entries that are not installed or are disabled are what makes the
// reasons precise; only kind "checkpoints" is considered. Pure: no I/O.
//
// Throws Error(kInvalidArgument) for an unknown function or quality (details.field), and
// Error(kModelNotFound) when no candidate can run, with every candidate's reason in
// details.skipped ([{model, family, preset, reason, message}]) and details.function/quality.
// kModelNotFound rather than kUnavailable: nothing is down and retrying will not help; the user
// has to install or enable a model (or use a bigger device), which is what model_not_found (404)
// already tells a client for a model named explicitly.
RoutingDecision route_request(const RoutingTable& table, std::string_view function,
                              std::string_view quality, const std::vector<Model>& models,
                              const DeviceProfile& device);

// The decision as the job records it: {"function", "quality", "model_id", "preset",
// "preset_values" (preset_to_json), "fell_back", "skipped": [{model, family, preset, reason,
// message}], "message"}.
nlohmann::json routing_decision_to_json(const RoutingDecision& decision);

}  // namespace df::registry
