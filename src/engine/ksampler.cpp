// KSampler: ComfyUI's sampling entry point on top of the engine's schedules and samplers.
#include "engine/ksampler.h"

#include <cmath>
#include <array>
#include <memory>
#include <numeric>
#include <optional>
#include <vector>

#include "core/error.h"
#include "engine/concat_conditioning.h"
#include "engine/control/control_chain.h"
#include "engine/custom_sampling.h"
#include "engine/guidance/cfg.h"
#include "engine/noise.h"
#include "engine/schedulers.h"

namespace df::engine {
namespace {

// FLUX.1 dev's distilled guidance when no FluxGuidance node set one (ComfyUI's default).
constexpr double kDefaultFluxGuidance = 3.5;

// Repeats a context along the sequence axis to `length` tokens (a multiple of its own length).
at::Tensor repeat_to(const at::Tensor& context, int64_t length) {
  const int64_t times = length / context.size(1);
  return times == 1 ? context : context.repeat({1, times, 1});
}

bool is_sdxl(const DiffusionModel& model) {
  return model.family == Family::kSDXL || model.family == Family::kSDXLRefiner;
}

// SD2.1 unCLIP models take unCLIPConditioning's images as class labels; other models without an
// SDXL pooled input ignore them, as ComfyUI does.
bool takes_class_labels(const DiffusionModel& model) {
  return model.unet && model.unet->config().class_embed_type == "projection";
}

// SDXL's size/crop (or the refiner's aesthetic score) conditioning as ComfyUI computes it: the
// entry's own values when a node set them, else the latent's pixel size.
at::Tensor time_ids(const DiffusionModel& model, const Conditioning& cond, int64_t height,
                    int64_t width, bool negative) {
  std::vector<float> ids;
  const SdxlSizeConditioning size = cond.sdxl_size.value_or(SdxlSizeConditioning{
      double(width), double(height), 0, 0, double(width), double(height)});
  if (model.requires_aesthetics_score) {
    const double aesthetic = cond.aesthetic_score.value_or(negative ? 2.5 : 6.0);
    ids = {float(size.height), float(size.width), float(size.crop_h), float(size.crop_w),
           float(aesthetic)};
  } else {
    ids = {float(size.height),       float(size.width),        float(size.crop_h),
           float(size.crop_w),       float(size.target_height), float(size.target_width)};
  }
  return at::tensor(ids, at::kFloat).unsqueeze(0);
}

// LCM's boundary condition (ComfyUI's LCM model sampling): a blend of the eps estimate and the
// input weighted by the scaled timestep.
at::Tensor lcm_denoised(const DiffusionModel& model, const at::Tensor& x, const at::Tensor& x0,
                        double sigma) {
  constexpr double kSigmaData = 0.5, kTimestepScaling = 10.0;
  const double scaled = model.schedule.timestep_nearest(sigma) * kTimestepScaling;
  const double c_skip = kSigmaData * kSigmaData / (scaled * scaled + kSigmaData * kSigmaData);
  const double c_out = scaled / std::sqrt(scaled * scaled + kSigmaData * kSigmaData);
  return x0 * c_out + x * c_skip;
}

at::Tensor to_denoised(const DiffusionModel& model, const at::Tensor& x, const at::Tensor& out,
                       double sigma) {
  if (model.schedule.lcm_boundary()) return lcm_denoised(model, x, x - out * sigma, sigma);
  const double data = model.schedule.sigma_data(), s2 = sigma * sigma + data * data;
  switch (model.schedule.prediction()) {
    case Prediction::kEpsilon:
      return x - out * sigma;
    case Prediction::kVPrediction:
      return x * (data * data / s2) - out * (sigma * data / std::sqrt(s2));
    case Prediction::kEdm:
      return x * (data * data / s2) + out * (sigma * data / std::sqrt(s2));
    case Prediction::kSample:
      return out;
    case Prediction::kFlow:
      return x - out * sigma;
  }
  return out;
}

// A latent rectangle in cells.
struct Rect {
  int64_t h, w, y, x;
  bool operator==(const Rect&) const = default;
};

// The smallest rectangle holding every cell where any mask of the batch is non-zero, at least 8
// cells each way (ComfyUI's "mask bounds"); 8x8 at the origin for an empty mask.
Rect mask_bounds(const at::Tensor& mask) {
  at::Tensor any = mask.abs().amax(0).gt(0);
  at::Tensor rows = any.any(1).nonzero(), cols = any.any(0).nonzero();
  if (rows.numel() == 0) return {8, 8, 0, 0};
  const int64_t y0 = rows.min().item<int64_t>(), y1 = rows.max().item<int64_t>();
  const int64_t x0 = cols.min().item<int64_t>(), x1 = cols.max().item<int64_t>();
  return {std::max<int64_t>(8, y1 - y0 + 1), std::max<int64_t>(8, x1 - x0 + 1), y0, x0};
}

// One conditioning entry ready for a run: context and SDXL extras placed, its latent rectangle,
// its weight map over that rectangle, its extra UNet inputs cut to that rectangle and its active
// sigma range.
struct PreparedCond {
  int side = 0;  // 0 positive, 1 negative
  at::Tensor context, pooled, ids;
  at::Tensor context_mask;  // the DiT families' [1, L] mask of real tokens (undefined: all real)
  at::Tensor guidance;      // FLUX.1 dev's distilled guidance [1]
  at::Tensor class_labels;  // SD2.1 unCLIP's image input (class_embed_type "projection")
  std::vector<at::Tensor> concat;  // parts of the model's extra input channels (concat_inputs)
  Rect rect{};
  bool full = true;
  at::Tensor mult;  // [1 or N, 1, h, w] float32 on the model's device
  double sigma_start = 0, sigma_end = 0;
  std::shared_ptr<const ControlLink> control;  // the entry's ControlNets (none: null)
};

// ComfyUI's weights of an area without a mask: the strength, faded in over 8 cells at every
// edge that is not an edge of the latent.
at::Tensor feathered_area_weights(const Rect& rect, int64_t height, int64_t width, double strength) {
  at::Tensor mult = at::full({1, 1, rect.h, rect.w}, strength, at::kFloat);
  constexpr int kFeather = 8;
  auto fade = [&](int dim, int64_t offset, int64_t size, int64_t limit) {
    for (int t = 0; t < kFeather && t < size; ++t) {
      const double m = (t + 1.0) / kFeather;
      if (offset != 0) mult.narrow(dim, t, 1).mul_(m);
      if (offset + size < limit) mult.narrow(dim, size - 1 - t, 1).mul_(m);
    }
  };
  fade(2, rect.y, rect.h, height);
  fade(3, rect.x, rect.w, width);
  return mult;
}

// SDXL's pooled input (ComfyUI's sdxl_pooled): unCLIPConditioning's images in place of the
// pooled text embedding when the entry has them ("revision"), else the text's.
at::Tensor sdxl_pooled(const DiffusionModel& model, const Conditioning& cond, uint64_t seed) {
  if (!cond.unclip.empty()) {
    const UNetConfig& unet = model.unet->config();
    const int time_ids = model.family == Family::kSDXLRefiner ? 5 : 6;
    const int64_t width =
        unet.projection_class_embeddings_input_dim - int64_t(unet.addition_time_embed_dim) * time_ids;
    return sdxl_unclip_pooled(cond.unclip, width, seed);
  }
  if (!cond.pooled.defined()) {
    throw Error(ErrorCode::kInvalidArgument,
                "an SDXL model needs conditionings with a pooled text embedding (encoded by an "
                "SDXL CLIP)");
  }
  return cond.pooled;
}

// The model's extra inputs for `cond` over the latent, cut to `rect` like the latent (ComfyUI's
// area crop of c_concat) and placed on the model's device.
std::vector<at::Tensor> prepared_concat(const DiffusionModel& model, const Conditioning& cond,
                                        const ConcatFallback& fallback, const Rect& rect,
                                        int64_t height, int64_t width) {
  std::vector<at::Tensor> parts = concat_inputs(model, cond, fallback, height, width);
  for (at::Tensor& part : parts) {
    part = part.narrow(2, rect.y, rect.h)
               .narrow(3, rect.x, rect.w)
               .to(model.placement.device, model.placement.dtype);
  }
  return parts;
}

std::optional<PreparedCond> prepare_cond(const DiffusionModel& model, const Conditioning& cond,
                                         const ConcatFallback& fallback, int side, int64_t height,
                                         int64_t width, uint64_t seed) {
  PreparedCond p;
  p.side = side;
  Rect rect{height, width, 0, 0};
  at::Tensor mask;
  if (cond.mask.defined()) {
    mask = cond.mask.to(at::kFloat);
    if (mask.dim() == 2) mask = mask.unsqueeze(0);
    if (mask.size(1) != height || mask.size(2) != width) {
      mask = at::upsample_bilinear2d(mask.unsqueeze(1), {height, width}, false).squeeze(1);
    }
  }
  if (cond.area) {
    const ConditioningArea& a = *cond.area;
    rect = a.relative
               ? Rect{std::max<int64_t>(1, std::llround(std::nearbyint(a.height * height))),
                      std::max<int64_t>(1, std::llround(std::nearbyint(a.width * width))),
                      std::llround(std::nearbyint(a.y * height)),
                      std::llround(std::nearbyint(a.x * width))}
               : Rect{int64_t(a.height), int64_t(a.width), int64_t(a.y), int64_t(a.x)};
  } else if (mask.defined() && cond.mask_sets_area) {
    rect = mask_bounds(mask);
  }
  rect.h = std::min(height - rect.y, rect.h);
  rect.w = std::min(width - rect.x, rect.w);
  if (rect.h <= 0 || rect.w <= 0) return std::nullopt;  // the area lies outside the latent
  p.rect = rect;
  p.full = rect == Rect{height, width, 0, 0};
  if (mask.defined()) {
    p.mult = (mask.narrow(1, rect.y, rect.h).narrow(2, rect.x, rect.w) * cond.mask_strength *
              cond.strength)
                 .unsqueeze(1);
  } else if (cond.area) {
    p.mult = feathered_area_weights(rect, height, width, cond.strength);
  } else {
    p.mult = at::full({1, 1, rect.h, rect.w}, cond.strength, at::kFloat);
  }
  const RuntimePlacement& placement = model.placement;
  p.mult = p.mult.to(placement.device);
  p.context = cond.context.to(placement.device, placement.dtype);
  if (model.network) {
    if (cond.pooled.defined()) p.pooled = cond.pooled.to(placement.device, placement.dtype);
    if (cond.context_mask.defined()) p.context_mask = cond.context_mask.to(placement.device);
    p.guidance = at::full({1}, cond.guidance.value_or(kDefaultFluxGuidance), at::kFloat)
                     .to(placement.device);
  } else if (is_sdxl(model)) {
    p.pooled = sdxl_pooled(model, cond, seed).to(placement.device, placement.dtype);
    p.ids = time_ids(model, cond, height * 8, width * 8, side == 1)
                .to(placement.device, placement.dtype);
  }
  if (takes_class_labels(model)) {
    p.class_labels = unclip_class_labels(
        cond.unclip, model.unet->config().projection_class_embeddings_input_dim, seed);
    p.class_labels = p.class_labels.to(placement.device, placement.dtype);
  }
  p.concat = prepared_concat(model, cond, fallback, rect, height, width);
  p.sigma_start = model.schedule.percent_to_sigma(cond.start_percent);
  p.sigma_end = model.schedule.percent_to_sigma(cond.end_percent);
  p.control = cond.control;
  return p;
}

// How many extra input channels a part gives the model.
int64_t concat_channels(const PreparedCond& part) {
  int64_t channels = 0;
  for (const at::Tensor& t : part.concat) channels += t.size(1);
  return channels;
}

// Parts that share one UNet call: the same rectangle, extra inputs of the same shape (their values
// are batched like the contexts), and token lengths that repeat to a common length at most 4x the
// shortest (ComfyUI's rule for concatenating cross-attention contexts).
std::vector<std::vector<const PreparedCond*>> call_groups(const std::vector<const PreparedCond*>& parts) {
  std::vector<std::vector<const PreparedCond*>> groups;
  std::vector<std::pair<int64_t, int64_t>> lengths;  // per group: shortest, common
  for (const PreparedCond* part : parts) {
    const int64_t length = part->context.size(1);
    bool placed = false;
    for (size_t g = 0; g < groups.size() && !placed; ++g) {
      if (!(groups[g].front()->rect == part->rect)) continue;
      if (groups[g].front()->control != part->control) continue;
      if (concat_channels(*groups[g].front()) != concat_channels(*part)) continue;
      const int64_t shortest = std::min(lengths[g].first, length);
      const int64_t common = std::lcm(lengths[g].second, length);
      if (common / shortest > 4) continue;
      groups[g].push_back(part);
      lengths[g] = {shortest, common};
      placed = true;
    }
    if (!placed) {
      groups.push_back({part});
      lengths.emplace_back(length, length);
    }
  }
  return groups;
}

// The extra inputs of a group's parts for `batch` latents each, stacked like their contexts.
at::Tensor group_concat(const std::vector<const PreparedCond*>& group, int64_t batch) {
  std::vector<at::Tensor> rows;
  for (const PreparedCond* part : group) {
    std::vector<at::Tensor> channels;
    for (const at::Tensor& t : part->concat) channels.push_back(resize_to_batch(t, batch));
    rows.push_back(at::cat(channels, 1));
  }
  return at::cat(rows, 0);
}

// The batched contexts of a group's parts for `batch` latents each, repeated to a common length.
at::Tensor group_context(const std::vector<const PreparedCond*>& group, int64_t batch) {
  int64_t length = 1;
  for (const PreparedCond* part : group) length = std::lcm(length, part->context.size(1));
  std::vector<at::Tensor> contexts;
  for (const PreparedCond* part : group) {
    contexts.push_back(repeat_to(part->context, length).repeat_interleave(batch, 0));
  }
  return at::cat(contexts);
}

// One field of a group's parts for `batch` latents each (undefined when the parts have none).
at::Tensor group_field(const std::vector<const PreparedCond*>& group, int64_t batch,
                       at::Tensor PreparedCond::*field) {
  std::vector<at::Tensor> rows;
  for (const PreparedCond* part : group) {
    if (!(part->*field).defined()) return {};
    rows.push_back((part->*field).repeat_interleave(batch, 0));
  }
  return at::cat(rows);
}

// The UNet's output for a group's input `sample` (the latents with any extra channels).
at::Tensor unet_output(const DiffusionModel& model, const std::vector<const PreparedCond*>& group,
                       const at::Tensor& latent_input, const at::Tensor& sample,
                       const at::Tensor& timesteps, int64_t batch, double sigma) {
  const at::Tensor context = group_context(group, batch);
  std::optional<UNetAddedConditioning> added;
  if (is_sdxl(model)) {
    added = UNetAddedConditioning{group_field(group, batch, &PreparedCond::pooled),
                                  group_field(group, batch, &PreparedCond::ids)};
  }
  if (takes_class_labels(model)) {
    added = UNetAddedConditioning{{}, {}, group_field(group, batch, &PreparedCond::class_labels)};
  }
  UNetStep step{sigma};
  if (const auto& control = group.front()->control) {
    // ControlNets see the latent input without the model's extra channels (ComfyUI's x_noisy).
    const auto rows = static_cast<int64_t>(group.size());
    step.control = control_residuals(
        *control, {latent_input, timesteps, context, added, sigma, rows}, model.schedule);
  }
  return model.unet->forward(sample, timesteps, context, added, step);
}

// A DiT family's network output for a group's latents.
at::Tensor network_output(const DiffusionModel& model,
                          const std::vector<const PreparedCond*>& group,
                          const at::Tensor& latent_input, const at::Tensor& timesteps,
                          int64_t batch) {
  if (group.front()->control) {
    throw Error(ErrorCode::kUnsupported,
                "ControlNets work on SD 1.x/2.x/SDXL models; this is a " +
                    family_name(model.family) + " model");
  }
  NetworkInputs inputs;
  inputs.context = group_context(group, batch);
  inputs.context_mask = group_field(group, batch, &PreparedCond::context_mask);
  inputs.pooled = group_field(group, batch, &PreparedCond::pooled);
  inputs.guidance = group_field(group, batch, &PreparedCond::guidance);
  return model.network->forward(latent_input, timesteps, inputs);
}

// How the model's input is scaled at `sigma` (ComfyUI's calculate_input): unscaled for flows.
double input_scale(const NoiseSchedule& schedule, double sigma) {
  if (schedule.flow()) return 1.0;
  const double data = schedule.sigma_data();
  return 1.0 / std::sqrt(sigma * sigma + data * data);
}

// The denoised estimates of every part of one group for the batch `x` (one model call).
std::vector<at::Tensor> denoise_group(const DiffusionModel& model,
                                      const std::vector<const PreparedCond*>& group,
                                      const at::Tensor& x, double sigma, double t) {
  const RuntimePlacement& placement = model.placement;
  const Rect& r = group.front()->rect;
  const int64_t batch = x.size(0), rows = static_cast<int64_t>(group.size());
  at::Tensor x_area = x.narrow(2, r.y, r.h).narrow(3, r.x, r.w);
  at::Tensor x_in = rows == 1 ? x_area : x_area.repeat({rows, 1, 1, 1});
  const at::Tensor latent_input =
      (x_in * input_scale(model.schedule, sigma)).to(placement.device, placement.dtype);
  at::Tensor timesteps = at::full({rows * batch}, t,
                                  at::TensorOptions().dtype(at::kFloat).device(placement.device));
  at::Tensor out;
  if (model.network) {
    out = network_output(model, group, latent_input, timesteps, batch);
  } else {
    at::Tensor sample = latent_input;
    if (!group.front()->concat.empty()) sample = at::cat({sample, group_concat(group, batch)}, 1);
    out = unet_output(model, group, latent_input, sample, timesteps, batch, sigma);
  }
  return to_denoised(model, x_in, out.to(x.device(), at::kFloat), sigma).split(batch);
}

// A part's weights for a batch of `batch` latents.
at::Tensor weights_for_batch(const at::Tensor& mult, int64_t batch) {
  if (mult.size(0) == 1 || mult.size(0) == batch) return mult;
  if (mult.size(0) > batch) return mult.narrow(0, 0, batch);
  return mult.repeat({batch / mult.size(0) + 1, 1, 1, 1}).narrow(0, 0, batch);
}

// Each side's prediction (positive, negative): its active parts' denoised estimates averaged with
// their weights; zeros for a side without parts.
std::array<at::Tensor, 2> side_predictions(const DiffusionModel& model,
                                           const std::vector<const PreparedCond*>& active,
                                           const at::Tensor& x, double sigma, double t) {
  std::array<at::Tensor, 2> sums = {at::zeros_like(x, at::kFloat), at::zeros_like(x, at::kFloat)};
  std::array<at::Tensor, 2> counts = {at::full_like(x, 1e-37, at::kFloat),
                                      at::full_like(x, 1e-37, at::kFloat)};
  for (const auto& group : call_groups(active)) {
    const std::vector<at::Tensor> denoised = denoise_group(model, group, x, sigma, t);
    for (size_t i = 0; i < group.size(); ++i) {
      const PreparedCond& part = *group[i];
      const Rect& r = part.rect;
      const at::Tensor mult = weights_for_batch(part.mult, x.size(0));
      sums[part.side].narrow(2, r.y, r.h).narrow(3, r.x, r.w).add_(denoised[i] * mult);
      counts[part.side].narrow(2, r.y, r.h).narrow(3, r.x, r.w).add_(mult);
    }
  }
  return {sums[0] / counts[0], sums[1] / counts[1]};
}

// The positive prediction again through the UNet with `extra` patches after the model's own.
at::Tensor positive_with_patches(const DiffusionModel& model,
                                 const std::vector<const PreparedCond*>& active,
                                 const at::Tensor& x, double sigma, double t,
                                 const UNetPatches& extra) {
  DiffusionModel patched = model;
  patched.unet = model.require_unet("this CFG patch").with_patches(extra);
  std::vector<const PreparedCond*> positive;
  for (const PreparedCond* part : active) {
    if (part->side == 0) positive.push_back(part);
  }
  return side_predictions(patched, positive, x, sigma, t)[0];
}

}  // namespace

Denoiser make_guided_denoiser(const DiffusionModel& model, const ConditioningList& positive,
                              const ConditioningList& negative, double cfg, int64_t pixel_height,
                              int64_t pixel_width, TimestepMapping mapping,
                              const ConcatFallback& fallback, uint64_t seed) {
  const bool guided = std::abs(cfg - 1.0) > 1e-9;
  const int64_t height = pixel_height / 8, width = pixel_width / 8;
  auto prepared = std::make_shared<std::vector<PreparedCond>>();
  const ConditioningList negative_with_controls = with_controls_for_negative(positive, negative);
  for (int side = 0; side < (guided ? 2 : 1); ++side) {
    for (const Conditioning& cond : side == 0 ? positive : negative_with_controls) {
      if (auto part = prepare_cond(model, cond, fallback, side, height, width, seed)) {
        prepared->push_back(*part);
      }
    }
  }

  return [&model, guided, cfg, prepared, mapping](const at::Tensor& x, double sigma) {
    at::InferenceMode guard;
    const double t = mapping == TimestepMapping::kNearest ? model.schedule.timestep_nearest(sigma)
                                                          : model.schedule.timestep_interpolated(sigma);
    std::vector<const PreparedCond*> active;
    for (const PreparedCond& part : *prepared) {
      if (sigma > part.sigma_start || sigma < part.sigma_end) continue;  // outside its steps
      active.push_back(&part);
    }
    const std::array<at::Tensor, 2> predictions = side_predictions(model, active, x, sigma, t);
    CfgArgs args{predictions[0], guided ? predictions[1] : at::Tensor(), cfg, x, sigma};
    args.cond_with_patches = [&](const UNetPatches& extra) {
      return positive_with_patches(model, active, x, sigma, t, extra);
    };
    return apply_guidance(model, args);
  };
}

at::Tensor ksampler_sigmas(const NoiseSchedule& schedule, const KSamplerParams& params) {
  if (params.steps < 1) throw Error(ErrorCode::kInvalidArgument, "steps must be at least 1");
  if (params.denoise <= 0.0 || params.denoise > 1.0) {
    throw Error(ErrorCode::kInvalidArgument, "denoise must be in (0, 1]");
  }
  const bool advanced = params.start_at_step != 0 || params.end_at_step < params.steps ||
                        params.return_with_leftover_noise;
  if (!advanced) {
    return denoise_sigmas(schedule, params.scheduler, params.sampler, params.steps, params.denoise);
  }
  return advanced_sigmas(schedule, params.scheduler, params.sampler, params.steps,
                         params.start_at_step, params.end_at_step,
                         params.return_with_leftover_noise);
}

at::Tensor ksample(const DiffusionModel& model, const ConditioningList& positive,
                   const ConditioningList& negative, const at::Tensor& latent,
                   const KSamplerParams& params, const SamplerHooks& hooks) {
  at::InferenceMode guard;
  const at::Tensor sigmas = ksampler_sigmas(model.schedule, params);
  if (sigmas.numel() < 2) return latent;
  const at::Tensor noise = params.add_noise
                               ? comfy_initial_noise(latent.sizes().vec(), params.seed, params.batch_index)
                               : at::zeros_like(latent, at::kFloat);
  const Denoiser denoise =
      make_guided_denoiser(model, positive, negative, params.cfg, latent.size(2) * 8,
                           latent.size(3) * 8, TimestepMapping::kNearest,
                           ConcatFallback{latent, params.noise_mask}, params.seed);
  return sample_custom(model, denoise, params.sampler, sigmas, latent, noise, params.seed, hooks,
                       params.noise_mask)
      .samples;
}

}  // namespace df::engine
