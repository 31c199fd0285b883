// The machine's devices as the /v1 API reports them: health's devices and the GPU memory gauges.
#include "api/device_report.h"

#include "api/backend_report.h"

#include <map>
#include <string>

#include "telemetry/service_metrics.h"

namespace df::api {
namespace {

using nlohmann::json;

std::string cuda_name(int index) { return "cuda:" + std::to_string(index); }

bool is_native(const gpu::RunnerState& runner) { return runner.runner_id == "native"; }

}  // namespace

json health_runner(const gpu::RunnerState& runner) {
  return {{"worker_id", runner.worker_id},
          {"runner_id", runner.runner_id},
          {"pid", runner.pid},
          {"state", runner.state},
          {"reason", runner.reason},
          {"models", runner.models},
          {"models_bytes", runner.models_bytes},
          {"memory_used_bytes", runner.memory_used_bytes}};
}

json health_runner_schema() {
  const json integer = {{"type", "integer"}};
  const json text = {{"type", "string"}};
  return {{"type", "object"},
          {"required",
           {"worker_id", "runner_id", "pid", "state", "reason", "models", "models_bytes",
            "memory_used_bytes"}},
          {"properties",
           {{"worker_id", text},
            {"runner_id", text},
            {"pid", integer},
            {"state", {{"type", "string"}, {"enum", {"idle", "busy", "stopped", "out_of_rotation"}}}},
            {"reason", text},
            {"models", {{"type", "array"}, {"items", text}}},
            {"models_bytes", integer},
            {"memory_used_bytes", integer}}}};
}

json health_devices(const std::vector<gpu::GpuDevice>& gpus,
                    const std::vector<gpu::RunnerState>& runners, const MemoryInfo& ram) {
  std::map<int, json> by_index;
  for (const auto& gpu : gpus) {
    by_index[gpu.index] = {{"device", cuda_name(gpu.index)},
                           {"type", "cuda"},
                           {"index", gpu.index},
                           {"name", gpu.name},
                           {"uuid", gpu.uuid},
                           {"memory",
                            {{"total_bytes", gpu.total_bytes},
                             {"free_bytes", gpu.free_bytes},
                             {"used_bytes", gpu.used_bytes}}},
                           {"runners", json::array()}};
  }
  json cpu = {{"device", "cpu"},
              {"type", "cpu"},
              {"memory", {{"total_bytes", ram.total_bytes}, {"available_bytes", ram.available_bytes}}},
              {"runners", json::array()}};
  for (const auto& runner : runners) {
    if (!is_native(runner)) continue;
    if (!runner.device_index) {
      cpu["runners"].push_back(health_runner(runner));
      continue;
    }
    const int index = *runner.device_index;
    auto [entry, added] = by_index.try_emplace(index);
    if (added) {
      entry->second = {{"device", cuda_name(index)}, {"type", "cuda"},   {"index", index},
                       {"name", nullptr},            {"uuid", nullptr},  {"memory", nullptr},
                       {"runners", json::array()}};
    }
    entry->second["runners"].push_back(health_runner(runner));
  }
  json devices = json::array();
  for (auto& [index, device] : by_index) devices.push_back(std::move(device));
  devices.push_back(std::move(cpu));
  return devices;
}

std::optional<std::string> devices_unready(const std::vector<gpu::RunnerState>& runners) {
  std::string why;
  for (const auto& runner : runners) {
    if (!is_native(runner)) continue;
    if (runner.state != "out_of_rotation") return std::nullopt;
    why += (why.empty() ? "" : ", ") + runner.device + " (" + runner.reason + ")";
  }
  if (why.empty()) return std::nullopt;
  return "every device is out of rotation: " + why;
}

json health_schema() {
  const json integer = {{"type", "integer"}};
  const json text = {{"type", "string"}};
  const json runner = health_runner_schema();
  const json device = {
      {"type", "object"},
      {"required", {"device", "type", "memory", "runners"}},
      {"properties",
       {{"device", text},
        {"type", {{"type", "string"}, {"enum", {"cuda", "cpu"}}}},
        {"index", integer},
        {"name", {{"type", {"string", "null"}}}},
        {"uuid", {{"type", {"string", "null"}}}},
        {"memory", {{"type", {"object", "null"}}, {"additionalProperties", integer}}},
        {"runners", {{"type", "array"}, {"items", runner}}}}}};
  return {{"type", "object"},
          {"required", {"status", "devices", "backends"}},
          {"properties",
           {{"status", {{"type", "string"}, {"const", "ok"}}},
            {"devices", {{"type", "array"}, {"items", device}}},
            {"backends", {{"type", "array"}, {"items", health_backend_schema()}}}}}};
}

void record_gpu_memory(telemetry::Metrics& metrics, const std::vector<gpu::GpuDevice>& gpus) {
  std::vector<std::pair<telemetry::Labels, double>> total;
  std::vector<std::pair<telemetry::Labels, double>> free;
  std::vector<std::pair<telemetry::Labels, double>> used;
  for (const auto& gpu : gpus) {
    const telemetry::Labels labels = {{"device", cuda_name(gpu.index)}};
    total.push_back({labels, static_cast<double>(gpu.total_bytes)});
    free.push_back({labels, static_cast<double>(gpu.free_bytes)});
    used.push_back({labels, static_cast<double>(gpu.used_bytes)});
  }
  metrics.set_gauge_series(telemetry::kGpuMemoryTotal, total);
  metrics.set_gauge_series(telemetry::kGpuMemoryFree, free);
  metrics.set_gauge_series(telemetry::kGpuMemoryUsed, used);
}

}  // namespace df::api
