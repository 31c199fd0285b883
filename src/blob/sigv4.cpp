// AWS Signature Version 4 signing with OpenSSL's HMAC-SHA256.
#include "blob/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "core/sha256.h"

namespace df::blob::sigv4 {

namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string hmac_sha256(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (const unsigned char byte : bytes) {
    hex += kHex[byte >> 4];
    hex += kHex[byte & 15];
  }
  return hex;
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// The header value with its ends trimmed and inner runs of spaces folded into one.
std::string canonical_header_value(std::string_view value) {
  std::string folded;
  bool in_space = false;
  for (const char c : value) {
    if (c == ' ' || c == '\t') {
      in_space = true;
      continue;
    }
    if (in_space && !folded.empty()) folded += ' ';
    in_space = false;
    folded += c;
  }
  return folded;
}

// Headers with lowercase names, sorted by name; repeated names keep their order.
Pairs canonical_headers(const Pairs& headers) {
  Pairs canonical;
  for (const auto& [name, value] : headers) {
    canonical.emplace_back(lowercase(name), canonical_header_value(value));
  }
  std::stable_sort(canonical.begin(), canonical.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return canonical;
}

std::string credential_scope(const std::string& date, const Scope& scope) {
  return date.substr(0, 8) + "/" + scope.region + "/" + scope.service + "/aws4_request";
}

std::string signing_key(const std::string& secret, const std::string& date, const Scope& scope) {
  const std::string day = hmac_sha256("AWS4" + secret, date.substr(0, 8));
  const std::string region = hmac_sha256(day, scope.region);
  const std::string service = hmac_sha256(region, scope.service);
  return hmac_sha256(service, "aws4_request");
}

}  // namespace

std::string uri_encode(std::string_view text, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (c == '/' && !encode_slash)) {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
  }
  return encoded;
}

std::string amz_date(int64_t epoch_seconds) {
  const std::time_t time = static_cast<std::time_t>(epoch_seconds);
  std::tm utc{};
  gmtime_r(&time, &utc);
  char text[20];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

std::string canonical_query(const Pairs& query) {
  Pairs encoded;
  for (const auto& [name, value] : query) {
    encoded.emplace_back(uri_encode(name, true), uri_encode(value, true));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string joined;
  for (const auto& [name, value] : encoded) {
    if (!joined.empty()) joined += '&';
    joined += name + "=" + value;
  }
  return joined;
}

std::string signed_header_names(const Request& request) {
  std::string names;
  std::string previous;
  for (const auto& [name, value] : canonical_headers(request.headers)) {
    if (name == previous) continue;
    if (!names.empty()) names += ';';
    names += name;
    previous = name;
  }
  return names;
}

std::string canonical_request(const Request& request) {
  std::string headers;
  const Pairs sorted = canonical_headers(request.headers);
  for (size_t i = 0; i < sorted.size(); ++i) {
    const bool continues = i > 0 && sorted[i - 1].first == sorted[i].first;
    if (continues) {
      headers += "," + sorted[i].second;  // a repeated header's values join with commas
    } else {
      if (i > 0) headers += '\n';
      headers += sorted[i].first + ":" + sorted[i].second;
    }
  }
  return request.method + "\n" + request.path + "\n" + canonical_query(request.query) + "\n" +
         headers + "\n\n" + signed_header_names(request) + "\n" + request.payload_hash;
}

std::string signature(const Request& request, const Credentials& credentials, const Scope& scope,
                      const std::string& date) {
  const std::string canonical = canonical_request(request);
  const std::string string_to_sign = std::string(kAlgorithm) + "\n" + date + "\n" +
                                     credential_scope(date, scope) + "\n" +
                                     sha256_hex(canonical.data(), canonical.size());
  return to_hex(
      hmac_sha256(signing_key(credentials.secret_access_key, date, scope), string_to_sign));
}

std::string authorization(const Request& request, const Credentials& credentials,
                          const Scope& scope, const std::string& date) {
  return std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
         credential_scope(date, scope) + ", SignedHeaders=" + signed_header_names(request) +
         ", Signature=" + signature(request, credentials, scope, date);
}

std::string presigned_query(Request request, const Credentials& credentials, const Scope& scope,
                            const std::string& date, int64_t expires_seconds) {
  request.payload_hash = "UNSIGNED-PAYLOAD";
  request.query.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
  request.query.emplace_back("X-Amz-Credential",
                             credentials.access_key_id + "/" + credential_scope(date, scope));
  request.query.emplace_back("X-Amz-Date", date);
  request.query.emplace_back("X-Amz-Expires", std::to_string(expires_seconds));
  request.query.emplace_back("X-Amz-SignedHeaders", signed_header_names(request));
  return canonical_query(request.query) +
         "&X-Amz-Signature=" + signature(request, credentials, scope, date);
}

}  // namespace df::blob::sigv4
