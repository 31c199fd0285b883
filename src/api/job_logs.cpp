// A job's events and steps as log lines with the original Dream Forge API's codes.
#include "api/job_logs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>

#include "api/job_views.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/json_text.h"

namespace df::api {
namespace {

using nlohmann::json;

// Event types and the codes the original API used for them.
const std::map<std::string, std::string>& codes_by_type() {
  static const std::map<std::string, std::string> codes = {
      {"job_queued", "job.queued"},      {"job_started", "job.start"},
      {"item_started", "item.start"},    {"item_finished", "item.finish"},
      {"artifact", "artifact.written"},  {"job_finished", "job.finish"},
      {"retry_scheduled", "job.retry"},  {"error", "error"},
      {"gpu", "gpu"},                    {"node_started", "node.start"},
      {"nodes_cached", "nodes.cached"},  {"log", "log"}};
  return codes;
}

json step_line(const Step& step, bool finish) {
  const bool failed = finish && step.status == "failed";
  json line = {{"ts", iso8601_utc(finish ? step.finished_ms : step.started_ms)},
               {"level", failed ? "error" : "info"},
               {"code", finish ? "step.finish" : "step.start"},
               {"message", finish ? "step generate " + step.status : "step generate started"},
               {"job_id", step.job_id},
               {"step_id", "generate"},
               {"attempt", step.attempt},
               {"time_ms", finish ? step.finished_ms : step.started_ms}};
  if (finish) line["status"] = step.status;
  return line;
}

}  // namespace

std::optional<json> event_log_line(const Event& event) {
  const auto found = codes_by_type().find(event.type);
  if (found == codes_by_type().end()) return std::nullopt;
  const bool failed = event.type == "error" || (event.type == "job_finished" && !event.code.empty());
  json line = event_json(event);
  line["ts"] = iso8601_utc(event.created_ms);
  line["level"] = failed ? "error" : event.data.value("level", "info");
  // A log event's own code (model_routed, ...) says more than "log".
  line["code"] = event.type == "log" && !event.code.empty() ? event.code : found->second;
  line["error_code"] = event.code;
  line["message"] = event.message.empty() ? event.plain : event.message;
  line["time_ms"] = event.created_ms;
  if (event.type == "artifact" || event.type == "item_started" || event.type == "item_finished") {
    line["step_id"] = "generate";
  }
  if (!event.item_index) line.erase("item_index");
  return line;
}

std::vector<json> job_log_lines(const std::vector<Event>& events, const std::vector<Step>& steps) {
  std::vector<json> lines;
  for (const auto& event : events) {
    if (auto line = event_log_line(event)) lines.push_back(std::move(*line));
  }
  for (const auto& step : steps) {
    lines.push_back(step_line(step, false));
    if (step.finished_ms) lines.push_back(step_line(step, true));
  }
  // By time; a job's own events keep their order among equal times. The job's end is the last
  // line: its worker records the step's end right after it, in the same or a later millisecond.
  std::stable_sort(lines.begin(), lines.end(), [](const json& a, const json& b) {
    return a["time_ms"].get<int64_t>() < b["time_ms"].get<int64_t>();
  });
  std::stable_partition(lines.begin(), lines.end(),
                        [](const json& line) { return line["code"] != "job.finish"; });
  for (auto& line : lines) line.erase("time_ms");
  return lines;
}

std::string progress_stream_frames(const Event& event) {
  const std::string id = "id: " + std::to_string(event.id) + "\n";
  if (event.type == "progress" || event.type == "job_finished") {
    json data = {{"job_id", event.job_id}, {"progress", event.data.value("progress", 0.0)}};
    if (event.item_index) data["item_index"] = *event.item_index;
    if (event.data.contains("item_progress")) data["item_progress"] = event.data["item_progress"];
    std::string frames = id + "event: progress\ndata: " + dump_json(data) + "\n\n";
    if (event.type == "progress") return frames;
    return frames + "event: log\ndata: " + dump_json(*event_log_line(event)) + "\n\n";
  }
  const auto line = event_log_line(event);
  return line ? id + "event: log\ndata: " + dump_json(*line) + "\n\n" : "";
}

int64_t parse_since_ts(const std::string& text) {
  auto invalid = [&] {
    return Error(ErrorCode::kInvalidArgument,
                 "since_ts must be an ISO 8601 UTC time (2026-12-07T10:00:00Z) or epoch seconds",
                 {{"fields", {{{"field", "since_ts"}, {"message", "not a time"}}}}});
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, consumed = 0;
  double second = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf%n", &year, &month, &day, &hour, &minute,
                  &second, &consumed) == 6) {
    const std::string zone = text.substr(static_cast<size_t>(consumed));
    if ((zone != "Z" && zone != "+00:00") || month < 1 || month > 12 || day < 1 || day > 31 ||
        hour > 23 || minute > 59 || second < 0 || second >= 61) {
      throw invalid();
    }
    std::tm parts{};
    parts.tm_year = year - 1900;
    parts.tm_mon = month - 1;
    parts.tm_mday = day;
    parts.tm_hour = hour;
    parts.tm_min = minute;
    const auto whole = static_cast<int64_t>(timegm(&parts));
    return whole * 1000 + static_cast<int64_t>(std::llround(second * 1000));
  }
  try {
    size_t used = 0;
    const double seconds = std::stod(text, &used);
    if (used != text.size() || !std::isfinite(seconds) || seconds < 0 || seconds > 1e13) throw invalid();
    return static_cast<int64_t>(seconds * 1000);
  } catch (const std::logic_error&) {
    throw invalid();
  }
}

}  // namespace df::api
