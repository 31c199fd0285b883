// The built-in node packs' schemas in registration order, and the sampler and scheduler lists.
#include "nodes/packs/node_packs.h"

namespace df::nodes {

const std::vector<std::string>& supported_samplers() {
  static const std::vector<std::string> samplers = {
      "euler",        "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "dpmpp_sde",
      "dpmpp_2m",     "dpmpp_2m_sde",    "lcm",  "ddim",  "uni_pc",          "uni_pc_bh2"};
  return samplers;
}

const std::vector<std::string>& supported_schedulers() {
  static const std::vector<std::string> schedulers = {
      "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal"};
  return schedulers;
}

graph::NodeSchemaRegistry builtin_node_schemas() {
  graph::NodeSchemaRegistry registry;
  add_sampling_schemas(registry);
  add_loaders_schemas(registry);
  add_conditioning_schemas(registry);
  add_latent_schemas(registry);
  add_image_schemas(registry);
  add_primitives_schemas(registry);
  add_output_schemas(registry);
  add_mask_schemas(registry);
  return registry;
}

}  // namespace df::nodes
