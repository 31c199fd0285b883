// Parses HTTP bodies as JSON with an error message that says where the text went wrong.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace df::http {

// `text` parsed as JSON; throws Error(kBadRequest, "<what> is not valid JSON: <position and
// reason>").
nlohmann::json parse_json_text(std::string_view text, std::string_view what);

}  // namespace df::http
