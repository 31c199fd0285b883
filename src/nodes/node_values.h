// The values that flow along graph links between node implementations (MODEL, CLIP, LATENT, ...).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/checkpoint_bundle.h"
#include "engine/clip_patcher.h"
#include "engine/model_patcher.h"
#include "engine/text_conditioning.h"

namespace df::nodes {

struct ModelValue {  // MODEL: the shared model and this graph's patches
  engine::ModelPatcher model;
};

struct ClipValue {  // CLIP: the shared text encoders and this graph's patches
  engine::ClipPatcher clip;
};

struct VaeValue {  // VAE
  std::shared_ptr<const engine::VaeCodec> vae;
};

struct ConditioningValue {  // CONDITIONING
  engine::ConditioningList entries;
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

}  // namespace df::nodes
