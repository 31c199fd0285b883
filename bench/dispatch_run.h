// One run of the dispatch benchmark: a producer, N workers with a runner that does no work, and
// the timings of every job from enqueue to claim and finish.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "queue/queue.h"
#include "store/store.h"

namespace df::bench {

struct DispatchPlan {
  int workers = 1;
  int jobs = 1000;
  // none: a backlog, every job created and enqueued before the workers start
  std::optional<double> jobs_per_s;
  int64_t claim_wait_ms = 200;
  int64_t lease_ms = 30000;
  int64_t stall_ms = 30000;  // the run fails when no job finished for this long
};

struct DispatchTimings {
  std::vector<std::string> job_ids;  // in the order they were created
  // From the first worker's start to the last finish. A backlog is complete before the workers
  // start; at a rate they start with the producer's first create.
  double seconds = 0;
  double producer_seconds = 0;  // first create to the last enqueue returning
  // Per job: from the producer calling enqueue (the job is committed) to a worker holding the
  // claim. Not from enqueue returning: on few cores the worker the enqueue wakes often holds the
  // job before the producer's enqueue call has returned.
  std::vector<double> claim_delay_ms;
  int claimed_before_enqueue = 0;  // held before enqueue was called (a polling claim); counted as 0
  std::vector<int> deliveries;     // per job: how often a worker was handed it
};

// Runs the plan to the end; throws Error when a worker or the producer fails, when a worker's
// finish is refused (it lost its lease), or when the run stalls.
DispatchTimings run_dispatch(store::Store& store, queue::Queue& queue, const DispatchPlan& plan);

// Throws Error(kInternal) unless every job of the run is succeeded in the store, was claimed once,
// has one job_finished event, and was handed to a worker exactly once.
void check_each_job_succeeded_once(store::Store& store, const DispatchTimings& timings);

}  // namespace df::bench
