// Architecture descriptions of the SD model components, read from diffusers config.json files
// or inferred from single-file checkpoints.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::engine {

enum class Family { kSD1, kSD2, kSDXL, kSDXLRefiner, kFlux, kSD3, kZImage };
// kEdm: EDM's denoiser output, x * c_skip + out * c_out (ModelSamplingContinuousEDM "edm").
// kFlow: a flow-matching velocity, x0 = x - out * sigma (ComfyUI's CONST).
enum class Prediction { kEpsilon, kVPrediction, kSample, kEdm, kFlow };

// "sd1", "sd2", "sdxl", "sdxl_refiner", "flux", "sd3", "zimage"
std::string family_name(Family family);
Family family_from_name(const std::string& name);
std::string prediction_name(Prediction prediction);  // "epsilon", "v_prediction", "sample"
Prediction prediction_from_name(const std::string& name);

// diffusers UNet2DConditionModel. Per-block vectors are expanded to one entry per down block.
struct UNetConfig {
  int in_channels = 4;
  int out_channels = 4;
  std::vector<int> block_out_channels;
  std::vector<std::string> down_block_types;  // "CrossAttnDownBlock2D" | "DownBlock2D"
  std::vector<std::string> up_block_types;    // "CrossAttnUpBlock2D" | "UpBlock2D"
  int layers_per_block = 2;
  std::vector<int> num_attention_heads;           // per down block ("attention_head_dim" in diffusers)
  std::vector<int> transformer_layers_per_block;  // per down block
  int cross_attention_dim = 768;
  bool use_linear_projection = false;
  int norm_num_groups = 32;
  double norm_eps = 1e-5;
  bool flip_sin_to_cos = true;
  int freq_shift = 0;
  std::string addition_embed_type;  // "" or "text_time"
  std::string class_embed_type;     // "" or "projection" (SD2.1 unCLIP's image embedding input)
  int addition_time_embed_dim = 0;
  int projection_class_embeddings_input_dim = 0;
  int sample_size = 64;

  static UNetConfig from_json(const nlohmann::json& config);
  nlohmann::json to_json() const;
};

// diffusers AutoencoderKL.
struct VaeConfig {
  int in_channels = 3;
  int out_channels = 3;
  int latent_channels = 4;
  std::vector<int> block_out_channels;
  int layers_per_block = 2;
  int norm_num_groups = 32;
  double scaling_factor = 0.18215;
  double shift_factor = 0.0;    // FLUX/SD3 VAEs: latents are shifted before scaling
  bool use_quant_conv = true;   // quant_conv / post_quant_conv (FLUX/SD3 VAEs have neither)
  bool force_upcast = true;
  int sample_size = 512;

  static VaeConfig from_json(const nlohmann::json& config);
  nlohmann::json to_json() const;
};

// transformers CLIPTextConfig (+ CLIPTextModelWithProjection).
struct ClipTextConfig {
  int hidden_size = 768;
  int intermediate_size = 3072;
  int num_attention_heads = 12;
  int num_hidden_layers = 12;
  int vocab_size = 49408;
  int max_position_embeddings = 77;
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";  // "quick_gelu" | "gelu"
  int projection_dim = 768;
  bool with_projection = false;  // has text_projection (SDXL text_encoder_2)
  int eos_token_id = 49407;

  static ClipTextConfig from_json(const nlohmann::json& config);
  nlohmann::json to_json() const;
};

// The training noise schedule (scheduler_config.json); the sampler choice is separate.
struct NoiseScheduleConfig {
  int num_train_timesteps = 1000;
  double beta_start = 0.00085;
  double beta_end = 0.012;
  std::string beta_schedule = "scaled_linear";
  Prediction prediction = Prediction::kEpsilon;

  static NoiseScheduleConfig from_json(const nlohmann::json& config);
  nlohmann::json to_json() const;
};

// Everything needed to build a pipeline's modules.
struct PipelineConfig {
  Family family = Family::kSD1;
  UNetConfig unet;
  VaeConfig vae;
  std::vector<ClipTextConfig> text_encoders;  // 1 (SD1/SD2/refiner) or 2 (SDXL: L then bigG)
  NoiseScheduleConfig schedule;
  bool requires_aesthetics_score = false;  // SDXL refiner
};

}  // namespace df::engine
