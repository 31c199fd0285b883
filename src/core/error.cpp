// Error codes and their stable string names.
#include "core/error.h"

#include <array>
#include <utility>

namespace df {
namespace {

constexpr std::array<std::pair<ErrorCode, std::string_view>, 24> kNames{{
    {ErrorCode::kInvalidArgument, "validation"},
    {ErrorCode::kModelNotFound, "model_not_found"},
    {ErrorCode::kUnsafeFormat, "unsafe_format"},
    {ErrorCode::kCorruptFile, "corrupt_file"},
    {ErrorCode::kUnsupported, "unsupported"},
    {ErrorCode::kOutOfMemory, "oom"},
    {ErrorCode::kTimeout, "timeout"},
    {ErrorCode::kCanceled, "canceled"},
    {ErrorCode::kRunnerCrashed, "runner_crashed"},
    {ErrorCode::kProtocol, "protocol"},
    {ErrorCode::kIo, "io_error"},
    {ErrorCode::kInternal, "internal"},
    {ErrorCode::kNotFound, "not_found"},
    {ErrorCode::kConflict, "conflict"},
    {ErrorCode::kPayloadTooLarge, "payload_too_large"},
    {ErrorCode::kForbidden, "forbidden"},
    {ErrorCode::kUnavailable, "unavailable"},
    {ErrorCode::kBadRequest, "bad_request"},
    {ErrorCode::kMethodNotAllowed, "method_not_allowed"},
    {ErrorCode::kRequestTimeout, "request_timeout"},
    {ErrorCode::kUnsupportedMediaType, "unsupported_media_type"},
    {ErrorCode::kInsufficientMemory, "insufficient_memory"},
    {ErrorCode::kUnauthorized, "unauthorized"},
    {ErrorCode::kRateLimited, "rate_limited"},
}};

}  // namespace

std::string_view error_code_name(ErrorCode code) {
  for (const auto& [c, name] : kNames) {
    if (c == code) return name;
  }
  return "internal";
}

ErrorCode error_code_from_name(std::string_view name) {
  for (const auto& [c, n] : kNames) {
    if (n == name) return c;
  }
  return ErrorCode::kInternal;
}

Error::Error(ErrorCode code, std::string message, nlohmann::json details)
    : std::runtime_error(std::move(message)), code_(code), details_(std::move(details)) {}

}  // namespace df
