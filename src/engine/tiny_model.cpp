// Writes tiny random-weight SD pipelines in diffusers layout (configs, safetensors, tokenizers).
#include "engine/tiny_model.h"

#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>
#include <random>
#include <vector>

#include "core/error.h"
#include "engine/safetensors_file.h"
#include "engine/tiny_tokenizer.h"
#include "engine/weight_layout.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kTestModelKey = "dreamforge_test_model";

// Every entry write_tiny_model creates at the top of its directory.
const std::vector<std::string>& tiny_model_entries() {
  static const std::vector<std::string> entries = {
      "model_index.json", "README.txt", "unet",        "vae",      "text_encoder",
      "text_encoder_2",   "tokenizer",  "tokenizer_2", "scheduler"};
  return entries;
}

ClipTextConfig tiny_text_config(const std::string& hidden_act, bool with_projection) {
  ClipTextConfig t;
  t.hidden_size = 32;
  t.intermediate_size = 37;
  t.num_attention_heads = 4;
  t.num_hidden_layers = 5;
  t.vocab_size = tiny_clip_vocab_size();
  t.max_position_embeddings = 77;
  t.hidden_act = hidden_act;
  t.projection_dim = 32;
  t.with_projection = with_projection;
  t.eos_token_id = t.vocab_size - 1;
  return t;
}

