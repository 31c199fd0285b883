// Writes tiny standalone VAEs, embeddings and hypernetworks matched to the tiny test pipelines.
#include "engine/tiny_addons.h"

#include <filesystem>
#include <map>
#include <optional>
#include <vector>

#include "core/error.h"
#include "engine/key_index.h"
#include "engine/safetensors_file.h"
#include "engine/tiny_model.h"
#include "engine/weight_layout.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTestModelKey = "dreamforge_test_model";
// Add-on weights are wider than the pipelines' 0.02 so that their effect shows in tiny images.
constexpr double kAddonStd = 0.1;

bool is_test_file(const fs::path& path) {
  try {
    return SafetensorsFile::open(path.string()).metadata().count(kTestModelKey) > 0;
  } catch (const Error&) {
    return false;
  }
}

// diffusers resnet / attention part names -> LDM ones ("conv_shortcut" -> "nin_shortcut",
// "to_q" -> "q", "to_out.0" -> "proj_out", "group_norm" -> "norm").
std::string ldm_vae_part(const std::string& part) {
  static const std::map<std::string, std::string> renames = {
      {"conv_shortcut", "nin_shortcut"}, {"group_norm", "norm"}, {"to_q", "q"},
      {"to_k", "k"},                     {"to_v", "v"},          {"to_out.0", "proj_out"}};
  for (const auto& [diffusers, ldm] : renames) {
    if (part.starts_with(diffusers + ".")) return ldm + part.substr(diffusers.size());
  }
  return part;
}

}  // namespace

std::string diffusers_vae_key_to_ldm(const std::string& key, size_t num_blocks) {
  const auto parts = split_dots(key);
  if (parts[0] != "encoder" && parts[0] != "decoder") return key;  // quant_conv, post_quant_conv
  const std::string& side = parts[0];
  if (parts[1] == "conv_norm_out") return side + ".norm_out." + join_from(parts, 2);
  if (parts[1] == "mid_block") {
    const std::string rest = join_from(parts, 4);
    if (parts[2] == "resnets") return side + ".mid.block_" + std::to_string(std::stoi(parts[3]) + 1) + "." + rest;
    return side + ".mid.attn_1." + ldm_vae_part(rest);
  }
  if (parts[1] != "down_blocks" && parts[1] != "up_blocks") return key;  // conv_in, conv_out
  const bool encoder = parts[1] == "down_blocks";
  const size_t index = std::stoul(parts[2]);
  const std::string block = side + (encoder ? ".down." : ".up.") +
                            std::to_string(encoder ? index : num_blocks - 1 - index) + ".";
  if (parts[3] == "resnets") return block + "block." + parts[4] + "." + ldm_vae_part(join_from(parts, 5));
  return block + (encoder ? "downsample." : "upsample.") + join_from(parts, 5);
}

namespace {

bool is_attention_projection(const std::string& ldm_key) {
  const auto parts = split_dots(ldm_key);
  return ldm_key.find(".attn_1.") != std::string::npos && parts.back() == "weight" &&
         parts[parts.size() - 2] != "norm";
}

// One tensor of [rows, width] vectors.
RawTensor random_vectors(const std::string& name, int64_t rows, int64_t width, uint64_t seed) {
  return tiny_random_tensors({{name, {rows, width}}}, seed, kAddonStd).front();
}

}  // namespace

void write_test_file(const std::string& path, const std::string& what,
                     std::vector<RawTensor> tensors, std::map<std::string, std::string> metadata) {
  metadata[kTestModelKey] = "random weights";
  try {
    const fs::path target(path);
    if (fs::exists(target) && !is_test_file(target)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "'" + path + "' exists and is not a Dream Forge test " + what +
                      "; refusing to overwrite it");
    }
    if (target.has_parent_path()) fs::create_directories(target.parent_path());
    write_safetensors(path, std::move(tensors), metadata);
  } catch (const fs::filesystem_error& e) {
    throw Error(ErrorCode::kIo, "cannot write the test " + what + " to '" + path + "': " + e.what());
  }
}

void write_tiny_vae(const std::string& path, Family family, uint64_t seed) {
  write_tiny_vae_file(path, tiny_pipeline_config(family).vae, seed);
}

void write_tiny_vae_file(const std::string& path, const VaeConfig& config, uint64_t seed) {
  std::vector<RawTensor> tensors = tiny_random_tensors(vae_tensor_layout(config), seed);
  for (RawTensor& tensor : tensors) {
    tensor.name = diffusers_vae_key_to_ldm(tensor.name, config.block_out_channels.size());
    if (is_attention_projection(tensor.name)) tensor.shape.insert(tensor.shape.end(), {1, 1});
  }
  write_test_file(path, "VAE", std::move(tensors), {{"format", "pt"}});
}

void write_tiny_embedding(const std::string& path, Family family, uint64_t seed) {
  const PipelineConfig config = tiny_pipeline_config(family);
  constexpr int64_t kVectors = 2;
  std::vector<RawTensor> tensors;
  if (family == Family::kSDXL) {
    tensors.push_back(random_vectors("clip_l", kVectors, config.text_encoders[0].hidden_size, seed));
    tensors.push_back(random_vectors("clip_g", kVectors, config.text_encoders[1].hidden_size, seed + 1));
  } else {
    tensors.push_back(random_vectors("emb_params", kVectors, config.text_encoders[0].hidden_size, seed));
  }
  write_test_file(path, "embedding", std::move(tensors), {});
}

void write_tiny_hypernetwork(const std::string& path, Family family, uint64_t seed) {
  const int64_t width = tiny_pipeline_config(family).unet.cross_attention_dim;
  std::vector<TensorShape> layout;
  for (const char* side : {"0", "1"}) {
    const std::string prefix = std::to_string(width) + "." + side + ".linear.";
    layout.push_back({prefix + "0.weight", {2 * width, width}});
    layout.push_back({prefix + "0.bias", {2 * width}});
    layout.push_back({prefix + "2.weight", {width, 2 * width}});
    layout.push_back({prefix + "2.bias", {width}});
  }
  write_test_file(path, "hypernetwork", tiny_random_tensors(layout, seed, kAddonStd),
                  {{"activation_func", "relu"},
                   {"is_layer_norm", "False"},
                   {"use_dropout", "False"},
                   {"layer_structure", "[1, 2, 1]"}});
}

}  // namespace df::engine
