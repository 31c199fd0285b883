// Live previews of a sampler's denoised latents: TAESD when installed, else latent2rgb.
#include "nodes/latent_previewer.h"

#include <algorithm>

#include "engine/latent_preview.h"
#include "image/image.h"
#include "nodes/image_tensors.h"
#include "nodes/model_folders.h"

namespace df::nodes {
namespace {

constexpr int kJpegQuality = 90;

std::vector<uint8_t> encode_jpeg(Image8 image) {
  return encode_image(image, ImageFormat::kJpeg, EmbeddedMetadata{}, kJpegQuality);
}

bool installed(const std::string& models_root, const std::string& name) {
  return !find_tiny_autoencoder_file(models_root, name, "encoder").empty() &&
         !find_tiny_autoencoder_file(models_root, name, "decoder").empty();
}

}  // namespace

std::string preview_autoencoder_name(engine::Family family) {
  switch (family) {
    case engine::Family::kSD1:
    case engine::Family::kSD2:
      return "taesd";
    case engine::Family::kSDXL:
    case engine::Family::kSDXLRefiner:
      return "taesdxl";
    default:
      return "";
  }
}

std::pair<int64_t, int64_t> preview_latent_size(int64_t height, int64_t width) {
  const int64_t limit = kMaxPreviewSide / engine::TinyAutoencoder::kDownscale;
  const int64_t longer = std::max(height, width);
  if (longer <= limit) return {height, width};
  const auto scaled = [&](int64_t side) { return std::max<int64_t>(1, side * limit / longer); };
  return {scaled(height), scaled(width)};
}

LatentPreviewer::LatentPreviewer(CheckpointStore& models, engine::Family family) : family_(family) {
  const std::string name = preview_autoencoder_name(family);
  if (name.empty() || !installed(models.models_root(), name)) return;
  taesd_ = models.vae(name);
  latent_scale_ = find_tiny_autoencoder_kind(name)->latent_scale;
}

std::vector<uint8_t> LatentPreviewer::jpeg(const at::Tensor& denoised) const {
  if (!taesd_ || denoised.dim() != 4 || denoised.size(1) != 4) {
    const engine::PreviewPixels pixels = engine::latent_preview(denoised, family_);
    Image8 image;
    image.width = pixels.width;
    image.height = pixels.height;
    image.channels = 3;
    image.pixels = pixels.rgb;
    return encode_jpeg(std::move(image));
  }
  at::Tensor latent = denoised.narrow(0, 0, 1);
  const auto [height, width] = preview_latent_size(latent.size(2), latent.size(3));
  if (height != latent.size(2) || width != latent.size(3)) {
    latent = at::adaptive_avg_pool2d(latent, {height, width});
  }
  // TAESD's decoder reads the sampler's latents as they are; the codec divides its scale back out.
  const at::Tensor pixels = taesd_->decode(latent / latent_scale_);  // [1,H,W,3] in [0,1]
  return encode_jpeg(to_image8(pixels, 0));
}

}  // namespace df::nodes
