// POST /v1/jobs bodies: validated against the job envelope and the model's parameters schema.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/workflow_validation.h"
#include "core/job.h"
#include "registry/device_profile.h"
#include "registry/model_registry.h"
#include "registry/routing_table.h"

namespace df::api {

struct JobRequestSettings {
  std::string default_model;  // used when a generate job names no model ("" = the only one installed)
  int default_max_attempts = 3;
  std::string input_dir;      // where init images are written (the runner's LoadImage folder)
  // Picks models for {"function", "quality"} jobs and holds the presets jobs may name; null: the
  // server offers neither.
  const registry::RoutingTable* routing = nullptr;
  registry::DeviceProfile device;  // what routed jobs must fit in (memory, preset class)
  // Validates workflows and picks the runners that can run them; null: the native runners'
  // compiled-in nodes with the installed models and `input_dir`.
  WorkflowRouter* workflows = nullptr;
};

struct NewJob {
  Job job;                            // id, type, spec (defaults applied), hash, priority, attempts
  std::vector<uint8_t> init_image;    // decoded init image bytes (empty when none)
  std::string init_image_name;        // file name in the input folder
};

// Validates the request body; throws Error(kInvalidArgument) whose details.fields lists every bad
// field ({field, message}), Error(kModelNotFound) for an unknown model (or, for a routed job, when
// no model of the chain can run: details.skipped says why for each), and for workflows an
// Error(kInvalidArgument) carrying ComfyUI's {error, node_errors} and what no runner offers
// {missing_node_types, missing_files} in details; a valid workflow's spec.runners lists the
// runners that can run it, preferred first. A generate job names
// its model (model_id, else the default, else the only one) or asks for a function and quality
// tier, which the routing table turns into a model and preset; the decision is kept in
// spec.routing. A named preset's values are defaults: job fields win over it, and it wins over
// the routed preset.
NewJob parse_job_request(const nlohmann::json& body, registry::ModelRegistry& models,
                         const JobRequestSettings& settings);

// Writes a new job's init image into the input folder (before the job is stored).
void save_init_image(const NewJob& job, const std::string& input_dir);

// The JSON Schema of the job envelope (type, model_id, workflow, priority, max_attempts, ...) and
// of the fields this parser checks itself (init_image; preset, function and quality as
// `settings` offers them); the OpenAPI document shows it.
nlohmann::json job_request_schema(const JobRequestSettings& settings);

}  // namespace df::api
