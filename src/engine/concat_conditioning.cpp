// Builds the mask / masked-image (inpainting) and image (InstructPix2Pix) UNet inputs.
#include "engine/concat_conditioning.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "engine/inpaint_mask.h"
#include "engine/unet_inputs.h"

namespace df::engine {
namespace {

// ComfyUI's common_upscale with "bilinear" and crop "center": the middle part of the aspect of
// height x width, resized.
at::Tensor resized_center(const at::Tensor& nchw, int64_t height, int64_t width) {
  if (nchw.size(2) == height && nchw.size(3) == width) return nchw;
  const double old_h = double(nchw.size(2)), old_w = double(nchw.size(3));
  const double old_aspect = old_w / old_h, new_aspect = double(width) / double(height);
  int64_t x = 0, y = 0;
  if (old_aspect > new_aspect) {
    x = std::llround(std::nearbyint((old_w - old_w * (new_aspect / old_aspect)) / 2));
  } else if (old_aspect < new_aspect) {
    y = std::llround(std::nearbyint((old_h - old_h * (old_aspect / new_aspect)) / 2));
  }
  const at::Tensor cropped =
      nchw.narrow(2, y, nchw.size(2) - 2 * y).narrow(3, x, nchw.size(3) - 2 * x);
  return at::upsample_bilinear2d(cropped, {height, width}, false);
}

at::Tensor image_input(const at::Tensor& latent, const DiffusionModel& model, int64_t height,
                       int64_t width) {
  const int64_t channels = model.unet->config().out_channels;
  if (latent.dim() != 4 || latent.size(1) != channels) {
    throw Error(ErrorCode::kInvalidArgument,
                "the model's concat image must be a latent [B, " + std::to_string(channels) +
                    ", h, w]");
  }
  return resized_center(latent.to(at::kFloat), height, width);
}

// The latent of a black image (ComfyUI's blank_inpaint_image_like for 4-channel latents).
at::Tensor blank_inpaint_latent(int64_t channels, int64_t height, int64_t width) {
  const std::vector<float> black = {0.8223f, -0.6876f, 0.6364f, 0.1380f};
  at::Tensor values = at::ones({channels}, at::kFloat);
  for (int64_t c = 0; c < channels && c < int64_t(black.size()); ++c) values[c] = black[c];
  return values.view({1, channels, 1, 1}).expand({1, channels, height, width}).contiguous();
}

// A concat mask [N,H,W] or [N,1,H,W] as one channel at the latent's size, rounded.
at::Tensor mask_input(const at::Tensor& mask, int64_t height, int64_t width) {
  if (mask.dim() < 2 || mask.dim() > 4) {
    throw Error(ErrorCode::kInvalidArgument, "a concat mask must be [H,W], [N,H,W] or [N,1,H,W]");
  }
  at::Tensor m = mask.to(at::kFloat);
  if (m.dim() == 4) m = m.narrow(1, 0, 1);
  m = m.reshape({-1, 1, m.size(-2), m.size(-1)});
  return resized_center(m, height, width).round();
}

// The sampled latent as ComfyUI hands it to the model's conditions: shifted into the sampler's
// space unless it is all zeros.
at::Tensor fallback_latent(const DiffusionModel& model, const at::Tensor& latent) {
  const at::Tensor values = latent.to(at::kFloat);
  return at::count_nonzero(values).item<int64_t>() > 0 ? latent_to_sampler(model, values) : values;
}

std::vector<at::Tensor> inpaint_inputs(const DiffusionModel& model, const Conditioning& cond,
                                       const ConcatFallback& fallback, int64_t height,
                                       int64_t width) {
  const int64_t channels = model.unet->config().out_channels;
  at::Tensor mask = cond.concat_mask;
  if (!mask.defined() && fallback.noise_mask.defined() && fallback.latent.defined()) {
    mask = prepare_noise_mask(fallback.noise_mask, fallback.latent.sizes()).narrow(1, 0, 1);
  }
  if (!mask.defined()) {
    return {at::ones({1, 1, height, width}, at::kFloat),
            blank_inpaint_latent(channels, height, width)};
  }
  const at::Tensor image = cond.concat_latent_image.defined()
                               ? latent_to_sampler(model, cond.concat_latent_image.to(at::kFloat))
                               : fallback_latent(model, fallback.latent);
  return {mask_input(mask, height, width), image_input(image, model, height, width)};
}

// InstructPix2Pix models (SD 1.x and diffusers' SDXL ones) read the VAE's latent unscaled.
std::vector<at::Tensor> instruct_pix2pix_inputs(const DiffusionModel& model,
                                                const Conditioning& cond, int64_t height,
                                                int64_t width) {
  const int64_t channels = model.unet->config().out_channels;
  if (!cond.concat_latent_image.defined()) return {at::zeros({1, channels, height, width})};
  return {image_input(cond.concat_latent_image, model, height, width)};
}

}  // namespace

std::vector<at::Tensor> concat_inputs(const DiffusionModel& model, const Conditioning& cond,
                                      const ConcatFallback& fallback, int64_t height,
                                      int64_t width) {
  if (!model.unet) return {};  // the DiT families take no extra input channels
  switch (unet_extra_inputs(model.unet->config())) {
    case UNetExtraInputs::kInpaint:
      return inpaint_inputs(model, cond, fallback, height, width);
    case UNetExtraInputs::kInstructPix2Pix:
      return instruct_pix2pix_inputs(model, cond, height, width);
    case UNetExtraInputs::kNone:
      break;
  }
  return {};
}

at::Tensor resize_to_batch(const at::Tensor& tensor, int64_t batch) {
  const int64_t in = tensor.size(0);
  if (in == batch) return tensor;
  if (batch <= 1) return tensor.narrow(0, 0, std::min(batch, in));
  std::vector<int64_t> picks;
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t pick =
        batch < in ? std::llround(std::nearbyint(double(i) * double(in - 1) / double(batch - 1)))
                   : int64_t(std::floor((double(i) + 0.5) * double(in) / double(batch)));
    picks.push_back(std::min(pick, in - 1));
  }
  return tensor.index_select(0, at::tensor(picks, at::kLong).to(tensor.device()));
}

}  // namespace df::engine
