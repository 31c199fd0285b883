// Probe command for ComfyUI's Canny node (kornia's edge detector on ATen).
#include "nodes/image_ops.h"
#include "probe.h"

namespace df::probe {
namespace {

// "image" [B,H,W,3] with args low_threshold/high_threshold -> "edges" [B,H,W,3] of 0 and 1.
engine::TensorMap canny(const nlohmann::json& args, const engine::TensorMap& in) {
  return {{"edges", nodes::canny_edges(in.at("image"), args.at("low_threshold").get<double>(),
                                       args.at("high_threshold").get<double>())}};
}

}  // namespace

DF_PROBE_COMMAND("canny", canny);

}  // namespace df::probe
