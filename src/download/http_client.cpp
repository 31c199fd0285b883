// libcurl transfers with resume and retries.
#include "download/http_client.h"

#include <curl/curl.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "download/redaction.h"

namespace df::download {
namespace {

constexpr size_t kMaxErrorBody = 4096;
constexpr long kConnectTimeoutS = 30;
constexpr long kStallTimeoutS = 60;  // a transfer slower than 1 byte/s this long counts as dropped

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool is_transient_status(long status) { return status == 429 || status == 408 || status >= 500; }

bool is_transient_curl_error(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

// Seconds of a Retry-After header given in seconds; -1 for dates and junk.
double retry_after_seconds(const std::string& value) {
  if (value.empty() || !std::all_of(value.begin(), value.end(), ::isdigit)) return -1;
  return std::stod(value);
}

std::string trimmed(std::string text) {
  const auto start = text.find_first_not_of(" \t\r\n");
  const auto end = text.find_last_not_of(" \t\r\n");
  return start == std::string::npos ? "" : text.substr(start, end - start + 1);
}

int64_t file_size_or_zero(const std::string& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  return error ? 0 : static_cast<int64_t>(size);
}

// One request's outcome.
struct Attempt {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string retry_after;
  std::string error_body;
  std::string curl_error;
  bool range_complete = false;  // 416 to a Range from the end of a file: nothing left to fetch
};

struct TransferState {
  Attempt* attempt = nullptr;
  std::string* body = nullptr;  // get(): the body; download(): null
  FILE* file = nullptr;
  int64_t offset = 0;  // bytes in the part file before this attempt
  int64_t on_disk = 0;
  bool decided = false;  // whether the body goes to the file/body (2xx) or to error_body
  bool accept = false;
  bool write_failed = false;
  const TransferCallbacks* callbacks = nullptr;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto& state = *static_cast<TransferState*>(user);
  const std::string line(data, size * count);
  if (line.starts_with("HTTP/")) {  // a new response (after a redirect): start over
    const auto space = line.find(' ');
    state.attempt->status =
        space == std::string::npos ? 0 : std::strtol(line.c_str() + space + 1, nullptr, 10);
    state.attempt->retry_after.clear();
  } else if (line.size() > 12 && strncasecmp(line.c_str(), "retry-after:", 12) == 0) {
    state.attempt->retry_after = trimmed(line.substr(12));
  }
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto& state = *static_cast<TransferState*>(user);
  const size_t length = size * count;
  if (!state.decided) {
    state.decided = true;
    const long status = state.attempt->status;
    state.accept = status >= 200 && status < 300;
    if (state.accept && state.file && status == 200 && state.offset > 0) {
      // The server ignored the Range: its body is the whole file.
      std::fflush(state.file);
      if (::ftruncate(::fileno(state.file), 0) != 0) {
        state.write_failed = true;
        return 0;
      }
      state.on_disk = 0;
    }
  }
  if (!state.accept) {
    auto& error_body = state.attempt->error_body;
    error_body.append(data,
                      std::min(length, kMaxErrorBody - std::min(kMaxErrorBody, error_body.size())));
    return length;
  }
  if (state.file) {
    if (std::fwrite(data, 1, length, state.file) != length) {
      state.write_failed = true;
      return 0;
    }
    state.on_disk += static_cast<int64_t>(length);
  } else {
    state.body->append(data, length);
  }
  return length;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto& state = *static_cast<TransferState*>(user);
  if (state.callbacks->canceled && state.callbacks->canceled()) return 1;
  if (state.file && state.accept && state.callbacks->progress)
    state.callbacks->progress(state.on_disk);
  return 0;
}

// One GET of `url` into `body`, or appended to `part_file` from its end.
Attempt perform(const std::string& url, const std::string& bearer_token,
                const std::string& part_file, std::string* body,
                const TransferCallbacks& callbacks) {
  Attempt attempt;
  TransferState state;
  state.attempt = &attempt;
  state.body = body;
  state.callbacks = &callbacks;
  std::unique_ptr<FILE, decltype(&std::fclose)> file(nullptr, &std::fclose);
  if (!part_file.empty()) {
    state.offset = file_size_or_zero(part_file);
    state.on_disk = state.offset;
    file.reset(std::fopen(part_file.c_str(), "ab"));
    if (!file) throw Error(ErrorCode::kIo, "cannot write '" + part_file + "'");
    state.file = file.get();
  }

  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw Error(ErrorCode::kInternal, "cannot start an HTTP transfer");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(nullptr,
                                                                      &curl_slist_free_all);
  if (!bearer_token.empty()) {
    const std::string authorization = "Authorization: Bearer " + bearer_token;
    headers.reset(curl_slist_append(headers.release(), authorization.c_str()));
  }
  char error_buffer[CURL_ERROR_SIZE] = {0};
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(handle, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_USERAGENT, "dreamforge");
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutS);
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, kStallTimeoutS);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &state);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(handle, CURLOPT_XFERINFODATA, &state);
  curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
  const std::string range = std::to_string(state.offset) + "-";
  if (state.offset > 0) curl_easy_setopt(handle, CURLOPT_RANGE, range.c_str());

