// A job's log as the original Dream Forge API shows it: one NDJSON line per event or step
// boundary, {ts, level, code, message, job_id, step_id?, item_index?} plus the event's own fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"

namespace df::api {

// The log line of one event; nullopt for events that are not log lines (progress ticks, previews).
std::optional<nlohmann::json> event_log_line(const Event& event);

// Every log line of a job, oldest first: its events and the start and finish of each step.
std::vector<nlohmann::json> job_log_lines(const std::vector<Event>& events,
                                          const std::vector<Step>& steps);

// The frames of GET /v1/jobs/{id}/progress/stream for one event: "event: progress" with
// {job_id, progress, item_index, item_progress} for progress ticks, "event: log" with the log line
// for the rest (none for previews).
std::string progress_stream_frames(const Event& event);

// The time a since_ts query parameter names, in epoch milliseconds: an ISO 8601 UTC time
// ("2026-12-07T10:00:00Z", fractions allowed) or epoch seconds (fractions allowed). Throws
// Error(kInvalidArgument) otherwise.
int64_t parse_since_ts(const std::string& text);

}  // namespace df::api
