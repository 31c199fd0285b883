// The headroom check of a job before it starts on this worker's device.
#include "worker/headroom_guard.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/error.h"
#include "gpu/nvml.h"
#include "worker/memory_hygiene.h"
#include "worker/process_memory.h"

namespace df::worker {

std::optional<DeviceMemory> read_device_memory(const std::string& device) {
  if (const auto index = cuda_device_index(device)) {
    const auto nvml = gpu::system_nvml();
    if (!nvml) return std::nullopt;
    const auto gpu = nvml->device(*index);
    if (!gpu) return std::nullopt;
    return DeviceMemory{gpu->free_bytes, gpu->total_bytes};
  }
  return DeviceMemory{available_system_memory(), total_system_memory()};
}

int64_t evictable_bytes(const gpu::RunnerState& runner) {
  if (runner.pid == 0 || runner.state == "out_of_rotation") return 0;
  return runner.models_bytes > 0 ? runner.models_bytes : runner.memory_used_bytes;
}

gpu::HeadroomInput headroom_input(const Job& job, const gpu::RunnerState& self,
                                  const std::vector<gpu::RunnerState>& runners,
                                  const DeviceMemory& memory) {
  const auto& need = job.spec["memory_need"];
  gpu::HeadroomInput input;
  input.preset = need.value("preset", "");
  input.device = self.device;
  input.need_bytes = need.value("memory_mb", int64_t{0}) << 20;
  input.free_bytes = memory.free_bytes;
  input.total_bytes = memory.total_bytes;
  input.own_evictable_bytes = evictable_bytes(self);
  const auto checkpoints = job_checkpoints(job);
  input.own_model_warm = std::any_of(self.models.begin(), self.models.end(), [&](const std::string& m) {
    return std::find(checkpoints.begin(), checkpoints.end(), m) != checkpoints.end();
  });
  for (const auto& runner : runners) {
    if (runner.worker_id == self.worker_id || runner.device != self.device) continue;
    const int64_t bytes = evictable_bytes(runner);
    if (bytes > 0) input.peers.push_back({runner.worker_id, runner.state == "busy", bytes});
  }
  return input;
}

HeadroomGuard::HeadroomGuard(DevicePool& pool, HeadroomGuardSettings settings,
                             std::function<void()> free_own,
                             std::function<std::optional<DeviceMemory>(const std::string&)> read_memory)
    : pool_(pool),
      settings_(std::move(settings)),
      free_own_(std::move(free_own)),
      read_memory_(std::move(read_memory)) {}

std::optional<nlohmann::json> HeadroomGuard::check(const Job& job) {
  if (!job.spec.contains("memory_need") || !job.spec["memory_need"].is_object()) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(settings_.wait_ms);
  bool freed = false;
  while (true) {
    const auto runners = pool_.runners();
    const auto self = std::find_if(runners.begin(), runners.end(), [&](const gpu::RunnerState& r) {
      return r.worker_id == settings_.worker_id;
    });
    if (self == runners.end()) return std::nullopt;
    const auto memory = read_memory_(self->device);
    if (!memory) return std::nullopt;
    const gpu::HeadroomInput input = headroom_input(job, *self, runners, *memory);
    const gpu::HeadroomDecision decision = gpu::decide_headroom(input);
    if (decision.action == gpu::HeadroomAction::kRun) return std::nullopt;
    if (decision.action == gpu::HeadroomAction::kFree && !freed) {
      freed = true;  // asked once; then the figures are watched until the bound
      if (decision.free_own) free_own_();
      for (const auto& peer : decision.peers_to_free) pool_.request_free(peer);
      continue;
    }
    if (decision.action == gpu::HeadroomAction::kFail ||
        std::chrono::steady_clock::now() >= deadline) {
      return nlohmann::json{{"code", std::string(error_code_name(ErrorCode::kInsufficientMemory))},
                            {"message", gpu::insufficient_memory_message(input)},
                            {"details", gpu::headroom_details(input)}};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(settings_.poll_ms));
  }
}

}  // namespace df::worker
