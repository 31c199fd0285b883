// Qwen3Config: config.json reading and writing, inference from tensor shapes, the weight layout.
#include "engine/text/qwen3_config.h"

#include "core/error.h"

namespace df::engine {

namespace {

using nlohmann::json;

int read_int(const json& doc, const char* key, int fallback) {
  if (!doc.contains(key) || doc.at(key).is_null()) return fallback;
  if (!doc.at(key).is_number_integer()) {
    throw Error(ErrorCode::kCorruptFile,
                std::string("Qwen3 config field ") + key + " is not an integer: " + doc.at(key).dump());
  }
  return doc.at(key).get<int>();
}

double read_number(const json& doc, const char* key, double fallback) {
  if (!doc.contains(key) || doc.at(key).is_null()) return fallback;
  if (!doc.at(key).is_number()) {
    throw Error(ErrorCode::kCorruptFile,
                std::string("Qwen3 config field ") + key + " is not a number: " + doc.at(key).dump());
  }
  return doc.at(key).get<double>();
}

// RoPE base frequency from transformers 5's "rope_parameters" or the older top-level fields.
double read_rope_theta(const json& doc, double fallback) {
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    if (!doc.contains(key) || doc.at(key).is_null()) continue;
    const json& rope = doc.at(key);
    if (!rope.is_object()) {
      throw Error(ErrorCode::kCorruptFile, std::string("Qwen3 config field ") + key + " is no object");
    }
    const std::string type = rope.value("rope_type", rope.value("type", std::string("default")));
    if (type != "default") {
      throw Error(ErrorCode::kUnsupported, "Qwen3 RoPE scaling '" + type + "' is not supported");
    }
    fallback = read_number(rope, "rope_theta", fallback);
  }
  return read_number(doc, "rope_theta", fallback);
}

// The shape of `name`, which must have `rank` dimensions.
const std::vector<int64_t>& shape_of(const std::map<std::string, std::vector<int64_t>>& shapes,
                                     const std::string& name, size_t rank) {
  auto it = shapes.find(name);
  if (it == shapes.end() || it->second.size() != rank) {
    throw Error(ErrorCode::kUnsupported,
                "Qwen3 weights: tensor " + name +
                    (it == shapes.end() ? " is missing" : " has the wrong number of dimensions"));
  }
  return it->second;
}

int layer_count(const std::map<std::string, std::vector<int64_t>>& shapes) {
  int layers = 0;
  while (shapes.count("model.layers." + std::to_string(layers) + ".input_layernorm.weight")) {
    ++layers;
  }
  return layers;
}

}  // namespace

Qwen3Config Qwen3Config::from_json(const json& doc) {
  if (!doc.is_object()) throw Error(ErrorCode::kCorruptFile, "Qwen3 config is not a JSON object");
  Qwen3Config config;
  config.hidden_size = read_int(doc, "hidden_size", config.hidden_size);
  config.intermediate_size = read_int(doc, "intermediate_size", config.intermediate_size);
  config.num_hidden_layers = read_int(doc, "num_hidden_layers", config.num_hidden_layers);
  config.num_attention_heads = read_int(doc, "num_attention_heads", config.num_attention_heads);
  config.num_key_value_heads = read_int(doc, "num_key_value_heads", config.num_attention_heads);
  config.head_dim = read_int(doc, "head_dim", 128);
  config.rms_norm_eps = read_number(doc, "rms_norm_eps", config.rms_norm_eps);
  config.rope_theta = read_rope_theta(doc, config.rope_theta);
  config.vocab_size = read_int(doc, "vocab_size", config.vocab_size);
  config.max_position_embeddings =
      read_int(doc, "max_position_embeddings", config.max_position_embeddings);
  config.validate();
  return config;
}

