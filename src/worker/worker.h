// The worker: takes jobs from the queue and runs them one at a time in its runner.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "queue/queue.h"
#include "worker/device_budget.h"
#include "worker/device_pool.h"
#include "worker/headroom_guard.h"
#include "worker/memory_hygiene.h"
#include "worker/runner_choice.h"
#include "worker/runner_lifecycle.h"
#include "worker/worker_context.h"

namespace df::worker {

// Where a worker runs.
struct WorkerDevice {
  // "cpu" or "cuda:N"; "" until the runner's hello says (a service started with --device).
  std::string device;
  // One of --devices: the runner is started and checked before the first claim, and a device whose
  // runner cannot start, says hello on the wrong device or keeps crashing leaves rotation.
  bool pinned = false;
  // The runner it drives: "native", or "backend:<name>" (a ComfyUI server; device "backend": no
  // GPU of this machine, so no headroom check and no memory probe).
  std::string runner_id = kNativeRunner;
};

class Worker {
 public:
  // A worker on its own (no other workers to hand jobs to, no headroom check, no roster).
  explicit Worker(WorkerContext context);
  // A worker of `pool` on `device`: it writes its runner's state into the pool's roster, checks a
  // job's memory need before it starts (native runners), hands a claimed job to the worker the
  // pool chooses for it (one whose runner can run it, its model warm, its backend's queue
  // shortest) or puts it back in the queue until one can take it, and claims nothing while its
  // backend does not answer. With `budget`, a native worker is its member "native:<worker_id>":
  // a runner it starts for a job on a GPU first gets room there (its declared need), and another
  // start may have its idle runner stopped (stop_for_room).
  Worker(WorkerContext context, DevicePool& pool, WorkerDevice device,
         std::shared_ptr<DeviceBudget> budget = nullptr);
  ~Worker();
  // Claims and runs jobs until `stop` is requested, then shuts the runner down. While a backend
  // fails, claiming pauses: it is retried every poll interval, the error is logged when it first
  // appears (or changes) and the recovery once claims work again; errors never end the loop.
  void run(std::stop_token stop);
  // Waits up to `wait_ms` for a job, then runs it; false when none came.
  bool run_once(int64_t wait_ms = 0);
  // The runner drops its models and caches before the next job (ComfyUI's POST /free).
  void request_free();
  // From another thread (the budget making room): the idle runner is stopped on this worker's own
  // thread between jobs; waits, bounded, for that. True once it no longer runs; false when the
  // worker took a job meanwhile (it is not stopped) or the wait ran out.
  bool stop_for_room();

 private:
  // A job this worker runs, and the error it fails with unstarted (no runner anywhere can run it).
  struct Placed {
    queue::Delivery delivery;
    std::optional<nlohmann::json> refusal;
  };
  // The next job: one handed to this worker, else a claim (handed on to the runner chosen for it,
  // or put back in the queue while none can take it).
  std::optional<Placed> next_delivery(int64_t wait_ms);
  // Where the claimed `delivery` goes; nullopt when it went to another worker or back to the queue.
  std::optional<Placed> place(queue::Delivery delivery);
  // A backend worker whose backend does not answer claims nothing: false (the pause logged once).
  bool backend_answers();
  // After a job on a backend ended with "unavailable": the backend is marked down.
  void report_backend_failure(const std::string& job_id);
  // A pinned worker's runner is started and checked; false when the device left rotation.
  bool bring_up();
  // The runner frees its models now; its state is written again.
  void free_now();
  // Before a job: a runner that does not run gets room for its declared need on its GPU first;
  // the error that fails the job unstarted when it does not fit.
  std::optional<nlohmann::json> make_room();
  // Between jobs: stops the runner when stop_for_room asks (`busy`: a job is about to run, so the
  // request is declined).
  void answer_room_request(bool busy);
  // The budget member's id.
  std::string budget_id() const { return "native:" + context_.settings.worker_id; }
  // Before the headroom check on a device only the runner's hello names (--device auto): a runner
  // not yet running is started, so that its device is known.
  void start_runner_for_check();
  // Whether the job's last error says its runner crashed (not a timeout or a stop of ours).
  bool runner_crashed(const std::string& job_id);
  // Writes the runner's state into the roster (`held`: what its model cache now holds).
  void publish(const std::string& state, const RunnerMemoryReport& held);
  // "cpu" or "cuda:N": the pinned device, else what the runner's hello said.
  std::string device_name() const;
  // After a job ended by an outage of the database or the storage: claims nothing more until both
  // answer again (or the worker stops).
  void wait_for_backends();
  // Logs a failing claim unless it is the error already reported.
  void report_pause(const std::string& error);
  // Logs that claims work again after a reported error.
  void report_resume();

  WorkerContext context_;
  DevicePool* pool_ = nullptr;
  WorkerDevice device_;
  std::unique_ptr<HeadroomGuard> headroom_;
  CrashStreak crashes_;
  bool out_of_rotation_ = false;
  RunnerMemoryReport held_;  // what the runner's model cache holds, as last published
  std::atomic<bool> free_requested_{false};
  std::string paused_by_;  // the error claims last failed with ("" while they work)
  RunnerIdleStop idle_stop_{context_.settings.runner_idle_stop_ms};
  std::shared_ptr<DeviceBudget> budget_;
  int64_t last_used_ms_ = 0;  // when its last job ended (steady clock)
  std::mutex room_mutex_;     // guards the two below
  std::condition_variable room_answered_;
  bool room_requested_ = false;
  std::optional<bool> room_answer_;
};

}  // namespace df::worker
