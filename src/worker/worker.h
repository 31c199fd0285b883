// The worker: takes jobs from the queue and runs them one at a time in its runner.
#pragma once

#include <atomic>
#include <stop_token>
#include <string>

#include "worker/worker_context.h"

namespace df::worker {

class Worker {
 public:
  explicit Worker(WorkerContext context);
  // Claims and runs jobs until `stop` is requested, then shuts the runner down. While a backend
  // fails, claiming pauses: it is retried every poll interval, the error is logged when it first
  // appears (or changes) and the recovery once claims work again; errors never end the loop.
  void run(std::stop_token stop);
  // Waits up to `wait_ms` for a job, then runs it; false when none came.
  bool run_once(int64_t wait_ms = 0);
  // The runner drops its models and caches before the next job (ComfyUI's POST /free).
  void request_free();

 private:
  // After a job ended by an outage of the database or the storage: claims nothing more until both
  // answer again (or the worker stops).
  void wait_for_backends();
  // Logs a failing claim unless it is the error already reported.
  void report_pause(const std::string& error);
  // Logs that claims work again after a reported error.
  void report_resume();

  WorkerContext context_;
  std::atomic<bool> free_requested_{false};
  std::string paused_by_;  // the error claims last failed with ("" while they work)
};

}  // namespace df::worker
