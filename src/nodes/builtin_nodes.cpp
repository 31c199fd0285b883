// The registry of all built-in node implementations.
#include "nodes/builtin_nodes.h"

namespace df::nodes {

graph::NodeImplRegistry builtin_node_impls(CheckpointStore& store, const RunEnvironment& env) {
  graph::NodeImplRegistry registry;
  register_model_nodes(registry, store, env);
  register_image_nodes(registry, store, env);
  return registry;
}

}  // namespace df::nodes
