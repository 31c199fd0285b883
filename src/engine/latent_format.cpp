// Latent formats: the VAE latent <-> sampler latent maps.
#include "engine/latent_format.h"

#include <string>

#include "core/error.h"

namespace df::engine {
namespace {

// `values` as a [1, C, 1, 1] tensor like `latent` (a scalar `fallback` when there are none).
at::Tensor channel_view(const std::vector<float>& values, const at::Tensor& latent, double fallback) {
  if (values.empty()) return at::scalar_tensor(fallback, latent.options());
  if (latent.dim() != 4 || latent.size(1) != static_cast<int64_t>(values.size())) {
    throw Error(ErrorCode::kInvalidArgument,
                "the latent format has " + std::to_string(values.size()) +
                    " channels; the latent is not [B, " + std::to_string(values.size()) + ", h, w]");
  }
  return at::tensor(values, at::kFloat).view({1, -1, 1, 1}).to(latent.options());
}

}  // namespace

at::Tensor latent_to_sampler(const LatentFormat& format, const at::Tensor& latent) {
  const LatentChannelStats& stats = format.channel_stats;
  return (latent - format.shift - channel_view(stats.mean, latent, 0.0)) * format.scale /
         channel_view(stats.std, latent, 1.0);
}

at::Tensor latent_from_sampler(const LatentFormat& format, const at::Tensor& latent) {
  const LatentChannelStats& stats = format.channel_stats;
  return latent * channel_view(stats.std, latent, 1.0) / format.scale +
         channel_view(stats.mean, latent, 0.0) + format.shift;
}

at::Tensor fix_empty_latent_channels(const LatentFormat& format, const at::Tensor& latent) {
  if (latent.dim() != 4 || latent.size(1) == format.channels) return latent;
  if (at::count_nonzero(latent).item<int64_t>() != 0) return latent;
  return at::zeros({latent.size(0), format.channels, latent.size(2), latent.size(3)},
                   latent.options());
}

}  // namespace df::engine
