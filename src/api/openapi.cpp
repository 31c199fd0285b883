// The OpenAPI 3.1 document, made from the same route table the router is built from.
#include <algorithm>
#include <regex>

#include "api/access_policy.h"
#include "api/api_service.h"
#include "api/job_views.h"

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

// What the HTTP layer may answer on any route, before or around its handler.
const std::vector<ErrorDoc>& errors_of_every_route() {
  static const std::vector<ErrorDoc> errors = {
      {400, "Malformed request: not valid HTTP, or a request target that is not a valid path"},
      {403, "Refused: a cross-site Origin, a Host name this server does not answer to, or a user "
            "key on an admin-only route"},
      {408, "The request did not arrive completely in time"},
      {413, "The request body is larger than the server's limit"},
      {431, "The request headers are larger than the server's limit"},
      {500, "Internal error: the correlation_id finds it in the service's log"}};
  return errors;
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

json response_object(const ResponseDoc& response) {
  json media = response.schema.is_null() ? json::object() : json{{"schema", response.schema}};
  json content = json::object();
  for (const auto& type : response.content_types) content[type] = media;
  json object = {{"description", response.description}, {"content", content}};
  for (const auto& [name, meaning] : response.headers) {
    object["headers"][name] = {{"description", meaning}, {"schema", {{"type", "string"}}}};
  }
  return object;
}

json responses(const RouteDoc& route) {
  json out = json::object();
  for (const auto& response : route.responses) {
    out[std::to_string(response.status)] = response_object(response);
  }
  const json envelope = {
      {"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}};
  for (const auto* errors : {&errors_of_every_route(), &route.errors}) {
    for (const auto& error : *errors) {  // the route's own description wins
      out[std::to_string(error.status)] = {{"description", error.description},
                                           {"content", envelope}};
    }
  }
  return out;
}

json operation(const RouteDoc& route) {
  json parameters = path_parameters(route.path);
  for (const auto& parameter : route.parameters) parameters.push_back(parameter);
  parameters.push_back({{"name", "X-Request-ID"}, {"in", "header"}, {"required", false},
                        {"schema", {{"type", "string"}}},
                        {"description", "Correlation id echoed in the response"}});
  json out = {{"operationId", route.operation_id},
              {"summary", route.summary},
              {"tags", {route.tag}},
              {"parameters", parameters},
              {"responses", responses(route)}};
  if (route_access(route.path) != RouteAccess::kPublic) {
    // Optional ({}) until the first key exists; then the key is required.
    out["security"] = json::array({json::object(), {{"apiKey", json::array()}}});
    out["responses"]["401"] = {
        {"description", "No API key, or one that is unknown or revoked (only once a key exists)"},
        {"headers", {{"WWW-Authenticate", {{"schema", {{"type", "string"}}}}}}},
        {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
  }
  if (!route.request_schema.is_null()) {
    out["requestBody"] = {{"required", true},
                          {"content", {{"application/json", {{"schema", route.request_schema}}}}}};
  }
  return out;
}

}  // namespace

json openapi_document(const std::vector<RouteDoc>& routes) {
  json paths = json::object();
  for (const auto& route : routes) {
    std::string method = route.method;
    std::transform(method.begin(), method.end(), method.begin(), ::tolower);
    paths[openapi_path(route.path)][method] = operation(route);
  }
  return {{"openapi", "3.1.0"},
          {"info",
           {{"title", "Dream Forge API"},
            {"version", "1"},
            {"description",
             "Jobs, live progress, artifacts and models of a Dream Forge service. Every GET "
             "operation also answers HEAD (the same status and headers, no body). A method a path "
             "does not list here (OPTIONS included) answers 405 method_not_allowed with an Allow "
             "header naming the methods it lists. Errors are the Error envelope. Once an API key "
             "exists (dreamforge keys create) every operation with a security requirement needs "
             "'Authorization: Bearer KEY'; a user key sees only its user's jobs, an admin key "
             "everything."}}},
          {"paths", paths},
          {"components",
           {{"schemas", {{"Error", error_envelope_schema()}, {"Job", job_schema()}}},
            {"securitySchemes",
             {{"apiKey",
               {{"type", "http"},
                {"scheme", "bearer"},
                {"description", "An API key from dreamforge keys create"}}}}}}}};
}

}  // namespace df::api
