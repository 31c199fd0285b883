// The metric names of the job service.
#include "telemetry/service_metrics.h"

namespace df::telemetry {

void declare_service_metrics(Metrics& metrics) {
  const std::vector<double> job_seconds = {0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800};
  const std::vector<double> http_seconds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5, 1, 2.5, 5};
  metrics.declare_gauge(kJobs, "Jobs in the database by status");
  metrics.declare_gauge(kQueueDepth, "Jobs waiting to be claimed");
  metrics.declare_counter(kJobsCreated, "Jobs created through the API");
  metrics.declare_counter(kJobAdmissions,
                          "New job requests by outcome: accepted, or refused by an API key's "
                          "limit (jobs_per_minute, concurrent_jobs)");
  metrics.declare_counter(kWebhookAttempts,
                          "Webhook delivery attempts by event and outcome: delivered, retrying, "
                          "failed (given up), refused (target not allowed)");
  metrics.declare_histogram(kWebhookAttemptDuration, "Time one webhook delivery attempt took",
                            {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  metrics.declare_counter(kModelDownloadBytes,
                          "Bytes model downloads (POST /v1/models:download) fetched");
  metrics.declare_counter(kModelDownloads,
                          "Model downloads that ended, by outcome: installed, already_installed, "
                          "verified, canceled, failed");
  metrics.declare_counter(kJobsFinished, "Jobs that reached a final status, by status");
  metrics.declare_histogram(kJobDuration, "Seconds from job creation to its final status",
                            job_seconds);
  metrics.declare_histogram(kJobQueueWait, "Seconds a job waited before a worker claimed it",
                            job_seconds);
  metrics.declare_histogram(kStepDuration, "Seconds a runner step took, by status", job_seconds);
  metrics.declare_counter(kErrors, "Job errors by stable code");
  metrics.declare_counter(kBatchItems, "Batch items finished, by status");
  metrics.declare_histogram(kItemDuration, "Seconds one batch item took in the runner",
                            job_seconds);
  metrics.declare_gauge(kRunnerMemory,
                        "Runner memory on its device in the last step there, in bytes (phase "
                        "before, after, peak: gpu_mem_used_before, gpu_mem_used_after, "
                        "peak_gpu_mem_used)");
  metrics.declare_counter(kHttpRequests, "HTTP requests by method, route and status");
  metrics.declare_histogram(kHttpDuration, "HTTP request latency by route", http_seconds);
  metrics.declare_counter(kDatabaseNews,
                          "Jobs with new events the database announced (PostgreSQL LISTEN/NOTIFY)");
  metrics.declare_gauge(kGpuMemoryTotal, "GPU memory in bytes by device, as NVML reports it");
  metrics.declare_gauge(kGpuMemoryUsed, "GPU memory in use in bytes by device (NVML)");
  metrics.declare_gauge(kGpuMemoryFree, "GPU memory free in bytes by device (NVML)");
  metrics.declare_gauge(kBackendUp, "Whether each ComfyUI backend answers (1) or not (0)");
  metrics.declare_gauge(kBackendQueueRemaining,
                        "Prompts running and pending on each ComfyUI backend at its last check");
}

}  // namespace df::telemetry
