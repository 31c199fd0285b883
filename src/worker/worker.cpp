// The worker's claim loop.
#include "worker/worker.h"

#include <chrono>

#include "core/error.h"
#include "telemetry/service_log.h"
#include "worker/job_run.h"

namespace df::worker {

Worker::Worker(WorkerContext context) : context_(std::move(context)) {}

bool Worker::run_once() {
  auto job = context_.store.claim_job(context_.settings.worker_id, context_.settings.lease_ms);
  if (!job) return false;
  JobRun(std::move(*job), context_).execute();
  return true;
}

void Worker::run(std::stop_token stop) {
  context_.stop = stop;
  while (!stop.stop_requested()) {
    bool worked = false;
    try {
      worked = run_once();
    } catch (const std::exception& e) {
      // The job keeps its lease until it expires and is then claimed again: nothing is lost.
      telemetry::service_log().error("worker " + context_.settings.worker_id + ": " + e.what());
    }
    if (free_requested_.exchange(false)) context_.runner.free_memory();
    if (!worked) wait_for_work(stop);
  }
  context_.runner.stop();
}

void Worker::request_free() {
  free_requested_ = true;
  wake();
}

void Worker::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wakeup_.notify_all();
}

void Worker::wait_for_work(std::stop_token& stop) {
  std::unique_lock lock(mutex_);
  wakeup_.wait_for(lock, stop, std::chrono::milliseconds(context_.settings.poll_ms),
                   [this] { return woken_; });
  woken_ = false;
}

}  // namespace df::worker
