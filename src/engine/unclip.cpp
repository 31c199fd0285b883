// unCLIP image conditioning: noise augmentation of CLIP image embeddings and the adm sum rules.
#include "engine/unclip.h"

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "engine/nn_ops.h"
#include "engine/noise.h"

namespace df::engine {
namespace {

std::vector<double> betas_for(const std::string& schedule, int64_t steps) {
  std::vector<double> betas(steps);
  if (schedule == "linear") {
    const double start = std::sqrt(1e-4), end = std::sqrt(2e-2);
    for (int64_t i = 0; i < steps; ++i) {
      const double v = start + (end - start) * double(i) / double(steps - 1);
      betas[i] = v * v;
    }
  } else if (schedule == "squaredcos_cap_v2") {
    auto alpha_bar = [](double t) {
      const double c = std::cos((t + 0.008) / 1.008 * std::numbers::pi / 2);
      return c * c;
    };
    for (int64_t i = 0; i < steps; ++i) {
      const double t1 = double(i) / steps, t2 = double(i + 1) / steps;
      betas[i] = std::min(1.0 - alpha_bar(t2) / alpha_bar(t1), 0.999);
    }
  } else {
    throw Error(ErrorCode::kUnsupported, "noise augmentation schedule '" + schedule + "' is not supported");
  }
  return betas;
}

at::Tensor stats_row(const at::Tensor& stats, int64_t width, double fill, const char* what) {
  if (!stats.defined()) return at::full({1, width}, fill, at::kFloat);
  if (stats.numel() != width) {
    throw Error(ErrorCode::kInvalidArgument, std::string("noise augmentation ") + what + " has " +
                                                 std::to_string(stats.numel()) +
                                                 " values; the embeddings have " +
                                                 std::to_string(width));
  }
  return stats.to(at::kCPU, at::kFloat).reshape({1, width});
}

}  // namespace

EmbeddingNoiseAugmentor::EmbeddingNoiseAugmentor(const std::string& beta_schedule, int64_t width,
                                                 at::Tensor data_mean, at::Tensor data_std)
    : width_(width),
      data_mean_(stats_row(data_mean, width, 0.0, "mean")),
      data_std_(stats_row(data_std, width, 1.0, "deviation")) {
  double product = 1.0;
  for (double beta : betas_for(beta_schedule, kMaxNoiseLevel)) {
    product *= 1.0 - beta;
    alphas_cumprod_.push_back(product);
  }
}

at::Tensor EmbeddingNoiseAugmentor::augment(const at::Tensor& x, int64_t noise_level,
                                            const at::Tensor& noise) const {
  if (noise_level < 0 || noise_level >= kMaxNoiseLevel) {
    throw Error(ErrorCode::kInvalidArgument,
                "noise level " + std::to_string(noise_level) + " is outside [0, 1000)");
  }
  const double alpha = alphas_cumprod_[noise_level];
  // ComfyUI keeps the schedule's square roots as float32 tables.
  const double signal = static_cast<float>(std::sqrt(alpha));
  const double spread = static_cast<float>(std::sqrt(1.0 - alpha));
  const at::Tensor scaled = (x.to(at::kFloat) - data_mean_) / data_std_;
  const at::Tensor noised = (scaled * signal + noise.to(at::kFloat) * spread) * data_std_ + data_mean_;
  const at::Tensor level = at::full({x.size(0)}, double(noise_level), at::kFloat);
  const at::Tensor embedding = nn::timestep_embedding(level, width_, /*flip_sin_to_cos=*/true, 0.0);
  return at::cat({noised, embedding}, 1);
}

int64_t unclip_noise_level(double noise_augmentation) {
  return static_cast<int64_t>(
      std::nearbyint(double(EmbeddingNoiseAugmentor::kMaxNoiseLevel - 1) * noise_augmentation));
}

at::Tensor unclip_adm(const std::vector<UnclipImage>& images,
                      const EmbeddingNoiseAugmentor& augmentor, double merge_augmentation,
                      uint64_t seed) {
  const int64_t width = augmentor.width();
  std::vector<at::Tensor> rows;
  for (const UnclipImage& image : images) {
    const at::Tensor embeds = image.image_embeds.to(at::kCPU, at::kFloat);
    if (embeds.dim() != 2 || embeds.size(1) != width) {
      throw Error(ErrorCode::kInvalidArgument,
                  "unCLIP conditioning needs " + std::to_string(width) +
                      "-wide image embeddings for this model; the CLIP vision output has " +
                      (embeds.dim() == 2 ? std::to_string(embeds.size(1)) : std::string("another shape")),
                  {{"expected_width", std::to_string(width)}});
    }
    for (int64_t r = 0; r < embeds.size(0); ++r) {
      const at::Tensor noise = comfy_initial_noise({1, width}, seed);
      const int64_t level = unclip_noise_level(image.noise_augmentation);
      rows.push_back(augmentor.augment(embeds.narrow(0, r, 1), level, noise) * image.strength);
    }
  }
  if (rows.empty()) throw Error(ErrorCode::kInvalidArgument, "unCLIP conditioning has no image embeddings");
  if (rows.size() == 1) return rows.front();
  const at::Tensor sum = at::stack(rows).sum(0);
  return augmentor.augment(sum.narrow(1, 0, width), unclip_noise_level(merge_augmentation),
                           comfy_initial_noise({1, width}, seed));
}

at::Tensor sdxl_unclip_pooled(const std::vector<UnclipImage>& images, int64_t pooled_width,
                              uint64_t sampler_seed) {
  const EmbeddingNoiseAugmentor augmentor("squaredcos_cap_v2", pooled_width);
  return unclip_adm(images, augmentor, 0.0, sampler_seed - 10).narrow(1, 0, pooled_width);
}

at::Tensor unclip_class_labels(const std::vector<UnclipImage>& images, int64_t adm_width,
                               uint64_t sampler_seed) {
  if (images.empty()) return at::zeros({1, adm_width}, at::kFloat);
  constexpr double kMergeAugmentation = 0.05;
  const EmbeddingNoiseAugmentor augmentor("squaredcos_cap_v2", adm_width / 2);
  return unclip_adm(images, augmentor, kMergeAugmentation, sampler_seed - 10);
}

}  // namespace df::engine
