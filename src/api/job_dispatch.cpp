// Hands a saved job to the queue.
#include "api/job_dispatch.h"

#include "telemetry/service_log.h"

namespace df::api {

void dispatch_new_job(queue::Queue& queue, const Job& job) {
  try {
    queue.enqueue(job);
  } catch (const std::exception& e) {
    telemetry::service_log().error("job " + job.id + " is saved but not yet dispatched (" +
                                   e.what() + "); the queue picks it up when it is back");
  }
}

}  // namespace df::api
