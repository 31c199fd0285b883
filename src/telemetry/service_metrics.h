// The metric names of the job service, declared in one place for the API and the worker.
#pragma once

#include "telemetry/metrics.h"

namespace df::telemetry {

inline constexpr const char* kJobs = "dreamforge_jobs";  // gauge {status}
inline constexpr const char* kQueueDepth = "dreamforge_queue_depth";
inline constexpr const char* kJobsCreated = "dreamforge_jobs_created_total";
// {outcome}: accepted, jobs_per_minute or concurrent_jobs (the API key limit that refused it)
inline constexpr const char* kJobAdmissions = "dreamforge_job_admissions_total";
// {event,outcome}: delivered, retrying, failed (given up), refused (target not allowed)
inline constexpr const char* kWebhookAttempts = "dreamforge_webhook_attempts_total";
inline constexpr const char* kWebhookAttemptDuration = "dreamforge_webhook_attempt_seconds";
inline constexpr const char* kModelDownloadBytes = "dreamforge_model_download_bytes_total";
inline constexpr const char* kModelDownloads = "dreamforge_model_downloads_total";  // {outcome}
inline constexpr const char* kJobsFinished = "dreamforge_jobs_finished_total";  // {status}
inline constexpr const char* kJobDuration = "dreamforge_job_duration_seconds";  // {status}
inline constexpr const char* kJobQueueWait = "dreamforge_job_queue_wait_seconds";
inline constexpr const char* kStepDuration = "dreamforge_step_duration_seconds";  // {status}
inline constexpr const char* kErrors = "dreamforge_errors_total";  // {code}
inline constexpr const char* kBatchItems = "dreamforge_batch_items_total";  // {status}
inline constexpr const char* kItemDuration = "dreamforge_batch_item_duration_seconds";
inline constexpr const char* kRunnerMemory = "dreamforge_runner_memory_bytes";  // {device,phase}
inline constexpr const char* kHttpRequests = "dreamforge_http_requests_total";  // {method,route,status}
inline constexpr const char* kHttpDuration = "dreamforge_http_request_duration_seconds";  // {route}
inline constexpr const char* kDatabaseNews = "dreamforge_database_news_total";  // LISTEN/NOTIFY
inline constexpr const char* kGpuMemoryTotal = "dreamforge_gpu_memory_total_bytes";  // {device}
inline constexpr const char* kGpuMemoryUsed = "dreamforge_gpu_memory_used_bytes";    // {device}
inline constexpr const char* kGpuMemoryFree = "dreamforge_gpu_memory_free_bytes";    // {device}
inline constexpr const char* kBackendUp = "dreamforge_backend_up";  // {backend}: 1 up, 0 down
inline constexpr const char* kBackendQueueRemaining = "dreamforge_backend_queue_remaining";  // {backend}

// Declares every metric above.
void declare_service_metrics(Metrics& metrics);

}  // namespace df::telemetry
