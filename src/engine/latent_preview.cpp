// A quick RGB picture of a latent for live previews.
#include "engine/latent_preview.h"

#include "core/error.h"

namespace df::engine {
namespace {

// Latent channel -> (R, G, B) weights, fitted by ComfyUI for each latent space.
at::Tensor rgb_factors(Family family) {
  static const float kSd[4][3] = {{0.3512f, 0.2297f, 0.3227f},
                                  {0.3250f, 0.4974f, 0.2350f},
                                  {-0.2829f, 0.1762f, 0.2721f},
                                  {-0.2120f, -0.2616f, -0.7177f}};
  static const float kSdxl[4][3] = {{0.3920f, 0.4054f, 0.4549f},
                                    {-0.2634f, -0.0196f, 0.0653f},
                                    {0.0568f, 0.1687f, -0.0755f},
                                    {-0.3112f, -0.2359f, -0.2076f}};
  const bool xl = family == Family::kSDXL || family == Family::kSDXLRefiner;
  return at::from_blob(const_cast<float*>(&(xl ? kSdxl : kSd)[0][0]), {4, 3}, at::kFloat).clone();
}

}  // namespace

PreviewPixels latent_preview(const at::Tensor& latent, Family family) {
  if (latent.dim() != 4 || latent.size(1) != 4) {
    throw Error(ErrorCode::kInvalidArgument, "a preview needs a [B,4,H,W] latent");
  }
  // [H,W,4] x [4,3] -> [H,W,3], mapped from about [-1,1] to [0,255].
  const at::Tensor hwc = latent[0].detach().to(at::kCPU, at::kFloat).permute({1, 2, 0});
  const at::Tensor rgb = ((at::matmul(hwc, rgb_factors(family)) + 1.0) * 127.5)
                             .clamp(0, 255)
                             .round()
                             .to(at::kByte)
                             .contiguous();
  PreviewPixels pixels;
  pixels.height = static_cast<int>(rgb.size(0));
  pixels.width = static_cast<int>(rgb.size(1));
  pixels.rgb.assign(rgb.data_ptr<uint8_t>(), rgb.data_ptr<uint8_t>() + rgb.numel());
  return pixels;
}

}  // namespace df::engine
