// Runs the service's model downloads (model_download jobs, made by POST /v1/models:download):
// threads of their own claim them (never a GPU worker), fetch with the same installer as
// `dreamforge model download`, and tell progress, bytes and the outcome as the job's events.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "download/model_layout.h"
#include "registry/model_registry.h"
#include "store/store.h"
#include "telemetry/metrics.h"

namespace df::download {

struct ModelDownloadSettings {
  int concurrency = 1;       // downloads at once
  int file_jobs = 4;         // files of one download transferred at once
  int64_t lease_ms = 30000;  // renewed while bytes arrive; another process resumes after it lapses
  int64_t poll_ms = 1000;    // how often idle threads look for queued downloads
  std::string worker_id = "downloads";  // the lease holder's name (host:pid:downloads)
};

// The JSON Schema of POST /v1/models:download's body.
nlohmann::json model_download_request_schema();

// The spec of a model_download job: {ref (normalised), kind, name, version, verify_only,
// overwrite}, from a request body; throws Error(kInvalidArgument) with details.fields.
nlohmann::json model_download_spec(const nlohmann::json& body);

class ModelDownloadJobs {
 public:
  // Starts settings.concurrency threads. `news` is told each job whose events changed.
  ModelDownloadJobs(store::Store& store, registry::ModelRegistry& registry, ModelLayout layout,
                    telemetry::Metrics& metrics, ModelDownloadSettings settings,
                    std::function<void(const std::string& job_id)> news);
  ~ModelDownloadJobs();  // stops the threads; a download in progress is finished first
  ModelDownloadJobs(const ModelDownloadJobs&) = delete;
  ModelDownloadJobs& operator=(const ModelDownloadJobs&) = delete;

  // A download was queued: look now instead of at the next poll.
  void wake();
  // Runs one claimed download to its end (succeeded or failed), as the threads do.
  void run(const Job& job);

 private:
  void loop(const std::stop_token& stop);

  store::Store& store_;
  registry::ModelRegistry& registry_;
  ModelLayout layout_;
  telemetry::Metrics& metrics_;
  ModelDownloadSettings settings_;
  std::function<void(const std::string&)> news_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  bool woken_ = false;
  std::vector<std::jthread> threads_;
};

}  // namespace df::download
