// The worker: claims jobs from the database queue and runs them one at a time in its runner.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stop_token>

#include "worker/worker_context.h"

namespace df::worker {

class Worker {
 public:
  explicit Worker(WorkerContext context);
  // Claims and runs jobs until `stop` is requested, then shuts the runner down. Errors of the
  // backends are reported on stderr and retried after the poll interval; they never end the loop.
  void run(std::stop_token stop);
  // Claims and runs one job; false when none was claimable.
  bool run_once();
  // A job was queued: stop waiting for the poll interval.
  void wake();
  // The runner drops its models and caches before the next job (ComfyUI's POST /free).
  void request_free();

 private:
  void wait_for_work(std::stop_token& stop);

  WorkerContext context_;
  std::mutex mutex_;
  std::condition_variable_any wakeup_;
  bool woken_ = false;
  std::atomic<bool> free_requested_{false};
};

}  // namespace df::worker
