// Validating ComfyUI API-format graphs.
#include "api/workflow_validation.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "nodes/model_folders.h"
#include "nodes/packs/node_packs.h"
#include "graph/workflow.h"
#include "image/text_encoding.h"

namespace df::api {

namespace fs = std::filesystem;

graph::SchemaContext schema_context(registry::ModelRegistry& models, const std::string& input_dir) {
  graph::SchemaContext context;
  for (const auto& model : models.available()) context.checkpoints.push_back(model.ckpt_name);
  std::error_code ignored;
  for (const auto& entry : fs::recursive_directory_iterator(input_dir, ignored)) {
    std::string name = fs::relative(entry.path(), input_dir).generic_string();
    // A name that is not UTF-8 (copied in by hand) cannot be chosen in JSON: it is left out.
    if (entry.is_regular_file(ignored) && is_valid_utf8(name)) {
      context.input_images.push_back(std::move(name));
    }
  }
  std::sort(context.input_images.begin(), context.input_images.end());
  const std::string models_root = fs::path(models.checkpoints_dir()).parent_path().string();
  for (const auto& kind : nodes::model_folder_kinds()) {
    if (kind.name == "checkpoints") continue;
    context.model_files[kind.name] = nodes::model_combo_names(models_root, kind.name);
  }
  context.samplers = nodes::supported_samplers();
  context.schedulers = nodes::supported_schedulers();
  return context;
}

WorkflowRouter::WorkflowRouter(registry::ModelRegistry& models, std::string input_dir,
                               bool native_runners, BackendStates backends)
    : models_(models),
      input_dir_(std::move(input_dir)),
      native_runners_(native_runners),
      backends_(std::move(backends)),
      native_schemas_(nodes::builtin_node_schemas()) {}

std::shared_ptr<const std::vector<backends::BackendStatus>> WorkflowRouter::backends() const {
  if (backends_) return backends_();
  return std::make_shared<const std::vector<backends::BackendStatus>>();
}

RoutingDecision WorkflowRouter::route(const nlohmann::json& graph,
                                      const std::vector<std::string>& partial_targets) {
  graph::Workflow workflow;
  try {
    workflow = graph::parse_workflow(graph);
  } catch (const Error& e) {
    RoutingDecision refused;
    refused.validation.error = {{"type", "invalid_prompt"},
                                {"message", std::string("Invalid prompt: ") + e.what()},
                                {"details", e.what()},
                                {"extra_info", e.details()}};
    return refused;
  }
  graph::ValidationHooks hooks;
  hooks.by_class_type.emplace("SaveImage", graph::filename_prefix_validator());
  const NativeRunners native{native_runners_, &native_schemas_, context()};
  return route_workflow(workflow, native, *backends(), backend_schemas_, partial_targets, hooks);
}

}  // namespace df::api
