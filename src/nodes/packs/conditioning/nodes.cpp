// Conditioning nodes: prompts encoded by a CLIP value into CONDITIONING values.
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

}  // namespace

void register_conditioning_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  add_function_node(registry, "CLIPTextEncode", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "encode_prompt");
    const auto& clip = in.get<ClipValue>("clip");
    return std::vector<Value>{
        Value::of("CONDITIONING", ConditioningValue{clip.clip->encode(in.get_string("text"))})};
  });
}

}  // namespace df::nodes
