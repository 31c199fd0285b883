// Webhook request fields, subscriptions and delivery views.
#include "api/job_webhooks.h"

#include <algorithm>

#include "core/error.h"
#include "core/ids.h"
#include "core/json_schema.h"

namespace df::api {
namespace {

using nlohmann::json;

const std::vector<std::string> kWebhookEvents = {"start", "progress", "item", "completed"};

json time_or_null(int64_t ms) { return ms > 0 ? json(iso8601_utc(ms)) : json(nullptr); }

}  // namespace

json webhook_request_properties() {
  return {{"webhook",
           {{"type", "string"},
            {"format", "uri"},
            {"maxLength", 2048},
            {"description",
             "An http(s) URL that receives the job's events as signed POSTs (Standard Webhooks: "
             "webhook-id, webhook-timestamp, webhook-signature). Internal addresses are refused "
             "unless the server allowlists them"}}},
          {"webhook_events",
           {{"type", "array"},
            {"items", {{"type", "string"}, {"enum", kWebhookEvents}}},
            {"minItems", 1},
            {"uniqueItems", true},
            {"default", {"item", "completed"}},
            {"description",
             "Which events are sent: start, progress (at most every 500 ms), item (an image is "
             "ready), completed (the job ended: succeeded, failed or canceled)"}}}};
}

WebhookSubscription webhook_subscription(const json& fields, const std::string& prefix) {
  WebhookSubscription subscription;
  if (!fields.is_object()) return subscription;
  json schema = {{"type", "object"}, {"properties", webhook_request_properties()}};
  std::vector<SchemaViolation> violations = validate_against_schema(schema, fields);
  const auto url = fields.find("webhook");
  const auto events = fields.find("webhook_events");
  if (violations.empty() && events != fields.end()) {
    if (url == fields.end() || url->is_null()) violations.push_back({"webhook_events", "needs a webhook"});
    auto names = events->get<std::vector<std::string>>();
    std::sort(names.begin(), names.end());
    if (std::adjacent_find(names.begin(), names.end()) != names.end()) {
      violations.push_back({"webhook_events", "names an event twice"});
    }
  }
  if (!violations.empty()) {
    json list = json::array();
    std::string summary;
    for (const auto& v : violations) {
      list.push_back({{"field", prefix + v.field}, {"message", v.message}});
      summary += (summary.empty() ? "" : "; ") + prefix + v.field + " " + v.message;
    }
    throw Error(ErrorCode::kInvalidArgument, "invalid webhook: " + summary, {{"fields", list}});
  }
  if (url == fields.end() || url->is_null()) return subscription;
  subscription.url = url->get<std::string>();
  subscription.events = events != fields.end()
                            ? events->get<std::vector<std::string>>()
                            : std::vector<std::string>{"item", "completed"};
  return subscription;
}

json webhook_subscription_json(const WebhookSubscription& subscription) {
  if (subscription.url.empty()) return nullptr;
  return {{"url", subscription.url}, {"events", subscription.events}};
}

json webhook_delivery_json(const store::WebhookDelivery& delivery) {
  return {{"id", delivery.id},
          {"event", delivery.event},
          {"event_id", delivery.event_id},
          {"url", delivery.url},
          {"status", delivery.status},
          {"attempts", delivery.attempts},
          {"last_status_code", delivery.last_status_code > 0 ? json(delivery.last_status_code) : json()},
          {"last_error", delivery.last_error.empty() ? json() : json(delivery.last_error)},
          {"next_attempt_at",
           delivery.status == "pending" ? time_or_null(delivery.next_attempt_ms) : json()},
          {"first_attempt_at", time_or_null(delivery.first_attempt_ms)},
          {"delivered_at", time_or_null(delivery.delivered_ms)},
          {"created_at", time_or_null(delivery.created_ms)}};
}

json webhook_delivery_schema() {
  const json time = {{"type", {"string", "null"}}, {"format", "date-time"}};
  return {{"type", "object"},
          {"properties",
           {{"id", {{"type", "string"}, {"description", "The webhook-id receivers deduplicate on"}}},
            {"event", {{"type", "string"}, {"enum", kWebhookEvents}}},
            {"event_id", {{"type", "integer"}}},
            {"url", {{"type", "string"}}},
            {"status",
             {{"type", "string"}, {"enum", {"pending", "delivered", "failed", "superseded"}}}},
            {"attempts", {{"type", "integer"}, {"minimum", 0}}},
            {"last_status_code", {{"type", {"integer", "null"}}}},
            {"last_error", {{"type", {"string", "null"}}}},
            {"next_attempt_at", time},
            {"first_attempt_at", time},
            {"delivered_at", time},
            {"created_at", time}}}};
}

}  // namespace df::api
