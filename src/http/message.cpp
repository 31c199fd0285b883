// HTTP requests and responses as route handlers see them; error codes mapped to HTTP statuses.
#include "http/message.h"

#include <boost/algorithm/string/predicate.hpp>

#include "core/json_text.h"
#include "http/json_text.h"

namespace df::http {

std::string Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (boost::algorithm::iequals(key, name)) return value;
  }
  return "";
}

namespace {

// "application/json" and the "+json" types ("application/merge-patch+json"), parameters aside.
bool is_json_media_type(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  return boost::algorithm::iequals(type, "application/json") ||
         boost::algorithm::iends_with(type, "+json");
}

}  // namespace

nlohmann::json Request::json_body(JsonContentType rule) const {
  if (rule == JsonContentType::kRequired && !is_json_media_type(header("Content-Type"))) {
    throw Error(ErrorCode::kUnsupportedMediaType,
                "the request body must be JSON sent with \"Content-Type: application/json\"",
                {{"content_type", header("Content-Type")}});
  }
  return parse_json_text(body, "request body");
}

Response Response::json(int status, const nlohmann::json& body) {
  Response response;
  response.status = status;
  response.body = dump_json(body);
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
    case ErrorCode::kUnauthorized:
      return 401;
    case ErrorCode::kForbidden:
      return 403;
    case ErrorCode::kRateLimited:
      return 429;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kBadRequest:
      return 400;
    case ErrorCode::kMethodNotAllowed:
      return 405;
    case ErrorCode::kRequestTimeout:
      return 408;
    case ErrorCode::kUnsupportedMediaType:
      return 415;
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
  if (error.code() == ErrorCode::kUnauthorized) {
    response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"dreamforge\"");
  }
  if (error.code() == ErrorCode::kRateLimited && error.details().contains("retry_after_s")) {
    response.headers.emplace_back("Retry-After",
                                  std::to_string(error.details()["retry_after_s"].get<int64_t>()));
  }
  return response;
}

}  // namespace df::http
