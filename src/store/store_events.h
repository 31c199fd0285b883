// The records a store writes on its own, in the same transaction as the change they tell of.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"

namespace df::store {

// The first event of every job: it is waiting in the queue.
Event job_queued_event(const Job& job);

// The error a job canceled before it started ends with.
nlohmann::json canceled_while_queued_error();

// The terminal event of a job canceled before it started.
Event canceled_while_queued_event(const Job& job);

// The webhook outbox: what a stored event asks of a job's subscription.
struct WebhookOutboxStep {
  std::string event;            // the delivery's event: start | progress | item | completed
  bool coalesce = false;        // fold it into the job's progress delivery still waiting unsent
  bool supersede_progress = false;  // a waiting progress delivery is stale now
  bool throttle = false;        // due kProgressWebhookIntervalMs after the job's last progress one
};

// The webhook event a stored event is (job_started: start, progress: progress, item_finished:
// item, job_finished: completed), nullopt for the others.
std::optional<std::string> webhook_event_name(const Event& event);

// nullopt when the job's subscription does not want this event.
std::optional<WebhookOutboxStep> webhook_outbox_step(const WebhookSubscription& subscription,
                                                     const Event& event);

// A subscription's events as a column keeps them ("start,completed"), and back.
std::string join_webhook_events(const std::vector<std::string>& events);
std::vector<std::string> split_webhook_events(const std::string& text);

// A new delivery id ("msg_" and a UUIDv7 without dashes).
std::string new_webhook_delivery_id();

}  // namespace df::store
