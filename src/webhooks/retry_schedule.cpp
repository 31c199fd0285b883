// The webhook retry schedule.
#include "webhooks/retry_schedule.h"

#include <array>

namespace df::webhooks {
namespace {

constexpr std::array<int64_t, kMaxWebhookAttempts - 1> kDelayMultiples = {
    1, 6, 24, 60, 180, 360, 720, 1440, 2160, 2880, 3600};

}  // namespace

std::optional<int64_t> webhook_retry_delay_ms(int attempts_made, int64_t base_ms) {
  if (attempts_made < 1 || attempts_made >= kMaxWebhookAttempts) return std::nullopt;
  return kDelayMultiples[static_cast<size_t>(attempts_made - 1)] * base_ms;
}

bool webhook_retryable(int status) {
  return status == 0 || status == 408 || status == 429 || status >= 500;
}

}  // namespace df::webhooks
