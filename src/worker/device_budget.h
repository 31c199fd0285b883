// One GPU memory budget per process for what Dream Forge starts on a device (native runners and
// started backend servers alike): a start that does not fit stops idle ones first, or is refused.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <sys/types.h>

namespace df::worker {

// What this service started on a device and may stop to make room for another start.
struct BudgetMember {
  std::string id;              // "native:<worker_id>" or "backend:<name>"
  std::string device;          // "cuda:N" ("cpu" and others are never in a budget)
  int64_t need_bytes = 0;      // its declared need: what it counts for when NVML does not say
  pid_t pid = 0;               // 0: not running (holds nothing)
  bool busy = false;           // running a job: never stopped to make room
  int64_t last_used_ms = 0;    // when it last finished a job (steady clock)
  // Stops it if it is still idle; true once it no longer runs (its memory is back).
  std::function<bool()> stop_idle;
};

// Thread-safe.
class DeviceBudget {
 public:
  // The free memory of GPU `index` now; nullopt when unknown (no budget is applied then).
  using FreeBytes = std::function<std::optional<int64_t>(int index)>;
  // What process `pid` holds on GPU `index` now (0 when unknown).
  using HeldBytes = std::function<int64_t(int index, pid_t pid)>;

  // Defaults read NVML (src/gpu/nvml.h).
  explicit DeviceBudget(FreeBytes free_bytes = nvml_free_bytes,
                        HeldBytes held_bytes = nvml_held_bytes);

  // Adds `member`, or replaces the one with its id.
  void join(BudgetMember member);
  // A member's state now (an unknown id is ignored); `device` as it is known now.
  void update(const std::string& id, const std::string& device, pid_t pid, bool busy,
              int64_t last_used_ms);
  void leave(const std::string& id);

  // Before `starting` (a member or not) starts on `device` with `need_bytes`: nothing on a device
  // that is not cuda:N, with no need, or when NVML does not say what is free. Else the need is
  // checked against the free memory with gpu::decide_start over the running members on the device
  // (each counted as what NVML says its pid holds, else its declared need), and the idle ones it
  // chooses are stopped, least recently used first. One that does not stop (it became busy, or its
  // memory did not come back in time) is counted as busy and the decision made again. Throws
  // Error(kInsufficientMemory) with the numbers (gpu::start_budget_details) when it cannot fit.
  void make_room(const std::string& starting, const std::string& device, int64_t need_bytes);

  static std::optional<int64_t> nvml_free_bytes(int index);
  static int64_t nvml_held_bytes(int index, pid_t pid);

 private:
  const FreeBytes free_bytes_;
  const HeldBytes held_bytes_;
  std::mutex mutex_;
  std::map<std::string, BudgetMember> members_;
};

}  // namespace df::worker
