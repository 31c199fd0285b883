// The records a store writes on its own, in the same transaction as the change they tell of.
#pragma once

#include <nlohmann/json.hpp>

#include "core/job.h"

namespace df::store {

// The first event of every job: it is waiting in the queue.
Event job_queued_event(const Job& job);

// The error a job canceled before it started ends with.
nlohmann::json canceled_while_queued_error();

// The terminal event of a job canceled before it started.
Event canceled_while_queued_event(const Job& job);

}  // namespace df::store
