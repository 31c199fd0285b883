// ComfyUI's queue routes on Dream Forge jobs.
#include "api/comfy_prompts.h"

#include <regex>

#include "api/access_policy.h"
#include "api/comfy_history.h"
#include "api/comfy_request_body.h"
#include "api/comfy_router.h"
#include "api/job_webhooks.h"
#include "api/workflow_validation.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "core/numbers.h"
#include "core/sha256.h"

namespace df::api {
namespace {

using nlohmann::json;
using http::Request;
using http::Response;

Response empty_ok() { return Response::text(200, ""); }

Response prompt_error(const std::string& type, const std::string& message, const std::string& details,
                      json node_errors = json::object()) {
  return Response::json(400, {{"error", {{"type", type}, {"message", message}, {"details", details},
                                         {"extra_info", json::object()}}},
                              {"node_errors", std::move(node_errors)}});
}

}  // namespace

bool valid_prompt_id(const std::string& id) {
  static const std::regex allowed("^[A-Za-z0-9._:-]{1,128}$");
  return std::regex_match(id, allowed);
}

ComfyPrompts::ComfyPrompts(store::Store& store, JobIntake& intake, int max_attempts,
                           ComfyPromptHooks hooks)
    : store_(store),
      intake_(intake),
      max_attempts_(max_attempts),
      hooks_(std::move(hooks)) {}

void ComfyPrompts::register_routes(http::Router& router) {
  auto bind = [this](Response (ComfyPrompts::*method)(Request&)) {
    return [this, method](Request& request) { return (this->*method)(request); };
  };
  add_comfy_route(router, "POST", "/prompt", bind(&ComfyPrompts::post_prompt));
  add_comfy_route(router, "GET", "/prompt", bind(&ComfyPrompts::get_prompt));
  add_comfy_route(router, "GET", "/queue", bind(&ComfyPrompts::get_queue));
  add_comfy_route(router, "POST", "/queue", bind(&ComfyPrompts::post_queue));
  add_comfy_route(router, "POST", "/interrupt", bind(&ComfyPrompts::interrupt));
  add_comfy_route(router, "GET", "/history", bind(&ComfyPrompts::get_history));
  add_comfy_route(router, "GET", "/history/{prompt_id}", bind(&ComfyPrompts::get_history_entry));
  add_comfy_route(router, "POST", "/history", bind(&ComfyPrompts::post_history));
  add_comfy_route(router, "POST", "/free", bind(&ComfyPrompts::free));
}

Response ComfyPrompts::post_prompt(Request& request) {
  const json body = request.json_body(http::JsonContentType::kAny);
  if (!body.is_object() || !body.contains("prompt")) {
    return prompt_error("no_prompt", "No prompt provided", "No prompt provided");
  }
  json number;
  if (body.contains("number") && body["number"].is_number()) {
    number = body["number"].get<double>();
  } else {
    const int64_t next = number_++;
    number = body_flag(body, "front") ? -next : next;
  }
  std::string prompt_id = new_uuid_v7();
  if (body.contains("prompt_id") && !body["prompt_id"].is_null()) {
    prompt_id = body["prompt_id"].is_string() ? body["prompt_id"].get<std::string>() : dump_json(body["prompt_id"]);
    if (!valid_prompt_id(prompt_id)) {
      return prompt_error("invalid_prompt", "Invalid prompt_id", "prompt_id must be 1-128 characters of A-Z a-z 0-9 . _ : -");
    }
  }
  const auto targets = body_strings(body, "partial_execution_targets");
  const RoutingDecision routing = intake_.route(body["prompt"], targets);
  const graph::ValidationResult& validation = routing.validation;
  if (!routing.routed()) {
    return Response::json(400, {{"error", validation.error}, {"node_errors", validation.node_errors}});
  }
  intake_.admit(request.caller);
  json extra_data = body.value("extra_data", json::object());
  if (!extra_data.is_object()) extra_data = json::object();
  if (extra_data.contains("extra_pnginfo") && !extra_data["extra_pnginfo"].is_object()) {
    return prompt_error("invalid_prompt", "Invalid prompt",
                        "extra_data.extra_pnginfo must be a JSON object (its entries become PNG "
                        "text chunks)");
  }
  extra_data.erase("auth_token_comfy_org");  // credentials for ComfyUI's paid API nodes: never kept
  extra_data.erase("api_key_comfy_org");
  if (body.contains("client_id") && body["client_id"].is_string()) extra_data["client_id"] = body["client_id"];
  extra_data["create_time"] = now_ms();

  Job job;
  job.id = prompt_id;
  job.type = "workflow";
  job.owner = request.caller.user;
  job.spec = {{"workflow", body["prompt"]},
              {"count", 1},
              {"format", "png"},
              {"comfy", {{"number", number},
                         {"client_id", scoped_client_id(request.caller, body_string(extra_data, "client_id"))},
                         {"extra_data", extra_data},
                         {"outputs_to_execute", validation.outputs_to_execute}}},
              {"runners", routing.runners}};
  const std::string canonical = dump_json(body);
  job.request_hash = sha256_hex(canonical.data(), canonical.size());
  job.priority = number.get<double>() < 0 ? 1 : 0;  // "front" runs before the rest
  job.max_attempts = max_attempts_;
  job.created_ms = now_ms();
  try {
    job.webhook = webhook_subscription(extra_data, "extra_data.");
    intake_.check_webhook(job, request.caller, "extra_data.webhook");
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument) throw;
    return prompt_error("invalid_prompt", "Invalid webhook", e.what());
  }
  try {
    intake_.create(job, [this](const Job& created) {
      if (hooks_.job_created) hooks_.job_created(created.id);
      if (hooks_.queue_changed) hooks_.queue_changed();
    });
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kConflict) throw;
    return prompt_error("invalid_prompt", "Invalid prompt_id", "prompt_id '" + prompt_id + "' is already used");
  }
  return Response::json(200, {{"prompt_id", prompt_id}, {"number", number}, {"node_errors", validation.node_errors}});
}