UNetConfig tiny_unet_config(Family family) {
  UNetConfig u;
  u.block_out_channels = {32, 64};
  u.layers_per_block = 2;
  u.norm_num_groups = 32;
  u.sample_size = 32;
  u.transformer_layers_per_block = {1, 1};
  if (family == Family::kSD2) {
    u.down_block_types = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D"};
    u.up_block_types = {"CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
  } else {
    u.down_block_types = {"DownBlock2D", "CrossAttnDownBlock2D"};
    u.up_block_types = {"CrossAttnUpBlock2D", "UpBlock2D"};
  }
  switch (family) {
    case Family::kSD1:
      u.num_attention_heads = {8, 8};
      u.cross_attention_dim = 32;
      break;
    case Family::kSD2:
      u.num_attention_heads = {2, 4};
      u.cross_attention_dim = 32;
      u.use_linear_projection = true;
      break;
    default:  // SDXL: text_time conditioning from 6 time ids (8 each) + the 32-wide pooled text.
      u.num_attention_heads = {2, 4};
      u.cross_attention_dim = 64;
      u.use_linear_projection = true;
      u.transformer_layers_per_block = {1, 2};
      u.addition_embed_type = "text_time";
      u.addition_time_embed_dim = 8;
      u.projection_class_embeddings_input_dim = 6 * 8 + 32;
      break;
  }
  return u;
}

VaeConfig tiny_vae_config(Family family) {
  VaeConfig v;
  // Four blocks like the real VAEs, so latents are 1/8 of the image size.
  v.block_out_channels = {32, 32, 64, 64};
  v.layers_per_block = 1;
  v.norm_num_groups = 32;
  v.sample_size = 32;
  v.scaling_factor = family == Family::kSDXL ? 0.13025 : 0.18215;
  return v;
}

// Deterministic normal samples: mt19937_64's output is fixed by the standard, and Box-Muller on
// top of it (unlike std::normal_distribution) is the same with every standard library.
class NormalSampler {
 public:
  explicit NormalSampler(uint64_t seed) : engine_(seed) {}

  float next(double stddev) {
    if (has_spare_) {
      has_spare_ = false;
      return static_cast<float>(spare_ * stddev);
    }
    const double radius = std::sqrt(-2.0 * std::log(uniform()));
    const double angle = 2.0 * std::numbers::pi * uniform();
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return static_cast<float>(radius * std::cos(angle) * stddev);
  }

 private:
  // Uniform in (0, 1): 53 random bits, centred in their interval so 0 never occurs.
  double uniform() { return (static_cast<double>(engine_() >> 11) + 0.5) * 0x1.0p-53; }

  std::mt19937_64 engine_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

void append_f32(std::vector<uint8_t>& bytes, float value) {
  const auto bits = std::bit_cast<uint32_t>(value);
  for (int shift = 0; shift < 32; shift += 8) bytes.push_back(static_cast<uint8_t>(bits >> shift));
}

// Each component draws from its own stream so adding one never changes another's weights.
uint64_t component_seed(uint64_t seed, int component) {
  return seed ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(component + 1));
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw Error(ErrorCode::kIo, "cannot write '" + path.string() + "'");
}

void write_json(const fs::path& path, const json& value) { write_text(path, value.dump(2) + "\n"); }

void write_weights(const fs::path& path, const std::vector<TensorShape>& layout, uint64_t seed) {
  const std::map<std::string, std::string> metadata = {{"format", "pt"},
                                                       {kTestModelKey, "random weights"}};
  write_safetensors(path.string(), tiny_random_tensors(layout, seed), metadata);
}

json model_index(const PipelineConfig& config) {
  const bool xl = config.family == Family::kSDXL;
  json index = {{"_class_name", xl ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline"},
                {"unet", {"diffusers", "UNet2DConditionModel"}},
                {"vae", {"diffusers", "AutoencoderKL"}},
                {"text_encoder", {"transformers", "CLIPTextModel"}},
                {"tokenizer", {"transformers", "CLIPTokenizer"}},
                {"scheduler", {"diffusers", "EulerDiscreteScheduler"}},
                {"feature_extractor", {nullptr, nullptr}},
                {"image_encoder", {nullptr, nullptr}},
                {kTestModelKey, true}};
  if (xl) {
    index["text_encoder_2"] = {"transformers", "CLIPTextModelWithProjection"};
    index["tokenizer_2"] = {"transformers", "CLIPTokenizer"};
    index["force_zeros_for_empty_prompt"] = true;
  } else {
    index["safety_checker"] = {nullptr, nullptr};
    index["requires_safety_checker"] = false;
  }
  return index;
}

std::string readme(Family family, uint64_t seed) {
  return "Dream Forge test model (" + family_name(family) + ", seed " + std::to_string(seed) +
         ").\n\n"
         "This is NOT a real Stable Diffusion model: every weight is random, drawn for testing.\n"
         "It has the diffusers folder layout and a tiny architecture so that the engine and the\n"
         "service can be exercised without downloads; its images are noise-like patterns.\n"
         "Written by `dreamforge model create-tiny`.\n";
}

// Makes `dir` ready to receive a tiny model: created if missing, emptied of an earlier tiny model,
// refused if it holds anything else.
void prepare_directory(const fs::path& dir) {
  if (fs::exists(dir) && !fs::is_directory(dir)) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + dir.string() + "' exists and is not a directory");
  }
  if (fs::exists(dir) && !fs::is_empty(dir)) {
    if (!is_tiny_model(dir.string())) {
      throw Error(ErrorCode::kInvalidArgument,
                  "'" + dir.string() +
                      "' is not empty and does not hold a Dream Forge test model; refusing to "
                      "overwrite it (choose a new or empty directory)");
    }
    for (const auto& entry : tiny_model_entries()) fs::remove_all(dir / entry);
  }
  fs::create_directories(dir);
}

void write_text_encoder(const fs::path& dir, const ClipTextConfig& config, uint64_t seed) {
  fs::create_directories(dir);
  write_json(dir / "config.json", config.to_json());
  write_weights(dir / "model.safetensors", clip_text_tensor_layout(config), seed);
}

