// Routing at intake: which runners (native, backends) can run a graph, preferred first.
#include "api/runner_routing.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "graph/object_info_schemas.h"

namespace df::api {
namespace {

using nlohmann::json;

struct Candidate {
  std::string id;
  std::shared_ptr<const graph::NodeSchemaRegistry> schemas;
};

// The runners in order of preference: native, backends that are up, then those that are down.
std::vector<Candidate> candidates(const NativeRunners& native,
                                  const std::vector<backends::BackendStatus>& backends,
                                  BackendSchemas& backend_schemas) {
  std::vector<Candidate> found;
  if (native.present && native.schemas != nullptr) {
    found.push_back({kNativeRunnerId, std::shared_ptr<const graph::NodeSchemaRegistry>(
                                          native.schemas, [](const graph::NodeSchemaRegistry*) {})});
  }
  for (const bool up : {true, false}) {
    for (const auto& status : backends) {
      if (!status.discovered || status.up != up) continue;
      try {
        found.push_back({status.spec.runner_id(), backend_schemas.of(status)});
      } catch (const Error&) {
        // An offer whose node definitions cannot be read runs nothing that can be checked.
      }
    }
  }
  return found;
}

// A combo value that names a file: it ends in an extension such as ".safetensors" or ".png".
bool names_a_file(const std::string& value) {
  const size_t dot = value.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == value.size()) return false;
  if (value.find('/', dot) != std::string::npos) return false;
  const std::string extension = value.substr(dot + 1);
  return extension.size() <= 12 && std::all_of(extension.begin(), extension.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) != 0;
         });
}

// A combo value that names a model file: the native schema takes the input's choices from a model
// folder (ckpt_name, lora_name, ...; native.schemas knows the classes even without native
// runners), or the value itself names a file.
bool names_a_model_file(const NativeRunners& native, const graph::Node& node,
                        const std::string& input_name, const std::string& value) {
  const graph::NodeSchema* schema = native.schemas ? native.schemas->find(node.class_type) : nullptr;
  const graph::InputSpec* spec = schema ? schema->find_input(input_name) : nullptr;
  const bool model_folder = spec != nullptr && (spec->choices_from == graph::ComboSource::kCheckpoints ||
                                                spec->choices_from == graph::ComboSource::kModelFolder);
  return model_folder || names_a_file(value);
}

std::vector<std::string> missing_node_types(const graph::Workflow& workflow,
                                            const std::vector<Candidate>& runners) {
  std::set<std::string> missing;
  for (const auto& [id, node] : workflow.nodes) {
    if (node.class_type.empty()) continue;
    const bool offered = std::any_of(runners.begin(), runners.end(), [&](const Candidate& c) {
      return c.schemas->find(node.class_type) != nullptr;
    });
    if (!offered) missing.insert(node.class_type);
  }
  return {missing.begin(), missing.end()};
}

// File names the graph's combo inputs hold that no runner with the node's class offers.
std::vector<std::string> missing_files(const graph::Workflow& workflow,
                                       const std::vector<Candidate>& runners,
                                       const NativeRunners& native) {
  std::set<std::string> missing;
  for (const auto& [id, node] : workflow.nodes) {
    for (const auto& [name, input] : node.inputs) {
      if (input.kind != graph::InputKind::kConstant || !input.value.is_string()) continue;
      const std::string value = input.value.get<std::string>();
      if (!names_a_model_file(native, node, name, value)) continue;
      bool asked = false;
      bool offered = false;
      for (const auto& runner : runners) {
        const graph::NodeSchema* schema = runner.schemas->find(node.class_type);
        const graph::InputSpec* spec = schema ? schema->find_input(name) : nullptr;
        if (spec == nullptr || !spec->is_combo()) continue;
        asked = true;
        const auto choices = spec->choices_from == graph::ComboSource::kFixed
                                 ? spec->choices
                                 : schema->with_context(native.context).find_input(name)->choices;
        offered = offered || std::find(choices.begin(), choices.end(), value) != choices.end();
      }
      if (asked && !offered) missing.insert(value);
    }
  }
  return {missing.begin(), missing.end()};
}

