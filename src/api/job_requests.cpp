// POST /v1/jobs bodies: validated against the job envelope and the model's parameters schema.
#include "api/job_requests.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "api/job_chain.h"
#include "api/job_webhooks.h"
#include "api/workflow_validation.h"
#include "core/base64.h"
#include "core/error.h"
#include "core/files.h"
#include "core/generation_request.h"
#include "core/ids.h"
#include "core/json_schema.h"
#include "core/sha256.h"
#include "nodes/model_folders.h"
#include "registry/model_catalog.h"
#include "registry/model_router.h"
#include "registry/presets.h"

namespace df::api {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Fields that steer the job rather than the image.
const std::vector<std::string> kEnvelopeFields = {
    "type", "model_id", "function", "quality", "preset", "priority", "max_attempts", "webhook",
    "webhook_events", "chain"};

// The envelope's properties every job type has: priority, attempts and the webhook.
json common_properties() {
  json properties = {{"priority", {{"type", "integer"}, {"minimum", -100}, {"maximum", 100}}},
                     {"max_attempts", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10}}}};
  properties.update(webhook_request_properties());
  return properties;
}

json control_schema() {
  json schema = {{"type", "object"},
          {"properties",
           {{"type", {{"type", "string"}, {"enum", {"generate", "workflow"}}}},
            {"model_id", {{"type", "string"}, {"minLength", 1}, {"maxLength", 255}}},
            {"function",
             {{"type", "string"},
              {"enum", registry::routing_functions()},
              {"description", "Instead of model_id: what to do; the routing table picks the model"}}},
            {"quality",
             {{"type", "string"},
              {"enum", registry::routing_qualities()},
              {"default", "standard"},
              {"description", "With function: the quality tier"}}},
            {"preset",
             {{"type", "string"},
              {"minLength", 1},
              {"description", "A preset of the routing table whose values are this job's defaults"}}},
            {"chain", chain_schema()}}}};
  schema["properties"].update(common_properties());
  return schema;
}

json workflow_schema() {
  json schema = {{"type", "object"},
          {"additionalProperties", false},
          {"required", {"workflow"}},  // "type" may be left out: a "workflow" field says it
          {"properties",
           {{"type", {{"const", "workflow"}}},
            {"workflow", {{"type", "object"}, {"description", "A ComfyUI API-format graph"}}},
            {"count", {{"type", "integer"}, {"minimum", 1}, {"maximum", 100}, {"default", 1}}},
            {"seed", {{"type", "integer"}, {"minimum", 0}, {"maximum", 18446744073709551615ULL}}},
            {"format", {{"type", "string"}, {"enum", {"png", "jpeg", "webp"}}, {"default", "png"}}}}}};
  schema["properties"].update(common_properties());
  return schema;
}

// `extra` joins details.fields in the error's details.
[[noreturn]] void reject(const std::vector<SchemaViolation>& violations,
                         json extra = json::object()) {
  json fields = json::array();
  std::string summary;
  for (const auto& v : violations) {
    fields.push_back({{"field", v.field}, {"message", v.message}});
    if (!summary.empty()) summary += "; ";
    summary += (v.field.empty() ? std::string("body") : v.field) + " " + v.message;
  }
  extra["fields"] = fields;
  const bool about_chain = std::any_of(violations.begin(), violations.end(), [](const SchemaViolation& v) {
    return v.field.rfind("chain", 0) == 0;
  });
  if (about_chain) extra["chain"] = true;  // answered as the original API did: invalid_input
  throw Error(ErrorCode::kInvalidArgument, "invalid job request: " + summary, extra);
}

