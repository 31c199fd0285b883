// Tensor names and shapes of the diffusers UNet/VAE and transformers CLIP text state dicts.
#include "engine/weight_layout.h"

#include <algorithm>

#include "core/error.h"

namespace df::engine {

void add_conv_shapes(std::vector<TensorShape>& layout, const std::string& name, int64_t out,
                     int64_t in, int64_t kernel) {
  layout.push_back({name + ".weight", {out, in, kernel, kernel}});
  layout.push_back({name + ".bias", {out}});
}

void add_linear_shapes(std::vector<TensorShape>& layout, const std::string& name, int64_t out,
                       int64_t in, bool bias) {
  layout.push_back({name + ".weight", {out, in}});
  if (bias) layout.push_back({name + ".bias", {out}});
}

void add_norm_shapes(std::vector<TensorShape>& layout, const std::string& name, int64_t channels) {
  layout.push_back({name + ".weight", {channels}});
  layout.push_back({name + ".bias", {channels}});
}

namespace {

// Appends the tensors of the building blocks shared by the components under dotted prefixes.
class LayoutBuilder {
 public:
  void tensor(const std::string& name, std::vector<int64_t> shape) {
    layout_.push_back({name, std::move(shape)});
  }

  void linear(const std::string& prefix, int64_t out, int64_t in, bool bias = true) {
    add_linear_shapes(layout_, prefix, out, in, bias);
  }

  void conv(const std::string& prefix, int64_t out, int64_t in, int64_t kernel) {
    add_conv_shapes(layout_, prefix, out, in, kernel);
  }

  // GroupNorm or LayerNorm with affine parameters.
  void norm(const std::string& prefix, int64_t channels) {
    add_norm_shapes(layout_, prefix, channels);
  }

  // diffusers ResnetBlock2D; `temb_channels` 0 means no time-embedding projection (VAE).
  void resnet(const std::string& prefix, int64_t in, int64_t out, int64_t temb_channels) {
    norm(prefix + ".norm1", in);
    conv(prefix + ".conv1", out, in, 3);
    if (temb_channels > 0) linear(prefix + ".time_emb_proj", out, temb_channels);
    norm(prefix + ".norm2", out);
    conv(prefix + ".conv2", out, out, 3);
    if (in != out) conv(prefix + ".conv_shortcut", out, in, 1);
  }

  // diffusers Transformer2DModel (continuous input) of BasicTransformerBlocks with GEGLU.
  void transformer_2d(const std::string& prefix, int64_t channels, int64_t heads, int64_t layers,
                      int64_t context_dim, bool linear_projection) {
    const int64_t inner = heads * (channels / heads);
    norm(prefix + ".norm", channels);
    projection(prefix + ".proj_in", inner, channels, linear_projection);
    for (int64_t i = 0; i < layers; ++i) {
      const std::string block = prefix + ".transformer_blocks." + std::to_string(i);
      norm(block + ".norm1", inner);
      attention(block + ".attn1", inner, inner);
      norm(block + ".norm2", inner);
      attention(block + ".attn2", inner, context_dim);
      norm(block + ".norm3", inner);
      linear(block + ".ff.net.0.proj", 8 * inner, inner);
      linear(block + ".ff.net.2", inner, 4 * inner);
    }
    projection(prefix + ".proj_out", channels, inner, linear_projection);
  }

  std::vector<TensorShape> take() { return std::move(layout_); }

 private:
  void projection(const std::string& prefix, int64_t out, int64_t in, bool linear_projection) {
    if (linear_projection) {
      linear(prefix, out, in);
    } else {
      conv(prefix, out, in, 1);
    }
  }

  void attention(const std::string& prefix, int64_t dim, int64_t context_dim) {
    linear(prefix + ".to_q", dim, dim, false);
    linear(prefix + ".to_k", dim, context_dim, false);
    linear(prefix + ".to_v", dim, context_dim, false);
    linear(prefix + ".to_out.0", dim, dim);
  }

