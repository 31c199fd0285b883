// One webhook POST over libcurl: no proxies, no redirects, and no connection to an address the
// target policy refuses (checked on the very address connected to, so DNS cannot trick it).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "webhooks/webhook_target.h"

namespace df::webhooks {

struct WebhookPost {
  std::string url;
  std::string body;  // JSON
  std::vector<std::pair<std::string, std::string>> headers;
  int64_t timeout_ms = 10000;  // the whole attempt
};

struct WebhookAnswer {
  int status = 0;            // the receiver's HTTP status; 0 when there was none
  std::string error;         // why there was none, or what a failing status said
  int64_t retry_after_ms = 0;  // the receiver's Retry-After (0: none)
  bool refused = false;      // the policy refused the target address
};

WebhookAnswer post_webhook(const WebhookPost& post, const TargetPolicy& policy);

}  // namespace df::webhooks
