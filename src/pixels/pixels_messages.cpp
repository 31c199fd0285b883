// The DGX-Pixels protocol's messages: requests read and written, replies and updates built.
#include "pixels/pixels_messages.h"

#include <climits>
#include <cmath>
#include <functional>
#include <map>
#include <string_view>
#include <tuple>

#include "core/error.h"

namespace df::pixels {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// A number as an integer: integers as they are, floats only when whole and in range.
std::optional<int64_t> integer_value(const json& value) {
  if (value.is_number_unsigned()) {
    const auto n = value.get<uint64_t>();
    if (n > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(n);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  if (!value.is_number_float()) return std::nullopt;
  const double n = value.get<double>();
  constexpr double kTwoTo63 = 9223372036854775808.0;
  if (!std::isfinite(n) || n != std::trunc(n) || n < -kTwoTo63 || n >= kTwoTo63) {
    return std::nullopt;
  }
  return static_cast<int64_t>(n);
}

std::optional<int> positive_int_value(const json& value) {
  const std::optional<int64_t> n = integer_value(value);
  if (!n || *n < 1 || *n > INT_MAX) return std::nullopt;
  return static_cast<int>(*n);
}

// The fields of one message, read with errors that name its type and the field.
class MessageFields {
 public:
  MessageFields(const json& message, std::string type)
      : message_(message), type_(type.empty() ? "message" : std::move(type)) {}

  const json& required(const char* key) const {
    const json* value = find(key);
    if (value == nullptr) fail(key, "is missing");
    return *value;
  }
  // nullptr when the field is absent or nil (how clients send an unset optional field).
  const json* optional(const char* key) const {
    const json* value = find(key);
    return value == nullptr || value->is_null() ? nullptr : value;
  }

  std::string text(const json& value, const char* key) const {
    if (!value.is_string()) fail(key, "must be a string");
    return value.get<std::string>();
  }
  std::string id(const json& value, const char* key) const {
    if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
      fail(key, "must be a non-empty string");
    }
    return value.get<std::string>();
  }
  double number(const json& value, const char* key) const {
    if (!value.is_number()) fail(key, "must be a number");
    return value.get<double>();
  }
  int64_t integer(const json& value, const char* key) const {
    const std::optional<int64_t> n = integer_value(value);
    if (!n) fail(key, "must be an integer");
    return *n;
  }
  int positive_integer(const json& value, const char* key) const {
    const std::optional<int> n = positive_int_value(value);
    if (!n) fail(key, "must be a positive integer");
    return *n;
  }
  uint64_t unsigned_integer(const json& value, const char* key) const {
    if (value.is_number_unsigned()) return value.get<uint64_t>();
    const std::optional<int64_t> n = integer_value(value);
    if (!n || *n < 0) fail(key, "must be a non-negative integer");
    return static_cast<uint64_t>(*n);
  }
  bool boolean(const json& value, const char* key) const {
    if (!value.is_boolean()) fail(key, "must be true or false");
    return value.get<bool>();
  }
  // A two-element array of positive integers; `shape` names its elements ("[width, height]").
  std::pair<int, int> positive_pair(const json& value, const char* key, const char* shape) const {
    const bool is_pair = value.is_array() && value.size() == 2;
    const std::optional<int> first = is_pair ? positive_int_value(value[0]) : std::nullopt;
    const std::optional<int> second = is_pair ? positive_int_value(value[1]) : std::nullopt;
    if (!first || !second) fail(key, std::string("must be ") + shape);
    return {*first, *second};
  }

 private:
  const json* find(const char* key) const {
    if (!message_.is_object()) return nullptr;
    const auto it = message_.find(key);
    return it == message_.end() ? nullptr : &*it;
  }
  [[noreturn]] void fail(const char* key, const std::string& what) const {
    throw Error(ErrorCode::kInvalidArgument, type_ + ": " + key + " " + what);
  }

  const json& message_;
  std::string type_;
};

GenerateRequest parse_generate(const MessageFields& fields) {
  GenerateRequest request;
  request.id = fields.id(fields.required("id"), "id");
  request.prompt = fields.text(fields.required("prompt"), "prompt");
  request.model = fields.text(fields.required("model"), "model");
  std::tie(request.width, request.height) =
      fields.positive_pair(fields.required("size"), "size", "[width, height]");
  request.steps = fields.positive_integer(fields.required("steps"), "steps");
  request.cfg_scale = fields.number(fields.required("cfg_scale"), "cfg_scale");
  if (const json* lora = fields.optional("lora")) request.lora = fields.text(*lora, "lora");
  if (const json* batch = fields.optional("batch_size")) {
    request.batch_size = fields.positive_integer(*batch, "batch_size");
  }
  if (const json* frames = fields.optional("animation_frames")) {
    request.animation_frames = fields.positive_integer(*frames, "animation_frames");
  }
  if (const json* grid = fields.optional("tileset_grid")) {
    request.tileset_grid = fields.positive_pair(*grid, "tileset_grid", "[cols, rows]");
  }
  if (const json* seed = fields.optional("seed")) {
    request.seed = fields.unsigned_integer(*seed, "seed");
  }
  if (const json* negative = fields.optional("negative_prompt")) {
    request.negative_prompt = fields.text(*negative, "negative_prompt");
  }
  return request;
}

CancelRequest parse_cancel(const MessageFields& fields) {
  return CancelRequest{fields.id(fields.required("job_id"), "job_id")};
}

using RequestParser = std::function<Request(const MessageFields&)>;
const std::map<std::string, RequestParser, std::less<>>& request_parsers() {
  static const std::map<std::string, RequestParser, std::less<>> parsers = {
      {"generate", parse_generate},
      {"cancel", parse_cancel},
      {"list_models", [](const MessageFields&) -> Request { return ListModelsRequest{}; }},
      {"status", [](const MessageFields&) -> Request { return StatusRequest{}; }},
      {"ping", [](const MessageFields&) -> Request { return PingRequest{}; }},
  };
  return parsers;
}

// A message of `type` with no fields yet: "type" comes first.
ordered_json typed(const char* type) {
  ordered_json message = ordered_json::object();
  message["type"] = type;
  return message;
}

ordered_json generate_message(const GenerateRequest& request) {
  ordered_json message = typed("generate");
  message["id"] = request.id;
  message["prompt"] = request.prompt;
  message["model"] = request.model;
  message["size"] = {request.width, request.height};
  message["steps"] = request.steps;
  message["cfg_scale"] = request.cfg_scale;
  if (request.lora) message["lora"] = *request.lora;
  message["batch_size"] = request.batch_size;
  if (request.animation_frames) message["animation_frames"] = *request.animation_frames;
  if (request.tileset_grid) {
    message["tileset_grid"] = {request.tileset_grid->first, request.tileset_grid->second};
  }
  if (request.seed) message["seed"] = *request.seed;
  if (!request.negative_prompt.empty()) message["negative_prompt"] = request.negative_prompt;
  return message;
}

ordered_json cancel_message(const CancelRequest& request) {
  ordered_json message = typed("cancel");
  message["job_id"] = request.job_id;
  return message;
}

}  // namespace

Request parse_request(const json& message) {
  const std::string type = message_type(message);
  if (type.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "a request must be a map with a 'type'");
  }
  const auto& parsers = request_parsers();
  const auto parser = parsers.find(type);
  if (parser == parsers.end()) {
    throw Error(ErrorCode::kInvalidArgument, "unknown request type '" + type + "'");
  }
  return parser->second(MessageFields(message, type));
}

