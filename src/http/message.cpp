// HTTP requests and responses as route handlers see them; error codes mapped to HTTP statuses.
#include "http/message.h"

#include <boost/algorithm/string/predicate.hpp>

#include "http/json_text.h"

namespace df::http {

std::string Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (boost::algorithm::iequals(key, name)) return value;
  }
  return "";
}

nlohmann::json Request::json_body() const { return parse_json_text(body, "request body"); }

Response Response::json(int status, const nlohmann::json& body) {
  Response response;
  response.status = status;
  response.body = body.dump();
  return response;
}

Response Response::text(int status, std::string body, std::string content_type) {
  Response response;
  response.status = status;
  response.content_type = std::move(content_type);
  response.body = std::move(body);
  return response;
}

Response Response::event_stream(std::shared_ptr<StreamSource> source) {
  Response response;
  response.content_type = "text/event-stream";
  response.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
  response.stream = std::move(source);
  return response;
}

Response Response::websocket_upgrade(std::shared_ptr<WebSocketHandler> handler) {
  Response response;
  response.status = 101;
  response.content_type.clear();
  response.websocket = std::move(handler);
  return response;
}

int http_status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnsupported:
    case ErrorCode::kUnsafeFormat:
    case ErrorCode::kCorruptFile:
      return 422;
    case ErrorCode::kNotFound:
    case ErrorCode::kModelNotFound:
      return 404;
    case ErrorCode::kConflict:
    case ErrorCode::kCanceled:
      return 409;
    case ErrorCode::kPayloadTooLarge:
      return 413;
    case ErrorCode::kForbidden:
      return 403;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kBadRequest:
      return 400;
    case ErrorCode::kMethodNotAllowed:
      return 405;
    case ErrorCode::kRequestTimeout:
      return 408;
    default:
      return 500;
  }
}

Response error_response(const Error& error, const std::string& correlation_id) {
  Response response =
      Response::json(http_status_for(error.code()), {{"code", error.code_name()},
                                                     {"message", error.what()},
                                                     {"details", error.details()},
                                                     {"correlation_id", correlation_id}});
  if (error.code() == ErrorCode::kMethodNotAllowed && error.details().contains("allow")) {
    std::string allow;
    for (const auto& method : error.details()["allow"]) {
      allow += (allow.empty() ? "" : ", ") + method.get<std::string>();
    }
    response.headers.emplace_back("Allow", allow);
  }
  return response;
}

}  // namespace df::http
