// Embedding files: choosing the tensor an encoder takes and shaping it into vectors.
#include "engine/embeddings.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "engine/adapters/lora_names.h"
#include "engine/checkpoint.h"
#include "engine/safetensors.h"
#include "engine/tensor_file.h"

namespace df::engine {
namespace {

std::vector<std::string> sorted_names(const TensorFile& file) {
  std::vector<std::string> names;
  for (const auto& info : file.tensors()) names.push_back(info.name);
  std::sort(names.begin(), names.end());
  return names;
}

// ComfyUI's choice among the file's tensors (see load_embedding_vectors).
std::string chosen_tensor(const TensorFile& file, const std::string& key) {
  const std::vector<std::string> names = sorted_names(file);
  if (names.empty()) {
    throw Error(ErrorCode::kCorruptFile, "embedding '" + file.path() + "' holds no tensors");
  }
  for (const auto& name : names) {
    if (name.starts_with("string_to_param.")) return name;
  }
  return file.find(key) != nullptr ? key : names.front();
}

}  // namespace

std::string embedding_key(Family family, size_t encoder) {
  switch (text_encoder_kinds(family).at(encoder)) {
    case TextEncoderKind::kClipL:
      return "clip_l";
    case TextEncoderKind::kClipH:
      return "clip_h";
    default:
      return "clip_g";
  }
}

at::Tensor load_embedding_vectors(const std::string& path, const std::string& key) {
  check_weights_path(path, "an embedding (.safetensors, .pt, .bin)");
  const TensorFile file = TensorFile::open(path);
  const std::string name = chosen_tensor(file, key);
  TensorMap tensors = load_tensors_as(
      file, at::kFloat,
      [&](const std::string& stored) { return stored == name ? std::optional(stored) : std::nullopt; });
  const at::Tensor& tensor = tensors.at(name);
  if (!at::isFloatingType(tensor.scalar_type()) || tensor.numel() == 0 || tensor.dim() == 0) {
    throw Error(ErrorCode::kCorruptFile,
                "embedding '" + path + "': tensor '" + name + "' holds no floating vectors");
  }
  return tensor.reshape({-1, tensor.size(-1)}).clone();
}

}  // namespace df::engine
