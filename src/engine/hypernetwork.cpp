// Hypernetwork files read into per-width key/value MLPs and applied as attention input patches.
#include "engine/hypernetwork.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "core/error.h"
#include "engine/checkpoint.h"
#include "engine/safetensors.h"
#include "engine/tensor_file.h"

namespace df::engine {
namespace {

const std::set<std::string>& supported_activations() {
  static const std::set<std::string> names = {"linear", "relu",     "leakyrelu", "elu", "swish",
                                              "tanh",   "sigmoid",  "softsign",  "mish"};
  return names;
}

at::Tensor activate(const std::string& name, const at::Tensor& x) {
  if (name == "relu") return at::relu(x);
  if (name == "leakyrelu") return at::leaky_relu(x, 0.01);
  if (name == "elu") return at::elu(x);
  if (name == "swish") return at::hardswish(x);  // ComfyUI maps "swish" to Hardswish
  if (name == "tanh") return at::tanh(x);
  if (name == "sigmoid") return at::sigmoid(x);
  if (name == "softsign") return x / (1 + x.abs());
  if (name == "mish") return at::mish(x);
  return x;
}

std::optional<int64_t> parse_int(const std::string& text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

bool metadata_flag(const std::map<std::string, std::string>& metadata, const std::string& key) {
  const auto it = metadata.find(key);
  return it != metadata.end() && (it->second == "True" || it->second == "true" || it->second == "1");
}

std::vector<std::string> dotted_parts(const std::string& name) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = name.find('.', start)) != std::string::npos; start = dot + 1) {
    parts.push_back(name.substr(start, dot - start));
  }
  parts.push_back(name.substr(start));
  return parts;
}

// Module names in module order: dotted parts compared as numbers where both are numbers
// ("linear.2" before "linear.10").
bool module_order(const std::string& a, const std::string& b) {
  const auto less = [](const std::string& x, const std::string& y) {
    const auto nx = parse_int(x), ny = parse_int(y);
    return nx && ny ? *nx < *ny : x < y;
  };
  const auto pa = dotted_parts(a), pb = dotted_parts(b);
  return std::lexicographical_compare(pa.begin(), pa.end(), pb.begin(), pb.end(), less);
}

// The tensors of one MLP: module name -> {"weight", "bias"}.
using MlpTensors = std::map<std::string, std::map<std::string, at::Tensor>>;

struct HypernetworkOptions {
  std::string activation;
  bool layer_norm = false;
  bool activate_output = false;
};

Error corrupt(const std::string& path, const std::string& message) {
  return Error(ErrorCode::kCorruptFile, "hypernetwork '" + path + "': " + message);
}

// ComfyUI's layer assembly: each ".weight" module in order is a Linear, followed by the activation
// (not after the last unless activate_output) and, with is_layer_norm, by the next module as a
// LayerNorm. Checks that the layers chain from `width` back to `width`.
HypernetworkMlp build_mlp(const MlpTensors& tensors, const HypernetworkOptions& options,
                          int64_t width, const std::string& path) {
  std::vector<std::string> modules;
  for (const auto& [name, parts] : tensors) {
    if (parts.count("weight")) modules.push_back(name);
  }
  std::sort(modules.begin(), modules.end(), module_order);
  const auto part = [&](const std::string& module, const char* name) {
    const auto& parts = tensors.at(module);
    const auto it = parts.find(name);
    if (it == parts.end()) throw corrupt(path, "module '" + module + "' has no " + name);
    return it->second;
  };
  std::vector<HypernetworkMlp::Step> steps;
  int64_t features = width;
  for (size_t i = 0; i < modules.size(); ++i) {
    const bool last = i + 1 == modules.size();
    const at::Tensor weight = part(modules[i], "weight");
    if (weight.dim() != 2 || weight.size(1) != features) {
      throw corrupt(path, "layer '" + modules[i] + "' does not take " + std::to_string(features) +
                              " features");
    }
    features = weight.size(0);
    steps.push_back({HypernetworkMlp::Step::Kind::kLinear, weight, part(modules[i], "bias")});
    if (options.activation != "linear" && (!last || options.activate_output)) {
      steps.push_back({HypernetworkMlp::Step::Kind::kActivation, {}, {}});
    }
    if (options.layer_norm) {
      if (++i == modules.size()) throw corrupt(path, "a layer norm is missing at the end");
      steps.push_back({HypernetworkMlp::Step::Kind::kLayerNorm, part(modules[i], "weight"),
                       part(modules[i], "bias")});
    }
  }
  if (steps.empty() || features != width) {
    throw corrupt(path, "the layers for width " + std::to_string(width) + " do not map it to itself");
  }
  return HypernetworkMlp(std::move(steps), options.activation);
}

}  // namespace

