// ComfyUI's JSON request bodies, read the way its Python handlers read them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/message.h"

namespace df::api {

// The body as a JSON object ({} when it is empty and `may_be_empty`), whatever its Content-Type
// (see JsonContentType::kAny). Throws Error(kBadRequest) when it is not a JSON object.
nlohmann::json comfy_json_object(const http::Request& request, bool may_be_empty = false);

// Python's truthiness of body[key] ("front": "yes" is true, as in ComfyUI); false when absent.
bool body_flag(const nlohmann::json& body, std::string_view key);

// body[key] when it is a string, else `fallback`.
std::string body_string(const nlohmann::json& body, std::string_view key,
                        const std::string& fallback = "");

// The strings of body[key] when it is an array (other items skipped), else none.
std::vector<std::string> body_strings(const nlohmann::json& body, std::string_view key);

}  // namespace df::api
