// The values that flow along graph links between node implementations (MODEL, CLIP, LATENT, ...).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/checkpoint_bundle.h"
#include "engine/clip_patcher.h"
#include "engine/concat_conditioning.h"
#include "engine/control/control_model.h"
#include "engine/model_patcher.h"
#include "engine/samplers.h"
#include "engine/text/prompt_encoder.h"
#include "engine/text_conditioning.h"

namespace df::nodes {

struct ModelValue {  // MODEL: the shared model and this graph's patches
  engine::ModelPatcher model;
};

// CLIP: an SD family's shared text encoders and this graph's patches, or a DiT family's text side.
struct ClipValue {
  std::optional<engine::ClipPatcher> clip;
  std::shared_ptr<const engine::PromptEncoder> encoder;

  explicit ClipValue(engine::ClipPatcher patcher) : clip(std::move(patcher)) {}
  explicit ClipValue(std::shared_ptr<const engine::PromptEncoder> dit) : encoder(std::move(dit)) {}
  // The SD text encoders; Error(kUnsupported) naming `what` (the node) for a DiT family's CLIP.
  const engine::ClipPatcher& sd(const std::string& what) const;
  // CLIPTextEncode's conditioning of `prompt`.
  engine::Conditioning encode(const std::string& prompt) const;
};

struct VaeValue {  // VAE
  std::shared_ptr<const engine::VaeCodec> vae;
};

struct ConditioningValue {  // CONDITIONING
  engine::ConditioningList entries;
};

struct ControlNetValue {  // CONTROL_NET: a loaded ControlNet or T2I adapter, shared by every job
  std::shared_ptr<const engine::ControlModel> net;
};

struct LatentValue {  // LATENT: unscaled latents [B,4,h,w], float32 on the CPU
  at::Tensor samples;
  // ComfyUI's optional LATENT entries: the inpainting mask ([B or 1, 1, H, W] in pixels or
  // latent size; undefined when none) and which seeded noise each latent of the batch takes
  // (LatentFromBatch, RepeatLatentBatch; empty means 0..B-1).
  at::Tensor noise_mask = {};
  std::vector<int> batch_index = {};
};

struct ImageValue {  // IMAGE: [B,H,W,3] float32 in [0,1] on the CPU
  at::Tensor pixels;
};

struct MaskValue {  // MASK: [B,H,W] float32 in [0,1]
  at::Tensor mask;
};

struct SamplerValue {  // SAMPLER: one of engine::sampler_names()
  std::string name;
};

struct SigmasValue {  // SIGMAS: the noise levels a sampler walks, 1-D float32 on the CPU
  at::Tensor sigmas;
};

struct NoiseValue {  // NOISE: ComfyUI's seeded initial noise (RandomNoise) or none (DisableNoise)
  bool random = false;
  uint64_t seed = 0;  // also seeds the sampler's per-step noise
};

struct GuiderValue {  // GUIDER: a model with its conditionings and how they guide it
  engine::ModelPatcher model;
  // The denoiser over `patched` (the model's patched form) for latents of this pixel size;
  // `latent` is the sampled latent with its noise mask (what inpainting models fall back to),
  // `seed` the noise seed (what unCLIP's image noise augmentation draws from, as in ComfyUI).
  std::function<engine::Denoiser(const engine::DiffusionModel& patched, int64_t pixel_height,
                                 int64_t pixel_width, const engine::ConcatFallback& latent,
                                 uint64_t seed)>
      denoiser;
};

}  // namespace df::nodes
