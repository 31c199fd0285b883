// ControlNet files: layout detection, original-to-diffusers names, configs from shapes or
// metadata, and loading onto the runtime placement.
#include "engine/control/controlnet_loader.h"

#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "engine/checkpoint_bundle.h"
#include "engine/control/t2i_adapter.h"
#include "engine/key_index.h"
#include "engine/ldm_keys.h"
#include "engine/safetensors.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDiffusersWeightsFile = "diffusion_pytorch_model.safetensors";
constexpr const char* kDifferenceMarker = "difference";
constexpr int kSdxlTimeEmbedDim = 256;

Error unsupported(const std::string& path, const std::string& what) {
  return Error(ErrorCode::kUnsupported, "'" + path + "' " + what);
}

// The first name parts of a file's tensors ("input_blocks", "zero_convs", ...), for messages.
std::string tensor_groups(const TensorFile& file) {
  std::set<std::string> groups;
  for (const auto& info : file.tensors()) groups.insert(split_dots(info.name).front());
  std::string text;
  for (const auto& group : groups) text += (text.empty() ? "" : ", ") + group;
  return text.empty() ? "no tensors" : text;
}

// Input blocks per level of an original-layout UNet: the blocks before the first downsampler,
// less conv_in (all but conv_in when there is a single level).
int original_layers_per_block(const KeyIndex& keys, const std::string& prefix) {
  const int blocks = keys.count_indexed(prefix + "input_blocks.");
  for (int i = 1; i < blocks; ++i) {
    if (keys.has(prefix + "input_blocks." + std::to_string(i) + ".0.op.weight")) return i - 1;
  }
  return blocks - 1;
}

// The index of the last convolution of the original hint encoder (input_hint_block.N).
int last_hint_convolution(const KeyIndex& keys, const std::string& prefix) {
  int last = -1;
  for (int i = 0; keys.has_prefix(prefix + "input_hint_block." + std::to_string(i) + "."); i += 2) {
    last = i;
  }
  return last;
}

// Original ControlNet names (without the prefix) -> diffusers names; nullopt for other tensors.
std::optional<std::string> original_to_diffusers(const std::string& key, int layers_per_block,
                                                 int last_hint) {
  const auto parts = split_dots(key);
  if (parts.size() >= 3 && parts[0] == "input_hint_block") {
    const auto index = parse_index(parts[1]);
    if (!index || *index % 2 != 0) return std::nullopt;
    const std::string conv = *index == 0           ? "conv_in"
                             : *index == last_hint ? "conv_out"
                                                   : "blocks." + std::to_string(*index / 2 - 1);
    return "controlnet_cond_embedding." + conv + "." + join_from(parts, 2);
  }
  if (parts.size() == 4 && parts[0] == "zero_convs" && parts[2] == "0") {
    return "controlnet_down_blocks." + parts[1] + "." + parts[3];
  }
  if (parts.size() == 3 && parts[0] == "middle_block_out" && parts[1] == "0") {
    return "controlnet_mid_block." + parts[2];
  }
  return ldm_unet_key_to_diffusers(key, layers_per_block);
}

// The one place ControlNet tensors are read from a file.
TensorMap read_tensors(const TensorFile& file, at::ScalarType dtype,
                       const TensorRename& rename) {
  return load_tensors_as(file, dtype, rename);
}

const at::Tensor& tensor(const TensorMap& tensors, const std::string& name, int64_t rank,
                         const std::string& path) {
  const auto it = tensors.find(name);
  if (it == tensors.end() || it->second.dim() != rank) {
    throw Error(ErrorCode::kCorruptFile,
                "'" + path + "' lacks the ControlNet tensor '" + name + "' (rank " +
                    std::to_string(rank) + ")");
  }
  return it->second;
}

int dim(const TensorMap& tensors, const std::string& name, int64_t rank, int64_t index,
        const std::string& path) {
  return static_cast<int>(tensor(tensors, name, rank, path).size(index));
}

int count_indexed(const TensorMap& tensors, const std::string& prefix, const std::string& suffix) {
  int n = 0;
  while (tensors.count(prefix + std::to_string(n) + suffix)) ++n;
  return n;
}

