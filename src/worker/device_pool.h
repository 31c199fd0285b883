// The workers of one process and their devices: claims taken in turn, jobs handed to the runner
// chosen for them or held back until one can take them, free requests between runners, devices
// taken out of rotation, and the health of the backends.
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
#include "worker/backend_health.h"
#include "worker/runner_choice.h"

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

// How long a job that waits for a runner stays out of the queue before it is claimed again: the
// first wait, doubled each time it comes back for the same reason, up to the longest. (Each wait
// is a claim that uses up no attempt, but the store counts it in attempts and max_attempts alike.)
inline constexpr int64_t kRunnerWaitMs = 500;
inline constexpr int64_t kRunnerWaitMaxMs = 4000;

// The wait before a job that waits for `reason` is claimed again, given the error it came back
// with: kRunnerWaitMs for a new reason, else twice its last wait, at most kRunnerWaitMaxMs.
int64_t runner_wait_ms(const nlohmann::json& last_error, const std::string& reason);

class DevicePool {
 public:
  // `backends`: the health of the backends this process's workers drive (null: none).
  DevicePool(gpu::RunnerRoster& roster, store::Store& store, BackendHealth* backends = nullptr);

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
  // Which runner takes `job`, claimed by `claimer` (choose_runner over the roster, with the
  // backends' health and queues as they are now).
  RunnerChoice choose(const Job& job, const std::string& claimer) const;
  // Hands `delivery` (claimed by `from`) to the idle worker `to`: the claim moves to it in the
  // store (the job is requeued without using up an attempt and claimed at once under `to`) and
  // `to` is marked busy. True when it went (or another process's worker took the job meanwhile);
  // false leaves the delivery with `from`. Call holding the claim turn.
  bool hand_over(const queue::Delivery& delivery, const std::string& from, const std::string& to,
                 int64_t lease_ms);
  // Puts `delivery` (claimed by `from`) back in `queue` without using up an attempt, due again
  // after runner_wait_ms, with `reason` as its error; a "waiting_for_runner" event tells why, once per
  // reason (not again each time the job comes back for the same one). True when that event was
  // appended.
  bool hold_back(const queue::Delivery& delivery, const std::string& from,
                 const std::string& reason, queue::Queue& queue);

  // Whether the backend `runner_id` answers (always true for "native" and without backends).
  bool backend_up(const std::string& runner_id) const;
  // Its own queue at its last check (0 for "native" and without backends).
  int backend_queue(const std::string& runner_id) const;
  // A job on the backend `runner_id` ended because it stopped answering: no worker claims for it
  // until a probe answers.
  void backend_failed(const std::string& runner_id, const std::string& reason);

  // Marks the worker's device out of rotation with one log line; says so loudly when no device
  // is left.
  void take_out_of_rotation(const std::string& worker_id, const std::string& reason);

 private:
  gpu::RunnerRoster& roster_;
  store::Store& store_;
  BackendHealth* backends_;
  std::mutex claim_mutex_;
  std::mutex mutex_;  // guards the two maps
  std::map<std::string, std::function<void()>> free_requests_;
  std::map<std::string, queue::Delivery> handed_;
};

}  // namespace df::worker
