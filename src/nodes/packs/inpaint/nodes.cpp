// InpaintModelConditioning and InstructPixToPixConditioning: the conditioning nodes that give
// inpainting and InstructPix2Pix models their extra inputs.
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/inpaint_ops.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

// The positive and negative inputs with `set` applied to a copy of every entry, then `latent`.
template <class Set>
std::vector<Value> conditioning_pair(const NodeInputs& in, Set set, LatentValue latent) {
  std::vector<Value> outputs;
  for (const char* side : {"positive", "negative"}) {
    ConditioningValue conditioning = in.get<ConditioningValue>(side);
    for (engine::Conditioning& entry : conditioning.entries) set(entry);
    outputs.push_back(Value::of("CONDITIONING", std::move(conditioning)));
  }
  outputs.push_back(Value::of("LATENT", std::move(latent)));
  return outputs;
}

std::vector<Value> inpaint_conditioning(const NodeInputs& in) {
  InpaintConditioning made = inpaint_model_conditioning(
      *in.get<VaeValue>("vae").vae, in.get<ImageValue>("pixels").pixels,
      in.get<MaskValue>("mask").mask, in.get_bool("noise_mask"));
  return conditioning_pair(
      in,
      [&made](engine::Conditioning& entry) {
        entry.concat_latent_image = made.concat_latent_image;
        entry.concat_mask = made.concat_mask;
      },
      std::move(made.latent));
}

std::vector<Value> pix2pix_conditioning(const NodeInputs& in) {
  InstructPix2PixConditioning made = instruct_pix2pix_conditioning(
      *in.get<VaeValue>("vae").vae, in.get<ImageValue>("pixels").pixels);
  return conditioning_pair(
      in,
      [&made](engine::Conditioning& entry) {
        entry.concat_latent_image = made.concat_latent_image;
      },
      std::move(made.latent));
}

}  // namespace

void register_inpaint_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  const RunEnvironment& env = resources.env;
  add_function_node(registry, "InpaintModelConditioning",
                    [&env](const NodeInputs& in, NodeContext& ctx) {
                      report_stage(env, ctx, "encode_image");
                      return inpaint_conditioning(in);
                    });
  add_function_node(registry, "InstructPixToPixConditioning",
                    [&env](const NodeInputs& in, NodeContext& ctx) {
                      report_stage(env, ctx, "encode_image");
                      return pix2pix_conditioning(in);
                    });
}

}  // namespace df::nodes