  std::vector<TensorShape> layout_;
};

void require(bool condition, ErrorCode code, const std::string& message) {
  if (!condition) throw Error(code, message);
}

bool is_cross_attention_block(const std::string& type, const char* cross, const char* plain) {
  if (type == cross) return true;
  require(type == plain, ErrorCode::kUnsupported, "unsupported UNet block type '" + type + "'");
  return false;
}

void validate(const UNetConfig& c) {
  const size_t blocks = c.block_out_channels.size();
  require(blocks > 0, ErrorCode::kInvalidArgument, "unet config: block_out_channels is empty");
  require(c.down_block_types.size() == blocks && c.up_block_types.size() == blocks &&
              c.num_attention_heads.size() == blocks &&
              c.transformer_layers_per_block.size() == blocks,
          ErrorCode::kInvalidArgument, "unet config: per-block lists differ in length");
  require(std::all_of(c.num_attention_heads.begin(), c.num_attention_heads.end(),
                      [](int heads) { return heads > 0; }),
          ErrorCode::kInvalidArgument, "unet config: attention head counts must be positive");
}

}  // namespace

std::vector<TensorShape> unet_tensor_layout(const UNetConfig& c) {
  validate(c);
  LayoutBuilder b;
  const auto& channels = c.block_out_channels;
  const size_t blocks = channels.size();
  const int64_t temb = 4 * int64_t{channels[0]};
  const int64_t context = c.cross_attention_dim;
  const bool linear_projection = c.use_linear_projection;

  b.conv("conv_in", channels[0], c.in_channels, 3);
  b.linear("time_embedding.linear_1", temb, channels[0]);
  b.linear("time_embedding.linear_2", temb, temb);
  if (c.addition_embed_type == "text_time") {
    b.linear("add_embedding.linear_1", temb, c.projection_class_embeddings_input_dim);
    b.linear("add_embedding.linear_2", temb, temb);
  } else {
    require(c.addition_embed_type.empty(), ErrorCode::kUnsupported,
            "unsupported addition_embed_type '" + c.addition_embed_type + "'");
  }
  if (c.class_embed_type == "projection") {  // SD2.1 unCLIP's image embedding input
    b.linear("class_embedding.linear_1", temb, c.projection_class_embeddings_input_dim);
    b.linear("class_embedding.linear_2", temb, temb);
  } else {
    require(c.class_embed_type.empty(), ErrorCode::kUnsupported,
            "unsupported class_embed_type '" + c.class_embed_type + "'");
  }

  for (size_t i = 0; i < blocks; ++i) {
    const std::string prefix = "down_blocks." + std::to_string(i);
    const bool attention =
        is_cross_attention_block(c.down_block_types[i], "CrossAttnDownBlock2D", "DownBlock2D");
    const int64_t out = channels[i];
    if (attention) {
      for (int j = 0; j < c.layers_per_block; ++j) {
        b.transformer_2d(prefix + ".attentions." + std::to_string(j), out, c.num_attention_heads[i],
                         c.transformer_layers_per_block[i], context, linear_projection);
      }
    }
    for (int j = 0; j < c.layers_per_block; ++j) {
      const int64_t in = (j == 0) ? channels[i == 0 ? 0 : i - 1] : out;
      b.resnet(prefix + ".resnets." + std::to_string(j), in, out, temb);
    }
    if (i + 1 < blocks) b.conv(prefix + ".downsamplers.0.conv", out, out, 3);
  }

  // Up blocks walk the channels in reverse; resnet j also consumes one skip connection.
  int64_t previous_out = channels.back();
  for (size_t i = 0; i < blocks; ++i) {
    const std::string prefix = "up_blocks." + std::to_string(i);
    const size_t level = blocks - 1 - i;
    const bool attention =
        is_cross_attention_block(c.up_block_types[i], "CrossAttnUpBlock2D", "UpBlock2D");
    const int64_t out = channels[level];
    const int64_t block_in = channels[level == 0 ? 0 : level - 1];
    const int layers = c.layers_per_block + 1;
    if (attention) {
      for (int j = 0; j < layers; ++j) {
        b.transformer_2d(prefix + ".attentions." + std::to_string(j), out,
                         c.num_attention_heads[level], c.transformer_layers_per_block[level],
                         context, linear_projection);
      }
    }
    for (int j = 0; j < layers; ++j) {
      const int64_t skip = (j == layers - 1) ? block_in : out;
      const int64_t in = (j == 0) ? previous_out : out;
      b.resnet(prefix + ".resnets." + std::to_string(j), in + skip, out, temb);
    }
    if (i + 1 < blocks) b.conv(prefix + ".upsamplers.0.conv", out, out, 3);
    previous_out = out;
  }

  const int64_t mid = channels.back();
  b.transformer_2d("mid_block.attentions.0", mid, c.num_attention_heads.back(),
                   c.transformer_layers_per_block.back(), context, linear_projection);
  b.resnet("mid_block.resnets.0", mid, mid, temb);
  b.resnet("mid_block.resnets.1", mid, mid, temb);

  b.norm("conv_norm_out", channels[0]);
  b.conv("conv_out", c.out_channels, channels[0], 3);
  return b.take();
}

namespace {

// The VAE mid block: resnet, single-head attention with biased projections, resnet.
void vae_mid_block(LayoutBuilder& b, const std::string& prefix, int64_t channels) {
  const std::string attention = prefix + ".attentions.0";
  b.norm(attention + ".group_norm", channels);
  b.linear(attention + ".to_q", channels, channels);
  b.linear(attention + ".to_k", channels, channels);
  b.linear(attention + ".to_v", channels, channels);
  b.linear(attention + ".to_out.0", channels, channels);
  b.resnet(prefix + ".resnets.0", channels, channels, 0);
  b.resnet(prefix + ".resnets.1", channels, channels, 0);
}

}  // namespace

std::vector<TensorShape> vae_tensor_layout(const VaeConfig& c) {
  const auto& channels = c.block_out_channels;
  require(!channels.empty(), ErrorCode::kInvalidArgument,
          "vae config: block_out_channels is empty");
  const size_t blocks = channels.size();
  const int64_t last = channels.back();
  LayoutBuilder b;

  b.conv("encoder.conv_in", channels[0], c.in_channels, 3);
  for (size_t i = 0; i < blocks; ++i) {
    const std::string prefix = "encoder.down_blocks." + std::to_string(i);
    for (int j = 0; j < c.layers_per_block; ++j) {
      const int64_t in = (j == 0) ? channels[i == 0 ? 0 : i - 1] : channels[i];
      b.resnet(prefix + ".resnets." + std::to_string(j), in, channels[i], 0);
    }
    if (i + 1 < blocks) b.conv(prefix + ".downsamplers.0.conv", channels[i], channels[i], 3);
  }
  vae_mid_block(b, "encoder.mid_block", last);
  b.norm("encoder.conv_norm_out", last);
  b.conv("encoder.conv_out", 2 * int64_t{c.latent_channels}, last, 3);

  b.conv("decoder.conv_in", last, c.latent_channels, 3);
  int64_t previous_out = last;
  for (size_t i = 0; i < blocks; ++i) {
    const std::string prefix = "decoder.up_blocks." + std::to_string(i);
    const int64_t out = channels[blocks - 1 - i];
    for (int j = 0; j <= c.layers_per_block; ++j) {
      b.resnet(prefix + ".resnets." + std::to_string(j), j == 0 ? previous_out : out, out, 0);
    }
    if (i + 1 < blocks) b.conv(prefix + ".upsamplers.0.conv", out, out, 3);
    previous_out = out;
  }
  vae_mid_block(b, "decoder.mid_block", last);
  b.norm("decoder.conv_norm_out", channels[0]);
  b.conv("decoder.conv_out", c.out_channels, channels[0], 3);

  if (c.use_quant_conv) {
    b.conv("quant_conv", 2 * int64_t{c.latent_channels}, 2 * int64_t{c.latent_channels}, 1);
    b.conv("post_quant_conv", c.latent_channels, c.latent_channels, 1);
  }
  return b.take();
}

std::vector<TensorShape> clip_text_tensor_layout(const ClipTextConfig& c) {
  const int64_t hidden = c.hidden_size;
  LayoutBuilder b;
  b.tensor("text_model.embeddings.token_embedding.weight", {c.vocab_size, hidden});
  b.tensor("text_model.embeddings.position_embedding.weight", {c.max_position_embeddings, hidden});
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    const std::string layer = "text_model.encoder.layers." + std::to_string(i);
    for (const char* projection : {"k_proj", "v_proj", "q_proj", "out_proj"}) {
      b.linear(layer + ".self_attn." + projection, hidden, hidden);
    }
    b.norm(layer + ".layer_norm1", hidden);
    b.linear(layer + ".mlp.fc1", c.intermediate_size, hidden);
    b.linear(layer + ".mlp.fc2", hidden, c.intermediate_size);
    b.norm(layer + ".layer_norm2", hidden);
  }
  b.norm("text_model.final_layer_norm", hidden);
  if (c.with_projection) b.linear("text_projection", c.projection_dim, hidden, false);
  return b.take();
}

}  // namespace df::engine
