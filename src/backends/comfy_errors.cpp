// Maps ComfyUI's refusals, execution errors and interruptions to Dream Forge's error codes.
#include "backends/comfy_errors.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>
#include <vector>

namespace df::backends {
namespace {

using nlohmann::json;

std::string text_field(const json& object, const char* key) {
  if (!object.is_object()) return "";
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// ComfyUI ends exception messages with a newline.
std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// A combo value that names a model file (a checkpoint, LoRA, VAE, ...), by its extension.
bool names_model_file(const json& value) {
  if (!value.is_string()) return false;
  std::string name = value.get<std::string>();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  static constexpr std::array<std::string_view, 9> kExtensions = {
      ".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".pt2", ".onnx"};
  return std::any_of(kExtensions.begin(), kExtensions.end(),
                     [&](std::string_view ext) { return ends_with(name, ext); });
}

// A node error that says the backend lacks a model file.
bool is_missing_model(const json& reason) {
  return text_field(reason, "type") == "value_not_in_list" && reason.contains("extra_info") &&
         reason["extra_info"].is_object() &&
         names_model_file(reason["extra_info"].value("received_value", json()));
}

// "node 4 (CheckpointLoaderSimple): ..." for one reason of one node.
std::string describe_reason(const std::string& node_id, const std::string& class_type,
                            const json& reason, const std::string& backend_url) {
  const std::string node = "node " + node_id + (class_type.empty() ? "" : " (" + class_type + ")");
  if (is_missing_model(reason)) {
    const json& extra = reason["extra_info"];
    return node + ": the backend " + backend_url + " has no model file '" +
           extra["received_value"].get<std::string>() + "' for " + text_field(extra, "input_name");
  }
  const std::string details = text_field(reason, "details");
  return node + ": " + text_field(reason, "message") + (details.empty() ? "" : " (" + details + ")");
}

}  // namespace

Error prompt_refusal(const json& error, const json& node_errors, const std::string& backend_url) {
  const json details = {{"error", error}, {"node_errors", node_errors.is_object() ? node_errors : json::object()},
                        {"backend", backend_url}};
  const std::string type = text_field(error, "type");
  if (type == "missing_node_type") {
    const json extra = error.is_object() ? error.value("extra_info", json::object()) : json::object();
    const std::string class_type = text_field(extra, "class_type");
    const std::string node_id = text_field(extra, "node_id");
    if (!class_type.empty()) {
      return Error(ErrorCode::kInvalidArgument,
                   "the backend " + backend_url + " has no node type '" + class_type + "'" +
                       (node_id.empty() ? "" : " (node " + node_id + ")"),
                   details);
    }
  }
  std::vector<std::string> reasons;
  bool all_missing_models = true;
  if (node_errors.is_object()) {
    for (const auto& [node_id, entry] : node_errors.items()) {
      if (!entry.is_object() || !entry.contains("errors") || !entry["errors"].is_array()) continue;
      for (const auto& reason : entry["errors"]) {
        all_missing_models = all_missing_models && is_missing_model(reason);
        reasons.push_back(describe_reason(node_id, text_field(entry, "class_type"), reason, backend_url));
      }
    }
  }
  if (reasons.empty()) {
    const std::string message = text_field(error, "message");
    const std::string what = text_field(error, "details");
    return Error(ErrorCode::kInvalidArgument,
                 "the backend " + backend_url + " refused the graph: " +
                     (message.empty() ? "no reason given" : message) + (what.empty() ? "" : " (" + what + ")"),
                 details);
  }
  std::string message = "the backend " + backend_url + " refused the graph: ";
  for (size_t i = 0; i < reasons.size(); ++i) message += (i ? "; " : "") + reasons[i];
  return Error(all_missing_models ? ErrorCode::kModelNotFound : ErrorCode::kInvalidArgument, message,
               details);
}

Error execution_error(const json& data) {
  const std::string node_id = text_field(data, "node_id");
  const std::string node_type = text_field(data, "node_type");
  const std::string exception_type = text_field(data, "exception_type");
  const std::string exception_message = trimmed(text_field(data, "exception_message"));
  json details = {{"node_id", node_id}, {"node_type", node_type}, {"exception_type", exception_type},
                  {"exception_message", exception_message}};
  if (data.is_object() && data.contains("traceback")) details["traceback"] = data["traceback"];
  const std::string node = "node " + node_id + (node_type.empty() ? "" : " (" + node_type + ")");
  if (exception_type.find("OutOfMemory") != std::string::npos) {
    return Error(ErrorCode::kOutOfMemory, "the backend ran out of memory in " + node + ": " + exception_message,
                 details);
  }
  return Error(ErrorCode::kInternal,
               node + " failed on the backend: " +
                   (exception_type.empty() ? "" : exception_type + ": ") + exception_message,
               details);
}

Error execution_interrupted(const json& data) {
  const std::string node_id = text_field(data, "node_id");
  const std::string node_type = text_field(data, "node_type");
  return Error(ErrorCode::kCanceled,
               node_id.empty() ? "canceled on the backend"
                               : "canceled on the backend at node " + node_id +
                                     (node_type.empty() ? "" : " (" + node_type + ")"),
               {{"node_id", node_id}, {"node_type", node_type}});
}

Error backend_unavailable(const std::string& backend_url, const std::string& reason) {
  return Error(ErrorCode::kUnavailable, "the backend " + backend_url + " is not answering: " + reason,
               {{"backend", backend_url}});
}

std::optional<Error> history_error(const json& entry) {
  if (!entry.is_object() || !entry.contains("status") || !entry["status"].is_object()) return std::nullopt;
  const json messages = entry["status"].value("messages", json::array());
  if (!messages.is_array()) return std::nullopt;
  for (const auto& message : messages) {
    if (!message.is_array() || message.size() != 2 || !message[0].is_string()) continue;
    const std::string name = message[0].get<std::string>();
    if (name == "execution_error") return execution_error(message[1]);
    if (name == "execution_interrupted") return execution_interrupted(message[1]);
  }
  return std::nullopt;
}

}  // namespace df::backends
