// The runner protocol's messages to and from their wire form (one JSON object per line).
#include "runner/protocol_messages.h"

#include "core/error.h"
#include "runner/protocol.h"

namespace df::runner {

using nlohmann::json;

// ---- Field lists -------------------------------------------------------------------------------
// Missing fields keep their defaults; a field of another JSON type is a protocol error naming it.

namespace {

// Reads `name` into `out` when the message has it.
template <typename T>
void read_field(const json& in, const char* name, T& out) {
  const auto it = in.find(name);
  if (it == in.end()) return;
  try {
    out = it->template get<T>();
  } catch (const json::exception&) {
    throw Error(ErrorCode::kProtocol, std::string("'") + name + "' has the wrong type (" +
                                          it->type_name() + ")");
  } catch (const Error& e) {  // a field of a nested message
    throw Error(ErrorCode::kProtocol, std::string("in '") + name + "': " + e.what());
  }
}

template <typename T>
void read_required(const json& in, const char* name, T& out) {
  if (!in.contains(name)) throw Error(ErrorCode::kProtocol, std::string("'") + name + "' is required");
  read_field(in, name, out);
}

void require_object(const json& in) {
  if (!in.is_object()) {
    throw Error(ErrorCode::kProtocol, std::string("expected an object, not ") + in.type_name());
  }
}

}  // namespace

#define DF_READ_FIELD(field) read_field(nlohmann_json_j, #field, nlohmann_json_t.field);
// to_json and from_json of a message whose fields are all optional.
#define DF_PROTOCOL_MESSAGE(Type, ...)                                                  \
  void to_json(json& nlohmann_json_j, const Type& nlohmann_json_t) {                     \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(NLOHMANN_JSON_TO, __VA_ARGS__))             \
  }                                                                                      \
  void from_json(const json& nlohmann_json_j, Type& nlohmann_json_t) {                   \
    require_object(nlohmann_json_j);                                                     \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(DF_READ_FIELD, __VA_ARGS__))                \
  }

DF_PROTOCOL_MESSAGE(HelloRequest, protocol)
DF_PROTOCOL_MESSAGE(RunnerCapabilities, kind, nodes, object_info, model_files, samplers,
                    schedulers, formats, devices, device, dtype, host_budget_bytes,
                    device_budget_bytes, backend_url)
DF_PROTOCOL_MESSAGE(HelloEvent, protocol, runner, version, capabilities)
DF_PROTOCOL_MESSAGE(RunStartedEvent, id, items, memory)
DF_PROTOCOL_MESSAGE(ItemStartedEvent, id, item_index, seed)
DF_PROTOCOL_MESSAGE(ExecutingEvent, id, item_index, node, class_type)
DF_PROTOCOL_MESSAGE(ProgressEvent, id, item_index, node, step, total, progress)
DF_PROTOCOL_MESSAGE(StageEvent, id, item_index, node, class_type, stage)
DF_PROTOCOL_MESSAGE(CachedEvent, id, item_index, nodes)
DF_PROTOCOL_MESSAGE(PreviewEvent, id, item_index, node, format, data)
DF_PROTOCOL_MESSAGE(StreamedImageEvent, id, item_index, node, index, count, width, height, format,
                    data)
DF_PROTOCOL_MESSAGE(ItemFinishedEvent, id, item_index, seed, duration_ms)
DF_PROTOCOL_MESSAGE(RunFinishedEvent, id, status, items_completed, duration_ms, memory)
DF_PROTOCOL_MESSAGE(FreedEvent, memory)
DF_PROTOCOL_MESSAGE(LogEvent, level, message)

#undef DF_PROTOCOL_MESSAGE
#undef DF_READ_FIELD

// Messages with required or optional fields are written by hand.
void to_json(json& out, const CancelRequest& cancel) { out = {{"id", cancel.id}}; }
void from_json(const json& in, CancelRequest& cancel) {
  require_object(in);
  read_required(in, "id", cancel.id);
}

