// The /v1 API's route table and handlers.
#include "api/api_service.h"

#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include "api/job_dispatch.h"
#include "api/job_views.h"
#include "blob/local_blob_store.h"
#include "core/error.h"
#include "core/files.h"
#include "core/ids.h"
#include "core/numbers.h"
#include "registry/eta_estimator.h"
#include "telemetry/service_metrics.h"

namespace df::api {
namespace {

using nlohmann::json;
using http::Request;
using http::Response;

json query_parameter(const std::string& name, const json& schema, const std::string& description) {
  return {{"name", name}, {"in", "query"}, {"required", false}, {"schema", schema},
          {"description", description}};
}

int parse_limit(const Request& request) {
  auto found = request.query.find("limit");
  if (found == request.query.end()) return 50;
  const auto limit = parse_integer(found->second);
  if (limit && *limit >= 1 && *limit <= 200) return static_cast<int>(*limit);
  throw Error(ErrorCode::kInvalidArgument, "limit must be an integer from 1 to 200",
              {{"fields", {{{"field", "limit"}, {"message", "must be an integer from 1 to 200"}}}}});
}

int64_t parse_event_id(const std::string& text, const std::string& what) {
  if (text.empty()) return 0;
  const auto id = parse_integer(text);
  if (id && *id >= 0) return *id;
  throw Error(ErrorCode::kInvalidArgument, what + " must be a non-negative event id",
              {{"fields", {{{"field", what}, {"message", "must be a non-negative integer"}}}}});
}

std::string content_type_for(const std::string& path) {
  const auto extension = std::filesystem::path(path).extension().string();
  if (extension == ".png") return "image/png";
  if (extension == ".jpg" || extension == ".jpeg") return "image/jpeg";
  if (extension == ".webp") return "image/webp";
  return "application/octet-stream";
}

// A registry entry as /v1/models shows it: local paths stay on the server.
json model_view(const Model& model) {
  json view = model_to_json(model);
  view.erase("local_path");
  return view;
}

}  // namespace

ApiService::ApiService(store::Store& store, blob::BlobStore& blobs,
                       registry::ModelRegistry& models, queue::Queue& queue, EventHub& hub,
                       telemetry::Metrics& metrics, ApiSettings settings)
    : store_(store),
      blobs_(blobs),
      queue_(queue),
      models_(models),
      hub_(hub),
      metrics_(metrics),
      settings_(std::move(settings)) {}

const std::vector<RouteDoc>& ApiService::route_docs() {
  static const std::vector<RouteDoc> docs = [] {
    const json status_schema = {{"type", "string"},
                                {"enum", {"queued", "running", "succeeded", "failed", "canceled"}}};
    std::vector<RouteDoc> d;
    d.push_back({"POST", "/v1/jobs", "createJob", "Create a generate or workflow job", "jobs", 201,
                 "application/json", job_request_schema(), {}, {400, 409, 413, 422}});
    d.push_back({"GET", "/v1/jobs", "listJobs", "List jobs, newest first", "jobs", 200,
                 "application/json", nullptr,
                 {query_parameter("status", status_schema, "Only jobs with this status"),
                  query_parameter("limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 200}},
                                  "Page size (default 50)"),
                  query_parameter("cursor", {{"type", "string"}}, "next_cursor of the previous page")},
                 {422}});
    d.push_back({"GET", "/v1/jobs/{id}", "getJob", "A job with its items, progress, steps and error",
                 "jobs", 200, "application/json", nullptr, {}, {404}});
    d.push_back({"GET", "/v1/jobs/{id}/artifacts", "listJobArtifacts",
                 "The job's images with signed, expiring URLs", "jobs", 200, "application/json",
                 nullptr, {}, {404}});
    d.push_back({"GET", "/v1/jobs/{id}/logs", "getJobLogs", "The job's log lines and events",
                 "jobs", 200, "application/json", nullptr, {}, {404}});
    d.push_back({"GET", "/v1/jobs/{id}/progress", "getJobProgress",
                 "Aggregate and per-item progress", "jobs", 200, "application/json", nullptr, {},
                 {404}});
    d.push_back({"GET", "/v1/jobs/{id}/events", "streamJobEvents",
                 "Live events (Server-Sent Events); resumes after Last-Event-ID", "jobs", 200,
                 "text/event-stream", nullptr,
                 {query_parameter("after", {{"type", "integer"}, {"minimum", 0}},
                                  "Start after this event id (like Last-Event-ID)")},
                 {404}});
    d.push_back({"POST", "/v1/jobs/{id}/cancel", "cancelJob",
                 "Cancel a queued job, or stop a running one between sampler steps", "jobs", 202,
                 "application/json", nullptr, {}, {404}});
    d.push_back({"GET", "/v1/models", "listModels", "Installed models", "models", 200,
                 "application/json", nullptr, {}, {}});
    d.push_back({"GET", "/v1/models/{id}", "getModel",
                 "One model with the JSON Schema of its parameters", "models", 200,
                 "application/json", nullptr, {}, {404}});
    d.push_back({"GET", "/v1/files/{key...}", "getFile", "An artifact file behind a signed URL",
                 "files", 200, "application/octet-stream", nullptr,
                 {query_parameter("expires", {{"type", "integer"}}, "Expiry (Unix seconds)"),
                  query_parameter("sig", {{"type", "string"}}, "Signature")},
                 {403, 404}});
    d.push_back({"GET", "/v1/openapi.json", "getOpenApi", "This document", "system", 200,
                 "application/json", nullptr, {}, {}});
    d.push_back({"GET", "/healthz", "healthz", "The process is alive", "system", 200,
                 "application/json", nullptr, {}, {}});
    d.push_back({"GET", "/readyz", "readyz", "Database, queue, storage and runner checks", "system", 200,
                 "application/json", nullptr, {}, {503}});
    d.push_back({"GET", "/metrics", "metrics", "Prometheus metrics", "system", 200,
                 "text/plain; version=0.0.4", nullptr, {}, {}});
    return d;
  }();
  return docs;
}

void ApiService::register_routes(http::Router& router) {
  using Method = Response (ApiService::*)(Request&);
  const std::map<std::string, Method> handlers = {
      {"createJob", &ApiService::create_job},       {"listJobs", &ApiService::list_jobs},
      {"getJob", &ApiService::get_job},             {"listJobArtifacts", &ApiService::job_artifacts},
      {"getJobLogs", &ApiService::job_logs},        {"getJobProgress", &ApiService::job_progress},
      {"streamJobEvents", &ApiService::job_events}, {"cancelJob", &ApiService::cancel_job},
      {"listModels", &ApiService::list_models},     {"getModel", &ApiService::get_model},
      {"getFile", &ApiService::get_file},           {"getOpenApi", &ApiService::openapi},
      {"healthz", &ApiService::healthz},            {"readyz", &ApiService::readyz},
      {"metrics", &ApiService::metrics}};
  for (const auto& doc : route_docs()) {
    Method method = handlers.at(doc.operation_id);
    router.add(doc.method, doc.path, [this, method](Request& request) { return (this->*method)(request); });
  }
}

Job ApiService::require_job(const Request& request) {
  const std::string& id = request.path_params.at("id");
  auto job = store_.get_job(id);
  if (!job) throw Error(ErrorCode::kNotFound, "no job with id '" + id + "'");
  return *job;
}

Response ApiService::create_job(Request& request) {
  const std::string key = request.header("Idempotency-Key");
  if (key.size() > 255) {
    throw Error(ErrorCode::kInvalidArgument, "Idempotency-Key is longer than 255 characters",
                {{"fields", {{{"field", "Idempotency-Key"}, {"message", "at most 255 characters"}}}}});
  }
  NewJob parsed;
  try {
    parsed = parse_job_request(request.json_body(), models_, settings_.jobs);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kModelNotFound) throw;
    Response response = http::error_response(e, request.correlation_id);
    response.status = 422;  // an unknown model_id is a bad field of this request
    return response;
  }
  parsed.job.idempotency_key = key;
  add_estimate(parsed.job);
  save_init_image(parsed, settings_.jobs.input_dir);
  auto discard_init_image = [&] {
    if (parsed.init_image_name.empty()) return;
    std::error_code ignored;
    std::filesystem::remove(std::filesystem::path(settings_.jobs.input_dir) / parsed.init_image_name, ignored);
  };
  store::CreateJobResult result;
  try {
    result = store_.create_job(parsed.job);
  } catch (const std::exception&) {
    discard_init_image();  // a conflict or an unavailable database: the job does not exist
    throw;
  }
  if (!result.created) discard_init_image();  // the earlier job has its own copy
  if (result.created) {
    record_routing(result.job);
    metrics_.increment(telemetry::kJobsCreated);
    dispatch_new_job(queue_, result.job);
  }
  Response response = Response::json(result.created ? 201 : 200, job_json(result.job));
  response.headers.push_back({"Location", "/v1/jobs/" + result.job.id});
  if (!result.created) response.headers.push_back({"Idempotent-Replayed", "true"});
  return response;
}

