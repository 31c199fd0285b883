// Validating ComfyUI API-format graphs against what the runners offer: the native node schemas
// with the installed models and inputs, and each backend's node definitions and files.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/runner_routing.h"
#include "graph/node_schema.h"
#include "graph/validate.h"
#include "registry/model_registry.h"

namespace df::api {

// What combo inputs may hold here: installed checkpoints, images in the input folder, samplers and
// schedulers.
graph::SchemaContext schema_context(registry::ModelRegistry& models, const std::string& input_dir);

// The backends' current states; an empty function: the service has no backends.
using BackendSnapshot = std::function<std::vector<backends::BackendStatus>()>;
// The backends' states as of their last change, shared rather than copied (api/backend_view);
// an empty function: the service has no backends.
using BackendStates =
    std::function<std::shared_ptr<const std::vector<backends::BackendStatus>>()>;

// What the service's runners offer, for validation, routing and the union /object_info.
class WorkflowRouter {
 public:
  // `native_runners`: whether the service has native runners (true where it cannot tell).
  WorkflowRouter(registry::ModelRegistry& models, std::string input_dir, bool native_runners = true,
                 BackendStates backends = {});

  // Parses and routes a graph the way ComfyUI's POST /prompt validates it. A graph that cannot
  // even be parsed gives a decision without runners whose validation has ComfyUI's
  // "invalid_prompt" error.
  RoutingDecision route(const nlohmann::json& graph,
                        const std::vector<std::string>& partial_targets = {});

  bool native_runners() const { return native_runners_; }
  const graph::NodeSchemaRegistry& native_schemas() const { return native_schemas_; }
  graph::SchemaContext context() const { return schema_context(models_, input_dir_); }
  // The backends' states (never null: empty without backends).
  std::shared_ptr<const std::vector<backends::BackendStatus>> backends() const;

 private:
  registry::ModelRegistry& models_;
  std::string input_dir_;
  bool native_runners_;
  BackendStates backends_;
  graph::NodeSchemaRegistry native_schemas_;
  BackendSchemas backend_schemas_;
};

}  // namespace df::api
