// Webhook POSTs with libcurl, the target policy checked in the socket-open callback.
#include "webhooks/webhook_sender.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <cstdlib>
#include <memory>
#include <mutex>

namespace df::webhooks {
namespace {

constexpr size_t kMaxKeptBody = 512;  // of a failing answer, for the delivery's last_error

struct Transfer {
  const TargetPolicy* policy;
  std::string host;
  std::string refusal;
  std::string body;
};

curl_socket_t open_checked_socket(void* data, curlsocktype, curl_sockaddr* address) {
  auto* transfer = static_cast<Transfer*>(data);
  const auto ip = socket_address(&address->addr);
  if (!ip) {
    transfer->refusal = "webhook target " + transfer->host + " has an address of an unknown family";
    return CURL_SOCKET_BAD;
  }
  transfer->refusal = transfer->policy->refusal(transfer->host, *ip);
  if (!transfer->refusal.empty()) return CURL_SOCKET_BAD;
  return socket(address->family, address->socktype, address->protocol);
}

size_t keep_body(char* data, size_t size, size_t count, void* out) {
  auto* transfer = static_cast<Transfer*>(out);
  const size_t bytes = size * count;
  if (transfer->body.size() < kMaxKeptBody) {
    transfer->body.append(data, std::min(bytes, kMaxKeptBody - transfer->body.size()));
  }
  return bytes;
}

// Retry-After in seconds (an HTTP date is not read: the schedule's own wait applies then).
int64_t retry_after_ms(CURL* curl) {
  curl_header* header = nullptr;
  if (curl_easy_header(curl, "Retry-After", 0, CURLH_HEADER, -1, &header) != CURLHE_OK) return 0;
  char* end = nullptr;
  const long seconds = std::strtol(header->value, &end, 10);
  return end != header->value && seconds > 0 ? static_cast<int64_t>(seconds) * 1000 : 0;
}

}  // namespace

WebhookAnswer post_webhook(const WebhookPost& post, const TargetPolicy& policy) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  WebhookAnswer answer;
  Transfer transfer{&policy, "", "", ""};
  try {
    transfer.host = parse_webhook_url(post.url).host;
  } catch (const std::exception& e) {
    answer.error = e.what();
    answer.refused = true;
    return answer;
  }
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  curl_slist* raw_headers = curl_slist_append(nullptr, "Content-Type: application/json");
  for (const auto& [name, value] : post.headers) {
    raw_headers = curl_slist_append(raw_headers, (name + ": " + value).c_str());
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(raw_headers, &curl_slist_free_all);
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, post.url.c_str());
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(handle, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(post.timeout_ms));
  curl_easy_setopt(handle, CURLOPT_USERAGENT, "dreamforge-webhooks");
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(handle, CURLOPT_POSTFIELDS, post.body.data());
  curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post.body.size()));
  curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, &open_checked_socket);
  curl_easy_setopt(handle, CURLOPT_OPENSOCKETDATA, &transfer);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &keep_body);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &transfer);
  const CURLcode result = curl_easy_perform(handle);
  if (!transfer.refusal.empty()) {
    answer.refused = true;
    answer.error = transfer.refusal;
    return answer;
  }
  if (result != CURLE_OK) {
    answer.error = curl_easy_strerror(result);
    return answer;
  }
  long status = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  answer.status = static_cast<int>(status);
  answer.retry_after_ms = retry_after_ms(handle);
  if (status < 200 || status >= 300) {
    answer.error = "the receiver answered " + std::to_string(status) +
                   (transfer.body.empty() ? "" : ": " + transfer.body);
  }
  return answer;
}

}  // namespace df::webhooks
