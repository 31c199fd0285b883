// The GPU memory budget for starting a runner or backend on a device.
#include "gpu/start_budget.h"

#include <algorithm>

#include "core/numbers.h"

namespace df::gpu {
namespace {

int64_t held(const StartBudgetInput& input, bool busy) {
  int64_t sum = 0;
  for (const auto& one : input.started) {
    if (one.busy == busy) sum += std::max<int64_t>(0, one.held_bytes);
  }
  return sum;
}

}  // namespace

StartBudgetDecision decide_start(const StartBudgetInput& input) {
  if (input.need_bytes <= input.free_bytes) return {StartAction::kStart, {}};
  std::vector<StartedOnDevice> idle;
  for (const auto& one : input.started) {
    if (!one.busy && one.held_bytes > 0) idle.push_back(one);
  }
  std::sort(idle.begin(), idle.end(), [](const StartedOnDevice& a, const StartedOnDevice& b) {
    if (a.last_used_ms != b.last_used_ms) return a.last_used_ms < b.last_used_ms;
    return a.id < b.id;
  });
  StartBudgetDecision decision{StartAction::kStopThenStart, {}};
  int64_t reachable = input.free_bytes;
  for (const auto& one : idle) {
    if (input.need_bytes <= reachable) break;
    decision.stop.push_back(one.id);
    reachable += one.held_bytes;
  }
  if (input.need_bytes <= reachable) return decision;
  return {StartAction::kRefuse, {}};
}

nlohmann::json start_budget_details(const StartBudgetInput& input) {
  return {{"starting", input.starting},       {"device", input.device},
          {"need_bytes", input.need_bytes},   {"free_bytes", input.free_bytes},
          {"freeable_bytes", held(input, false)}, {"busy_bytes", held(input, true)}};
}

std::string start_refused_message(const StartBudgetInput& input) {
  const int64_t freeable = held(input, false);
  const int64_t busy = held(input, true);
  std::string message = input.starting + " needs " + bytes_in_words(input.need_bytes) +
                        " of GPU memory to start but " + input.device + " has " +
                        bytes_in_words(input.free_bytes) + " free";
  if (freeable > 0) {
    message += ", and stopping the idle runners Dream Forge started there would free " +
               bytes_in_words(freeable) + " more";
  }
  if (busy > 0) message += " (busy ones hold " + bytes_in_words(busy) + ")";
  return message + "; it was not started. Free memory on the device, or lower its memory_need.";
}

}  // namespace df::gpu
