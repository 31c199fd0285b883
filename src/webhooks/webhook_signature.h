// Standard Webhooks signatures: "whsec_" secrets and the webhook-signature header's "v1," HMACs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace df::webhooks {

// A new secret: "whsec_" and 32 random bytes in base64.
std::string generate_webhook_secret();

// The key bytes of a "whsec_..." secret; throws Error(kInvalidArgument) naming `setting` when it
// is not "whsec_" and base64 of 16 to 64 bytes.
std::vector<uint8_t> webhook_secret_key(std::string_view secret, std::string_view setting);

// "v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'>": the webhook-signature header.
std::string sign_webhook(const std::vector<uint8_t>& key, std::string_view message_id,
                         int64_t timestamp_s, std::string_view body);

}  // namespace df::webhooks
