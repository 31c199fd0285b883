// The worker: takes jobs from the queue and runs them one at a time in its runner.
#pragma once

#include <atomic>
#include <stop_token>

#include "worker/worker_context.h"

namespace df::worker {

class Worker {
 public:
  explicit Worker(WorkerContext context);
  // Claims and runs jobs until `stop` is requested, then shuts the runner down. Errors of the
  // backends are reported on stderr and retried after the poll interval; they never end the loop.
  void run(std::stop_token stop);
  // Waits up to `wait_ms` for a job, then runs it; false when none came.
  bool run_once(int64_t wait_ms = 0);
  // The runner drops its models and caches before the next job (ComfyUI's POST /free).
  void request_free();

 private:
  WorkerContext context_;
  std::atomic<bool> free_requested_{false};
};

}  // namespace df::worker