json Qwen3Config::to_json() const {
  return {{"model_type", "qwen3"},
          {"architectures", {"Qwen3Model"}},
          {"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"num_key_value_heads", num_key_value_heads},
          {"head_dim", head_dim},
          {"rms_norm_eps", rms_norm_eps},
          {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", rope_theta}}},
          {"vocab_size", vocab_size},
          {"max_position_embeddings", max_position_embeddings},
          {"hidden_act", "silu"},
          {"attention_bias", false}};
}

Qwen3Config Qwen3Config::infer_from_keys(const std::map<std::string, std::vector<int64_t>>& shapes) {
  Qwen3Config config;
  const auto& embed = shape_of(shapes, "model.embed_tokens.weight", 2);
  config.vocab_size = static_cast<int>(embed[0]);
  config.hidden_size = static_cast<int>(embed[1]);
  config.num_hidden_layers = layer_count(shapes);
  if (config.num_hidden_layers == 0) {
    throw Error(ErrorCode::kUnsupported, "Qwen3 weights: no model.layers.0 tensors");
  }
  const std::string attn = "model.layers.0.self_attn.";
  config.head_dim = static_cast<int>(shape_of(shapes, attn + "q_norm.weight", 1)[0]);
  if (config.head_dim <= 0) {
    throw Error(ErrorCode::kUnsupported, "Qwen3 weights: " + attn + "q_norm.weight is empty");
  }
  config.num_attention_heads =
      static_cast<int>(shape_of(shapes, attn + "q_proj.weight", 2)[0] / config.head_dim);
  config.num_key_value_heads =
      static_cast<int>(shape_of(shapes, attn + "k_proj.weight", 2)[0] / config.head_dim);
  config.intermediate_size =
      static_cast<int>(shape_of(shapes, "model.layers.0.mlp.gate_proj.weight", 2)[0]);
  config.validate();
  return config;
}

void Qwen3Config::validate() const {
  const bool positive = hidden_size > 0 && intermediate_size > 0 && num_hidden_layers > 0 &&
                        num_attention_heads > 0 && num_key_value_heads > 0 && head_dim > 0 &&
                        vocab_size > 0 && max_position_embeddings > 0 && rms_norm_eps > 0 &&
                        rope_theta > 0;
  if (!positive) {
    throw Error(ErrorCode::kInvalidArgument, "Qwen3 config has a non-positive size: " + to_json().dump());
  }
  if (head_dim % 2 != 0) {
    throw Error(ErrorCode::kInvalidArgument, "Qwen3 head_dim must be even for RoPE");
  }
  if (num_attention_heads % num_key_value_heads != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "Qwen3 num_attention_heads must be a multiple of num_key_value_heads");
  }
}

std::vector<TensorShape> qwen3_layout(const Qwen3Config& config) {
  config.validate();
  const int64_t hidden = config.hidden_size, head = config.head_dim;
  const int64_t q_out = config.num_attention_heads * head, kv_out = config.num_key_value_heads * head;
  std::vector<TensorShape> layout;
  layout.push_back({"model.embed_tokens.weight", {config.vocab_size, hidden}});
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    const std::string layer = "model.layers." + std::to_string(i) + ".";
    layout.push_back({layer + "input_layernorm.weight", {hidden}});
    add_linear_shapes(layout, layer + "self_attn.q_proj", q_out, hidden, false);
    add_linear_shapes(layout, layer + "self_attn.k_proj", kv_out, hidden, false);
    add_linear_shapes(layout, layer + "self_attn.v_proj", kv_out, hidden, false);
    add_linear_shapes(layout, layer + "self_attn.o_proj", hidden, q_out, false);
    layout.push_back({layer + "self_attn.q_norm.weight", {head}});
    layout.push_back({layer + "self_attn.k_norm.weight", {head}});
    layout.push_back({layer + "post_attention_layernorm.weight", {hidden}});
    add_linear_shapes(layout, layer + "mlp.gate_proj", config.intermediate_size, hidden, false);
    add_linear_shapes(layout, layer + "mlp.up_proj", config.intermediate_size, hidden, false);
    add_linear_shapes(layout, layer + "mlp.down_proj", hidden, config.intermediate_size, false);
  }
  layout.push_back({"model.norm.weight", {hidden}});
  return layout;
}

Qwen3Config tiny_qwen3_config(int vocab_size) {
  Qwen3Config config;
  config.hidden_size = 32;
  config.intermediate_size = 64;
  config.num_hidden_layers = 3;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 8;
  config.vocab_size = vocab_size;
  config.validate();
  return config;
}

}  // namespace df::engine
