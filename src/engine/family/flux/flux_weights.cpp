// FLUX.1 transformer weights from any supported layout, in BFL naming, with their config.
#include "engine/family/flux/flux_weights.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "core/error.h"
#include "engine/safetensors.h"
#include "engine/tensor_file.h"

namespace df::engine::flux {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kDiffusersWeights = "diffusion_pytorch_model.safetensors";

// Every tensor of `path` that `rename` keeps, floating tensors as `dtype`.
TensorMap read_tensors(const std::string& path, at::ScalarType dtype, const TensorRename& rename) {
  return load_tensors_as(TensorFile::open(path), dtype, rename);
}

// The prefix ("" or "....") under which the file holds both `anchor` and `companion`.
std::optional<std::string> prefix_of(const TensorFile& file, const std::string& anchor,
                                     const std::string& companion) {
  for (const TensorInfo& tensor : file.tensors()) {
    const std::string& name = tensor.name;
    if (name.size() < anchor.size() ||
        name.compare(name.size() - anchor.size(), anchor.size(), anchor) != 0) {
      continue;
    }
    const std::string prefix = name.substr(0, name.size() - anchor.size());
    if ((prefix.empty() || prefix.back() == '.') && file.find(prefix + companion) != nullptr) {
      return prefix;
    }
  }
  return std::nullopt;
}

// Names under `prefix`, without it; others skipped.
TensorRename strip_prefix(const std::string& prefix) {
  return [prefix](const std::string& name) -> std::optional<std::string> {
    if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
    return name.substr(prefix.size());
  };
}

KeyShapes shapes_under(const TensorFile& file, const std::string& prefix) {
  KeyShapes shapes;
  const TensorRename rename = strip_prefix(prefix);
  for (const TensorInfo& tensor : file.tensors()) {
    if (const auto name = rename(tensor.name)) shapes.emplace(*name, tensor.shape);
  }
  return shapes;
}

json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::kCorruptFile, "cannot read '" + path.string() + "'");
  try {
    return json::parse(in);
  } catch (const json::exception&) {
    throw Error(ErrorCode::kCorruptFile, "'" + path.string() + "' is not valid JSON");
  }
}

// The shard files a diffusers .safetensors.index.json names, each once.
std::vector<fs::path> shard_paths(const fs::path& index_path) {
  const json index = read_json_file(index_path);
  if (!index.contains("weight_map") || !index.at("weight_map").is_object()) {
    throw Error(ErrorCode::kCorruptFile, "'" + index_path.string() + "' has no weight_map");
  }
  std::set<std::string> names;
  for (const auto& [tensor, shard] : index.at("weight_map").items()) {
    const std::string name = shard.is_string() ? shard.get<std::string>() : "";
    if (name.empty() || fs::path(name).filename() != fs::path(name) || name == "..") {
      throw Error(ErrorCode::kCorruptFile,
                  "'" + index_path.string() + "' names an invalid shard for '" + tensor + "'");
    }
    names.insert(name);
  }
  std::vector<fs::path> paths;
  for (const std::string& name : names) paths.push_back(index_path.parent_path() / name);
  return paths;
}

std::vector<fs::path> diffusers_weight_files(const fs::path& dir) {
  if (fs::is_regular_file(dir / kDiffusersWeights)) return {dir / kDiffusersWeights};
  const fs::path index = dir / (std::string(kDiffusersWeights) + ".index.json");
  if (fs::is_regular_file(index)) return shard_paths(index);
  throw Error(ErrorCode::kCorruptFile,
              "'" + dir.string() + "' has neither " + kDiffusersWeights + " nor its index");
}

const TensorRename keep_all = [](const std::string& name) -> std::optional<std::string> {
  return name;
};

}  // namespace

TensorMap assemble_tensors(const TensorMap& source, const std::vector<TensorAssembly>& plan) {
  TensorMap out;
  for (const TensorAssembly& assembly : plan) {
    std::vector<at::Tensor> parts;
    for (const RowSlice& part : assembly.parts) {
      const auto it = source.find(part.source);
      if (it == source.end()) {
        throw Error(ErrorCode::kCorruptFile, "FLUX transformer weights lack '" + part.source + "'");
      }
      const at::Tensor& tensor = it->second;
      if (tensor.dim() == 0 || tensor.size(0) < part.first_row + part.rows) {
        throw Error(ErrorCode::kCorruptFile,
                    "FLUX transformer tensor '" + part.source + "' has shape " +
                        c10::str(tensor.sizes()) + ", too few rows for '" + assembly.target + "'");
      }
      parts.push_back(tensor.narrow(0, part.first_row, part.rows));
    }
    out.emplace(assembly.target, parts.size() == 1 ? parts[0] : at::cat(parts, 0));
  }
  return out;
}

FluxTransformerWeights flux_keys_from_file(const std::string& path, at::ScalarType dtype) {
  const TensorFile file = TensorFile::open(path);
  if (const auto prefix = prefix_of(file, "img_in.weight", "final_layer.linear.weight")) {
    if (file.find(*prefix + "vector_in.in_layer.weight") == nullptr) {
      throw Error(ErrorCode::kUnsupported,
                  "'" + path + "' holds a FLUX-like transformer without FLUX.1's pooled-text "
                  "embedder vector_in (FLUX.2, Chroma), which is not supported");
    }
    const FluxConfig config = FluxConfig::infer_from_keys(shapes_under(file, *prefix));
    return {config, load_tensors_as(file, dtype, strip_prefix(*prefix))};
  }
  if (const auto prefix = prefix_of(file, "x_embedder.weight", "context_embedder.weight")) {
    const FluxConfig config = infer_from_diffusers_keys(shapes_under(file, *prefix));
    const TensorMap diffusers = load_tensors_as(file, dtype, strip_prefix(*prefix));
    return {config, assemble_tensors(diffusers, flux_bfl_from_diffusers(config))};
  }
  throw Error(ErrorCode::kCorruptFile,
              "'" + path + "' holds no FLUX transformer (neither img_in nor x_embedder weights)");
}

FluxTransformerWeights load_flux_diffusers_folder(const std::string& dir, at::ScalarType dtype) {
  fs::path folder(dir);
  if (!fs::is_regular_file(folder / "config.json") &&
      fs::is_regular_file(folder / "transformer" / "config.json")) {
    folder /= "transformer";
  }
  const FluxConfig config = FluxConfig::from_diffusers_json(read_json_file(folder / "config.json"));
  TensorMap diffusers;
  for (const fs::path& file : diffusers_weight_files(folder)) {
    for (auto& [name, tensor] : read_tensors(file.string(), dtype, keep_all)) {
      diffusers.insert_or_assign(name, std::move(tensor));
    }
  }
  return {config, assemble_tensors(diffusers, flux_bfl_from_diffusers(config))};
}

FluxTransformerWeights load_flux_transformer(const std::string& path, at::ScalarType dtype) {
  if (fs::is_directory(path)) return load_flux_diffusers_folder(path, dtype);
  return flux_keys_from_file(path, dtype);
}

}  // namespace df::engine::flux