int heads_of_width_64(int channels, const std::string& path) {
  if (channels % 64 != 0) {
    throw unsupported(path, "has " + std::to_string(channels) +
                                " channels, which do not split into 64-wide attention heads; "
                                "store its config as metadata '" +
                                kControlNetConfigMetadata + "'");
  }
  return channels / 64;
}

// The diffusers config of diffusers-named ControlNet weights, from their shapes.
ControlNetConfig infer_config(const TensorMap& w, const std::string& path) {
  ControlNetConfig c;
  UNetConfig& u = c.unet;
  u.in_channels = dim(w, "conv_in.weight", 4, 1, path);
  const int levels = count_indexed(w, "down_blocks.", ".resnets.0.conv2.weight");
  u.layers_per_block = count_indexed(w, "down_blocks.0.resnets.", ".conv2.weight");
  if (levels < 1 || u.layers_per_block < 1) {
    throw unsupported(path, "has a ControlNet block layout this engine does not know");
  }
  const std::string mid = "mid_block.attentions.0.";
  u.cross_attention_dim = dim(w, mid + "transformer_blocks.0.attn2.to_k.weight", 2, 1, path);
  const auto proj_in = w.find(mid + "proj_in.weight");
  if (proj_in == w.end()) throw unsupported(path, "has no mid-block attention (" + mid + "proj_in)");
  u.use_linear_projection = proj_in->second.dim() == 2;
  if (w.count("add_embedding.linear_1.weight")) {
    u.addition_embed_type = "text_time";
    u.addition_time_embed_dim = kSdxlTimeEmbedDim;
    u.projection_class_embeddings_input_dim = dim(w, "add_embedding.linear_1.weight", 2, 1, path);
  }
  const bool sd1 = controlnet_family(c) == Family::kSD1;
  for (int level = 0; level < levels; ++level) {
    const std::string block = "down_blocks." + std::to_string(level) + ".";
    u.block_out_channels.push_back(dim(w, block + "resnets.0.conv2.weight", 4, 0, path));
    const std::string attention = block + "attentions.0.";
    const bool cross = w.count(attention + "proj_in.weight") > 0;
    u.down_block_types.push_back(cross ? "CrossAttnDownBlock2D" : "DownBlock2D");
    u.up_block_types.push_back("UpBlock2D");
    u.transformer_layers_per_block.push_back(
        cross ? count_indexed(w, attention + "transformer_blocks.", ".norm1.weight") : 1);
    u.num_attention_heads.push_back(sd1 ? 8 : heads_of_width_64(u.block_out_channels.back(), path));
  }
  c.conditioning_channels = dim(w, "controlnet_cond_embedding.conv_in.weight", 4, 1, path);
  c.conditioning_embedding_out_channels = {
      dim(w, "controlnet_cond_embedding.conv_in.weight", 4, 0, path)};
  const int blocks = count_indexed(w, "controlnet_cond_embedding.blocks.", ".weight");
  for (int i = 1; i < blocks; i += 2) {
    c.conditioning_embedding_out_channels.push_back(
        dim(w, "controlnet_cond_embedding.blocks." + std::to_string(i) + ".weight", 4, 0, path));
  }
  return c;
}

std::optional<nlohmann::json> config_beside(const fs::path& weights_file) {
  const fs::path config = weights_file.parent_path() / "config.json";
  if (!fs::is_regular_file(config)) return std::nullopt;
  std::ifstream in(config);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kCorruptFile, "'" + config.string() + "' is no JSON: " + e.what());
  }
}

// ComfyUI turns on global average pooling for files named like the shuffle ControlNets.
bool is_named_shuffle(const fs::path& weights_file) {
  const std::string stem = weights_file.stem().string();
  return stem.ends_with("_shuffle") || stem.ends_with("_shuffle_fp16");
}

fs::path weights_file_of(const std::string& path) {
  const fs::path p(path);
  if (fs::is_directory(p)) return p / kDiffusersWeightsFile;
  return p;
}

}  // namespace

