// ComfyUI's error shapes as Dream Forge errors: stable codes and plain-language messages.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace df::backends {

// A prompt that POST /prompt refused (HTTP 400): ComfyUI's `error` ({"type", "message",
// "details", "extra_info"}) and `node_errors` ({node id: {"errors": [...], "class_type",
// "dependent_outputs"}}). kModelNotFound when every node error is a model file the backend does not
// have (value_not_in_list for a model file); else kInvalidArgument ("validation"), which also
// covers invalid_prompt, missing_node_type and prompt_outputs_failed_validation. The message says
// which nodes and why and names `backend_url`; details hold {"error", "node_errors", "backend"}.
Error prompt_refusal(const nlohmann::json& error, const nlohmann::json& node_errors,
                     const std::string& backend_url);

// An execution_error message's data ({"prompt_id", "node_id", "node_type", "exception_type",
// "exception_message", "traceback", ...}): kOutOfMemory for an OutOfMemoryError
// (torch.OutOfMemoryError, torch.cuda.OutOfMemoryError), else kInternal with the exception's message.
// Details hold node_id, node_type, exception_type and exception_message.
Error execution_error(const nlohmann::json& data);

// An execution_interrupted message's data: kCanceled naming the node it stopped at.
Error execution_interrupted(const nlohmann::json& data);

// The backend at `backend_url` cannot be reached or stopped answering: kUnavailable.
Error backend_unavailable(const std::string& backend_url, const std::string& reason);

// The error a finished /history entry reports in status.messages (execution_error or
// execution_interrupted), or nullopt when it reports none.
std::optional<Error> history_error(const nlohmann::json& entry);

}  // namespace df::backends
