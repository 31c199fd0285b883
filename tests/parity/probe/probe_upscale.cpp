// Probe commands for the upscale models behind UpscaleModelLoader and ImageUpscaleWithModel.
#include <string>

#include "engine/upscale/tiled_upscale.h"
#include "engine/upscale/upscale_model.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

engine::upscale::UpscaleModel upscale_model(const json& args) {
  return engine::upscale::load_upscale_model(args.at("model").get<std::string>(), at::kCPU);
}

// The network on "images" [B,C,H,W] -> "output" (unclamped) and "scale", "input_channels",
// "output_channels" as one-element tensors.
TensorMap upscale_forward(const json& args, const TensorMap& in) {
  const engine::upscale::UpscaleModel model = upscale_model(args);
  return {{"output", model.forward(in.at("images"))},
          {"scale", at::tensor({static_cast<int64_t>(model.scale)})},
          {"input_channels", at::tensor({model.input_channels})},
          {"output_channels", at::tensor({model.output_channels})}};
}

// ImageUpscaleWithModel on "image" [B,H,W,C] -> "image" (tiled, clamped).
TensorMap upscale_image(const json& args, const TensorMap& in) {
  const engine::upscale::UpscaleModel model = upscale_model(args);
  return {{"image", engine::upscale::upscale_image_with_model(model, in.at("image"))}};
}

}  // namespace

DF_PROBE_COMMAND("upscale_forward", upscale_forward);
DF_PROBE_COMMAND("upscale_image", upscale_image);

}  // namespace df::probe
