// Sends the stored webhook deliveries: threads that claim due deliveries, sign and post them,
// and record each attempt (delivered, again later on the retry schedule, or given up).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "store/store.h"
#include "telemetry/metrics.h"
#include "webhooks/webhook_sender.h"
#include "webhooks/webhook_target.h"

namespace df::webhooks {

struct WebhookSettings {
  std::string secret;           // the configured "whsec_" secret ("": only keys' secrets)
  int64_t retry_base_ms = 5000;  // the retry schedule's first wait
  int64_t timeout_ms = 10000;    // one attempt at most
  int senders = 4;               // deliveries in flight at once
  int64_t poll_ms = 500;         // how often idle senders look for due deliveries without news
};

// The `data` of a delivery about `event` of `job` (the API's view of the job, with what the
// event adds).
using PayloadRenderer =
    std::function<nlohmann::json(const Job& job, const Event& event, const std::string& name)>;

// The body of a delivery: {"type": "job.<event>", "timestamp": ISO time of the event, "data"}.
nlohmann::json webhook_payload(const store::WebhookDelivery& delivery, const Event& event,
                               nlohmann::json data);

class WebhookDispatcher {
 public:
  // Starts settings.senders threads.
  WebhookDispatcher(store::Store& store, WebhookSettings settings, TargetPolicy policy,
                    telemetry::Metrics& metrics, PayloadRenderer render);
  ~WebhookDispatcher();  // stops the threads; a delivery in flight finishes its attempt first
  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;

  // A job has new events (maybe new deliveries): idle senders look now.
  void wake();
  // One attempt at a claimed delivery, recorded in the store.
  void attempt(const store::WebhookDelivery& delivery);

 private:
  void run(const std::stop_token& stop);
  // The delivery's body: kept from its first attempt, else rendered now ("" when its job or
  // event is gone).
  std::string payload_of(const store::WebhookDelivery& delivery, const Job& job);
  // The "whsec_" secret that signs the job's deliveries ("" when there is none).
  std::string secret_for(const Job& job);
  // Stores the attempt's outcome: delivered (2xx), pending on the retry schedule when
  // `retryable` and attempts are left, failed otherwise; and counts it.
  void record(const store::WebhookDelivery& delivery, const std::string& payload,
              const WebhookAnswer& answer, bool retryable);

  store::Store& store_;
  WebhookSettings settings_;
  const TargetPolicy policy_;
  telemetry::Metrics& metrics_;
  PayloadRenderer render_;
  std::mutex mutex_;
  std::condition_variable_any idle_;
  uint64_t news_ = 0;  // wake() calls so far
  std::vector<std::jthread> senders_;
};

}  // namespace df::webhooks
