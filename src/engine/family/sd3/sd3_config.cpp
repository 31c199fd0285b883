// SD3 MMDiT config: diffusers JSON, inference from Stability-named tensors, layout, tiny configs.
#include "engine/family/sd3/sd3_config.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <unordered_map>

#include "core/error.h"

namespace df::engine::sd3 {
namespace {

constexpr int64_t kMlpRatio = 4;

void require(bool condition, const std::string& message) {
  if (!condition) throw Error(ErrorCode::kUnsupported, "SD3 MMDiT config: " + message);
}

QkNorm qk_norm_from_json(const nlohmann::json& value) {
  if (value.is_null()) return QkNorm::kNone;
  const std::string name = value.get<std::string>();
  if (name == "rms_norm") return QkNorm::kRms;
  throw Error(ErrorCode::kUnsupported, "SD3 MMDiT config: qk_norm '" + name + "' is not supported");
}

// The image stream (x_block) or the context stream (context_block) of block `index`.
void add_stream_shapes(std::vector<TensorShape>& layout, const Sd3Config& c, int64_t index,
                       bool context) {
  const int64_t hidden = c.hidden_size();
  const std::string prefix =
      "joint_blocks." + std::to_string(index) + (context ? ".context_block." : ".x_block.");
  const bool pre_only = context && c.context_pre_only(index);
  const bool dual = !context && c.has_dual_attention(index);
  const int64_t modulations = pre_only ? 2 : (dual ? 9 : 6);
  add_linear_shapes(layout, prefix + "adaLN_modulation.1", modulations * hidden, hidden);
  const auto add_attention = [&](const std::string& name, bool with_projection) {
    add_linear_shapes(layout, prefix + name + ".qkv", 3 * hidden, hidden);
    if (c.qk_norm == QkNorm::kRms) {
      layout.push_back({prefix + name + ".ln_q.weight", {c.head_dim}});
      layout.push_back({prefix + name + ".ln_k.weight", {c.head_dim}});
    }
    if (with_projection) add_linear_shapes(layout, prefix + name + ".proj", hidden, hidden);
  };
  add_attention("attn", !pre_only);
  if (dual) add_attention("attn2", true);
  if (pre_only) return;
  add_linear_shapes(layout, prefix + "mlp.fc1", kMlpRatio * hidden, hidden);
  add_linear_shapes(layout, prefix + "mlp.fc2", hidden, kMlpRatio * hidden);
}

using ShapeIndex = std::unordered_map<std::string, std::vector<int64_t>>;

const std::vector<int64_t>& shape_of(const ShapeIndex& shapes, const std::string& name,
                                     size_t rank) {
  const auto it = shapes.find(name);
  if (it == shapes.end()) {
    throw Error(ErrorCode::kUnsupported, "not an SD3 MMDiT state dict: no tensor '" + name + "'");
  }
  if (it->second.size() != rank) {
    throw Error(ErrorCode::kCorruptFile, "SD3 MMDiT tensor '" + name + "' has rank " +
                                             std::to_string(it->second.size()) + ", expected " +
                                             std::to_string(rank));
  }
  return it->second;
}

// The block index of "joint_blocks.N.<rest>", or -1.
int64_t block_index(const std::string& name) {
  static const std::string kPrefix = "joint_blocks.";
  if (!name.starts_with(kPrefix)) return -1;
  const size_t end = name.find('.', kPrefix.size());
  if (end == std::string::npos) return -1;
  try {
    return std::stoll(name.substr(kPrefix.size(), end - kPrefix.size()));
  } catch (const std::exception&) {
    return -1;
  }
}

int64_t exact_square_root(int64_t value, const std::string& name) {
  const auto root = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(value))));
  if (root * root != value) {
    throw Error(ErrorCode::kCorruptFile, "SD3 MMDiT tensor '" + name + "' holds " +
                                             std::to_string(value) +
                                             " positions, not a square grid");
  }
  return root;
}

}  // namespace