void ApiService::add_estimate(Job& job) {
  if (job.type != "generate") return;
  const json& spec = job.spec;
  const std::string model_id = spec.value("model_id", "");
  const auto estimate = registry::estimate_eta(
      store_.recent_run_timings(model_id, static_cast<int>(registry::kEtaMaxSamples) * 5),
      {model_id, spec.value("width", 0), spec.value("height", 0), spec.value("steps", 0),
       spec.value("count", 1)});
  if (estimate) job.spec["estimate"] = registry::eta_to_json(*estimate);
}

void ApiService::record_routing(const Job& job) {
  if (!job.spec.contains("routing")) return;
  const json& routing = job.spec["routing"];
  Event event;
  event.job_id = job.id;
  event.type = "log";
  event.code = routing.value("fell_back", false) ? "model_fallback" : "model_routed";
  event.message = routing.value("message", "");
  event.plain = event.message;
  event.data = routing;
  event.created_ms = now_ms();
  store_.append_event(event);
  hub_.notify(job.id);
}

Response ApiService::list_jobs(Request& request) {
  store::JobFilter filter;
  filter.limit = parse_limit(request);
  if (auto status = request.query.find("status"); status != request.query.end()) {
    try {
      filter.status = job_status_from_name(status->second);
    } catch (const Error& e) {
      throw Error(ErrorCode::kInvalidArgument, e.what(),
                  {{"fields", {{{"field", "status"}, {"message", e.what()}}}}});
    }
  }
  if (auto cursor = request.query.find("cursor"); cursor != request.query.end()) {
    filter.cursor = cursor->second;
  }
  auto page = store_.list_jobs(filter);
  json jobs = json::array();
  for (const auto& job : page.jobs) jobs.push_back(job_json(job));
  return Response::json(200, {{"jobs", jobs},
                              {"next_cursor", page.next_cursor.empty() ? json() : json(page.next_cursor)}});
}