ordered_json request_message(const Request& request) {
  struct Writer {
    ordered_json operator()(const GenerateRequest& r) const { return generate_message(r); }
    ordered_json operator()(const CancelRequest& r) const { return cancel_message(r); }
    ordered_json operator()(const ListModelsRequest&) const { return typed("list_models"); }
    ordered_json operator()(const StatusRequest&) const { return typed("status"); }
    ordered_json operator()(const PingRequest&) const { return typed("ping"); }
  };
  return std::visit(Writer{}, request);
}

// ---- Replies -----------------------------------------------------------------------------------

ordered_json job_accepted(const std::string& job_id, double estimated_time_s) {
  ordered_json message = typed("job_accepted");
  message["job_id"] = job_id;
  message["estimated_time_s"] = estimated_time_s;
  return message;
}

ordered_json job_cancelled(const std::string& job_id) {
  ordered_json message = typed("job_cancelled");
  message["job_id"] = job_id;
  return message;
}

ordered_json job_error(const std::string& job_id, const std::string& error) {
  ordered_json message = typed("job_error");
  message["job_id"] = job_id;
  message["error"] = error;
  return message;
}

ordered_json model_list(const std::vector<ModelEntry>& models) {
  ordered_json entries = ordered_json::array();
  for (const ModelEntry& model : models) {
    ordered_json entry = ordered_json::object();
    entry["name"] = model.name;
    entry["path"] = model.path;
    entry["model_type"] = model.model_type;
    entry["size_mb"] = model.size_mb;
    entries.push_back(std::move(entry));
  }
  ordered_json message = typed("model_list");
  message["models"] = std::move(entries);
  return message;
}

