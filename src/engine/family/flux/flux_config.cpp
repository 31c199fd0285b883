// FLUX.1 transformer hyperparameters: from and to diffusers' config.json, and from weight shapes.
#include "engine/family/flux/flux_config.h"

#include <numeric>

#include "core/error.h"

namespace df::engine::flux {
namespace {

using nlohmann::json;

void require(bool condition, const std::string& message) {
  if (!condition) throw Error(ErrorCode::kInvalidArgument, "FLUX config: " + message);
}

template <typename T>
T json_field(const json& config, const std::string& name) {
  if (!config.contains(name)) {
    throw Error(ErrorCode::kCorruptFile, "FLUX transformer config.json lacks '" + name + "'");
  }
  try {
    return config.at(name).get<T>();
  } catch (const json::exception&) {
    throw Error(ErrorCode::kCorruptFile,
                "FLUX transformer config.json has a malformed '" + name + "'");
  }
}

const std::vector<int64_t>& shape_of(const KeyShapes& shapes, const std::string& name,
                                     size_t rank) {
  const auto it = shapes.find(name);
  if (it == shapes.end()) {
    throw Error(ErrorCode::kCorruptFile, "FLUX transformer weights lack '" + name + "'");
  }
  if (it->second.size() != rank) {
    throw Error(ErrorCode::kCorruptFile, "FLUX transformer tensor '" + name + "' has rank " +
                                             std::to_string(it->second.size()) + ", expected " +
                                             std::to_string(rank));
  }
  return it->second;
}

// 1 + the largest N of the keys "<prefix>N.<...>"; 0 when there are none.
int64_t block_count(const KeyShapes& shapes, const std::string& prefix) {
  int64_t count = 0;
  for (auto it = shapes.lower_bound(prefix); it != shapes.end(); ++it) {
    const std::string& name = it->first;
    if (name.compare(0, prefix.size(), prefix) != 0) break;
    const size_t dot = name.find('.', prefix.size());
    const std::string index = name.substr(prefix.size(), dot - prefix.size());
    if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos) continue;
    count = std::max<int64_t>(count, std::stoll(index) + 1);
  }
  return count;
}

// FLUX.1's RoPE proportions for any head dim (FluxConfig::infer_from_keys): 128 -> [16, 56, 56].
std::vector<int64_t> flux_axes_dim(int64_t head_dim) {
  const int64_t index_axis = std::max<int64_t>(4, (head_dim / 8) / 2 * 2);
  const int64_t spatial_axis = (head_dim - index_axis) / 2;
  return {index_axis, spatial_axis, head_dim - index_axis - spatial_axis};
}

}  // namespace

void FluxConfig::validate() const {
  require(hidden_size > 0 && num_heads > 0 && hidden_size % num_heads == 0,
          "num_heads " + std::to_string(num_heads) + " must divide hidden_size " +
              std::to_string(hidden_size));
  require(depth >= 0 && depth_single_blocks >= 0, "block counts must not be negative");
  require(in_channels > 0 && in_channels % 4 == 0 && out_channels > 0 && out_channels % 4 == 0,
          "packed channel counts must be positive multiples of 4 (2x2 patches)");
  require(context_in_dim > 0 && vec_in_dim > 0, "text widths must be positive");
  require(mlp_ratio > 0 && theta > 0, "mlp_ratio and theta must be positive");
  for (int64_t axis : axes_dim) require(axis > 0 && axis % 2 == 0, "RoPE axes must be even");
  require(axes_dim.size() == 3, "FLUX uses three RoPE axes (index, row, column)");
  require(std::accumulate(axes_dim.begin(), axes_dim.end(), int64_t{0}) == head_dim(),
          "RoPE axes must sum to the head dim " + std::to_string(head_dim()));
}

