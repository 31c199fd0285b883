// Latent nodes: empty latents, and VAE encoding and decoding between images and latents.
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

}  // namespace

void register_latent_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  add_function_node(registry, "EmptyLatentImage", [](const NodeInputs& in, NodeContext&) {
    const int64_t width = in.get_int("width"), height = in.get_int("height");
    const int64_t batch = in.get_int("batch_size");
    at::Tensor zeros = at::zeros({batch, 4, height / 8, width / 8}, at::kFloat);
    return std::vector<Value>{Value::of("LATENT", LatentValue{zeros})};
  });

  add_function_node(registry, "VAEDecode", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "decode");
    const auto& vae = in.get<VaeValue>("vae");
    return std::vector<Value>{
        Value::of("IMAGE", ImageValue{vae.vae->decode(in.get<LatentValue>("samples").samples)})};
  });

  add_function_node(registry, "VAEEncode", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "encode_image");
    const auto& vae = in.get<VaeValue>("vae");
    return std::vector<Value>{
        Value::of("LATENT", LatentValue{vae.vae->encode(in.get<ImageValue>("pixels").pixels)})};
  });
}

}  // namespace df::nodes
