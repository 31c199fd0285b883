// What the terminal client's /v1 link sends and reads: DGX-Pixels requests as /v1 JSON and back.
#include "tui/v1_translation.h"

#include <cmath>
#include <cstdio>
#include <ctime>

#include "core/error.h"
#include "http/json_text.h"
#include "pixels/generate_job_body.h"

namespace df::tui {
namespace {

using nlohmann::json;

constexpr double kBytesPerMb = 1024.0 * 1024.0;

std::string model_type_of_kind(const std::string& kind) {
  if (kind == "loras") return "lora";
  if (kind == "vae") return "vae";
  return "checkpoint";
}

int64_t size_mb_of_files(const json& files) {
  int64_t bytes = 0;
  for (const auto& file : files) {
    if (file.is_object() && file.contains("size") && file["size"].is_number_integer()) {
      bytes += file["size"].get<int64_t>();
    }
  }
  return std::llround(bytes / kBytesPerMb);
}

std::string string_or_empty(const json& object, const char* key) {
  return object.contains(key) && object[key].is_string() ? object[key].get<std::string>() : "";
}

}  // namespace

json v1_job_body(const pixels::GenerateRequest& request) {
  if (request.animation_frames || request.tileset_grid) {
    throw Error(ErrorCode::kUnsupported,
                "animation_frames and tileset_grid are made by the ZeroMQ endpoint only; "
                "connect without --server to use them");
  }
  return pixels::generate_job_body(request, request.model);
}

Event event_from_v1_json(const json& event) {
  if (!event.is_object() || !event.contains("type") || !event["type"].is_string() ||
      !event.contains("id") || !event["id"].is_number_integer()) {
    throw Error(ErrorCode::kProtocol, "an event of the job's stream has no id and type");
  }
  Event out;
  out.id = event["id"].get<int64_t>();
  out.job_id = string_or_empty(event, "job_id");
  out.type = event["type"].get<std::string>();
  out.code = string_or_empty(event, "code");
  if (event.contains("item_index") && event["item_index"].is_number_integer()) {
    out.item_index = event["item_index"].get<int>();
  }
  out.message = string_or_empty(event, "message");
  out.plain = string_or_empty(event, "plain");
  if (event.contains("data") && event["data"].is_object()) out.data = event["data"];
  if (event.contains("progress") && event["progress"].is_number()) {
    out.data["progress"] = event["progress"];
  }
  if (const std::string time = string_or_empty(event, "time"); !time.empty()) {
    out.created_ms = epoch_ms_from_iso8601(time);
  }
  return out;
}

int64_t epoch_ms_from_iso8601(std::string_view text) {
  std::tm fields{};
  int millis = 0;
  int consumed = 0;
  const std::string copy(text);
  const int read = std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &fields.tm_year,
                               &fields.tm_mon, &fields.tm_mday, &fields.tm_hour, &fields.tm_min,
                               &fields.tm_sec, &millis, &consumed);
  if (read != 7 || consumed != static_cast<int>(copy.size())) {
    throw Error(ErrorCode::kProtocol, "'" + copy + "' is not a time like 2026-11-22T13:05:09.123Z");
  }
  fields.tm_year -= 1900;
  fields.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&fields)) * 1000 + millis;
}

std::vector<pixels::ModelEntry> model_entries(const json& answer) {
  std::vector<pixels::ModelEntry> entries;
  if (!answer.is_object() || !answer.contains("models") || !answer["models"].is_array()) {
    throw Error(ErrorCode::kProtocol, "the server's model list has no models array");
  }
  for (const auto& model : answer["models"]) {
    if (!model.is_object()) continue;
    entries.push_back({string_or_empty(model, "id"), string_or_empty(model, "local_path"),
                       model_type_of_kind(string_or_empty(model, "kind")),
                       size_mb_of_files(model.value("files", json::array()))});
  }
  return entries;
}

double estimated_seconds(const json& job) {
  if (!job.is_object() || !job.contains("estimate") || !job["estimate"].is_object()) return 0;
  const json& seconds = job["estimate"].value("seconds", json());
  return seconds.is_number() ? seconds.get<double>() : 0;
}

std::string error_message(int status, const std::string& body) {
  const json envelope = http::parse_json_text_or_discarded(body);
  if (envelope.is_object()) {
    if (std::string message = string_or_empty(envelope, "message"); !message.empty()) {
      return message;
    }
  }
  return "the server answered HTTP " + std::to_string(status);
}

}  // namespace df::tui