ControlNetFileLayout detect_controlnet_layout(const TensorFile& file) {
  const KeyIndex keys(file);
  if (keys.has("lora_controlnet")) {
    throw unsupported(file.path(), "is a Control-LoRA, which this engine does not support");
  }
  if (keys.has("controlnet_cond_embedding.conv_in.weight")) {
    return {ControlNetNaming::kDiffusers, ""};
  }
  if (keys.has("control_model.zero_convs.0.0.weight")) {
    return {ControlNetNaming::kOriginal, "control_model."};
  }
  if (keys.has("zero_convs.0.0.weight")) return {ControlNetNaming::kOriginal, ""};
  if (is_t2i_adapter(file)) throw unsupported(file.path(), "is a T2I adapter, not a ControlNet");
  throw unsupported(file.path(), "holds no ControlNet (tensor groups: " + tensor_groups(file) + ")");
}

Family controlnet_family(const ControlNetConfig& config) {
  const UNetConfig& u = config.unet;
  switch (u.cross_attention_dim) {
    case 768: return Family::kSD1;
    case 1024: return Family::kSD2;
    case 2048: return Family::kSDXL;
    default: break;
  }
  if (u.addition_embed_type == "text_time") return Family::kSDXL;
  return u.use_linear_projection ? Family::kSD2 : Family::kSD1;
}

ControlNetFile read_controlnet(const std::string& path, at::ScalarType dtype) {
  const fs::path weights_path = weights_file_of(path);
  if (!fs::exists(weights_path)) {
    throw Error(ErrorCode::kModelNotFound, "ControlNet '" + weights_path.string() + "' not found");
  }
  const TensorFile file = TensorFile::open(weights_path.string());
  const ControlNetFileLayout layout = detect_controlnet_layout(file);
  ControlNetFile loaded;
  std::optional<nlohmann::json> config = metadata_config(file, kControlNetConfigMetadata);
  if (layout.naming == ControlNetNaming::kDiffusers) {
    if (auto beside = config_beside(weights_path)) config = std::move(beside);
    loaded.weights = read_tensors(file, dtype, [](const std::string& key) {
      return std::optional<std::string>(key);
    });
  } else {
    const KeyIndex keys(file);
    const int layers = original_layers_per_block(keys, layout.prefix);
    const int last_hint = last_hint_convolution(keys, layout.prefix);
    loaded.difference = !layout.prefix.empty() && keys.has(kDifferenceMarker);
    loaded.weights = read_tensors(file, dtype, [&](const std::string& key) -> std::optional<std::string> {
      if (!key.starts_with(layout.prefix)) return std::nullopt;
      return original_to_diffusers(key.substr(layout.prefix.size()), layers, last_hint);
    });
  }
  loaded.config = config ? ControlNetConfig::from_json(*config) : infer_config(loaded.weights, path);
  if (is_named_shuffle(weights_path)) loaded.config.global_pool_conditions = true;
  loaded.family = controlnet_family(loaded.config);
  return loaded;
}

std::shared_ptr<const ControlNet> load_controlnet(const std::string& path,
                                                  const std::string& device,
                                                  const std::string& dtype,
                                                  const Weights* difference_base) {
  ControlNetFile file = read_controlnet(path, at::kFloat);
  if (file.difference && difference_base) {
    for (auto& [name, weight] : file.weights) {
      if (difference_base->has(name)) {
        weight = weight + difference_base->get(name).to(at::kCPU, at::kFloat);
      }
    }
  }
  const RuntimePlacement placement = resolve_placement(device, dtype, file.family);
  Weights weights(std::move(file.weights));
  weights.to(placement.dtype, placement.device);
  return std::make_shared<const ControlNet>(std::move(file.config), std::move(weights));
}

std::shared_ptr<const ControlModel> load_control_model(const std::string& path,
                                                       const std::string& device,
                                                       const std::string& dtype,
                                                       const Weights* difference_base) {
  if (fs::is_regular_file(path) && is_t2i_adapter(TensorFile::open(path))) {
    return load_t2i_adapter(path, device, dtype);
  }
  return load_controlnet(path, device, dtype, difference_base);
}

}  // namespace df::engine
