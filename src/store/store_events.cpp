// The records a store writes on its own, in the same transaction as the change they tell of.
#include "store/store_events.h"

#include <algorithm>

#include "core/ids.h"

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

std::optional<std::string> webhook_event_name(const Event& event) {
  if (event.type == "job_started") return "start";
  if (event.type == "progress") return "progress";
  if (event.type == "item_finished") return "item";
  if (event.type == "job_finished") return "completed";
  return std::nullopt;
}

std::optional<WebhookOutboxStep> webhook_outbox_step(const WebhookSubscription& subscription,
                                                     const Event& event) {
  const auto name = webhook_event_name(event);
  if (!name || !subscription.subscribes(*name)) return std::nullopt;
  WebhookOutboxStep step;
  step.event = *name;
  step.coalesce = step.throttle = *name == "progress";
  step.supersede_progress = *name == "progress" || *name == "completed";
  return step;
}

std::string join_webhook_events(const std::vector<std::string>& events) {
  std::string text;
  for (const auto& event : events) text += (text.empty() ? "" : ",") + event;
  return text;
}

std::vector<std::string> split_webhook_events(const std::string& text) {
  std::vector<std::string> events;
  size_t start = 0;
  while (start < text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    if (comma > start) events.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return events;
}

std::string new_webhook_delivery_id() {
  std::string id = new_uuid_v7();
  id.erase(std::remove(id.begin(), id.end(), '-'), id.end());
  return "msg_" + id;
}

}  // namespace df::store
