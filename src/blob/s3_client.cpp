// Signed S3 requests over libcurl with retries, and presigned GET URLs.
#include "blob/s3_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

#include "core/ids.h"
#include "core/sha256.h"

namespace df::blob {

namespace {

constexpr int64_t kLongestPresignSeconds = 7 * 24 * 3600;
constexpr int kLongestRetryDelayMs = 5000;

// "host:port" of "http://host:port".
std::string host_of(const std::string& endpoint) {
  return endpoint.substr(endpoint.find("://") + 3);
}

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  static_cast<S3Response*>(user)->body.append(data, size * count);
  return size * count;
}

// Collects "Name: value" lines into lowercase names; a new status line starts a fresh set.
size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<S3Response*>(user);
  const std::string_view line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    response->headers.clear();
    return line.size();
  }
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() &&
           (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.remove_suffix(1);
    }
    response->headers[name] = std::string(value);
  }
  return line.size();
}

bool has_header(const sigv4::Pairs& headers, std::string_view wanted) {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& header) {
    return std::equal(header.first.begin(), header.first.end(), wanted.begin(), wanted.end(),
                      [](char a, char b) { return std::tolower(a) == std::tolower(b); });
  });
}

bool worth_retrying(long status) { return status >= 500 || status == 429; }

struct CurlHandle {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> handle{curl_easy_init(), curl_easy_cleanup};
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers{nullptr, curl_slist_free_all};

  void add_header(const std::string& line) {
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  }
};

}  // namespace

S3Client::S3Client(S3Settings settings)
    : settings_(std::move(settings)), scope_{settings_.region, "s3"} {
  init_curl_once();
}

std::string S3Client::host() const { return host_of(settings_.endpoint); }

std::string S3Client::path_of(const std::string& key) const {
  const std::string bucket = settings_.path_style ? "/" + settings_.bucket : "";
  if (key.empty()) return bucket.empty() ? "/" : bucket;
  return bucket + "/" + sigv4::uri_encode(key, false);
}

S3Response S3Client::send(const S3Request& request) const {
  const std::string payload_hash = sha256_hex(request.body.data(), request.body.size());
  sigv4::Request signed_request{request.method, path_of(request.key), request.query,
                                request.headers, payload_hash};
  signed_request.headers.emplace_back("host", host());
  signed_request.headers.emplace_back("x-amz-content-sha256", payload_hash);
  signed_request.headers.emplace_back("x-amz-date", "");
  const std::string query = sigv4::canonical_query(request.query);
  const std::string url =
      settings_.endpoint + signed_request.path + (query.empty() ? "" : "?" + query);
  const bool sends_body = request.method == "PUT" || request.method == "POST";

  for (int attempt = 1;; ++attempt) {
    if (attempt > 1) {
      const int delay = std::min(settings_.first_retry_delay_ms << std::min(attempt - 2, 16),
                                 kLongestRetryDelayMs);
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    }
    const std::string date = sigv4::amz_date(now_ms() / 1000);
    signed_request.headers.back().second = date;

    CurlHandle curl;
    if (!curl.handle) throw Error(ErrorCode::kInternal, "libcurl could not start a request");
    for (const auto& [name, value] : signed_request.headers) curl.add_header(name + ": " + value);
    curl.add_header("Authorization: " +
                    sigv4::authorization(signed_request, settings_.credentials, scope_, date));
    curl.add_header("Expect:");
    if (!has_header(request.headers, "content-type")) curl.add_header("Content-Type:");

    S3Response response;
    char error_buffer[CURL_ERROR_SIZE] = "";
    CURL* handle = curl.handle.get();
    curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
    curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.method == "HEAD") curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
    if (sends_body) {
      curl_easy_setopt(handle, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
    curl_easy_setopt(handle, CURLOPT_HTTPHEADER, curl.headers.get());
    curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(handle, CURLOPT_USERAGENT, "dreamforge");
    curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT,
                     static_cast<long>(settings_.connect_timeout_seconds));
    curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME,
                     static_cast<long>(settings_.stall_timeout_seconds));
    curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(handle, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(handle, CURLOPT_HEADERDATA, &response);

    const CURLcode result = curl_easy_perform(handle);
    if (result == CURLE_OK) {
      curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &response.status);
      if (!worth_retrying(response.status) || attempt >= settings_.max_attempts) return response;
    } else {
      const std::string failure =
          error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(result);
      if (attempt >= settings_.max_attempts) {
        throw Error(ErrorCode::kUnavailable,
                    "S3 at " + settings_.endpoint + " could not be reached (bucket '" +
                        settings_.bucket + "'): " + failure + " (after " + std::to_string(attempt) +
                        " attempts)",
                    {{"bucket", settings_.bucket}, {"endpoint", settings_.endpoint}});
      }
    }
  }
}

std::string S3Client::presigned_get_url(const std::string& key, int64_t ttl_seconds) const {
  // Signed for the host the client will name: the public endpoint's, when there is one.
  const std::string& endpoint =
      settings_.public_endpoint.empty() ? settings_.endpoint : settings_.public_endpoint;
  const sigv4::Request request{"GET", path_of(key), {}, {{"host", host_of(endpoint)}}, ""};
  const int64_t expires = std::clamp<int64_t>(ttl_seconds, 1, kLongestPresignSeconds);
  return endpoint + request.path + "?" +
         sigv4::presigned_query(request, settings_.credentials, scope_,
                                sigv4::amz_date(now_ms() / 1000), expires);
}

}  // namespace df::blob
