// Model loading: diffusers folders (plain, fp16, sharded) and single files, layout-checked.
#include "engine/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/error.h"
#include "engine/ldm_keys.h"
#include "engine/safetensors.h"
#include "engine/weight_layout.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kClipPad = "<|endoftext|>";
constexpr const char* kOpenClipPad = "!";

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw Error(ErrorCode::kCorruptFile,
                "the model is incomplete: '" + path.string() + "' is missing",
                {{"path", path.string()}});
  }
  json value = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!value.is_object()) {
    throw Error(ErrorCode::kCorruptFile, "'" + path.string() + "' is not a JSON object",
                {{"path", path.string()}});
  }
  return value;
}

// A component config, with the JSON library's type errors turned into a clear error.
template <typename Config>
Config parse_config(const fs::path& path) {
  const json value = read_json(path);
  try {
    return Config::from_json(value);
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kCorruptFile,
                "'" + path.string() + "' is not a valid config: " + e.what(),
                {{"path", path.string()}});
  }
}

std::string shape_text(at::IntArrayRef shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
  return text + "]";
}

// Every tensor the config implies must be present with its shape, and nothing else.
void check_layout(const TensorMap& tensors, const std::vector<TensorShape>& layout,
                  const std::string& what) {
  std::set<std::string> expected;
  for (const auto& entry : layout) {
    expected.insert(entry.name);
    auto it = tensors.find(entry.name);
    if (it == tensors.end()) {
      throw Error(ErrorCode::kCorruptFile, what + " lacks tensor '" + entry.name + "'");
    }
    if (it->second.sizes() != at::IntArrayRef(entry.shape)) {
      throw Error(ErrorCode::kCorruptFile, what + ": tensor '" + entry.name + "' has shape " +
                                               shape_text(it->second.sizes()) +
                                               " but its config needs " + shape_text(entry.shape));
    }
  }
  for (const auto& [name, tensor] : tensors) {
    if (!expected.count(name)) {
      throw Error(ErrorCode::kUnsupported,
                  what + " has tensor '" + name + "', which its config does not describe");
    }
  }
}

void check_layouts(const PipelineConfig& config, const TensorMap& unet, const TensorMap& vae,
                   const std::vector<TensorMap>& text_encoders, const std::string& source) {
  check_layout(unet, unet_tensor_layout(config.unet), "the UNet of '" + source + "'");
  check_layout(vae, vae_tensor_layout(config.vae), "the VAE of '" + source + "'");
  for (size_t i = 0; i < text_encoders.size(); ++i) {
    check_layout(text_encoders[i], clip_text_tensor_layout(config.text_encoders.at(i)),
                 "text encoder " + std::to_string(i + 1) + " of '" + source + "'");
  }
}

LoadedModel assemble(PipelineConfig config, TensorMap unet, TensorMap vae,
                     std::vector<TensorMap> text_encoders, const LoadOptions& options) {
  LoadedModel model;
  model.config = std::move(config);
  model.unet = Weights(std::move(unet));
  model.vae = Weights(std::move(vae));
  for (auto& tensors : text_encoders) model.text_encoders.emplace_back(std::move(tensors));
  if (options.device != at::Device(at::kCPU)) {
    model.unet.to(options.dtype, options.device);
    model.vae.to(options.dtype, options.device);
    for (auto& encoder : model.text_encoders) encoder.to(options.dtype, options.device);
  }
  return model;
}

// ---- diffusers folders ----

// The weights files holding one component's weights, and the file that identifies them.
struct ComponentFiles {
  std::vector<fs::path> files;
  std::map<std::string, std::string> shard_of;  // tensor -> file name, for sharded weights
  fs::path identity;                            // the single file, or the shard index
};

ComponentFiles sharded_files(const fs::path& index_path) {
  const json index = read_json(index_path);
  auto map = index.find("weight_map");
  if (map == index.end() || !map->is_object()) {
    throw Error(ErrorCode::kCorruptFile, "'" + index_path.string() + "' has no weight_map",
                {{"path", index_path.string()}});
  }
  ComponentFiles files;
  files.identity = index_path;
  std::set<std::string> names;
  for (const auto& [tensor, file] : map->items()) {
    const std::string name = file.is_string() ? file.get<std::string>() : "";
    if (name.empty() || fs::path(name).filename() != fs::path(name) || name == "." ||
        name == "..") {
      throw Error(ErrorCode::kCorruptFile,
                  "'" + index_path.string() + "' names shard '" + name + "' outside its folder",
                  {{"path", index_path.string()}});
    }
    files.shard_of[tensor] = name;
    if (names.insert(name).second) files.files.push_back(index_path.parent_path() / name);
  }
  return files;
}

