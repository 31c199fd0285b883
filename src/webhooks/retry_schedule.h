// When a failed webhook delivery is tried again: 12 attempts over about 16 hours by default.
#pragma once

#include <cstdint>
#include <optional>

namespace df::webhooks {

inline constexpr int kMaxWebhookAttempts = 12;

// The wait after the `attempts_made`-th failed attempt: base, 6, 24, 60, 180, 360, 720, 1440,
// 2160, 2880 and 3600 times `base_ms` (5 s, 30 s, 2 min, ... 5 h for the default 5 s); nullopt
// once kMaxWebhookAttempts were made.
std::optional<int64_t> webhook_retry_delay_ms(int attempts_made, int64_t base_ms);

// Whether an answer is worth another attempt: none at all (status 0: timeout, refused
// connection), 408, 429 and 5xx. Other statuses are the receiver's final word.
bool webhook_retryable(int status);

}  // namespace df::webhooks
