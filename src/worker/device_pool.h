// The workers of one process and their devices: claims taken in turn, jobs handed to the device
// that has their model warm, free requests between runners, and devices taken out of rotation.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/job.h"
#include "gpu/runner_roster.h"
#include "queue/queue.h"
#include "store/store.h"

namespace df::worker {

// The devices of `--devices` ("0,1" or "cpu,cpu"): "cuda:N" for an index, "cpu" for the CPU.
// Throws Error(kInvalidArgument) naming DREAMFORGE_DEVICES for anything else or an index listed
// twice.
std::vector<std::string> parse_device_list(const std::vector<std::string>& entries);

// The runner's --device for a worker pinned to `device` ("cuda" or "cpu": a pinned runner sees
// only its GPU, as cuda:0).
std::string runner_device_flag(const std::string& device);
// The environment that pins a runner to `device`: CUDA_VISIBLE_DEVICES=N and
// CUDA_DEVICE_ORDER=PCI_BUS_ID (NVML's numbering) for "cuda:N"; CUDA_VISIBLE_DEVICES="" for "cpu".
std::vector<std::string> runner_device_environment(const std::string& device);

// Why a runner pinned to `device` cannot serve it, from its hello (the device it runs on and the
// devices it can see); "" when it can.
std::string hello_mismatch(const std::string& device, const std::string& hello_device,
                           const std::vector<std::string>& hello_devices);

// Consecutive jobs after which a worker's runner was gone (it crashed or was killed); a device
// whose runner goes this way kCrashesBeforeRotation times in a row leaves rotation.
inline constexpr int kCrashesBeforeRotation = 3;
class CrashStreak {
 public:
  // Records how a job ended; true when the streak reached kCrashesBeforeRotation.
  bool record(bool runner_gone);

 private:
  int streak_ = 0;
};

// The model files a job loads: a generate job's checkpoint, a workflow's ckpt_name inputs.
std::vector<std::string> job_checkpoints(const Job& job);

// The idle, in-rotation runner other than `self` whose warm models include one of `checkpoints`,
// when `self`'s runner has none of them warm; nullopt otherwise.
std::optional<std::string> warm_peer(const std::vector<gpu::RunnerState>& runners,
                                     const std::string& self,
                                     const std::vector<std::string>& checkpoints);

class DevicePool {
 public:
  DevicePool(gpu::RunnerRoster& roster, store::Store& store);

  // A worker takes part with its runner's first state; `request_free` asks it to free its
  // runner's models before its next claim.
  void join(const gpu::RunnerState& state, std::function<void()> request_free);
  void update(const gpu::RunnerState& state) { roster_.update(state); }
  std::vector<gpu::RunnerState> runners() const { return roster_.all(); }
  void request_free(const std::string& worker_id);

  // Claims in this process are taken one at a time: a worker holds its turn while it waits for a
  // job and places it, so a job handed to an idle worker cannot cross that worker's own claim.
  std::unique_lock<std::mutex> claim_turn() { return std::unique_lock(claim_mutex_); }
  // A job another worker handed to `worker_id`.
  std::optional<queue::Delivery> take_handed(const std::string& worker_id);
  // Hands `delivery` (claimed by `from`) to the idle worker whose runner has its model warm, when
  // `from`'s has not: the claim moves to that worker in the store (the job is requeued without
  // using up an attempt and claimed at once under the other worker) and the worker is marked busy.
  // True when it went; false leaves the delivery with `from`. Call holding the claim turn.
  bool hand_over(const queue::Delivery& delivery, const std::string& from, int64_t lease_ms);

  // Marks the worker's device out of rotation with one log line; says so loudly when no device
  // is left.
  void take_out_of_rotation(const std::string& worker_id, const std::string& reason);

 private:
  gpu::RunnerRoster& roster_;
  store::Store& store_;
  std::mutex claim_mutex_;
  std::mutex mutex_;  // guards the two maps
  std::map<std::string, std::function<void()>> free_requests_;
  std::map<std::string, queue::Delivery> handed_;
};

}  // namespace df::worker
