// The /v1 API: jobs, events, artifacts, models, files, health, readiness, metrics, OpenAPI.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/event_hub.h"
#include "api/job_event_stream.h"
#include "api/job_requests.h"
#include "blob/blob_store.h"
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
};

// A documented route: the router and the OpenAPI document are both made from these.
struct RouteDoc {
  std::string method;
  std::string path;
  std::string operation_id;
  std::string summary;
  std::string tag;
  int success_status = 200;
  std::string success_content_type = "application/json";
  nlohmann::json request_schema;   // null when the route takes no body
  std::vector<nlohmann::json> query_parameters;  // OpenAPI parameter objects
  std::vector<int> error_statuses;
};

class ApiService {
 public:
  ApiService(store::Store& store, blob::BlobStore& blobs, registry::ModelRegistry& models,
             queue::Queue& queue, EventHub& hub, telemetry::Metrics& metrics,
             ApiSettings settings);

  // Adds every route below to the router.
  void register_routes(http::Router& router);
  // The routes with their documentation, in registration order.
  static const std::vector<RouteDoc>& route_docs();

 private:
  http::Response create_job(http::Request& request);
  http::Response list_jobs(http::Request& request);
  http::Response get_job(http::Request& request);
  http::Response job_artifacts(http::Request& request);
  http::Response job_logs(http::Request& request);
  http::Response job_progress(http::Request& request);
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

  store::Store& store_;
  blob::BlobStore& blobs_;
  queue::Queue& queue_;
  registry::ModelRegistry& models_;
  EventHub& hub_;
  telemetry::Metrics& metrics_;
  ApiSettings settings_;
};

// The OpenAPI 3.1 document of the routes.
nlohmann::json openapi_document(const std::vector<RouteDoc>& routes);

}  // namespace df::api
