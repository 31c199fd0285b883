// A runner's memory on its device and the decisions of memory hygiene (OR-001): was a step's memory
// returned (AC-1), which failures retire the runner, and when a retired runner's memory is back (AC-2).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/types.h>

#include "gpu/nvml.h"

namespace df::worker {

// The GPU a device name means: "cuda" -> 0, "cuda:1" -> 1; nullopt for "cpu" and anything else.
std::optional<int> cuda_device_index(const std::string& device);

// What a runner reports of its own memory: the `memory` object of its run_started and run_finished
// events. All zero when the runner reports none.
struct RunnerMemoryReport {
  bool reported = false;             // the event carried a memory object
  std::vector<std::string> models;   // the names of the models its cache holds
  int64_t models_bytes = 0;          // what its model cache holds where the step is measured
  bool has_allocator = false;        // the runner computes on an accelerator and reported it
  int64_t allocated_bytes = 0;       // CUDA caching allocator: allocated now
  int64_t reserved_bytes = 0;        // CUDA caching allocator: reserved from the device now
  int64_t peak_allocated_bytes = 0;  // CUDA caching allocator: peak since the run started
};

// Reads a runner event's `memory` object. Under `memory_kind` "cuda" the models count with their
// device bytes; under "process_rss" with device and host bytes (on the CPU both are in the process).
RunnerMemoryReport read_runner_memory(const nlohmann::json& event, const std::string& memory_kind);

// One step's memory, in the design's names.
struct StepMemory {
  std::string memory_kind;  // "cuda" (the runner's memory on its GPU, NVML) or "process_rss"
  std::string device;
  int64_t gpu_mem_used_before = 0;
  int64_t gpu_mem_used_after = 0;
  int64_t peak_gpu_mem_used = 0;
  int64_t models_bytes_before = 0;  // what the runner's model cache held, by its own report
  int64_t models_bytes_after = 0;
  // A GPU runner's first step also creates its CUDA context, which NVML counts for the process
  // outside the allocator: not left behind by the step, but the price of using the device at all.
  int64_t cuda_context_bytes = 0;
};

// AC-1: the step gave back everything but the models the runner keeps warm on purpose (and the
// CUDA context its first step on a GPU created):
// after - models_after <= before + cuda_context - models_before + epsilon.
bool memory_returned(const StepMemory& memory, int64_t epsilon_bytes);

// The CUDA context a GPU step created: when the runner held nothing on the GPU before it, what it
// holds after outside its caching allocator; 0 when it held memory before (its context existed) or
// reports no allocator.
int64_t cuda_context_created(int64_t before, int64_t after, const RunnerMemoryReport& at_end);

// A GPU step's peak: the highest NVML sample, or what the runner held before plus the growth of its
// allocator during the run (a short peak between two samples shows only there), whichever is higher.
int64_t gpu_step_peak(int64_t sampled_peak, int64_t before, const RunnerMemoryReport& at_start,
                      const RunnerMemoryReport& at_end);

// Whether a run that failed with `code` leaves a runner that must not take another job (it is
// stopped and its memory waited for): oom, internal, runner_crashed and timeout.
bool failure_retires_runner(const std::string& code);

// How the bounded wait for a stopped runner's memory ended.
struct ReleaseWait {
  bool released = false;
  int64_t waited_ms = 0;
  int64_t held_bytes = 0;  // still held when the bound passed (0 once released)
};

// The readings and the passing of time the wait depends on.
struct ReleaseWaitSources {
  std::function<std::optional<int64_t>()> held;  // bytes still held; nullopt once released
  std::function<int64_t()> now_ms;
  std::function<void(int64_t ms)> sleep_ms;
};

// Reads `held` every `poll_ms` until it says released or `bound_ms` has passed (one last reading
// then decides).
ReleaseWait wait_for_release(const ReleaseWaitSources& sources, int64_t bound_ms, int64_t poll_ms = 50);

// Reads one runner's memory where it runs: its GPU memory through NVML on a "cuda" device (when
// NVML is there), else its process memory from /proc.
class RunnerMemoryProbe {
 public:
  RunnerMemoryProbe(const std::string& device, std::shared_ptr<const gpu::Nvml> nvml);

  const std::string& memory_kind() const { return kind_; }
  // What `pid` holds now (0 when it is gone).
  int64_t used(pid_t pid) const;
  // The highest use of `pid` since the last reset_peak on the CPU; the current use on a GPU (NVML
  // keeps no per-process peak: samples and the allocator's report stand in).
  int64_t peak(pid_t pid) const;
  void reset_peak(pid_t pid) const;
  // Memory free on the device: NVML's free bytes of the GPU, MemAvailable for the CPU.
  int64_t free_bytes() const;
  // After the runner was stopped: the bytes `pid` still holds, nullopt once they are back (on a GPU
  // NVML lists no memory for it; on the CPU the process is gone, reaped).
  std::optional<int64_t> held_after_stop(pid_t pid) const;

 private:
  std::shared_ptr<const gpu::Nvml> nvml_;
  std::optional<int> gpu_;
  std::string kind_;
};

}  // namespace df::worker