at::Tensor HypernetworkMlp::forward(const at::Tensor& x) const {
  at::Tensor h = x;
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Step::Kind::kLinear:
        h = at::linear(h, step.weight.to(h.options()), step.bias.to(h.options()));
        break;
      case Step::Kind::kActivation:
        h = activate(activation_, h);
        break;
      case Step::Kind::kLayerNorm:
        h = at::layer_norm(h, {h.size(-1)}, step.weight.to(h.options()), step.bias.to(h.options()));
        break;
    }
  }
  return h;
}

Hypernetwork Hypernetwork::load(const std::string& path) {
  check_weights_path(path, "a hypernetwork (.safetensors, .pt)");
  const TensorFile file = TensorFile::open(path);
  const auto& metadata = file.metadata();
  const auto activation = metadata.find("activation_func");
  const HypernetworkOptions options{activation == metadata.end() ? "linear" : activation->second,
                                    metadata_flag(metadata, "is_layer_norm"),
                                    metadata_flag(metadata, "activate_output")};
  std::map<int64_t, std::pair<MlpTensors, MlpTensors>> grouped;
  for (auto& [key, tensor] : load_tensors_as(file, at::kFloat, [](const std::string& k) {
         return std::optional(k);
       })) {
    const size_t first = key.find('.');
    const size_t second = first == std::string::npos ? first : key.find('.', first + 1);
    const size_t last = key.rfind('.');
    const auto width = parse_int(key.substr(0, first));
    if (!width || second == std::string::npos || last <= second) continue;  // not a layer
    const std::string side = key.substr(first + 1, second - first - 1);
    if (side != "0" && side != "1") throw corrupt(path, "tensor '" + key + "' is neither 0 (key) nor 1 (value)");
    MlpTensors& mlp = side == "0" ? grouped[*width].first : grouped[*width].second;
    mlp[key.substr(second + 1, last - second - 1)][key.substr(last + 1)] = tensor;
  }
  if (grouped.empty()) throw corrupt(path, "it holds no hypernetwork layers (\"<width>.0.linear.0.weight\", ...)");
  Hypernetwork hypernetwork;
  hypernetwork.activation_ = options.activation;
  if (!hypernetwork.supported()) return hypernetwork;
  for (const auto& [width, sides] : grouped) {
    hypernetwork.mlps_.emplace(width, std::pair(build_mlp(sides.first, options, width, path),
                                                build_mlp(sides.second, options, width, path)));
  }
  return hypernetwork;
}

bool Hypernetwork::supported() const { return supported_activations().count(activation_) > 0; }

std::vector<int64_t> Hypernetwork::widths() const {
  std::vector<int64_t> widths;
  for (const auto& [width, mlps] : mlps_) widths.push_back(width);
  return widths;
}

void Hypernetwork::apply(AttentionInputs& inputs, double strength) const {
  const auto it = mlps_.find(inputs.key.size(-1));
  if (it == mlps_.end()) return;
  inputs.key = inputs.key + it->second.first.forward(inputs.key) * strength;
  inputs.value = inputs.value + it->second.second.forward(inputs.value) * strength;
}

AttentionPatches hypernetwork_patches(std::shared_ptr<const Hypernetwork> hypernetwork,
                                      double strength) {
  const AttentionPatch patch = [hypernetwork, strength](AttentionInputs& inputs) {
    hypernetwork->apply(inputs, strength);
  };
  return {{patch}, {patch}};
}

}  // namespace df::engine
