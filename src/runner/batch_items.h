// A run's batch: its items (index and seed) and the graph each item runs, shared by every runner.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "runner/protocol_messages.h"

namespace df::runner {

// The items of `run`: its own (1 to 100, else Error(kProtocol)), or one item (index 0) that keeps
// the graph's own seeds when it lists none.
std::vector<RunItem> batch_items(const RunRequest& run);

// A copy of `graph` whose sampler nodes (KSampler's seed, KSamplerAdvanced's noise_seed, when not
// linked) take the item's seed; the graph itself when the item has none.
nlohmann::json graph_for_item(const nlohmann::json& graph, const RunItem& item);

}  // namespace df::runner
