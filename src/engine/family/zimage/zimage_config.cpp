// Z-Image transformer configs: diffusers config.json, inference from tensor shapes, the tiny one.
#include "engine/family/zimage/zimage_config.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace df::engine::zimage {
namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorCode::kCorruptFile, "Z-Image transformer config: " + what);
}

// Z-Image's RoPE split of a head: a quarter for the caption index, 3/8 each for rows and columns
// (32/48/48 of 128).
std::vector<int64_t> default_axes_dims(int64_t head_dim) {
  if (head_dim % 16 != 0) {
    invalid("head dimension " + std::to_string(head_dim) + " is not a multiple of 16");
  }
  return {head_dim / 4, head_dim * 3 / 8, head_dim * 3 / 8};
}

const std::vector<int64_t>& shape_of(const ShapeIndex& shapes, const std::string& name,
                                     size_t rank) {
  const auto it = shapes.find(name);
  if (it == shapes.end()) {
    throw Error(ErrorCode::kCorruptFile, "Z-Image transformer: tensor '" + name + "' is missing");
  }
  if (it->second.size() != rank) {
    throw Error(ErrorCode::kCorruptFile, "Z-Image transformer: tensor '" + name + "' has rank " +
                                             std::to_string(it->second.size()) + ", expected " +
                                             std::to_string(rank));
  }
  return it->second;
}

// 1 + the largest N of the "<block>.N.<suffix>" names; 0 when there are none.
int64_t count_blocks(const ShapeIndex& shapes, const std::string& block,
                     const std::string& suffix) {
  const std::string head = block + ".", tail = "." + suffix;
  int64_t count = 0;
  for (const auto& [name, shape] : shapes) {
    if (name.size() <= head.size() + tail.size() || !name.starts_with(head) ||
        !name.ends_with(tail)) {
      continue;
    }
    const std::string index = name.substr(head.size(), name.size() - head.size() - tail.size());
    if (std::all_of(index.begin(), index.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      count = std::max<int64_t>(count, std::stoll(index) + 1);
    }
  }
  return count;
}

}  // namespace

void ZImageConfig::validate() const {
  const auto positive = [](int64_t v) { return v > 0; };
  if (!positive(patch_size) || !positive(in_channels) || !positive(dim) || !positive(n_heads) ||
      !positive(n_kv_heads) || !positive(ffn_hidden_dim) || !positive(cap_feat_dim) ||
      !positive(timestep_hidden_dim) || !positive(pad_tokens_multiple) || n_layers < 0 ||
      n_refiner_layers < 0) {
    invalid("sizes must be positive");
  }
  if (dim % n_heads != 0) invalid("dim " + std::to_string(dim) + " is not a multiple of n_heads");
  if (n_heads % n_kv_heads != 0) invalid("n_heads is not a multiple of n_kv_heads");
  if (axes_dims.size() != 3 || axes_lens.size() != 3) {
    invalid("axes_dims and axes_lens need 3 axes");
  }
  for (const int64_t d : axes_dims) {
    if (d <= 0 || d % 2 != 0) invalid("RoPE axes dims must be positive and even");
  }
  if (std::accumulate(axes_dims.begin(), axes_dims.end(), int64_t{0}) != head_dim()) {
    invalid("axes_dims do not sum to the head dimension " + std::to_string(head_dim()));
  }
}

