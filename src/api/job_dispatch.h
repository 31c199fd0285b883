// Hands a job the API just saved to the queue, without failing the request when the queue is down.
#pragma once

#include "core/job.h"
#include "queue/queue.h"

namespace df::api {

// Enqueues the saved job. When the queue cannot be reached the job stays saved as queued and the
// queue's reconciliation dispatches it later, so the error is logged rather than returned.
void dispatch_new_job(queue::Queue& queue, const Job& job);

}  // namespace df::api
