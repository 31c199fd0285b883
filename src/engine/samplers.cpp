// The sampler registry under ComfyUI's names, and the entry point that runs one.
#include "engine/samplers.h"

#include <cmath>
#include <utility>

#include "core/error.h"
#include "engine/sampling/sampler_families.h"

namespace df::engine {
namespace {

using sampling::SamplerFn;
using sampling::SamplerRun;
using sampling::SecondOrder;

// A sampler bound to its extra arguments.
template <typename... Args>
SamplerFn bind(at::Tensor (*fn)(SamplerRun&, at::Tensor, Args...), Args... args) {
  return [fn, args...](SamplerRun& run, at::Tensor x) { return fn(run, std::move(x), args...); };
}

// ComfyUI's KSampler.SAMPLERS order, restricted to the implemented samplers.
const std::vector<std::pair<std::string, SamplerFn>>& samplers() {
  using namespace sampling;
  static const std::vector<std::pair<std::string, SamplerFn>> table = {
      {"euler", sample_euler},
      {"euler_cfg_pp", bind(sample_euler_ancestral_cfg_pp, 0.0)},
      {"euler_ancestral", sample_euler_ancestral},
      {"euler_ancestral_cfg_pp", bind(sample_euler_ancestral_cfg_pp, 1.0)},
      {"heun", sample_heun},
      {"heunpp2", sample_heunpp2},
      {"exp_heun_2_x0", bind(sample_exp_heun_2_x0, 0.0)},
      {"exp_heun_2_x0_sde", bind(sample_exp_heun_2_x0, 1.0)},
      {"dpm_2", sample_dpm_2},
      {"dpm_2_ancestral", sample_dpm_2_ancestral},
      {"lms", sample_lms},
      {"dpm_fast", sample_dpm_fast},
      {"dpm_adaptive", sample_dpm_adaptive},
      {"dpmpp_2s_ancestral", sample_dpmpp_2s_ancestral},
      {"dpmpp_2s_ancestral_cfg_pp", sample_dpmpp_2s_ancestral_cfg_pp},
      {"dpmpp_sde", bind(sample_dpmpp_sde, false)},
      {"dpmpp_sde_gpu", bind(sample_dpmpp_sde, true)},
      {"dpmpp_2m", sample_dpmpp_2m},
      {"dpmpp_2m_cfg_pp", sample_dpmpp_2m_cfg_pp},
      {"dpmpp_2m_sde", bind(sample_dpmpp_2m_sde, false, SecondOrder::kMidpoint)},
      {"dpmpp_2m_sde_gpu", bind(sample_dpmpp_2m_sde, true, SecondOrder::kMidpoint)},
      {"dpmpp_2m_sde_heun", bind(sample_dpmpp_2m_sde, false, SecondOrder::kHeun)},
      {"dpmpp_2m_sde_heun_gpu", bind(sample_dpmpp_2m_sde, true, SecondOrder::kHeun)},
      {"dpmpp_3m_sde", bind(sample_dpmpp_3m_sde, false)},
      {"dpmpp_3m_sde_gpu", bind(sample_dpmpp_3m_sde, true)},
      {"ddpm", sample_ddpm},
      {"lcm", sample_lcm},
      {"ipndm", sample_ipndm},
      {"ipndm_v", sample_ipndm_v},
      {"deis", sample_deis},
      {"res_multistep", bind(sample_res_multistep, 0.0, false)},
      {"res_multistep_cfg_pp", bind(sample_res_multistep, 0.0, true)},
      {"res_multistep_ancestral", bind(sample_res_multistep, 1.0, false)},
      {"res_multistep_ancestral_cfg_pp", bind(sample_res_multistep, 1.0, true)},
      {"gradient_estimation", bind(sample_gradient_estimation, false)},
      {"gradient_estimation_cfg_pp", bind(sample_gradient_estimation, true)},
      {"ddim", sample_euler},
      {"uni_pc", bind(sample_uni_pc, false)},
      {"uni_pc_bh2", bind(sample_uni_pc, true)},
  };
  return table;
}

const SamplerFn& find_sampler(const std::string& name) {
  for (const auto& [known, fn] : samplers()) {
    if (known == name) return fn;
  }
  std::string known;
  for (const auto& each : sampler_names()) known += (known.empty() ? "" : ", ") + each;
  throw Error(ErrorCode::kInvalidArgument, "unknown sampler '" + name + "' (known: " + known + ")");
}

std::vector<double> checked_sigmas(const at::Tensor& sigmas) {
  if (sigmas.dim() != 1) throw Error(ErrorCode::kInvalidArgument, "sigmas must be a 1-D tensor");
  const at::Tensor values = sigmas.to(at::kCPU, at::kDouble).contiguous();
  std::vector<double> out(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
  for (size_t i = 0; i < out.size(); ++i) {
    const bool last = i + 1 == out.size();
    if (!std::isfinite(out[i]) || out[i] < 0.0 || (out[i] == 0.0 && !last)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "sigmas must be finite and positive (only the last may be 0)");
    }
  }
  return out;
}

}  // namespace

const std::vector<std::string>& sampler_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& entry : samplers()) out.push_back(entry.first);
    return out;
  }();
  return names;
}

bool sampler_drops_penultimate_sigma(const std::string& sampler) {
  return sampler == "dpm_2" || sampler == "dpm_2_ancestral" || sampler == "uni_pc" ||
         sampler == "uni_pc_bh2";
}

at::Tensor run_sampler(const std::string& sampler, const Denoiser& denoise, at::Tensor x,
                       const at::Tensor& sigmas, uint64_t noise_seed, const SamplerHooks& hooks) {
  const SamplerFn& fn = find_sampler(sampler);
  std::vector<double> values = checked_sigmas(sigmas);
  if (values.size() < 2) return x;
  SamplerRun run(denoise, std::move(values), noise_seed, hooks);
  return fn(run, std::move(x));
}

}  // namespace df::engine
