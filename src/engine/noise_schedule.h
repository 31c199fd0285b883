// The model's sampling (ComfyUI's model_sampling): its training noise schedule in k-diffusion sigma
// form, the timestep <-> sigma maps and the prediction type; discrete (SD), continuous EDM and the
// flow-matching schedules of FLUX, SD3 and Z-Image.
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "engine/model_config.h"

namespace df::engine {

// sigma_t = sqrt((1 - alphas_cumprod[t]) / alphas_cumprod[t]) for the training timesteps t.
// Betas and their cumulative product are computed in float64 and stored as float32, as ComfyUI
// does; the timestep <-> sigma maps reproduce ComfyUI's float32 arithmetic.
class NoiseSchedule {
 public:
  // Throws Error(kUnsupported) for beta schedules other than "scaled_linear" and "linear".
  explicit NoiseSchedule(const NoiseScheduleConfig& config);

  const at::Tensor& sigmas() const { return sigmas_; }  // [T] float32, ascending
  double sigma_min() const;                              // sigmas[0]
  double sigma_max() const;                              // sigmas[T-1]
  int64_t size() const { return sigmas_.size(0); }

  // ComfyUI's model timestep: index of the nearest log sigma (the first one on a tie).
  double timestep_nearest(double sigma) const;
  // diffusers' fractional timestep (_sigma_to_t): log-sigma interpolation between the bracketing
  // entries of diffusers' own table, whose schedule is computed in float32.
  double timestep_interpolated(double sigma) const;
  // ComfyUI's sigma of a (fractional) timestep: log-linear interpolation, t clamped to [0, T-1].
  double sigma_at(double t) const;
  // ComfyUI's percent_to_sigma: the sigma at which a step range starting or ending at `percent`
  // of the sampling begins (past 0 a huge sigma, from 1 zero).
  double percent_to_sigma(double percent) const;
  // The data standard deviation the model's inputs and outputs are scaled for (1 unless EDM).
  double sigma_data() const { return sigma_data_; }
  // True for ModelSamplingContinuousEDM's schedule; timestep_nearest and timestep_interpolated
  // are then both 0.25 * log(sigma), and sigma_at(t) = exp(t / 0.25).
  bool continuous() const { return map_ == TimestepMap::kEdm; }
  // True for the flow-matching schedules (Prediction::kFlow): x = (1 - sigma) * x0 + sigma * noise,
  // the model sees its input unscaled and timestep sigma * multiplier.
  bool flow() const { return map_ == TimestepMap::kFlowShift || map_ == TimestepMap::kFluxShift; }

  Prediction prediction() const { return prediction_; }
  // LCM's boundary condition on the denoised estimate (ModelSamplingDiscrete "lcm").
  bool lcm_boundary() const { return lcm_boundary_; }
  // The timestep the model was trained with for table entry `index` (index, unless distilled).
  double training_timestep(size_t index) const;

  // ModelSamplingDiscrete's variants: another prediction type; LCM's schedule (the table cut to
  // every 20th sigma ending at the top, timesteps mapped back to the 1000-step range, LCM's
  // boundary condition); the table rescaled to zero terminal SNR (zsnr).
  NoiseSchedule with_prediction(Prediction prediction) const;
  NoiseSchedule with_lcm_distillation() const;
  NoiseSchedule with_zero_terminal_snr() const;
  // ModelSamplingContinuousEDM: 1000 float32 sigmas log-spaced from sigma_min to sigma_max, the
  // continuous timestep map, `prediction` and sigma_data. Throws Error(kInvalidArgument) unless
  // 0 < sigma_min < sigma_max and sigma_data > 0.
  NoiseSchedule with_continuous_edm(double sigma_min, double sigma_max, double sigma_data,
                                    Prediction prediction) const;

  // ModelSamplingDiscreteFlow (SD3, AuraFlow, Z-Image, FLUX schnell): 1000 sigmas
  // shift·t / (1 + (shift - 1)·t) for t = 1/1000 .. 1, timestep = sigma * multiplier.
  // Throws Error(kInvalidArgument) unless shift >= 0 and multiplier > 0.
  static NoiseSchedule discrete_flow(double shift, double multiplier);
  // ModelSamplingFlux (FLUX dev): 10000 sigmas e^shift / (e^shift + 1/t - 1), timestep = sigma.
  static NoiseSchedule flux_flow(double shift);

 private:
  // How timesteps and sigmas map onto each other.
  enum class TimestepMap { kTable, kEdm, kFlowShift, kFluxShift };
  NoiseSchedule() = default;
  void set_sigmas(const at::Tensor& sigmas);  // float32 sigmas and their float32 logs
  double flow_sigma(double t) const;           // the flow schedules' sigma of t in [0, 1]

  at::Tensor sigmas_;
  std::vector<float> log_sigmas_;             // ComfyUI's table: float32 logs of float64 sigmas
  std::vector<double> diffusers_log_sigmas_;  // diffusers' table: logs of its float32 schedule
  Prediction prediction_ = Prediction::kEpsilon;
  int64_t skip_steps_ = 1;  // LCM: the stride of the distilled table in training timesteps
  bool lcm_boundary_ = false;
  TimestepMap map_ = TimestepMap::kTable;
  double sigma_data_ = 1.0;
  double shift_ = 1.0;       // the flow schedules' shift
  double multiplier_ = 1.0;  // the flow schedules' timestep per sigma
};

}  // namespace df::engine
