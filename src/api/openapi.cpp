// The OpenAPI 3.1 document, made from the same route table the router is built from.
#include <regex>

#include "api/api_service.h"
#include "core/error.h"

namespace df::api {
namespace {

using nlohmann::json;

json error_envelope_schema() {
  return {{"type", "object"},
          {"required", {"code", "message", "details", "correlation_id"}},
          {"properties",
           {{"code", {{"type", "string"}, {"description", "Stable machine-readable code"}}},
            {"message", {{"type", "string"}}},
            {"details", {{"type", "object"}}},
            {"correlation_id", {{"type", "string"}}}}}};
}

std::string status_description(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 400: return "Malformed request";
    case 403: return "Bad or expired signature";
    case 404: return "Not found";
    case 409: return "Conflict (Idempotency-Key reused with another body)";
    case 413: return "Body too large";
    case 422: return "Validation failed; details.fields names each bad field";
    case 503: return "A backend is unavailable";
    default: return "Response";
  }
}

// "/v1/files/{key...}" is written "/v1/files/{key}" in OpenAPI.
std::string openapi_path(const std::string& pattern) {
  return std::regex_replace(pattern, std::regex(R"(\{([a-z_]+)\.\.\.\})"), "{$1}");
}

json path_parameters(const std::string& pattern) {
  json parameters = json::array();
  std::regex name(R"(\{([a-z_]+)(\.\.\.)?\})");
  for (auto it = std::sregex_iterator(pattern.begin(), pattern.end(), name); it != std::sregex_iterator(); ++it) {
    parameters.push_back({{"name", (*it)[1].str()}, {"in", "path"}, {"required", true},
                          {"schema", {{"type", "string"}}}});
  }
  return parameters;
}

}  // namespace

json openapi_document(const std::vector<RouteDoc>& routes) {
  json paths = json::object();
  for (const auto& route : routes) {
    json operation = {{"operationId", route.operation_id},
                      {"summary", route.summary},
                      {"tags", {route.tag}}};
    json parameters = path_parameters(route.path);
    for (const auto& query : route.query_parameters) parameters.push_back(query);
    parameters.push_back({{"name", "X-Request-ID"}, {"in", "header"}, {"required", false},
                          {"schema", {{"type", "string"}}},
                          {"description", "Correlation id echoed in the response"}});
    if (route.operation_id == "createJob") {
      parameters.push_back({{"name", "Idempotency-Key"}, {"in", "header"}, {"required", false},
                            {"schema", {{"type", "string"}, {"maxLength", 255}}}});
    }
    if (route.operation_id == "streamJobEvents") {
      parameters.push_back({{"name", "Last-Event-ID"}, {"in", "header"}, {"required", false},
                            {"schema", {{"type", "string"}}}});
    }
    operation["parameters"] = parameters;
    if (!route.request_schema.is_null()) {
      operation["requestBody"] = {{"required", true},
                                  {"content", {{"application/json", {{"schema", route.request_schema}}}}}};
    }
    json responses = {{std::to_string(route.success_status),
                       {{"description", status_description(route.success_status)},
                        {"content", {{route.success_content_type, json::object()}}}}}};
    for (int status : route.error_statuses) {
      responses[std::to_string(status)] = {
          {"description", status_description(status)},
          {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
    }
    operation["responses"] = responses;
    std::string method = route.method;
    std::transform(method.begin(), method.end(), method.begin(), ::tolower);
    paths[openapi_path(route.path)][method] = operation;
  }
  return {{"openapi", "3.1.0"},
          {"info", {{"title", "Dream Forge API"}, {"version", "1"},
                    {"description", "Jobs, live progress, artifacts and models of a Dream Forge service."}}},
          {"paths", paths},
          {"components", {{"schemas", {{"Error", error_envelope_schema()}}}}}};
}

}  // namespace df::api
