// One GPU memory budget per process for native runners and started backend servers.
#include "worker/device_budget.h"

#include <set>
#include <vector>

#include "core/error.h"
#include "gpu/nvml.h"
#include "gpu/start_budget.h"
#include "telemetry/service_log.h"
#include "worker/memory_hygiene.h"

namespace df::worker {

DeviceBudget::DeviceBudget(FreeBytes free_bytes, HeldBytes held_bytes)
    : free_bytes_(std::move(free_bytes)), held_bytes_(std::move(held_bytes)) {}

void DeviceBudget::join(BudgetMember member) {
  std::lock_guard lock(mutex_);
  const std::string id = member.id;
  members_[id] = std::move(member);
}

void DeviceBudget::update(const std::string& id, const std::string& device, pid_t pid, bool busy,
                          int64_t last_used_ms) {
  std::lock_guard lock(mutex_);
  const auto found = members_.find(id);
  if (found == members_.end()) return;
  found->second.device = device;
  found->second.pid = pid;
  found->second.busy = busy;
  found->second.last_used_ms = last_used_ms;
}

void DeviceBudget::leave(const std::string& id) {
  std::lock_guard lock(mutex_);
  members_.erase(id);
}

void DeviceBudget::make_room(const std::string& starting, const std::string& device,
                             int64_t need_bytes) {
  const auto index = cuda_device_index(device);
  if (!index || need_bytes <= 0) return;
  std::set<std::string> unstoppable;  // chosen before, but did not stop
  while (true) {
    const auto free = free_bytes_(*index);
    if (!free) return;
    gpu::StartBudgetInput input;
    input.starting = starting;
    input.device = device;
    input.need_bytes = need_bytes;
    input.free_bytes = *free;
    std::map<std::string, std::function<bool()>> stops;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [id, member] : members_) {
        if (id == starting || member.device != device || member.pid == 0) continue;
        const int64_t held = held_bytes_(*index, member.pid);
        input.started.push_back({id, held > 0 ? held : member.need_bytes, member.last_used_ms,
                                 member.busy || unstoppable.contains(id)});
        stops[id] = member.stop_idle;
      }
    }
    const gpu::StartBudgetDecision decision = gpu::decide_start(input);
    if (decision.action == gpu::StartAction::kRefuse) {
      throw Error(ErrorCode::kInsufficientMemory, gpu::start_refused_message(input),
                  gpu::start_budget_details(input));
    }
    bool all_stopped = true;
    for (const std::string& id : decision.stop) {  // no lock held: a stop may update its member
      if (stops.at(id) && stops.at(id)()) {
        telemetry::service_log().info(id + ": idle, stopped to make room for " + starting +
                                      " on " + device);
        continue;
      }
      unstoppable.insert(id);
      all_stopped = false;
    }
    if (all_stopped) return;
  }
}

std::optional<int64_t> DeviceBudget::nvml_free_bytes(int index) {
  const auto nvml = gpu::system_nvml();
  if (!nvml) return std::nullopt;
  const auto device = nvml->device(index);
  if (!device) return std::nullopt;
  return device->free_bytes;
}

int64_t DeviceBudget::nvml_held_bytes(int index, pid_t pid) {
  const auto nvml = gpu::system_nvml();
  return nvml ? nvml->process_memory(index, pid) : 0;
}

}  // namespace df::worker
