// Job status names and item (de)serialisation.
#include "core/job.h"

#include <algorithm>
#include <array>
#include <utility>

#include "core/error.h"

namespace df {
namespace {

constexpr std::array<std::pair<JobStatus, std::string_view>, 5> kStatusNames{{
    {JobStatus::kQueued, "queued"},
    {JobStatus::kRunning, "running"},
    {JobStatus::kSucceeded, "succeeded"},
    {JobStatus::kFailed, "failed"},
    {JobStatus::kCanceled, "canceled"},
}};

}  // namespace

std::string_view job_status_name(JobStatus status) {
  for (const auto& [s, name] : kStatusNames) {
    if (s == status) return name;
  }
  return "queued";
}

JobStatus job_status_from_name(std::string_view name) {
  for (const auto& [s, n] : kStatusNames) {
    if (n == name) return s;
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown job status '" + std::string(name) +
                                               "' (queued, running, succeeded, failed, canceled)");
}

bool is_terminal(JobStatus status) {
  return status == JobStatus::kSucceeded || status == JobStatus::kFailed ||
         status == JobStatus::kCanceled;
}

bool WebhookSubscription::subscribes(std::string_view event) const {
  return !url.empty() && std::find(events.begin(), events.end(), event) != events.end();
}

nlohmann::json item_to_json(const JobItem& item) {
  return {{"index", item.index},       {"seed", item.seed},
          {"status", item.status},     {"step", item.step},
          {"total_steps", item.total_steps}, {"progress", item.progress}};
}

JobItem item_from_json(const nlohmann::json& json) {
  JobItem item;
  item.index = json.at("index").get<int>();
  item.seed = json.at("seed").get<uint64_t>();
  item.status = json.value("status", "queued");
  item.step = json.value("step", 0);
  item.total_steps = json.value("total_steps", 0);
  item.progress = json.value("progress", 0.0);
  return item;
}

}  // namespace df
