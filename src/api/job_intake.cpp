// One job intake for /v1 jobs and ComfyUI's POST /prompt.
#include "api/job_intake.h"

#include <algorithm>

#include "api/job_dispatch.h"
#include "core/error.h"
#include "core/ids.h"
#include "telemetry/service_metrics.h"

namespace df::api {

JobIntake::JobIntake(store::Store& store, queue::Queue& queue, telemetry::Metrics& metrics,
                     WorkflowRouter& router)
    : store_(store), queue_(queue), metrics_(metrics), router_(router) {}

void JobIntake::admit(const http::Caller& caller) {
  if (caller.jobs_per_minute <= 0 && caller.max_concurrent_jobs <= 0) {
    metrics_.increment(telemetry::kJobAdmissions, {{"outcome", "accepted"}});
    return;
  }
  constexpr int64_t kMinuteMs = 60000;
  const int64_t now = now_ms();
  const auto counts = store_.count_owner_jobs(caller.user, now - kMinuteMs);
  auto refuse = [&](const std::string& limit, int64_t retry_after_s, const std::string& message) {
    metrics_.increment(telemetry::kJobAdmissions, {{"outcome", limit}});
    throw Error(ErrorCode::kRateLimited, message,
                {{"limit", limit}, {"retry_after_s", std::max<int64_t>(1, retry_after_s)}});
  };
  if (caller.jobs_per_minute > 0 && counts.created_since >= caller.jobs_per_minute) {
    // Free again once the oldest job of the window is a minute old.
    refuse("jobs_per_minute", (counts.oldest_since_ms + kMinuteMs - now + 999) / 1000,
           "this API key may make " + std::to_string(caller.jobs_per_minute) +
               " jobs a minute; try again later");
  }
  if (caller.max_concurrent_jobs > 0 && counts.unfinished >= caller.max_concurrent_jobs) {
    constexpr int64_t kConcurrencyRetryS = 5;  // when a job ends is not known: look again soon
    refuse("concurrent_jobs", kConcurrencyRetryS,
           "this API key may have " + std::to_string(caller.max_concurrent_jobs) +
               " jobs queued or running at once; wait for one to finish");
  }
  metrics_.increment(telemetry::kJobAdmissions, {{"outcome", "accepted"}});
}

void JobIntake::set_webhook_rules(webhooks::TargetPolicy targets, bool configured_secret) {
  webhook_targets_ = std::move(targets);
  configured_webhook_secret_ = configured_secret;
}

void JobIntake::check_webhook(Job& job, const http::Caller& caller, const std::string& field) const {
  if (job.webhook.url.empty()) return;
  auto refuse = [&](const std::string& message) {
    throw Error(ErrorCode::kInvalidArgument, field + ": " + message,
                {{"fields", {{{"field", field}, {"message", message}}}}});
  };
  try {
    webhook_targets_.check(job.webhook.url);
  } catch (const Error& e) {
    refuse(e.what());
  }
  if (!caller.has_webhook_secret && !configured_webhook_secret_) {
    refuse("nothing can sign this job's webhooks: the server has no DREAMFORGE_WEBHOOK_SECRET "
           "and the API key has no webhook secret of its own (keys made by `dreamforge keys "
           "create` have one)");
  }
  job.webhook.key_id = caller.key_id;
}

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
