// ComfyUI's JSON request bodies, read the way its Python handlers read them.
#include "api/comfy_request_body.h"

#include "core/error.h"
#include "graph/python_values.h"

namespace df::api {

using nlohmann::json;

json comfy_json_object(const http::Request& request, bool may_be_empty) {
  if (may_be_empty && request.body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return json::object();
  }
  json body = request.json_body(http::JsonContentType::kAny);
  if (!body.is_object()) throw Error(ErrorCode::kBadRequest, "the request body must be a JSON object");
  return body;
}

bool body_flag(const json& body, std::string_view key) {
  const auto found = body.find(key);
  return found != body.end() && graph::python_bool(*found);
}

std::string body_string(const json& body, std::string_view key, const std::string& fallback) {
  const auto found = body.find(key);
  return found != body.end() && found->is_string() ? found->get<std::string>() : fallback;
}

std::vector<std::string> body_strings(const json& body, std::string_view key) {
  std::vector<std::string> out;
  const auto found = body.find(key);
  if (found == body.end() || !found->is_array()) return out;
  for (const auto& item : *found) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace df::api
