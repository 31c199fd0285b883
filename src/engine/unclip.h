// unCLIP image conditioning: ComfyUI's CLIP-embedding noise augmentation and its unclip_adm
// rules, which turn unCLIPConditioning's image embeddings into the UNet's class/pooled input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace df::engine {

// One unCLIPConditioning application: the CLIP vision image embeddings [B, D] with its strength
// and noise augmentation (0..1).
struct UnclipImage {
  at::Tensor image_embeds;
  double strength = 1.0;
  double noise_augmentation = 0.0;
};

// ComfyUI's CLIPEmbeddingNoiseAugmentation: embeddings normalised by data mean/deviation, noised
// to a level of a 1000-step DDPM schedule, un-normalised, and the level's sinusoidal embedding
// ([cos, sin], `width` wide) appended.
class EmbeddingNoiseAugmentor {
 public:
  static constexpr int64_t kMaxNoiseLevel = 1000;

  // beta_schedule "squaredcos_cap_v2" or "linear" (LDM's: squares of a line from sqrt(1e-4) to
  // sqrt(2e-2)); data_mean/data_std [width] or undefined for zeros/ones. Throws
  // Error(kUnsupported) for another schedule, Error(kInvalidArgument) for stats of another width.
  EmbeddingNoiseAugmentor(const std::string& beta_schedule, int64_t width,
                          at::Tensor data_mean = {}, at::Tensor data_std = {});

  int64_t width() const { return width_; }
  // x [N, width] float32 on the CPU, noise like x, level in [0, kMaxNoiseLevel) ->
  // [N, 2*width]: (noised x, level embedding).
  at::Tensor augment(const at::Tensor& x, int64_t noise_level, const at::Tensor& noise) const;

 private:
  int64_t width_;
  std::vector<double> alphas_cumprod_;
  at::Tensor data_mean_, data_std_;  // [1, width]
};

// The noise level ComfyUI uses for a noise augmentation: round((max level - 1) * augmentation).
int64_t unclip_noise_level(double noise_augmentation);

// ComfyUI's unclip_adm: each image embedding row augmented at its entry's noise level with noise
// drawn from a CPU generator seeded with `seed` (ComfyUI passes the sampler's seed - 10) and
// multiplied (with its level embedding) by the entry's strength. One row is returned as it is;
// several are summed and their first `width` values augmented again at `merge_augmentation`'s
// level (ComfyUI draws unseeded noise there; this draws from `seed` so runs repeat). -> [1, 2*width].
// Throws Error(kInvalidArgument) for no rows or embeddings of another width than the augmentor's.
at::Tensor unclip_adm(const std::vector<UnclipImage>& images,
                      const EmbeddingNoiseAugmentor& augmentor, double merge_augmentation,
                      uint64_t seed);

// ComfyUI's SDXL unCLIP ("revision", sdxl_pooled): the images' adm from a squaredcos_cap_v2
// augmentor as wide as the model's pooled text embedding (1280 for SDXL), seeded with the
// sampler's seed - 10 and no merge augmentation, cut to that width: [1, pooled_width].
at::Tensor sdxl_unclip_pooled(const std::vector<UnclipImage>& images, int64_t pooled_width,
                              uint64_t sampler_seed);

// ComfyUI's SD2.1 unCLIP input (SD21UNCLIP.encode_adm): zeros [1, adm_width] without images,
// else the images' adm from a squaredcos_cap_v2 augmentor of adm_width / 2 (768 for ViT-L, 1024
// for ViT-H) seeded with the sampler's seed - 10, several rows merged at augmentation 0.05.
at::Tensor unclip_class_labels(const std::vector<UnclipImage>& images, int64_t adm_width,
                               uint64_t sampler_seed);

}  // namespace df::engine
