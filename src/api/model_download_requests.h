// POST /v1/models:download: an admin's request to fetch a model becomes a model_download job
// (run by the service's download threads), one per normalised reference while it is unfinished,
// recorded in the audit log.
#pragma once

#include <functional>
#include <mutex>

#include <nlohmann/json.hpp>

#include "http/message.h"
#include "store/store.h"
#include "telemetry/metrics.h"

namespace df::api {

class ModelDownloadRequests {
 public:
  // `queued` wakes the download threads.
  ModelDownloadRequests(store::Store& store, telemetry::Metrics& metrics, std::function<void()> queued);

  // The unfinished download of the same reference and options (created: false), or a new one.
  // Throws Error(kInvalidArgument) with details.fields for a bad body.
  store::CreateJobResult request(const nlohmann::json& body, const http::Caller& caller);

 private:
  std::optional<Job> unfinished_download(const nlohmann::json& spec);

  store::Store& store_;
  telemetry::Metrics& metrics_;
  std::function<void()> queued_;
  std::mutex mutex_;  // one request at a time: two of the same reference make one job
};

}  // namespace df::api
