// The one error type of Dream Forge: a stable machine-readable code plus a human message.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace df {

// Stable error codes. Their string forms are part of the public contracts (runner protocol,
// HTTP envelope, CLI exit); never rename one, only add.
enum class ErrorCode {
  kInvalidArgument,  // "validation": bad user input (parameters, graph, request)
  kModelNotFound,    // "model_not_found"
  kUnsafeFormat,     // "unsafe_format": pickle checkpoints and other executable formats
  kCorruptFile,      // "corrupt_file": truncated or lying files (safetensors, images, configs)
  kUnsupported,      // "unsupported": well-formed input the engine cannot run (yet)
  kOutOfMemory,      // "oom"
  kTimeout,          // "timeout"
  kCanceled,         // "canceled"
  kRunnerCrashed,    // "runner_crashed"
  kProtocol,         // "protocol": malformed runner-protocol message
  kIo,               // "io_error": filesystem failures
  kInternal,         // "internal"
  kNotFound,         // "not_found": no such job, model, artifact or route
  kConflict,         // "conflict": e.g. an Idempotency-Key reused with another body
  kPayloadTooLarge,  // "payload_too_large": body or headers over the limit
  kForbidden,        // "forbidden": a bad or expired signature
  kUnavailable,      // "unavailable": a backend (database, storage, runner) is down
  kBadRequest,       // "bad_request": malformed HTTP or JSON syntax
  kMethodNotAllowed, // "method_not_allowed"
  kRequestTimeout,   // "request_timeout": a client too slow to send its request
  kUnsupportedMediaType,  // "unsupported_media_type": a body in a format the route does not take
  kInsufficientMemory,    // "insufficient_memory": a job's preset needs more memory than its device can give
  kUnauthorized,     // "unauthorized": no API key, or one that is unknown or revoked
  kRateLimited,      // "rate_limited": an API key over its limits
};

std::string_view error_code_name(ErrorCode code);
ErrorCode error_code_from_name(std::string_view name);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message, nlohmann::json details = nlohmann::json::object());

  ErrorCode code() const { return code_; }
  std::string_view code_name() const { return error_code_name(code_); }
  const nlohmann::json& details() const { return details_; }

 private:
  ErrorCode code_;
  nlohmann::json details_;
};

}  // namespace df
