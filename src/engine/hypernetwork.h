// A1111 hypernetworks: small MLPs added to the UNet's attention keys and values (ComfyUI's patch).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/unet.h"

namespace df::engine {

// One MLP of a hypernetwork: linear layers, each followed by the activation (except the last,
// unless activate_output) and a LayerNorm (is_layer_norm); dropout does nothing at inference.
class HypernetworkMlp {
 public:
  struct Step {
    enum class Kind { kLinear, kActivation, kLayerNorm } kind;
    at::Tensor weight;  // kLinear [out, in], kLayerNorm [width]
    at::Tensor bias;
  };
  HypernetworkMlp(std::vector<Step> steps, std::string activation)
      : steps_(std::move(steps)), activation_(std::move(activation)) {}

  at::Tensor forward(const at::Tensor& x) const;

 private:
  std::vector<Step> steps_;
  std::string activation_;
};

// A hypernetwork as A1111 saves it (a .pt pickle, whose {W: [key MLP, value MLP], options...}
// TensorFile flattens to these names and metadata) or flattened into a .safetensors file: for each attention width
// W, "W.0.<module>.weight|bias" (the key MLP) and "W.1.<module>.weight|bias" (the value MLP), the
// modules in order of their numbered names ("linear.0", "linear.1", ...); the options
// activation_func ("linear", "relu", "leakyrelu", "elu", "swish", "tanh", "sigmoid", "softsign",
// "mish"), is_layer_norm, use_dropout, activate_output and last_layer_dropout in the file's
// metadata (booleans as "True"/"true"/"1").
class Hypernetwork {
 public:
  // Throws Error(kUnsafeFormat) for pickles that would run code, Error(kUnsupported) for other extensions,
  // Error(kCorruptFile) for files without hypernetwork tensors or with layers that do not chain.
  static Hypernetwork load(const std::string& path);

  // The activation named in the file; ComfyUI ignores hypernetworks whose activation it lacks.
  const std::string& activation() const { return activation_; }
  bool supported() const;
  std::vector<int64_t> widths() const;

  // ComfyUI's hypernetwork patch: for inputs whose key width W has MLPs,
  // key += mlp_W,0(key) * strength and value += mlp_W,1(value) * strength.
  void apply(AttentionInputs& inputs, double strength) const;

 private:
  std::string activation_;
  std::map<int64_t, std::pair<HypernetworkMlp, HypernetworkMlp>> mlps_;
};

// The attention patches ComfyUI's HypernetworkLoader sets (the same patch on attn1 and attn2).
AttentionPatches hypernetwork_patches(std::shared_ptr<const Hypernetwork> hypernetwork,
                                      double strength);

}  // namespace df::engine