// The weights as diffusers names them, safetensors before PyTorch .bin files as diffusers prefers.
ComponentFiles find_component_files(const fs::path& dir) {
  const std::pair<const char*, std::vector<const char*>> formats[] = {
      {".safetensors", {"diffusion_pytorch_model", "model"}},
      {".bin", {"diffusion_pytorch_model", "pytorch_model"}}};
  for (const auto& [extension, bases] : formats) {
    for (const char* base : bases) {
      for (const char* variant : {"", ".fp16"}) {
        const std::string stem = std::string(base) + variant + extension;
        const fs::path single = dir / stem;
        if (fs::is_regular_file(single)) return {{single}, {}, single};
        const fs::path index = dir / (stem + ".index.json");
        if (fs::is_regular_file(index)) return sharded_files(index);
      }
    }
  }
  throw Error(ErrorCode::kCorruptFile,
              "the model folder is incomplete: '" + dir.string() +
                  "' has no weights (diffusion_pytorch_model/model .safetensors or .bin)",
              {{"path", dir.string()}});
}

// Loads one component, renaming (and filtering) its tensors with `rename`.
TensorMap load_component(const ComponentFiles& files, at::ScalarType dtype,
                         const TensorRename& rename) {
  TensorMap tensors;
  for (const auto& path : files.files) {
    const TensorFile file = TensorFile::open(path.string());
    const std::string shard = path.filename().string();
    auto in_this_shard = [&](const std::string& name) -> std::optional<std::string> {
      if (!files.shard_of.empty()) {
        auto it = files.shard_of.find(name);
        if (it == files.shard_of.end() || it->second != shard) return std::nullopt;
      }
      return rename(name);
    };
    for (auto& [name, tensor] : load_tensors_as(file, dtype, in_this_shard)) {
      tensors.emplace(name, std::move(tensor));
    }
  }
  for (const auto& [name, shard] : files.shard_of) {
    const auto renamed = rename(name);
    if (renamed && !tensors.count(*renamed)) {
      throw Error(ErrorCode::kCorruptFile, "'" + files.identity.string() + "' places tensor '" +
                                               name + "' in '" + shard + "', which lacks it");
    }
  }
  return tensors;
}

std::optional<std::string> keep_name(const std::string& name) { return name; }

// Old diffusers VAE files name the mid-block attention projections query/key/value/proj_attn.
std::optional<std::string> modern_vae_name(const std::string& name) {
  static const std::map<std::string, std::string> renames = {
      {"query", "to_q"}, {"key", "to_k"}, {"value", "to_v"}, {"proj_attn", "to_out.0"}};
  const std::string marker = ".attentions.0.";
  const size_t at = name.find(marker);
  if (at == std::string::npos) return name;
  const size_t start = at + marker.size();
  const size_t dot = name.find('.', start);
  auto it = renames.find(name.substr(start, dot - start));
  if (it == renames.end()) return name;
  return name.substr(0, start) + it->second + name.substr(dot);
}

std::optional<std::string> text_encoder_name(const std::string& name) {
  if (name.size() >= 12 && name.compare(name.size() - 12, 12, "position_ids") == 0) {
    return std::nullopt;
  }
  return hf_clip_key(name);
}

bool has_component(const json& model_index, const fs::path& root, const std::string& name) {
  auto it = model_index.find(name);
  return it != model_index.end() && it->is_array() && !it->empty() && !it->front().is_null() &&
         fs::is_directory(root / name);
}

// special_tokens_map.json wins over tokenizer_config.json (spec 3.2); tokens may be objects.
std::optional<std::string> tokenizer_pad_token(const fs::path& dir) {
  for (const char* file : {"special_tokens_map.json", "tokenizer_config.json"}) {
    if (!fs::is_regular_file(dir / file)) continue;
    const json config = read_json(dir / file);
    auto pad = config.find("pad_token");
    if (pad == config.end()) continue;
    if (pad->is_string()) return pad->get<std::string>();
    if (pad->is_object() && pad->contains("content") && (*pad)["content"].is_string()) {
      return (*pad)["content"].get<std::string>();
    }
  }
  return std::nullopt;
}

