// Signed S3 requests over libcurl, retried with backoff, and presigned GET URLs.
#pragma once

#include <cstdint>
#include <string>

#include "blob/s3_response.h"
#include "blob/s3_settings.h"
#include "blob/sigv4.h"

namespace df::blob {

struct S3Request {
  std::string method;
  std::string key;  // the object; empty for the bucket itself
  sigv4::Pairs query;
  sigv4::Pairs headers;  // besides host, x-amz-date and x-amz-content-sha256, which are added
  std::string body;
};

// Safe to use from several threads: every request has its own libcurl handle.
class S3Client {
 public:
  explicit S3Client(S3Settings settings);

  // Sends the request signed (its body hashed into the signature, so the server checks it),
  // retrying server errors (5xx), 429 and failed or stalled transfers with doubling delays.
  // Returns the last answer, whatever its status; throws Error(kUnavailable) when the server
  // could not be reached on the last attempt.
  S3Response send(const S3Request& request) const;

  // A URL that GETs the object without credentials until `ttl_seconds` from now (S3 allows at
  // most 7 days; longer TTLs are cut to that).
  std::string presigned_get_url(const std::string& key, int64_t ttl_seconds) const;

  const S3Settings& settings() const { return settings_; }

 private:
  std::string path_of(const std::string& key) const;
  std::string host() const;

  S3Settings settings_;
  sigv4::Scope scope_;
};

}  // namespace df::blob