ordered_json status_info(const StatusInfo& status) {
  ordered_json message = typed("status_info");
  message["version"] = status.version;
  message["queue_size"] = status.queue_size;
  message["active_jobs"] = status.active_jobs;
  message["uptime_s"] = status.uptime_s;
  return message;
}

ordered_json pong() { return typed("pong"); }

ordered_json error_reply(const std::string& message_text) {
  ordered_json message = typed("error");
  message["message"] = message_text;
  return message;
}

// ---- Updates -----------------------------------------------------------------------------------

ordered_json job_started(const std::string& job_id, int64_t timestamp_s) {
  ordered_json message = typed("job_started");
  message["job_id"] = job_id;
  message["timestamp"] = timestamp_s;
  return message;
}

ordered_json progress(const ProgressUpdate& update) {
  ordered_json message = typed("progress");
  message["job_id"] = update.job_id;
  message["stage"] = update.stage;
  message["step"] = update.step;
  message["total_steps"] = update.total_steps;
  message["percent"] = update.percent;
  message["eta_s"] = update.eta_s;
  return message;
}

ordered_json preview(const std::string& job_id, const std::string& image_path, int step) {
  ordered_json message = typed("preview");
  message["job_id"] = job_id;
  message["image_path"] = image_path;
  message["step"] = step;
  return message;
}

ordered_json job_finished(const std::string& job_id, bool success, double duration_s) {
  ordered_json message = typed("job_finished");
  message["job_id"] = job_id;
  message["success"] = success;
  message["duration_s"] = duration_s;
  return message;
}

ordered_json job_complete(const std::string& job_id, const std::string& image_path,
                          double duration_s, const std::vector<std::string>& image_paths) {
  ordered_json message = typed("job_complete");
  message["job_id"] = job_id;
  message["image_path"] = image_path;
  message["duration_s"] = duration_s;
  message["image_paths"] = image_paths;
  return message;
}

// ---- Readers -----------------------------------------------------------------------------------

std::string message_type(const json& message) {
  if (!message.is_object()) return "";
  const auto type = message.find("type");
  return type != message.end() && type->is_string() ? type->get<std::string>() : "";
}

std::string string_field(const json& message, const char* key) {
  const MessageFields fields(message, message_type(message));
  return fields.text(fields.required(key), key);
}

double number_field(const json& message, const char* key) {
  const MessageFields fields(message, message_type(message));
  return fields.number(fields.required(key), key);
}

int64_t integer_field(const json& message, const char* key) {
  const MessageFields fields(message, message_type(message));
  return fields.integer(fields.required(key), key);
}

bool bool_field(const json& message, const char* key) {
  const MessageFields fields(message, message_type(message));
  return fields.boolean(fields.required(key), key);
}

}  // namespace df::pixels
