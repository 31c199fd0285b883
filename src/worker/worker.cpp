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
  JobRun run(std::move(*delivery), context_);
  run.execute();
  if (run.ended_by_backend_outage()) wait_for_backends();
  return true;
}

void Worker::wait_for_backends() {
  while (!context_.stop.stop_requested()) {
    try {
      context_.store.ping();
      context_.blobs.check_writable();
      return;
    } catch (const std::exception& e) {
      report_pause(e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(context_.settings.poll_ms));
    }
  }
}

void Worker::run(std::stop_token stop) {
  context_.stop = stop;
  while (!stop.stop_requested()) {
    try {
      run_once(context_.settings.poll_ms);
      report_resume();
    } catch (const std::exception& e) {
      // Claiming pauses while a backend is down; a job keeps its lease until it expires and is
      // then claimed again: nothing is lost.
      report_pause(e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(context_.settings.poll_ms));
    }
    if (free_requested_.exchange(false)) context_.runner.free_memory();
  }
  context_.runner.stop();
}

void Worker::report_pause(const std::string& error) {
  if (error == paused_by_) return;
  paused_by_ = error;
  telemetry::service_log().error("worker " + context_.settings.worker_id +
                                 ": claiming paused, retrying every " +
                                 std::to_string(context_.settings.poll_ms) + " ms: " + error);
}

void Worker::report_resume() {
  if (paused_by_.empty()) return;
  paused_by_.clear();
  telemetry::service_log().info("worker " + context_.settings.worker_id + ": claiming again");
}

void Worker::request_free() {
  free_requested_ = true;
  context_.queue.wake();
}

}  // namespace df::worker
