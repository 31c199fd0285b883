// The live runners of this process's workers, by device: what health, /system_stats and placement read.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace df::gpu {

// What one worker's runner is and holds, as the worker last saw it.
struct RunnerState {
  std::string worker_id;
  // Which runner the worker drives: "native" (dreamforge-runner) or "backend:<name>" (a ComfyUI
  // server of backends.yaml); jobs name the runner ids that can run them (spec.runners).
  std::string runner_id = "native";
  int queue_remaining = 0;          // a backend's own queue (other clients' prompts) when last seen
  std::string device = "cpu";       // "cpu" or "cuda:N" (N in NVML's numbering)
  std::optional<int> device_index;  // N for "cuda:N"
  pid_t pid = 0;                    // 0 while no runner process runs
  std::string state = "idle";       // idle | busy | stopped | out_of_rotation
  std::string reason;               // why it is out of rotation ("" otherwise)
  std::vector<std::string> models;  // model files its cache holds warm
  int64_t models_bytes = 0;         // their size on the runner's device
  int64_t memory_used_bytes = 0;    // the runner's memory on its device (VRAM or RSS) when last seen
  // Its CUDA caching allocator when last reported (memory.allocator: reserved_bytes and
  // allocated_bytes); unknown on the CPU and before its first report.
  std::optional<int64_t> allocator_reserved_bytes;
  std::optional<int64_t> allocator_allocated_bytes;
};

// Thread-safe table of RunnerState by worker id.
class RunnerRoster {
 public:
  // Adds or replaces the state of `state.worker_id`.
  void update(const RunnerState& state);
  void remove(const std::string& worker_id);
  std::vector<RunnerState> all() const;
  std::optional<RunnerState> find(const std::string& worker_id) const;

 private:
  mutable std::mutex mutex_;
  std::vector<RunnerState> runners_;
};

}  // namespace df::gpu
