// What a worker and the runs it drives share: backends, the runner, settings, metrics, notifier.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "blob/blob_store.h"
#include "core/job.h"
#include "core/live_image.h"
#include "queue/queue.h"
#include "store/store.h"
#include "telemetry/metrics.h"
#include "worker/prewarm.h"
#include "worker/runner_supervisor.h"

namespace df::worker {

struct WorkerSettings {
  std::string worker_id;
  int64_t lease_ms = 15000;       // a claim lasts this long unless renewed
  int64_t heartbeat_ms = 3000;    // renewal interval
  int64_t poll_ms = 500;          // longest wait for the queue before looking again when idle
  int64_t step_timeout_ms = 30 * 60 * 1000;
  // A runner that sends nothing for this long during a run is hung: stopped, and the job retried.
  int64_t runner_silence_ms = 10 * 60 * 1000;
  int64_t retry_base_ms = 2000;   // first retry delay; doubles per attempt
  int64_t retry_max_ms = 60000;
  // Memory hygiene: what a step may leave behind beyond the models the runner keeps warm, and how
  // long a stopped runner's memory is waited for before the job is marked anyway.
  int64_t memory_epsilon_bytes = int64_t{64} << 20;
  int64_t memory_release_wait_ms = 10000;
  // A runner idle this long is stopped (the next job starts it again); 0: never.
  int64_t runner_idle_stop_ms = 5 * 60 * 1000;
  // What a native runner on a GPU declares it needs to start (DeviceBudget); 0: not checked.
  int64_t runner_memory_need_bytes = 0;
  // Models a native runner loads when the worker starts (the routing table's `prewarm`).
  std::vector<PrewarmModel> prewarm;
  std::string output_dir;         // SaveImage files (kept: ComfyUI's /view serves them)
  std::string temp_dir;           // PreviewImage files
};

struct WorkerContext {
  store::Store& store;
  queue::Queue& queue;
  blob::BlobStore& blobs;
  RunnerSupervisor& runner;
  telemetry::Metrics& metrics;
  const WorkerSettings& settings;
  std::function<void(const std::string& job_id)> on_event;  // new events were appended
  // A latent preview or a streamed whole image of a job, not stored: it goes straight to the
  // client watching the job.
  std::function<void(const Job& job, const LiveImage& image)> on_live_image;
  std::stop_token stop;  // set by Worker::run: a running job is handed back when it fires
  // Asked before a job starts: nullopt runs it; an error ({code, message, details}) fails it
  // unstarted (its preset's memory need does not fit its device). May wait, bounded, for memory.
  std::function<std::optional<nlohmann::json>(const Job& job)> before_start;
};

}  // namespace df::worker
