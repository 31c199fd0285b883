// ComfyUI's views of a job.
#include "api/comfy_history.h"

#include <algorithm>

#include "api/comfy_messages.h"
#include "core/job_spec.h"

namespace df::api {
namespace {

using nlohmann::json;

json comfy_section(const Job& job) { return job.spec.value("comfy", json::object()); }

void add_image(json& outputs, const std::string& node, const json& image) {
  if (node.empty()) return;
  json& images = outputs[node]["images"];
  if (!images.is_array()) images = json::array();
  for (const auto& existing : images) {
    if (existing == image) return;
  }
  images.push_back(image);
}

const Event* find_event(const std::vector<Event>& events, const std::string& type) {
  for (const auto& event : events) {
    if (event.type == type) return &event;
  }
  return nullptr;
}

// The execution_error message of a failed job, as its WebSocket followers got it (the failing
// node, the nodes executed before it, the error); from the job's error alone when its events end
// without one.
json failed_job_error_data(const Job& job, const std::vector<Event>& events, json end) {
  ComfyMessageTranslator translator(job.id);
  json sent;
  for (const auto& event : events) {
    for (const auto& message : translator.translate(event)) {
      if (message["type"] == "execution_error") sent = message["data"];
    }
  }
  if (!sent.is_null()) return sent;
  return execution_error_data(std::move(end), "", "", {}, job.error, "");
}

}  // namespace

std::vector<Job> jobs_with_status(store::Store& store, JobStatus status,
                                  std::optional<std::string> owner) {
  store::JobFilter filter;
  filter.status = status;
  filter.limit = 1000;
  filter.owner = std::move(owner);
  auto jobs = store.list_jobs(filter).jobs;
  std::reverse(jobs.begin(), jobs.end());  // the store lists newest first
  return jobs;
}

int64_t queue_remaining(store::Store& store) {
  return store.count_jobs(JobStatus::kQueued) + store.count_jobs(JobStatus::kRunning);
}

json comfy_number(const Job& job) { return comfy_section(job).value("number", json(0)); }

json queue_tuple(const Job& job) {
  const json comfy = comfy_section(job);
  json outputs = comfy.value("outputs_to_execute", json::array());
  return json::array({comfy_number(job), job.id, job_graph(job),
                      comfy.value("extra_data", json::object()), outputs});
}

json job_outputs(const std::vector<Artifact>& artifacts, const std::vector<Event>& events) {
  json outputs = json::object();
  for (const auto& artifact : artifacts) {
    add_image(outputs, artifact.metadata.value("node", ""),
              {{"filename", artifact.metadata.value("filename", "")},
               {"subfolder", artifact.metadata.value("subfolder", "")},
               {"type", "output"}});
  }
  for (const auto& event : events) {
    if (event.type != "temp_image") continue;
    add_image(outputs, event.data.value("node", ""),
              {{"filename", event.data.value("filename", "")},
               {"subfolder", event.data.value("subfolder", "")},
               {"type", "temp"}});
  }
  return outputs;
}

json history_entry(const Job& job, const std::vector<Artifact>& artifacts,
                   const std::vector<Event>& events) {
  json messages = json::array();
  const Event* started = find_event(events, "job_started");
  const int64_t start_ms = started ? started->created_ms : job.started_ms;
  messages.push_back({"execution_start", {{"prompt_id", job.id}, {"timestamp", start_ms}}});
  json cached = json::array();
  if (const Event* nodes = find_event(events, "nodes_cached")) cached = nodes->data.value("nodes", json::array());
  messages.push_back({"execution_cached", {{"nodes", cached}, {"prompt_id", job.id}, {"timestamp", start_ms}}});
  const bool success = job.status == JobStatus::kSucceeded;
  json end = {{"prompt_id", job.id}, {"timestamp", job.finished_ms}};
  if (success) {
    messages.push_back({"execution_success", end});
  } else if (job.status == JobStatus::kCanceled) {
    messages.push_back({"execution_interrupted", end});
  } else {
    messages.push_back({"execution_error", failed_job_error_data(job, events, end)});
  }
  json outputs = job_outputs(artifacts, events);
  json meta = json::object();
  for (const auto& [node, output] : outputs.items()) {
    meta[node] = {{"node_id", node}, {"display_node", node}, {"parent_node", nullptr}, {"real_node_id", node}};
  }
  return {{"prompt", queue_tuple(job)},
          {"outputs", outputs},
          {"status", {{"status_str", success ? "success" : "error"}, {"completed", success}, {"messages", messages}}},
          {"meta", meta}};
}

json load_history_entry(store::Store& store, const Job& job) {
  std::vector<Event> events;
  for (int64_t after = 0;;) {
    auto page = store.events_after(job.id, after, 1000);
    if (page.empty()) break;
    after = page.back().id;
    for (auto& event : page) {
      if (event.type == "job_started" || event.type == "nodes_cached" || event.type == "temp_image") {
        events.push_back(std::move(event));
      }
    }
  }
  return history_entry(job, store.list_artifacts(job.id), events);
}

}  // namespace df::api
