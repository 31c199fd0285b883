// Parses JSON from clients: errors say where the text went wrong, and nesting and numbers are
// bounded so that no walk over the result can overflow the stack or meet an infinity.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace df::http {

// Arrays and objects nested deeper than this are refused (ComfyUI graphs and their UI workflows
// nest about ten levels).
inline constexpr int kMaxJsonDepth = 256;

// `text` parsed as JSON; throws Error(kBadRequest, "<what> is not valid JSON: <position and
// reason>"), also when it nests deeper than kMaxJsonDepth or holds a number beyond the range of
// a double (1e400).
nlohmann::json parse_json_text(std::string_view text, std::string_view what);

// `text` parsed as parse_json_text() does, or a discarded value (is_discarded()) when it refuses
// it: for readers that treat anything else than the expected JSON alike.
nlohmann::json parse_json_text_or_discarded(std::string_view text);

}  // namespace df::http
