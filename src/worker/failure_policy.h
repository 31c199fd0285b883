// Which job errors are worth retrying, and after how long.
#pragma once

#include <cstdint>
#include <string>

namespace df::worker {

// runner_crashed, runner_hung, io_error and unavailable may pass on another attempt; the rest fail
// at once.
bool is_transient(const std::string& code);
// unavailable: a backend (database, storage) is down. The job waits for it to return, however
// long that takes, without using up its attempts.
bool is_backend_outage(const std::string& code);
// base * 2^(attempt - 1), capped at `max_ms`.
int64_t retry_delay_ms(int attempt, int64_t base_ms, int64_t max_ms);

}  // namespace df::worker
