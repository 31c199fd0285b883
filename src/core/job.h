// The job system's records: Job (with per-item state), Step, Event and Artifact.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace df {

enum class JobStatus { kQueued, kRunning, kSucceeded, kFailed, kCanceled };

std::string_view job_status_name(JobStatus status);  // "queued", "running", ...
// Throws Error(kInvalidArgument) for an unknown name.
JobStatus job_status_from_name(std::string_view name);
bool is_terminal(JobStatus status);

// One image of a batch: its seed is fixed before it starts and kept across retries.
struct JobItem {
  int index = 0;
  uint64_t seed = 0;
  std::string status = "queued";  // queued | running | succeeded | failed | canceled
  int step = 0;
  int total_steps = 0;
  double progress = 0;  // 0..1
};

nlohmann::json item_to_json(const JobItem& item);
JobItem item_from_json(const nlohmann::json& json);

// Where a job's webhook deliveries go and which of its events are sent ("start", "progress",
// "item", "completed"); an empty url: none.
struct WebhookSubscription {
  std::string url;
  std::vector<std::string> events;
  std::string key_id;  // the API key whose webhook secret signs them ("": the configured secret)
  bool subscribes(std::string_view event) const;
};

struct Job {
  std::string id;
  std::string type;  // "generate" | "workflow"
  std::string owner = "default";  // the user whose API key created it ("default" without keys)
  JobStatus status = JobStatus::kQueued;
  nlohmann::json spec;  // the validated request, defaults applied
  std::string idempotency_key;  // "" when none
  std::string request_hash;     // sha256 of the canonical request body
  int priority = 0;             // higher first
  int attempts = 0;             // claims so far; the fencing token of the current claim
  int max_attempts = 3;
  double progress = 0;          // mean of item progress
  std::vector<JobItem> items;   // filled when the job first starts
  nlohmann::json error;         // null, or {code, message, details}
  std::string worker_id;        // holder of the current lease
  int64_t lease_expires_ms = 0;
  int64_t run_after_ms = 0;     // not claimable before (retry backoff)
  bool cancel_requested = false;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
  int schema_version = 1;
  WebhookSubscription webhook;
};

// What a worker holds while it runs a job: every write it makes is checked against it.
struct Lease {
  std::string job_id;
  std::string worker_id;
  int attempt = 0;
};

// One execution of a job's graph in a runner.
struct Step {
  int64_t id = 0;
  std::string job_id;
  int attempt = 0;
  std::string worker_id;
  std::string runner;  // runner executable
  std::string device;  // as the runner reported it
  std::string status = "running";  // running | succeeded | failed | canceled
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
  // The runner's memory on its device (the design's names): what it held when the step started,
  // when it ended, and at its peak; memory_kind says what they measure: "cuda" (its memory on the
  // GPU, through NVML) or "process_rss" (its process memory, on the CPU).
  int64_t gpu_mem_used_before = 0;
  int64_t gpu_mem_used_after = 0;
  int64_t peak_gpu_mem_used = 0;
  std::string memory_kind;
  nlohmann::json error;     // null or {code, message, details}
};

// Append-only; ids increase monotonically (SSE ids).
struct Event {
  int64_t id = 0;
  std::string job_id;
  std::string type;  // job_queued, job_started, item_started, progress, item_finished, artifact,
                     // log, gpu, error, retry_scheduled, job_finished
  std::string code;  // stable code for errors ("" otherwise)
  std::optional<int> item_index;
  std::string message;  // technical
  std::string plain;    // plain-language sentence for people
  nlohmann::json data = nlohmann::json::object();
  int64_t created_ms = 0;
};

struct Artifact {
  int64_t id = 0;
  std::string job_id;
  int attempt = 0;
  int item_index = 0;
  std::string key;  // blob store key
  std::string content_type;
  int64_t size = 0;
  std::string sha256;
  uint64_t seed = 0;
  int width = 0;
  int height = 0;
  nlohmann::json metadata = nlohmann::json::object();
  int64_t created_ms = 0;
};

}  // namespace df