// The image type from its first bytes ("png", "jpeg", "webp"), or "".
std::string image_extension(const std::vector<uint8_t>& bytes) {
  auto starts = [&](std::initializer_list<uint8_t> magic, size_t offset = 0) {
    if (bytes.size() < offset + magic.size()) return false;
    return std::equal(magic.begin(), magic.end(), bytes.begin() + static_cast<long>(offset));
  };
  if (starts({0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'})) return "png";
  if (starts({0xff, 0xd8, 0xff})) return "jpg";
  if (starts({'R', 'I', 'F', 'F'}) && starts({'W', 'E', 'B', 'P'}, 8)) return "webp";
  return "";
}

std::vector<uint8_t> decode_init_image(const std::string& text) {
  std::string_view data = text;
  if (data.rfind("data:", 0) == 0) {
    const auto comma = data.find(',');
    if (comma == std::string_view::npos || data.substr(0, comma).find(";base64") == std::string_view::npos) {
      reject({{"init_image", "must be a base64 data: URL or plain base64"}});
    }
    data.remove_prefix(comma + 1);
  }
  auto bytes = decode_base64(data);
  if (!bytes) reject({{"init_image", "is not valid base64"}});
  if (image_extension(*bytes).empty()) reject({{"init_image", "is not a PNG, JPEG or WebP image"}});
  return std::move(*bytes);
}

// The init images decode_init_image() takes, as the OpenAPI document describes them: base64
// (optionally as a data: URL) of a file whose first bytes are those of a PNG, JPEG or WebP image
// (PNG's and WebP's signatures, and JPEG's SOI marker, as base64 characters), padded or not.
json init_image_schema() {
  constexpr const char* kPattern =
      "^(data:image/(png|jpeg|webp);base64,)?"
      "(iVBORw0KGg[o-r][A-Za-z0-9+/]|/9j/|UklGR[g-v][A-Za-z0-9+/]{4}[BFJNRVZdhlptx159]XRUJQ)"
      "([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}(==)?|[A-Za-z0-9+/]{3}=?)?$";
  constexpr const char* kExample =  // a 64x64 PNG
      "iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAAUUlEQVR42u3PMQ0AMAgAMJhMlCARWVPBQdI6"
      "aFZPXPbiOAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAYF9H4hVAhoavLyN"
      "AAAAAElFTkSuQmCC";
  return {{"type", "string"},
          {"contentEncoding", "base64"},
          {"pattern", kPattern},
          {"examples", {kExample}},
          {"description", "Image-to-image: a PNG, JPEG or WebP image, base64 (optionally as a "
                          "data:image/...;base64, URL)"}};
}

// The routing fields as this server takes them: the routing table's presets by name, or without
// a routing table no function, quality tier or preset at all.
void show_routing_offer(json& properties, const registry::RoutingTable* routing) {
  if (routing == nullptr) {
    for (const char* field : {"function", "quality", "preset"}) properties[field] = false;
    return;
  }
  const std::vector<std::string> presets = routing->presets.names();
  if (presets.empty()) {
    properties["preset"] = false;
  } else {
    properties["preset"]["enum"] = presets;
  }
}

// The model the job names (or the default, or the only one available); nullopt with a violation
// when none can be chosen.
std::optional<Model> resolve_model(const json& body, registry::ModelRegistry& models,
                                   const JobRequestSettings& settings,
                                   std::vector<SchemaViolation>& violations) {
  std::string id = body.value("model_id", settings.default_model);
  const std::vector<Model> available = models.available();
  if (id.empty()) {
    const auto& installed = available;
    if (installed.size() == 1) return installed.front();
    violations.push_back({"model_id", installed.empty()
                                          ? "is required (no model is installed)"
                                          : "is required (several models are installed)"});
    return std::nullopt;
  }
  const auto model = std::find_if(available.begin(), available.end(),
                                  [&](const Model& m) { return m.id == id; });
  if (model == available.end()) {
    const auto entry = models.find(id);
    const std::string why = !entry              ? "is not installed"
                            : !entry->installed ? "is registered but its files are missing"
                                                : "is disabled";
    json ids = json::array();
    for (const auto& m : available) ids.push_back(m.id);
    throw Error(ErrorCode::kModelNotFound, "model '" + id + "' " + why,
                {{"field", "model_id"}, {"models", ids}});
  }
  return *model;
}

// The LoRA files a generate job may name: those of the models root's loras folder, as the native
// runners' LoraLoader offers them.
std::vector<std::string> available_loras(registry::ModelRegistry& models) {
  const std::string models_root = fs::path(models.checkpoints_dir()).parent_path().string();
  return nodes::model_combo_names(models_root, "loras");
}

// The job's LoRAs with their default strengths filled in; a file that is not there is refused,
// naming the field (loras[0].name) and listing the files that are (details.available_loras).
json checked_loras(const json& loras, registry::ModelRegistry& models) {
  const json item_schema = registry::generate_loras_schema()["items"];
  const std::vector<std::string> available = available_loras(models);
  std::vector<SchemaViolation> violations;
  json filled = json::array();
  for (size_t i = 0; i < loras.size(); ++i) {
    const std::string name = loras[i]["name"].get<std::string>();
    if (std::find(available.begin(), available.end(), name) == available.end()) {
      violations.push_back(
          {"loras[" + std::to_string(i) + "].name", missing_lora_message(name, available)});
    }
    filled.push_back(apply_schema_defaults(item_schema, loras[i]));
  }
  if (!violations.empty()) reject(violations, {{"available_loras", available}});
  return filled;
}

bool is_routed(const json& body) { return body.contains("function") || body.contains("quality"); }

// The model and preset the routing table picks for the body's function and quality tier.
registry::RoutingDecision route(const json& body, registry::ModelRegistry& models,
                                const JobRequestSettings& settings) {
  if (body.contains("model_id")) {
    reject({{"model_id", "names a model; function and quality choose one: give one or the other"}});
  }
  if (settings.routing == nullptr) reject({{"function", "is not offered by this server"}});
  const std::string function =
      body.value("function", body.contains("init_image") ? "transform_image" : "create_image");
  return registry::route_request(*settings.routing, function, body.value("quality", "standard"),
                                 models.all(), settings.device);
}

// What a job's preset needs, for the worker's headroom check before it starts.
json memory_need(const std::string& preset_name, const registry::Preset& preset,
                 const JobRequestSettings& settings) {
  return {{"preset", preset_name},
          {"memory_mb", preset.memory_mb},
          {"device_class", std::string(registry::device_class_name(settings.device.device_class))}};
}

// The named preset's values as the job's defaults (fields the job gives win), and its memory need
// into `need`.
json with_named_preset(const json& body, json params, const JobRequestSettings& settings, json& need) {
  if (!body.contains("preset")) return params;
  if (settings.routing == nullptr) reject({{"preset", "is not offered by this server"}});
  registry::Preset preset;
  const std::string name = body["preset"].get<std::string>();
  try {
    preset = settings.routing->presets.preset_for(name, settings.device.device_class);
  } catch (const Error& e) {
    reject({{"preset", e.what()}});
  }
  need = memory_need(name, preset, settings);
  return registry::apply_preset(preset, std::move(params));
}

NewJob parse_generate(const json& body, registry::ModelRegistry& models,
                      const JobRequestSettings& settings) {
  json params = json::object();
  for (const auto& [key, value] : body.items()) {
    if (std::find(kEnvelopeFields.begin(), kEnvelopeFields.end(), key) == kEnvelopeFields.end()) {
      params[key] = value;
    }
  }
  auto violations = validate_against_schema(control_schema(), body);
  const bool model_choice_valid =
      std::none_of(violations.begin(), violations.end(), [](const SchemaViolation& v) {
        return v.field == "model_id" || v.field == "function" || v.field == "quality" ||
               v.field == "preset";
      });
  std::optional<Model> found;
  json routing;
  json need;  // the named preset's, else the routed one's
  if (model_choice_valid) {
    params = with_named_preset(body, std::move(params), settings, need);
    if (is_routed(body)) {
      const registry::RoutingDecision decision = route(body, models, settings);
      params = registry::apply_preset(decision.preset, std::move(params));
      routing = registry::routing_decision_to_json(decision);
      if (need.is_null()) need = memory_need(decision.preset_name, decision.preset, settings);
      found = decision.model;
    } else {
      found = resolve_model(body, models, settings, violations);
    }
  }
  if (found) {
    auto param_violations = validate_against_schema(found->parameters_schema, params);
    violations.insert(violations.end(), param_violations.begin(), param_violations.end());
  }
  if (!violations.empty()) reject(violations);
  const Model& model = *found;
  if (params.contains("denoise") && params["denoise"].get<double>() < 1.0 && !params.contains("init_image")) {
    reject({{"denoise", "below 1 needs an init_image"}});
  }
  NewJob result;
  result.job.type = "generate";
  json spec = apply_schema_defaults(model.parameters_schema, params);
  spec["model_id"] = model.id;
  spec["checkpoint"] = model.ckpt_name;
  if (spec.contains("loras")) {
    spec["loras"] = checked_loras(spec["loras"], models);
  }
  if (body.contains("chain")) {
    const std::string models_root = fs::path(models.checkpoints_dir()).parent_path().string();
    spec["chain"] = resolved_chain(body["chain"], spec.value("width", 0), spec.value("height", 0),
                                   nodes::list_model_files(models_root, "upscale_models"));
  }
  if (!routing.is_null()) spec["routing"] = routing;
  // Derived from the preset, after the request hash's body: a retried request still matches.
  if (!need.is_null()) spec["memory_need"] = need;
  if (spec.contains("init_image")) {
    result.init_image = decode_init_image(spec["init_image"].get<std::string>());
    spec.erase("init_image");
  }
  result.job.spec = spec;
  return result;
}

NewJob parse_workflow(const json& body, registry::ModelRegistry& models,
                      const JobRequestSettings& settings) {
  auto violations = validate_against_schema(workflow_schema(), body);
  if (!violations.empty()) reject(violations);
  std::optional<WorkflowRouter> native_only;
  WorkflowRouter& router =
      settings.workflows ? *settings.workflows : native_only.emplace(models, settings.input_dir);
  const RoutingDecision routing = router.route(body["workflow"]);
  if (!routing.routed() || !routing.validation.node_errors.empty()) throw routing.error();
  NewJob result;
  result.job.type = "workflow";
  json spec = apply_schema_defaults(workflow_schema(), body);
  spec.erase("type");
  for (const char* field : {"priority", "max_attempts", "webhook", "webhook_events"}) spec.erase(field);
  spec["runners"] = routing.runners;
  result.job.spec = spec;
  return result;
}

}  // namespace

NewJob parse_job_request(const json& body, registry::ModelRegistry& models,
                         const JobRequestSettings& settings) {
  if (!body.is_object()) reject({{"", "must be a JSON object"}});
  const std::string type = body.contains("type") && body["type"].is_string()
                               ? body["type"].get<std::string>()
                               : (body.contains("workflow") ? "workflow" : "generate");
  NewJob result = type == "workflow" ? parse_workflow(body, models, settings)
                                     : parse_generate(body, models, settings);
  Job& job = result.job;
  job.id = new_uuid_v7();
  const std::string canonical = body.dump();  // object keys sorted: a canonical form
  job.request_hash = sha256_hex(canonical.data(), canonical.size());
  job.priority = body.value("priority", 0);
  job.max_attempts = body.value("max_attempts", settings.default_max_attempts);
  job.webhook = webhook_subscription(body);
  job.created_ms = now_ms();
  if (!result.init_image.empty()) {
    result.init_image_name = job.id + "." + image_extension(result.init_image);
    job.spec["init_image_name"] = result.init_image_name;
  }
  return result;
}

void save_init_image(const NewJob& job, const std::string& input_dir) {
  if (job.init_image.empty()) return;
  fs::create_directories(input_dir);
  write_file_atomically((fs::path(input_dir) / job.init_image_name).string(), job.init_image);
}

json job_request_schema(const JobRequestSettings& settings) {
  json generate = control_schema();
  generate["description"] =
      "A generate job: model_id (or function and quality) plus the model's parameters (see GET "
      "/v1/models/{id} parameters_schema), e.g. prompt, width, height, steps, guidance, sampler, "
      "scheduler, seed, count, format, init_image, denoise, loras.";
  json& properties = generate["properties"];
  show_routing_offer(properties, settings.routing);
  properties["prompt"] = {{"type", "string"}, {"minLength", 1}};
  properties["init_image"] = init_image_schema();
  properties["loras"] = registry::generate_loras_schema();
  generate["required"] = {"prompt"};
  generate["not"] = {{"anyOf", {{{"required", {"model_id", "function"}}},
                                {{"required", {"model_id", "quality"}}}}}};  // one way to choose
  return {{"oneOf", {generate, workflow_schema()}}};
}

}  // namespace df::api
