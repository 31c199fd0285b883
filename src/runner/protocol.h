// The runner protocol: versioned NDJSON requests (stdin) and events (stdout), shared by both sides.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace df::runner {

inline constexpr int kProtocolVersion = 2;

// Parses one request line into a JSON object with a string "type"; throws Error(kProtocol).
nlohmann::json parse_request_line(const std::string& line);

// Serialises an event as one line (no embedded newlines), terminated by '\n'.
std::string encode_event(const nlohmann::json& event);

}  // namespace df::runner
