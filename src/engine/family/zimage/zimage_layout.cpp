// Z-Image transformer tensor layouts in the ComfyUI and diffusers namings and the map between.
#include "engine/family/zimage/zimage_layout.h"

#include <array>
#include <regex>
#include <utility>

#include "core/error.h"

namespace df::engine::zimage {
namespace {

constexpr int64_t kTimestepFeatures = 256;  // sinusoidal features fed to t_embedder.mlp.0

// Renamed name fragments, ComfyUI -> diffusers; the embedder and final layer prefixes are
// patch-size specific in diffusers ("all_x_embedder.2-1.").
constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kAttentionRenames{{
    {".attention.out.", ".attention.to_out.0."},
    {".attention.q_norm.", ".attention.norm_q."},
    {".attention.k_norm.", ".attention.norm_k."},
}};
constexpr std::array<std::string_view, 3> kQkvParts{"to_q", "to_k", "to_v"};

void add_block(std::vector<TensorShape>& layout, const std::string& name, const ZImageConfig& c,
               bool modulated) {
  const int64_t hd = c.head_dim();
  add_linear_shapes(layout, name + ".attention.qkv", (c.n_heads + 2 * c.n_kv_heads) * hd, c.dim,
                    false);
  add_linear_shapes(layout, name + ".attention.out", c.dim, c.n_heads * hd, false);
  if (c.qk_norm) {
    layout.push_back({name + ".attention.q_norm.weight", {hd}});
    layout.push_back({name + ".attention.k_norm.weight", {hd}});
  }
  add_linear_shapes(layout, name + ".feed_forward.w1", c.ffn_hidden_dim, c.dim, false);
  add_linear_shapes(layout, name + ".feed_forward.w2", c.dim, c.ffn_hidden_dim, false);
  add_linear_shapes(layout, name + ".feed_forward.w3", c.ffn_hidden_dim, c.dim, false);
  for (const char* norm : {"attention_norm1", "ffn_norm1", "attention_norm2", "ffn_norm2"}) {
    layout.push_back({name + "." + norm + ".weight", {c.dim}});
  }
  if (modulated) add_linear_shapes(layout, name + ".adaLN_modulation.0", 4 * c.dim, c.adaln_dim());
}

std::string replace_prefix(const std::string& name, const std::string& from,
                           const std::string& to) {
  return name.starts_with(from) ? to + name.substr(from.size()) : name;
}

std::string replace_fragment(std::string name, std::string_view from, std::string_view to) {
  const size_t at = name.find(from);
  if (at != std::string::npos) name.replace(at, from.size(), to);
  return name;
}

std::string diffusers_prefix(const char* module, int64_t patch_size) {
  return std::string("all_") + module + "." + std::to_string(patch_size) + "-1.";
}

std::string diffusers_name_of(const std::string& comfy_name, int64_t patch_size) {
  std::string name =
      replace_prefix(comfy_name, "x_embedder.", diffusers_prefix("x_embedder", patch_size));
  name = replace_prefix(name, "final_layer.", diffusers_prefix("final_layer", patch_size));
  for (const auto& [comfy, diffusers] : kAttentionRenames) {
    name = replace_fragment(name, comfy, diffusers);
  }
  return name;
}

}  // namespace

std::vector<TensorShape> zimage_transformer_layout(const ZImageConfig& c) {
  c.validate();
  const int64_t patch_features = c.patch_size * c.patch_size * c.in_channels;
  std::vector<TensorShape> layout;
  add_linear_shapes(layout, "x_embedder", c.dim, patch_features);
  for (int64_t i = 0; i < c.n_refiner_layers; ++i) {
    add_block(layout, "noise_refiner." + std::to_string(i), c, true);
  }
  for (int64_t i = 0; i < c.n_refiner_layers; ++i) {
    add_block(layout, "context_refiner." + std::to_string(i), c, false);
  }
  add_linear_shapes(layout, "t_embedder.mlp.0", c.timestep_hidden_dim, kTimestepFeatures);
  add_linear_shapes(layout, "t_embedder.mlp.2", c.adaln_dim(), c.timestep_hidden_dim);
  layout.push_back({"cap_embedder.0.weight", {c.cap_feat_dim}});
  add_linear_shapes(layout, "cap_embedder.1", c.dim, c.cap_feat_dim);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    add_block(layout, "layers." + std::to_string(i), c, true);
  }
  add_linear_shapes(layout, "final_layer.linear", patch_features, c.dim);
  add_linear_shapes(layout, "final_layer.adaLN_modulation.1", c.dim, c.adaln_dim());
  layout.push_back({"x_pad_token", {1, c.dim}});
  layout.push_back({"cap_pad_token", {1, c.dim}});
  return layout;
}

