// AWS Signature Version 4 (HMAC-SHA256): canonical requests, Authorization headers, presigned URLs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace df::blob::sigv4 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
};

// Where a signature is valid: a region and a service ("s3").
struct Scope {
  std::string region;
  std::string service;
};

using Pairs = std::vector<std::pair<std::string, std::string>>;

// A request as it is signed. `path` is the URI path exactly as sent, already encoded
// ("/bucket/a%20b.png"); query names and values are raw (they are encoded while signing); header
// names may have any case and must include "host".
struct Request {
  std::string method;
  std::string path;
  Pairs query;
  Pairs headers;
  std::string payload_hash;  // lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters stay, everything else becomes
// %XX (uppercase); '/' stays unless `encode_slash`.
std::string uri_encode(std::string_view text, bool encode_slash);

// "20130524T000000Z" for seconds since the Unix epoch.
std::string amz_date(int64_t epoch_seconds);

// Query parameters encoded and sorted: "a=1&b=2" (a valueless parameter becomes "name=").
std::string canonical_query(const Pairs& query);

// The canonical request: method, path, query, headers, signed header names, payload hash.
std::string canonical_request(const Request& request);

// The lowercase, sorted header names joined by ';'.
std::string signed_header_names(const Request& request);

// The hex signature of the request at `date` ("20130524T000000Z").
std::string signature(const Request& request, const Credentials& credentials, const Scope& scope,
                      const std::string& date);

// The Authorization header's value. The request's headers must carry the same `date` as
// "x-amz-date".
std::string authorization(const Request& request, const Credentials& credentials,
                          const Scope& scope, const std::string& date);

// The query string of a presigned URL for the request (signed with an unsigned payload): its own
// parameters, the X-Amz-* ones and X-Amz-Signature, encoded and sorted.
std::string presigned_query(Request request, const Credentials& credentials, const Scope& scope,
                            const std::string& date, int64_t expires_seconds);

}  // namespace df::blob::sigv4
