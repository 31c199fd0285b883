// Loader nodes: checkpoints into MODEL, CLIP and VAE values, VAE files, and LoRAs as patches.
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

std::vector<Value> checkpoint_outputs(CheckpointStore& models, const std::string& name) {
  auto bundle = models.get(name);
  return {Value::of("MODEL", ModelValue{engine::ModelPatcher(bundle->model)}),
          Value::of("CLIP", ClipValue{engine::ClipPatcher(bundle->clip)}),
          Value::of("VAE", VaeValue{bundle->vae})};
}

}  // namespace

void register_loaders_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  add_function_node(registry, "CheckpointLoaderSimple", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return checkpoint_outputs(resources.models, in.get_string("ckpt_name"));
  });

  // ComfyUI reads the config file and then detects the model anyway; Dream Forge detects it.
  add_function_node(registry, "CheckpointLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return checkpoint_outputs(resources.models, in.get_string("ckpt_name"));
  });

  add_function_node(registry, "VAELoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return std::vector<Value>{
        Value::of("VAE", VaeValue{resources.models.vae(in.get_string("vae_name"))})};
  });
}

}  // namespace df::nodes
