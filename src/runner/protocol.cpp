// Runner protocol framing: request parsing with clear errors, event encoding.
#include "runner/protocol.h"

#include "core/error.h"

namespace df::runner {

nlohmann::json parse_request_line(const std::string& line) {
  nlohmann::json request;
  try {
    request = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(ErrorCode::kProtocol, std::string("request is not valid JSON: ") + e.what());
  }
  if (!request.is_object()) throw Error(ErrorCode::kProtocol, "request must be a JSON object");
  if (!request.contains("type") || !request["type"].is_string()) {
    throw Error(ErrorCode::kProtocol, "request needs a string field 'type'");
  }
  return request;
}

std::string encode_event(const nlohmann::json& event) {
  return event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace df::runner
