// T5 encoder configuration: config.json reading and writing, inference from weights, tensor layout.
#include "engine/text/t5_config.h"

#include <algorithm>
#include <regex>

#include "core/error.h"

namespace df::engine {
namespace {

int64_t positive_field(const nlohmann::json& json, const char* key, int64_t fallback) {
  if (!json.contains(key) || json[key].is_null()) return fallback;
  if (!json[key].is_number_integer() || json[key].get<int64_t>() <= 0) {
    throw Error(ErrorCode::kCorruptFile, std::string("T5 config field '") + key +
                                             "' must be a positive integer");
  }
  return json[key].get<int64_t>();
}

const TensorShape* find_tensor(const std::vector<TensorShape>& tensors, const std::string& name) {
  const auto it = std::find_if(tensors.begin(), tensors.end(),
                               [&](const TensorShape& t) { return t.name == name; });
  return it == tensors.end() ? nullptr : &*it;
}

const TensorShape& require_matrix(const std::vector<TensorShape>& tensors, const std::string& name) {
  const TensorShape* tensor = find_tensor(tensors, name);
  if (tensor == nullptr) {
    throw Error(ErrorCode::kCorruptFile, "T5 encoder weights lack the tensor '" + name + "'");
  }
  if (tensor->shape.size() != 2) {
    throw Error(ErrorCode::kCorruptFile, "T5 encoder tensor '" + name + "' is not a matrix");
  }
  return *tensor;
}

// One more than the highest N of "encoder.block.N." among the names.
int64_t count_blocks(const std::vector<TensorShape>& tensors) {
  static const std::regex block_name(R"(^encoder\.block\.(\d+)\.)");
  int64_t blocks = 0;
  for (const TensorShape& t : tensors) {
    std::smatch match;
    if (std::regex_search(t.name, match, block_name)) {
      blocks = std::max<int64_t>(blocks, std::stoll(match[1].str()) + 1);
    }
  }
  return blocks;
}

void add_block_shapes(std::vector<TensorShape>& layout, const T5Config& c, int64_t block) {
  const std::string prefix = "encoder.block." + std::to_string(block) + ".";
  const std::string attention = prefix + "layer.0.SelfAttention.";
  for (const char* projection : {"q", "k", "v"}) {
    add_linear_shapes(layout, attention + projection, c.inner_dim(), c.d_model, false);
  }
  add_linear_shapes(layout, attention + "o", c.d_model, c.inner_dim(), false);
  if (block == 0) {
    layout.push_back({attention + "relative_attention_bias.weight",
                      {c.relative_attention_num_buckets, c.num_heads}});
  }
  layout.push_back({prefix + "layer.0.layer_norm.weight", {c.d_model}});
  const std::string dense = prefix + "layer.1.DenseReluDense.";
  if (c.gated()) {
    add_linear_shapes(layout, dense + "wi_0", c.d_ff, c.d_model, false);
    add_linear_shapes(layout, dense + "wi_1", c.d_ff, c.d_model, false);
  } else {
    add_linear_shapes(layout, dense + "wi", c.d_ff, c.d_model, false);
  }
  add_linear_shapes(layout, dense + "wo", c.d_model, c.d_ff, false);
  layout.push_back({prefix + "layer.1.layer_norm.weight", {c.d_model}});
}

}  // namespace

T5Config T5Config::from_json(const nlohmann::json& json) {
  if (!json.is_object()) throw Error(ErrorCode::kCorruptFile, "T5 config is not a JSON object");
  T5Config c;
  c.vocab_size = positive_field(json, "vocab_size", c.vocab_size);
  c.d_model = positive_field(json, "d_model", c.d_model);
  c.d_kv = positive_field(json, "d_kv", c.d_kv);
  c.d_ff = positive_field(json, "d_ff", c.d_ff);
  c.num_heads = positive_field(json, "num_heads", c.num_heads);
  c.num_layers = positive_field(json, "num_layers", c.num_layers);
  c.relative_attention_num_buckets =
      positive_field(json, "relative_attention_num_buckets", c.relative_attention_num_buckets);
  c.relative_attention_max_distance =
      positive_field(json, "relative_attention_max_distance", c.relative_attention_max_distance);
  if (json.contains("layer_norm_epsilon")) {
    if (!json["layer_norm_epsilon"].is_number() || json["layer_norm_epsilon"].get<double>() <= 0) {
      throw Error(ErrorCode::kCorruptFile, "T5 config field 'layer_norm_epsilon' must be positive");
    }
    c.layer_norm_epsilon = json["layer_norm_epsilon"].get<double>();
  }
  if (json.contains("feed_forward_proj")) {
    if (!json["feed_forward_proj"].is_string()) {
      throw Error(ErrorCode::kCorruptFile, "T5 config field 'feed_forward_proj' must be a string");
    }
    c.feed_forward_proj = json["feed_forward_proj"].get<std::string>();
  }
  if (c.feed_forward_proj != "gated-gelu" && c.feed_forward_proj != "relu") {
    throw Error(ErrorCode::kUnsupported,
                "T5 feed_forward_proj '" + c.feed_forward_proj + "' is not supported");
  }
  if (c.relative_attention_num_buckets < 4) {
    throw Error(ErrorCode::kCorruptFile, "T5 config needs at least 4 relative attention buckets");
  }
  return c;
}

nlohmann::json T5Config::to_json() const {
  return {{"architectures", {"T5EncoderModel"}},
          {"model_type", "t5"},
          {"vocab_size", vocab_size},
          {"d_model", d_model},
          {"d_kv", d_kv},
          {"d_ff", d_ff},
          {"num_heads", num_heads},
          {"num_layers", num_layers},
          {"num_decoder_layers", num_layers},
          {"relative_attention_num_buckets", relative_attention_num_buckets},
          {"relative_attention_max_distance", relative_attention_max_distance},
          {"layer_norm_epsilon", layer_norm_epsilon},
          {"feed_forward_proj", feed_forward_proj},
          {"dense_act_fn", gated() ? "gelu_new" : "relu"},
          {"is_gated_act", gated()},
          {"dropout_rate", 0.0},
          {"tie_word_embeddings", false},
          {"pad_token_id", 0},
          {"eos_token_id", 1},
          {"decoder_start_token_id", 0}};
}

T5Config T5Config::infer_from_keys(const std::vector<TensorShape>& tensors) {
  const TensorShape* shared = find_tensor(tensors, "shared.weight");
  if (shared == nullptr) shared = &require_matrix(tensors, "encoder.embed_tokens.weight");
  const auto& bias = require_matrix(
      tensors, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
  const auto& query = require_matrix(tensors, "encoder.block.0.layer.0.SelfAttention.q.weight");
  const std::string dense = "encoder.block.0.layer.1.DenseReluDense.";
  const bool gated = find_tensor(tensors, dense + "wi_0.weight") != nullptr;
  const auto& wi = require_matrix(tensors, dense + (gated ? "wi_0.weight" : "wi.weight"));
  T5Config c;
  c.vocab_size = shared->shape[0];
  c.d_model = shared->shape[1];
  c.relative_attention_num_buckets = bias.shape[0];
  c.num_heads = bias.shape[1];
  if (c.num_heads <= 0 || query.shape[0] % c.num_heads != 0) {
    throw Error(ErrorCode::kCorruptFile, "T5 attention width does not split into its heads");
  }
  c.d_kv = query.shape[0] / c.num_heads;
  c.d_ff = wi.shape[0];
  c.num_layers = count_blocks(tensors);
  c.feed_forward_proj = gated ? "gated-gelu" : "relu";
  return c;
}

std::vector<TensorShape> t5_encoder_layout(const T5Config& config) {
  std::vector<TensorShape> layout{{"shared.weight", {config.vocab_size, config.d_model}}};
  for (int64_t block = 0; block < config.num_layers; ++block) add_block_shapes(layout, config, block);
  layout.push_back({"encoder.final_layer_norm.weight", {config.d_model}});
  return layout;
}

T5Config tiny_t5_config(int64_t vocab_size) {
  T5Config c;
  c.vocab_size = vocab_size;
  c.d_model = 32;
  c.d_kv = 8;
  c.num_heads = 4;
  c.d_ff = 37;
  c.num_layers = 2;
  return c;
}

}  // namespace df::engine
