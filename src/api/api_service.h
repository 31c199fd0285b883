// The /v1 API: jobs, events, logs, progress, artifacts, models, files, health, readiness, metrics,
// OpenAPI; it also answers clients of the original Dream Forge API (one API, the same routes).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/event_hub.h"
#include "api/job_intake.h"
#include "api/job_event_stream.h"
#include "api/job_requests.h"
#include "api/model_download_requests.h"
#include "blob/blob_store.h"
#include "gpu/runner_roster.h"
#include "http/router.h"
#include "queue/queue.h"
#include "registry/model_registry.h"
#include "store/store.h"
#include "telemetry/metrics.h"

namespace df::api {

struct ApiSettings {
  JobRequestSettings jobs;
  StreamSettings streams;
  int64_t url_ttl_seconds = 3600;  // signed artifact URLs
  std::string runner_executable;   // checked by /readyz when this process runs a worker ("" = none)
  const gpu::RunnerRoster* runners = nullptr;  // this process's runners, for /healthz (null: none)
  // The configured backends' states, for /healthz, /readyz and /metrics (empty: no backends).
  BackendSnapshot backends;
  // POST /v1/models:download (null: the service does not download models over the API).
  ModelDownloadRequests* model_downloads = nullptr;
};

// One answer of a route as the OpenAPI document lists it.
struct ResponseDoc {
  int status = 200;
  std::string description;
  std::vector<std::string> content_types = {"application/json"};
  nlohmann::json schema = nullptr;  // of the body in every content type; null: not described
  std::vector<std::pair<std::string, std::string>> headers = {};  // headers it sets: name, meaning
};

// An error answer of a route (always the error envelope), with what it means there.
struct ErrorDoc {
  int status;
  std::string description;
};

// A documented route: the router and the OpenAPI document are both made from these. The document
// adds the errors every route can answer (malformed requests, refused hosts, limits, timeouts,
// internal errors) to those listed here.
struct RouteDoc {
  std::string method;
  std::string path;
  std::string operation_id;
  std::string summary;
  std::string tag;
  std::vector<ResponseDoc> responses;  // its successful answers
  std::vector<ErrorDoc> errors = {};        // its own error answers
  nlohmann::json request_schema = nullptr;  // null when the route takes no body
  std::vector<nlohmann::json> parameters = {};  // OpenAPI query and header parameter objects
};

class ApiService {
 public:
  // New jobs go through `intake`, whose router also validates and routes /v1 workflows.
  ApiService(store::Store& store, blob::BlobStore& blobs, registry::ModelRegistry& models,
             queue::Queue& queue, EventHub& hub, telemetry::Metrics& metrics, JobIntake& intake,
             ApiSettings settings);

  // Adds every route below to the router.
  void register_routes(http::Router& router);
  // The routes with their documentation, in registration order; the job request schema shows
  // what `jobs` offers (its routing table's presets).
  static std::vector<RouteDoc> route_docs(const JobRequestSettings& jobs);

  // Creates a job from a /v1 request body as POST /v1/jobs does (validation, model choice,
  // estimate, init image, webhook, idempotency under `idempotency_key`, "" for none) for
  // `caller`, who owns it; `adjust` may change the parsed job (its id, spec additions) before it
  // is stored. Throws what POST /v1/jobs answers as errors (Error(kModelNotFound) for an unknown
  // model).
  store::CreateJobResult submit_job(const nlohmann::json& body, const std::string& idempotency_key,
                                    const http::Caller& caller,
                                    const std::function<void(Job&)>& adjust = {});
  // The `data` of a webhook delivery about `event` (webhook event `name`): the job as GET
  // /v1/jobs/{id} shows it, the event, and for item and completed the artifacts with signed URLs.
  nlohmann::json webhook_data(const Job& job, const Event& event, const std::string& name);
  // Cancels a job as POST /v1/jobs/{id}/cancel does; nullopt when there is no such job.
  std::optional<store::CancelOutcome> cancel(const std::string& job_id);

 private:
  http::Response create_job(http::Request& request);
  http::Response list_jobs(http::Request& request);
  http::Response get_job(http::Request& request);
  http::Response job_artifacts(http::Request& request);
  http::Response job_logs(http::Request& request);
  http::Response job_progress(http::Request& request);
  http::Response job_webhooks(http::Request& request);
  http::Response download_model(http::Request& request);
  // The job's artifacts (only item `item_index`'s when given) with signed URLs.
  nlohmann::json artifacts_json(const std::string& job_id, std::optional<int> item_index = std::nullopt);
  http::Response job_progress_stream(http::Request& request);
  http::Response job_events(http::Request& request);
  http::Response cancel_job(http::Request& request);
  http::Response list_models(http::Request& request);
  http::Response get_model(http::Request& request);
  http::Response get_file(http::Request& request);
  http::Response healthz(http::Request& request);
  http::Response readyz(http::Request& request);
  http::Response metrics(http::Request& request);
  http::Response openapi(http::Request& request);

  Job require_job(const http::Request& request);
  // Adds spec.estimate to a generate job when its model has recorded runs.
  void add_estimate(Job& job);
  // The event telling in plain words which model the routing table picked for a new job.
  void record_routing(const Job& job);
  // The configured backends' states (none without backends).
  std::vector<backends::BackendStatus> backend_states() const;

  store::Store& store_;
  blob::BlobStore& blobs_;
  queue::Queue& queue_;
  registry::ModelRegistry& models_;
  EventHub& hub_;
  telemetry::Metrics& metrics_;
  JobIntake& intake_;
  ApiSettings settings_;
};

// The OpenAPI 3.1 document of the routes.
nlohmann::json openapi_document(const std::vector<RouteDoc>& routes);

}  // namespace df::api
