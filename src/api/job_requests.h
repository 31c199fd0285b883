// POST /v1/jobs bodies: validated against the job envelope and the model's parameters schema.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "registry/model_registry.h"

namespace df::api {

struct JobRequestSettings {
  std::string default_model;  // used when a generate job names no model ("" = the only one installed)
  int default_max_attempts = 3;
  std::string input_dir;      // where init images are written (the runner's LoadImage folder)
};

struct NewJob {
  Job job;                            // id, type, spec (defaults applied), hash, priority, attempts
  std::vector<uint8_t> init_image;    // decoded init image bytes (empty when none)
  std::string init_image_name;        // file name in the input folder
};

// Validates the request body; throws Error(kInvalidArgument) whose details.fields lists every bad
// field ({field, message}), Error(kModelNotFound) for an unknown model, and for workflows an
// Error(kInvalidArgument) carrying ComfyUI's {error, node_errors} in details.
NewJob parse_job_request(const nlohmann::json& body, registry::ModelRegistry& models,
                         const JobRequestSettings& settings);

// Writes a new job's init image into the input folder (before the job is stored).
void save_init_image(const NewJob& job, const std::string& input_dir);

// The JSON Schema of the job envelope (type, model_id, workflow, priority, max_attempts, ...);
// the OpenAPI document shows it.
nlohmann::json job_request_schema();

}  // namespace df::api
