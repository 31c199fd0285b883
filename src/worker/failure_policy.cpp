// Which job errors are worth retrying, and after how long.
#include "worker/failure_policy.h"

#include <algorithm>

namespace df::worker {

bool is_transient(const std::string& code) {
  return code == "runner_crashed" || code == "runner_hung" || code == "io_error" ||
         code == "unavailable";
}

bool is_backend_outage(const std::string& code) { return code == "unavailable"; }

int64_t retry_delay_ms(int attempt, int64_t base_ms, int64_t max_ms) {
  int64_t delay = base_ms;
  for (int i = 1; i < attempt && delay < max_ms; ++i) delay *= 2;
  return std::min(delay, max_ms);
}

}  // namespace df::worker
