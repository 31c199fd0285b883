// The JSON shapes of the /v1 API.
#include "api/job_views.h"

#include <set>

#include "api/job_webhooks.h"
#include "core/ids.h"
#include "core/job_spec.h"
#include "core/json_text.h"

namespace df::api {
namespace {

using nlohmann::json;

json time_or_null(int64_t epoch_ms) { return epoch_ms ? json(iso8601_utc(epoch_ms)) : json(); }

// An object schema whose properties are all required except the `optional` ones.
json object_schema(const json& properties, const std::set<std::string>& optional = {}) {
  json required = json::array();
  for (const auto& [name, schema] : properties.items()) {
    if (!optional.count(name)) required.push_back(name);
  }
  return {{"type", "object"}, {"required", required}, {"properties", properties}};
}

}  // namespace

json job_json(const Job& job, const std::vector<Step>* steps) {
  json items = json::array();
  int completed = 0;
  for (const auto& item : job.items) {
    items.push_back(item_to_json(item));
    if (item.status == "succeeded") ++completed;
  }
  const bool has_error = job.error.is_object();
  json out = {{"id", job.id},
              {"type", job.type},
              {"status", job_status_name(job.status)},
              {"progress", job.progress},
              {"items", items},
              {"count", job.spec.value("count", 1)},
              {"attempts", job.attempts},
              {"max_attempts", job.max_attempts},
              {"priority", job.priority},
              {"cancel_requested", job.cancel_requested},
              {"error", job.error},
              // The original API's names for what is above.
              {"error_code", has_error ? job.error.value("code", json()) : json()},
              {"error_message", has_error ? job.error.value("message", json()) : json()},
              {"summary", {{"count", job.spec.value("count", 1)}, {"completed", completed}}},
              {"spec", job.spec},
              {"webhook", webhook_subscription_json(job.webhook)},
              {"created_at", time_or_null(job.created_ms)},
              {"updated_at", time_or_null(job.updated_ms)},
              {"started_at", time_or_null(job.started_ms)},
              {"finished_at", time_or_null(job.finished_ms)},
              {"links",
               {{"self", "/v1/jobs/" + job.id},
                {"events", "/v1/jobs/" + job.id + "/events"},
                {"artifacts", "/v1/jobs/" + job.id + "/artifacts"},
                {"logs", "/v1/jobs/" + job.id + "/logs"},
                {"cancel", "/v1/jobs/" + job.id + "/cancel"},
                {"webhooks", "/v1/jobs/" + job.id + "/webhooks"}}}};
  if (job.spec.contains("estimate")) {
    out["estimate"] = job.spec["estimate"];
    const auto left = estimated_seconds_left(job);
    out["estimate"]["seconds_left"] = left ? json(*left) : json(nullptr);
  }
  if (steps != nullptr) {
    json list = json::array();
    const bool chained = job.spec.contains("chain") && job.spec["chain"].contains("upscale");
    for (const auto& step : *steps) {
      list.push_back(step_json(step));
      if (!chained) continue;
      json upscale = step_json(step);  // the same runner step runs the chained upscale
      upscale["name"] = "upscale";
      list.push_back(std::move(upscale));
    }
    out["steps"] = list;
  }
  return out;
}

json step_json(const Step& step) {
  return {{"name", "generate"},  // the job's only stage a runner step runs
          {"attempt", step.attempt},
          {"worker_id", step.worker_id},
          {"runner", step.runner},
          {"device", step.device},
          {"status", step.status},
          {"started_at", time_or_null(step.started_ms)},
          {"finished_at", time_or_null(step.finished_ms)},
          {"duration_ms", step.finished_ms ? step.finished_ms - step.started_ms : 0},
          {"memory_kind", step.memory_kind},
          {"gpu_mem_used_before", step.gpu_mem_used_before},
          {"gpu_mem_used_after", step.gpu_mem_used_after},
          {"peak_gpu_mem_used", step.peak_gpu_mem_used},
          {"error", step.error}};
}

json event_json(const Event& event) {
  json out = {{"id", event.id},
              {"job_id", event.job_id},
              {"type", event.type},
              {"code", event.code},
              {"item_index", event.item_index ? json(*event.item_index) : json()},
              {"message", event.message},
              {"plain", event.plain},
              {"progress", event.data.value("progress", 0.0)},
              {"time", time_or_null(event.created_ms)}};
  json data = event.data;
  data.erase("progress");
  out["data"] = data;
  return out;
}

std::string sse_frame(const Event& event) {
  return "id: " + std::to_string(event.id) + "\nevent: " + event.type +
         "\ndata: " + dump_json(event_json(event)) + "\n\n";
}

json artifact_json(const Artifact& artifact, const std::string& url, int64_t expires_at) {
  const auto slash = artifact.content_type.find('/');
  const std::string format =
      slash == std::string::npos ? "" : artifact.content_type.substr(slash + 1);
  return {{"id", artifact.id},
          {"item_index", artifact.item_index},
          {"key", artifact.key},
          {"s3_key", artifact.key},  // the original API's name
          {"format", format == "octet-stream" ? "" : format},
          {"content_type", artifact.content_type},
          {"size", artifact.size},
          {"sha256", artifact.sha256},
          {"seed", artifact.seed},
          {"width", artifact.width},
          {"height", artifact.height},
          {"metadata", artifact.metadata},
          {"url", url},
          {"expires_at", iso8601_utc(expires_at * 1000)}};
}

json job_status_schema() {
  json names = json::array();
  for (JobStatus status : {JobStatus::kQueued, JobStatus::kRunning, JobStatus::kSucceeded,
                           JobStatus::kFailed, JobStatus::kCanceled}) {
    names.push_back(job_status_name(status));
  }
  return {{"type", "string"}, {"enum", names}};
}

json job_schema() {
  const json time = {{"type", {"string", "null"}}, {"format", "date-time"}};
  const json count = {{"type", "integer"}, {"minimum", 0}};
  const json link = {{"type", "string"}};
  const json objects = {{"type", "array"}, {"items", {{"type", "object"}}}};
  return object_schema(
      {{"id", {{"type", "string"}}},
       {"type", {{"type", "string"}, {"enum", {"generate", "workflow", "model_download"}}}},
       {"status", job_status_schema()},
       {"progress", {{"type", "number"}, {"minimum", 0}, {"maximum", 1}}},
       {"items", objects},
       {"count", count},
       {"attempts", count},
       {"max_attempts", count},
       {"priority", {{"type", "integer"}}},
       {"cancel_requested", {{"type", "boolean"}}},
       {"error",
        {{"type", {"object", "null"}}, {"description", "{code, message, details} once failed"}}},
       {"error_code", {{"type", {"string", "null"}}, {"description", "error.code"}}},
       {"error_message", {{"type", {"string", "null"}}, {"description", "error.message"}}},
       {"summary", object_schema({{"count", count}, {"completed", count}})},
       {"spec", {{"type", "object"}, {"description", "The request with its defaults applied"}}},
       {"webhook",
        {{"type", {"object", "null"}},
         {"description", "{url, events}: where the job's webhooks go; null without one"}}},
       {"created_at", time},
       {"updated_at", time},
       {"started_at", time},
       {"finished_at", time},
       {"links", object_schema({{"self", link}, {"events", link}, {"artifacts", link},
                                {"logs", link}, {"cancel", link},
                                {"webhooks", link}})},
       {"estimate",
        {{"type", "object"}, {"description", "Expected duration, once the model has run"}}},
       {"steps", {{"type", "array"},
                  {"items", {{"type", "object"}}},
                  {"description", "Each attempt's run {name, status, ...} (GET /v1/jobs/{id} only)"}}}},
      {"estimate", "steps"});
}

}  // namespace df::api
