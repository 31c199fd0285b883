// Loader nodes: checkpoints into MODEL, CLIP and VAE values.
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

}  // namespace

void register_loaders_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  add_function_node(registry, "CheckpointLoaderSimple", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    auto bundle = resources.models.get(in.get_string("ckpt_name"));
    return std::vector<Value>{Value::of("MODEL", ModelValue{bundle->model}),
                              Value::of("CLIP", ClipValue{bundle->clip}),
                              Value::of("VAE", VaeValue{bundle->vae})};
  });
}

}  // namespace df::nodes
