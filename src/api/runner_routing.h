// Routing at intake: which runners (native, backends) can run a graph, preferred first.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/backend_catalog.h"
#include "core/error.h"
#include "graph/node_schema.h"
#include "graph/validate.h"
#include "graph/workflow.h"

namespace df::api {

inline constexpr const char* kNativeRunnerId = "native";

// What this service's native runners offer.
struct NativeRunners {
  bool present = false;  // the service has native runners (or cannot tell: `dreamforge api`)
  // The native node classes (also without native runners: they tell which inputs name model files).
  const graph::NodeSchemaRegistry* schemas = nullptr;
  // The native model files, uploaded images, samplers and schedulers; its input images also fill
  // the backends' image upload inputs (what the runners upload to a backend comes from here).
  graph::SchemaContext context;
};

// The node schemas of each backend's offer, read once per offer (by its fingerprint).
class BackendSchemas {
 public:
  // The schemas of `status`'s offer; Error(kInvalidArgument) when its object_info is malformed.
  std::shared_ptr<const graph::NodeSchemaRegistry> of(const backends::BackendStatus& status);

 private:
  struct Entry {
    std::string fingerprint;
    std::shared_ptr<const graph::NodeSchemaRegistry> schemas;
  };
  std::mutex mutex_;
  std::map<std::string, Entry> by_backend_;
};

struct RoutingDecision {
  // The runner ids that can run the graph ("native", "backend:<name>"), preferred first: the
  // native runner, then backends that are up, then those that are down (their jobs wait for
  // them); runners that pass only some of the outputs come after those that pass all. Empty: no
  // runner can.
  std::vector<std::string> runners;
  // The first candidate's validation; without a candidate, the closest runner's (the native one
  // when it has every node type), or the missing_node_type error when no runner has a node type.
  graph::ValidationResult validation;
  std::vector<std::string> missing_node_types;  // node types no runner has, sorted
  std::vector<std::string> missing_files;       // model files (combo values) no runner has, sorted

  bool routed() const { return !runners.empty(); }
  // The Error(kInvalidArgument) of a graph no runner can run: details {error, node_errors,
  // missing_node_types, missing_files}.
  Error error() const;
};

// Validates `workflow` against every runner: native first when present, then each discovered
// backend (schemas from its object_info, image uploads from native.context; one whose
// object_info cannot be read is left out), up ones first in configuration order. The hooks apply
// to every runner.
RoutingDecision route_workflow(const graph::Workflow& workflow, const NativeRunners& native,
                               const std::vector<backends::BackendStatus>& backends,
                               BackendSchemas& backend_schemas,
                               const std::vector<std::string>& partial_targets = {},
                               const graph::ValidationHooks& hooks = {});

}  // namespace df::api
