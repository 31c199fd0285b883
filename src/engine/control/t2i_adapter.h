// T2I adapters (TencentARC's full adapter, its SDXL variant and the light adapter): features
// computed from the hint alone, added to the UNet's input blocks (and, for SDXL, its mid block) as
// ComfyUI does.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/control/control_model.h"
#include "engine/tensor_file.h"
#include "engine/weights.h"

namespace df::engine {

// The shape of an adapter, as ComfyUI's load_t2i_adapter reads it from the weights.
struct T2IAdapterConfig {
  int unshuffled_channels = 192;    // the first convolution's input: hint channels x unshuffle^2
  std::vector<int> channels;        // per stage
  int kernel = 1;                   // of in_conv and block2 (full adapters)
  bool conv_downsample = false;     // stride-2 convolutions (down_opt.op) instead of average pools
  bool xl = false;                  // SDXL layout: 16x unshuffle, stage 1 keeps the size
  int light_blocks = 0;             // light adapter: residual blocks per stage (0: a full adapter)

  int unshuffle() const { return xl ? 16 : 8; }
  int hint_channels() const { return unshuffled_channels / (unshuffle() * unshuffle()); }
};

// Weights use the original names: full adapters conv_in, body.N.{in_conv,block1,block2,down_opt.op}
// (N = stage * 2 + block); light adapters body.S.{in_conv,body.J.block1,body.J.block2,out_conv}.
// Runs in the dtype/device of the weights.
class T2IAdapter : public ControlModel {
 public:
  // Throws Error(kCorruptFile) when the weights do not fit the config.
  T2IAdapter(T2IAdapterConfig config, Weights weights);

  // Each stage's output for `hint` [B, hint_channels, H, W] (H, W multiples of the unshuffle).
  std::vector<at::Tensor> features(const at::Tensor& hint) const;
  // ComfyUI's placement of the features: input block 3s+2 of SD1 takes stage s; SDXL's input blocks
  // 3, 5 and 8 take stages 0-2 and its mid block the last stage.
  UNetControl control_of(const std::vector<at::Tensor>& features) const;
  // The hint at 8x the latent's size rounded up to the unshuffle (grey when the adapter takes one
  // channel), batched as the call (one hint's features serve the whole batch). As in ComfyUI the
  // features are computed once per hint: the last hint's features are kept for the next call.
  UNetControl control(const ControlCall& call, const HintAtSize& hint_at) const override;

  const T2IAdapterConfig& config() const { return config_; }

 private:
  // Whether a full adapter's stage starts by halving (all but the first; SDXL's stage 1 neither).
  bool downsamples(int stage) const;
  at::Tensor stage_block(int index, bool down, const at::Tensor& x) const;
  at::Tensor light_stage(int stage, const at::Tensor& x) const;
  std::vector<at::Tensor> features_of_last_hint(const at::Tensor& hint) const;
  void check_full_weights() const;
  void check_light_weights() const;

  T2IAdapterConfig config_;
  Weights weights_;
  mutable std::mutex last_mutex_;
  mutable at::Tensor last_hint_;
  mutable std::vector<at::Tensor> last_features_;
};

// Whether the file names T2I adapter tensors (original full or light adapter, or diffusers').
bool is_t2i_adapter(const TensorFile& file);

// The adapter of `path` (.safetensors or a PyTorch pickle, original or diffusers names) on
// `device` in `dtype` (names as resolve_placement takes them). Throws Error(kModelNotFound) for a
// missing file, Error(kUnsupported) for other layouts, Error(kCorruptFile) for weights that do not
// fit.
std::shared_ptr<const T2IAdapter> load_t2i_adapter(const std::string& path,
                                                   const std::string& device,
                                                   const std::string& dtype);

}  // namespace df::engine
