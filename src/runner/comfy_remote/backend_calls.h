// Calls to a ComfyUI server that ride out short outages: retried while it does not answer, then
// Error(kUnavailable) naming the backend.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "backends/comfy_errors.h"
#include "core/error.h"

namespace df::runner {

class BackendCalls {
 public:
  // `backend` names the server in errors; a call is retried every `retry_ms` while it fails with
  // kUnavailable, for at most `outage_ms`; `canceled` ends the wait with Error(kCanceled).
  BackendCalls(std::string backend, int outage_ms, int retry_ms, std::function<bool()> canceled)
      : backend_(std::move(backend)), outage_ms_(outage_ms), retry_ms_(retry_ms), canceled_(std::move(canceled)) {}

  const std::string& backend() const { return backend_; }

  template <class Call>
  auto operator()(Call call) -> decltype(call()) {
    const auto first_failure = std::chrono::steady_clock::now();
    while (true) {
      try {
        return call();
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kUnavailable) throw;
        if (std::chrono::steady_clock::now() - first_failure >= std::chrono::milliseconds(outage_ms_)) {
          throw backends::backend_unavailable(backend_, e.what());
        }
      }
      if (canceled_()) throw Error(ErrorCode::kCanceled, "canceled while the backend " + backend_ + " was not answering");
      std::this_thread::sleep_for(std::chrono::milliseconds(retry_ms_));
    }
  }

 private:
  std::string backend_;
  int outage_ms_;
  int retry_ms_;
  std::function<bool()> canceled_;
};

}  // namespace df::runner