FluxConfig FluxConfig::from_diffusers_json(const json& config) {
  if (!config.is_object()) {
    throw Error(ErrorCode::kCorruptFile, "FLUX transformer config.json is not an object");
  }
  if (config.value("patch_size", 1) != 1) {
    throw Error(ErrorCode::kUnsupported, "FLUX transformers with patch_size other than 1");
  }
  FluxConfig out;
  const auto head_dim = json_field<int64_t>(config, "attention_head_dim");
  out.num_heads = json_field<int64_t>(config, "num_attention_heads");
  out.hidden_size = head_dim * out.num_heads;
  out.depth = json_field<int64_t>(config, "num_layers");
  out.depth_single_blocks = json_field<int64_t>(config, "num_single_layers");
  out.in_channels = json_field<int64_t>(config, "in_channels");
  const bool has_out = config.contains("out_channels") && !config.at("out_channels").is_null();
  out.out_channels = has_out ? json_field<int64_t>(config, "out_channels") : out.in_channels;
  out.context_in_dim = json_field<int64_t>(config, "joint_attention_dim");
  out.vec_in_dim = json_field<int64_t>(config, "pooled_projection_dim");
  out.guidance_embed = json_field<bool>(config, "guidance_embeds");
  out.axes_dim = json_field<std::vector<int64_t>>(config, "axes_dims_rope");
  out.validate();
  return out;
}

json FluxConfig::to_diffusers_json() const {
  return {{"_class_name", "FluxTransformer2DModel"},
          {"patch_size", 1},
          {"in_channels", in_channels},
          {"out_channels", out_channels},
          {"num_layers", depth},
          {"num_single_layers", depth_single_blocks},
          {"attention_head_dim", head_dim()},
          {"num_attention_heads", num_heads},
          {"joint_attention_dim", context_in_dim},
          {"pooled_projection_dim", vec_in_dim},
          {"guidance_embeds", guidance_embed},
          {"axes_dims_rope", axes_dim}};
}

FluxConfig FluxConfig::infer_from_keys(const KeyShapes& shapes) {
  FluxConfig out;
  const auto& img_in = shape_of(shapes, "img_in.weight", 2);
  out.hidden_size = img_in[0];
  out.in_channels = img_in[1];
  out.out_channels = shape_of(shapes, "final_layer.linear.weight", 2)[0];
  out.context_in_dim = shape_of(shapes, "txt_in.weight", 2)[1];
  out.vec_in_dim = shape_of(shapes, "vector_in.in_layer.weight", 2)[1];
  out.guidance_embed = shapes.count("guidance_in.in_layer.weight") > 0;
  out.depth = block_count(shapes, "double_blocks.");
  out.depth_single_blocks = block_count(shapes, "single_blocks.");
  const bool has_double = out.depth > 0;
  const int64_t head_dim =
      has_double ? shape_of(shapes, "double_blocks.0.img_attn.norm.query_norm.scale", 1)[0]
                 : shape_of(shapes, "single_blocks.0.norm.query_norm.scale", 1)[0];
  if (head_dim <= 0 || out.hidden_size % head_dim != 0) {
    throw Error(ErrorCode::kCorruptFile, "FLUX transformer q-norm scale length " +
                                             std::to_string(head_dim) +
                                             " does not divide the hidden size");
  }
  out.num_heads = out.hidden_size / head_dim;
  const int64_t mlp_hidden =
      has_double ? shape_of(shapes, "double_blocks.0.img_mlp.0.weight", 2)[0]
                 : shape_of(shapes, "single_blocks.0.linear1.weight", 2)[0] - 3 * out.hidden_size;
  out.mlp_ratio = static_cast<double>(mlp_hidden) / static_cast<double>(out.hidden_size);
  out.axes_dim = flux_axes_dim(head_dim);
  try {
    out.validate();
  } catch (const Error& e) {
    throw Error(ErrorCode::kCorruptFile, std::string("FLUX transformer weights: ") + e.what());
  }
  return out;
}

FluxConfig tiny_flux_config(bool guidance) {
  FluxConfig out;
  out.hidden_size = 32;
  out.num_heads = 2;
  out.depth = 1;
  out.depth_single_blocks = 1;
  out.in_channels = 64;
  out.out_channels = 64;
  out.context_in_dim = 32;
  out.vec_in_dim = 32;
  out.guidance_embed = guidance;
  out.axes_dim = {4, 6, 6};
  return out;
}

}  // namespace df::engine::flux
