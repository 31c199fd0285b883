// Chained steps of a generate job ("chain": {"upscale": {...}}), as the original Dream Forge API
// named them: the request field's schema, its resolution against the installed upscale models,
// and the stages a chained job's progress is weighed by.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/job.h"

namespace df::api {

// The JSON Schema of "chain".
nlohmann::json chain_schema();

// spec["chain"] for a request's `chain` making a `width` x `height` image in `steps` steps: the
// upscale's impl resolved ("auto": gan when an upscale model is installed, else diffusion) and its
// model chosen (the first of `upscale_models` unless named). Throws chain_error() for invalid
// combinations (gan without an upscale model, a model for diffusion, a size over 16384).
nlohmann::json resolved_chain(const nlohmann::json& chain, int width, int height,
                              const std::vector<std::string>& upscale_models);

// An invalid chain: Error(kInvalidArgument) with details.fields and details.chain, which the API
// answers as the original API did, with code "invalid_input".
Error chain_error(const std::string& field, const std::string& message);
bool is_chain_error(const Error& error);

// The stages a job's progress is weighed by: generate, and upscale for a chained job (its share
// by its sampling steps for diffusion, 15 % for an upscale model).
nlohmann::json job_stages(const Job& job);

}  // namespace df::api