std::vector<DiffusersPart> diffusers_parts_of(const TensorShape& comfy_tensor,
                                              const ZImageConfig& c) {
  const std::string& name = comfy_tensor.name;
  if (name.ends_with(".attention.qkv.weight")) {
    const std::string stem = name.substr(0, name.size() - std::string("qkv.weight").size());
    const int64_t hd = c.head_dim();
    return {{stem + "to_q.weight", c.n_heads * hd},
            {stem + "to_k.weight", c.n_kv_heads * hd},
            {stem + "to_v.weight", c.n_kv_heads * hd}};
  }
  const int64_t rows = comfy_tensor.shape.empty() ? 0 : comfy_tensor.shape[0];
  return {{diffusers_name_of(name, c.patch_size), rows}};
}

std::vector<TensorShape> zimage_diffusers_layout(const ZImageConfig& c) {
  std::vector<TensorShape> layout;
  for (const TensorShape& tensor : zimage_transformer_layout(c)) {
    for (const DiffusersPart& part : diffusers_parts_of(tensor, c)) {
      std::vector<int64_t> shape = tensor.shape;
      if (!shape.empty()) shape[0] = part.rows;
      layout.push_back({part.name, shape});
    }
  }
  return layout;
}

std::string strip_checkpoint_prefix(const std::string& name) {
  return replace_prefix(name, "model.diffusion_model.", "");
}

bool has_diffusers_names(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (name.starts_with("all_x_embedder.")) return true;
  }
  return false;
}

ComfyPlace comfy_place_of_diffusers_name(const std::string& diffusers_name) {
  static const std::regex patch_prefix("^all_(x_embedder|final_layer)\\.[0-9]+-1\\.");
  std::string name = std::regex_replace(diffusers_name, patch_prefix, "$1.");
  for (const auto& [comfy, diffusers] : kAttentionRenames) {
    name = replace_fragment(name, diffusers, comfy);
  }
  for (int part = 0; part < static_cast<int>(kQkvParts.size()); ++part) {
    const std::string suffix = ".attention." + std::string(kQkvParts[part]) + ".weight";
    if (name.ends_with(suffix)) {
      return {name.substr(0, name.size() - suffix.size()) + ".attention.qkv.weight", part};
    }
  }
  return {name, -1};
}

std::vector<RawTensor> raw_tensors_to_diffusers(const std::vector<RawTensor>& tensors,
                                                const ZImageConfig& c) {
  std::vector<RawTensor> out;
  for (const RawTensor& tensor : tensors) {
    int64_t count = 1;
    for (const int64_t d : tensor.shape) count *= d;
    if (count == 0 || tensor.bytes.size() % static_cast<size_t>(count) != 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  "tensor '" + tensor.name + "' bytes do not match its shape");
    }
    const size_t bytes_per_row =
        tensor.shape.empty() ? tensor.bytes.size() : tensor.bytes.size() / tensor.shape[0];
    size_t offset = 0;
    for (const DiffusersPart& part : diffusers_parts_of({tensor.name, tensor.shape}, c)) {
      RawTensor piece{part.name, tensor.dtype, tensor.shape, {}};
      if (!piece.shape.empty()) piece.shape[0] = part.rows;
      const size_t size = tensor.shape.empty() ? tensor.bytes.size() : bytes_per_row * part.rows;
      if (offset + size > tensor.bytes.size()) {
        throw Error(ErrorCode::kInvalidArgument,
                    "tensor '" + tensor.name + "' is too small for its config");
      }
      piece.bytes.assign(tensor.bytes.begin() + offset, tensor.bytes.begin() + offset + size);
      offset += size;
      out.push_back(std::move(piece));
    }
  }
  return out;
}

}  // namespace df::engine::zimage
