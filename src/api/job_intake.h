// One job intake for both dialects: /v1 jobs and ComfyUI's POST /prompt are stored, counted and
// queued the same way, with the runners that can run them chosen by the same router.
#pragma once

#include <functional>

#include "api/workflow_validation.h"
#include "core/job.h"
#include "http/message.h"
#include "queue/queue.h"
#include "store/store.h"
#include "telemetry/metrics.h"
#include "webhooks/webhook_target.h"

namespace df::api {

class JobIntake {
 public:
  JobIntake(store::Store& store, queue::Queue& queue, telemetry::Metrics& metrics,
            WorkflowRouter& router);

  // Validates a workflow graph and picks its runners (see WorkflowRouter::route).
  RoutingDecision route(const nlohmann::json& graph,
                        const std::vector<std::string>& partial_targets = {}) {
    return router_.route(graph, partial_targets);
  }
  WorkflowRouter& router() { return router_; }

  // Lets a caller's new job in, or throws Error(kRateLimited, details {limit, retry_after_s})
  // when their key's limits are reached: jobs made by its user in the last minute, or its user's
  // queued and running jobs. Counts the outcome (dreamforge_job_admissions_total). A soft limit:
  // requests racing each other may pass it together.
  void admit(const http::Caller& caller);

  // Where webhooks may go, and whether the server has a secret of its own to sign them (else
  // only jobs made with a key that has one may ask for webhooks). Default: public targets only,
  // no secret.
  void set_webhook_rules(webhooks::TargetPolicy targets, bool configured_secret);
  // Checks a new job's webhook, if it has one: its target (field `field`) may be reached and
  // something can sign its deliveries; records the caller's key as their signer. Throws
  // Error(kInvalidArgument) whose details.fields names `field`.
  void check_webhook(Job& job, const http::Caller& caller, const std::string& field) const;

  // Stores a new job; when it is new, counts it (dreamforge_jobs_created_total), hands it to the
  // queue and calls `created` with it. An earlier job with the same Idempotency-Key and body is
  // returned as it is (created: false). Throws Error(kConflict, details.job_id) when a job with
  // this id exists already (a caller-chosen id, such as ComfyUI's prompt_id, used twice; also
  // when two requests race for it), and what the store throws otherwise.
  store::CreateJobResult create(const Job& job,
                                const std::function<void(const Job&)>& created = {});

 private:
  store::Store& store_;
  queue::Queue& queue_;
  telemetry::Metrics& metrics_;
  WorkflowRouter& router_;
  webhooks::TargetPolicy webhook_targets_;
  bool configured_webhook_secret_ = false;
};

}  // namespace df::api