Response ComfyPrompts::get_prompt(Request&) {
  return Response::json(200, {{"exec_info", {{"queue_remaining", queue_remaining(store_)}}}});
}

Response ComfyPrompts::get_queue(Request& request) {
  const auto owner = owner_filter(request.caller);
  json running = json::array(), pending = json::array();
  for (const auto& job : jobs_with_status(store_, JobStatus::kRunning, owner)) running.push_back(queue_tuple(job));
  for (const auto& job : jobs_with_status(store_, JobStatus::kQueued, owner)) pending.push_back(queue_tuple(job));
  return Response::json(200, {{"queue_running", running}, {"queue_pending", pending}});
}

Response ComfyPrompts::post_queue(Request& request) {
  const json body = comfy_json_object(request, /*may_be_empty=*/true);
  std::vector<std::string> to_cancel;
  if (body_flag(body, "clear")) {
    for (const auto& job : jobs_with_status(store_, JobStatus::kQueued, owner_filter(request.caller))) {
      to_cancel.push_back(job.id);
    }
  }
  for (const auto& id : body_strings(body, "delete")) {
    auto job = store_.get_job(id);
    // Running ones stay; other users' prompts are not the caller's to delete.
    if (job && job->status == JobStatus::kQueued && request.caller.may_access(job->owner)) {
      to_cancel.push_back(id);
    }
  }
  for (const auto& id : to_cancel) store_.cancel_job(id);
  if (!to_cancel.empty() && hooks_.queue_changed) hooks_.queue_changed();
  return empty_ok();
}

Response ComfyPrompts::interrupt(Request& request) {
  const json body = comfy_json_object(request, /*may_be_empty=*/true);
  const std::string only = body_string(body, "prompt_id");
  for (const auto& job : jobs_with_status(store_, JobStatus::kRunning, owner_filter(request.caller))) {
    if (only.empty() || job.id == only) store_.cancel_job(job.id);
  }
  return empty_ok();
}

Response ComfyPrompts::get_history(Request& request) {
  int max_items = -1;
  int offset = -1;
  auto number = [&](const char* name, int& out) {  // ComfyUI ignores what is not a number
    auto found = request.query.find(name);
    if (found == request.query.end()) return;
    const auto value = parse_integer(found->second);
    if (value) out = static_cast<int>(std::clamp<int64_t>(*value, 0, INT32_MAX));
  };
  number("max_items", max_items);
  number("offset", offset);
  const auto owner = owner_filter(request.caller);
  std::vector<Job> jobs = store_.history(offset >= 0 || owner ? -1 : max_items);
  if (owner) std::erase_if(jobs, [&](const Job& job) { return job.owner != *owner; });
  if (offset < 0 && max_items >= 0 && jobs.size() > static_cast<size_t>(max_items)) {
    jobs.erase(jobs.begin(), jobs.end() - max_items);  // the most recent ones, oldest first
  }
  if (offset >= 0) {
    jobs.erase(jobs.begin(), jobs.begin() + std::min<size_t>(jobs.size(), static_cast<size_t>(offset)));
    if (max_items >= 0 && jobs.size() > static_cast<size_t>(max_items)) jobs.resize(static_cast<size_t>(max_items));
  }
  json history = json::object();
  for (const auto& job : jobs) history[job.id] = load_history_entry(store_, job);
  return Response::json(200, history);
}

Response ComfyPrompts::get_history_entry(Request& request) {
  const std::string& id = request.path_params.at("prompt_id");
  auto job = store_.get_job(id);
  if (!job || !is_terminal(job->status) || !request.caller.may_access(job->owner)) {
    return Response::json(200, json::object());
  }
  return Response::json(200, {{id, load_history_entry(store_, *job)}});
}

Response ComfyPrompts::post_history(Request& request) {
  const json body = comfy_json_object(request, /*may_be_empty=*/true);
  const http::Caller& caller = request.caller;
  if (body_flag(body, "clear")) {
    if (caller.admin) {
      store_.clear_history({});
    } else {  // a user clears only their own history
      std::vector<std::string> own;
      for (const auto& job : store_.history(-1)) {
        if (job.owner == caller.user) own.push_back(job.id);
      }
      if (!own.empty()) store_.clear_history(own);
    }
  }
  auto ids = body_strings(body, "delete");
  std::erase_if(ids, [&](const std::string& id) {
    auto job = store_.get_job(id);
    return !job || !caller.may_access(job->owner);
  });
  if (!ids.empty()) store_.clear_history(ids);
  return empty_ok();
}

Response ComfyPrompts::free(Request& request) {
  const json body = comfy_json_object(request, /*may_be_empty=*/true);
  if ((body_flag(body, "unload_models") || body_flag(body, "free_memory")) && hooks_.free_memory) {
    hooks_.free_memory();
  }
  return empty_ok();
}

}  // namespace df::api