std::string word_list(const std::vector<std::string>& words) {
  std::string text;
  for (const auto& word : words) text += (text.empty() ? "" : ", ") + word;
  return text;
}

}  // namespace

std::shared_ptr<const graph::NodeSchemaRegistry> BackendSchemas::of(
    const backends::BackendStatus& status) {
  {
    std::lock_guard lock(mutex_);
    const auto found = by_backend_.find(status.spec.name);
    if (found != by_backend_.end() && found->second.fingerprint == status.offer.fingerprint) {
      return found->second.schemas;
    }
  }
  auto schemas = std::make_shared<const graph::NodeSchemaRegistry>(
      graph::schemas_from_object_info(status.offer.object_info));
  std::lock_guard lock(mutex_);
  by_backend_[status.spec.name] = {status.offer.fingerprint, schemas};
  return schemas;
}

Error RoutingDecision::error() const {
  const json& error = validation.error;
  std::string message = "invalid workflow: " + (error.is_object() ? error.value("message", "")
                                                                  : std::string("invalid workflow"));
  std::vector<std::string> lacking;
  if (!missing_node_types.empty()) lacking.push_back("node types " + word_list(missing_node_types));
  if (!missing_files.empty()) lacking.push_back("files " + word_list(missing_files));
  if (!lacking.empty()) message += " (no runner offers " + word_list(lacking) + ")";
  return Error(ErrorCode::kInvalidArgument, message,
               {{"error", error},
                {"node_errors", validation.node_errors},
                {"missing_node_types", missing_node_types},
                {"missing_files", missing_files}});
}

RoutingDecision route_workflow(const graph::Workflow& workflow, const NativeRunners& native,
                               const std::vector<backends::BackendStatus>& backends,
                               BackendSchemas& backend_schemas,
                               const std::vector<std::string>& partial_targets,
                               const graph::ValidationHooks& hooks) {
  RoutingDecision decision;
  const std::vector<Candidate> runners = candidates(native, backends, backend_schemas);
  std::vector<graph::ValidationResult> results;
  for (const auto& runner : runners) {
    results.push_back(
        graph::validate_workflow(workflow, *runner.schemas, native.context, partial_targets, hooks));
  }
  // Runners that pass every output first; then those that pass only some (ComfyUI runs those).
  for (const bool whole : {true, false}) {
    for (size_t i = 0; i < runners.size(); ++i) {
      if (!results[i].ok || results[i].node_errors.empty() != whole) continue;
      if (decision.runners.empty()) decision.validation = results[i];
      decision.runners.push_back(runners[i].id);
    }
  }
  if (decision.routed()) return decision;

  decision.missing_node_types = missing_node_types(workflow, runners);
  decision.missing_files = missing_files(workflow, runners, native);
  const auto known = [&runners](std::string_view class_type) {
    return std::any_of(runners.begin(), runners.end(), [&](const Candidate& c) {
      return c.schemas->find(class_type) != nullptr;
    });
  };
  if (json error = graph::missing_node_type_error(workflow, known); !error.is_null()) {
    decision.validation.error = std::move(error);
    return decision;
  }
  if (runners.empty()) {  // nothing to run on: what a server without nodes answers
    decision.validation = graph::validate_workflow(workflow, graph::NodeSchemaRegistry{},
                                                   native.context, partial_targets, hooks);
    return decision;
  }
  // The closest runner: the one lacking the fewest of the graph's node types, earliest first.
  size_t closest = 0;
  size_t fewest = SIZE_MAX;
  for (size_t i = 0; i < runners.size(); ++i) {
    const size_t lacking = missing_node_types(workflow, {runners[i]}).size();
    if (lacking < fewest) {
      fewest = lacking;
      closest = i;
    }
  }
  decision.validation = results[closest];
  return decision;
}

}  // namespace df::api
