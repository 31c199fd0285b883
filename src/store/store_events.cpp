// The records a store writes on its own, in the same transaction as the change they tell of.
#include "store/store_events.h"

namespace df::store {

Event job_queued_event(const Job& job) {
  Event queued;
  queued.job_id = job.id;
  queued.type = "job_queued";
  queued.message = "job queued";
  queued.plain = "Your job is waiting in the queue.";
  queued.created_ms = job.created_ms;
  return queued;
}

nlohmann::json canceled_while_queued_error() {
  return {{"code", "canceled"},
          {"message", "canceled before it started"},
          {"details", nlohmann::json::object()}};
}

Event canceled_while_queued_event(const Job& job) {
  Event finished;
  finished.job_id = job.id;
  finished.type = "job_finished";
  finished.code = "canceled";
  finished.message = "job canceled while queued";
  finished.plain = "Your job was canceled before it started.";
  finished.data = {{"status", "canceled"}, {"progress", job.progress}};
  return finished;
}

}  // namespace df::store
