// The machine's devices as the /v1 API reports them: health's "devices" (each GPU and the CPU with
// their memory and the runners on them) and the GPU memory gauges of /metrics.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/comfy_system_stats.h"
#include "gpu/nvml.h"
#include "gpu/runner_roster.h"
#include "telemetry/metrics.h"

namespace df::api {

// Health's "devices": each GPU NVML shows ({"device": "cuda:N", "type": "cuda", "index", "name",
// "uuid", "memory": {"total_bytes", "free_bytes", "used_bytes"}}), a "cuda:N" a runner names that
// NVML does not show with "name", "uuid" and "memory" null, then the CPU ({"device": "cpu",
// "type": "cpu", "memory": {"total_bytes", "available_bytes"}} of `ram`); each with "runners": the
// native `runners` on it (health_runner). Runners that drive a backend are listed with their
// backend (health_backends), not here: they hold none of this machine's device memory.
nlohmann::json health_devices(const std::vector<gpu::GpuDevice>& gpus,
                              const std::vector<gpu::RunnerState>& runners, const MemoryInfo& ram);

// One runner in health: {"worker_id", "runner_id", "pid", "state", "reason", "models",
// "models_bytes", "memory_used_bytes"}; and its JSON Schema.
nlohmann::json health_runner(const gpu::RunnerState& runner);
nlohmann::json health_runner_schema();

// Why the service cannot run jobs on any device: "every device is out of rotation: cuda:7 (why),
// …" when it has native runners and all of them left rotation; nullopt otherwise (no runners: an API-only
// process, whose workers run elsewhere).
std::optional<std::string> devices_unready(const std::vector<gpu::RunnerState>& runners);

// The JSON Schema of GET /healthz's answer: {"status": "ok", "devices": health_devices(...),
// "backends": health_backends(...)}.
nlohmann::json health_schema();

// Sets dreamforge_gpu_memory_{total,free,used}_bytes{device="cuda:N"} to the memory of `gpus`
// (replacing earlier series, so that a GPU that vanished leaves none).
void record_gpu_memory(telemetry::Metrics& metrics, const std::vector<gpu::GpuDevice>& gpus);

}  // namespace df::api
