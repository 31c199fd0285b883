// HTTP GETs and resumable file transfers over libcurl, retrying what is worth retrying.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/error.h"

namespace df::download {

// How long to keep trying one request that makes no progress.
struct RetryPolicy {
  int max_attempts = 6;       // attempts in a row without a byte of progress
  double base_delay_s = 1.0;  // the first pause; doubled after each failure
  double max_delay_s = 60.0;  // the longest pause, Retry-After included
};

// Hooks a transfer calls from its own thread.
struct TransferCallbacks {
  std::function<void(int64_t bytes_on_disk)> progress;
  std::function<void(const std::string& why, double delay_s)> retrying;
  std::function<bool()> canceled;  // true stops the transfer with Error(kCanceled)
};

// Turns an HTTP status that is neither a success nor worth a retry (401, 403, 404, ...) into the
// error the user sees, in the source's words. `subject` names what was asked for.
using StatusDescriber = std::function<Error(long status, const std::string& subject)>;

// One source's client: its bearer token goes in every request's Authorization header (libcurl
// does not forward it when a redirect leads to another host) and never into a message.
class HttpClient {
 public:
  HttpClient(std::string bearer_token, StatusDescriber describe_status, RetryPolicy policy = {});

  // The body of a GET. Retries 429 (after its Retry-After), 5xx and dropped connections; throws
  // the describer's error for other failing statuses, Error(kUnavailable) when the server stays
  // unreachable.
  std::string get(const std::string& url, const std::string& subject,
                  const TransferCallbacks& callbacks = {}) const;

  // Fetches `url` into `part_file`, continuing after the bytes already there with a Range request
  // (starting over when the server ignores the range). Retries like get(), resuming each time.
  void download(const std::string& url, const std::string& part_file, const std::string& subject,
                const TransferCallbacks& callbacks) const;

 private:
  std::string bearer_token_;
  StatusDescriber describe_status_;
  RetryPolicy policy_;
};

}  // namespace df::download
