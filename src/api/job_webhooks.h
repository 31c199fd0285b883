// Webhooks as the API speaks of them: the request fields that subscribe a job, the subscription
// on the job, and the deliveries GET /v1/jobs/{id}/webhooks lists.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "store/store.h"

namespace df::api {

// The JSON Schema properties "webhook" and "webhook_events" of a job request (POST /v1/jobs, and
// extra_data of ComfyUI's POST /prompt).
nlohmann::json webhook_request_properties();

// The subscription `fields` asks for with "webhook" and "webhook_events" (default: item and
// completed); an empty url when it has no webhook. Checks their form only (the target is checked
// by JobIntake); throws Error(kInvalidArgument) whose details.fields names `prefix` + the field.
WebhookSubscription webhook_subscription(const nlohmann::json& fields, const std::string& prefix = "");

// {url, events} as job views show it; null without a webhook.
nlohmann::json webhook_subscription_json(const WebhookSubscription& subscription);

// One delivery as GET /v1/jobs/{id}/webhooks lists it (its body left out).
nlohmann::json webhook_delivery_json(const store::WebhookDelivery& delivery);
nlohmann::json webhook_delivery_schema();

}  // namespace df::api
