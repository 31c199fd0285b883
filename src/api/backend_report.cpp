// The ComfyUI backends in /healthz, /readyz and /metrics.
#include "api/backend_report.h"

#include "api/device_report.h"
#include "core/ids.h"
#include "telemetry/service_metrics.h"

namespace df::api {

using nlohmann::json;

json health_backends(const std::vector<backends::BackendStatus>& backends,
                     const std::vector<gpu::RunnerState>& runners) {
  json list = json::array();
  for (const auto& status : backends) {
    json drivers = json::array();
    for (const auto& runner : runners) {
      if (runner.runner_id == status.spec.runner_id()) drivers.push_back(health_runner(runner));
    }
    list.push_back({{"name", status.spec.name},
                    {"url", status.spec.base_url()},
                    {"up", status.up},
                    {"error", status.up ? json(nullptr) : json(status.error)},
                    {"queue_remaining", status.queue_remaining},
                    {"node_types", status.offer.node_types.size()},
                    {"checked_at", status.checked_ms > 0 ? json(iso8601_utc(status.checked_ms))
                                                         : json(nullptr)},
                    {"runners", std::move(drivers)}});
  }
  return list;
}

json health_backend_schema() {
  const json integer = {{"type", "integer"}};
  const json text = {{"type", "string"}};
  return {{"type", "object"},
          {"required",
           {"name", "url", "up", "error", "queue_remaining", "node_types", "checked_at", "runners"}},
          {"properties",
           {{"name", text},
            {"url", text},
            {"up", {{"type", "boolean"}}},
            {"error", {{"type", {"string", "null"}}}},
            {"queue_remaining", integer},
            {"node_types", integer},
            {"checked_at", {{"type", {"string", "null"}}}},
            {"runners", {{"type", "array"}, {"items", health_runner_schema()}}}}}};
}

std::optional<std::string> backends_unready(const std::vector<backends::BackendStatus>& backends) {
  if (backends.empty()) return std::nullopt;
  std::string why;
  for (const auto& status : backends) {
    if (status.up) return std::nullopt;
    why += (why.empty() ? "" : ", ") + status.spec.name + " (" +
           (status.error.empty() ? "not checked yet" : status.error) + ")";
  }
  return "no backend is up: " + why;
}

void record_backends(telemetry::Metrics& metrics,
                     const std::vector<backends::BackendStatus>& backends) {
  std::vector<std::pair<telemetry::Labels, double>> up;
  std::vector<std::pair<telemetry::Labels, double>> queue_remaining;
  for (const auto& status : backends) {
    const telemetry::Labels labels = {{"backend", status.spec.name}};
    up.push_back({labels, status.up ? 1.0 : 0.0});
    queue_remaining.push_back({labels, static_cast<double>(status.queue_remaining)});
  }
  metrics.set_gauge_series(telemetry::kBackendUp, up);
  metrics.set_gauge_series(telemetry::kBackendQueueRemaining, queue_remaining);
}

}  // namespace df::api
