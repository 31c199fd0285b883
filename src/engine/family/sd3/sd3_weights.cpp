// SD3 MMDiT weights from single files (Stability names) and diffusers folders (renamed on load).
#include "engine/family/sd3/sd3_weights.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <unordered_set>

#include "core/error.h"
#include "engine/family/sd3/sd3_keys.h"
#include "engine/fp8_weights.h"
#include "engine/safetensors.h"

namespace df::engine::sd3 {
namespace {

namespace fs = std::filesystem;

// The only place this family reads tensors from a file.
TensorMap read_tensors(const TensorFile& file, at::ScalarType dtype, const TensorRename& rename) {
  return load_tensors_as(file, dtype, rename);
}

// The MMDiT's tensors of a single file under their own names (prefix stripped), shapes only;
// quantized weights' scales and markers are not model tensors.
std::vector<TensorShape> own_tensor_shapes(const TensorFile& file, bool prefixed) {
  std::vector<TensorShape> shapes;
  for (const TensorInfo& info : file.tensors()) {
    if (is_quantization_companion(file, info.name)) continue;
    if (auto own = strip_single_file_prefix(info.name, prefixed)) {
      shapes.push_back({std::move(*own), info.shape});
    }
  }
  return shapes;
}

// diffusers' default weights file or one of its shards (not a variant such as ".fp16").
bool is_default_weights_file(const std::string& name) {
  return name == "diffusion_pytorch_model.safetensors" ||
         (name.starts_with("diffusion_pytorch_model-") && name.ends_with(".safetensors"));
}

// The weights files of a diffusers model folder, sorted (shards in order).
std::vector<std::string> diffusers_weight_files(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    if (is_default_weights_file(it->path().filename().string())) {
      files.push_back(it->path().string());
    }
  }
  if (files.empty()) {
    throw Error(ErrorCode::kIo, "no diffusion_pytorch_model.safetensors in '" + dir + "'");
  }
  std::sort(files.begin(), files.end());
  return files;
}

Sd3Config read_diffusers_config(const std::string& dir) {
  std::ifstream in(dir + "/config.json");
  if (!in) throw Error(ErrorCode::kIo, "cannot read '" + dir + "/config.json'");
  const nlohmann::json config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) {
    throw Error(ErrorCode::kCorruptFile, "'" + dir + "/config.json' is not valid JSON");
  }
  return Sd3Config::from_diffusers_json(config);
}

at::Tensor swapped_halves(const at::Tensor& t) {
  const auto halves = t.chunk(2, 0);
  return at::cat({halves[1], halves[0]}, 0);
}

// The rule's parts along the first dimension; parts that cannot join are a corrupt file.
at::Tensor concatenated(const KeyRule& rule, const std::vector<at::Tensor>& parts) {
  if (parts.size() == 1) return parts[0];
  try {
    return at::cat(parts, 0);
  } catch (const c10::Error&) {
    throw Error(ErrorCode::kCorruptFile, "the diffusers parts of SD3 transformer tensor '" +
                                             rule.original + "' have mismatched shapes");
  }
}

}  // namespace

Sd3Checkpoint read_sd3_single_file(const TensorFile& file, at::ScalarType dtype) {
  std::vector<std::string> names;
  for (const TensorInfo& info : file.tensors()) names.push_back(info.name);
  const bool prefixed = has_single_file_prefix(names);
  const std::vector<TensorShape> shapes = own_tensor_shapes(file, prefixed);
  if (!is_sd3_mmdit(shapes)) {
    throw Error(ErrorCode::kUnsupported, "'" + file.path() + "' holds no SD3 MMDiT");
  }
  Sd3Config config = Sd3Config::infer_from_keys(shapes);
  TensorMap tensors = read_tensors(file, dtype, [prefixed](const std::string& name) {
    return strip_single_file_prefix(name, prefixed);
  });
  return {std::move(config), Weights(std::move(tensors))};
}

Sd3Checkpoint read_sd3_diffusers_folder(const std::string& dir, at::ScalarType dtype) {
  Sd3Config config = read_diffusers_config(dir);
  TensorMap diffusers;
  for (const std::string& path : diffusers_weight_files(dir)) {
    TensorMap shard = read_tensors(TensorFile::open(path), dtype,
                                   [](const std::string& name) { return name; });
    diffusers.merge(shard);
  }
  TensorMap original = sd3_original_from_diffusers(config, diffusers);
  return {std::move(config), Weights(std::move(original))};
}

Sd3Checkpoint load_sd3_transformer(const std::string& path, at::ScalarType dtype) {
  if (!fs::is_directory(path)) return read_sd3_single_file(TensorFile::open(path), dtype);
  const bool pipeline = fs::is_directory(path + "/transformer");
  return read_sd3_diffusers_folder(pipeline ? path + "/transformer" : path, dtype);
}

TensorMap sd3_original_from_diffusers(const Sd3Config& config, const TensorMap& diffusers) {
  TensorMap original;
  std::unordered_set<std::string> used;
  for (const KeyRule& rule : sd3_key_rules(config)) {
    std::vector<at::Tensor> parts;
    for (const std::string& name : rule.diffusers) {
      const auto it = diffusers.find(name);
      if (it == diffusers.end()) {
        throw Error(ErrorCode::kCorruptFile, "SD3 transformer weights lack tensor '" + name + "'");
      }
      parts.push_back(it->second);
      used.insert(name);
    }
    const at::Tensor joined = concatenated(rule, parts);
    original[rule.original] = rule.swap_halves ? swapped_halves(joined) : joined;
  }
  for (const auto& [name, tensor] : diffusers) {
    if (!used.contains(name)) {
      throw Error(ErrorCode::kCorruptFile,
                  "unexpected tensor '" + name + "' for this SD3 transformer config");
    }
  }
  return original;
}

}  // namespace df::engine::sd3
