// The model router: picks the model and preset for a function and quality tier, falling back
// along the routing table's chain and saying why in plain words.
#include "registry/model_router.h"

#include <algorithm>

#include "core/error.h"
#include "core/numbers.h"

namespace df::registry {
namespace {

using nlohmann::json;

std::string family_in_words(const std::string& family) {
  if (family == "sd1") return "SD 1.5";
  if (family == "sd2") return "SD 2";
  if (family == "sdxl") return "SDXL";
  if (family == "sdxl_refiner") return "SDXL Refiner";
  if (family == "flux") return "FLUX.1 dev";
  if (family == "flux_schnell") return "FLUX.1 schnell";
  if (family == "sd3") return "SD3";
  if (family == "zimage") return "Z-Image";
  return family;
}

std::string model_in_words(const Model& model) {
  return model.name.empty() ? model.id : model.name;
}

std::string function_in_words(std::string_view function) {
  return function == "transform_image" ? "transform an image" : "create an image";
}

// What a candidate of the chain comes to: the model to use, or (usable null) why there is none.
struct Outcome {
  const Model* usable = nullptr;
  const Model* looked_at = nullptr;  // the model the reason is about, if any
  SkipReason reason = SkipReason::kNotInstalled;
  std::string message;
};

Outcome model_by_id(const std::string& id, const std::vector<Model>& models) {
  const auto found = std::find_if(models.begin(), models.end(), [&](const Model& model) {
    return model.id == id && model.kind == "checkpoints";
  });
  if (found == models.end()) {
    return {nullptr, nullptr, SkipReason::kNotInstalled, "Model '" + id + "' is not installed."};
  }
  const Model& model = *found;
  if (!model.installed) {
    return {nullptr, &model, SkipReason::kNotInstalled,
            model_in_words(model) + " is not installed (its files are missing)."};
  }
  if (!model.enabled) {
    return {nullptr, &model, SkipReason::kDisabled, model_in_words(model) + " is disabled."};
  }
  return {&model, &model, SkipReason::kNotInstalled, ""};
}

// Whether a model's weights are stored as a candidate's `weights` asks ("" asks nothing).
bool stored_as(const Model& model, const std::string& weights) {
  if (weights == "fp8") return model.weight_dtype == "fp8";
  if (weights == "full") return model.weight_dtype != "fp8";
  return true;
}

// Models stored as asked before others, real models before test models, then by id.
bool preferred(const Model* a, const Model* b, const std::string& weights) {
  if (stored_as(*a, weights) != stored_as(*b, weights)) return stored_as(*a, weights);
  if (a->test_model != b->test_model) return !a->test_model;
  return a->id < b->id;
}

Outcome model_of_family(const std::string& family, const std::string& weights,
                        const std::vector<Model>& models) {
  const Model* best_enabled = nullptr;
  const Model* best_disabled = nullptr;
  for (const Model& model : models) {
    if (model.family != family || model.kind != "checkpoints" || !model.installed) continue;
    const Model*& best = model.enabled ? best_enabled : best_disabled;
    if (best == nullptr || preferred(&model, best, weights)) best = &model;
  }
  if (best_enabled != nullptr) return {best_enabled, best_enabled, SkipReason::kNotInstalled, ""};
  if (best_disabled != nullptr) {
    return {nullptr, best_disabled, SkipReason::kDisabled,
            "Every installed " + family_in_words(family) + " model is disabled."};
  }
  return {nullptr, nullptr, SkipReason::kNotInstalled,
          "No " + family_in_words(family) + " model is installed."};
}

json skipped_to_json(const std::vector<SkippedCandidate>& skipped) {
  json list = json::array();
  for (const auto& candidate : skipped) {
    list.push_back({{"model", candidate.model_id},
                    {"family", candidate.candidate.family},
                    {"preset", candidate.candidate.preset},
                    {"reason", skip_reason_code(candidate.reason)},
                    {"message", candidate.message}});
  }
  return list;
}

std::string reasons_in_words(const std::vector<SkippedCandidate>& skipped) {
  std::string text;
  for (const auto& candidate : skipped) text += (text.empty() ? "" : " ") + candidate.message;
  return text;
}

std::string summary(const RoutingDecision& decision) {
  const std::string name = model_in_words(decision.model);
  if (decision.skipped.empty()) {
    return "Using " + name + " with the " + decision.preset_name + " preset.";
  }
  std::string reasons = reasons_in_words(decision.skipped);
  if (reasons.ends_with('.')) reasons.pop_back();
  return reasons + "; using " + name + " instead.";
}

}  // namespace

std::string_view skip_reason_code(SkipReason reason) {
  switch (reason) {
    case SkipReason::kNotInstalled:
      return "not_installed";
    case SkipReason::kDisabled:
      return "disabled";
    case SkipReason::kNeedsMoreMemory:
      return "needs_more_memory";
  }
  return "not_installed";
}

RoutingDecision route_request(const RoutingTable& table, std::string_view function,
                              std::string_view quality, const std::vector<Model>& models,
                              const DeviceProfile& device) {
  RoutingDecision decision;
  decision.function = function;
  decision.quality = quality;
  for (const RouteCandidate& candidate : table.chain(function, quality)) {
    Outcome outcome = candidate.model.empty()
                          ? model_of_family(candidate.family, candidate.weights, models)
                                              : model_by_id(candidate.model, models);
    const Preset preset = table.presets.preset_for(candidate.preset, device.device_class);
    if (outcome.usable != nullptr && preset.memory_mb > device.memory_mb) {
      outcome = {nullptr, outcome.usable, SkipReason::kNeedsMoreMemory,
                 model_in_words(*outcome.usable) + " needs about " +
                     bytes_in_words(preset.memory_mb << 20) + " but this device has " +
                     bytes_in_words(device.memory_mb << 20) + "."};
    }
    if (outcome.usable == nullptr) {
      decision.skipped.push_back({candidate, outcome.looked_at ? outcome.looked_at->id : "",
                                  outcome.reason, outcome.message});
      continue;
    }
    decision.model = *outcome.usable;
    decision.preset_name = candidate.preset;
    decision.preset = preset;
    decision.message = summary(decision);
    return decision;
  }
  throw Error(ErrorCode::kModelNotFound,
              "No installed model can " + function_in_words(function) + " at " +
                  std::string(quality) + " quality on this device. " +
                  reasons_in_words(decision.skipped),
              {{"function", function},
               {"quality", quality},
               {"skipped", skipped_to_json(decision.skipped)}});
}

json routing_decision_to_json(const RoutingDecision& decision) {
  return {{"function", decision.function},
          {"quality", decision.quality},
          {"model_id", decision.model.id},
          {"preset", decision.preset_name},
          {"preset_values", preset_to_json(decision.preset)},
          {"fell_back", decision.fell_back()},
          {"skipped", skipped_to_json(decision.skipped)},
          {"message", decision.message}};
}

}  // namespace df::registry
