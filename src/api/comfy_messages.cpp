// Turns a job's events into ComfyUI's WebSocket execution messages.
#include "api/comfy_messages.h"

namespace df::api {

using nlohmann::json;

namespace {

json message(const std::string& type, json data) { return {{"type", type}, {"data", std::move(data)}}; }

}  // namespace

json execution_error_data(json end, const std::string& node_id, const std::string& node_type,
                          const std::vector<std::string>& executed, const json& error,
                          const std::string& message) {
  // Every field the frontend's job schema requires, node_id and node_type as strings. The node
  // the error names wins over the one last started (a node can fail before it runs: its
  // fingerprint reads its input file).
  const json details = error.is_object() ? error.value("details", json::object()) : json::object();
  const bool names_node = details.is_object() && details.contains("node_id") &&
                          details["node_id"].is_string();
  end["node_id"] = names_node ? details["node_id"].get<std::string>() : node_id;
  end["node_type"] = names_node && details.contains("node_type") && details["node_type"].is_string()
                         ? details["node_type"].get<std::string>()
                         : node_type;
  end["executed"] = executed;
  const bool described = error.is_object();
  end["exception_message"] = described ? error.value("message", message) : message;
  end["exception_type"] = described ? error.value("code", "internal") : "internal";
  end["traceback"] = json::array();
  end["current_inputs"] = json::object();
  end["current_outputs"] = json::array();
  return end;
}

std::vector<json> ComfyMessageTranslator::cached_once(const json& nodes, int64_t timestamp) {
  if (cached_sent_) return {};
  cached_sent_ = true;
  return {message("execution_cached", {{"nodes", nodes}, {"prompt_id", prompt_id_}, {"timestamp", timestamp}})};
}

std::vector<json> ComfyMessageTranslator::translate(const Event& event) {
  const int64_t timestamp = event.created_ms;
  std::vector<json> out;
  if (event.type == "job_started") {
    cached_sent_ = false;  // a retry starts the run over
    executed_.clear();
    out.push_back(message("execution_start", {{"prompt_id", prompt_id_}, {"timestamp", timestamp}}));
  } else if (event.type == "nodes_cached") {
    out = cached_once(event.data.value("nodes", json::array()), timestamp);
  } else if (event.type == "node_started") {
    out = cached_once(json::array(), timestamp);
    if (!current_node_.empty()) executed_.push_back(current_node_);
    current_node_ = event.data.value("node", "");
    current_class_ = event.data.value("class_type", "");
    out.push_back(message("executing", {{"node", current_node_}, {"display_node", current_node_},
                                        {"prompt_id", prompt_id_}}));
  } else if (event.type == "progress" && event.data.contains("step")) {
    out.push_back(message("progress", {{"value", event.data.value("step", 0)},
                                       {"max", event.data.value("total_steps", 0)},
                                       {"prompt_id", prompt_id_},
                                       {"node", event.data.value("node", current_node_)}}));
  } else if (event.type == "streamed_image") {  // SaveImageWebsocket's progress bar over its batch
    out.push_back(message("progress", {{"value", event.data.value("index", 0)},
                                       {"max", event.data.value("count", 1)},
                                       {"prompt_id", prompt_id_},
                                       {"node", event.data.value("node", current_node_)}}));
  } else if (event.type == "artifact" || event.type == "temp_image") {
    const std::string node = event.data.value("node", "");
    json image = {{"filename", event.data.value("filename", "")},
                  {"subfolder", event.data.value("subfolder", "")},
                  {"type", event.data.value("kind", event.type == "artifact" ? "output" : "temp")}};
    out.push_back(message("executed", {{"node", node}, {"display_node", node},
                                       {"output", {{"images", json::array({image})}}},
                                       {"prompt_id", prompt_id_}}));
  } else if (event.type == "job_finished") {
    finished_ = true;  // the node that was running when it ended did not finish: not "executed"
    const std::string status = event.data.value("status", "");
    json end = {{"prompt_id", prompt_id_}, {"timestamp", timestamp}};
    if (status == "succeeded") {
      out.push_back(message("execution_success", end));
    } else {
      if (status == "canceled") {
        // Strings always, as ComfyUI sends them ("" when the job ended before any node ran).
        end["node_id"] = current_node_;
        end["node_type"] = current_class_;
        end["executed"] = executed_;
        out.push_back(message("execution_interrupted", end));
      } else {
        out.push_back(message("execution_error",
                              execution_error_data(end, current_node_, current_class_, executed_,
                                                   event.data.value("error", json::object()),
                                                   event.message)));
      }
    }
  }
  return out;
}

}  // namespace df::api