bool Sd3Config::has_dual_attention(int64_t block) const {
  return std::find(dual_attention_layers.begin(), dual_attention_layers.end(), block) !=
         dual_attention_layers.end();
}

void Sd3Config::validate() const {
  require(patch_size > 0 && in_channels > 0 && out_channels > 0, "sizes must be positive");
  require(depth > 0 && num_heads > 0 && head_dim > 0,
          "depth, heads and head width must be positive");
  require(joint_attention_dim > 0 && pooled_projection_dim > 0 && pos_embed_max_size > 0,
          "text and position sizes must be positive");
  require(caption_projection_dim == hidden_size(),
          "caption_projection_dim " + std::to_string(caption_projection_dim) +
              " must equal the hidden size " + std::to_string(hidden_size()));
  for (const int64_t block : dual_attention_layers) {
    require(block >= 0 && block < depth,
            "dual attention layer " + std::to_string(block) + " is not a block");
  }
}

Sd3Config Sd3Config::from_diffusers_json(const nlohmann::json& config) {
  Sd3Config c;
  try {
    c.sample_size = config.value("sample_size", c.sample_size);
    c.patch_size = config.value("patch_size", c.patch_size);
    c.in_channels = config.value("in_channels", c.in_channels);
    c.depth = config.value("num_layers", int64_t{18});
    c.head_dim = config.value("attention_head_dim", c.head_dim);
    c.num_heads = config.value("num_attention_heads", int64_t{18});
    c.joint_attention_dim = config.value("joint_attention_dim", c.joint_attention_dim);
    c.caption_projection_dim = config.value("caption_projection_dim", int64_t{1152});
    c.pooled_projection_dim = config.value("pooled_projection_dim", c.pooled_projection_dim);
    const auto out = config.find("out_channels");
    c.out_channels = (out == config.end() || out->is_null()) ? c.in_channels : out->get<int64_t>();
    c.pos_embed_max_size = config.value("pos_embed_max_size", int64_t{96});
    if (config.contains("dual_attention_layers")) {
      c.dual_attention_layers = config.at("dual_attention_layers").get<std::vector<int64_t>>();
    }
    if (config.contains("qk_norm")) c.qk_norm = qk_norm_from_json(config.at("qk_norm"));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kCorruptFile, std::string("SD3 transformer config: ") + e.what());
  }
  c.validate();
  return c;
}

nlohmann::json Sd3Config::to_diffusers_json() const {
  return {{"_class_name", "SD3Transformer2DModel"},
          {"sample_size", sample_size},
          {"patch_size", patch_size},
          {"in_channels", in_channels},
          {"num_layers", depth},
          {"attention_head_dim", head_dim},
          {"num_attention_heads", num_heads},
          {"joint_attention_dim", joint_attention_dim},
          {"caption_projection_dim", caption_projection_dim},
          {"pooled_projection_dim", pooled_projection_dim},
          {"out_channels", out_channels},
          {"pos_embed_max_size", pos_embed_max_size},
          {"dual_attention_layers", dual_attention_layers},
          {"qk_norm", qk_norm == QkNorm::kRms ? nlohmann::json("rms_norm") : nlohmann::json()}};
}

bool is_sd3_mmdit(const std::vector<TensorShape>& tensors) {
  return std::any_of(tensors.begin(), tensors.end(), [](const TensorShape& t) {
    return t.name == "joint_blocks.0.context_block.attn.qkv.weight";
  });
}

