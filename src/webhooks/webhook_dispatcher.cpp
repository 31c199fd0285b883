// The webhook senders: claim, render once, sign per attempt, post, record, count.
#include "webhooks/webhook_dispatcher.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "telemetry/service_metrics.h"
#include "webhooks/retry_schedule.h"
#include "webhooks/webhook_sender.h"
#include "webhooks/webhook_signature.h"

namespace df::webhooks {
namespace {

using nlohmann::json;

// A claim outlives its attempt by this much, so a live sender's claim never lapses.
constexpr int64_t kLeaseMarginMs = 5000;
// The longest a receiver's Retry-After may push the next attempt out.
constexpr int64_t kMaxRetryAfterMs = int64_t{6} * 3600 * 1000;

}  // namespace

json webhook_payload(const store::WebhookDelivery& delivery, const Event& event, json data) {
  return {{"type", "job." + delivery.event},
          {"timestamp", iso8601_utc(event.created_ms)},
          {"data", std::move(data)}};
}

WebhookDispatcher::WebhookDispatcher(store::Store& store, WebhookSettings settings,
                                     TargetPolicy policy, telemetry::Metrics& metrics,
                                     PayloadRenderer render)
    : store_(store),
      settings_(std::move(settings)),
      policy_(std::move(policy)),
      metrics_(metrics),
      render_(std::move(render)) {
  for (int i = 0; i < std::max(1, settings_.senders); ++i) {
    senders_.emplace_back([this](const std::stop_token& stop) { run(stop); });
  }
}

WebhookDispatcher::~WebhookDispatcher() {
  for (auto& sender : senders_) sender.request_stop();
  idle_.notify_all();
  senders_.clear();
}

void WebhookDispatcher::wake() {
  {
    std::lock_guard lock(mutex_);
    ++news_;
  }
  idle_.notify_all();
}

void WebhookDispatcher::run(const std::stop_token& stop) {
  uint64_t seen = 0;
  while (!stop.stop_requested()) {
    {
      std::lock_guard lock(mutex_);
      seen = news_;
    }
    std::vector<store::WebhookDelivery> claimed;
    try {
      claimed = store_.claim_webhook_deliveries(1, settings_.timeout_ms + kLeaseMarginMs);
      for (const auto& delivery : claimed) attempt(delivery);
    } catch (const std::exception&) {
      // The database did not answer: the claim lapses and the delivery is tried again.
      claimed.clear();
    }
    if (claimed.empty()) {
      std::unique_lock lock(mutex_);
      idle_.wait_for(lock, stop, std::chrono::milliseconds(settings_.poll_ms),
                     [&] { return news_ != seen; });
    }
  }
}

void WebhookDispatcher::attempt(const store::WebhookDelivery& delivery) {
  const auto give_up = [&](const std::string& payload, const std::string& why) {
    record(delivery, payload, {0, why, 0, false}, false);
  };
  if (delivery.attempts > kMaxWebhookAttempts) {  // claims that lapsed: senders died mid-attempt
    give_up(delivery.payload, "gave up after " + std::to_string(kMaxWebhookAttempts) + " attempts");
    return;
  }
  const auto job = store_.get_job(delivery.job_id);
  WebhookPost post;
  try {
    post.body = job ? payload_of(delivery, *job) : "";
    if (post.body.empty()) return give_up("", "its job or event no longer exists");
    const std::string secret = secret_for(*job);
    if (secret.empty()) {
      return give_up(post.body, "no secret to sign it with: set DREAMFORGE_WEBHOOK_SECRET");
    }
    const int64_t timestamp_s = now_ms() / 1000;
    post.headers = {{"webhook-id", delivery.id},
                    {"webhook-timestamp", std::to_string(timestamp_s)},
                    {"webhook-signature",
                     sign_webhook(webhook_secret_key(secret, "the webhook secret"), delivery.id,
                                  timestamp_s, post.body)}};
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnavailable) throw;  // the database: the claim lapses, tried again
    return give_up(post.body, std::string("it could not be made: ") + e.what());
  }
  post.url = delivery.url;
  post.timeout_ms = settings_.timeout_ms;
  const auto started = std::chrono::steady_clock::now();
  const WebhookAnswer answer = post_webhook(post, policy_);
  metrics_.observe(telemetry::kWebhookAttemptDuration, {},
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  const bool delivered = answer.status >= 200 && answer.status < 300;
  record(delivery, post.body, answer,
         !delivered && !answer.refused && webhook_retryable(answer.status));
}

std::string WebhookDispatcher::payload_of(const store::WebhookDelivery& delivery, const Job& job) {
  if (!delivery.payload.empty()) return delivery.payload;
  const auto event = store_.get_event(delivery.event_id);
  if (!event) return "";
  return dump_json(webhook_payload(delivery, *event, render_(job, *event, delivery.event)));
}

std::string WebhookDispatcher::secret_for(const Job& job) {
  if (!job.webhook.key_id.empty()) {
    const auto key = store_.get_api_key(job.webhook.key_id);
    if (key && !key->webhook_secret.empty()) return key->webhook_secret;
  }
  return settings_.secret;
}

void WebhookDispatcher::record(const store::WebhookDelivery& delivery, const std::string& payload,
                               const WebhookAnswer& answer, bool retryable) {
  store::WebhookAttempt attempt;
  attempt.delivery_id = delivery.id;
  attempt.attempt = delivery.attempts;
  attempt.status_code = answer.status;
  attempt.error = answer.error;
  attempt.payload = payload;
  std::string outcome;
  const auto delay = retryable ? webhook_retry_delay_ms(delivery.attempts, settings_.retry_base_ms)
                               : std::nullopt;
  if (answer.status >= 200 && answer.status < 300) {
    attempt.status = outcome = "delivered";
  } else if (delay) {
    int64_t wait = std::max(*delay, std::min(answer.retry_after_ms, kMaxRetryAfterMs));
    if (delivery.event == "progress") wait = std::max(wait, store::kProgressWebhookIntervalMs);
    attempt.status = "pending";
    attempt.next_attempt_ms = now_ms() + wait;
    outcome = "retrying";
  } else {
    attempt.status = "failed";
    outcome = answer.refused ? "refused" : "failed";
  }
  store_.record_webhook_attempt(attempt);
  metrics_.increment(telemetry::kWebhookAttempts, {{"event", delivery.event}, {"outcome", outcome}});
}

}  // namespace df::webhooks
