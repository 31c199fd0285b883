// The /v1 API's route table and handlers.
#include "api/api_service.h"

#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include "api/access_policy.h"
#include "api/backend_report.h"
#include "api/device_report.h"
#include "api/job_chain.h"
#include "api/job_logs.h"
#include "api/job_views.h"
#include "api/job_webhooks.h"
#include "blob/local_blob_store.h"
#include "core/error.h"
#include "core/files.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "core/numbers.h"
#include "download/model_download_jobs.h"
#include "registry/eta_estimator.h"
#include "telemetry/service_metrics.h"

namespace df::api {
namespace {

using nlohmann::json;
using http::Request;
using http::Response;

json parameter(const std::string& in, const std::string& name, const json& schema,
               const std::string& description) {
  return {{"name", name}, {"in", in}, {"required", false}, {"schema", schema},
          {"description", description}};
}

ResponseDoc json_answer(int status, std::string description, json schema = nullptr,
                        std::vector<std::pair<std::string, std::string>> headers = {}) {
  return {status, std::move(description), {"application/json"}, std::move(schema),
          std::move(headers)};
}

// A job with the outcome of its cancel request in "cancel".
json canceled_job_schema(const json& outcomes) {
  return {{"allOf",
           {{{"$ref", "#/components/schemas/Job"}},
            {{"type", "object"},
             {"required", {"cancel"}},
             {"properties", {{"cancel", {{"type", "string"}, {"enum", outcomes}}}}}}}}};
}

int parse_limit(const Request& request) {
  auto found = request.query.find("limit");
  if (found == request.query.end()) return 50;
  const auto limit = parse_integer(found->second);
  if (limit && *limit >= 1 && *limit <= 200) return static_cast<int>(*limit);
  throw Error(ErrorCode::kInvalidArgument, "limit must be an integer from 1 to 200",
              {{"fields", {{{"field", "limit"}, {"message", "must be an integer from 1 to 200"}}}}});
}

// A non-negative integer query parameter or header; "" counts as 0.
int64_t parse_non_negative(const std::string& text, const std::string& field,
                           const std::string& what) {
  if (text.empty()) return 0;
  const auto value = parse_integer(text);
  if (value && *value >= 0) return *value;
  throw Error(ErrorCode::kInvalidArgument, field + " must be a non-negative " + what,
              {{"fields", {{{"field", field}, {"message", "must be a non-negative integer"}}}}});
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


// 202 with a new job (200 with an earlier one, Idempotent-Replayed): the job, and the job again
// under "job", as clients of the original Dream Forge API read it.
Response accepted_job_response(const store::CreateJobResult& result) {
  json body = job_json(result.job);
  body["job"] = job_json(result.job);
  Response response = Response::json(result.created ? 202 : 200, body);
  response.headers.push_back({"Location", "/v1/jobs/" + result.job.id});
  if (!result.created) response.headers.push_back({"Idempotent-Replayed", "true"});
  return response;
}
}  // namespace

ApiService::ApiService(store::Store& store, blob::BlobStore& blobs,
                       registry::ModelRegistry& models, queue::Queue& queue, EventHub& hub,
                       telemetry::Metrics& metrics, JobIntake& intake, ApiSettings settings)
    : store_(store),
      blobs_(blobs),
      queue_(queue),
      models_(models),
      hub_(hub),
      metrics_(metrics),
      intake_(intake),
      settings_(std::move(settings)) {
  settings_.jobs.workflows = &intake_.router();
}

std::vector<RouteDoc> ApiService::route_docs(const JobRequestSettings& jobs) {
  const json job = {{"$ref", "#/components/schemas/Job"}};
  const json object = {{"type", "object"}};
  const std::pair<std::string, std::string> location = {"Location", "The job's URL"};
  const ErrorDoc no_job = {404, "No job with this id"};
  const ErrorDoc unavailable = {503, "The database is unavailable; retry later"};
  std::vector<RouteDoc> d;
  d.push_back({"POST", "/v1/jobs", "createJob", "Create a generate or workflow job", "jobs",
               {json_answer(202,
                            "Accepted: the job is queued (the job, and the same job under "
                            "\"job\" as the original Dream Forge API answered)",
                            job, {location}),
                json_answer(200,
                            "Replayed: a request with this Idempotency-Key and the same body "
                            "created this job before; nothing new was created",
                            job, {location, {"Idempotent-Replayed", "true"}})},
               {{400, "The body is not valid JSON (or the request is malformed)"},
                {409, "Idempotency-Key reused with another body"},
                {415, "The body was not sent as Content-Type: application/json"},
                {422, "Validation failed: details.fields names each bad field (for a workflow "
                      "ComfyUI's error and node_errors, and the node types and model files no "
                      "runner offers: missing_node_types, missing_files); an invalid chain "
                      "answers code invalid_input, as the original Dream Forge API did"},
                unavailable},
               job_request_schema(jobs),
               {parameter("header", "Idempotency-Key", {{"type", "string"}, {"maxLength", 255}},
                          "Repeating a request with the same key and body answers the same job")}});
  d.push_back({"GET", "/v1/jobs", "listJobs", "List jobs, newest first", "jobs",
               {json_answer(200, "A page of jobs",
                            {{"type", "object"},
                             {"required", {"jobs", "next_cursor"}},
                             {"properties",
                              {{"jobs", {{"type", "array"}, {"items", job}}},
                               {"next_cursor", {{"type", {"string", "null"}}}}}}})},
               {{422, "status or limit is not valid: details.fields names it"}, unavailable},
               nullptr,
               {parameter("query", "status", job_status_schema(), "Only jobs with this status"),
                parameter("query", "limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 200}},
                          "Page size (default 50)"),
                parameter("query", "cursor", {{"type", "string"}},
                          "next_cursor of the previous page")}});
  d.push_back({"GET", "/v1/jobs/{id}", "getJob", "A job with its items, progress, steps and error",
               "jobs", {json_answer(200, "The job", job)}, {no_job, unavailable}});
  d.push_back({"GET", "/v1/jobs/{id}/artifacts", "listJobArtifacts",
               "The job's images with signed, expiring URLs", "jobs",
               {json_answer(200, "The job's artifacts", object)}, {no_job, unavailable}});
  d.push_back({"GET", "/v1/jobs/{id}/logs", "getJobLogs",
               "The job's log: one JSON object per line {ts, level, code, message, job_id, "
               "step_id?, item_index?, ...}; codes step.start, step.finish, artifact.written, "
               "job.finish, error, ...",
               "jobs", {{200, "The job's log lines, oldest first", {"application/x-ndjson"}}},
               {no_job, {422, "tail or since_ts is not valid"}, unavailable}, nullptr,
               {parameter("query", "tail", {{"type", "integer"}, {"minimum", 0}},
                          "Only the last N lines"),
                parameter("query", "since_ts", {{"type", "string"}},
                          "Only lines at or after this time (ISO 8601 UTC, or epoch seconds)")}});
  d.push_back({"GET", "/v1/jobs/{id}/progress", "getJobProgress",
               "Aggregate and per-item progress, and the job's stages with their weights", "jobs",
               {json_answer(200, "The job's progress {progress, items, stages}", object)},
               {no_job, unavailable}});
  d.push_back({"GET", "/v1/jobs/{id}/webhooks", "listJobWebhooks",
               "The job's webhook subscription and its deliveries with their outcomes", "jobs",
               {json_answer(200, "{job_id, webhook: {url, events} or null, deliveries}",
                            {{"type", "object"},
                             {"required", {"job_id", "webhook", "deliveries"}},
                             {"properties",
                              {{"job_id", {{"type", "string"}}},
                               {"webhook", {{"type", {"object", "null"}}}},
                               {"deliveries",
                                {{"type", "array"}, {"items", webhook_delivery_schema()}}}}}})},
               {no_job, unavailable}});
  d.push_back({"GET", "/v1/jobs/{id}/progress/stream", "streamJobProgress",
               "Live progress (Server-Sent Events): event: progress frames and the log lines "
               "(event: log); ends when the job ends",
               "jobs", {{200, "Progress and log frames", {"text/event-stream"}}},
               {no_job, unavailable}});
  d.push_back({"GET", "/v1/jobs/{id}/events", "streamJobEvents",
               "Live events (Server-Sent Events); resumes after Last-Event-ID", "jobs",
               {{200, "The job's events as they happen; the stream ends after job_finished",
                 {"text/event-stream"}}},
               {no_job, {422, "after or Last-Event-ID is not a non-negative integer"}, unavailable},
               nullptr,
               {parameter("query", "after", {{"type", "integer"}, {"minimum", 0}},
                          "Start after this event id (like Last-Event-ID)"),
                parameter("header", "Last-Event-ID", {{"type", "string"}, {"pattern", "^[0-9]*$"}},
                          "Start after this event id (sent by EventSource when it reconnects)")}});
  d.push_back({"POST", "/v1/jobs/{id}/cancel", "cancelJob",
               "Cancel a queued job, or stop a running one between sampler steps", "jobs",
               {json_answer(202,
                            "Accepted: a queued job is canceled (cancel: canceled), a running one "
                            "stops at its next sampler step (cancel: requested)",
                            canceled_job_schema({"canceled", "requested"})),
                json_answer(200,
                            "The job had already finished; nothing changed "
                            "(cancel: already_finished)",
                            canceled_job_schema({"already_finished"}))},
               {no_job, unavailable}});
  d.push_back({"GET", "/v1/models", "listModels", "Installed models", "models",
               {json_answer(200, "The installed, enabled models", object)}, {unavailable}});
  d.push_back({"POST", "/v1/models:download", "downloadModel",
               "Admins: fetch a model (hf:org/repo[@rev][#file], civitai:model[@version]) in the "
               "background as a model_download job (its progress, bytes and log like any job's)",
               "models",
               {json_answer(202, "Accepted: the download is queued (the job, and again under \"job\")",
                            job, {location}),
                json_answer(200,
                            "A download of the same reference and options is queued or running "
                            "already: that job",
                            job, {location, {"Idempotent-Replayed", "true"}})},
               {{403, "Not an admin key, or the service does not download models (--model-downloads)"},
                {415, "The body was not sent as Content-Type: application/json"},
                {422, "The body is not valid: details.fields names the field"},
                unavailable},
               download::model_download_request_schema()});
  d.push_back({"GET", "/v1/models/{id}", "getModel",
               "One model with the JSON Schema of its parameters", "models",
               {json_answer(200, "The model", object)},
               {{404, "No model with this id"}, unavailable}});
  d.push_back({"GET", "/v1/files/{key...}", "getFile", "An artifact file behind a signed URL",
               "files",
               {{200, "The file",
                 {"image/png", "image/jpeg", "image/webp", "application/octet-stream"}}},
               {{403, "The URL's signature is missing, wrong or expired (or the request was "
                      "refused as on every route)"},
                {404, "No such file, or files are served by the storage server (S3)"},
                {422, "expires is not a non-negative integer"}},
               nullptr,
               {parameter("query", "expires", {{"type", "integer"}, {"minimum", 0}},
                          "Expiry (Unix seconds)"),
                parameter("query", "sig", {{"type", "string"}}, "Signature")}});
  d.push_back({"GET", "/v1/openapi.json", "getOpenApi", "This document", "system",
               {json_answer(200, "The OpenAPI 3.1 document", object)}});
  d.push_back({"GET", "/healthz", "healthz",
               "The process is alive, with its devices, their memory and the runners on them, and "
               "its ComfyUI backends",
               "system", {json_answer(200, "Alive", health_schema())}});
  d.push_back({"GET", "/readyz", "readyz",
               "Database, queue, storage, runner, device and ComfyUI backend checks", "system",
               {json_answer(200, "Every backend is ready", object)},
               {{503, "A backend is not ready: details.checks says which"}}});
  d.push_back({"GET", "/metrics", "metrics", "Prometheus metrics", "system",
               {{200, "Metrics in Prometheus' text format", {"text/plain; version=0.0.4"}}},
               {unavailable}});
  return d;
}

void ApiService::register_routes(http::Router& router) {
  using Method = Response (ApiService::*)(Request&);
  const std::map<std::string, Method> handlers = {
      {"createJob", &ApiService::create_job},       {"listJobs", &ApiService::list_jobs},
      {"getJob", &ApiService::get_job},             {"listJobArtifacts", &ApiService::job_artifacts},
      {"getJobLogs", &ApiService::job_logs},        {"getJobProgress", &ApiService::job_progress},
      {"listJobWebhooks", &ApiService::job_webhooks},
      {"streamJobEvents", &ApiService::job_events}, {"cancelJob", &ApiService::cancel_job},
      {"streamJobProgress", &ApiService::job_progress_stream},
      {"listModels", &ApiService::list_models},     {"getModel", &ApiService::get_model},
      {"downloadModel", &ApiService::download_model},
      {"getFile", &ApiService::get_file},           {"getOpenApi", &ApiService::openapi},
      {"healthz", &ApiService::healthz},            {"readyz", &ApiService::readyz},
      {"metrics", &ApiService::metrics}};
  for (const auto& doc : route_docs(settings_.jobs)) {
    Method method = handlers.at(doc.operation_id);
    router.add(doc.method, doc.path, [this, method](Request& request) { return (this->*method)(request); });
  }
}

Job ApiService::require_job(const Request& request) {
  const std::string& id = request.path_params.at("id");
  auto job = store_.get_job(id);
  // Another user's job answers as a missing one: its existence is not theirs to know.
  if (!job || !request.caller.may_access(job->owner)) {
    throw Error(ErrorCode::kNotFound, "no job with id '" + id + "'");
  }
  return *job;
}

Response ApiService::create_job(Request& request) {
  const std::string key = request.header("Idempotency-Key");
  if (key.size() > 255) {
    throw Error(ErrorCode::kInvalidArgument, "Idempotency-Key is longer than 255 characters",
                {{"fields", {{{"field", "Idempotency-Key"}, {"message", "at most 255 characters"}}}}});
  }
  const std::string owned_key = owned_idempotency_key(request.caller, key);
  // A replay of a job already made is answered with it, whatever the key's limits say now.
  if (owned_key.empty() || !store_.find_job_by_idempotency_key(owned_key)) intake_.admit(request.caller);
  store::CreateJobResult result;
  try {
    result = submit_job(request.json_body(), owned_key, request.caller);
  } catch (const Error& e) {
    if (is_chain_error(e)) {
      Response response = http::error_response(e, request.correlation_id);
      json body = json::parse(response.body);
      body["code"] = "invalid_input";  // the original Dream Forge API's code for chain errors
      response.body = dump_json(body);
      return response;
    }
    if (e.code() != ErrorCode::kModelNotFound) throw;
    Response response = http::error_response(e, request.correlation_id);
    response.status = 422;  // an unknown model_id is a bad field of this request
    return response;
  }
  return accepted_job_response(result);
}

store::CreateJobResult ApiService::submit_job(const json& body, const std::string& idempotency_key,
                                              const http::Caller& caller,
                                              const std::function<void(Job&)>& adjust) {
  NewJob parsed = parse_job_request(body, models_, settings_.jobs);
  parsed.job.idempotency_key = idempotency_key;
  parsed.job.owner = caller.user;
  intake_.check_webhook(parsed.job, caller, "webhook");
  if (adjust) adjust(parsed.job);
  add_estimate(parsed.job);
  save_init_image(parsed, settings_.jobs.input_dir);
  auto discard_init_image = [&] {
    if (parsed.init_image_name.empty()) return;
    std::error_code ignored;
    std::filesystem::remove(std::filesystem::path(settings_.jobs.input_dir) / parsed.init_image_name, ignored);
  };
  store::CreateJobResult result;
  try {
    result = intake_.create(parsed.job, [this](const Job& job) { record_routing(job); });
  } catch (const std::exception&) {
    discard_init_image();  // a conflict or an unavailable database: the job does not exist
    throw;
  }
  if (!result.created) discard_init_image();  // the earlier job has its own copy
  return result;
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
  filter.owner = owner_filter(request.caller);
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

json ApiService::artifacts_json(const std::string& job_id, std::optional<int> item_index) {
  const int64_t expires_at = now_ms() / 1000 + settings_.url_ttl_seconds;
  json artifacts = json::array();
  for (const auto& artifact : store_.list_artifacts(job_id)) {
    if (item_index && artifact.item_index != *item_index) continue;
    artifacts.push_back(artifact_json(artifact, blobs_.signed_url(artifact.key, settings_.url_ttl_seconds),
                                      expires_at));
  }
  return artifacts;
}

Response ApiService::job_artifacts(Request& request) {
  Job job = require_job(request);
  return Response::json(200, {{"job_id", job.id}, {"status", job_status_name(job.status)},
                              {"artifacts", artifacts_json(job.id)},
                              {"url_ttl_seconds", settings_.url_ttl_seconds}});
}

Response ApiService::download_model(Request& request) {
  if (settings_.model_downloads == nullptr) {
    throw Error(ErrorCode::kForbidden,
                "this service does not download models over the API: start it with "
                "--model-downloads N (DREAMFORGE_MODEL_DOWNLOADS), or run dreamforge model download");
  }
  return accepted_job_response(settings_.model_downloads->request(request.json_body(), request.caller));
}

Response ApiService::job_webhooks(Request& request) {
  Job job = require_job(request);
  json deliveries = json::array();
  for (const auto& delivery : store_.list_webhook_deliveries(job.id)) {
    deliveries.push_back(webhook_delivery_json(delivery));
  }
  return Response::json(200, {{"job_id", job.id},
                              {"webhook", webhook_subscription_json(job.webhook)},
                              {"deliveries", deliveries}});
}

json ApiService::webhook_data(const Job& job, const Event& event, const std::string& name) {
  json data = {{"job", job_json(job)}, {"event", event_json(event)}};
  if (name == "item" && event.item_index) data["artifacts"] = artifacts_json(job.id, event.item_index);
  if (name == "completed") data["artifacts"] = artifacts_json(job.id);
  return data;
}

Response ApiService::job_logs(Request& request) {
  Job job = require_job(request);
  std::vector<Event> events;
  for (int64_t after = 0;;) {
    auto page = store_.events_after(job.id, after, 500);
    if (page.empty()) break;
    after = page.back().id;
    events.insert(events.end(), page.begin(), page.end());
  }
  std::vector<json> lines = job_log_lines(events, store_.list_steps(job.id));
  if (auto since = request.query.find("since_ts"); since != request.query.end()) {
    const std::string since_ts = iso8601_utc(parse_since_ts(since->second));
    std::erase_if(lines, [&](const json& line) { return line["ts"].get<std::string>() < since_ts; });
  }
  if (auto tail = request.query.find("tail"); tail != request.query.end()) {
    const auto count = parse_integer(tail->second);
    if (!count || *count < 0) {
      throw Error(ErrorCode::kInvalidArgument, "tail must be a non-negative integer",
                  {{"fields", {{{"field", "tail"}, {"message", "must be a non-negative integer"}}}}});
    }
    if (static_cast<size_t>(*count) < lines.size()) lines.erase(lines.begin(), lines.end() - *count);
  }
  std::string body;
  for (const auto& line : lines) body += dump_json(line) + "\n";
  return Response::text(200, std::move(body), "application/x-ndjson");
}

Response ApiService::job_progress(Request& request) {
  Job job = require_job(request);
  json items = json::array();
  for (const auto& item : job.items) {
    json entry = item_to_json(item);
    entry["item_index"] = item.index;  // the original API's name
    items.push_back(std::move(entry));
  }
  return Response::json(200, {{"job_id", job.id},
                              {"status", job_status_name(job.status)},
                              {"progress", job.progress},
                              {"items", items},
                              {"stages", job_stages(job)}});
}

Response ApiService::job_progress_stream(Request& request) {
  Job job = require_job(request);
  return Response::event_stream(std::make_shared<JobEventStream>(
      store_, hub_, job.id, 0, settings_.streams, progress_stream_frames));
}

Response ApiService::job_events(Request& request) {
  Job job = require_job(request);
  int64_t after = parse_non_negative(request.header("Last-Event-ID"), "Last-Event-ID", "event id");
  if (auto query = request.query.find("after"); query != request.query.end()) {
    after = std::max(after, parse_non_negative(query->second, "after", "event id"));
  }
  return Response::event_stream(
      std::make_shared<JobEventStream>(store_, hub_, job.id, after, settings_.streams));
}

Response ApiService::cancel_job(Request& request) {
  const std::string id = require_job(request).id;
  const auto outcome = cancel(id);
  if (!outcome) throw Error(ErrorCode::kNotFound, "no job with id '" + id + "'");
  auto job = store_.get_job(id);
  json body = job_json(*job);
  body["cancel"] = *outcome == store::CancelOutcome::kCanceled    ? "canceled"
                   : *outcome == store::CancelOutcome::kRequested ? "requested"
                                                                  : "already_finished";
  return Response::json(*outcome == store::CancelOutcome::kAlreadyFinished ? 200 : 202, body);
}

std::optional<store::CancelOutcome> ApiService::cancel(const std::string& job_id) {
  if (!store_.get_job(job_id)) return std::nullopt;
  const auto outcome = store_.cancel_job(job_id);
  if (outcome == store::CancelOutcome::kCanceled) hub_.notify(job_id);
  return outcome;
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
  json view = model_view(*model);
  if (request.caller.admin) {  // where it lies on the server is for admins to know
    view["local_path"] = model->local_path;
    view["files_json"] = view["files"];
  }
  return Response::json(200, view);
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
  const int64_t expires_at = parse_non_negative(expires->second, "expires", "Unix time");
  const std::string path = local->verified_path(key, expires_at, signature->second);
  auto bytes = read_file_bytes(path);
  Response response = Response::text(200, std::string(bytes.begin(), bytes.end()), content_type_for(path));
  response.headers.push_back({"Cache-Control", "private, max-age=60"});
  return response;
}

Response ApiService::healthz(Request&) {
  const auto nvml = gpu::system_nvml();
  const auto runners = settings_.runners ? settings_.runners->all() : std::vector<gpu::RunnerState>{};
  return Response::json(
      200, {{"status", "ok"},
            {"devices", health_devices(nvml ? nvml->devices() : std::vector<gpu::GpuDevice>{},
                                       runners, system_memory())},
            {"backends", health_backends(backend_states(), runners)}});
}

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
  if (settings_.runners) {
    check("devices", [&] {
      if (const auto why = devices_unready(settings_.runners->all())) {
        throw Error(ErrorCode::kUnavailable, *why);
      }
    });
  }
  if (const auto backends = backend_states(); !backends.empty()) {
    check("backends", [&] {
      if (const auto why = backends_unready(backends)) throw Error(ErrorCode::kUnavailable, *why);
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
  if (const auto nvml = gpu::system_nvml()) record_gpu_memory(metrics_, nvml->devices());
  record_backends(metrics_, backend_states());
  return Response::text(200, metrics_.render(), "text/plain; version=0.0.4; charset=utf-8");
}

std::vector<backends::BackendStatus> ApiService::backend_states() const {
  return settings_.backends ? settings_.backends() : std::vector<backends::BackendStatus>{};
}

Response ApiService::openapi(Request&) {
  return Response::json(200, openapi_document(route_docs(settings_.jobs)));
}

}  // namespace df::api