LoadedModel load_diffusers_folder(const fs::path& root, const LoadOptions& options) {
  const json model_index = read_json(root / "model_index.json");
  const std::string pipeline = model_index.value("_class_name", std::string("unknown"));
  if (!has_component(model_index, root, "unet") || !has_component(model_index, root, "vae")) {
    throw Error(ErrorCode::kUnsupported,
                "diffusers pipeline '" + pipeline + "' in '" + root.string() +
                    "' is not supported: it needs unet/ and vae/",
                {{"path", root.string()}});
  }
  std::vector<std::string> encoders;
  for (const char* name : {"text_encoder", "text_encoder_2"}) {
    if (has_component(model_index, root, name)) encoders.push_back(name);
  }
  if (encoders.empty()) {
    throw Error(
        ErrorCode::kUnsupported,
        "diffusers pipeline '" + pipeline + "' in '" + root.string() + "' has no text encoder",
        {{"path", root.string()}});
  }

  PipelineConfig config;
  config.unet = parse_config<UNetConfig>(root / "unet" / "config.json");
  config.vae = parse_config<VaeConfig>(root / "vae" / "config.json");
  for (const auto& name : encoders) {
    config.text_encoders.push_back(parse_config<ClipTextConfig>(root / name / "config.json"));
  }
  if (fs::is_regular_file(root / "scheduler" / "scheduler_config.json")) {
    config.schedule =
        parse_config<NoiseScheduleConfig>(root / "scheduler" / "scheduler_config.json");
  }
  if (encoders.size() == 2) {
    config.family = Family::kSDXL;
  } else if (encoders[0] == "text_encoder_2") {
    config.family = Family::kSDXLRefiner;
  } else {
    // OpenCLIP (SD2) uses exact GELU; OpenAI's CLIP-L (SD1) quick GELU.
    config.family = config.text_encoders[0].hidden_act == "gelu" ? Family::kSD2 : Family::kSD1;
  }
  config.requires_aesthetics_score =
      model_index.value("requires_aesthetics_score", config.family == Family::kSDXLRefiner);

  const ComponentFiles unet_files = find_component_files(root / "unet");
  TensorMap unet = load_component(unet_files, options.dtype, keep_name);
  TensorMap vae =
      load_component(find_component_files(root / "vae"), options.dtype, modern_vae_name);
  std::vector<TensorMap> text_encoders;
  for (size_t i = 0; i < encoders.size(); ++i) {
    text_encoders.push_back(
        load_component(find_component_files(root / encoders[i]), options.dtype, text_encoder_name));
    config.text_encoders[i].with_projection = text_encoders.back().count("text_projection.weight");
  }
  check_layouts(config, unet, vae, text_encoders, root.string());

  LoadedModel model =
      assemble(config, std::move(unet), std::move(vae), std::move(text_encoders), options);
  for (size_t i = 0; i < encoders.size(); ++i) {
    const fs::path dir = root / (encoders[i] == "text_encoder" ? "tokenizer" : "tokenizer_2");
    // OpenCLIP encoders (exact GELU) pad with "!", OpenAI's CLIP-L with the end token.
    const bool open_clip = model.config.text_encoders[i].hidden_act == "gelu";
    const std::string fallback_pad = open_clip ? kOpenClipPad : kClipPad;
    if (fs::is_directory(dir)) {
      model.tokenizer_dirs.push_back(dir.string());
      model.pad_tokens.push_back(tokenizer_pad_token(dir).value_or(fallback_pad));
    } else if (!options.clip_vocab_dir.empty()) {
      model.tokenizer_dirs.push_back(options.clip_vocab_dir);
      model.pad_tokens.push_back(fallback_pad);
    } else {
      throw Error(ErrorCode::kCorruptFile,
                  "the model folder is incomplete: '" + dir.string() + "' is missing",
                  {{"path", dir.string()}});
    }
  }
  model.identity_file = unet_files.identity.string();
  return model;
}

// ---- single files ----

LoadedModel load_single_file(const fs::path& path, const LoadOptions& options) {
  const TensorFile file = TensorFile::open(path.string());
  PipelineConfig config = infer_single_file_config(file);
  SingleFileWeights weights = load_single_file_weights(file, config, options.dtype);
  check_layouts(config, weights.unet, weights.vae, weights.text_encoders, path.string());
  LoadedModel model = assemble(config, std::move(weights.unet), std::move(weights.vae),
                               std::move(weights.text_encoders), options);
  for (size_t i = 0; i < model.config.text_encoders.size(); ++i) {
    model.tokenizer_dirs.push_back(options.clip_vocab_dir);
    // Only SD1 and SDXL's first encoder are OpenAI's CLIP-L; the others are OpenCLIP models.
    const bool clip_l =
        model.config.family == Family::kSD1 || (model.config.family == Family::kSDXL && i == 0);
    model.pad_tokens.push_back(clip_l ? kClipPad : kOpenClipPad);
  }
  model.identity_file = path.string();
  return model;
}

}  // namespace

void check_tensor_layout(const TensorMap& tensors, const std::vector<TensorShape>& layout,
                         const std::string& what) {
  check_layout(tensors, layout, what);
}

void check_weights_path(const std::string& path_text, const std::string& expected) {
  if (!has_weights_extension(path_text)) {
    throw Error(ErrorCode::kUnsupported,
                "'" + path_text + "' is not a model format Dream Forge knows; expected " + expected,
                {{"path", path_text}});
  }
}

LoadedModel load_model(const std::string& path_text, const LoadOptions& options) {
  const fs::path path = fs::path(path_text).lexically_normal();
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) {
    throw Error(ErrorCode::kModelNotFound, "no model at '" + path_text + "'",
                {{"path", path_text}});
  }
  LoadedModel model;
  if (fs::is_directory(status)) {
    if (!fs::is_regular_file(path / "model_index.json")) {
      throw Error(ErrorCode::kUnsupported,
                  "'" + path_text +
                      "' is a folder without model_index.json; expected a diffusers pipeline "
                      "folder or a checkpoint file",
                  {{"path", path_text}});
    }
    model = load_diffusers_folder(path, options);
    model.name = (path.has_filename() ? path : path.parent_path()).filename().string();
  } else {
    check_weights_path(path_text, "a checkpoint (.safetensors, .ckpt, .pt, .pth, .bin) or a diffusers folder");
    model = load_single_file(path, options);
    model.name = path.stem().string();
  }
  return model;
}

}  // namespace df::engine
