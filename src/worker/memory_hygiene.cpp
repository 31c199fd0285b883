// A runner's memory on its device and the decisions of memory hygiene (OR-001).
#include "worker/memory_hygiene.h"

#include <algorithm>

#include "worker/process_memory.h"

namespace df::worker {

using nlohmann::json;

std::optional<int> cuda_device_index(const std::string& device) {
  if (device == "cuda") return 0;
  const std::string prefix = "cuda:";
  if (device.rfind(prefix, 0) != 0 || device.size() == prefix.size()) return std::nullopt;
  const std::string digits = device.substr(prefix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoi(digits);
}

RunnerMemoryReport read_runner_memory(const json& event, const std::string& memory_kind) {
  RunnerMemoryReport report;
  const auto memory = event.find("memory");
  if (memory == event.end() || !memory->is_object()) return report;
  report.reported = true;
  const auto bytes = [](const json& object, const char* key) {
    const auto value = object.find(key);
    return value != object.end() && value->is_number_integer() ? value->get<int64_t>() : int64_t{0};
  };
  if (const auto models = memory->find("models"); models != memory->end() && models->is_object()) {
    report.models_bytes = bytes(*models, "device_bytes");
    if (memory_kind != "cuda") report.models_bytes += bytes(*models, "host_bytes");
    if (const auto loaded = models->find("loaded"); loaded != models->end() && loaded->is_array()) {
      for (const auto& model : *loaded) {
        if (model.is_object() && model.contains("name") && model["name"].is_string()) {
          report.models.push_back(model["name"].get<std::string>());
        }
      }
    }
  }
  if (const auto allocator = memory->find("allocator");
      allocator != memory->end() && allocator->is_object()) {
    report.has_allocator = true;
    report.allocated_bytes = bytes(*allocator, "allocated_bytes");
    report.reserved_bytes = bytes(*allocator, "reserved_bytes");
    report.peak_allocated_bytes = bytes(*allocator, "peak_allocated_bytes");
  }
  return report;
}

bool memory_returned(const StepMemory& memory, int64_t epsilon_bytes) {
  return memory.gpu_mem_used_after - memory.models_bytes_after <=
         memory.gpu_mem_used_before + memory.cuda_context_bytes - memory.models_bytes_before +
             epsilon_bytes;
}

int64_t cuda_context_created(int64_t before, int64_t after, const RunnerMemoryReport& at_end) {
  if (before > 0 || at_end.reserved_bytes == 0) return 0;
  return std::max<int64_t>(0, after - at_end.reserved_bytes);
}

int64_t gpu_step_peak(int64_t sampled_peak, int64_t before, const RunnerMemoryReport& at_start,
                      const RunnerMemoryReport& at_end) {
  const int64_t growth = std::max<int64_t>(0, at_end.peak_allocated_bytes - at_start.allocated_bytes);
  return std::max(sampled_peak, before + growth);
}

bool failure_retires_runner(const std::string& code) {
  return code == "oom" || code == "internal" || code == "runner_crashed" || code == "timeout";
}

ReleaseWait wait_for_release(const ReleaseWaitSources& sources, int64_t bound_ms, int64_t poll_ms) {
  const int64_t started = sources.now_ms();
  while (true) {
    const auto held = sources.held();
    const int64_t waited = sources.now_ms() - started;
    if (!held) return {true, waited, 0};
    if (waited >= bound_ms) return {false, waited, *held};
    sources.sleep_ms(std::min(poll_ms, bound_ms - waited));
  }
}

RunnerMemoryProbe::RunnerMemoryProbe(const std::string& device, std::shared_ptr<const gpu::Nvml> nvml)
    : nvml_(std::move(nvml)) {
  if (nvml_) gpu_ = cuda_device_index(device);
  kind_ = gpu_ ? "cuda" : "process_rss";
}

int64_t RunnerMemoryProbe::used(pid_t pid) const {
  if (gpu_) return nvml_->process_memory(*gpu_, pid);
  const auto memory = read_process_memory(pid);
  return memory ? memory->resident_bytes : 0;
}

int64_t RunnerMemoryProbe::peak(pid_t pid) const {
  if (gpu_) return used(pid);
  const auto memory = read_process_memory(pid);
  return memory ? std::max(memory->peak_bytes, memory->resident_bytes) : 0;
}

void RunnerMemoryProbe::reset_peak(pid_t pid) const {
  if (!gpu_) reset_peak_memory(pid);
}

int64_t RunnerMemoryProbe::free_bytes() const {
  if (gpu_) {
    const auto device = nvml_->device(*gpu_);
    return device ? device->free_bytes : 0;
  }
  return available_system_memory();
}

std::optional<int64_t> RunnerMemoryProbe::held_after_stop(pid_t pid) const {
  if (gpu_) {
    const int64_t held = nvml_->process_memory(*gpu_, pid);
    return held > 0 ? std::optional<int64_t>(held) : std::nullopt;
  }
  if (!process_exists(pid)) return std::nullopt;
  return used(pid);
}

}  // namespace df::worker
