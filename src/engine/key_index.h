// Tensor-name helpers of the weights-file readers: dotted names, a name index, metadata configs.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/tensor_file.h"

namespace df::engine {

// "a.b.c" -> {"a", "b", "c"}.
std::vector<std::string> split_dots(const std::string& key);
// parts[from..] joined with dots.
std::string join_from(const std::vector<std::string>& parts, size_t from);
// A non-negative decimal block index ("12"); nullopt for anything else.
std::optional<int> parse_index(const std::string& text);

// The JSON object a file carries as text under metadata `key`; nullopt when the key is absent.
// Throws Error(kCorruptFile) when the text is no JSON object.
std::optional<nlohmann::json> metadata_config(const TensorFile& file, const char* key);

// The sorted tensor names of a file, for prefix queries and the shapes inference rules need.
class KeyIndex {
 public:
  explicit KeyIndex(const TensorFile& file);

  bool has(const std::string& name) const { return names_.count(name) > 0; }
  bool has_prefix(const std::string& prefix) const;
  // How many of prefix0., prefix1., ... exist in a row.
  int count_indexed(const std::string& prefix) const;
  // Shape of a tensor the inference rules need, with `rank` dimensions unless rank is 0; throws
  // Error(kUnsupported) when it is missing or has another rank.
  const std::vector<int64_t>& shape(const std::string& name, size_t rank = 0) const;
  const std::set<std::string>& names() const { return names_; }
  // The indexed file's listing (it shares the file's memory map).
  const TensorFile& file() const { return file_; }

 private:
  TensorFile file_;
  std::set<std::string> names_;
};

}  // namespace df::engine
