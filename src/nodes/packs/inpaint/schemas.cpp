// Inpainting and InstructPix2Pix conditioning node schemas (InpaintModelConditioning,
// InstructPixToPixConditioning).
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

void set_conditioning_pair_outputs(NodeSchema& s) {
  set_named_outputs(s, {"CONDITIONING", "CONDITIONING", "LATENT"},
                    {"positive", "negative", "latent"});
}

NodeSchema inpaint_model_conditioning() {
  NodeSchema s;
  s.name = "InpaintModelConditioning";
  s.display_name = "InpaintModelConditioning";
  s.category = "conditioning/inpaint";
  s.required = {typed("positive", "CONDITIONING"), typed("negative", "CONDITIONING"),
                typed("vae", "VAE"), typed("pixels", "IMAGE"), typed("mask", "MASK"),
                typed("noise_mask", "BOOLEAN",
                      {{"default", true},
                       {"tooltip",
                        "Add a noise mask to the latent so sampling will only happen within the "
                        "mask. Might improve results or completely break things depending on the "
                        "model."}})};
  set_conditioning_pair_outputs(s);
  return s;
}

NodeSchema instruct_pix2pix_conditioning() {
  NodeSchema s;
  s.name = "InstructPixToPixConditioning";
  s.display_name = "InstructPixToPixConditioning";
  s.category = "conditioning/instructpix2pix";
  s.python_module = "comfy_extras.nodes_ip2p";
  s.required = {typed("positive", "CONDITIONING"), typed("negative", "CONDITIONING"),
                typed("vae", "VAE"), typed("pixels", "IMAGE")};
  set_conditioning_pair_outputs(s);
  return s;
}

}  // namespace

void add_inpaint_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(inpaint_model_conditioning());
  registry.add(instruct_pix2pix_conditioning());
}

}  // namespace df::nodes
