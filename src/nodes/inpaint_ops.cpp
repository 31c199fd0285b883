// Inpainting and InstructPix2Pix conditioning inputs, as ComfyUI's nodes build them.
#include "nodes/inpaint_ops.h"

#include <string>

#include "core/error.h"

namespace df::nodes {
namespace {

// ComfyUI crops these nodes' pixels to whole 8-pixel cells whatever the VAE's cell.
constexpr int64_t kCell = 8;

void check_image(const at::Tensor& pixels) {
  if (!pixels.defined() || pixels.dim() != 4 || pixels.size(1) < kCell || pixels.size(2) < kCell) {
    throw Error(ErrorCode::kInvalidArgument,
                "pixels must be an image batch [B,H,W,C] of at least 8x8 pixels");
  }
}

// The centred crop of [B,H,W,...]-ordered `t` (rows on `row_dim`) to whole cells.
at::Tensor crop_to_cells(const at::Tensor& t, int64_t row_dim) {
  const int64_t height = t.size(row_dim), width = t.size(row_dim + 1);
  return t.narrow(row_dim, (height % kCell) / 2, height / kCell * kCell)
      .narrow(row_dim + 1, (width % kCell) / 2, width / kCell * kCell);
}

}  // namespace

InpaintConditioning inpaint_model_conditioning(const engine::VaeCodec& vae,
                                               const at::Tensor& pixels, const at::Tensor& mask,
                                               bool noise_mask) {
  check_image(pixels);
  if (!mask.defined() || mask.dim() < 2 || mask.dim() > 3 || mask.numel() == 0) {
    throw Error(ErrorCode::kInvalidArgument, "mask must be [H,W] or [N,H,W]");
  }
  at::Tensor m = mask.to(at::kFloat).reshape({-1, 1, mask.size(-2), mask.size(-1)});
  if (m.size(0) != 1 && m.size(0) != pixels.size(0)) {
    throw Error(ErrorCode::kInvalidArgument, "the mask batch (" + std::to_string(m.size(0)) +
                                                 ") must be 1 or the image batch (" +
                                                 std::to_string(pixels.size(0)) + ")");
  }
  m = crop_to_cells(at::upsample_bilinear2d(m, {pixels.size(1), pixels.size(2)}, false), 2);
  const at::Tensor keep = (1.0 - m.round()).squeeze(1).unsqueeze(-1);  // [N,H,W,1]
  const at::Tensor grey =
      (crop_to_cells(pixels.to(at::kFloat), 1).narrow(3, 0, 3) - 0.5) * keep + 0.5;
  InpaintConditioning out{vae.encode(grey), m, LatentValue{vae.encode(pixels)}};
  if (noise_mask) out.latent.noise_mask = m;
  return out;
}

InstructPix2PixConditioning instruct_pix2pix_conditioning(const engine::VaeCodec& vae,
                                                          const at::Tensor& pixels) {
  check_image(pixels);
  const at::Tensor encoded = vae.encode(crop_to_cells(pixels, 1));
  return {encoded, LatentValue{at::zeros_like(encoded)}};
}

}  // namespace df::nodes