void to_json(json& out, const RunItem& item) {
  out = {{"index", item.index}};
  if (item.seed) out["seed"] = *item.seed;
}
void from_json(const json& in, RunItem& item) {
  require_object(in);
  read_required(in, "index", item.index);
  if (in.contains("seed")) {
    const json& seed = in["seed"];
    if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<int64_t>() >= 0)) {
      throw Error(ErrorCode::kProtocol, "'seed' must be a non-negative integer, not " + seed.dump());
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
  require_object(in);
  read_required(in, "id", run.id);
  read_required(in, "graph", run.graph);
  if (!run.graph.is_object()) {
    throw Error(ErrorCode::kProtocol, "'graph' must be an API-format graph (an object), not " +
                                          std::string(run.graph.type_name()));
  }
  read_required(in, "output_dir", run.output_dir);
  if (in.contains("items") && !in["items"].is_array()) {
    throw Error(ErrorCode::kProtocol, "'items' must be a list");
  }
  if (in.contains("items")) {
    run.items.clear();
    for (size_t i = 0; i < in["items"].size(); ++i) {
      try {
        run.items.push_back(in["items"][i].get<RunItem>());
      } catch (const Error& e) {
        throw Error(ErrorCode::kProtocol, "in 'items[" + std::to_string(i) + "]': " + e.what());
      }
    }
  }
  read_field(in, "temp_dir", run.temp_dir);
  read_field(in, "format", run.format);
  read_field(in, "quality", run.quality);
  read_field(in, "extra_pnginfo", run.extra_pnginfo);
  read_field(in, "previews", run.previews);
}

// An artifact names its image one way: path, data or url (the others are left out on the wire).
void to_json(json& out, const ArtifactEvent& a) {
  out = {{"id", a.id},         {"item_index", a.item_index}, {"node", a.node},
         {"filename", a.filename}, {"subfolder", a.subfolder}, {"kind", a.kind},
         {"format", a.format}, {"content_type", a.content_type}, {"width", a.width},
         {"height", a.height}, {"seed", a.seed},             {"bytes", a.bytes},
         {"sha256", a.sha256}};
  if (!a.path.empty()) out["path"] = a.path;
  if (!a.data.empty()) out["data"] = a.data;
  if (!a.url.empty()) out["url"] = a.url;
}
void from_json(const json& in, ArtifactEvent& a) {
  require_object(in);
  read_field(in, "id", a.id);
  read_field(in, "item_index", a.item_index);
  read_field(in, "node", a.node);
  read_field(in, "path", a.path);
  read_field(in, "data", a.data);
  read_field(in, "url", a.url);
  read_field(in, "filename", a.filename);
  read_field(in, "subfolder", a.subfolder);
  read_field(in, "kind", a.kind);
  read_field(in, "format", a.format);
  read_field(in, "content_type", a.content_type);
  read_field(in, "width", a.width);
  read_field(in, "height", a.height);
  read_field(in, "seed", a.seed);
  read_field(in, "bytes", a.bytes);
  read_field(in, "sha256", a.sha256);
  const int given = !a.path.empty() + !a.data.empty() + !a.url.empty();
  if (given != 1) {
    throw Error(ErrorCode::kProtocol, "an artifact needs exactly one of 'path', 'data' or 'url'");
  }
}

void to_json(json& out, const ErrorEvent& error) {
  out = {{"code", error.code}, {"message", error.message}, {"details", error.details}};
  if (!error.id.empty()) out["id"] = error.id;
  if (error.item_index) out["item_index"] = *error.item_index;
}
void from_json(const json& in, ErrorEvent& error) {
  require_object(in);
  read_field(in, "id", error.id);
  if (in.contains("item_index")) {
    int index = 0;
    read_field(in, "item_index", index);
    error.item_index = index;
  }
  error.code = "internal";
  read_field(in, "code", error.code);
  read_field(in, "message", error.message);
  read_field(in, "details", error.details);
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
      } catch (const std::exception& e) {
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

void check_hello_request(const HelloRequest& hello) {
  if (hello.protocol == kProtocolVersion) return;
  throw Error(ErrorCode::kProtocol,
              "the worker speaks runner protocol version " + std::to_string(hello.protocol) +
                  ", this runner version " + std::to_string(kProtocolVersion),
              {{"worker_protocol", hello.protocol}, {"runner_protocol", kProtocolVersion}});
}

std::string hello_refusal(const HelloEvent& hello) {
  if (hello.protocol != kProtocolVersion) {
    return "the runner speaks protocol version " + std::to_string(hello.protocol) +
           ", this worker version " + std::to_string(kProtocolVersion);
  }
  if (hello.runner.empty()) return "the runner's hello does not name the runner";
  return "";
}

}  // namespace df::runner