ZImageConfig ZImageConfig::from_diffusers_json(const nlohmann::json& j) {
  if (!j.value("siglip_feat_dim", nlohmann::json()).is_null()) {
    throw Error(ErrorCode::kUnsupported,
                "Z-Image Omni transformers (siglip_feat_dim) are not supported");
  }
  const auto patches = j.value("all_patch_size", std::vector<int64_t>{2});
  const auto frame_patches = j.value("all_f_patch_size", std::vector<int64_t>{1});
  if (patches.size() != 1 || frame_patches != std::vector<int64_t>{1}) {
    throw Error(ErrorCode::kUnsupported,
                "Z-Image transformers with several or temporal patch sizes are not supported");
  }
  ZImageConfig c;
  c.patch_size = patches[0];
  c.in_channels = j.value("in_channels", c.in_channels);
  c.dim = j.value("dim", c.dim);
  c.n_layers = j.value("n_layers", c.n_layers);
  c.n_refiner_layers = j.value("n_refiner_layers", c.n_refiner_layers);
  c.n_heads = j.value("n_heads", c.n_heads);
  c.n_kv_heads = c.n_heads;
  c.ffn_hidden_dim = static_cast<int64_t>(static_cast<double>(c.dim) / 3.0 * 8.0);
  c.norm_eps = j.value("norm_eps", c.norm_eps);
  c.qk_norm = j.value("qk_norm", c.qk_norm);
  c.cap_feat_dim = j.value("cap_feat_dim", c.cap_feat_dim);
  c.rope_theta = j.value("rope_theta", c.rope_theta);
  c.t_scale = j.value("t_scale", c.t_scale);
  c.axes_dims = j.value("axes_dims", c.axes_dims);
  c.axes_lens = j.value("axes_lens", std::vector<int64_t>{1024, 512, 512});
  c.validate();
  return c;
}

nlohmann::json ZImageConfig::to_diffusers_json() const {
  return {{"_class_name", "ZImageTransformer2DModel"},
          {"all_patch_size", {patch_size}},
          {"all_f_patch_size", {1}},
          {"in_channels", in_channels},
          {"dim", dim},
          {"n_layers", n_layers},
          {"n_refiner_layers", n_refiner_layers},
          {"n_heads", n_heads},
          {"n_kv_heads", n_kv_heads},
          {"norm_eps", norm_eps},
          {"qk_norm", qk_norm},
          {"cap_feat_dim", cap_feat_dim},
          {"siglip_feat_dim", nullptr},
          {"rope_theta", rope_theta},
          {"t_scale", t_scale},
          {"axes_dims", axes_dims},
          {"axes_lens", axes_lens}};
}

ZImageConfig ZImageConfig::infer_from_keys(const ShapeIndex& shapes) {
  ZImageConfig c;
  const auto& x_embedder = shape_of(shapes, "x_embedder.weight", 2);
  c.dim = x_embedder[0];
  c.in_channels = x_embedder[1] / (c.patch_size * c.patch_size);
  c.cap_feat_dim = shape_of(shapes, "cap_embedder.1.weight", 2)[1];
  c.timestep_hidden_dim = shape_of(shapes, "t_embedder.mlp.0.weight", 2)[0];
  c.n_layers = count_blocks(shapes, "layers", "attention_norm1.weight");
  c.n_refiner_layers = count_blocks(shapes, "noise_refiner", "attention_norm1.weight");
  const std::string block = c.n_layers > 0 ? "layers.0" : "noise_refiner.0";
  c.qk_norm = shapes.count(block + ".attention.q_norm.weight") > 0;
  const int64_t head_dim =
      c.qk_norm ? shape_of(shapes, block + ".attention.q_norm.weight", 1)[0] : 128;
  if (head_dim <= 0 || c.dim % head_dim != 0) invalid("q_norm width does not divide dim");
  c.n_heads = c.dim / head_dim;
  const int64_t qkv_rows = shape_of(shapes, block + ".attention.qkv.weight", 2)[0];
  c.n_kv_heads = (qkv_rows / head_dim - c.n_heads) / 2;
  c.ffn_hidden_dim = shape_of(shapes, block + ".feed_forward.w1.weight", 2)[0];
  c.axes_dims = default_axes_dims(head_dim);
  c.validate();
  return c;
}

ZImageConfig tiny_zimage_config(int64_t cap_feat_dim) {
  ZImageConfig c;
  c.dim = 32;
  c.n_layers = 2;
  c.n_refiner_layers = 1;
  c.n_heads = 2;
  c.n_kv_heads = 2;
  c.ffn_hidden_dim = static_cast<int64_t>(32.0 / 3.0 * 8.0);
  c.cap_feat_dim = cap_feat_dim;
  c.axes_dims = {4, 6, 6};
  c.validate();
  return c;
}

}  // namespace df::engine::zimage