Sd3Config Sd3Config::infer_from_keys(const std::vector<TensorShape>& tensors) {
  ShapeIndex shapes;
  std::set<int64_t> blocks;
  std::set<int64_t> dual;
  for (const TensorShape& t : tensors) {
    shapes[t.name] = t.shape;
    const int64_t block = block_index(t.name);
    if (block < 0) continue;
    blocks.insert(block);
    if (t.name.ends_with(".x_block.attn2.qkv.weight")) dual.insert(block);
  }
  Sd3Config c;
  const auto& patch = shape_of(shapes, "x_embedder.proj.weight", 4);
  c.patch_size = patch[2];
  c.in_channels = patch[1];
  const int64_t hidden = patch[0];
  const auto& final_linear = shape_of(shapes, "final_layer.linear.weight", 2);
  c.out_channels = final_linear[0] / (c.patch_size * c.patch_size);
  const auto& context = shape_of(shapes, "context_embedder.weight", 2);
  c.caption_projection_dim = context[0];
  c.joint_attention_dim = context[1];
  c.pooled_projection_dim = shape_of(shapes, "y_embedder.mlp.0.weight", 2)[1];
  c.pos_embed_max_size = exact_square_root(shape_of(shapes, "pos_embed", 3)[1], "pos_embed");
  shape_of(shapes, "joint_blocks.0.context_block.attn.qkv.weight", 2);
  c.depth = static_cast<int64_t>(blocks.size());
  if (*blocks.rbegin() != c.depth - 1) {
    throw Error(ErrorCode::kCorruptFile, "SD3 MMDiT joint blocks are not numbered 0.." +
                                             std::to_string(c.depth - 1));
  }
  const auto ln_q = shapes.find("joint_blocks.0.x_block.attn.ln_q.weight");
  c.qk_norm = ln_q == shapes.end() ? QkNorm::kNone : QkNorm::kRms;
  c.head_dim = ln_q == shapes.end() ? hidden / c.depth : ln_q->second.at(0);
  if (c.head_dim <= 0 || hidden % c.head_dim != 0) {
    throw Error(ErrorCode::kCorruptFile, "SD3 MMDiT hidden size " + std::to_string(hidden) +
                                             " does not split into heads of " +
                                             std::to_string(c.head_dim));
  }
  c.num_heads = hidden / c.head_dim;
  c.dual_attention_layers.assign(dual.begin(), dual.end());
  c.validate();
  return c;
}

std::vector<TensorShape> sd3_transformer_layout(const Sd3Config& config) {
  const int64_t hidden = config.hidden_size();
  const int64_t positions = config.pos_embed_max_size * config.pos_embed_max_size;
  std::vector<TensorShape> layout;
  add_conv_shapes(layout, "x_embedder.proj", hidden, config.in_channels, config.patch_size);
  layout.push_back({"pos_embed", {1, positions, hidden}});
  add_linear_shapes(layout, "t_embedder.mlp.0", hidden, 256);
  add_linear_shapes(layout, "t_embedder.mlp.2", hidden, hidden);
  add_linear_shapes(layout, "y_embedder.mlp.0", hidden, config.pooled_projection_dim);
  add_linear_shapes(layout, "y_embedder.mlp.2", hidden, hidden);
  add_linear_shapes(layout, "context_embedder", config.caption_projection_dim,
                    config.joint_attention_dim);
  for (int64_t block = 0; block < config.depth; ++block) {
    add_stream_shapes(layout, config, block, /*context=*/false);
    add_stream_shapes(layout, config, block, /*context=*/true);
  }
  add_linear_shapes(layout, "final_layer.adaLN_modulation.1", 2 * hidden, hidden);
  add_linear_shapes(layout, "final_layer.linear",
                    config.patch_size * config.patch_size * config.out_channels, hidden);
  return layout;
}

Sd3Config tiny_sd3_config(bool qk_norm, bool dual_attention) {
  Sd3Config c;
  c.depth = 2;
  c.num_heads = 2;
  c.head_dim = 16;
  c.joint_attention_dim = 32;
  c.caption_projection_dim = c.hidden_size();
  c.pooled_projection_dim = 64;
  c.pos_embed_max_size = 64;
  c.sample_size = 32;
  c.qk_norm = qk_norm ? QkNorm::kRms : QkNorm::kNone;
  if (dual_attention) c.dual_attention_layers = {0};
  return c;
}

}  // namespace df::engine::sd3
