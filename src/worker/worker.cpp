// The worker's claim loop.
#include "worker/worker.h"

#include <chrono>
#include <thread>

#include "core/error.h"
#include "telemetry/service_log.h"
#include "worker/job_run.h"

namespace df::worker {

Worker::Worker(WorkerContext context) : context_(std::move(context)) {}

bool Worker::run_once(int64_t wait_ms) {
  auto delivery =
      context_.queue.claim(context_.settings.worker_id, context_.settings.lease_ms, wait_ms);
  if (!delivery) return false;
  JobRun(std::move(*delivery), context_).execute();
  return true;
}

void Worker::run(std::stop_token stop) {
  context_.stop = stop;
  while (!stop.stop_requested()) {
    try {
      run_once(context_.settings.poll_ms);
    } catch (const std::exception& e) {
      // Claiming pauses while a backend is down; a job keeps its lease until it expires and is
      // then claimed again: nothing is lost.
      telemetry::service_log().error("worker " + context_.settings.worker_id + ": " + e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(context_.settings.poll_ms));
    }
    if (free_requested_.exchange(false)) context_.runner.free_memory();
  }
  context_.runner.stop();
}

void Worker::request_free() {
  free_requested_ = true;
  context_.queue.wake();
}

}  // namespace df::worker
