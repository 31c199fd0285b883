// Parses JSON from clients: errors say where the text went wrong, and nesting and numbers are
// bounded so that no walk over the result can overflow the stack or meet an infinity.
#include "http/json_text.h"

#include <string>

#include "core/error.h"

namespace df::http {
namespace {

// Whether `text` opens more than `limit` arrays and objects inside each other, brackets within
// strings aside. A scan of its own: nlohmann's parser callbacks, which could count instead, make
// parsing quadratic in the number of values.
bool nests_deeper_than(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

nlohmann::json parse_json_text(std::string_view text, std::string_view what) {
  using nlohmann::json;
  const auto refuse = [&](const std::string& reason) {
    return Error(ErrorCode::kBadRequest, std::string(what) + " is not valid JSON: " + reason);
  };
  if (nests_deeper_than(text, kMaxJsonDepth)) {
    throw refuse("it nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) +
                 " levels");
  }
  try {
    return json::parse(text);
  } catch (const json::out_of_range&) {  // 406: a number beyond a double
    throw refuse("it holds a number too large for a 64-bit float (like 1e400)");
  } catch (const json::parse_error& e) {
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

nlohmann::json parse_json_text_or_discarded(std::string_view text) {
  try {
    return parse_json_text(text, "");
  } catch (const Error&) {
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
}

}  // namespace df::http