void write_tiny_model_files(const fs::path& dir, const PipelineConfig& config, uint64_t seed) {
  write_json(dir / "model_index.json", model_index(config));
  write_text(dir / "README.txt", readme(config.family, seed));

  fs::create_directories(dir / "unet");
  write_json(dir / "unet" / "config.json", config.unet.to_json());
  write_weights(dir / "unet" / "diffusion_pytorch_model.safetensors",
                unet_tensor_layout(config.unet), component_seed(seed, 0));

  fs::create_directories(dir / "vae");
  write_json(dir / "vae" / "config.json", config.vae.to_json());
  write_weights(dir / "vae" / "diffusion_pytorch_model.safetensors", vae_tensor_layout(config.vae),
                component_seed(seed, 1));

  fs::create_directories(dir / "scheduler");
  write_json(dir / "scheduler" / "scheduler_config.json", config.schedule.to_json());

  // The first tokenizer pads with the end token (OpenAI CLIP); OpenCLIP ones (SD2, SDXL's
  // second) pad with "!".
  write_text_encoder(dir / "text_encoder", config.text_encoders[0], component_seed(seed, 2));
  write_tiny_clip_tokenizer((dir / "tokenizer").string(),
                            config.family == Family::kSD2 ? "!" : "<|endoftext|>");
  if (config.text_encoders.size() > 1) {
    write_text_encoder(dir / "text_encoder_2", config.text_encoders[1], component_seed(seed, 3));
    write_tiny_clip_tokenizer((dir / "tokenizer_2").string(), "!");
  }
}

}  // namespace

std::vector<RawTensor> tiny_random_tensors(const std::vector<TensorShape>& layout, uint64_t seed,
                                           double stddev) {
  NormalSampler sampler(seed);
  std::vector<RawTensor> tensors;
  tensors.reserve(layout.size());
  for (const auto& entry : layout) {
    int64_t count = 1;
    for (int64_t dim : entry.shape) count *= dim;
    const bool is_norm_scale = entry.shape.size() == 1 && entry.name.ends_with(".weight");
    RawTensor tensor{entry.name, "F32", entry.shape, {}};
    tensor.bytes.reserve(static_cast<size_t>(count) * 4);
    for (int64_t i = 0; i < count; ++i) {
      float value = 0.0f;
      if (entry.shape.size() > 1) {
        value = sampler.next(stddev);
      } else if (is_norm_scale) {
        value = 1.0f;
      }
      append_f32(tensor.bytes, value);
    }
    tensors.push_back(std::move(tensor));
  }
  return tensors;
}

PipelineConfig tiny_pipeline_config(Family family) {
  if (family != Family::kSD1 && family != Family::kSD2 && family != Family::kSDXL) {
    throw Error(ErrorCode::kUnsupported, "there is no tiny test model for the " +
                                             family_name(family) + " family; use sd1, sd2 or sdxl");
  }
  PipelineConfig config;
  config.family = family;
  config.unet = tiny_unet_config(family);
  config.vae = tiny_vae_config(family);
  switch (family) {
    case Family::kSD1:
      config.text_encoders = {tiny_text_config("quick_gelu", false)};
      break;
    case Family::kSD2:
      config.text_encoders = {tiny_text_config("gelu", false)};
      config.schedule.prediction = Prediction::kVPrediction;
      break;
    default:
      config.text_encoders = {tiny_text_config("quick_gelu", false),
                              tiny_text_config("gelu", true)};
      break;
  }
  return config;
}

void write_tiny_model(const std::string& dir, Family family, uint64_t seed,
                      int unet_in_channels) {
  PipelineConfig config = tiny_pipeline_config(family);
  config.unet.in_channels = unet_in_channels;
  write_tiny_pipeline(dir, config, seed);
}

void write_tiny_pipeline(const std::string& dir, const PipelineConfig& config, uint64_t seed) {
  try {
    prepare_directory(dir);
    write_tiny_model_files(dir, config, seed);
  } catch (const fs::filesystem_error& e) {
    throw Error(ErrorCode::kIo, "cannot write the test model to '" + dir + "': " + e.what());
  }
}

bool is_tiny_model(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "model_index.json");
  if (!in) return false;
  const json index = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!index.is_object()) return false;
  const auto label = index.find(kTestModelKey);
  return label != index.end() && *label == true;
}

}  // namespace df::engine
