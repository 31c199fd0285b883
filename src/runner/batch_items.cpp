// A run's batch items and the graph each of them runs.
#include "runner/batch_items.h"

#include "core/error.h"

namespace df::runner {

using nlohmann::json;

std::vector<RunItem> batch_items(const RunRequest& run) {
  if (run.items.empty()) return {RunItem{0, std::nullopt}};
  if (run.items.size() > 100) throw Error(ErrorCode::kProtocol, "'items' must be a list of 1 to 100 items");
  return run.items;
}

json graph_for_item(const json& graph, const RunItem& item) {
  json copy = graph;
  if (!item.seed) return copy;
  for (auto& [id, node] : copy.items()) {
    if (!node.is_object() || !node.contains("inputs") || !node["inputs"].is_object()) continue;
    const std::string type = node.value("class_type", "");
    const char* input = type == "KSampler" ? "seed" : type == "KSamplerAdvanced" ? "noise_seed" : nullptr;
    if (input && !node["inputs"].value(input, json()).is_array()) node["inputs"][input] = *item.seed;
  }
  return copy;
}

}  // namespace df::runner
