// Tensor-name helpers shared by the weights-file readers (no libtorch needed).
#include "engine/key_index.h"

#include <charconv>

#include "core/error.h"

namespace df::engine {

std::vector<std::string> split_dots(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

std::string join_from(const std::vector<std::string>& parts, size_t from) {
  std::string out;
  for (size_t i = from; i < parts.size(); ++i) out += (i > from ? "." : "") + parts[i];
  return out;
}

std::optional<int> parse_index(const std::string& text) {
  int value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < 0) return std::nullopt;
  return value;
}

std::optional<nlohmann::json> metadata_config(const TensorFile& file, const char* key) {
  auto it = file.metadata().find(key);
  if (it == file.metadata().end()) return std::nullopt;
  nlohmann::json config = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) {
    throw Error(ErrorCode::kCorruptFile,
                "'" + file.path() + "': metadata '" + key + "' is not a JSON object");
  }
  return config;
}

KeyIndex::KeyIndex(const TensorFile& file) : file_(file) {
  for (const auto& info : file.tensors()) names_.insert(info.name);
}

bool KeyIndex::has_prefix(const std::string& prefix) const {
  auto it = names_.lower_bound(prefix);
  return it != names_.end() && it->starts_with(prefix);
}

int KeyIndex::count_indexed(const std::string& prefix) const {
  int n = 0;
  while (has_prefix(prefix + std::to_string(n) + ".")) ++n;
  return n;
}

const std::vector<int64_t>& KeyIndex::shape(const std::string& name, size_t rank) const {
  const auto* info = file_.find(name);
  if (!info) {
    throw Error(ErrorCode::kUnsupported, "'" + file_.path() + "' has no tensor '" + name +
                                             "', which a checkpoint of its kind should have");
  }
  if (rank != 0 && info->shape.size() != rank) {
    throw Error(ErrorCode::kUnsupported, "'" + file_.path() + "': tensor '" + name + "' has " +
                                             std::to_string(info->shape.size()) +
                                             " dimensions, expected " + std::to_string(rank));
  }
  return info->shape;
}

}  // namespace df::engine
