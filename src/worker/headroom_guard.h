// The headroom check of a job before it starts on this worker's device: reads the memory figures,
// frees this service's runners when that makes room, waits (bounded) for busy ones, or refuses.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "gpu/headroom.h"
#include "worker/device_pool.h"

namespace df::worker {

// A device's memory now: NVML's free and total on a GPU, MemAvailable and MemTotal on the CPU.
// nullopt when unknown (a GPU without NVML): then no check is made.
struct DeviceMemory {
  int64_t free_bytes = 0;
  int64_t total_bytes = 0;
};
std::optional<DeviceMemory> read_device_memory(const std::string& device);

// What a runner could give back if asked to free: its models by its own report, else all its
// memory on the device (after a run a runner holds its models and a small constant).
int64_t evictable_bytes(const gpu::RunnerState& runner);

// The check's input for `job` on `self`'s device, from the roster and the device's memory.
gpu::HeadroomInput headroom_input(const Job& job, const gpu::RunnerState& self,
                                  const std::vector<gpu::RunnerState>& runners,
                                  const DeviceMemory& memory);

struct HeadroomGuardSettings {
  std::string worker_id;
  int64_t wait_ms = 5000;  // longest wait for other runners to free (within the job's lease)
  int64_t poll_ms = 250;
};

class HeadroomGuard {
 public:
  // `free_own` frees this worker's runner and refreshes its roster state; `read_memory` reads the
  // device's memory (read_device_memory outside tests).
  HeadroomGuard(DevicePool& pool, HeadroomGuardSettings settings, std::function<void()> free_own,
                std::function<std::optional<DeviceMemory>(const std::string&)> read_memory);

  // nullopt: `job` may start (it has no memory need, its device's memory is unknown, or it fits,
  // perhaps after freeing); else the error it fails with: insufficient_memory with the numbers.
  std::optional<nlohmann::json> check(const Job& job);

 private:
  DevicePool& pool_;
  HeadroomGuardSettings settings_;
  std::function<void()> free_own_;
  std::function<std::optional<DeviceMemory>(const std::string&)> read_memory_;
};

}  // namespace df::worker
