// The live runners of this process's workers, by device.
#include "gpu/runner_roster.h"

#include <algorithm>

namespace df::gpu {

void RunnerRoster::update(const RunnerState& state) {
  std::lock_guard lock(mutex_);
  auto it = std::find_if(runners_.begin(), runners_.end(),
                         [&](const RunnerState& r) { return r.worker_id == state.worker_id; });
  if (it == runners_.end()) {
    runners_.push_back(state);
  } else {
    *it = state;
  }
}

void RunnerRoster::remove(const std::string& worker_id) {
  std::lock_guard lock(mutex_);
  std::erase_if(runners_, [&](const RunnerState& r) { return r.worker_id == worker_id; });
}

std::vector<RunnerState> RunnerRoster::all() const {
  std::lock_guard lock(mutex_);
  return runners_;
}

std::optional<RunnerState> RunnerRoster::find(const std::string& worker_id) const {
  std::lock_guard lock(mutex_);
  for (const auto& r : runners_) {
    if (r.worker_id == worker_id) return r;
  }
  return std::nullopt;
}

}  // namespace df::gpu
