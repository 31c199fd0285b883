// HMAC-SHA256 signatures for time-limited file URLs.
#include "blob/url_signer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/error.h"

namespace df::blob {

UrlSigner::UrlSigner(std::string secret) : secret_(std::move(secret)) {
  if (secret_.size() < 16) throw Error(ErrorCode::kInternal, "URL signing secret is too short");
}

std::string UrlSigner::signature(const std::string& key, int64_t expires) const {
  const std::string message = key + "\n" + std::to_string(expires);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

void UrlSigner::verify(const std::string& key, int64_t expires, const std::string& given,
                       int64_t now_seconds) const {
  const std::string expected = signature(key, expires);
  if (given.size() != expected.size() ||
      CRYPTO_memcmp(given.data(), expected.data(), expected.size()) != 0) {
    throw Error(ErrorCode::kForbidden, "the file URL's signature is not valid");
  }
  if (now_seconds > expires) {
    throw Error(ErrorCode::kForbidden, "the file URL has expired; ask the job for a fresh one",
                {{"expired_at", expires}});
  }
}

}  // namespace df::blob
