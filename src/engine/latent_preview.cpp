// A quick RGB picture of a latent for live previews.
#include "engine/latent_preview.h"

#include "core/error.h"

namespace df::engine {
namespace {

// Latent channel -> (R, G, B) weights and an RGB bias, fitted by ComfyUI for each latent space.
struct RgbFactors {
  at::Tensor weights;  // [C, 3]
  at::Tensor bias;     // [3]
};

at::Tensor table(const float* values, int64_t rows) {
  return at::from_blob(const_cast<float*>(values), {rows, 3}, at::kFloat).clone();
}

RgbFactors rgb_factors(Family family, int64_t channels) {
  static const float kSd[4][3] = {{0.3512f, 0.2297f, 0.3227f},
                                  {0.3250f, 0.4974f, 0.2350f},
                                  {-0.2829f, 0.1762f, 0.2721f},
                                  {-0.2120f, -0.2616f, -0.7177f}};
  static const float kSdxl[4][3] = {{0.3920f, 0.4054f, 0.4549f},
                                    {-0.2634f, -0.0196f, 0.0653f},
                                    {0.0568f, 0.1687f, -0.0755f},
                                    {-0.3112f, -0.2359f, -0.2076f}};
  static const float kFlux[16][3] = {
      {-0.0346f, 0.0244f, 0.0681f},  {0.0034f, 0.0210f, 0.0687f},   {0.0275f, -0.0668f, -0.0433f},
      {-0.0174f, 0.0160f, 0.0617f},  {0.0859f, 0.0721f, 0.0329f},   {0.0004f, 0.0383f, 0.0115f},
      {0.0405f, 0.0861f, 0.0915f},   {-0.0236f, -0.0185f, -0.0259f}, {-0.0245f, 0.0250f, 0.1180f},
      {0.1008f, 0.0755f, -0.0421f},  {-0.0515f, 0.0201f, 0.0011f},  {0.0428f, -0.0012f, -0.0036f},
      {0.0817f, 0.0765f, 0.0749f},   {-0.1264f, -0.0522f, -0.1103f}, {-0.0280f, -0.0881f, -0.0499f},
      {-0.1262f, -0.0982f, -0.0778f}};
  const bool xl = family == Family::kSDXL || family == Family::kSDXLRefiner;
  const bool flux = family == Family::kFlux || family == Family::kZImage;
  if (channels == 4 && !flux) return {table(&(xl ? kSdxl : kSd)[0][0], 4), at::zeros({3})};
  if (channels == 16 && flux) return {table(&kFlux[0][0], 16), at::tensor({-0.0329f, -0.0718f, -0.0851f})};
  // No fitted factors (e.g. SD3): the mean of the channels in grey.
  return {at::full({channels, 3}, 1.0 / static_cast<double>(channels), at::kFloat), at::zeros({3})};
}

}  // namespace

PreviewPixels latent_preview(const at::Tensor& latent, Family family) {
  if (latent.dim() != 4) throw Error(ErrorCode::kInvalidArgument, "a preview needs a [B,C,H,W] latent");
  // [H,W,C] x [C,3] + bias -> [H,W,3], mapped from about [-1,1] to [0,255].
  const at::Tensor hwc = latent[0].detach().to(at::kCPU, at::kFloat).permute({1, 2, 0});
  const RgbFactors factors = rgb_factors(family, latent.size(1));
  const at::Tensor rgb = ((at::matmul(hwc, factors.weights) + factors.bias + 1.0) * 127.5)
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
