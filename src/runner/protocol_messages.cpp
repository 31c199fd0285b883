// The runner protocol's messages to and from their wire form (one JSON object per line).
#include "runner/protocol_messages.h"

#include "core/error.h"
#include "runner/protocol.h"

namespace df::runner {

using nlohmann::json;

// ---- Field lists -------------------------------------------------------------------------------
// Missing fields keep their defaults; fields of another JSON type throw (turned into kProtocol).

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HelloRequest, protocol)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CancelRequest, id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RunnerCapabilities, kind, nodes, object_info,
                                                model_files, samplers, schedulers, formats, devices,
                                                device, dtype, host_budget_bytes,
                                                device_budget_bytes, backend_url)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HelloEvent, protocol, runner, version, capabilities)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RunStartedEvent, id, items, memory)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ItemStartedEvent, id, item_index, seed)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ExecutingEvent, id, item_index, node, class_type)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ProgressEvent, id, item_index, node, step, total,
                                                progress)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StageEvent, id, item_index, node, class_type, stage)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CachedEvent, id, item_index, nodes)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PreviewEvent, id, item_index, node, format, data)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StreamedImageEvent, id, item_index, node, index,
                                                count, width, height, format, data)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ArtifactEvent, id, item_index, node, path, data, url,
                                                filename, subfolder, kind, format, content_type,
                                                width, height, seed, bytes, sha256)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ItemFinishedEvent, id, item_index, seed, duration_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RunFinishedEvent, id, status, items_completed,
                                                duration_ms, memory)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(FreedEvent, memory)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LogEvent, level, message)

// Messages with optional fields or no fields are written by hand.
void to_json(json& out, const RunItem& item) {
  out = {{"index", item.index}};
  if (item.seed) out["seed"] = *item.seed;
}
void from_json(const json& in, RunItem& item) {
  if (!in.is_object() || !in.contains("index") || !in["index"].is_number_integer()) {
    throw Error(ErrorCode::kProtocol, "each item needs an integer 'index'");
  }
  item.index = in["index"].get<int>();
  if (in.contains("seed")) {
    const json& seed = in["seed"];
    if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<int64_t>() >= 0)) {
      throw Error(ErrorCode::kProtocol, "an item's 'seed' must be a non-negative integer");
    }
    item.seed = seed.get<uint64_t>();
  }
}

void to_json(json& out, const RunRequest& run) {
  out = {{"id", run.id},         {"graph", run.graph},       {"items", run.items},
         {"output_dir", run.output_dir}, {"format", run.format}, {"quality", run.quality},
         {"previews", run.previews}};
  if (!run.temp_dir.empty()) out["temp_dir"] = run.temp_dir;
  if (!run.extra_pnginfo.is_null()) out["extra_pnginfo"] = run.extra_pnginfo;
}
void from_json(const json& in, RunRequest& run) {
  run.id = in.at("id").get<std::string>();
  run.graph = in.at("graph");
  run.output_dir = in.at("output_dir").get<std::string>();
  run.items = in.value("items", std::vector<RunItem>{});
  run.temp_dir = in.value("temp_dir", std::string());
  run.format = in.value("format", std::string("png"));
  run.quality = in.value("quality", 95);
  run.extra_pnginfo = in.value("extra_pnginfo", json());
  run.previews = in.value("previews", false);
}

void to_json(json& out, const ErrorEvent& error) {
  out = {{"code", error.code}, {"message", error.message}, {"details", error.details}};
  if (!error.id.empty()) out["id"] = error.id;
  if (error.item_index) out["item_index"] = *error.item_index;
}
void from_json(const json& in, ErrorEvent& error) {
  error.id = in.value("id", std::string());
  if (in.contains("item_index")) error.item_index = in["item_index"].get<int>();
  error.code = in.value("code", std::string("internal"));
  error.message = in.value("message", std::string());
  error.details = in.value("details", json::object());
}

namespace {

// Wire type names, in the order of the variants' alternatives.
constexpr const char* kRequestTypes[] = {"hello", "run", "cancel", "free", "shutdown"};
constexpr const char* kEventTypes[] = {"hello",        "run_started",   "item_started",
                                       "executing",    "progress",      "stage",
                                       "cached",       "preview",       "streamed_image",
                                       "artifact",     "item_finished", "error",
                                       "run_finished", "freed",         "log",
                                       "bye"};

template <typename T>
json with_type(const T& message, const char* type) {
  json out;
  if constexpr (!std::is_empty_v<T>) out = message;
  if (!out.is_object()) out = json::object();
  out["type"] = type;
  return out;
}

// Tries each alternative of Variant until one's type name matches, then converts the message.
template <typename Variant, size_t I = 0>
Variant parse_as(const json& message, const std::string& type, const char* const* names) {
  if constexpr (I == std::variant_size_v<Variant>) {
    throw Error(ErrorCode::kProtocol, "unknown message type '" + type + "'");
  } else {
    if (type != names[I]) return parse_as<Variant, I + 1>(message, type, names);
    using T = std::variant_alternative_t<I, Variant>;
    if constexpr (std::is_empty_v<T>) {
      return Variant(std::in_place_index<I>);
    } else {
      try {
        return Variant(std::in_place_index<I>, message.get<T>());
      } catch (const json::exception& e) {
        throw Error(ErrorCode::kProtocol, "malformed '" + type + "' message: " + e.what());
      }
    }
  }
}

std::string type_of(const json& message) {
  if (!message.is_object() || !message.contains("type") || !message["type"].is_string()) {
    throw Error(ErrorCode::kProtocol, "a message must be a JSON object with a string 'type'");
  }
  return message["type"].get<std::string>();
}

}  // namespace

json to_json(const Request& request) {
  return std::visit([&](const auto& m) { return with_type(m, kRequestTypes[request.index()]); },
                    request);
}

json to_json(const Event& event) {
  return std::visit([&](const auto& m) { return with_type(m, kEventTypes[event.index()]); }, event);
}

Request parse_request(const json& message) {
  return parse_as<Request>(message, type_of(message), kRequestTypes);
}

Event parse_event(const json& message) {
  return parse_as<Event>(message, type_of(message), kEventTypes);
}

std::string message_type(const Request& request) { return kRequestTypes[request.index()]; }
std::string message_type(const Event& event) { return kEventTypes[event.index()]; }

std::string hello_refusal(const HelloEvent& hello) {
  if (hello.protocol != kProtocolVersion) {
    return "the runner speaks protocol version " + std::to_string(hello.protocol) +
           ", this worker version " + std::to_string(kProtocolVersion);
  }
  if (hello.runner.empty()) return "the runner's hello does not name the runner";
  return "";
}

}  // namespace df::runner
