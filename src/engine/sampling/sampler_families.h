// The samplers by family; samplers.cpp lists them under ComfyUI's names.
#pragma once

#include "engine/sampling/sampler_run.h"

namespace df::engine::sampling {

// euler_family.cpp: Euler/Heun/DPM-2 and the stochastic single-step samplers.
at::Tensor sample_euler(SamplerRun& run, at::Tensor x);
at::Tensor sample_euler_ancestral(SamplerRun& run, at::Tensor x);
at::Tensor sample_heun(SamplerRun& run, at::Tensor x);
at::Tensor sample_heunpp2(SamplerRun& run, at::Tensor x);
at::Tensor sample_dpm_2(SamplerRun& run, at::Tensor x);
at::Tensor sample_dpm_2_ancestral(SamplerRun& run, at::Tensor x);
at::Tensor sample_lcm(SamplerRun& run, at::Tensor x);
at::Tensor sample_ddpm(SamplerRun& run, at::Tensor x);

// dpm_solver_pp.cpp: DPM-Solver++ and DPM-Solver-fast. The SDE samplers draw from a Brownian
// tree on the CPU, or on x's device when `on_device` (the _gpu names).
at::Tensor sample_dpmpp_2s_ancestral(SamplerRun& run, at::Tensor x);
// ComfyUI's rectified-flow 2S ancestral step (used by both 2S samplers on flow models); with
// cfg_pp it steps along the unconditional estimates and adds the guidance scaled by 1 - sigma.
at::Tensor sample_dpmpp_2s_ancestral_flow(SamplerRun& run, at::Tensor x, bool cfg_pp);
at::Tensor sample_dpmpp_2m(SamplerRun& run, at::Tensor x);
at::Tensor sample_dpmpp_sde(SamplerRun& run, at::Tensor x, bool on_device);
enum class SecondOrder { kMidpoint, kHeun };
at::Tensor sample_dpmpp_2m_sde(SamplerRun& run, at::Tensor x, bool on_device,
                               SecondOrder solver);
at::Tensor sample_dpmpp_3m_sde(SamplerRun& run, at::Tensor x, bool on_device);
at::Tensor sample_dpm_fast(SamplerRun& run, at::Tensor x);
at::Tensor sample_dpm_adaptive(SamplerRun& run, at::Tensor x);
// exp_heun_2_x0 (eta 0) and exp_heun_2_x0_sde (eta 1, default per-step noise).
at::Tensor sample_exp_heun_2_x0(SamplerRun& run, at::Tensor x, double eta);

// multistep.cpp: linear multistep and exponential multistep samplers.
at::Tensor sample_lms(SamplerRun& run, at::Tensor x);
at::Tensor sample_ipndm(SamplerRun& run, at::Tensor x);
at::Tensor sample_ipndm_v(SamplerRun& run, at::Tensor x);
at::Tensor sample_deis(SamplerRun& run, at::Tensor x);
// res_multistep with eta (0: deterministic, 1: ancestral), CFG++ when cfg_pp.
at::Tensor sample_res_multistep(SamplerRun& run, at::Tensor x, double eta, bool cfg_pp);
at::Tensor sample_gradient_estimation(SamplerRun& run, at::Tensor x, bool cfg_pp);

// cfg_pp.cpp: CFG++ samplers, stepping along the unconditional estimate.
at::Tensor sample_euler_ancestral_cfg_pp(SamplerRun& run, at::Tensor x, double eta);
at::Tensor sample_dpmpp_2s_ancestral_cfg_pp(SamplerRun& run, at::Tensor x);
at::Tensor sample_dpmpp_2m_cfg_pp(SamplerRun& run, at::Tensor x);

// unipc.cpp: UniPC (bh1 / bh2).
at::Tensor sample_uni_pc(SamplerRun& run, at::Tensor x, bool bh2);

}  // namespace df::engine::sampling