  attempt.code = curl_easy_perform(handle);
  attempt.curl_error = error_buffer[0] ? error_buffer : curl_easy_strerror(attempt.code);
  if (file && std::fclose(file.release()) != 0) state.write_failed = true;
  if (state.write_failed)
    throw Error(ErrorCode::kIo, "cannot write '" + part_file + "' (disk full?)");
  attempt.range_complete = attempt.code == CURLE_OK && attempt.status == 416 && state.offset > 0;
  if (state.file && state.accept && callbacks.progress) callbacks.progress(state.on_disk);
  return attempt;
}

// Runs `attempt` until it succeeds, retrying transient failures with backoff; `progress_mark`
// tells whether a failed attempt still moved the transfer on.
void run_with_retries(const std::string& url, const std::string& subject, const RetryPolicy& policy,
                      const StatusDescriber& describe_status, const TransferCallbacks& callbacks,
                      const std::function<Attempt()>& attempt,
                      const std::function<int64_t()>& progress_mark) {
  const auto canceled = [&callbacks] { return callbacks.canceled && callbacks.canceled(); };
  int failures = 0;
  while (true) {
    const int64_t before = progress_mark();
    const Attempt result = attempt();
    if (canceled()) throw Error(ErrorCode::kCanceled, "canceled while fetching " + subject);
    std::string why;
    double delay_s = -1;
    if (result.code == CURLE_OK) {
      if ((result.status >= 200 && result.status < 300) || result.range_complete) return;
      if (!is_transient_status(result.status)) throw describe_status(result.status, subject);
      why = "HTTP " + std::to_string(result.status);
      delay_s = retry_after_seconds(result.retry_after);
    } else if (is_transient_curl_error(result.code)) {
      why = result.curl_error;
    } else {
      throw Error(ErrorCode::kUnavailable, "cannot fetch " + subject + ": " + result.curl_error,
                  {{"url", redact_url(url)}});
    }
    failures = progress_mark() > before ? 1 : failures + 1;
    if (failures >= policy.max_attempts) {
      throw Error(ErrorCode::kUnavailable,
                  "giving up on " + subject + " after " + std::to_string(failures) +
                      " attempts without progress (last: " + why + ")",
                  {{"url", redact_url(url)}});
    }
    if (delay_s < 0) delay_s = policy.base_delay_s * std::pow(2.0, failures - 1);
    delay_s = std::min(delay_s, policy.max_delay_s);
    if (callbacks.retrying) callbacks.retrying(why, delay_s);
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(delay_s);
    while (std::chrono::steady_clock::now() < until) {
      if (canceled()) throw Error(ErrorCode::kCanceled, "canceled while fetching " + subject);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

}  // namespace

HttpClient::HttpClient(std::string bearer_token, StatusDescriber describe_status,
                       RetryPolicy policy)
    : bearer_token_(std::move(bearer_token)),
      describe_status_(std::move(describe_status)),
      policy_(policy) {
  init_curl_once();
}

std::string HttpClient::get(const std::string& url, const std::string& subject,
                            const TransferCallbacks& callbacks) const {
  std::string body;
  run_with_retries(
      url, subject, policy_, describe_status_, callbacks,
      [&] {
        body.clear();
        return perform(url, bearer_token_, "", &body, callbacks);
      },
      [] { return int64_t{0}; });
  return body;
}

void HttpClient::download(const std::string& url, const std::string& part_file,
                          const std::string& subject, const TransferCallbacks& callbacks) const {
  run_with_retries(
      url, subject, policy_, describe_status_, callbacks,
      [&] { return perform(url, bearer_token_, part_file, nullptr, callbacks); },
      [&] { return file_size_or_zero(part_file); });
}

}  // namespace df::download
