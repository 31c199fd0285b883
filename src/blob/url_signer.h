// HMAC-SHA256 signatures for time-limited file URLs served by the API itself.
#pragma once

#include <cstdint>
#include <string>

namespace df::blob {

class UrlSigner {
 public:
  explicit UrlSigner(std::string secret);
  // "sig" for (key, expires_epoch_seconds).
  std::string signature(const std::string& key, int64_t expires) const;
  // Throws Error(kForbidden) for a wrong signature or a URL past its expiry.
  void verify(const std::string& key, int64_t expires, const std::string& signature,
              int64_t now_seconds) const;

 private:
  std::string secret_;
};

}  // namespace df::blob
