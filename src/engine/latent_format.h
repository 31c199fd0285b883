// A family's latent format (ComfyUI's latent_formats): channels and the affine map between the
// VAE's latents and the sampler's.
#pragma once

#include <vector>

#include <ATen/ATen.h>

namespace df::engine {

// Per-channel statistics a latent format normalises VAE latents with (Playground v2.5's); empty:
// zero mean and unit deviation.
struct LatentChannelStats {
  std::vector<float> mean;
  std::vector<float> std;
};

struct LatentFormat {
  int channels = 4;
  double scale = 0.18215;  // the VAE's scaling factor
  double shift = 0.0;      // the VAE's shift factor (FLUX, SD3)
  LatentChannelStats channel_stats = {};
};

// ComfyUI's process_latent_in / process_latent_out: a VAE latent enters sampling as
// (latent - shift - mean) * scale / std per channel and leaves the reverse way. Throws
// Error(kInvalidArgument) when per-channel statistics do not fit the latent's channels.
at::Tensor latent_to_sampler(const LatentFormat& format, const at::Tensor& latent);
at::Tensor latent_from_sampler(const LatentFormat& format, const at::Tensor& latent);

// ComfyUI's fix_empty_latent_channels: an all-zero latent [B, C, h, w] whose channel count is not
// the format's becomes zeros with the format's channels (an EmptyLatentImage fed to a 16-channel
// model); any other latent is returned as it is.
at::Tensor fix_empty_latent_channels(const LatentFormat& format, const at::Tensor& latent);

}  // namespace df::engine
