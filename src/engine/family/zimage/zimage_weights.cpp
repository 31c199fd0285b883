// Loading Z-Image transformer weights and converting between the ComfyUI and diffusers namings.
#include "engine/family/zimage/zimage_weights.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <vector>

#include "core/error.h"
#include "engine/family/zimage/zimage_layout.h"
#include "engine/safetensors.h"
#include "engine/tensor_file.h"

namespace df::engine::zimage {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCheckpointPrefix = "model.diffusion_model.";

bool is_shard_name(const std::string& name) {
  static const std::regex shard("diffusion_pytorch_model-[0-9]+-of-[0-9]+\\.safetensors");
  return std::regex_match(name, shard);
}

// A file itself; in a diffusers folder diffusion_pytorch_model.safetensors or else its shards
// (never a variant such as diffusion_pytorch_model.fp16.safetensors, as diffusers without one).
std::vector<std::string> shard_paths(const std::string& path) {
  if (!fs::is_directory(path)) return {path};
  const fs::path single = fs::path(path) / "diffusion_pytorch_model.safetensors";
  if (fs::exists(single)) return {single.string()};
  std::vector<std::string> shards;
  for (const auto& entry : fs::directory_iterator(path)) {
    if (is_shard_name(entry.path().filename().string())) shards.push_back(entry.path().string());
  }
  if (shards.empty()) {
    throw Error(ErrorCode::kModelNotFound,
                "no diffusion_pytorch_model safetensors weights in '" + path + "'");
  }
  std::sort(shards.begin(), shards.end());
  return shards;
}

// Reads one file's transformer tensors under their stored names, less a checkpoint prefix.
void read_file_into(const std::string& path, at::ScalarType dtype, TensorMap& out) {
  const TensorFile file = TensorFile::open(path);
  const bool prefixed =
      std::any_of(file.tensors().begin(), file.tensors().end(),
                  [](const TensorInfo& t) { return t.name.starts_with(kCheckpointPrefix); });
  const TensorRename rename = [prefixed](const std::string& name) -> std::optional<std::string> {
    if (!prefixed) return name;
    if (!name.starts_with(kCheckpointPrefix)) return std::nullopt;
    return strip_checkpoint_prefix(name);
  };
  for (auto& [name, tensor] : load_tensors_as(file, dtype, rename)) {
    if (!out.emplace(name, tensor).second) {
      throw Error(ErrorCode::kCorruptFile,
                  "tensor '" + name + "' appears in two shards of '" + path + "'");
    }
  }
}

std::vector<std::string> names_of(const TensorMap& tensors) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : tensors) names.push_back(name);
  return names;
}

}  // namespace

TensorMap comfy_weights_from_diffusers(const TensorMap& diffusers) {
  TensorMap comfy;
  std::map<std::string, std::array<at::Tensor, 3>> qkv_parts;
  for (const auto& [name, tensor] : diffusers) {
    const ComfyPlace place = comfy_place_of_diffusers_name(name);
    if (place.qkv_part < 0) {
      comfy.emplace(place.name, tensor);
    } else {
      qkv_parts[place.name][place.qkv_part] = tensor;
    }
  }
  for (const auto& [name, parts] : qkv_parts) {
    for (const at::Tensor& part : parts) {
      if (!part.defined()) {
        throw Error(ErrorCode::kCorruptFile,
                    "Z-Image transformer: '" + name + "' lacks one of to_q/to_k/to_v");
      }
    }
    comfy.emplace(name, at::cat({parts[0], parts[1], parts[2]}, 0));
  }
  return comfy;
}

TensorMap diffusers_weights_from_comfy(const TensorMap& comfy, const ZImageConfig& config) {
  TensorMap diffusers;
  for (const auto& [name, tensor] : comfy) {
    int64_t row = 0;
    for (const DiffusersPart& part : diffusers_parts_of({name, tensor.sizes().vec()}, config)) {
      diffusers.emplace(part.name, tensor.dim() == 0 ? tensor : tensor.narrow(0, row, part.rows));
      row += part.rows;
    }
  }
  return diffusers;
}

TensorMap load_zimage_weights(const std::string& path, at::ScalarType dtype) {
  TensorMap stored;
  for (const std::string& shard : shard_paths(path)) read_file_into(shard, dtype, stored);
  if (has_diffusers_names(names_of(stored))) return comfy_weights_from_diffusers(stored);
  return stored;
}

ZImageConfig zimage_config_for(const std::string& path, const TensorMap& weights) {
  const fs::path config_json = fs::path(path) / "config.json";
  if (fs::is_directory(path) && fs::exists(config_json)) {
    std::ifstream in(config_json);
    nlohmann::json config;
    try {
      config = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorCode::kCorruptFile,
                  "'" + config_json.string() + "' is not valid JSON: " + e.what());
    }
    return ZImageConfig::from_diffusers_json(config);
  }
  ShapeIndex shapes;
  for (const auto& [name, tensor] : weights) shapes.emplace(name, tensor.sizes().vec());
  return ZImageConfig::infer_from_keys(shapes);
}

}  // namespace df::engine::zimage
