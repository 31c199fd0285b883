// Standard Webhooks signing with OpenSSL's HMAC-SHA256.
#include "webhooks/webhook_signature.h"

#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/base64.h"
#include "core/error.h"

namespace df::webhooks {
namespace {

constexpr std::string_view kSecretPrefix = "whsec_";

}  // namespace

std::string generate_webhook_secret() {
  std::vector<uint8_t> bytes(32);
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw Error(ErrorCode::kInternal, "no random bytes for a webhook secret");
  }
  return std::string(kSecretPrefix) + encode_base64(bytes);
}

std::vector<uint8_t> webhook_secret_key(std::string_view secret, std::string_view setting) {
  const auto refuse = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument,
                 std::string(setting) + " " + why +
                     " (a webhook secret is \"whsec_\" and base64 of 16 to 64 random bytes)");
  };
  if (secret.substr(0, kSecretPrefix.size()) != kSecretPrefix) {
    throw refuse("does not start with \"whsec_\"");
  }
  auto key = decode_base64(secret.substr(kSecretPrefix.size()));
  if (!key) throw refuse("is not base64 after \"whsec_\"");
  if (key->size() < 16 || key->size() > 64) throw refuse("has a key of the wrong length");
  return *key;
}

std::string sign_webhook(const std::vector<uint8_t>& key, std::string_view message_id,
                         int64_t timestamp_s, std::string_view body) {
  std::string content;
  content.reserve(message_id.size() + body.size() + 24);
  content.append(message_id).append(".").append(std::to_string(timestamp_s)).append(".").append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &length);
  return "v1," + encode_base64(std::vector<uint8_t>(mac, mac + length));
}

}  // namespace df::webhooks
