// Where and how the S3 blob store talks to its bucket, read from an "s3://bucket?..." storage URL.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "blob/sigv4.h"

namespace df::blob {

struct S3Settings {
  std::string bucket;
  // Scheme and authority of the server ("http://127.0.0.1:9000"). Path-style requests put the
  // bucket in the path; virtual-hosted ones (AWS without an endpoint) have it in this host.
  std::string endpoint;
  bool path_style = true;
  // Where clients fetch presigned URLs from, when not at `endpoint` (a server the service reaches
  // by an inside name, such as http://minio:9000 in a Compose network); "" for `endpoint`.
  std::string public_endpoint;
  std::string region = "us-east-1";
  sigv4::Credentials credentials;
  // Files above the threshold are uploaded in parts of `part_size` (S3's smallest part is 5 MiB).
  int64_t multipart_threshold = 16 << 20;
  int64_t part_size = 16 << 20;
  int connect_timeout_seconds = 10;
  int stall_timeout_seconds = 30;  // a transfer without a byte of progress this long is retried
  int max_attempts = 5;            // per request; server errors (5xx), 429 and timeouts retry
  int first_retry_delay_ms = 200;  // doubled after each failed attempt
};

// How the settings find environment variables (std::getenv in the service, a map in tests).
using EnvironmentLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Reads "s3://bucket?endpoint=http://host:port&region=eu-west-1[&public_endpoint=http://...]".
// Without an endpoint the store
// talks to AWS (https://s3.<region>.amazonaws.com). Credentials come from
// DREAMFORGE_S3_ACCESS_KEY_ID / DREAMFORGE_S3_SECRET_ACCESS_KEY, else AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY. Throws Error(kInvalidArgument) naming DREAMFORGE_STORAGE_URL or the
// missing variable.
S3Settings parse_s3_storage_url(const std::string& url, const EnvironmentLookup& environment);

// The process environment as an EnvironmentLookup.
std::optional<std::string> process_environment(const std::string& name);

}  // namespace df::blob
