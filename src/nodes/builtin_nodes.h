// Registers the implementations of the built-in node classes.
#pragma once

#include "graph/node_impl.h"
#include "graph/validate.h"
#include "nodes/checkpoint_store.h"
#include "nodes/run_environment.h"

namespace df::nodes {

// Every class of graph::builtin_node_schemas(). The store and environment must outlive the
// registry and the executor using it; the environment may change between runs.
graph::NodeImplRegistry builtin_node_impls(CheckpointStore& store, const RunEnvironment& env);

void register_model_nodes(graph::NodeImplRegistry& registry, CheckpointStore& store,
                          const RunEnvironment& env);
void register_image_nodes(graph::NodeImplRegistry& registry, const CheckpointStore& store,
                          const RunEnvironment& env);

// Checks beyond the schemas (LoadImage's file must exist in the input folder).
graph::ValidationHooks builtin_validation_hooks(const RunEnvironment& env);

// The image files LoadImage offers (sorted, relative to the input folder).
std::vector<std::string> list_input_images(const std::string& input_dir);

}  // namespace df::nodes
