// Reading and writing diffusers/transformers component configs.
#include "engine/model_config.h"

#include "core/error.h"

namespace df::engine {
namespace {

using nlohmann::json;

// A diffusers per-block field may be a scalar (same for every block) or a list.
std::vector<int> per_block(const json& config, const char* key, int fallback, size_t blocks) {
  if (!config.contains(key) || config[key].is_null()) return std::vector<int>(blocks, fallback);
  const json& value = config[key];
  if (value.is_number()) return std::vector<int>(blocks, value.get<int>());
  auto list = value.get<std::vector<int>>();
  if (list.size() != blocks) {
    throw Error(ErrorCode::kCorruptFile,
                std::string("config field '") + key + "' has " + std::to_string(list.size()) +
                    " entries for " + std::to_string(blocks) + " blocks");
  }
  return list;
}

template <typename T>
T value_or(const json& config, const char* key, T fallback) {
  if (!config.contains(key) || config[key].is_null()) return fallback;
  return config[key].get<T>();
}

}  // namespace

std::string family_name(Family family) {
  switch (family) {
    case Family::kSD1: return "sd1";
    case Family::kSD2: return "sd2";
    case Family::kSDXL: return "sdxl";
    case Family::kSDXLRefiner: return "sdxl_refiner";
    case Family::kFlux: return "flux";
    case Family::kSD3: return "sd3";
    case Family::kZImage: return "zimage";
  }
  return "sd1";
}

Family family_from_name(const std::string& name) {
  if (name == "sd1") return Family::kSD1;
  if (name == "sd2") return Family::kSD2;
  if (name == "sdxl") return Family::kSDXL;
  if (name == "sdxl_refiner") return Family::kSDXLRefiner;
  if (name == "flux") return Family::kFlux;
  if (name == "sd3") return Family::kSD3;
  if (name == "zimage") return Family::kZImage;
  throw Error(ErrorCode::kInvalidArgument, "unknown model family '" + name + "'");
}

std::string prediction_name(Prediction prediction) {
  switch (prediction) {
    case Prediction::kEpsilon: return "epsilon";
    case Prediction::kVPrediction: return "v_prediction";
    case Prediction::kSample: return "sample";
    case Prediction::kEdm: return "edm";
    case Prediction::kFlow: return "flow";
  }
  return "epsilon";
}

Prediction prediction_from_name(const std::string& name) {
  if (name == "epsilon") return Prediction::kEpsilon;
  if (name == "v_prediction") return Prediction::kVPrediction;
  if (name == "sample") return Prediction::kSample;
  if (name == "edm") return Prediction::kEdm;
  if (name == "flow") return Prediction::kFlow;
  throw Error(ErrorCode::kUnsupported, "unsupported prediction type '" + name + "'");
}

UNetConfig UNetConfig::from_json(const json& c) {
  UNetConfig u;
  u.in_channels = value_or(c, "in_channels", 4);
  u.out_channels = value_or(c, "out_channels", 4);
  u.block_out_channels = c.at("block_out_channels").get<std::vector<int>>();
  const size_t blocks = u.block_out_channels.size();
  u.down_block_types = c.at("down_block_types").get<std::vector<std::string>>();
  u.up_block_types = c.at("up_block_types").get<std::vector<std::string>>();
  if (u.down_block_types.size() != blocks || u.up_block_types.size() != blocks) {
    throw Error(ErrorCode::kCorruptFile, "unet config: block type lists do not match block_out_channels");
  }
  u.layers_per_block = value_or(c, "layers_per_block", 2);
  // diffusers: num_attention_heads = num_attention_heads or attention_head_dim (default 8).
  if (c.contains("num_attention_heads") && !c["num_attention_heads"].is_null()) {
    u.num_attention_heads = per_block(c, "num_attention_heads", 8, blocks);
  } else {
    u.num_attention_heads = per_block(c, "attention_head_dim", 8, blocks);
  }
  u.transformer_layers_per_block = per_block(c, "transformer_layers_per_block", 1, blocks);
  if (c.contains("cross_attention_dim") && c["cross_attention_dim"].is_array()) {
    u.cross_attention_dim = c["cross_attention_dim"].back().get<int>();
  } else {
    u.cross_attention_dim = value_or(c, "cross_attention_dim", 1280);
  }
  u.use_linear_projection = value_or(c, "use_linear_projection", false);
  u.norm_num_groups = value_or(c, "norm_num_groups", 32);
  u.norm_eps = value_or(c, "norm_eps", 1e-5);
  u.flip_sin_to_cos = value_or(c, "flip_sin_to_cos", true);
  u.freq_shift = value_or(c, "freq_shift", 0);
  u.addition_embed_type = value_or<std::string>(c, "addition_embed_type", "");
  u.class_embed_type = value_or<std::string>(c, "class_embed_type", "");
  u.addition_time_embed_dim = value_or(c, "addition_time_embed_dim", 0);
  u.projection_class_embeddings_input_dim = value_or(c, "projection_class_embeddings_input_dim", 0);
  u.sample_size = value_or(c, "sample_size", 64);
  return u;
}

json UNetConfig::to_json() const {
  json c = {{"_class_name", "UNet2DConditionModel"},
            {"in_channels", in_channels},
            {"out_channels", out_channels},
            {"block_out_channels", block_out_channels},
            {"down_block_types", down_block_types},
            {"up_block_types", up_block_types},
            {"layers_per_block", layers_per_block},
            {"attention_head_dim", num_attention_heads},
            {"transformer_layers_per_block", transformer_layers_per_block},
            {"cross_attention_dim", cross_attention_dim},
            {"use_linear_projection", use_linear_projection},
            {"norm_num_groups", norm_num_groups},
            {"norm_eps", norm_eps},
            {"flip_sin_to_cos", flip_sin_to_cos},
            {"freq_shift", freq_shift},
            {"sample_size", sample_size},
            {"act_fn", "silu"},
            {"mid_block_type", "UNetMidBlock2DCrossAttn"}};
  if (!addition_embed_type.empty()) {
    c["addition_embed_type"] = addition_embed_type;
    c["addition_time_embed_dim"] = addition_time_embed_dim;
    c["projection_class_embeddings_input_dim"] = projection_class_embeddings_input_dim;
  }
  if (!class_embed_type.empty()) {
    c["class_embed_type"] = class_embed_type;
    c["projection_class_embeddings_input_dim"] = projection_class_embeddings_input_dim;
  }
  return c;
}

VaeConfig VaeConfig::from_json(const json& c) {
  VaeConfig v;
  v.in_channels = value_or(c, "in_channels", 3);
  v.out_channels = value_or(c, "out_channels", 3);
  v.latent_channels = value_or(c, "latent_channels", 4);
  v.block_out_channels = c.at("block_out_channels").get<std::vector<int>>();
  v.layers_per_block = value_or(c, "layers_per_block", 1);
  v.norm_num_groups = value_or(c, "norm_num_groups", 32);
  v.scaling_factor = value_or(c, "scaling_factor", 0.18215);
  v.shift_factor = value_or(c, "shift_factor", 0.0);
  v.use_quant_conv = value_or(c, "use_quant_conv", true);
  v.force_upcast = value_or(c, "force_upcast", true);
  v.sample_size = value_or(c, "sample_size", 32);
  return v;
}

json VaeConfig::to_json() const {
  std::vector<std::string> down(block_out_channels.size(), "DownEncoderBlock2D");
  std::vector<std::string> up(block_out_channels.size(), "UpDecoderBlock2D");
  json c = {{"_class_name", "AutoencoderKL"},
          {"in_channels", in_channels},
          {"out_channels", out_channels},
          {"latent_channels", latent_channels},
          {"block_out_channels", block_out_channels},
          {"down_block_types", down},
          {"up_block_types", up},
          {"layers_per_block", layers_per_block},
          {"norm_num_groups", norm_num_groups},
          {"scaling_factor", scaling_factor},
          {"force_upcast", force_upcast},
          {"sample_size", sample_size},
          {"act_fn", "silu"}};
  if (!use_quant_conv) {
    c["use_quant_conv"] = false;
    c["use_post_quant_conv"] = false;
  }
  if (shift_factor != 0.0) c["shift_factor"] = shift_factor;
  return c;
}

ClipTextConfig ClipTextConfig::from_json(const json& c) {
  ClipTextConfig t;
  // transformers >= 5 may nest the text config; accept both shapes.
  const json& cfg = c.contains("text_config") && c["text_config"].is_object() ? c["text_config"] : c;
  t.hidden_size = value_or(cfg, "hidden_size", 512);
  t.intermediate_size = value_or(cfg, "intermediate_size", 2048);
  t.num_attention_heads = value_or(cfg, "num_attention_heads", 8);
  t.num_hidden_layers = value_or(cfg, "num_hidden_layers", 12);
  t.vocab_size = value_or(cfg, "vocab_size", 49408);
  t.max_position_embeddings = value_or(cfg, "max_position_embeddings", 77);
  t.layer_norm_eps = value_or(cfg, "layer_norm_eps", 1e-5);
  t.hidden_act = value_or<std::string>(cfg, "hidden_act", "quick_gelu");
  t.projection_dim = value_or(cfg, "projection_dim", 512);
  t.eos_token_id = value_or(cfg, "eos_token_id", 49407);
  if (c.contains("architectures") && c["architectures"].is_array()) {
    for (const auto& a : c["architectures"]) {
      if (a.get<std::string>() == "CLIPTextModelWithProjection") t.with_projection = true;
    }
  }
  return t;
}

json ClipTextConfig::to_json() const {
  return {{"architectures", {with_projection ? "CLIPTextModelWithProjection" : "CLIPTextModel"}},
          {"model_type", "clip_text_model"},
          {"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"num_attention_heads", num_attention_heads},
          {"num_hidden_layers", num_hidden_layers},
          {"vocab_size", vocab_size},
          {"max_position_embeddings", max_position_embeddings},
          {"layer_norm_eps", layer_norm_eps},
          {"hidden_act", hidden_act},
          {"projection_dim", projection_dim},
          {"bos_token_id", vocab_size - 2},
          {"eos_token_id", eos_token_id},
          {"pad_token_id", 1}};
}

NoiseScheduleConfig NoiseScheduleConfig::from_json(const json& c) {
  NoiseScheduleConfig s;
  s.num_train_timesteps = value_or(c, "num_train_timesteps", 1000);
  s.beta_start = value_or(c, "beta_start", 0.00085);
  s.beta_end = value_or(c, "beta_end", 0.012);
  s.beta_schedule = value_or<std::string>(c, "beta_schedule", "scaled_linear");
  if (s.beta_schedule != "scaled_linear" && s.beta_schedule != "linear") {
    throw Error(ErrorCode::kUnsupported, "unsupported beta_schedule '" + s.beta_schedule + "'");
  }
  s.prediction = prediction_from_name(value_or<std::string>(c, "prediction_type", "epsilon"));
  return s;
}

json NoiseScheduleConfig::to_json() const {
  return {{"_class_name", "EulerDiscreteScheduler"},
          {"num_train_timesteps", num_train_timesteps},
          {"beta_start", beta_start},
          {"beta_end", beta_end},
          {"beta_schedule", beta_schedule},
          {"prediction_type", prediction_name(prediction)},
          {"steps_offset", 1},
          {"timestep_spacing", "leading"}};
}

}  // namespace df::engine
