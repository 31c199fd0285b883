// Parses HTTP bodies as JSON with an error message that says where the text went wrong.
#include "http/json_text.h"

#include <string>

#include "core/error.h"

namespace df::http {

nlohmann::json parse_json_text(std::string_view text, std::string_view what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann prefixes its messages with "[json.exception.parse_error.N] "; users need the rest.
    std::string reason = e.what();
    if (auto bracket = reason.find("] ");
        reason.starts_with("[json.exception.") && bracket != std::string::npos) {
      reason.erase(0, bracket + 2);
    }
    throw Error(ErrorCode::kBadRequest, std::string(what) + " is not valid JSON: " + reason,
                {{"byte", e.byte}});
  }
}

}  // namespace df::http
