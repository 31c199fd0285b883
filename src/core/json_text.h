// JSON text out of Dream Forge that never throws on text which is not valid UTF-8.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace df {

// `value` as JSON text; every invalid UTF-8 sequence in its strings becomes U+FFFD, so text that
// came from a request (a path, a file name, a parse error quoting the bytes) can always be sent.
std::string dump_json(const nlohmann::json& value, int indent = -1);

// `text` with every invalid UTF-8 sequence replaced by U+FFFD.
std::string valid_utf8(std::string_view text);

}  // namespace df
