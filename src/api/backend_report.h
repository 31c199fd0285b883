// The ComfyUI backends as the /v1 API reports them: health's "backends", the readiness check and
// the backend gauges of /metrics.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/backend_catalog.h"
#include "gpu/runner_roster.h"
#include "telemetry/metrics.h"

namespace df::api {

// Health's "backends": {"name", "url", "up", "error" (null while up), "queue_remaining",
// "node_types" (how many its /object_info offers), "checked_at" (ISO 8601, null before the first
// check), "runners": this process's runners that drive it (health_runner)} for each backend in
// configuration order.
nlohmann::json health_backends(const std::vector<backends::BackendStatus>& backends,
                               const std::vector<gpu::RunnerState>& runners);

// The JSON Schema of one entry of health_backends.
nlohmann::json health_backend_schema();

// Why the backends cannot run jobs: "no backend is up: a (why), b (why)" when backends are
// configured and none is up; nullopt otherwise (none configured, or one up).
std::optional<std::string> backends_unready(const std::vector<backends::BackendStatus>& backends);

// Sets dreamforge_backend_up{backend} (1 or 0) and dreamforge_backend_queue_remaining{backend}
// (replacing earlier series, so that a backend taken out of the config leaves none).
void record_backends(telemetry::Metrics& metrics,
                     const std::vector<backends::BackendStatus>& backends);

}  // namespace df::api