Response ApiService::get_job(Request& request) {
  Job job = require_job(request);
  auto steps = store_.list_steps(job.id);
  return Response::json(200, job_json(job, &steps));
}

Response ApiService::job_artifacts(Request& request) {
  Job job = require_job(request);
  const int64_t expires_at = now_ms() / 1000 + settings_.url_ttl_seconds;
  json artifacts = json::array();
  for (const auto& artifact : store_.list_artifacts(job.id)) {
    artifacts.push_back(artifact_json(artifact, blobs_.signed_url(artifact.key, settings_.url_ttl_seconds),
                                      expires_at));
  }
  return Response::json(200, {{"job_id", job.id}, {"status", job_status_name(job.status)},
                              {"artifacts", artifacts}, {"url_ttl_seconds", settings_.url_ttl_seconds}});
}

Response ApiService::job_logs(Request& request) {
  Job job = require_job(request);
  json lines = json::array();
  int64_t after = 0;
  while (true) {
    auto events = store_.events_after(job.id, after, 500);
    if (events.empty()) break;
    for (const auto& event : events) {
      after = event.id;
      if (event.type == "progress") continue;  // GET .../progress and the stream carry these
      json line = event_json(event);
      line["level"] = event.type == "error" || (event.type == "job_finished" && !event.code.empty())
                          ? "error"
                          : event.data.value("level", "info");
      lines.push_back(line);
    }
  }
  return Response::json(200, {{"job_id", job.id}, {"logs", lines}});
}

Response ApiService::job_progress(Request& request) {
  Job job = require_job(request);
  json items = json::array();
  for (const auto& item : job.items) items.push_back(item_to_json(item));
  return Response::json(200, {{"job_id", job.id},
                              {"status", job_status_name(job.status)},
                              {"progress", job.progress},
                              {"items", items}});
}

