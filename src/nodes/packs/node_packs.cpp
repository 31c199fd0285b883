// The built-in node packs' schemas in registration order, and the sampler and scheduler lists.
#include "nodes/packs/node_packs.h"

namespace df::nodes {

const std::vector<std::string>& supported_samplers() {
  static const std::vector<std::string> samplers = {
      "euler",           "euler_cfg_pp",
      "euler_ancestral", "euler_ancestral_cfg_pp",
      "heun",            "heunpp2",
      "exp_heun_2_x0",   "exp_heun_2_x0_sde",
      "dpm_2",           "dpm_2_ancestral",
      "lms",             "dpm_fast",
      "dpm_adaptive",
      "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp",
      "dpmpp_sde",       "dpmpp_sde_gpu",
      "dpmpp_2m",        "dpmpp_2m_cfg_pp",
      "dpmpp_2m_sde",    "dpmpp_2m_sde_gpu",
      "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu",
      "dpmpp_3m_sde",    "dpmpp_3m_sde_gpu",
      "ddpm",            "lcm",
      "ipndm",           "ipndm_v",
      "deis",
      "res_multistep",   "res_multistep_cfg_pp",
      "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp",
      "gradient_estimation", "gradient_estimation_cfg_pp",
      "ddim",            "uni_pc",
      "uni_pc_bh2"};
  return samplers;
}

const std::vector<std::string>& supported_schedulers() {
  static const std::vector<std::string> schedulers = {
      "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform",
      "beta",   "normal",      "linear_quadratic", "kl_optimal"};
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
  add_model_patches_schemas(registry);
  add_controlnet_schemas(registry);
  add_upscale_models_schemas(registry);
  add_image_prompts_schemas(registry);
  add_inpaint_schemas(registry);
  add_flow_schemas(registry);
  return registry;
}

}  // namespace df::nodes
