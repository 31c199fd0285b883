// Model download requests: validation, deduplication by reference, the job, the audit entry.
#include "api/model_download_requests.h"

#include "core/ids.h"
#include "core/json_text.h"
#include "core/sha256.h"
#include "download/model_download_jobs.h"
#include "telemetry/service_metrics.h"

namespace df::api {

using nlohmann::json;

ModelDownloadRequests::ModelDownloadRequests(store::Store& store, telemetry::Metrics& metrics,
                                             std::function<void()> queued)
    : store_(store), metrics_(metrics), queued_(std::move(queued)) {}

std::optional<Job> ModelDownloadRequests::unfinished_download(const json& spec) {
  for (const JobStatus status : {JobStatus::kQueued, JobStatus::kRunning}) {
    store::JobFilter filter;
    filter.status = status;
    filter.limit = 200;
    for (auto page = store_.list_jobs(filter);; page = store_.list_jobs(filter)) {
      for (const auto& job : page.jobs) {
        if (job.type == store::kModelDownloadJobType && job.spec == spec) return job;
      }
      if (page.next_cursor.empty()) break;
      filter.cursor = page.next_cursor;
    }
  }
  return std::nullopt;
}

store::CreateJobResult ModelDownloadRequests::request(const json& body, const http::Caller& caller) {
  const json spec = download::model_download_spec(body);
  std::lock_guard lock(mutex_);
  if (auto earlier = unfinished_download(spec)) return {*earlier, false};
  Job job;
  job.id = new_uuid_v7();
  job.type = store::kModelDownloadJobType;
  job.owner = caller.user;
  job.spec = spec;
  const std::string canonical = dump_json(spec);
  job.request_hash = sha256_hex(canonical.data(), canonical.size());
  job.created_ms = now_ms();
  job.items = {JobItem{}};
  auto created = store_.create_job(job);
  metrics_.increment(telemetry::kJobsCreated);
  store_.append_audit({0, 0, caller.key_id.empty() ? "default" : caller.key_id,
                       "model.download", spec["ref"].get<std::string>(),
                       {{"job_id", job.id}, {"spec", spec}}});
  if (queued_) queued_();
  return created;
}

}  // namespace df::api