Response ApiService::job_events(Request& request) {
  Job job = require_job(request);
  int64_t after = parse_event_id(request.header("Last-Event-ID"), "Last-Event-ID");
  if (auto query = request.query.find("after"); query != request.query.end()) {
    after = std::max(after, parse_event_id(query->second, "after"));
  }
  return Response::event_stream(
      std::make_shared<JobEventStream>(store_, hub_, job.id, after, settings_.streams));
}

Response ApiService::cancel_job(Request& request) {
  const std::string& id = request.path_params.at("id");
  const auto outcome = store_.cancel_job(id);
  if (outcome == store::CancelOutcome::kCanceled) hub_.notify(id);
  auto job = store_.get_job(id);
  json body = job_json(*job);
  body["cancel"] = outcome == store::CancelOutcome::kCanceled    ? "canceled"
                   : outcome == store::CancelOutcome::kRequested ? "requested"
                                                                 : "already_finished";
  return Response::json(outcome == store::CancelOutcome::kAlreadyFinished ? 200 : 202, body);
}

Response ApiService::list_models(Request&) {
  json models = json::array();
  for (const auto& model : models_.available()) models.push_back(model_view(model));
  return Response::json(200, {{"models", models}});
}

Response ApiService::get_model(Request& request) {
  const std::string& id = request.path_params.at("id");
  auto model = models_.find(id);
  if (!model) throw Error(ErrorCode::kNotFound, "model '" + id + "' is not in the registry");
  return Response::json(200, model_view(*model));
}

Response ApiService::get_file(Request& request) {
  auto* local = dynamic_cast<blob::LocalBlobStore*>(&blobs_);
  if (local == nullptr) throw Error(ErrorCode::kNotFound, "files are served by the storage server");
  const std::string& key = request.path_params.at("key");
  auto expires = request.query.find("expires");
  auto signature = request.query.find("sig");
  if (expires == request.query.end() || signature == request.query.end()) {
    throw Error(ErrorCode::kForbidden, "this file needs a signed URL (from GET /v1/jobs/{id}/artifacts)");
  }
  const int64_t expires_at = parse_event_id(expires->second, "expires");
  const std::string path = local->verified_path(key, expires_at, signature->second);
  auto bytes = read_file_bytes(path);
  Response response = Response::text(200, std::string(bytes.begin(), bytes.end()), content_type_for(path));
  response.headers.push_back({"Cache-Control", "private, max-age=60"});
  return response;
}

Response ApiService::healthz(Request&) { return Response::json(200, {{"status", "ok"}}); }

Response ApiService::readyz(Request& request) {
  json checks = json::object();
  bool ready = true;
  auto check = [&](const std::string& name, const std::function<void()>& probe) {
    try {
      probe();
      checks[name] = {{"ok", true}};
    } catch (const std::exception& e) {
      checks[name] = {{"ok", false}, {"error", e.what()}};
      ready = false;
    }
  };
  check("database", [&] { store_.ping(); });
  check("queue", [&] { queue_.ping(); });
  check("storage", [&] { blobs_.check_writable(); });
  if (!settings_.runner_executable.empty()) {
    check("runner", [&] {
      if (::access(settings_.runner_executable.c_str(), X_OK) != 0) {
        throw Error(ErrorCode::kUnavailable, "runner '" + settings_.runner_executable + "' is not executable");
      }
    });
  }
  json body = {{"status", ready ? "ready" : "not_ready"}, {"checks", checks}};
  if (ready) return Response::json(200, body);
  Response response = http::error_response(
      Error(ErrorCode::kUnavailable, "a backend is not ready", {{"checks", checks}}),
      request.correlation_id);
  response.status = 503;
  return response;
}

Response ApiService::metrics(Request&) {
  auto counts = store_.count_jobs_by_status();
  std::vector<std::pair<telemetry::Labels, double>> series;
  for (const auto& [status, count] : counts) series.push_back({{{"status", status}}, static_cast<double>(count)});
  metrics_.set_gauge_series(telemetry::kJobs, series);
  metrics_.set_gauge(telemetry::kQueueDepth, {}, static_cast<double>(counts["queued"]));
  return Response::text(200, metrics_.render(), "text/plain; version=0.0.4; charset=utf-8");
}

Response ApiService::openapi(Request&) { return Response::json(200, openapi_document(route_docs())); }

}  // namespace df::api
