// The headroom check before a job starts.
#include "gpu/headroom.h"

#include <algorithm>

#include "core/numbers.h"

namespace df::gpu {
namespace {

int64_t held_by_peers(const HeadroomInput& input, bool busy) {
  int64_t sum = 0;
  for (const auto& peer : input.peers) {
    if (peer.busy == busy) sum += std::max<int64_t>(0, peer.evictable_bytes);
  }
  return sum;
}

}  // namespace

HeadroomDecision decide_headroom(const HeadroomInput& input) {
  const int64_t own = std::max<int64_t>(0, input.own_evictable_bytes);
  if (input.need_bytes <= input.free_bytes) return {HeadroomAction::kRun, false, {}};
  if (input.own_model_warm && input.need_bytes <= input.free_bytes + own) {
    return {HeadroomAction::kRun, false, {}};
  }
  HeadroomDecision decision{HeadroomAction::kFree, own > 0, {}};
  int64_t reachable = input.free_bytes + own;
  std::vector<PeerRunner> idle;
  for (const auto& peer : input.peers) {
    if (!peer.busy && peer.evictable_bytes > 0) idle.push_back(peer);
  }
  std::stable_sort(idle.begin(), idle.end(), [](const PeerRunner& a, const PeerRunner& b) {
    return a.evictable_bytes > b.evictable_bytes;
  });
  for (const auto& peer : idle) {
    if (input.need_bytes <= reachable) break;
    decision.peers_to_free.push_back(peer.worker_id);
    reachable += peer.evictable_bytes;
  }
  if (input.need_bytes <= reachable) return decision;
  if (input.need_bytes <= reachable + held_by_peers(input, true)) return {HeadroomAction::kWait, false, {}};
  return {HeadroomAction::kFail, false, {}};
}

nlohmann::json headroom_details(const HeadroomInput& input) {
  return {{"preset", input.preset},
          {"device", input.device},
          {"need_bytes", input.need_bytes},
          {"free_bytes", input.free_bytes},
          {"total_bytes", input.total_bytes},
          {"held_by_our_runners_bytes", std::max<int64_t>(0, input.own_evictable_bytes) +
                                            held_by_peers(input, false) + held_by_peers(input, true)}};
}

std::string insufficient_memory_message(const HeadroomInput& input) {
  const nlohmann::json details = headroom_details(input);
  const int64_t held = details["held_by_our_runners_bytes"].get<int64_t>();
  std::string message = "The preset '" + input.preset + "' needs " + bytes_in_words(input.need_bytes) +
                        " of memory but " + input.device + " has " + bytes_in_words(input.free_bytes) +
                        " free";
  if (input.total_bytes > 0) message += " of " + bytes_in_words(input.total_bytes);
  if (held > 0) message += " (Dream Forge's runners there hold " + bytes_in_words(held) + " more)";
  return message +
         "; the job was not started. Free memory on the device, or choose a smaller preset.";
}

}  // namespace df::gpu
