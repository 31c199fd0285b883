// The jobs API of ComfyUI's web frontend.
#include "api/comfy_jobs.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "api/access_policy.h"
#include "api/comfy_history.h"
#include "core/error.h"
#include "core/json_text.h"
#include "core/numbers.h"

namespace df::api {
namespace {

using nlohmann::json;
using http::Request;
using http::Response;

// ComfyUI's job states and the Dream Forge statuses behind them.
const std::vector<std::pair<std::string, JobStatus>> kStates = {
    {"pending", JobStatus::kQueued},
    {"in_progress", JobStatus::kRunning},
    {"completed", JobStatus::kSucceeded},
    {"failed", JobStatus::kFailed},
    {"cancelled", JobStatus::kCanceled},
};

std::string state_of(JobStatus status) {
  for (const auto& [name, s] : kStates) {
    if (s == status) return name;
  }
  return "pending";
}

Response bad_request(const std::string& message) { return Response::json(400, {{"error", message}}); }

// The first image among the outputs, output type preferred: what the sidebar shows.
json preview_output(const json& outputs) {
  json fallback;
  for (const auto& [node, output] : outputs.items()) {
    for (const auto& image : output.value("images", json::array())) {
      json preview = image;
      preview["nodeId"] = node;
      preview["mediaType"] = "images";
      if (image.value("type", "") == "output") return preview;
      if (fallback.is_null()) fallback = preview;
    }
  }
  return fallback;
}

size_t count_outputs(const json& outputs) {
  size_t count = 0;
  for (const auto& [node, output] : outputs.items()) count += output.value("images", json::array()).size();
  return count;
}

json list_item(const Job& job, const json* history) {
  json item = {{"id", job.id},
               {"status", state_of(job.status)},
               {"priority", comfy_number(job)},
               {"create_time", job.created_ms},
               {"outputs_count", 0}};
  const json workflow_id = job.spec.value(
      json::json_pointer("/comfy/extra_data/extra_pnginfo/workflow/id"), json());
  if (!workflow_id.is_null()) item["workflow_id"] = workflow_id;
  if (job.started_ms) item["execution_start_time"] = job.started_ms;
  if (!history) return item;
  if (job.finished_ms) item["execution_end_time"] = job.finished_ms;
  const json& outputs = (*history)["outputs"];
  item["outputs_count"] = count_outputs(outputs);
  if (json preview = preview_output(outputs); !preview.is_null()) item["preview_output"] = preview;
  for (const auto& message : (*history)["status"]["messages"]) {
    if (message[0] == "execution_error") item["execution_error"] = message[1];
  }
  return item;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, separator);) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

}  // namespace

void ComfyJobs::register_routes(http::Router& router) {
  router.add("GET", "/api/jobs", [this](Request& request) { return list(request); });
  router.add("GET", "/api/jobs/{id}", [this](Request& request) { return detail(request); });
}

Response ComfyJobs::list(Request& request) {
  std::set<JobStatus> wanted;
  if (auto status = request.query.find("status"); status != request.query.end()) {
    std::vector<std::string> invalid;
    for (const auto& name : split(status->second, ',')) {
      auto found = std::find_if(kStates.begin(), kStates.end(), [&](const auto& s) { return s.first == name; });
      if (found == kStates.end()) {
        invalid.push_back(name);
      } else {
        wanted.insert(found->second);
      }
    }
    if (!invalid.empty()) return bad_request("Invalid status value(s): " + dump_json(json(invalid)));
  } else {
    for (const auto& [name, s] : kStates) wanted.insert(s);
  }
  int64_t limit = 100, offset = 0;
  if (auto text = request.query.find("limit"); text != request.query.end()) {
    auto value = parse_integer(text->second);
    if (!value || *value <= 0) return bad_request("limit must be a positive integer");
    limit = *value;
  }
  if (auto text = request.query.find("offset"); text != request.query.end()) {
    auto value = parse_integer(text->second);
    if (!value || *value < 0) return bad_request("offset must be a non-negative integer");
    offset = *value;
  }
  const bool ascending = request.query.count("sort_order") && request.query.at("sort_order") == "asc";

  const auto owner = owner_filter(request.caller);
  std::vector<Job> jobs;
  for (auto status : {JobStatus::kQueued, JobStatus::kRunning}) {
    if (!wanted.count(status)) continue;
    for (auto& job : jobs_with_status(store_, status, owner)) jobs.push_back(std::move(job));
  }
  for (auto& job : store_.history(-1)) {
    if (wanted.count(job.status) && (!owner || job.owner == *owner)) jobs.push_back(std::move(job));
  }
  std::sort(jobs.begin(), jobs.end(), [&](const Job& a, const Job& b) {
    return ascending ? a.created_ms < b.created_ms : a.created_ms > b.created_ms;
  });
  const auto total = static_cast<int64_t>(jobs.size());
  json items = json::array();
  for (int64_t i = offset; i < std::min(total, offset + limit); ++i) {
    const Job& job = jobs[static_cast<size_t>(i)];
    if (is_terminal(job.status)) {
      const json history = load_history_entry(store_, job);
      items.push_back(list_item(job, &history));
    } else {
      items.push_back(list_item(job, nullptr));
    }
  }
  return Response::json(200, {{"jobs", items},
                              {"pagination", {{"offset", offset}, {"limit", limit}, {"total", total},
                                              {"has_more", offset + limit < total}}}});
}

Response ComfyJobs::detail(Request& request) {
  auto job = store_.get_job(request.path_params.at("id"));
  if (!job || !request.caller.may_access(job->owner)) return Response::json(404, {{"error", "Job not found"}});
  if (!is_terminal(job->status)) return Response::json(200, list_item(*job, nullptr));
  const json history = load_history_entry(store_, *job);
  json item = list_item(*job, &history);
  item["outputs"] = history["outputs"];
  item["execution_status"] = history["status"];
  item["workflow"] = {{"prompt", history["prompt"][2]}, {"extra_data", history["prompt"][3]}};
  return Response::json(200, item);
}

}  // namespace df::api
