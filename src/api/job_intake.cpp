// One job intake for /v1 jobs and ComfyUI's POST /prompt.
#include "api/job_intake.h"

#include "api/job_dispatch.h"
#include "core/error.h"
#include "telemetry/service_metrics.h"

namespace df::api {

JobIntake::JobIntake(store::Store& store, queue::Queue& queue, telemetry::Metrics& metrics,
                     WorkflowRouter& router)
    : store_(store), queue_(queue), metrics_(metrics), router_(router) {}

store::CreateJobResult JobIntake::create(const Job& job,
                                         const std::function<void(const Job&)>& created) {
  store::CreateJobResult result;
  try {
    result = store_.create_job(job);
  } catch (const std::exception&) {
    // The id's uniqueness is the database's to keep: a lost race for it fails the insert.
    if (store_.get_job(job.id)) {
      throw Error(ErrorCode::kConflict, "job id '" + job.id + "' is already used",
                  {{"job_id", job.id}});
    }
    throw;
  }
  if (!result.created) return result;
  metrics_.increment(telemetry::kJobsCreated);
  dispatch_new_job(queue_, result.job);
  if (created) created(result.job);
  return result;
}

}  // namespace df::api
